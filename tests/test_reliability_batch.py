"""Nothing lost in `slt batch` (issue 22): every finished job on disk within seconds with its own
time, a failing job recorded with its reason while the others run, `--retry-failed`, resume with
another spec refused, the workbench's own version and revision recorded, files 0644.

Every run is `python -m slt batch` in a subprocess: the surface a user meets, and the only way to
kill a run the way a user does.
"""

import csv
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import slt

REPOSITORY = Path(__file__).resolve().parents[1]
NUM_SEEDS = 8
# Small llc jobs: a calibrated regular model, about a second each once compiled (25 000 steps;
# at 500 steps a job took 25 ms, too short to tell files written one by one from files written together).
SEEDS_SPEC = """\
[defaults]
seeds = {seeds}
sampler = {{ n = 1000, num_chains = 2, num_draws = 4000, thinning = 5, pilot_steps = 20, batch_size = 100, exact = false }}

[[jobs]]
model = "regular"
params = {{ d = 1 }}
"""

USER_MODELS = """\
import jax
import jax.numpy as jnp
import toy_models


def line(nan_at):
    '''y = w x + noise; with nan_at = k the loss is NaN on data points from index k on.'''
    key_x, key_noise = jax.random.split(jax.random.key(7))
    x = jax.random.normal(key_x, (1000,))
    data = {"x": x, "y": 0.5 * x + jax.random.normal(key_noise, (1000,)), "index": jnp.arange(1000)}

    def loss(w, batch):
        squared = 0.5 * jnp.square(batch["y"] - w["slope"] * batch["x"])
        return jnp.mean(jnp.where(batch["index"] >= nan_at, jnp.nan, squared))

    return toy_models.from_loss(loss, data, {"slope": jnp.asarray(0.5)}, name=f"line(nan_at={nan_at})")
"""

FAILING_SPEC = """\
[defaults]
seeds = [0]
sampler = { num_chains = 2, num_draws = 100, thinning = 2, pilot_steps = 20, batch_size = 100, exact = false }

[[jobs]]
user_model = "batch_user_models:line"
params = { nan_at = 0 }        # NaN at w* on every data point: from_loss refuses it

[[jobs]]
user_model = "batch_user_models:line"
params = { nan_at = 500 }      # finite on the probe, NaN on half the data

[[jobs]]
model = "regular"
params = { d = 1 }
seeds = [0, 1]
sampler = { n = 1000 }
"""


def environment(extra_path: Path | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS", "SLT_DEBUG")}
    paths = [str(REPOSITORY)] + ([str(extra_path)] if extra_path else []) + [env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def slt_batch(*argv: str, extra_path: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slt", "batch", *map(str, argv)], capture_output=True, text=True,
                          timeout=900, env=environment(extra_path), cwd=cwd)


def job_files(out: Path) -> list[Path]:
    folder = out / "jobs"
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []


def table(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------
# Killed at any moment: every finished job is on disk


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """An 8-seed batch killed with SIGKILL half a second after its first job file appeared, then
    resumed. Half a second is far longer than writing 8 small files (what a run that writes a
    pack's files together does then) and far shorter than the 7 remaining jobs."""
    folder = tmp_path_factory.mktemp("killed")
    spec = folder / "spec.toml"
    spec.write_text(SEEDS_SPEC.format(seeds=list(range(NUM_SEEDS))))
    out = folder / "out"
    process = subprocess.Popen([sys.executable, "-m", "slt", "batch", str(spec), "--out", str(out), "--no-traces"],
                               env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    try:
        while not job_files(out):
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no job file appeared in 600 s"
            time.sleep(0.02)
        time.sleep(0.5)
        running_at_kill = process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    at_kill = job_files(out)
    resumed = slt_batch(spec, "--out", out, "--resume", "--no-traces")
    return spec, out, running_at_kill, at_kill, resumed


def test_a_killed_batch_keeps_each_job_written_before_the_kill(killed_and_resumed):
    """The first job file appears while the others are still to run (packs used to be written
    only when the whole pack ended: 0 files after 15 s, then all at once), each file is a complete
    ok record, and the resumed run runs exactly the missing jobs."""
    _, out, running_at_kill, at_kill, resumed = killed_and_resumed
    assert running_at_kill
    assert 1 <= len(at_kill) < NUM_SEEDS
    assert not (out / "results.csv").exists() or len(table(out)) == NUM_SEEDS
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = resumed.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{NUM_SEEDS} jobs: {NUM_SEEDS - len(at_kill)} run, {len(at_kill)} already done, 0 failed")
    rows = table(out)
    assert sorted(int(row["seed"]) for row in rows) == list(range(NUM_SEEDS))
    assert all(row["status"] == "ok" for row in rows)


def test_each_job_is_written_when_it_ends_with_its_own_time(killed_and_resumed):
    """Jobs run one after another on CPU, so if each file is written when its job ends and each
    job's time is its own, job k's file comes at least its `job_seconds` after job k−1's
    (allowing 20 % and 0.2 s for the clock and the write). With a pack's files written together
    and each job given the pack's average time, the files' times were milliseconds apart."""
    _, out, _, at_kill, _ = killed_and_resumed
    written_before = {path.name for path in at_kill}
    records = [(path.stat().st_mtime, json.loads(path.read_text())) for path in job_files(out)
               if path.name not in written_before]
    records.sort(key=lambda item: item[0])
    assert len(records) >= 3
    seconds = [record["job_seconds"] for _, record in records]
    assert len(set(seconds)) == len(seconds), seconds  # measured per job, not a shared average
    for (previous, _), (current, record) in zip(records, records[1:]):
        assert current - previous >= 0.8 * record["job_seconds"] - 0.2, (current - previous, record["job_seconds"])


# --------------------------------------------------------------------------------------------
# A failing job is recorded; the others run; the table is written; --retry-failed


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("failing")
    (folder / "batch_user_models.py").write_text(USER_MODELS)
    spec = folder / "spec.toml"
    spec.write_text(FAILING_SPEC)
    result = slt_batch(spec, "--out", folder / "out", "--no-traces", extra_path=folder)
    return folder, spec, folder / "out", result


def test_a_nan_job_is_recorded_as_failed_and_the_others_finish(failing_run):
    _, _, out, result = failing_run
    assert result.returncode == 1, result.stderr[-3000:]  # some jobs failed: 1, not a crash
    assert "Traceback" not in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("4 jobs: 4 run, 0 already done, 2 failed")
    rows = table(out)
    assert [(row["user_model"] or row["family"], row["status"]) for row in rows] == [
        ("batch_user_models:line", "failed"), ("batch_user_models:line", "failed"),
        ("regular", "ok"), ("regular", "ok")]
    failed = [json.loads(path.read_text()) for path in job_files(out)]
    reasons = [record["error"] for record in failed if record["status"] == "failed"]
    assert len(reasons) == 2 and all("not finite" in reason or "NaN" in reason for reason in reasons), reasons
    # each failure is named on stderr with its job, one line each
    failure_lines = [line for line in result.stderr.splitlines() if "failed" in line and "batch_user_models:line" in line]
    assert len(failure_lines) == 2, result.stderr[-3000:]


def test_retry_failed_reruns_only_the_failed_jobs(failing_run, tmp_path):
    folder, spec, out, _ = failing_run
    copy = tmp_path / "out"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    again = slt_batch(spec, "--out", copy, "--resume", "--no-traces", extra_path=folder)
    assert again.returncode == 1 and again.stdout.strip().splitlines()[-1].startswith(
        "4 jobs: 0 run, 4 already done, 2 failed"), again.stdout + again.stderr[-2000:]
    # the user fixes the model (same import path and parameters: the same job ids) and retries
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    (fixed / "batch_user_models.py").write_text(USER_MODELS.replace("jnp.where(batch[\"index\"] >= nan_at, jnp.nan, squared)",
                                                                    "squared"))
    retried = slt_batch(spec, "--out", copy, "--resume", "--retry-failed", "--no-traces", extra_path=fixed)
    assert retried.returncode == 0, retried.stderr[-3000:]
    assert retried.stdout.strip().splitlines()[-1].startswith("4 jobs: 2 run, 2 already done, 0 failed")
    assert [row["status"] for row in table(copy)] == ["ok"] * 4


# --------------------------------------------------------------------------------------------
# Resume with another spec


def test_resume_with_another_spec_is_refused_unless_forced(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SEEDS_SPEC.format(seeds=[0, 1]).replace("num_draws = 4000, thinning = 5", "num_draws = 20, thinning = 2"))
    out = tmp_path / "out"
    first = slt_batch(spec, "--out", out, "--no-traces")
    assert first.returncode == 0, first.stderr[-3000:]
    other = tmp_path / "other.toml"
    other.write_text(SEEDS_SPEC.format(seeds=[0]).replace("num_draws = 4000, thinning = 5", "num_draws = 20, thinning = 2"))
    refused = slt_batch(other, "--out", out, "--resume", "--no-traces")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "spec.toml" in lines[0] and "--force-spec" in lines[0], refused.stderr[-2000:]
    assert (out / "spec.toml").read_text() == spec.read_text()
    assert len(table(out)) == 2
    forced = slt_batch(other, "--out", out, "--resume", "--force-spec", "--no-traces")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert (out / "spec.toml").read_text() == other.read_text()
    # the same spec resumes without a word
    same = slt_batch(other, "--out", out, "--resume", "--no-traces")
    assert same.returncode == 0 and same.stdout.strip().splitlines()[-1].startswith("1 jobs: 0 run, 1 already done")


# --------------------------------------------------------------------------------------------
# What a record says about the workbench; file modes


def test_records_carry_the_workbench_version_and_its_own_revision(tmp_path):
    """Run from inside another git repository: the record names the workbench's source tree's
    revision (or null), never the repository the user happens to stand in."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a", "-C", str(elsewhere)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    foreign = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    spec = tmp_path / "spec.toml"
    spec.write_text(SEEDS_SPEC.format(seeds=[0]).replace("num_draws = 4000, thinning = 5", "num_draws = 20, thinning = 2"))
    result = slt_batch(spec, "--out", tmp_path / "out", cwd=elsewhere)
    assert result.returncode == 0, result.stderr[-3000:]
    [path] = job_files(tmp_path / "out")
    record = json.loads(path.read_text())
    assert record["workbench_version"] == slt.__version__
    ours = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert record["git_revision"] != foreign
    assert record["git_revision"] in (None, ours.stdout.strip())
    # trace files are ordinary files, like the job files
    job_mode = stat.S_IMODE(path.stat().st_mode)
    traces = sorted((tmp_path / "out" / "traces").glob("*.nc"))
    assert traces and all(stat.S_IMODE(trace.stat().st_mode) == job_mode for trace in traces)
    umask = os.umask(0)
    os.umask(umask)
    assert job_mode == 0o666 & ~umask

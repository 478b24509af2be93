"""`slt batch`: spec validation, job files and table, resume after SIGKILL, device-count and Ray
equality, GPU requests failing fast.

The runs use a two-job spec small enough to take a few seconds a job: the regular model d = 1
with a calibrated step size, and the normal crossing w1² w2⁴ with a fixed one (no calibration).
Both use minibatches (batch 100 of n = 1000), where results agree bitwise across device counts
(see `slt.batch`, "Device count").
"""

import contextlib
import copy
import csv
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest

import estimators
import slt
import toy_models
from slt import batch as slt_batch
from slt.batch import TIMING_COLUMNS, SpecError, load_spec, parse_spec, read_result, run_batch
from slt.cli import main
from slt.run import load_trace

REPOSITORY = Path(__file__).resolve().parents[1]

TINY_SPEC = """\
description = "two tiny jobs for the tests"

[defaults]
seeds = [0]
sampler = { n = 1000, num_chains = 3, num_draws = 20, pilot_steps = 20, batch_size = 100, exact = false }

[[jobs]]
model = "regular"
params = { d = 1 }

[[jobs]]
model = "normal_crossing"
params = { powers = [1, 2] }
sampler.step_size = 2e-5
"""


def _spec(**overrides) -> dict:
    """A valid spec mapping (what tomllib returns), with top-level overrides."""
    spec = {
        "defaults": {"seeds": [0], "sampler": {"n": 1000, "num_draws": 20}},
        "jobs": [
            {"model": "regular", "params": {"d": 1}},
            {"model": "normal_crossing", "params": {"powers": [1, 2]}, "method": "wbic"},
            {"model": "rrr", "params": {"M": 2, "H": 2, "N": 2, "r": 0}, "sampler": {"num_chains": 2}},
        ],
    }
    spec.update(overrides)
    return spec


def _with(path: str, value) -> dict:
    """The valid spec with one field set: `_with("jobs[2].sampler.num_chains", 0)`."""
    spec = copy.deepcopy(_spec())
    node = spec
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[parts[-1]] = value
    return spec


def _table(path: Path, drop=TIMING_COLUMNS) -> list[dict]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(handle)]


def _child_environment(**extra) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    environment.update(extra)
    return environment


# --------------------------------------------------------------------------------------------
# The spec


def test_grid_expands_into_the_cartesian_product_with_seeds_fastest():
    spec = {"jobs": [{
        "model": "normal_crossing",
        "seeds": [3, 1],
        "sampler": {"n": 1000},
        "grid": {"params": {"powers": [[1, 1], [1, 2]]}, "sampler": {"nbeta": [10, 100, 1000]}},
    }]}
    jobs = parse_spec(spec)
    assert len(jobs) == 2 * 3 * 2
    assert [job.seed for job in jobs[:4]] == [3, 1, 3, 1]
    assert [job.config["sampler"]["nbeta"] for job in jobs[:6:2]] == [10.0, 100.0, 1000.0]
    assert [job.config["params"]["powers"] for job in (jobs[0], jobs[-1])] == [[1, 1], [1, 2]]
    assert len({job.id for job in jobs}) == len(jobs)
    assert all(job.id == job.config_hash[:16] == slt_batch.config_hash(job.config)[:16] for job in jobs)


def test_the_id_hashes_the_resolved_config_not_its_spelling():
    plain = parse_spec({"jobs": [{"model": "normal_crossing", "params": {"powers": [1, 2]}, "seeds": [0],
                                  "sampler": {"n": 1000}}]})[0]
    spelled_out = parse_spec({"jobs": [{
        "model": "normal_crossing", "params": {"powers": [1, 2], "prior_powers": [0, 0]}, "seeds": [0],
        "method": "llc", "device": "any",
        "sampler": {"n": 1000, "nbeta": min(1000.0, 1000 / math.log(1000)), "batch_size": 5000,
                    "num_chains": 4},
    }]})[0]
    assert spelled_out.config == plain.config and spelled_out.id == plain.id
    assert plain.config["sampler"]["batch_size"] == "full"  # >= n: the full data set
    other_seed = parse_spec({"jobs": [{"model": "normal_crossing", "params": {"powers": [1, 2]}, "seeds": [1],
                                       "sampler": {"n": 1000}}]})[0]
    assert other_seed.id != plain.id
    rlct = parse_spec({"jobs": [{"model": "regular", "params": {"d": 1}, "seeds": [0], "method": "rlct",
                                 "sampler": {"n": 1000}}]})[0]
    assert len(rlct.config["sampler"]["nbetas"]) == 5 and rlct.config["sampler"]["nbeta"] is None


@pytest.mark.parametrize(
    "spec, message",
    [
        (_with("jobs[2].sampler.num_chains", 0), "jobs[2].sampler.num_chains: must be an integer >= 1, got 0"),
        (_with("jobs[0].sampler.n", "1000"), "jobs[0].sampler.n: must be an integer >= 2, got '1000'"),
        (_with("jobs[0].sampler.num_chain", 4), "jobs[0].sampler.num_chain: unknown key"),
        (_with("jobs[1].sampler_settings", {}), "jobs[1].sampler_settings: unknown key"),
        (_with("extra", 1), "spec.extra: unknown key"),
        (_with("defaults.sampler.target_acceptance", 1.5), "defaults.sampler.target_acceptance: must be a finite number in (0, 1), got 1.5"),
        (_with("defaults.sampler.exact", 1), "defaults.sampler.exact: must be true or false, got 1"),
        (_with("defaults.seeds", [0, 0]), "defaults.seeds: seeds must be distinct"),
        (_with("defaults.seeds", [-1]), "defaults.seeds[0]: must be an integer in [0, 4294967295]"),
        (_spec(defaults={}), "jobs[0].seeds: required (there is no default seed)"),
        (_with("jobs[0].method", "llx"), "jobs[0].method: must be one of llc, wbic, rlct"),
        (_with("jobs[0].grid.method", ["llc", 1]), "jobs[0].grid.method[1]: must be one of llc, wbic, rlct"),
        (_with("jobs[0].model", "spline"), "jobs[0].model: unknown family 'spline'"),
        (_with("jobs[1].params.powers", [0, 1]), "jobs[1].params: normal_crossing: parameter 'powers[0]' must be >= 1, got 0"),
        (_with("jobs[0].params.width", 3), "jobs[0].params: regular: unknown parameter 'width'"),
        (_with("jobs[1].sampler.nbeta", 100.0), "jobs[1].sampler.nbeta: not allowed for method 'wbic'"),
        (_with("jobs[2].sampler.localization", 1.0) | {"defaults": {"seeds": [0], "method": "wbic"}}, "jobs[2].sampler.localization: must be 0 for method 'wbic'"),
        (_with("jobs[0].sampler.nbetas", [10, 20, 30, 40]), "jobs[0].sampler.nbetas: only for method 'rlct'"),
        (_with("jobs[0].device", "tpu"), "jobs[0].device: must be one of any, cpu, gpu, got 'tpu'"),
        (_with("jobs[0].user_model", "my_models:build"), "jobs[0]: give exactly one of model"),
        (_with("jobs[0].grid.sampler.nbeta", [100, -1]), "jobs[0].grid.sampler.nbeta[1]: must be a finite number in (0, ∞)"),
        (_with("jobs[0].grid.sampler.nbeta", []), "jobs[0].grid.sampler.nbeta: must be a non-empty list"),
        (_with("jobs[0].grid.sampler.steps", [1]), "jobs[0].grid.sampler.steps: unknown key"),
        (_with("jobs[0].grid.params.d", [1, 0]), "jobs[0] (grid params.d=0).params: regular: parameter 'd' must be >= 1, got 0"),
        (_with("jobs[0].grid.sampler.batch_size", ["all"]), "jobs[0].grid.sampler.batch_size[0]: must be an integer >= 1 or \"full\""),
        (_spec(jobs=[]), "jobs: must be a non-empty array"),
        (_spec(jobs=[{"model": "regular", "params": {"d": 1}}] * 2), "jobs[1], seed 0: the same job as jobs[0], seed 0"),
        (_spec(jobs=[{"user_model": "no/such:thing"}]), "jobs[0].user_model: must be an import path 'package.module:function'"),
        (_spec(jobs=[{"user_model": "no_such_module_xyz:build"}]), "jobs[0].user_model: cannot import module 'no_such_module_xyz'"),
        (_spec(jobs=[{"user_model": "toy_models:no_such_function"}]), "jobs[0].user_model: module 'toy_models' has no function"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(spec, message):
    with pytest.raises(SpecError) as error:
        parse_spec(spec)
    assert message in str(error.value)


@pytest.mark.parametrize("method", ["ti", "waic"])
def test_a_spec_that_estimate_would_refuse_is_refused_at_parse_time(method):
    """The spec's settings are checked by `EstimateSettings`, the check `slt.estimate` runs: ti and
    waic sample the global posterior, so a localization is refused before any job runs (it once
    passed `parse_spec` and failed only when the job ran)."""
    spec = _spec(jobs=[{"model": "regular", "params": {"d": 1}, "method": method, "sampler": {"localization": 1.0}}])
    with pytest.raises(SpecError, match=rf"jobs\[0\]\.sampler\.localization: must be 0 for method '{method}'"):
        parse_spec(spec)
    with pytest.raises(ValueError, match=f"localization must be 0 for method '{method}'"):
        slt.estimate(toy_models.get("regular", d=1), method, key=jax.random.key(0), localization=1.0)
    grid = _spec(jobs=[{"model": "regular", "params": {"d": 1}, "sampler": {"localization": 1.0},
                        "grid": {"method": ["llc", method]}}])
    with pytest.raises(SpecError, match=rf"jobs\[0\] \(grid method='{method}'\)\.sampler\.localization: must be 0"):
        parse_spec(grid)
    job = parse_spec(_spec(jobs=[{"model": "regular", "params": {"d": 1}, "method": method}]))[0]
    assert job.settings.method == method and job.settings.localization == 0.0


def test_toml_errors_name_the_file_and_the_cli_exits_2(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("[[jobs]]\nmodel = regular\n")
    with pytest.raises(SpecError, match="broken.toml: not valid TOML"):
        load_spec(broken)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[jobs]]\nmodel = "regular"\nparams = { d = 1 }\nseeds = [0]\nsampler = { num_chains = 0 }\n')
    assert main(["batch", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "slt batch: error: jobs[0].sampler.num_chains: must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_user_model_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "batch_user_models.py").write_text(
        "import toy_models\n"
        "def line(d):\n    return toy_models.get('regular', d=d)\n"
        "def not_a_model(d):\n    return d\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    [job] = parse_spec({"jobs": [{"user_model": "batch_user_models:line", "params": {"d": 2}, "seeds": [0]}]})
    assert job.config["user_model"] == "batch_user_models:line" and job.config["model"] is None
    assert slt_batch.build_model(job.config).true_rlct == 1
    [bad] = parse_spec({"jobs": [{"user_model": "batch_user_models:not_a_model", "params": {"d": 2}, "seeds": [0]}]})
    record = slt_batch.run_job(bad.config)  # the job fails with its reason; the batch goes on
    assert record["status"] == "failed"
    assert "user_model: batch_user_models:not_a_model returned int" in record["error"]


# --------------------------------------------------------------------------------------------
# Devices and executors that must refuse before running anything


def test_a_gpu_request_fails_fast_without_a_gpu(tmp_path):
    if any(device.platform == "gpu" for device in jax.devices()):
        pytest.skip("this machine has a GPU")
    spec = tmp_path / "gpu.toml"
    spec.write_text(TINY_SPEC.replace("[[jobs]]\nmodel = \"normal_crossing\"", "[[jobs]]\ndevice = \"gpu\"\nmodel = \"normal_crossing\""))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r'jobs\[1\], seed 0: device = "gpu" but JAX has no GPU backend'):
        run_batch(spec, tmp_path / "out")
    assert time.perf_counter() - start < 5
    assert slt_batch.result_files(tmp_path / "out") == []


def test_the_ray_executor_without_ray_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC)
    with pytest.raises(ValueError, match=r"the ray executor needs Ray: pip install 'slt-workbench\[ray\]'"):
        run_batch(spec, tmp_path / "out", executor="ray")


# --------------------------------------------------------------------------------------------
# Runs


@pytest.fixture(scope="module")
def four_device_process(tmp_path_factory):
    """`slt batch` on the two-job spec in a subprocess with 4 simulated CPU devices, started
    before `tiny_run` so that the two overlap on a 2-core machine."""
    folder = tmp_path_factory.mktemp("four_devices")
    spec = folder / "spec.toml"
    spec.write_text(TINY_SPEC)
    process = subprocess.Popen([sys.executable, "-m", "slt", "batch", str(spec), "--out", str(folder / "out")],
                               env=_child_environment(XLA_FLAGS="--xla_force_host_platform_device_count=4"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process, folder / "out"
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_four_simulated_devices_give_the_same_numbers(four_device_process, tiny_run):
    """The driver shards the chains over 4 CPU devices (3 chains padded to 4); the numbers agree
    bitwise with the 1-device run (minibatch kernels; see `slt.batch` for full batches)."""
    process, out = four_device_process
    _, reference, _ = tiny_run
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    four = _table(out / "results.csv", drop=(*TIMING_COLUMNS, "num_devices"))
    one = _table(reference / "results.csv", drop=(*TIMING_COLUMNS, "num_devices"))
    assert [row["num_devices"] for row in _table(out / "results.csv")] == ["4", "4"]
    assert four == one


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The two-job spec run once, locally, in this process (1 CPU device), its progress bar forced
    on and kept in stderr.txt."""
    folder = tmp_path_factory.mktemp("batch")
    spec = folder / "spec.toml"
    spec.write_text(TINY_SPEC)
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        summary = run_batch(spec, folder / "out", progress=True)
    (folder / "stderr.txt").write_text(stderr.getvalue())
    return spec, folder / "out", summary


def test_the_batch_bar_counts_jobs_to_the_total(tiny_run):
    _, out, _ = tiny_run
    last = (out.parent / "stderr.txt").read_text().replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last and "2/2 jobs" in last, last


def test_a_local_run_writes_job_files_and_the_table(tiny_run):
    spec, out, summary = tiny_run
    jobs = load_spec(spec)
    assert (summary.num_jobs, summary.ran, summary.skipped, summary.failed) == (2, 2, 0, 0)
    assert [path.stem for path in slt_batch.result_files(out)] == sorted(job.id for job in jobs)
    assert (out / "spec.toml").read_text() == TINY_SPEC
    for job in jobs:
        record = json.loads((out / "jobs" / f"{job.id}.json").read_text())
        assert record["status"] == "ok" and record["error"] is None
        assert record["id"] == job.id and record["config_hash"] == job.config_hash and record["config"] == job.config
        assert record["seed"] == 0 and record["method"] == "llc" and record["n"] == 1000
        assert isinstance(record["estimate"], float) and record["std_error"] > 0
        assert record["diagnostics"]["num_chains"] == 3 and record["diagnostics"]["num_draws"] == 20
        assert record["git_revision"] is None or len(record["git_revision"]) == 40
        assert record["versions"]["jax"] == jax.__version__
        assert record["backend"] == "cpu" and record["num_devices"] == jax.local_device_count()
        assert read_result(out / "jobs" / f"{job.id}.json", job) == record
    rows = _table(out / "results.csv", drop=())
    assert [row["id"] for row in rows] == [job.id for job in jobs]
    assert [row["true_rlct"] for row in rows] == ["0.5", "0.25"]
    assert [row["model"] for row in rows] == ["regular(d=1)", "normal_crossing(powers=1,2, prior_powers=0,0)"]
    assert rows[1]["step_size"] == "2e-05" and rows[0]["step_size"] != "2e-05"  # calibrated
    for row in rows:
        assert set(row) == set(slt_batch.TABLE_COLUMNS)
        assert float(row["estimate"]) == json.loads((out / "jobs" / f"{row['id']}.json").read_text())["estimate"]
        assert row["reliable"] in ("true", "false") and float(row["seconds"]) > 0


def test_each_job_writes_its_trace_as_netcdf_with_its_config(tiny_run):
    """The trace file holds the run whose losses give the job's estimate (llc from the trace
    equals the JSON's estimate), and the job's config, hash and seed."""
    spec, out, _ = tiny_run
    for job in load_spec(spec):
        record = json.loads((out / "jobs" / f"{job.id}.json").read_text())
        assert record["trace_files"] == [f"traces/{job.id}.0.nc"]
        trace = load_trace(out / record["trace_files"][0])
        assert trace.config["job_id"] == job.id and trace.config["config_hash"] == job.config_hash
        assert trace.config["config"] == job.config and trace.config["seed"] == 0
        assert trace.loss.shape == (3, 20) and trace.positions is None
        recomputed = estimators.llc(trace.loss, trace.loss_at_center, record["nbeta"])
        assert recomputed.mean == pytest.approx(record["estimate"], rel=1e-12)
    assert not [p for p in (out / "traces").iterdir() if p.name.startswith(".")]


def test_no_traces_on_request(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC)
    run_batch(spec, tmp_path / "out", save_traces=False)
    assert not (tmp_path / "out" / "traces").exists()
    for path in slt_batch.result_files(tmp_path / "out"):
        assert "trace_files" not in json.loads(path.read_text())


def test_existing_results_are_refused_without_resume_and_skipped_with_it(tiny_run, tmp_path):
    spec, out, _ = tiny_run
    copy_of_out = tmp_path / "out"
    shutil.copytree(out, copy_of_out)
    with pytest.raises(ValueError, match="already holds results .2 job files.; pass --resume"):
        run_batch(spec, copy_of_out)
    stale = copy_of_out / "jobs" / ".0123456789abcdef.json.x1y2.tmp"
    stale.write_text('{"batch_format": 1, "status": "ok"')  # a half-written file of a killed run
    summary = run_batch(spec, copy_of_out, resume=True)
    assert (summary.ran, summary.skipped) == (0, 2)
    assert not stale.exists()
    assert _table(copy_of_out / "results.csv") == _table(out / "results.csv")


def test_a_truncated_or_foreign_result_file_is_not_a_result(tiny_run, tmp_path):
    spec, out, _ = tiny_run
    first, second = load_spec(spec)
    text = (out / "jobs" / f"{first.id}.json").read_text()
    truncated = tmp_path / f"{first.id}.json"
    truncated.write_text(text[: len(text) // 2])
    assert read_result(truncated) is None
    assert read_result(out / "jobs" / f"{first.id}.json", second) is None  # another job's file
    renamed = tmp_path / f"{second.id}.json"
    renamed.write_text(text)
    assert read_result(renamed) is None  # the name must be the id of the config inside


def test_kill_and_resume_equals_an_uninterrupted_run(tiny_run, tmp_path):
    spec, reference, _ = tiny_run
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "slt", "batch", str(spec), "--out", str(out)],
                               env=_child_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while not slt_batch.result_files(out):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no job file appeared in 300 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
    assert len(slt_batch.result_files(out)) == 1 and not (out / "results.csv").exists()
    with pytest.raises(ValueError, match="already holds results"):
        run_batch(spec, out)
    summary = run_batch(spec, out, resume=True)
    assert (summary.ran, summary.skipped) == (1, 1)
    assert _table(out / "results.csv") == _table(reference / "results.csv")


@pytest.mark.slow
def test_the_ray_executor_gives_the_local_numbers(tiny_run, tmp_path):
    pytest.importorskip("ray")
    spec, reference, _ = tiny_run
    summary = run_batch(spec, tmp_path / "out", executor="ray", ray_chunk_size=1)
    assert (summary.ran, summary.failed) == (2, 0)
    assert _table(tmp_path / "out" / "results.csv") == _table(reference / "results.csv")
    for path in slt_batch.result_files(reference):
        local = json.loads(path.read_text())
        remote = json.loads((tmp_path / "out" / "jobs" / path.name).read_text())
        for record in (local, remote):
            record.pop("seconds"), record.pop("job_seconds")
        assert remote == local


@pytest.mark.slow
def test_a_gpu_request_on_a_ray_cluster_without_gpus_fails_fast(tmp_path):
    pytest.importorskip("ray")
    spec = tmp_path / "gpu.toml"
    spec.write_text(TINY_SPEC.replace("[defaults]\n", "[defaults]\ndevice = \"gpu\"\n"))
    start = time.perf_counter()
    with pytest.raises(ValueError, match='device = "gpu" but the Ray cluster has no GPU resources'):
        run_batch(spec, tmp_path / "out", executor="ray")
    assert time.perf_counter() - start < 120  # Ray's own start-up, then no waiting


PACK_SPEC = """\
[defaults]
sampler = { n = 1000, num_chains = 2, num_draws = 20, pilot_steps = 20, batch_size = 100, exact = false }

[[jobs]]
model = "normal_crossing"
params = { powers = [1, 2] }
seeds = [0, 1, 2, 3, 4]
"""


def test_packed_jobs_resume_with_the_same_pack_mates(tmp_path):
    """Where packing is on (forced here on CPU), jobs differing only in the seed run as packs cut
    from the whole job list (pack_size 3: seeds 0-2, then 3-4). A resumed run reruns a pack with a
    missing job whole, so the missing job's file equals the uninterrupted run's; packed
    estimates equal the unpacked ones up to float32 rounding."""
    spec = tmp_path / "spec.toml"
    spec.write_text(PACK_SPEC)
    jobs = load_spec(spec)
    summary = run_batch(spec, tmp_path / "packed", pack_size=3, packing=True, save_traces=False)
    assert (summary.ran, summary.failed) == (5, 0)
    records = [json.loads((tmp_path / "packed" / "jobs" / f"{job.id}.json").read_text()) for job in jobs]
    assert [record["packed_with"] for record in records] == [[job.id for job in jobs[:3]]] * 3 + [
        [job.id for job in jobs[3:]]] * 2
    assert [record["diagnostics"]["packed_jobs"] for record in records] == [3, 3, 3, 2, 2]

    (tmp_path / "packed" / "jobs" / f"{jobs[1].id}.json").unlink()
    (tmp_path / "packed" / "results.csv").unlink()
    summary = run_batch(spec, tmp_path / "packed", resume=True, pack_size=3, packing=True, save_traces=False)
    assert (summary.ran, summary.skipped) == (1, 4)
    again = json.loads((tmp_path / "packed" / "jobs" / f"{jobs[1].id}.json").read_text())
    for key in ("estimate", "std_error", "diagnostics", "packed_with"):
        assert again[key] == records[1][key], key

    run_batch(spec, tmp_path / "unpacked", pack_size=3, packing=False, save_traces=False)
    for job, record in zip(jobs, records):
        unpacked = json.loads((tmp_path / "unpacked" / "jobs" / f"{job.id}.json").read_text())
        assert "packed_with" not in unpacked
        assert abs(unpacked["estimate"] - record["estimate"]) < 1e-2 * unpacked["std_error"]  # rounding only


def test_ray_tasks_never_mix_jobs_of_different_configs():
    """A Ray task asks for a GPU and decides packing from its first job, so its packs must share
    the config but the seed: a "gpu" pack is never joined to a "cpu" one."""
    spec = {"defaults": {"seeds": [0, 1, 2], "sampler": {"n": 1000}},
            "jobs": [{"model": "regular", "params": {"d": 1}, "device": "cpu"},
                     {"model": "regular", "params": {"d": 1}, "device": "gpu"}]}
    packs = slt_batch.pack_jobs(parse_spec(spec), 2)
    assert [len(jobs) for jobs in packs] == [2, 1, 2, 1]
    tasks = slt_batch.ray_tasks(packs, 10)
    assert [[job.config["device"] for jobs in task for job in jobs] for task in tasks] == [["cpu"] * 3, ["gpu"] * 3]

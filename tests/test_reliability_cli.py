"""First contact through the command line (issue 22): one seed rule everywhere, a repeated --set
refused, unwritable output folders, `--version`, and what `--help` says the interval covers.

Every user error is one line on stderr (`slt COMMAND: error: ...`) and exit code 2. The checks run
`python -m slt` in a subprocess (the surface a user meets) and `slt.estimate` in process; none
samples anything, so each takes about a JAX import.
"""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

import slt
import toy_models

REPOSITORY = Path(__file__).resolve().parents[1]
# jax.random.key keeps the low 32 bits of a seed without x64, so 2³² would alias 0 and −1 would
# alias 2³² − 1: the seed rule admits exactly the integers in [0, 2³² − 1].
SEED_RULE = "[0, 4294967295]"

TINY_SPEC = """\
[defaults]
seeds = {seeds}
sampler = {{ n = 1000, num_chains = 2, num_draws = 20, pilot_steps = 20, batch_size = 100, exact = false }}

[[jobs]]
model = "regular"
params = {{ d = 1 }}
"""


def slt_command(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), environment.get("PYTHONPATH")]))
    environment.pop("SLT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "slt", *argv], capture_output=True, text=True, timeout=300,
                          env=environment, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, nothing on stdout, one line on stderr holding every fragment; that line."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------------------------
# One seed rule


@pytest.mark.parametrize("seed", ["4294967296", str(2**63), str(2**70), "-1"])
def test_slt_estimate_refuses_a_seed_it_cannot_represent(seed):
    """2³² would silently run seed 0, 2⁶³ overflowed with a traceback, −1 aliased 2³² − 1."""
    result = slt_command("estimate", "regular", "--set", "d=1", "--seed", seed, "--json")
    assert_one_line_error(result, "slt estimate: error:", "--seed", seed, SEED_RULE)


@pytest.mark.parametrize("seeds, bad", [("[0, 4294967296]", "4294967296"), (f"[{2**63}]", str(2**63)),
                                        ("[-1]", "-1")])
def test_batch_specs_refuse_the_same_seeds_before_running(tmp_path, seeds, bad):
    """`--dry-run` used to accept 2⁶³ (and then the run overflowed) and list 0 and 2³² as two jobs."""
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC.format(seeds=seeds))
    result = slt_command("batch", str(spec), "--dry-run")
    assert_one_line_error(result, "slt batch: error:", "seeds[", bad, SEED_RULE)


def test_the_largest_representable_seed_is_accepted_by_a_dry_run(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC.format(seeds="[0, 4294967295]"))
    result = slt_command("batch", str(spec), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2 jobs"


@pytest.mark.parametrize("seed", [2**32, 2**63, -1, 1.0, True])
def test_slt_estimate_takes_a_seed_under_the_same_rule(seed):
    """`slt.estimate(model, key=seed)`: an int seed goes through the rule (a bad one is refused
    before anything runs); `slt.prng_key` is that rule as a function."""
    model = toy_models.get("regular", d=1)
    with pytest.raises(ValueError, match=r"seed.*\[0, 4294967295\]"):
        slt.estimate(model, key=seed, num_draws=2, num_chains=1)
    with pytest.raises(ValueError, match=r"\[0, 4294967295\]"):
        slt.prng_key(seed)


def test_prng_key_maps_a_seed_to_jax_random_key():
    for seed in (0, 1, 2**32 - 1):
        assert jax.random.key_data(slt.prng_key(seed)).tolist() == jax.random.key_data(jax.random.key(seed)).tolist()


# --------------------------------------------------------------------------------------------
# Parameters


def test_a_repeated_set_is_refused():
    """`--set powers=1,2 --set powers=1,1` used to keep the last value without a word."""
    with pytest.raises(ValueError, match="'powers' is given twice"):
        toy_models.parse_assignments("normal_crossing", ["powers=1,2", "powers=1,1"])
    result = slt_command("estimate", "normal_crossing", "--set", "powers=1,2", "--set", "powers=1,1")
    assert_one_line_error(result, "slt estimate: error:", "'powers' is given twice")


# --------------------------------------------------------------------------------------------
# Output folders


@pytest.mark.parametrize("where", ["proc", "under_a_file"])
def test_an_unwritable_out_is_one_line_and_exit_2(tmp_path, where):
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC.format(seeds="[0]"))
    if where == "proc":
        out = Path("/proc/slt_workbench_test_out")
    else:
        (tmp_path / "a_file").write_text("")
        out = tmp_path / "a_file" / "out"
    result = slt_command("batch", str(spec), "--out", str(out))
    assert_one_line_error(result, "slt batch: error:", str(out))


# --------------------------------------------------------------------------------------------
# Version and help


def test_version_from_the_package_metadata():
    assert slt.__version__ == importlib.metadata.version("slt-workbench")
    result = slt_command("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"slt {slt.__version__}"


def test_estimate_help_says_the_interval_adds_the_systematic_error():
    result = slt_command("estimate", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "Monte-Carlo error at the reported nβ only" not in text
    assert "systematic" in text and "1.96" in text


# --------------------------------------------------------------------------------------------
# Traces saved from a direct `slt.sgld` run


def test_a_trace_of_slt_sgld_records_what_made_it_and_is_an_ordinary_file(tmp_path):
    """`slt.sample(slt.sgld(...))` used to record sampler, nβ and n as null, and `save_trace`
    created its file 0600 where job JSONs are 0644 (both: 0666 less the umask)."""
    model = toy_models.get("regular", d=1)
    data = model.sample_data(jax.random.key(0), 200)
    posterior = slt.TemperedPosterior.from_model(model, data, nbeta=50.0)
    trace = slt.sample(slt.sgld(posterior, step_size=1e-3, batch_size=20), model.w_star, jax.random.key(1),
                       num_chains=2, num_steps=20)
    path = tmp_path / "trace.nc"
    slt.save_trace(trace, path)
    loaded = slt.load_trace(path)
    assert (loaded.sampler, loaded.nbeta, loaded.num_data) == ("sgld", 50.0, 200)
    assert loaded.hyperparameters["step_size"] == 1e-3 and loaded.hyperparameters["batch_size"] == 20
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask

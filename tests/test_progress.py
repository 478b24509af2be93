"""Progress bars: a planned total, fed from inside the compiled loops, 100 % at the end, only on
stderr, and no change to any number."""

import io
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import slt
from slt.cli import build_parser, main
from slt.run import (
    CHAIN_STEPS,
    advance_progress,
    compiled_progress,
    expect_progress,
    open_bar,
    plan_progress,
    progress_bar,
    progress_wanted,
)

# pilot 10 steps; 130 draws × thinning 2 + 65 burn-in = 325 steps, neither phase a multiple of the
# report interval (3 blocks, 2 steps: a remainder after the groups); no refinement (an unplanned stage)
SMALL = dict(n=1000, num_draws=130, thinning=2, num_chains=2, pilot_steps=10, max_step_size_refinements=0)
# 2 chains × (calibration: 5 bisection probes + a 4×-long gradient pilot, 10 steps each + 325 main-run steps)
SMALL_PLANNED = 2 * ((5 + 4) * 10 + 325)


def _last_line(stream_text: str) -> str:
    return stream_text.replace("\r", "\n").strip().splitlines()[-1]


def test_the_estimate_bar_reaches_its_planned_total_and_changes_no_number(capsys):
    quiet = slt.estimate("normal_crossing", key=3, params={"powers": (1, 2)}, keep_traces=True, progress=False, **SMALL)
    assert capsys.readouterr() == ("", "")
    shown = slt.estimate("normal_crossing", key=3, params={"powers": (1, 2)}, keep_traces=True, progress=True, **SMALL)
    out, err = capsys.readouterr()
    assert out == ""
    last = _last_line(err)
    assert "100%" in last and f"{SMALL_PLANNED}/{SMALL_PLANNED} chain-steps" in last, last
    assert "extended" not in err
    # the bar's callbacks are compiled into the loop: the draws must not move by a bit
    np.testing.assert_array_equal(quiet.traces[0][1].loss, shown.traces[0][1].loss)
    assert quiet.estimate == shown.estimate and quiet.std_error == shown.std_error


def test_an_unplanned_stage_extends_the_total_and_says_so():
    stream = io.StringIO()
    with progress_bar("run", 10, enabled=True, stream=stream, extension_note="step-size refinement") as bar:
        advance_progress(10)
        expect_progress(4)  # a refinement starts with the budget spent
        assert bar.total == 14
        advance_progress(4)
        expect_progress(0)  # nothing more: no extension
    assert (bar.done, bar.total, bar.extensions) == (14, 14, 1)
    assert "total extended ×1: step-size refinement" in stream.getvalue()
    assert "100%" in _last_line(stream.getvalue())


def test_a_compiled_report_under_vmap_counts_once_per_call_not_per_chain():
    @jax.jit
    def run(x):
        def one_chain(value):
            compiled_progress(3)
            return 2 * value

        return jax.vmap(one_chain)(x)

    with progress_bar("vmap", 6, enabled=True, stream=io.StringIO()) as bar:
        run(jnp.ones(4))
        run(jnp.ones(4))
        jax.effects_barrier()
        assert bar.done == 6


def test_work_that_plans_itself_under_a_bar_opened_at_zero():
    stream = io.StringIO()
    with progress_bar("experiment", 0, unit="stages", enabled=True, stream=stream) as bar:
        plan_progress(3, "stages")
        advance_progress(5)  # another unit: not this bar's
        for _ in range(3):
            advance_progress(1, "stages")
    assert (bar.done, bar.total, bar.extensions) == (3, 3, 0)
    assert "3/3 stages" in _last_line(stream.getvalue())


def test_when_a_bar_shows(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for name in ("CI", "SLT_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    assert progress_wanted(None, Terminal()) and not progress_wanted(None, io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not progress_wanted(None, Terminal())
    monkeypatch.setenv("SLT_PROGRESS", "1")
    assert progress_wanted(None, io.StringIO())
    assert not progress_wanted(False, Terminal())  # --no-progress wins
    with progress_bar("off", 5, enabled=False) as bar:
        assert bar is None and open_bar(CHAIN_STEPS) is None
    with pytest.raises(ValueError, match="total must be >= 0, got -1"):
        with progress_bar("bad", -1, enabled=True, stream=io.StringIO()):
            pass


def test_the_cli_bar_goes_to_stderr_and_the_json_stays_clean(capsys, monkeypatch):
    monkeypatch.setenv("SLT_PROGRESS", "1")  # forced on, as on a terminal
    argv = ["estimate", "normal_crossing", "--set", "powers=1,2", "--n", "1000", "--draws", "40", "--chains", "2",
            "--json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["model"].startswith("normal_crossing")
    assert "100%" in _last_line(err) and "chain-steps" in err
    for command in (argv, ["dynamics", "compare", "--json"], ["experiment", "counting"]):
        assert build_parser().parse_args([*command, "--no-progress"]).progress is False
        assert build_parser().parse_args(command).progress is None

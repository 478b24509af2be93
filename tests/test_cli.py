"""`slt models` and `slt demo`: output, JSON, and errors without tracebacks."""

import json
import subprocess
import sys

import pytest

from slt.cli import main


def test_models_table_lists_the_catalogue(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "rrr(M=5, H=3, N=5, r=0)" in out and "13/2" in out
    assert out.splitlines()[0].split() == ["model", "d", "λ", "m", "reference"]


def test_models_json_for_one_instance(capsys):
    assert main(["models", "dln", "--set", "widths=4,3,3,4", "--set", "r=1", "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["params"] == {"widths": [4, 3, 3, 4], "r": 1}
    assert record["dimension"] == 4 * 3 + 3 * 3 + 3 * 4
    assert (record["true_rlct"], record["multiplicity"]) == ("11/2", 3)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["models", "spline"], "unknown model family 'spline'"),
        (["models", "dln", "--set", "widths=4,-3,4"], "'widths[1]' must be >= 1"),
        (["models", "rrr", "--set", "M=3", "--set", "H=3", "--set", "N=3", "--set", "r=4"], "'r' = 4 exceeds"),
        (["models", "normal_crossing", "--set", "powers=0,1"], "'powers[0]' must be >= 1"),
    ],
)
def test_models_bad_parameters_exit_2_with_a_message(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_console_entry_point_runs_without_traceback():
    result = subprocess.run([sys.executable, "-m", "slt", "models", "dln", "--set", "r=-1", "--set", "widths=2,2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "'r' must be >= 0" in result.stderr and "Traceback" not in result.stderr


def test_demo_runs_on_small_settings(capsys):
    assert main(["demo", "--n", "1000", "--chains", "2", "--steps", "1000"]) == 0
    out = capsys.readouterr().out
    assert "Known truth: λ = 1/2, m = 2" in out and "exact λ(nβ)" in out and "Fit λ̂(t)" in out


def test_demo_refuses_bad_settings(capsys):
    assert main(["demo", "--n", "10"]) == 2
    assert "--n must be >= 1000" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["batch", "spec.toml", "--executor", "nope"], "slt batch: error: argument --executor: invalid choice: 'nope'"),
    (["estimate"], "slt estimate: error: the following arguments are required: family"),
    (["nosuch"], "slt: error: argument COMMAND: invalid choice: 'nosuch'"),
    (["dynamics", "compare", "--particles", "x"], "slt dynamics compare: error: argument --particles: invalid int"),
    (["estimate", "regular", "--chains", "1.5"], "slt estimate: error: argument --chains: invalid int value: '1.5'"),
])
def test_a_bad_flag_is_one_line_and_exit_2(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and err.startswith(fragment), err

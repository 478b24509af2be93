"""`slt dynamics ...`: output on tiny settings, and bad input exits 2 with a message."""

import json

import pytest

from slt import dynamics
from slt.cli import main


def test_temperature_prints_the_formula(capsys):
    assert main(["dynamics", "temperature", "--learning-rate", "0.05", "--batch-size", "5", "--momentum", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "T = η σ² / (2 b (1 − μ))" in out and "= 0.05 " in out


def test_landscape_reports_basins_and_barrier(capsys):
    assert main(["dynamics", "landscape", "two_basin", "--temperature", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "Gibbs mass of the singular / global basin" in out and "barrier" in out


def test_compare_json_on_tiny_settings(capsys):
    argv = ["dynamics", "compare", "--particles", "16", "--steps", "100", "--n", "200", "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in record["dynamics"]] == list(dynamics.DYNAMICS)
    assert dynamics.DYNAMICS == ("gradient_descent", "brownian", "sgd_sde", "sgd", "heavy_ball", "nesterov")
    assert record["temperature"] == pytest.approx(0.05 / (2 * 5))
    assert all(0 <= d["near_singular"][0] <= 1 for d in record["dynamics"])
    assert all(0 <= d["crossing_occupancy"][0] <= 1 for d in record["dynamics"])
    rates = {d["name"]: d["predicted_collapse_rate"] for d in record["dynamics"]}
    assert rates["brownian"] == rates["gradient_descent"] == 0.0
    assert rates["sgd"] == pytest.approx(2 * record["temperature"] * 0.05)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["dynamics", "temperature", "--learning-rate", "0.05", "--batch-size", "0"], "batch_size"),
        (["dynamics", "compare", "--particles", "0"], "--particles must be an integer >= 1"),
        (["dynamics", "compare", "--n", "3", "--batch-size", "5"], "--n (3) must be >= --batch-size (5)"),
        (["dynamics", "compare", "--momentum", "1.0", "--particles", "4", "--steps", "100"], "momentum must be in [0, 1)"),
        (["dynamics", "basins", "--learning-rates", "0.1,abc"], "--learning-rates must be comma-separated numbers"),
        (["dynamics", "basins", "--momenta", "1.5"], "--momenta in [0, 1)"),
        (["dynamics", "escape", "--steps", "150"], "--steps must be a multiple of 100"),
        (["dynamics", "landscape", "two_basin", "--temperature", "-1"], "--temperature must be > 0"),
    ],
)
def test_bad_input_exits_2_with_a_message(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err

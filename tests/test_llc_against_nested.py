"""Row and summary arithmetic of benchmarks/llc_against_nested.py on synthetic rows (no sampling)."""

import json
from pathlib import Path

import pytest


def synthetic(module, name, estimate, nested_value, *, converged=True, quadrature=None):
    llc_row = {"model": name, "d": 2, "lambda": 0.5, "lambda_fraction": "1/2", "m": 2, "nbeta": 1000.0,
               "estimate": estimate, "std_error": 0.01, "systematic_error": 0.02, "exact_at_nbeta": quadrature}
    nested = {"nested": nested_value, "nested_low": nested_value - 0.03, "nested_high": nested_value + 0.03,
              "stop_reason": "depth reached" if converged else "max_seconds", "converged": converged,
              "live_share_of_z": 1e-5, "num_dead": 100, "log_volume_reached": -10.0, "min_acceptance": 1.0}
    return {**module.compare(llc_row, nested), "seconds": 1.0}


def test_row_splits_error_into_sampler_error_and_bias(load_script):
    module = load_script("benchmarks/llc_against_nested.py")
    row = synthetic(module, "a", estimate=0.44, nested_value=0.40, quadrature=0.38)
    assert row["bias"] == pytest.approx(-0.10) and row["relative_bias"] == pytest.approx(0.20)
    assert row["sampler_error"] + row["bias"] == pytest.approx(0.44 - 0.5)
    assert row["sampler_error_in_se"] == pytest.approx(4.0)
    assert row["sampler_error_in_interval"] == pytest.approx(0.04 / (1.96 * 0.01 + 0.02))
    assert row["covered"] is False and row["covered_mc"] is False  # 0.04 > 0.0396 and > 0.0196
    assert row["quadrature_in_band"] is True  # 0.38 in [0.37, 0.43]
    assert synthetic(module, "b", 0.41, 0.40)["covered"] is True


def test_summary_leaves_out_rows_stopped_by_time_and_resume_keeps_rows(tmp_path, load_script):
    module = load_script("benchmarks/llc_against_nested.py")
    rows = [synthetic(module, "a", 0.44, 0.40), synthetic(module, "b", 0.41, 0.40),
            synthetic(module, "c", 0.90, 0.40, converged=False)]
    summary = module.summarise(rows)
    assert summary["converged"] == 2 and summary["not_converged"] == ["c"]
    assert summary["coverage"] == pytest.approx(0.5)
    assert summary["median_relative_sampler_error"] == pytest.approx((0.1 + 0.025) / 2)
    header = {"command": "x", "machine": "y", "load_start": "0", "settings": {}, "seed": 0, "versions": {}}
    stem = str(tmp_path / "out")
    module.write_all(stem, header, rows)
    stored = json.loads(Path(stem + ".json").read_text())
    assert [r["model"] for r in stored["rows"]] == ["a", "b", "c"] and stored["summary"]["converged"] == 2
    assert "| c |" in Path(stem + ".md").read_text()

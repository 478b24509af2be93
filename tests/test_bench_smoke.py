"""Smoke test of benchmarks/devinterp_compare.py (`make bench`) on tiny settings.

The workbench side always runs; the devinterp side only where benchmarks/.devinterp-venv exists
(benchmarks/setup_devinterp.sh creates it in about 2.5 minutes, too long for the fast suite).
"""

import csv
import json
import math
from pathlib import Path

import pytest

SMOKE_CASES = "nc11,dln1m"  # one slt.estimate case (calibrated ε) and the slt.sample speed path


def check_rows(rows, csv_path: Path, json_path: Path, *, with_devinterp: bool):
    assert [row["case"] for row in rows] == SMOKE_CASES.split(",")
    for row in rows:
        assert row["workbench_seconds_median"] > 0
        assert math.isfinite(row["workbench_estimate"]) and row["workbench_std_error"] > 0
        assert ("devinterp_estimate" in row) == with_devinterp
        if with_devinterp:
            assert row["devinterp_seconds_median"] > 0 and math.isfinite(row["devinterp_estimate"])
            assert row["ratio_median"] == pytest.approx(row["devinterp_seconds_median"] / row["workbench_seconds_median"])
    nc11 = rows[0]
    assert nc11["true_rlct"] == 0.5 and 0 < nc11["exact_at_nbeta"] < 0.5
    with csv_path.open() as handle:
        assert [r["case"] for r in csv.DictReader(handle)] == SMOKE_CASES.split(",")
    saved = json.loads(json_path.read_text())
    assert saved["meta"]["machine"]["cpu_count"] >= 1 and "jax" in saved["meta"]["machine"]
    assert ("devinterp_versions" in saved["meta"]) == with_devinterp


def test_smoke_workbench_side(tmp_path, load_script):
    compare = load_script("benchmarks/devinterp_compare.py")
    rows = compare.main(["--smoke", "--cases", SMOKE_CASES, "--no-devinterp", "--no-warm", "--output-dir", str(tmp_path)])
    check_rows(rows, tmp_path / "devinterp_compare_smoke_workbench_only.csv",
               tmp_path / "devinterp_compare_smoke_workbench_only.json", with_devinterp=False)


def test_smoke_both_tools(tmp_path, load_script):
    compare = load_script("benchmarks/devinterp_compare.py")
    if not compare.DEVINTERP_PYTHON.exists():
        pytest.skip(f"no devinterp venv at {compare.DEVINTERP_VENV}: run benchmarks/setup_devinterp.sh "
                    "(about 2.5 minutes) to include the devinterp side")
    rows = compare.main(["--smoke", "--cases", SMOKE_CASES, "--no-setup", "--no-warm", "--output-dir", str(tmp_path)])
    check_rows(rows, tmp_path / "devinterp_compare_smoke.csv", tmp_path / "devinterp_compare_smoke.json",
               with_devinterp=True)

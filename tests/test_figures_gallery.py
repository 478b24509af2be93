"""The gallery figures (LLC accuracy, SGLD diagnostics, calibration sweep) run on --small settings.

tests/test_figures.py runs a fixed list of quadrature figures through the runner; these three
sample with SGLD, so each runs on its own here, with warnings as errors, and must write a
non-empty PNG and PDF and print the numbers behind it.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GALLERY = {  # script -> a line its output must contain
    "fig_llc_accuracy": "exact λ(nβ) = 0.3813",
    "fig_sgld_diagnostics": "too short, no burn-in",
    "fig_calibration_sweep": "slt.estimate at nβ = 100: calibrated ε nβ",
    "fig_density_of_states": "SGLD llc at nβ = 1000",
}


@pytest.mark.parametrize("name", sorted(GALLERY))
def test_gallery_figure_small_writes_images(name, tmp_path):
    result = subprocess.run([sys.executable, "-W", "error", str(ROOT / "figures" / f"{name}.py"), "--small",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert GALLERY[name] in result.stdout, result.stdout[-2000:]
    for suffix in ("png", "pdf"):
        path = tmp_path / f"{name}.{suffix}"
        assert path.exists() and path.stat().st_size > 1000, path

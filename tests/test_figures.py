"""`make figures`: every script runs on small settings through the runner, and the cache works."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# fig_dynamics runs in tests/test_dynamics_figures.py already.
QUADRATURE_FIGURES = ["fig_toy_potentials", "fig_tempered_posteriors", "fig_free_energy_slope"]


def run_figures(out, *extra):
    command = [sys.executable, str(ROOT / "figures" / "make_figures.py"), "--small", "--out", str(out)]
    for name in QUADRATURE_FIGURES:
        command += ["--only", name]
    return subprocess.run(command + list(extra), capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_figure_scripts_write_images_and_are_cached(tmp_path):
    first = run_figures(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    for name in QUADRATURE_FIGURES:
        for suffix in ("png", "pdf"):
            assert (tmp_path / f"{name}.{suffix}").stat().st_size > 1000
    assert first.stdout.count("done in") == len(QUADRATURE_FIGURES)
    second = run_figures(tmp_path)
    assert second.returncode == 0 and second.stdout.count("unchanged, cached") == len(QUADRATURE_FIGURES)


def test_unknown_figure_is_refused(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "figures" / "make_figures.py"), "--only", "fig_nope",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2 and "unknown figure" in result.stderr

"""figures/fig_dynamics.py runs on tiny settings and writes its images."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_figure_script_small_writes_images(tmp_path):
    """figures/fig_dynamics.py --small writes every PNG and PDF, non-empty."""
    result = subprocess.run([sys.executable, "-W", "error", str(ROOT / "figures" / "fig_dynamics.py"),
                             "--small", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    for stem in ("fig_dynamics_occupancy", "fig_dynamics_near_singular", "fig_dynamics_basins"):
        for suffix in ("png", "pdf"):
            path = tmp_path / f"{stem}.{suffix}"
            assert path.exists() and path.stat().st_size > 1000, path

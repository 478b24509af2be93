"""The notebooks in notebooks/ (jupytext percent-format .py files) run as scripts on small settings.

Each runs in-process with `runpy` (so the strict JAX settings of conftest.py and pytest's
warnings-as-errors apply) with SLT_NOTEBOOK_SMALL=1 and the Agg backend; the tests then check the
variables the notebook defines against what the notebook claims.
"""

import math
import runpy
from pathlib import Path

import matplotlib
import numpy as np
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture
def small_notebook(monkeypatch):
    monkeypatch.setenv("SLT_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    matplotlib.use("Agg")

    def run(name):
        return runpy.run_path(str(NOTEBOOKS / name), run_name="__main__")

    return run


def test_estimate_your_own_model(small_notebook):
    namespace = small_notebook("estimate_your_own_model.py")
    user, registry = namespace["user_llc"], namespace["registry_llc"]
    assert namespace["SMALL"] is True
    assert math.isfinite(user.mean) and user.mean > 0 and user.std_error > 0
    # The wrapped user loss and the registry's rrr(2, 2, 2, r=0) are the same model on independent data
    # and chains: their LLCs agree within Monte-Carlo error (4 combined standard errors).
    assert abs(user.mean - registry.mean) <= 4.0 * namespace["combined_std_error"]
    assert float(namespace["true_rlct"]) == 1.5 and namespace["registry_model"].true_rlct == namespace["true_rlct"]
    assert namespace["user_model"].dimension == 8
    assert namespace["tree"]["posterior"]["loss"].shape == (namespace["num_chains"], namespace["num_draws"])


def test_why_singular_models_generalise(small_notebook):
    namespace = small_notebook("why_singular_models_generalise.py")
    mass = namespace["singular_mass"]
    # Exact (grid) Gibbs masses: the singular basin's share grows as T falls, towards 1 ...
    assert np.all(np.diff(mass) > 0) and mass[-1] > 0.95
    # ... with log-odds slope −(λ_reg − λ_sing) − (m − 1)/log(1/T) ≈ −0.5 − 1/log(100) ≈ −0.72 over T ∈ [1e-3, 0.1].
    assert -0.9 < namespace["odds_slope"] < -0.5
    # The Gibbs law piles mass in the crossing box (3.4× uniform at the figure's resolution).
    assert namespace["crossing_enrichment"] > 2.0
    names = {result.name for result in namespace["comparison"].results}
    assert names == {"gradient_descent", "brownian", "sgd_sde", "sgd", "heavy_ball", "nesterov"}
    assert all(0.0 <= value <= 1.0 for value in namespace["near_crossing"].values())
    assert len(namespace["points"]) == 2
    assert isinstance(namespace["occupancy_figure"], matplotlib.figure.Figure)

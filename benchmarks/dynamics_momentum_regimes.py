"""Where heavy-ball momentum differs from plain SGD at matched η_eff and T: a regime map.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/dynamics_momentum_regimes.py

Heavy ball v ← μv + g, w ← w − ηv run at η = η_eff(1 − μ) has, to first order in η_eff·h, the
drift and the temperature T = η_eff σ²/(2b) of SGD at η_eff (`slt.dynamics.sgd_temperature`):
any difference is of order η_eff·h (h a curvature) or comes from the underdamped regime
(μ → 1). Two maps:

1. Quadratic (the regular 1-D regression y = wx + ξ, h = ⟨x²⟩ ≈ 1), b = 10: the stationary
   variance of heavy ball over that of SGD at the same η_eff, against η_eff·h and μ. 4000
   independent particles each from the data's minimiser, 3000 steps; relative SE of each
   variance √(2/N), of the ratio √(4/N). Beside it the additive-noise prediction of the linear
   recursions, (1 + μ)(2 − η_eff h)/(2(1 + μ) − η_eff(1 − μ)h) (minibatch noise is
   multiplicative, so the measured ratio departs from it as η_eff h → 2). SGD has no stationary
   law at η_eff h >= 2 (its stability limit); heavy ball has up to η_eff h < 2(1 + μ)/(1 − μ).
2. Escape from `local_minimum()` (well curvature 1, rim curvature up to h_max ≈ 49), b = 1,
   T = η_eff/2: fraction of 500 particles out of the well after 10 000 steps (binomial SE),
   against η_eff and μ; η_eff·h_max runs 0.25 … 2 across the rim.

Writes benchmarks/results/dynamics_momentum_regimes.{md,json}; one key (0) throughout.
"""

import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import toy_models
from slt import dynamics

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
MOMENTA = (0.0, 0.5, 0.9, 0.99)
PRODUCTS = (0.05, 0.5, 1.0, 1.5, 1.9, 3.0)  # η_eff · h
ESCAPE_RATES = (0.005, 0.01, 0.02, 0.04)
ESCAPE_MOMENTA = (0.0, 0.5, 0.9)


def quadratic_map(key):
    model = toy_models.get("regular", d=1)
    potential = dynamics.from_model(model)
    key_data, key_run = jax.random.split(key)
    data = potential.sample_data(key_data, 20_000)
    inputs = np.asarray(data.inputs, np.float64)
    targets = np.asarray(data.targets, np.float64)[:, 0]
    minimiser = float(np.sum(inputs[:, 0] * targets) / np.sum(inputs[:, 0] ** 2))
    curvature = float(np.mean(inputs**2))
    num_particles, num_steps, batch_size = 4000, 3000, 10
    initial = jnp.full((num_particles, 1), minimiser, jnp.float32)
    rows = []
    for product in PRODUCTS:
        effective = product / curvature
        variances = {}
        for momentum in MOMENTA:
            if momentum == 0.0 and product >= 2.0:
                variances[momentum] = float("inf")
                continue
            algorithm = dynamics.momentum_sgd(potential, effective * (1 - momentum), momentum, batch_size, data)
            final = np.asarray(dynamics.simulate(algorithm, initial, key_run, num_steps, num_steps).positions[:, -1, 0],
                               np.float64)
            variances[momentum] = float(np.var(final - minimiser, ddof=1)) if np.all(np.isfinite(final)) else float("inf")
        for momentum in MOMENTA[1:]:
            ratio = variances[momentum] / variances[0.0]
            predicted = (1 + momentum) * (2 - product) / (2 * (1 + momentum) - product * (1 - momentum))
            rows.append({"eta_eff_h": product, "momentum": momentum, "variance_sgd": variances[0.0],
                         "variance_heavy_ball": variances[momentum], "ratio": ratio,
                         "ratio_std_error": abs(ratio) * float(np.sqrt(4 / num_particles)) if np.isfinite(ratio) else None,
                         "predicted_additive": predicted if product < 2 else None})
    return rows


def escape_map(key):
    potential = dynamics.local_minimum()
    key_data, key_run = jax.random.split(key)
    data = potential.sample_data(key_data, 5000)
    grid = dynamics.gibbs_grid(potential, 1.0, num_bins=50, refine=2)
    in_well = np.asarray(jax.vmap(potential.basin)(jnp.asarray(grid.points))) == 1
    bottom = grid.points[np.argmin(np.where(in_well, grid.loss, np.inf))]
    num_particles, num_steps = 500, 10_000
    initial = jnp.broadcast_to(jnp.asarray(bottom, jnp.float32), (num_particles, 2))
    rows = []
    for effective in ESCAPE_RATES:
        for momentum in ESCAPE_MOMENTA:
            algorithm = dynamics.momentum_sgd(potential, effective * (1 - momentum), momentum, 1, data)
            paths = dynamics.simulate(algorithm, initial, key_run, num_steps, num_steps // 200)
            escapes = dynamics.escape_times(paths.positions, potential, paths.steps)
            rows.append({"eta_eff": effective, "momentum": momentum, "temperature": effective / 2,
                         "eta_eff_h_max": effective * dynamics.max_curvature(potential),
                         "escaped": escapes.fraction_escaped.value, "std_error": escapes.fraction_escaped.std_error,
                         "median_steps": escapes.median})
    return rows


def main() -> int:
    key_quadratic, key_escape = jax.random.split(jax.random.key(0))
    started = time.time()
    quadratic = quadratic_map(key_quadratic)
    escape = escape_map(key_escape)
    seconds = time.time() - started
    record = {"command": "PYTHONPATH=$PWD .venv/bin/python benchmarks/dynamics_momentum_regimes.py",
              "quadratic": quadratic, "escape": escape, "seconds": seconds, "machine": platform.platform(),
              "jax": jax.__version__}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "dynamics_momentum_regimes.json"), "w") as handle:
        json.dump(record, handle, indent=2)
    lines = ["# Heavy ball against SGD at matched η_eff and T: regime map", "",
             f"`{record['command']}` ({seconds:.0f} s).", "",
             "## 1. Stationary variance on a quadratic (h ≈ 1, b = 10): heavy ball / SGD", "",
             "| η_eff·h | μ | ratio (± s.e.) | additive-noise prediction |", "| --- | --- | --- | --- |"]
    for row in quadratic:
        ratio = ("SGD unstable" if not np.isfinite(row["variance_sgd"]) else
                 f"{row['ratio']:.3f} ± {row['ratio_std_error']:.3f}")
        if not np.isfinite(row["variance_heavy_ball"]):
            ratio = "heavy ball unstable"
        predicted = "" if row["predicted_additive"] is None else f"{row['predicted_additive']:.3f}"
        if not np.isfinite(row["variance_sgd"]) and np.isfinite(row["variance_heavy_ball"]):
            ratio = f"SGD unstable; heavy-ball variance {row['variance_heavy_ball']:.4f}"
        lines.append(f"| {row['eta_eff_h']:g} | {row['momentum']:g} | {ratio} | {predicted} |")
    lines += ["", "## 2. Escape from the K > 0 well of `local_minimum()` (b = 1, T = η_eff/2, 10 000 steps)", "",
              "| η_eff | T | η_eff·h_max (rim) | μ | escaped (± s.e.) | median step |", "| --- | --- | --- | --- | --- | --- |"]
    for row in escape:
        lines.append(f"| {row['eta_eff']:g} | {row['temperature']:g} | {row['eta_eff_h_max']:.2f} | {row['momentum']:g} | "
                     f"{row['escaped']:.3f} ± {row['std_error']:.3f} | {row['median_steps']:g} |")
    with open(os.path.join(RESULTS, "dynamics_momentum_regimes.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Why singular models generalise: the dynamics
#
# Singular learning theory says that, among parameters with the same loss, the Bayesian posterior
# prefers the most degenerate ones. With t = nβ and a prior φ, the posterior mass of a region W
# whose minimum loss is K = 0 is
#
# $$ Z_W(t) = \int_W e^{-t K(w)} \varphi(w)\, dw \;\approx\; c_W\, t^{-\lambda_W} (\log t)^{m_W - 1}, $$
#
# so the free energy of W is F_W = −log Z_W ≈ λ_W log t − (m_W − 1) log log t: a region with a
# smaller learning coefficient λ wins, by a factor t^(λ_reg − λ_sing) that grows without bound.
# Watanabe's generalisation error E[G_n] = L(w₀) + λ/n + o(1/n) then says those regions also
# generalise better: λ, not the parameter count d/2, is the effective complexity.
#
# Training is not Bayesian sampling, though. This notebook uses `slt.dynamics` to ask which
# dynamics reproduce the Gibbs law exp(−K/T) near singular sets:
#
# - **Brownian motion** (overdamped Langevin) dw = −∇K dt + √(2T) dB: its stationary law is exactly
#   Gibbs at temperature T;
# - **SGD** with minibatch b and rate η: noise of covariance ≈ η σ² H(w)/b, the Fisher information,
#   with effective temperature T = ησ²/(2b); its noise vanishes along the valley K = 0;
# - **heavy-ball and Nesterov momentum** μ: T = ησ²/(2b(1 − μ)).
#
# Set `SLT_NOTEBOOK_SMALL=1` for a quick run (about 20 s on a laptop CPU).

# %%
import os
import time

import jax
import matplotlib.pyplot as plt  # no backend forced: Jupyter draws inline, a script without a display uses Agg
import numpy as np

from slt import dynamics

SMALL = os.environ.get("SLT_NOTEBOOK_SMALL", "0") == "1"
start_time = time.perf_counter()
key_compare, key_basins = jax.random.split(jax.random.key(0))

# %% [markdown]
# ## 1. The Bayesian preference, exactly: two basins at equal loss
#
# `dynamics.two_basin()` joins a singular basin, K = (w₁w₂)²/2 (λ = 1/2, m = 2), and a regular well,
# K = ‖w − (1.4, 0)‖²/2 (λ = 1, m = 1), at the same minimum loss 0. The Gibbs mass of each basin at
# temperature T (t = 1/T) is computed on a grid. As T falls, the singular basin's share should grow
# towards 1, with the odds growing like T^(−(λ_reg − λ_sing)) = T^(−1/2) times a log factor.

# %%
two_basin = dynamics.two_basin()
temperatures = np.array([0.1, 0.03, 0.01, 0.003, 0.001])
singular_mass = np.array([
    dynamics.gibbs_singular_basin_mass(dynamics.gibbs_grid(two_basin, float(temperature), num_bins=40), two_basin)
    for temperature in temperatures
])
odds = singular_mass / (1.0 - singular_mass)
odds_slope = np.polyfit(np.log(temperatures), np.log(odds), 1)[0]
for temperature, mass in zip(temperatures, singular_mass):
    print(f"T = {temperature:<6g} Gibbs mass of the singular basin {mass:.3f}")
print(f"log-odds slope in log T: {odds_slope:.2f} (theory: −(1 − 1/2) = −0.5, with a log T correction for m = 2)")

# %% [markdown]
# ## 2. Near the crossing: Brownian motion vs SGD vs momentum
#
# `dynamics.compare_dynamics` starts particles uniformly in [−1, 1]² on K = (w₁w₂)²/2 and runs each
# dynamics at one matched temperature T, then measures the total-variation distance of the final
# positions to the exact Gibbs law, the fraction of time spent near the singular set {w₁w₂ = 0},
# and the fraction of particles that end in the crossing box ‖w‖∞ < 0.2.

# %%
if SMALL:
    compare_settings = dict(num_particles=100, num_steps=400, num_data=500, num_records=20, num_bins=16)
    basin_settings = dict(learning_rates=(0.4,), momenta=(0.0, 0.9), num_particles=100, num_steps=200, num_data=500)
else:
    compare_settings = dict(num_particles=1000, num_steps=10000, num_data=10000, num_records=50, num_bins=30)
    basin_settings = dict(learning_rates=(0.1, 0.4), momenta=(0.0, 0.9), num_particles=500, num_steps=2000,
                          num_data=5000)

comparison = dynamics.compare_dynamics(dynamics.normal_crossing((1, 1)), key_compare, effective_learning_rate=0.05,
                                       batch_size=5, momentum=0.9, epsilon=0.1, crossing_radius=0.2,
                                       **compare_settings)
crossing_enrichment = comparison.gibbs_near_crossing / comparison.uniform_near_crossing
print(f"T = {comparison.temperature:g}: Gibbs puts {comparison.gibbs_near_crossing:.3f} of its mass in the crossing "
      f"box, {crossing_enrichment:.1f}× the uniform prior's {comparison.uniform_near_crossing:.3f}")
near_crossing = {}
for result in comparison.results:
    near_crossing[result.name] = result.near_crossing.value
    print(f"{result.name:10s} η = {result.learning_rate:<6g} μ = {result.momentum:<4g} "
          f"TV to Gibbs {result.distance.total_variation:.3f} (sampling floor {result.distance.floor_mean:.3f}), "
          f"time near w₁w₂ = 0: {result.near_singular.value:.3f} ± {result.near_singular.std_error:.3f}, "
          f"final fraction in the crossing box {result.near_crossing.value:.3f} ± {result.near_crossing.std_error:.3f}")

# %%
occupancy_figure = dynamics.occupancy_maps(comparison)
occupancy_figure

# %% [markdown]
# Brownian motion reproduces the Gibbs law (its TV distance sits at the sampling floor once the run
# is long enough), and the Gibbs law already piles mass near the crossing: this is the posterior's
# preference for the most singular point. SGD and momentum SGD push in the same direction but much
# harder: their noise is ∝ H(w), which acts only across the valley and vanishes along it, so
# particles drift to the flattest point and stay. At a matched temperature momentum behaves like
# plain SGD (it rescales both the rate and T by 1/(1 − μ)).

# %% [markdown]
# ## 3. Basin preference of SGD against Gibbs
#
# The same two-basin landscape as in section 1, now with dynamics: the fraction of particles that
# end in the singular basin, for SGD with and without momentum, Brownian motion at the matched T,
# and the exact Gibbs mass.

# %%
points = dynamics.basin_sweep(two_basin, key_basins, batch_size=10, **basin_settings)
for point in points:
    print(f"η = {point.learning_rate:<5g} μ = {point.momentum:<4g} T = {point.temperature:<8.4g} "
          f"SGD {point.sgd.value:.3f} ± {point.sgd.std_error:.3f}, Brownian {point.brownian.value:.3f} ± "
          f"{point.brownian.std_error:.3f}, Gibbs {point.gibbs:.3f}")
basin_figure = dynamics.basin_preference(points)
basin_figure

# %% [markdown]
# ## What this says
#
# - The Bayesian posterior prefers singular regions because their volume at low loss is larger:
#   λ, not d/2, counts the effective number of parameters, and a smaller λ means a smaller
#   generalisation error λ/n.
# - Langevin dynamics (SGLD with small steps) samples that posterior, which is why SGLD can
#   *measure* λ (see `estimate_your_own_model.py`).
# - SGD's state-dependent noise is not isotropic: it drives particles towards singular points even
#   more strongly than the posterior does, and more so with larger η or momentum. The preference for
#   degenerate minima is shared; its size is not.

# %%
plt.close("all")
print(f"notebook ran in {time.perf_counter() - start_time:.1f} s")

"""The noise floor of a data set's density of states, and the fit window it allows.

On a data set the loss is K_n(w) = L_n(w) − L_n(w*), which differs from the population K(w) by a
fluctuation of order √(K/n) + 1/n: for K ≫ 1/n the volume V_n(ε) = ∫_{K_n<ε} φ follows the
population's c ε^λ (−log ε)^(m−1), but near ε ~ 1/n it meets K_n's own minimum structure (the
data's minimiser is not w*: K_n < 0 on a region of volume ~ n^(−λ), and the shape of
{K_n < ε} changes), so the slope of log V_n against log ε no longer reads the population λ.

The rule: the fit window stops at s = −log K_n <= log n + `NOISE_FLOOR_MARGIN` (nats), i.e.
K_n >= e^(−margin)/n = e²/n. The margin is measured (benchmarks/nested_noise_floor.py,
benchmarks/results/nested_noise_floor.md, data sets of n = 10² … 10⁶): the largest margin at which
no fitted data-set run's λ̂ is more than 2.5 standard errors from the population λ and their mean
z is within 2 standard errors of 0; one nat deeper (margin −1) a run reads 2.9 se low, at
margin 0 the mean z is −2.5 (the data's own minimum structure, e.g. λ = 1/2 below the floor of
w₁²w₂ with prior |w₁w₂|², population λ = 3/4).

Limits: above the floor there are only about λ (log n + margin) nats of log-volume, and the
estimator starts its windows past log X = −5, so small λ needs large n (w₁w₂, λ = 1/2, could not
be fitted below n = 10⁶ in that table).
"""

import math

import jax
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.scipy.optimize import minimize

NOISE_FLOOR_MARGIN = -2.0  # nats; see the module docstring for where it was measured
NUM_MINIMISER_STARTS = 4  # prior draws BFGS starts from, besides w*


def data_loss_minimum(loss_fn, w_star, prior, key) -> float:
    """min L_n over BFGS runs (float64) from w* and `NUM_MINIMISER_STARTS` prior draws, and L_n(w*).

    K_n(w) = L_n(w) − this minimum is >= 0 up to the optimiser's miss: measured from the true w*
    instead, K_n < 0 on a region of volume ~ n^(−λ), where nested sampling's constrained region
    {K_n < b} would be empty once b reaches 0. `key` draws the starts (split into one key each).
    """
    with jax.enable_x64(True):
        flat_star, unravel = ravel_pytree(w_star)
        flat_star = flat_star.astype(np.float64)

        def flat_loss(flat):
            return loss_fn(unravel(flat)).astype(np.float64)
        starts = [flat_star] + [ravel_pytree(prior.sample(k, w_star))[0].astype(np.float64)
                                for k in jax.random.split(key, NUM_MINIMISER_STARTS)]
        values = [float(flat_loss(flat_star))] + [float(minimize(flat_loss, start, method="BFGS").fun) for start in starts]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        raise ValueError("the data-set loss L_n is not finite at w* nor at any minimiser start")
    return min(finite)


def data_window_end(num_data: int, margin: float = NOISE_FLOOR_MARGIN) -> float:
    """s_max = log n + margin: the deepest s = −log K_n a fit on a data set of size n may use.

    Raises
    ------
    ValueError : n < 2 (log n must be positive), or a non-finite margin.
    """
    if not isinstance(num_data, (int, np.integer)) or num_data < 2:
        raise ValueError(f"num_data must be an integer >= 2, got {num_data!r}")
    if not math.isfinite(margin):
        raise ValueError(f"margin must be finite, got {margin!r}")
    return math.log(num_data) + margin


def above_noise_floor(death_loss: np.ndarray, num_live: np.ndarray, window_end: float) -> tuple[np.ndarray, np.ndarray]:
    """The deaths with s = −log K <= `window_end` (a prefix: deaths are in order of non-increasing K),
    with their live counts, for `estimators.rlct_from_dead_points`: its fit window then ends at the
    noise floor (the nearest public option: the estimator has no window-end parameter of its own)."""
    death_loss, num_live = np.asarray(death_loss, dtype=np.float64), np.asarray(num_live)
    keep = int(np.searchsorted(-death_loss, -math.exp(-window_end), side="right"))
    return death_loss[:keep], num_live[:keep]

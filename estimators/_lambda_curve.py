"""F(t) and λ(t) at every temperature from the dead points of a nested-sampling run.

F(t) = −log Z(t), Z(t) = ∫ e^(−tK) dV = Σ_i e^(−t K_i) (X_{i−1} − X_i) + X_end · mean_live e^(−tK),
and λ(t) = t E_t[K] = −d log Z / d log t (the dead points reweighted), with log X_i simulated
along Skilling's paths (log X_i − log X_{i−1} = log U_i / n_i, U ~ U(0,1)); bands are the
2.5 % and 97.5 % points over the paths and the value is their median.
"""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

from estimators._dead_points import _checked_run


class LambdaCurve(NamedTuple):
    """F(t) = −log Z(t) and λ(t) = t E_t[K] at each t, medians and 95 % bands over log-X paths."""

    temperatures: np.ndarray
    free_energy: np.ndarray
    free_energy_band: np.ndarray  # [2, T]
    rlct: np.ndarray
    rlct_band: np.ndarray  # [2, T]


def lambda_curve(
    death_loss: Float[ArrayLike, " dead"],
    num_live: Float[ArrayLike, " dead"],
    live_loss: Float[ArrayLike, " live"],
    temperatures: Float[ArrayLike, " t"],
    *,
    seed: int,
    num_paths: int = 64,
) -> LambdaCurve:
    """F(t) = −log Z(t) and λ(t) = t E_t[K] at every t, by reweighting the dead points.

    Z(t) = Σ_i e^(−t K_i)(X_{i−1} − X_i) + X_end · mean(e^(−t K_live)), with log X simulated along
    `num_paths` Skilling paths (numpy generator seeded by `seed`, no default); value = median,
    band = 2.5 % and 97.5 % points over paths. Valid for t where Z(t) is dominated by the dead
    points (the run was deep enough: see `slt.nested_sampling`'s `max_temperature`).
    """
    death_loss, num_live = _checked_run(death_loss, num_live)
    live_loss = np.asarray(live_loss, dtype=np.float64)
    temperatures = np.asarray(temperatures, dtype=np.float64)
    if temperatures.ndim != 1 or not np.all(np.isfinite(temperatures) & (temperatures > 0)):
        raise ValueError(f"temperatures must be a 1-D array of finite t > 0, got {temperatures}")
    if live_loss.ndim != 1 or live_loss.size == 0 or not np.all(np.isfinite(live_loss)):
        raise ValueError("live_loss must be a non-empty 1-D array of finite losses")
    generator = np.random.default_rng(seed)
    losses = np.concatenate([death_loss, live_loss])
    free_energy, rlct = [], []
    for _ in range(num_paths):
        log_x = np.cumsum(np.log(generator.uniform(size=death_loss.size)) / num_live)
        log_x_before = np.concatenate([[0.0], log_x[:-1]])
        log_dx = log_x_before + np.log(-np.expm1(log_x - log_x_before))
        log_w = np.concatenate([log_dx, np.full(live_loss.size, log_x[-1] - np.log(live_loss.size))])
        exponent = log_w[None, :] - temperatures[:, None] * losses[None, :]
        peak = exponent.max(axis=1, keepdims=True)
        weights = np.exp(exponent - peak)
        total = weights.sum(axis=1)
        free_energy.append(-(np.log(total) + peak[:, 0]))
        rlct.append(temperatures * (weights @ losses) / total)
    free_energy, rlct = np.array(free_energy), np.array(rlct)
    return LambdaCurve(
        temperatures=temperatures,
        free_energy=np.median(free_energy, axis=0), free_energy_band=np.percentile(free_energy, [2.5, 97.5], axis=0),
        rlct=np.median(rlct, axis=0), rlct_band=np.percentile(rlct, [2.5, 97.5], axis=0),
    )

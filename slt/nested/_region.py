"""The Gaussian prior mass of a region {w : K(w) = 0}, by nested sampling with elliptical slice moves.

Mingard et al.'s P(f) is the prior mass of the parameters whose network implements f: a region
of positive volume but tiny mass (e^(−20) … e^(−100)), out of reach of rejection counts. Give it
a continuous constraint K(w) >= 0 whose zero set is the region (e.g. the hinge
K_f(w) = Σ_x relu(−f(x) net(w, x))). Nested sampling on K shrinks the live set geometrically
(log X falls by Σ 1/n per outer step) until a share q of the N live points sits at K = 0; then

    log P̂(K = 0) = log X̂ + log q,   log X̂ = Σ_steps [ψ(N − k + 1) − ψ(N + 1)],

the sum the exact mean of log X over Skilling's shrinkages: with k deletions from N live points
the volume falls by t ~ Beta(N − k + 1, k) per step (the k-th largest of N uniforms). Its
variance Σ_steps [ψ'(N − k + 1) − ψ'(N + 1)] (the spread of Skilling's simulated log-X paths)
plus the binomial (1 − q)/(N q) of log q is the run's squared standard error.

Moves: the prior is N(0, diag(s²)), so each replacement is `num_ess_steps` elliptical slice
moves (Murray, Adams & MacKay 2010) on the prior restricted to {K < b} (and to a base region B,
see `region_log_volume`), started from a random surviving live point: w' = w cos θ + ν sin θ,
ν ~ N(0, diag(s²)), θ shrunk towards 0 until w' is inside. Each move changes all d coordinates
for a few loss evaluations, where the coordinate slices of `nested_sampling` cost O(d)
evaluations per sweep (d = 2001 for Mingard's 7-40-40-1 network). Gessner, Kanjilal & Hennig
(2020) use the same pairing (nested subsets + elliptical slice) for Gaussian mass under linear
constraints.
"""

import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree
from scipy.special import digamma, polygamma

_MAX_SHRINKAGE = 60
_INSIDE = 1e-30  # "K < _INSIDE" means K == 0 for a hinge loss (a sum of relu's, 0 or >= float32's tiny)


class RegionVolume(NamedTuple):
    """One run of `region_log_volume`.

    log_volume, std_error : log of the prior mass of {K = 0} (relative to the base region B) and
        its standard error (Skilling's shrinkage variance plus the binomial of the live share).
    log_shrinkage : log X̂ at the end, the volume of the last constrained set {K < b}.
    zero_fraction : q, the share of the final live points with K = 0.
    num_steps : outer steps (k deaths each).
    acceptance : the share of elliptical slice moves that found a point before shrinking out.
    inside : the final live points with K = 0 [n, d] (draws from the prior restricted to the region).
    seconds : wall time; stop_reason : 'live share reached' or the cap that stopped the run.
    """

    log_volume: float
    std_error: float
    log_shrinkage: float
    zero_fraction: float
    num_steps: int
    acceptance: float
    inside: np.ndarray
    seconds: float
    stop_reason: str


def _no_base(w, args):
    return jnp.asarray(0.0, w.dtype)


def _elliptical_slice(key, position, bound, scales, loss_fn, loss_args, base_fn, base_args):
    """One elliptical slice move on N(0, diag(scales²)) restricted to {K < bound} ∩ {base = 0}."""
    key_direction, key_angle, key_shrink = jax.random.split(key, 3)
    direction = jax.random.normal(key_direction, position.shape, position.dtype) * scales
    angle = jax.random.uniform(key_angle, (), position.dtype, 0.0, 2.0 * jnp.pi)

    def point(theta):
        return position * jnp.cos(theta) + direction * jnp.sin(theta)

    def inside(theta):
        x = point(theta)
        return (loss_fn(x, loss_args) < bound) & (base_fn(x, base_args) < _INSIDE)

    def shrink(carry):
        key, theta, low, high, _, count = carry
        low = jnp.where(theta < 0, theta, low)
        high = jnp.where(theta < 0, high, theta)
        key, key_draw = jax.random.split(key)
        theta = jax.random.uniform(key_draw, (), position.dtype, low, high)
        return key, theta, low, high, inside(theta), count + 1

    init = (key_shrink, angle, angle - 2.0 * jnp.pi, angle, inside(angle), 0)
    _, theta, _, _, found, _ = jax.lax.while_loop(lambda c: (~c[4]) & (c[5] < _MAX_SHRINKAGE), shrink, init)
    return jnp.where(found, point(theta), position), found


def _move(key, position, bound, scales, loss_fn, loss_args, base_fn, base_args, num_steps):
    def body(position, key_step):
        position, found = _elliptical_slice(key_step, position, bound, scales, loss_fn, loss_args, base_fn, base_args)
        return position, found

    position, found = jax.lax.scan(body, position, jax.random.split(key, num_steps))
    return position, jnp.mean(found)


@partial(jax.jit, static_argnames=("loss_fn", "base_fn", "num_delete", "num_ess_steps"))
def _outer_step(key, positions, losses, scales, loss_args, base_args, *, loss_fn, base_fn, num_delete, num_ess_steps):
    """Delete the k largest losses; replace each by elliptical slice moves from a random survivor
    under b = the smallest loss deleted."""
    key_start, key_move = jax.random.split(key)
    dead_loss, dead_index = jax.lax.top_k(losses, num_delete)
    bound = dead_loss[-1]
    survivor = (losses < bound).astype(losses.dtype)
    start = jax.random.choice(key_start, losses.shape[0], (num_delete,), p=survivor / survivor.sum())
    move = jax.vmap(_move, in_axes=(0, 0, None, None, None, None, None, None, None))
    moved, found = move(jax.random.split(key_move, num_delete), positions[start], bound, scales, loss_fn, loss_args,
                        base_fn, base_args, num_ess_steps)
    new_loss = jax.vmap(loss_fn, in_axes=(0, None))(moved, loss_args)
    return positions.at[dead_index].set(moved), losses.at[dead_index].set(new_loss), jnp.mean(found)


@partial(jax.jit, static_argnames=("loss_fn",))
def _losses(positions, loss_args, *, loss_fn):
    return jax.vmap(loss_fn, in_axes=(0, None))(positions, loss_args)


@partial(jax.jit, static_argnames=("loss_fn", "num_ess_steps"))
def _region_draws(key, starts, scales, loss_args, *, loss_fn, num_ess_steps):
    move = jax.vmap(_move, in_axes=(0, 0, None, None, None, None, None, None, None))
    draws, _ = move(jax.random.split(key, starts.shape[0]), starts, _INSIDE, scales, loss_fn, loss_args, _no_base,
                    None, num_ess_steps)
    return draws, jnp.all(jax.vmap(loss_fn, in_axes=(0, None))(starts, loss_args) < _INSIDE)


def region_draws(
    key: PRNGKeyArray,
    seeds: Float[Array, "seeds d"],
    scales: Float[Array, " d"],
    loss_fn: Callable[[Float[Array, " d"], PyTree], Float[Array, ""]],
    loss_args: PyTree,
    *,
    num_draws: int,
    num_ess_steps: int = 20,
) -> np.ndarray:
    """`num_draws` points from N(0, diag(scales²)) restricted to {loss_fn(w, loss_args) = 0}: each is
    `num_ess_steps` elliptical slice moves from a random row of `seeds` (points already inside,
    e.g. `RegionVolume.inside`). `key` splits into the starts and the moves. Raises ValueError when
    a seed is not inside."""
    seeds = jnp.asarray(seeds)
    if seeds.ndim != 2 or seeds.shape[0] == 0:
        raise ValueError(f"seeds must be a non-empty [n, d] array, got shape {seeds.shape}")
    key_start, key_move = jax.random.split(key)
    starts = seeds[jax.random.choice(key_start, seeds.shape[0], (num_draws,))]  # a fixed shape: one compilation
    draws, inside = _region_draws(key_move, starts, jnp.asarray(scales, seeds.dtype), loss_args, loss_fn=loss_fn,
                                  num_ess_steps=num_ess_steps)
    if not bool(inside):
        raise ValueError("every seed must lie inside the region (loss_fn == 0)")
    return np.asarray(draws)


def region_log_volume(
    key: PRNGKeyArray,
    loss_fn: Callable[[Float[Array, " d"], PyTree], Float[Array, ""]],
    loss_args: PyTree,
    scales: Float[Array, " d"],
    *,
    initial: Float[Array, "live d"] | None = None,
    base_fn: Callable[[Float[Array, " d"], PyTree], Float[Array, ""]] | None = None,
    base_args: PyTree = None,
    num_live: int = 200,
    num_delete: int | None = None,
    num_ess_steps: int = 20,
    stop_fraction: float = 0.5,
    max_log_volume: float = 300.0,
    max_seconds: float | None = None,
) -> RegionVolume:
    r"""log P(K = 0) under the prior N(0, diag(s²)) (or under it restricted to a base region B), by
    nested sampling with elliptical slice moves.

    Parameters
    ----------
    key : PRNG key, split into `key_init` (prior draws, when `initial` is None) and one key per step.
    loss_fn : K(w, loss_args) >= 0, continuous, with {K = 0} the region (module docstring). A
        module-level function: it is a static argument of the compiled step (one compilation per
        function, whatever `loss_args`).
    scales : s, the prior's standard deviations [d].
    initial : N draws from the prior restricted to B [N, d] (e.g. `region_draws`), required with
        `base_fn`; default N prior draws.
    base_fn, base_args : B = {base_fn(w, base_args) = 0}; every move stays in B, so the answer is
        log P(K = 0 | B) (Mingard's P_B(f|S) = P(f)/P(S) with B the functions consistent with S).
    num_live, num_delete : N and k (default N // 10); the run stops when the live share at K = 0
        reaches `stop_fraction` (≤ 1 − k/N, so the bound b stays > 0).
    num_ess_steps : elliptical slice moves per replacement.
    max_log_volume, max_seconds : caps; a capped run returns log_volume = −inf (stop_reason says).

    Returns
    -------
    `RegionVolume`: log P̂ = log X̂ + log q with its standard error
    √(Σ_steps [ψ'(N−k+1) − ψ'(N+1)] + (1 − q)/(N q)).

    Raises
    ------
    ValueError : a bad setting, `initial` of the wrong shape or outside B, a negative or
        non-finite K at a live point, each in one line.

    Notes
    -----
    The standard error assumes the replacements are independent draws from the constrained
    prior; `num_ess_steps` moves from a survivor only approximate that. It holds against exact
    rejection counts at d = 31 and 49 (tests/test_region_volume.py); at d = 2001 with 20 moves
    independent runs scatter several times more than it says
    (benchmarks/results/experiment_bayesian_sampler_7bit.md), so there take the error from
    independent runs.
    """
    if not isinstance(num_live, int) or num_live < 4:
        raise ValueError(f"num_live must be an integer >= 4, got {num_live!r}")
    num_delete = max(1, num_live // 10) if num_delete is None else num_delete
    if not isinstance(num_delete, int) or not 1 <= num_delete < num_live:
        raise ValueError(f"num_delete must be an integer in [1, {num_live - 1}], got {num_delete!r}")
    if not 0.0 < stop_fraction <= 1.0 - num_delete / num_live:
        raise ValueError(f"stop_fraction must be in (0, 1 − k/N = {1 - num_delete / num_live:.3g}], got {stop_fraction}")
    if not isinstance(num_ess_steps, int) or num_ess_steps < 1:
        raise ValueError(f"num_ess_steps must be an integer >= 1, got {num_ess_steps!r}")
    scales = jnp.asarray(scales)
    if scales.ndim != 1 or not bool(jnp.all(scales > 0)):
        raise ValueError(f"scales must be a positive vector [d], got shape {scales.shape}")
    key_init, key_run = jax.random.split(key)
    if initial is None:
        if base_fn is not None:
            raise ValueError("base_fn needs `initial`: draws from the prior restricted to the base region")
        positions = jax.random.normal(key_init, (num_live, scales.shape[0]), scales.dtype) * scales[None, :]
    else:
        positions = jnp.asarray(initial, scales.dtype)
        if positions.shape != (num_live, scales.shape[0]):
            raise ValueError(f"initial must have shape ({num_live}, {scales.shape[0]}), got {positions.shape}")
    base = _no_base if base_fn is None else base_fn
    if base_fn is not None and not bool(jnp.all(_losses(positions, base_args, loss_fn=base) < _INSIDE)):
        raise ValueError("every initial point must lie inside the base region (base_fn == 0)")
    losses = _losses(positions, loss_args, loss_fn=loss_fn)
    host_losses = np.asarray(losses)
    if not np.all(np.isfinite(host_losses)) or np.any(host_losses < 0):
        raise ValueError(f"loss_fn must be finite and >= 0 at every live point, got min {host_losses.min()}")

    started = time.perf_counter()
    shrink_mean = float(digamma(num_live - num_delete + 1) - digamma(num_live + 1))
    shrink_variance = float(polygamma(1, num_live - num_delete + 1) - polygamma(1, num_live + 1))
    step, acceptance, stop_reason = 0, [], ""
    while True:
        num_inside = int(np.sum(host_losses < _INSIDE))
        if num_inside >= stop_fraction * num_live:
            stop_reason = "live share reached"
            break
        if -step * shrink_mean >= max_log_volume:
            stop_reason = "max_log_volume"
            break
        if max_seconds is not None and time.perf_counter() - started >= max_seconds:
            stop_reason = "max_seconds"
            break
        positions, losses, accepted = _outer_step(
            jax.random.fold_in(key_run, step), positions, losses, scales, loss_args, base_args,
            loss_fn=loss_fn, base_fn=base, num_delete=num_delete, num_ess_steps=num_ess_steps)
        host_losses = np.asarray(losses)
        if not np.all(np.isfinite(host_losses)):
            raise ValueError("loss_fn became non-finite inside the constrained region; check K(w) for NaN")
        acceptance.append(float(accepted))
        step += 1
    fraction = num_inside / num_live
    log_shrinkage = step * shrink_mean
    if stop_reason != "live share reached":
        log_volume, std_error = -np.inf, np.nan
    else:
        log_volume = log_shrinkage + np.log(fraction)
        std_error = float(np.sqrt(step * shrink_variance + (1.0 - fraction) / (num_live * fraction)))
    return RegionVolume(float(log_volume), std_error, float(log_shrinkage), float(fraction), step,
                        float(np.mean(acceptance)) if acceptance else 1.0,
                        np.asarray(positions)[host_losses < _INSIDE], time.perf_counter() - started, stop_reason)

"""Automatic SGLD step size: a MALA-acceptance stability bound, then a predicted-bias bound.

The SGLD update is the module-wide Langevin step (see `slt._posterior`)

    w ← w + ε ∇log p̂(w) + √(2ε) ξ,

and its health check is the Metropolis–Hastings acceptance probability α(ε) the same proposal
would have under MALA on the same minibatch (`slt._kernel.mala_log_acceptance`; Furman & Lau
2024 report 0.86–0.93 for healthy LLC runs). α falls as ε grows, so the calibration is a
bisection over a geometric grid ε_k = ε_0 · 2^k: each probe is one pilot of every chain at one
ε_k (a compiled `lax.scan`, `vmap`-ed over chains, with ε a traced argument, so every probe
reuses one executable), α is averaged over the second half of the pilot, and the search ends at
the largest ε_k whose mean acceptance is at least `target_acceptance` with the next one failing
(5 probes for the 16-point grid instead of all 16: a third of the pilot's cost).

MALA acceptance alone is not enough: in low dimension the SGLD bias is large long before the
acceptance drops (normal crossing w1²w2² at nβ = 1000: acceptance 0.97 gave λ̂ 38 % above the
exact λ(t)). `step_size_bias` predicts the relative bias of the LLC from the pilot's mean squared
minibatch gradient, and `slt._estimate` takes the smaller of the two step sizes.

Limitations
-----------
The pilot is short and starts where the main run starts, so α is measured on the part of the
posterior the pilot reached; the main run reports its own acceptance (`Diagnostics`), which is
the number to trust. The grid has ratio 2, so the chosen ε is within a factor 2 of the target.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from slt._kernel import all_finite, mala_log_acceptance
from slt._posterior import Params, TemperedPosterior, langevin_step

tree_map = jax.tree_util.tree_map


class StepSizeCalibration(NamedTuple):
    """The chosen ε, the grid values the bisection tried (ascending) and their mean pilot MALA
    acceptance."""

    step_size: float
    candidates: np.ndarray
    acceptance: np.ndarray
    target_acceptance: float
    pilot_steps: int
    pilot_chains: int
    met_target: bool

    def to_json(self) -> dict:
        return {
            "step_size": self.step_size,
            "target_acceptance": self.target_acceptance,
            "met_target": self.met_target,
            "pilot_steps": self.pilot_steps,
            "pilot_chains": self.pilot_chains,
            "candidates": [float(c) for c in self.candidates],
            "acceptance": [float(a) for a in self.acceptance],
        }


@partial(jax.jit, static_argnames=("batch_size", "num_steps"))
def _pilot_acceptance(
    posterior: TemperedPosterior,
    step_size: Float[Array, ""],
    positions: Params,
    key: PRNGKeyArray,
    *,
    batch_size: int | None,
    num_steps: int,
) -> Float[Array, " chains"]:
    """Mean MALA acceptance over the second half of `num_steps` SGLD steps at `step_size`, per chain.

    `positions` has a leading chain axis. A chain whose proposal is non-finite stays where it
    was and counts acceptance 0 for that step (a too-large ε diverges; it must not win). The
    posterior and ε are traced arguments: one executable per model, batch size and shapes.
    """
    num_chains = jax.tree_util.tree_leaves(positions)[0].shape[0]

    def one_chain(position, chain_key):
        def body(position, step_index):
            key_batch, key_noise = jax.random.split(jax.random.fold_in(chain_key, step_index))
            batch = posterior.data if batch_size is None else posterior.sample_batch(key_batch, batch_size)
            grad, _ = posterior.grad_log_density(position, batch)
            proposal = langevin_step(position, grad, step_size, key_noise)
            log_acceptance = mala_log_acceptance(posterior, batch, position, proposal, grad, step_size)
            healthy = all_finite(proposal) & all_finite(grad) & jnp.isfinite(log_acceptance)
            acceptance = jnp.where(healthy, jnp.exp(jnp.where(healthy, log_acceptance, 0.0)), 0.0)
            position = tree_map(lambda new, old: jnp.where(healthy, new, old), proposal, position)
            return position, acceptance

        _, acceptance = jax.lax.scan(body, position, jnp.arange(num_steps, dtype=jnp.int32))
        return acceptance[num_steps // 2:].mean()

    return jax.vmap(one_chain)(positions, jax.random.split(key, num_chains))


def calibrate_step_size(
    posterior: TemperedPosterior,
    positions: Params,
    key: PRNGKeyArray,
    *,
    batch_size: int | None,
    target_acceptance: float = 0.9,
    num_steps: int = 400,
    base_step_size: float | None = None,
    num_candidates: int = 16,
) -> StepSizeCalibration:
    """The largest ε = ε_0 · 2^k (k = −11 … num_candidates − 12) with pilot MALA acceptance
    >= target whose next grid value fails, found by bisection (acceptance falls with ε).

    Parameters
    ----------
    posterior : the tempered posterior the main run samples.
    positions : pilot start, a pytree whose leaves have a leading chain axis.
    key : PRNG key of the pilot.
    batch_size : minibatch size (None: full batch), as in the main run.
    target_acceptance : the mean acceptance the chosen ε must reach (0.9 by default).
    base_step_size : ε_0; default 1/max(nβ, 1): the scale of the stiffest direction of nβ L_n, or
        of a unit-scale prior when nβ < 1 (the hot rungs of a thermodynamic-integration ladder).

    When no candidate reaches the target the smallest is returned with `met_target` False.
    """
    if not 0 < target_acceptance < 1:
        raise ValueError(f"target_acceptance must be in (0, 1), got {target_acceptance}")
    base = 1.0 / max(posterior.nbeta, 1.0) if base_step_size is None else float(base_step_size)
    exponents = np.arange(num_candidates) - 11
    candidates = base * 2.0 ** exponents
    measured: dict[int, float] = {}

    def passes(index: int) -> bool:
        value = _pilot_acceptance(posterior, jnp.float32(candidates[index]), positions, key, batch_size=batch_size,
                                  num_steps=num_steps)
        measured[index] = float(np.asarray(value).mean())
        return measured[index] >= target_acceptance  # NaN fails

    passing, failing = -1, candidates.size  # invariant: candidates[passing] passes, candidates[failing] fails
    while failing - passing > 1:
        middle = (passing + failing) // 2
        if passes(middle):
            passing = middle
        else:
            failing = middle
    met = passing >= 0
    chosen = candidates[passing] if met else candidates[0]
    tried = np.array(sorted(measured))
    num_chains = jax.tree_util.tree_leaves(positions)[0].shape[0]
    return StepSizeCalibration(float(chosen), candidates[tried], np.array([measured[i] for i in tried]),
                               target_acceptance, num_steps, num_chains, met)


class GradientStatistics(NamedTuple):
    """Means over pilot draws: E|ĝ_b(w)|² and the LLC-type statistic E[nβ (L_b(w) − L_b(w*))].

    `largest_share` is max_i |ĝ_i|² / Σ_i |ĝ_i|² over the points (NaN for a pilot): near 1/N for
    a light-tailed gradient, large when a few points dominate E|ĝ|², as under a prior |w|^h with
    h <= 1, whose E|∇log φ|² = ∫ h²/w² |w|^h dw is infinite."""

    mean_squared_gradient: float
    mean_scaled_loss_gap: float
    largest_share: float = float("nan")
    num_points: int = 0


def _squared_gradient_and_gap(posterior: TemperedPosterior, batch_size: int | None, position: Params, key):
    batch = posterior.data if batch_size is None else posterior.sample_batch(key, batch_size)
    grad, loss = posterior.grad_log_density(position, batch)
    squared = sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(grad))
    return squared, posterior.nbeta * (loss - posterior.loss_fn(posterior.center, batch))


@partial(jax.jit, static_argnames=("batch_size",))
def _gradient_statistics_at(posterior, positions, keys, *, batch_size):
    squared, gap = jax.vmap(lambda w, k: _squared_gradient_and_gap(posterior, batch_size, w, k))(positions, keys)
    return jnp.mean(squared), jnp.mean(gap), jnp.max(squared) / jnp.sum(squared)


def gradient_statistics_at(posterior: TemperedPosterior, positions: Params, key: PRNGKeyArray, *,
                           batch_size: int | None) -> GradientStatistics:
    """`GradientStatistics` over `positions` (leaves with one leading axis of points), a fresh batch each."""
    num_points = jax.tree_util.tree_leaves(positions)[0].shape[0]
    squared, gap, share = _gradient_statistics_at(posterior, positions, jax.random.split(key, num_points),
                                                  batch_size=batch_size)
    return GradientStatistics(float(squared), float(gap), float(share), int(num_points))


@partial(jax.jit, static_argnames=("batch_size", "num_steps"))
def _pilot_gradient_statistics(posterior, positions, keys, step_size, *, batch_size, num_steps):
    def one_chain(position, chain_key):
        def body(position, step_index):
            key_batch, key_noise = jax.random.split(jax.random.fold_in(chain_key, step_index))
            batch = posterior.data if batch_size is None else posterior.sample_batch(key_batch, batch_size)
            grad, loss = posterior.grad_log_density(position, batch)
            squared = sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(grad))
            gap = posterior.nbeta * (loss - posterior.loss_fn(posterior.center, batch))
            return langevin_step(position, grad, step_size, key_noise), (squared, gap)

        _, (squared, gap) = jax.lax.scan(body, position, jnp.arange(num_steps, dtype=jnp.int32))
        return squared[num_steps // 2:].mean(), gap[num_steps // 2:].mean()

    squared, gap = jax.vmap(one_chain)(positions, keys)
    return jnp.mean(squared), jnp.mean(gap)


def pilot_gradient_statistics(posterior: TemperedPosterior, positions: Params, key: PRNGKeyArray, *,
                              batch_size: int | None, step_size: float, num_steps: int) -> GradientStatistics:
    """`GradientStatistics` over the second half of an SGLD pilot at `step_size` from `positions`
    (leading chain axis)."""
    num_chains = jax.tree_util.tree_leaves(positions)[0].shape[0]
    squared, gap = _pilot_gradient_statistics(posterior, positions, jax.random.split(key, num_chains),
                                              jnp.float32(step_size), batch_size=batch_size, num_steps=num_steps)
    return GradientStatistics(float(squared), float(gap))


def step_size_bias(step_size: float, statistics: GradientStatistics, floor: float = 0.05) -> float:
    """Predicted relative bias of the LLC from SGLD's discretisation and minibatch noise:

        b(ε) ≈ ε E_p|ĝ_b(w)|² / (4 λ̂),

    from the Gaussian case: in a direction of curvature h with minibatch gradient variance s²,
    SGLD's stationary variance is (1 + ε s²/2) / (h (1 − ε h/2)), so that direction's share 1/2
    of λ̂ grows by ≈ ε (h + s²)/2; summed over directions that is ε (tr H + tr Cov ĝ)/4, and
    E_p[tr H] = E_p|∇U|² (Stein's identity), so E_p|ĝ_b|² = E_p[tr H] + E_p[tr Cov ĝ].
    λ̂ is the pilot's E[nβ (L_b − L_b(w*))], floored at `floor`.
    """
    return step_size * statistics.mean_squared_gradient / (4.0 * max(statistics.mean_scaled_loss_gap, floor))

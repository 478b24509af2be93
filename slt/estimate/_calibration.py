"""Automatic SGLD step size: a MALA-acceptance stability bound, then a predicted-bias bound.

Every pilot step is a step of the SGLD kernel `slt.samplers.sgld` (the one SGLD transition)

    w ← w + ε ∇log p̂(w) + √(2ε) ξ,

with the driver's per-step keys (`fold_in(chain key, step)`), and its health check is the Metropolis–Hastings acceptance probability α(ε) the same proposal
would have under MALA on the same minibatch (`slt.samplers.mala_log_acceptance`; Furman & Lau 2024). α falls as ε grows, so the calibration is a
bisection over a geometric grid ε_k = ε_0 · 2^k: each probe is one pilot of every chain at one
ε_k (a compiled `lax.scan`, `vmap`-ed over chains, with ε a traced argument, so every probe
reuses one executable), α is averaged over the second half of the pilot, and the search ends at
the largest ε_k whose mean acceptance is at least `target_acceptance` with the next one failing
(5 probes for the 16-point grid instead of all 16: a third of the pilot's cost).

MALA acceptance alone is not enough: in low dimension the SGLD bias can be large while the
acceptance is still high. `step_size_bias` predicts the relative bias of the LLC from the pilot's
mean squared minibatch gradient, and `slt.estimate._runs.sgld_runs` takes the smaller of the two
step sizes.

Limitations
-----------
The pilot is short and starts where the main run starts, so α is measured on the part of the
posterior the pilot reached; the main run reports its own acceptance (`Diagnostics`), which is
the number to trust. The grid has ratio 2, so the chosen ε is within a factor 2 of the target.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from slt.run._driver import stack_jobs, vmap_over_jobs
from slt.samplers._kernel import all_finite
from slt.samplers._posterior import Params, TemperedPosterior
from slt.samplers._sgld import SGLDState, sgld

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

    kernel = sgld(posterior, step_size, batch_size)  # the one SGLD transition, with its MALA diagnostic

    def one_chain(position, chain_key):
        def body(position, step_index):
            state, info = kernel.step(jax.random.fold_in(chain_key, step_index), SGLDState(position))
            healthy = all_finite(state.position) & info.is_finite & jnp.isfinite(info.mala_acceptance)
            acceptance = jnp.where(healthy, info.mala_acceptance, 0.0)
            position = tree_map(lambda new, old: jnp.where(healthy, new, old), state.position, position)
            return position, acceptance

        _, acceptance = jax.lax.scan(body, position, jnp.arange(num_steps, dtype=jnp.int32))
        return acceptance[num_steps // 2:].mean()

    return jax.vmap(one_chain)(positions, jax.random.split(key, num_chains))


@partial(jax.jit, static_argnames=("batch_size", "num_steps"))
def _pilot_acceptance_jobs(posteriors, step_sizes, positions, keys, *, batch_size, num_steps):
    """`_pilot_acceptance` for J jobs at once (leading job axis on every argument): one dispatch per probe."""
    return vmap_over_jobs(partial(_pilot_acceptance, batch_size=batch_size, num_steps=num_steps), (0, 0, 0, 0))(
        posteriors, step_sizes, positions, keys)


def calibrate_step_sizes(
    posteriors: Sequence[TemperedPosterior],
    positions: Sequence[Params],
    keys: Sequence[PRNGKeyArray],
    *,
    batch_size: int | None,
    target_acceptance: float = 0.9,
    num_steps: int = 400,
    base_step_size: float | None = None,
    num_candidates: int = 16,
) -> list[StepSizeCalibration]:
    """Per job j, the largest ε = ε_0 · 2^k (k = −11 … num_candidates − 12) with pilot MALA
    acceptance >= `target_acceptance` whose next grid value fails, found by bisection
    (acceptance falls with ε); when no candidate reaches the target, the smallest, with
    `met_target` False.

    The jobs are posteriors of one model structure; each bisection probe is one compiled call
    over every job (`vmap` over jobs of `vmap` over chains), and job j's result depends on its
    own posterior, positions (leading chain axis) and key only. A job whose bisection has ended
    re-runs its last probe until every job's has (its result is unchanged). `batch_size` is the
    main run's minibatch (None: full batch); `base_step_size` is ε_0, default 1/max(nβ, 1): the
    scale of the stiffest direction of nβ L_n, or of a unit-scale prior when nβ < 1."""
    if not 0 < target_acceptance < 1:
        raise ValueError(f"target_acceptance must be in (0, 1), got {target_acceptance}")
    num_jobs = len(posteriors)
    if not num_jobs or len(positions) != num_jobs or len(keys) != num_jobs:
        raise ValueError(f"need one position and one key per posterior: got {num_jobs} posteriors, "
                         f"{len(positions)} positions, {len(keys)} keys")
    bases = np.array([1.0 / max(float(p.nbeta), 1.0) if base_step_size is None else float(base_step_size)
                      for p in posteriors])
    exponents = np.arange(num_candidates) - 11
    candidates = bases[:, None] * 2.0 ** exponents  # [jobs, candidates]
    stacked_posteriors, stacked_positions, stacked_keys = stack_jobs(posteriors), stack_jobs(positions), jnp.stack(keys)
    measured: list[dict[int, float]] = [{} for _ in range(num_jobs)]
    # invariant per job: candidates[passing] passes, candidates[failing] fails
    passing, failing = np.full(num_jobs, -1), np.full(num_jobs, num_candidates)
    while np.any(failing - passing > 1):
        active = failing - passing > 1
        middle = np.where(active, (passing + failing) // 2, np.maximum(passing, 0))
        step_sizes = jnp.asarray(candidates[np.arange(num_jobs), middle], dtype=jnp.float32)
        acceptance = np.asarray(_pilot_acceptance_jobs(stacked_posteriors, step_sizes, stacked_positions, stacked_keys,
                                                       batch_size=batch_size, num_steps=num_steps)).mean(axis=1)
        for job in np.flatnonzero(active):
            measured[job][int(middle[job])] = float(acceptance[job])
            if acceptance[job] >= target_acceptance:  # NaN fails
                passing[job] = middle[job]
            else:
                failing[job] = middle[job]
    results = []
    for job in range(num_jobs):
        met = bool(passing[job] >= 0)
        chosen = candidates[job, passing[job]] if met else candidates[job, 0]
        tried = np.array(sorted(measured[job]))
        num_chains = jax.tree_util.tree_leaves(positions[job])[0].shape[0]
        results.append(StepSizeCalibration(float(chosen), candidates[job, tried],
                                           np.array([measured[job][i] for i in tried]), target_acceptance,
                                           num_steps, num_chains, met))
    return results


class GradientStatistics(NamedTuple):
    """Means over a pilot's or a main run's draws: E|ĝ_b(w)|² and the LLC-type statistic
    E[nβ (L_b(w) − L_b(w*))].

    `largest_share` is max_i |ĝ_i|² / Σ_i |ĝ_i|² over `num_points` draws (NaN for a pilot): near 1/N for
    a light-tailed gradient, large when a few points dominate E|ĝ|², as under a prior |w|^h with
    h <= 1, whose E|∇log φ|² = ∫ h²/w² |w|^h dw is infinite."""

    mean_squared_gradient: float
    mean_scaled_loss_gap: float
    largest_share: float = float("nan")
    num_points: int = 0


def _pilot_gradient_statistics(posterior, positions, keys, step_size, *, batch_size, num_steps):
    kernel = sgld(posterior, step_size, batch_size, mala_diagnostic=False)

    def one_chain(position, chain_key):
        def body(position, step_index):
            state, info = kernel.step(jax.random.fold_in(chain_key, step_index), SGLDState(position))
            gap = posterior.nbeta * (info.loss - info.loss_at_center)
            return state.position, (info.grad_squared_norm, gap)

        _, (squared, gap) = jax.lax.scan(body, position, jnp.arange(num_steps, dtype=jnp.int32))
        return squared[num_steps // 2:].mean(), gap[num_steps // 2:].mean()

    squared, gap = jax.vmap(one_chain)(positions, keys)
    return jnp.mean(squared), jnp.mean(gap)


@partial(jax.jit, static_argnames=("batch_size", "num_steps"))
def _pilot_gradient_statistics_jobs(posteriors, positions, keys, step_sizes, *, batch_size, num_steps):
    return vmap_over_jobs(partial(_pilot_gradient_statistics, batch_size=batch_size, num_steps=num_steps),
                          (0, 0, 0, 0))(posteriors, positions, keys, step_sizes)


def pilot_gradient_statistics_jobs(posteriors: Sequence[TemperedPosterior], positions: Sequence[Params],
                                   keys: Sequence[PRNGKeyArray], *, batch_size: int | None,
                                   step_sizes: Sequence[float], num_steps: int) -> list[GradientStatistics]:
    """Per job, `GradientStatistics` over the second half of an SGLD pilot at its step size from
    its positions (leading chain axis); J posteriors of one model structure in one compiled call."""
    num_chains = jax.tree_util.tree_leaves(positions[0])[0].shape[0]
    chain_keys = jnp.stack([jax.random.split(key, num_chains) for key in keys])
    squared, gap = _pilot_gradient_statistics_jobs(stack_jobs(posteriors), stack_jobs(positions), chain_keys,
                                                   jnp.asarray(step_sizes, dtype=jnp.float32), batch_size=batch_size,
                                                   num_steps=num_steps)
    return [GradientStatistics(float(s), float(g)) for s, g in zip(np.asarray(squared), np.asarray(gap))]


def absolute_step_size_bias(step_size: float, statistics: GradientStatistics) -> float:
    """Predicted bias of the LLC, in λ's units, from SGLD's discretisation and minibatch noise:

        ε E|ĝ_b(w)|² / 4,

    from the Gaussian case: in a direction of curvature h with minibatch gradient variance s²,
    SGLD's stationary variance is (1 + ε s²/2) / (h (1 − ε h/2)), so that direction's share 1/2
    of λ̂ grows by ≈ ε (h + s²)/4; summed over directions that is ε (tr H + tr Cov ĝ)/4, and
    E_p[tr H] = E_p|∇U|² (Stein's identity), so E_p|ĝ_b|² = E_p[tr H] + E_p[tr Cov ĝ]. Measured
    on SGLD's own draws (whose variance it inflates) it is that share's excess exactly, not only
    to first order; on a singular posterior it is a first-order prediction.
    """
    return step_size * statistics.mean_squared_gradient / 4.0


def step_size_bias(step_size: float, statistics: GradientStatistics, floor: float = 0.05) -> float:
    """Predicted relative bias of the LLC, b(ε) ≈ ε E|ĝ_b(w)|² / (4 λ̂): `absolute_step_size_bias`
    over λ̂, the statistics' E[nβ (L_b − L_b(w*))] floored at `floor`."""
    return absolute_step_size_bias(step_size, statistics) / max(statistics.mean_scaled_loss_gap, floor)


def calibrate_sgld_step_sizes(posteriors: Sequence[TemperedPosterior], positions: Sequence[Params],
                              pilot_keys: Sequence[PRNGKeyArray], gradient_keys: Sequence[PRNGKeyArray], *,
                              batch_size: int | None, target_acceptance: float, bias_tolerance: float,
                              pilot_steps: int, bias_floor: float = 0.05,
                              pilot_gradient_statistics: Callable[..., list[GradientStatistics]] | None = None,
                              ) -> list[dict]:
    """The two-stage SGLD step size of every job, ε = min(ε_MALA, ε_bias), with its record.

    ε_MALA = `calibrate_step_sizes` (the largest ratio-2 grid ε whose `pilot_steps`-step pilot from
    `positions` has mean MALA acceptance >= `target_acceptance`, keys `pilot_keys`); a pilot of
    4 · `pilot_steps` steps at ε_MALA / 4 (keys `gradient_keys`) measures E|ĝ_b|² and
    λ̂ = E[nβ (L_b(w) − L_b(w*))], and ε_bias is the ε whose predicted relative SGLD bias

        b(ε) = ε E|ĝ_b|² / (4 max(λ̂, bias_floor))

    equals `bias_tolerance`. Used by `slt.estimate` (every job) and `slt.trajectory` (its one
    calibration). `pilot_gradient_statistics` replaces `pilot_gradient_statistics_jobs` (same
    signature; planted-bug tests). Returns per job the `StepSizeCalibration` record (`to_json`, with
    `step_size` = the chosen ε) plus mala_step_size, bias_step_size, bias_tolerance,
    pilot_mean_squared_gradient and pilot_llc. Raises ValueError as `calibrate_step_sizes`.
    """
    measure = pilot_gradient_statistics_jobs if pilot_gradient_statistics is None else pilot_gradient_statistics
    calibrations = calibrate_step_sizes(posteriors, positions, pilot_keys, batch_size=batch_size,
                                        target_acceptance=target_acceptance, num_steps=pilot_steps)
    mala_step_sizes = [calibration.step_size for calibration in calibrations]
    pilots = measure(posteriors, positions, gradient_keys, batch_size=batch_size,
                     step_sizes=[e / 4 for e in mala_step_sizes], num_steps=4 * pilot_steps)
    records = []
    for calibration, mala_step_size, pilot in zip(calibrations, mala_step_sizes, pilots):
        bias_step_size = bias_tolerance * mala_step_size / max(step_size_bias(mala_step_size, pilot, bias_floor),
                                                               1e-300)
        chosen = min(mala_step_size, bias_step_size)
        records.append({
            **calibration._replace(step_size=float(chosen)).to_json(), "mala_step_size": mala_step_size,
            "bias_step_size": bias_step_size, "bias_tolerance": bias_tolerance,
            "pilot_mean_squared_gradient": pilot.mean_squared_gradient, "pilot_llc": pilot.mean_scaled_loss_gap})
    return records

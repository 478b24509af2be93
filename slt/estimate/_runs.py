"""One SGLD run per job: calibrate ε, run, retry a divergence with ε/4, refine a biased run.

Calibration (`slt.estimate._calibration`): ε_MALA = the largest ε on a ratio-2 grid whose pilot
MALA acceptance is >= `target_acceptance` (a stability bound); a pilot at ε_MALA / 4 measures
E|ĝ_b|² and λ̂, and ε = min(ε_MALA, ε_bias) with the predicted relative SGLD bias
ε E|ĝ_b|² / (4 λ̂) equal to `bias_tolerance` at ε_bias. The prediction is recomputed on the main
run's own draws; above `REFINE_BIAS_FACTOR` × the tolerance the run is continued from its final
positions at the ε that meets it (`refined_runs`): the pilot measures E|ĝ|² next to w*, and the
chains spread to where the curvature across the singular set is larger (benchmarks/results/accuracy_llc.md).
"""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from slt.estimate._calibration import (
    GradientStatistics,
    calibrate_sgld_step_sizes,
    pilot_gradient_statistics_jobs,
    step_size_bias,
)
from slt.estimate._settings import MAX_STEP_SIZE_REFINEMENTS, EstimateSettings
from slt.run import NonFiniteError, sample_jobs
from slt.samplers import TemperedPosterior, make_sampler

MAX_STEP_SIZE_RETRIES = 3  # a divergent main run is retried with ε/4, at most this often
# A calibrated run whose bias predicted on its own draws exceeds this many times the tolerance is
# continued at a smaller ε (`refined_runs`).
REFINE_BIAS_FACTOR = 1.5
# A refined run at ε' = ε_0 / k records its draws min(⌈k⌉, this) times as far apart, to keep the
# first run's Langevin time (`refined_runs`).
MAX_REFINED_LENGTHENING = 4
# One draw carrying more than this share of Σ|ĝ|² means E|ĝ|² (and so the predicted bias) is not
# estimable (benchmarks/heavy_tail_screen.py).
MAX_GRADIENT_SHARE = 0.25
# A run refined after a heavy-tailed stage must come down to this share to clear the screen: a tail that did
# not shrink with ε is the target's. Light-tailed runs measured <= 0.10 (benchmarks/heavy_tail_screen.py,
# benchmarks/results/readme_example_reliability.md); |w|^h-prior cases refined at ε/2 gave 0.24, 0.72 but
# also 0.064, which is why those are not refined at all (`prior_score_unbounded`).
LIGHT_TAILED_SHARE = MAX_GRADIENT_SHARE / 2
# The share is taken over every k-th draw, k = draws // this (1000-1999 draws per chain).
GRADIENT_SHARE_DRAWS_PER_CHAIN = 1000


class EstimateHooks(NamedTuple):
    """Replaceable pieces of the pipeline, for planted-bug tests and studies (defaults: the real ones).

    make_posterior : called with `TemperedPosterior`'s keyword arguments for every posterior sampled.
    pilot_gradient_statistics : `slt.estimate.pilot_gradient_statistics_jobs`'s signature.
    """

    make_posterior: Callable[..., TemperedPosterior] = TemperedPosterior
    pilot_gradient_statistics: Callable[..., list[GradientStatistics]] = pilot_gradient_statistics_jobs


DEFAULT_HOOKS = EstimateHooks()


class Run(NamedTuple):
    """One SGLD run at one temperature: its trace, calibration record, ε, lengths, and bias check."""

    trace: Any
    calibration: dict | None
    step_size: float
    num_steps: int
    num_burnin: int
    divergences: tuple[str, ...] = ()
    predicted_bias: float = float("nan")
    gradient_statistics: Any = None
    # the runs this one continues from (step-size refinement), each as long as this one: their ε,
    # predicted bias and LLC
    earlier_runs: tuple[dict, ...] = ()

    @property
    def langevin_time(self) -> float:
        """steps × ε summed over this run and the runs it continues."""
        return self.num_steps * self.step_size + sum(earlier["num_steps"] * earlier["step_size"]
                                                     for earlier in self.earlier_runs)

    @property
    def first_step_size(self) -> float:
        """ε of the first main run (before any refinement)."""
        return self.earlier_runs[0]["step_size"] if self.earlier_runs else self.step_size


def sgld_runs(posteriors, initial_positions, keys, settings: EstimateSettings, *, hooks: EstimateHooks = DEFAULT_HOOKS,
              keep_positions: bool = False, bias_floor: float = 0.05, trace_sinks=None) -> list["Run | ValueError"]:
    """Per job: calibrate ε (unless given), then the main run; a divergent run is retried with ε/4.

    The jobs are posteriors of one model structure (same loss, prior, shapes; data, nβ, w* and
    γ may differ); every stage runs them packed into one compiled call (`slt.sample_jobs`,
    `calibrate_step_sizes`), so J small jobs cost about one job's dispatches. Job j's numbers
    depend on its own key only, up to float32 rounding where the model's matrix products are
    batched over jobs (bitwise for elementwise models). A job that fails gets a ValueError in
    its place; the others are unaffected.

    Calibration: ε_MALA = the largest grid ε with pilot MALA acceptance >= `target_acceptance`
    (a stability bound), then a pilot at ε_MALA/4 measures E|ĝ_b|² and λ̂, and
    ε = min(ε_MALA, ε_bias) with `step_size_bias(ε_bias) = bias_tolerance`. A run whose bias
    predicted on its own draws is well above the tolerance is continued at a smaller ε
    (`refined_runs`).
    """
    batch_size, step_size, bias_tolerance = settings.minibatch_size, settings.step_size, settings.bias_tolerance
    num_jobs = len(posteriors)
    # (the fourth key once drew the minibatches of the bias check; kept so the chains stay the same)
    key_pilot, key_gradient_pilot, key_sample, _ = (list(k) for k in zip(*(jax.random.split(key, 4) for key in keys)))
    records: list[dict | None] = [None] * num_jobs
    if step_size is None:
        records = calibrate_sgld_step_sizes(posteriors, initial_positions, key_pilot, key_gradient_pilot,
                                            batch_size=batch_size, target_acceptance=settings.target_acceptance,
                                            bias_tolerance=bias_tolerance, pilot_steps=settings.pilot_steps,
                                            bias_floor=bias_floor,
                                            pilot_gradient_statistics=hooks.pilot_gradient_statistics)
        step_sizes = [record["step_size"] for record in records]
    else:
        step_sizes = [step_size] * num_jobs
    num_burnin, num_steps = settings.num_burnin, settings.num_steps
    lengths = dict(num_chains=settings.num_chains, num_steps=num_steps, num_burnin=num_burnin,
                   thinning=settings.thinning, record_positions=keep_positions)

    def sampler_at(job, epsilon):
        return make_sampler("sgld", posteriors[job], step_size=epsilon, batch_size=batch_size)

    traces = sample_jobs([sampler_at(job, e) for job, e in enumerate(step_sizes)], initial_positions, key_sample,
                         **lengths)
    runs = []
    for job, (_posterior, trace, epsilon) in enumerate(zip(posteriors, traces, step_sizes)):
        divergences = []
        while isinstance(trace, NonFiniteError):
            if records[job] is None:
                trace = ValueError(f"SGLD diverged with the given step_size = {epsilon:g}: {trace}")
                break
            divergences.append(f"ε = {epsilon:.3g} diverged (chain {trace.chain}, step {trace.step}); retried with ε/4")
            if len(divergences) > MAX_STEP_SIZE_RETRIES:
                trace = ValueError(f"SGLD diverged {len(divergences)} times after step-size calibration: "
                                   f"{'; '.join(divergences)}")
                break
            epsilon = epsilon / 4
            trace = sample_jobs([sampler_at(job, epsilon)], [initial_positions[job]], [key_sample[job]], **lengths)[0]
        if isinstance(trace, ValueError):
            runs.append(trace)
            continue
        checked = drawn_gradient_statistics(trace)
        runs.append(Run(trace, records[job], float(epsilon), num_steps, num_burnin, tuple(divergences),
                         step_size_bias(epsilon, checked, bias_floor), checked))
    if step_size is None:  # a given ε is the caller's to keep
        runs = refined_runs(runs, sampler_at, key_sample, lengths, bias_tolerance, bias_floor,
                            settings.max_step_size_refinements, [prior_score_unbounded(p) for p in posteriors])
    for job, (posterior, run) in enumerate(zip(posteriors, runs)):
        if trace_sinks is not None and isinstance(run, Run):
            trace_sinks[job].append((f"nbeta={float(posterior.nbeta):.6g}", run.trace._replace(positions=None)))
    return runs


def refined_runs(runs, sampler_at, keys, lengths, bias_tolerance: float, bias_floor: float,
                 max_refinements: int = MAX_STEP_SIZE_REFINEMENTS, prior_scores_unbounded=None) -> list:
    """Step-size refinement: a calibrated run whose bias predicted on its own draws exceeds
    `REFINE_BIAS_FACTOR` × `bias_tolerance` becomes the burn-in of a rerun at the ε that meets the
    tolerance, ε' = ε · tolerance / predicted bias, started from its final positions (so the chains
    need not spread out from w* again); at most `max_refinements` times.

    The rerun records as many draws, `refined_lengthening(ε_0 / ε')` times as far apart (ε_0: the
    first main run's ε), so it covers the first run's Langevin time (draws × thinning × ε) up to
    that cap: a rerun of the same length at an ε k times smaller covers 1/k of it, and its chains
    disagree (benchmarks/results/readme_example_reliability.md).

    A run with a heavy-tailed gradient (`MAX_GRADIENT_SHARE`) is refined too, whatever its
    predicted bias, at ε' <= ε/2 (`refined_step_size_ratio`): the few draws that dominate Σ|ĝ|²
    are where the step was too large for the local curvature (a chain far along a stiff arm of
    the singular set), and such a tail shrinks with ε. Not where the prior is known to make the
    tail the target's (`prior_score_unbounded`: a |w|^h prior with h <= 1 sampled in w); for
    other targets the screen is applied again to the rerun's own draws, and a tail that did not
    shrink keeps the run's `reasons` entry (`tail_persisted`).

    Why: the pilot measures E|ĝ|² next to w*, but the chains spread along the singular set to
    where the transverse curvature, and so the bias, is larger (reduced-rank regression: the
    curvature in B grows with |A|²). A rerun that diverges keeps the run it continued.
    """
    runs = list(runs)
    given_up = set()
    prior_scores_unbounded = [False] * len(runs) if prior_scores_unbounded is None else list(prior_scores_unbounded)
    for refinement in range(1, max_refinements + 1):
        pending = [job for job, run in enumerate(runs) if isinstance(run, Run) and job not in given_up
                   and refinable(run, bias_tolerance, prior_scores_unbounded[job])]
        if not pending:
            break
        step_sizes = {job: runs[job].step_size * refined_step_size_ratio(runs[job], bias_tolerance) for job in pending}
        factors = {job: refined_lengthening(runs[job].first_step_size / step_sizes[job]) for job in pending}
        for factor in sorted(set(factors.values())):  # one compiled call per run length
            group = [job for job in pending if factors[job] == factor]
            group_lengths = {**lengths, "thinning": lengths["thinning"] * factor,
                             "num_steps": lengths["num_burnin"] + (lengths["num_steps"] - lengths["num_burnin"]) * factor}
            traces = sample_jobs([sampler_at(job, step_sizes[job]) for job in group],
                                 [runs[job].trace.final_positions for job in group],
                                 [jax.random.fold_in(keys[job], refinement) for job in group], **group_lengths)
            for job, trace in zip(group, traces):
                previous, epsilon = runs[job], step_sizes[job]
                if isinstance(trace, NonFiniteError):
                    given_up.add(job)
                    runs[job] = previous._replace(divergences=previous.divergences + (
                        f"the refined ε = {epsilon:.3g} diverged (chain {trace.chain}, step {trace.step}); kept the "
                        f"run at ε = {previous.step_size:.3g}",))
                    continue
                checked = drawn_gradient_statistics(trace)
                earlier = {"step_size": previous.step_size, "num_steps": previous.num_steps,
                           "predicted_step_size_bias": previous.predicted_bias,
                           "llc": previous.gradient_statistics.mean_scaled_loss_gap,
                           "largest_gradient_share": previous.gradient_statistics.largest_share}
                runs[job] = previous._replace(
                    trace=trace, step_size=float(epsilon), predicted_bias=step_size_bias(epsilon, checked, bias_floor),
                    num_steps=group_lengths["num_steps"],
                    gradient_statistics=checked, earlier_runs=previous.earlier_runs + (earlier,))
    return runs


def prior_score_unbounded(posterior) -> bool:
    """The posterior's prior is known to have E|∇log φ|² = ∞ where it is sampled: a |w|^h prior with
    0 < h <= 1 in w itself (`toy_models.PowerGaussianPrior` offers sampling coordinates only then)."""
    coordinates = getattr(getattr(posterior, "prior", None), "sampling_coordinates", None)
    return callable(coordinates) and coordinates() is not None


def refinable(run: Run, bias_tolerance: float, prior_unbounded: bool) -> bool:
    """Refine when the predicted bias exceeds `REFINE_BIAS_FACTOR` × tolerance and can be trusted,
    or when the gradient is heavy-tailed and the tail may be the step's (not where the prior is
    known to make it the target's: there a smaller ε only lets the chains nearer the pole)."""
    if heavy_tailed(run.gradient_statistics):
        return not prior_unbounded
    return run.predicted_bias > REFINE_BIAS_FACTOR * bias_tolerance


def refined_step_size_ratio(run: Run, bias_tolerance: float) -> float:
    """ε'/ε of a refinement: tolerance / predicted bias, and at most 1/2 for a heavy-tailed run (whose
    prediction may be low while a few draws are unstable: halving ε is the least that shows whether
    the tail is the step's)."""
    ratio = bias_tolerance / run.predicted_bias
    return min(ratio, 0.5) if heavy_tailed(run.gradient_statistics) else ratio


def refined_lengthening(step_size_ratio: float) -> int:
    """How many times longer a refined run is than the first: ⌈ε_0 / ε'⌉, between 1 and
    `MAX_REFINED_LENGTHENING` (the cap bounds the cost at that many first runs per refinement)."""
    return int(min(max(math.ceil(step_size_ratio - 1e-9), 1), MAX_REFINED_LENGTHENING))


def heavy_tailed(statistics: GradientStatistics | None) -> bool:
    """One draw carries more than `MAX_GRADIENT_SHARE` of Σ|ĝ|²: the predicted bias is not to be trusted."""
    return statistics is not None and statistics.largest_share > MAX_GRADIENT_SHARE


def tail_persisted(run: Run) -> bool:
    """An earlier stage of `run` was `heavy_tailed` and its refined run's largest share is still above
    `LIGHT_TAILED_SHARE`: the tail did not go away with a smaller ε, so it is the target's (e.g. a
    |w|^h prior with h <= 1 sampled in w), not the step's, and the predicted bias stays untrustworthy."""
    return (any(earlier["largest_gradient_share"] > MAX_GRADIENT_SHARE for earlier in run.earlier_runs)
            and run.gradient_statistics.largest_share > LIGHT_TAILED_SHARE)


def drawn_gradient_statistics(trace) -> GradientStatistics:
    """The bias check's statistics on the main run's own draws, from what SGLD records per draw:
    E|ĝ_b(w)|² (`grad_squared_norm`, on the step's own minibatch), E[nβ (L_b(w) − L_b(w*))], and
    the largest share max|ĝ|² / Σ|ĝ|²: the means over every recorded draw, the share over every k-th
    draw, k = draws // `GRADIENT_SHARE_DRAWS_PER_CHAIN` (so 1000–1999 per chain, or all where fewer)
    (see `MAX_GRADIENT_SHARE`)."""
    per_chain = np.asarray(trace.info["grad_squared_norm"], np.float64)
    squared = per_chain.ravel()
    gap = trace.nbeta * (np.asarray(trace.loss, np.float64) - np.asarray(trace.loss_at_center, np.float64)).ravel()
    stride = max(1, per_chain.shape[1] // GRADIENT_SHARE_DRAWS_PER_CHAIN)
    screened = per_chain[:, stride - 1::stride]
    return GradientStatistics(float(squared.mean()), float(gap.mean()), float(screened.max() / screened.sum()),
                              int(screened.size))


def jitter_start(model, key, num_chains: int, nbeta: float):
    """w* + N(0, (0.1² / nβ) I) per chain: inside the posterior's bulk, and off w* itself, where a
    prior |w_j|^h (h > 0) has log φ = −∞."""
    leaves, treedef = jax.tree_util.tree_flatten(model.w_star)
    keys = jax.random.split(key, len(leaves))
    scale = 0.1 / math.sqrt(nbeta)
    return treedef.unflatten([
        leaf[None] + scale * jax.random.normal(k, (num_chains, *leaf.shape), leaf.dtype) for leaf, k in zip(leaves, keys)
    ])


def prior_start(model, key, num_chains: int):
    draws = [model.sample_prior(k) for k in jax.random.split(key, num_chains)]
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *draws)


def sgld_run(posterior, initial_positions, key, settings: EstimateSettings, *, hooks: EstimateHooks = DEFAULT_HOOKS,
             trace_sink: list | None = None, **options) -> Run:
    """One `sgld_runs` job; raises its error."""
    run = sgld_runs([posterior], [initial_positions], [key], settings, hooks=hooks,
                    trace_sinks=None if trace_sink is None else [trace_sink], **options)[0]
    if isinstance(run, Exception):
        raise run
    return run

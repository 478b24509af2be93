"""`estimate`: one call from a registry model to a learning-coefficient estimate with its error bar.

    result = slt.estimate(toy_models.get("normal_crossing", powers=(1, 1)), method="llc",
                          key=jax.random.key(0))
    result.estimate, result.std_error, result.unreliable, result.to_json()

Conventions (`slt._posterior`): t = nβ with n the FULL data size; every chain runs SGLD

    w ← w + ε ∇log p̂(w) + √(2ε) ξ,  ∇log p̂(w) = −nβ ∇L_b(w) − γ (w − w*) + ∇log φ(w),

on minibatches b of `batch_size` indices (default 1000), with ε calibrated in two stages
(`slt._calibration`): ε_MALA = the largest ε on a ratio-2 grid whose pilot MALA acceptance is
>= 0.9 (a stability bound), then ε = min(ε_MALA, ε_bias) with ε_bias the step whose predicted
relative SGLD bias ε E|ĝ_b|² / (4 λ̂) is 2 % (measured on a pilot at ε_MALA / 4). The second stage
is needed: in low dimension MALA acceptance is a weak proxy for SGLD's bias (normal crossing
w1²w2², nβ = 1000: acceptance 0.97 at εnβ = 1 gave λ̂ = 0.527 ± 0.013 against the exact 0.381;
acceptance 0.996 at εnβ = 0.1 still gave 0.411 ± 0.010; εnβ = 0.03 gave 0.385 ± 0.014). The
prediction is recomputed on the main run's own draws and reported (`predicted_step_size_bias`);
above 3 % the run is continued from its final positions at the ε that meets 2 % (`_refined_runs`;
`step_size_refinements` in the diagnostics), since the chains spread to where the curvature
across the singular set can be larger than at w* (`make accuracy`, before → after: three
reduced-rank models with λ = 6 read 6.56, 6.63, 6.67 → 5.99, 6.28, 6.07); above 10 % the result
is marked unreliable.

Run length: each chain records `DEFAULT_NUM_DRAWS` = 4000 draws, one per `DEFAULT_THINNING` = 10
steps, after num_draws · thinning / 4 burn-in steps: 50 000 steps. The chains start at w*, but a
singular posterior reaches along the singular set out to the prior's scale, and getting there takes
a Langevin time (steps × ε) of order the prior variance: 10⁴ to 10⁵ steps at the calibrated ε.
Runs too short for that read low (before the step-size refinement, 1000 draws at thinning 10,
`python benchmarks/accuracy.py --thinning 10 --draws 1000`, against 1000 at thinning 40: rrr(5,3,5,0)
6.16 against 6.43 with λ = 6.5, tanh(H=3) 0.60 against 0.75 with λ = 5/6; median error against the
exact λ(nβ) 6.3 % against 3.0 %, coverage 87 % against 93 %). The diagnostics report
`langevin_time` and warn below 1. Recording every 10th step rather than every 40th costs nothing
and keeps information that thinning throws away: over the same 50 000 steps the standard error is
1.16–1.60 times smaller (`python benchmarks/thinning_study.py`).

Sampling coordinates: a prior |w_j|^h_j with h_j <= 1 has the score h_j / w_j, with E|h_j / w_j|² = ∞,
so SGLD's drift is unbounded where the posterior has mass and its bias cannot be predicted. Such
coordinates are sampled in u_j = sign(w_j)|w_j|^(h_j+1) (`ToyModel.in_sampling_coordinates`,
`toy_models.PowerPriorCoordinates`), where the prior's score is bounded; E_β[L_n] and so the LLC
are the same in either coordinates, and kept traces are mapped back to w. Not with γ > 0 (a term
in w). `make accuracy`, before → after: w1³w2 with prior |w1 w2| 0.281 ± 0.016 (not flagged) →
0.295 ± 0.016 against its data set's exact λ_n(1000) = 0.318.

Methods
-------
llc
    λ̂(t) = nβ (E_β[L_n(w)] − L_n(w*)) at w* (Lau et al. 2023), from the paired same-batch
    differences L_b(w) − L_b(w*) (`estimators.llc`). Default t = nβ = min(1000, n / log n), i.e.
    β = min(1000 / n, 1 / log n), with the model prior φ and no extra localisation (γ = 0): the
    posterior whose exact population-limit value λ(t) = t E_t[K] `toy_models.finite_temperature_rlct`
    computes for d <= 2 (reported as `exact_at_nbeta`).
wbic
    WBIC = E_{β*}[n L_n] at β* = 1/log n on the global posterior (model prior, γ = 0, chains
    started from prior draws), as n L_n(w*) + E[n (L_b(w) − L_b(w*))] (the same-batch difference
    is a control variate; `estimators.wbic`). Also reported: the implied λ̂ = (WBIC − n L_n(w*)) / log n.
rlct
    LLCs at several t_k (default 5 values geometrically from t_max/30 to t_max = min(3000, n/log n)),
    then `estimators.fit_rlct_multiplicity(second_order=True)`: λ̂(t) = λ − (m−1)/log t + b/log² t.
    The estimate is λ averaged over the shapes (integer m, with and without b) with Akaike
    weights, and its standard error includes the spread between shapes (`model_weights` in the
    diagnostics); λ at the best integer m and the continuous m̂ ± se are reported too. The
    extrapolation amplifies the noise of each λ̂(t_k) several-fold: `benchmarks/rlct_fit_study.py`.
ti
    The free energy F_n = −log ∫ φ(w) Π_i p(X_i|w) dw by thermodynamic integration
    (`estimators.free_energy_ti`): F_n = n L_n(w*) + ∫_0^1 E_β[n (L_n(w) − L_n(w*))] dβ over the
    geometric ladder `estimators.temperature_ladder(n, 20)` (β = 0: independent prior draws; each
    β > 0: an SGLD run of the global posterior, γ = 0, chains started from prior draws). The
    estimate is F_n; the diagnostics carry F_n − n L_n(w*) (≈ λ log n − (m−1) log log n + O(1)),
    its crude λ̂ = (F_n − n L_n(w*)) / log n, the ladder's discretisation error, and for d <= 2 the
    exact population-limit value −log ∫ φ e^{−n K} by quadrature (`exact_free_energy_minus_n_loss`).
waic
    WAIC per datum at β = 1 (Watanabe 2010; `estimators.waic_from_summaries`): T_n + V_n / n from
    the posterior draws (thinned to at most 100 per chain) over all n data, in chunks. Its error bar
    is WAIC's data-sampling standard error; the singular fluctuation ν̂ = V_n / 2 comes with its
    MCSE, and n (WAIC − S_n), with S_n = L_n(w*) the empirical entropy, whose expectation is
    λ + o(1) (E[WAIC] = E[G_n] + S and E[G_n] = λ / n).

Population sampling
-------------------
With `population=True` (llc and rlct, registry models) every SGLD minibatch is fresh data with
the label noise integrated out (`ToyModel.sample_expected_data`: inputs x ~ N(0, I), targets
f(w*, x)), so nβ(L_b(w) − L_b(w*)) is an unbiased estimate of tK(w) and the chains sample
exp(−tK(w)) φ(w): the estimate is of the population λ(t) that `exact_at_nbeta` computes, with no
data-set fluctuation (item 2 below) and t not bounded by n. Integrating out the label noise removes
its share of the gradient noise and of each draw's loss-gap variance (w1²w2² at t = 10⁵, 4 chains ×
1000 draws: relative se 32 % with noisy fresh labels against 6.6 % with expected ones;
`benchmarks/population_sampling.py`, which also compares minibatches of 100 and 1000).

Limitations
-----------
The reported standard error is Monte-Carlo error at the stated nβ. It does NOT cover
(1) the finite-temperature bias λ − λ(t), which for singular models is large at reachable t
(normal crossing w1²w2², λ = 1/2, m = 2: λ(10³) = 0.381; w1²w2⁴, λ = 1/4, m = 1: λ(10³) = 0.220);
(2) the data-set fluctuation (none with `population=True`): the run sees L_n, not K, and measures at
the true w*. For a regular
model this is a bias ≈ −β d/2 (−0.1 % at the defaults n = 10⁶, β = 10⁻³); for a singular model the
term −f(w) S_xy/n of L_n(w) − L_n(w*) is first order, so λ_n(t) − λ(t) is of relative size ~√β
with a sign set by the data (K = w⁴/2 at t = 1000: +13.5 % at n = 10⁵, +4 % at n = 10⁶);
(3) SGLD's step-size and minibatch bias: predicted per run on its own draws
(`predicted_step_size_bias`, ε E|ĝ|²/4λ̂) and held near 2 % by the calibration and its refinement,
but not corrected for: its absolute size ε E|ĝ|²/4 is the result's `systematic_error`, which widens
the reported `interval` (so the interval covers (3) as well as the Monte-Carlo error).
The `rlct` fit removes the (m−1)/log t term but not power-law corrections a t^(−g) (m = 1).
"""

import functools
import inspect
import math
import time
from fractions import Fraction
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

import estimators
import toy_models
from slt._calibration import (
    GradientStatistics,
    absolute_step_size_bias,
    calibrate_step_sizes,
    pilot_gradient_statistics_jobs,
    step_size_bias,
)
from slt._driver import NonFiniteError, make_sampler, sample_jobs
from slt._posterior import TemperedPosterior, watanabe_beta

METHODS = ("llc", "wbic", "rlct", "ti", "waic")
IMPLEMENTED_METHODS = METHODS
DEFAULT_TI_TEMPERATURES = 20
WAIC_MAX_DRAWS_PER_CHAIN = 100  # draws per chain the n-sized WAIC sums run over
WAIC_CHUNK_SIZE = 20_000
DEFAULT_NUM_DATA = 1_000_000
# 4000 draws × 10 steps: why this length, and why not 1000 × 40: "Run length" in the module docstring
DEFAULT_NUM_DRAWS = 4000
DEFAULT_THINNING = 10
# Below this Langevin time (steps × ε, in units of a unit-variance prior's relaxation time) the
# result warns that the directions only the prior confines may not have equilibrated.
MIN_LANGEVIN_TIME = 1.0
DEFAULT_LLC_NBETA = 1000.0
DEFAULT_RLCT_MAX_NBETA = 3000.0
DEFAULT_POPULATION_RLCT_NBETAS = (100.0, 30_000.0)
DEFAULT_BATCH_SIZE = 1000
MAX_STEP_SIZE_RETRIES = 3  # a divergent main run is retried with ε/4, at most this often
# A calibrated run whose bias predicted on its own draws exceeds this many times the tolerance is
# continued at a smaller ε (`_refined_runs`), at most MAX_STEP_SIZE_REFINEMENTS times.
REFINE_BIAS_FACTOR = 1.5
MAX_STEP_SIZE_REFINEMENTS = 2
DEFAULT_BIAS_TOLERANCE = 0.02  # calibrated ε targets a predicted relative SGLD bias of 2 %
MAX_PREDICTED_STEP_SIZE_BIAS = 0.1  # above this on the run's own draws the result is unreliable
# One draw carrying more than this share of Σ|ĝ|² over all recorded draws means E|ĝ|² (and so
# the predicted bias) is not estimable. Measured over all draws (4 chains × 1000–2000): 0.32,
# 0.04, 0.48 on w1²w2² with prior |w1 w2| (seeds 0–2; a miss on seed 1), 0.013–0.050 on w1²w2⁴ at
# nβ = 100 (5 seeds), 0.002 on regular(d=2). Over 512 of the draws, as first built, it was far
# noisier: 0.07–0.61 on the first model and up to 0.29 (a false alarm) on the second
# (`benchmarks/heavy_tail_screen.py`).
MAX_GRADIENT_SHARE = 0.25
# The share is taken over 1000–1999 evenly spaced draws per chain (every k-th, k = draws // this),
# the counts it was measured on:
# max/Σ falls as draws are added, so over all 4000 draws of the default run it missed the heavy
# tails above (w1²w2² with prior |w1 w2| on seed 0, w1³w2 with prior |w1 w2| sampled in w). At the
# default 4000 × 10 the screened draws are every 4th: the steps 1000 draws at thinning 40 recorded.
GRADIENT_SHARE_DRAWS_PER_CHAIN = 1000
INTERVAL_Z = 1.96  # the reported interval is estimate ± (1.96 standard errors + systematic_error)

INTERVAL_NOTE = (
    "estimate ± (1.96 std_error + systematic_error) covers Monte-Carlo error and the predicted SGLD "
    "step-size/minibatch bias ε E|ĝ|²/4 (systematic_error: llc, wbic (× log n), and rlct through its fit; "
    "0 for ti and waic) at the stated nbeta only: not the finite-temperature bias λ − λ(nβ) (see exact_at_nbeta), nor the data-set "
    "fluctuation at the true w* (≈ −β·d/2 for regular models, relative ~√β for singular ones)"
)


class EstimateResult(NamedTuple):
    """One estimate with everything needed to judge it.

    Attributes
    ----------
    model, params : the registry label (`family(k=v, ...)`) and the family parameters.
    method : "llc", "wbic" or "rlct".
    estimate, std_error : λ̂ (llc, rlct) or WBIC (wbic), and its Monte-Carlo standard error.
    systematic_error : llc: the SGLD step-size/minibatch bias predicted on the run's own draws,
        ε E|ĝ|²/4 (`slt._calibration.absolute_step_size_bias`), in the units of `estimate`; wbic: log n
        times that of the run at β* (diagnostics `implied_rlct_systematic_error` is the implied λ's);
        rlct: those of its temperatures carried through the fit (`_fit_systematic_error`); 0 for ti
        and waic. `interval` is estimate ± (1.96 std_error + systematic_error): the bias is a
        first-order prediction whose sign is only known for a Gaussian posterior (upward), so it
        widens both sides.
    true_rlct, multiplicity : the registry's exact λ and m (None where unknown).
    n, nbeta : data size and the inverse temperature t = nβ (for rlct: the largest t of the sweep).
    diagnostics : JSON-ready mapping (reliable, reasons, warnings, R-hat, ESS, MALA acceptance,
        step size, nβ, γ, exact_at_nbeta, ...).
    seconds : wall-clock time of the whole call (compilation included).
    traces : with `estimate(..., keep_traces=True)`, every main SGLD run's `slt.Trace` (losses,
        per-step info, diagnostics; no positions), labelled by its nβ; empty otherwise.
    """

    model: str
    params: Mapping[str, Any]
    method: str
    estimate: float
    std_error: float
    true_rlct: Fraction | None
    multiplicity: int | None
    n: int
    nbeta: float
    diagnostics: Mapping[str, Any]
    seconds: float
    traces: tuple = ()  # with keep_traces=True: (label, slt.Trace) per SGLD run, e.g. ("nbeta=1000", trace)
    systematic_error: float = 0.0

    @property
    def unreliable(self) -> bool:
        return bool(self.diagnostics["reasons"])

    @property
    def interval(self) -> tuple[float, float]:
        half_width = INTERVAL_Z * self.std_error + self.systematic_error
        return (self.estimate - half_width, self.estimate + half_width)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (λ as a float; its exact fraction as `true_rlct_fraction`)."""
        return {
            "model": self.model,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
            "method": self.method,
            "estimate": _finite_or_none(self.estimate),
            "std_error": _finite_or_none(self.std_error),
            "systematic_error": _finite_or_none(self.systematic_error),
            "interval": [_finite_or_none(v) for v in self.interval],
            "true_rlct": None if self.true_rlct is None else float(self.true_rlct),
            "true_rlct_fraction": None if self.true_rlct is None else str(self.true_rlct),
            "multiplicity": self.multiplicity,
            "n": self.n,
            "nbeta": self.nbeta,
            "reliable": not self.unreliable,
            "diagnostics": _jsonable(dict(self.diagnostics)),
            "seconds": self.seconds,
        }

    def summary(self) -> str:
        name = {"wbic": "WBIC", "waic": "WAIC", "ti": "F_n"}.get(self.method, "λ̂")
        systematic = f" ± {self.systematic_error:.2g} (SGLD bias)" if self.systematic_error else ""
        text = (f"{self.model} [{self.method}] {name} = {self.estimate:.5g} ± {self.std_error:.2g}{systematic} "
                f"(n = {self.n}, nβ = {self.nbeta:.4g})")
        if self.true_rlct is not None:
            text += f"; true λ = {self.true_rlct} ({float(self.true_rlct):.4g}), m = {self.multiplicity}"
        exact = self.diagnostics.get("exact_at_nbeta")
        if exact is not None:
            text += f"; exact λ(nβ) = {exact:.4g}"
        if self.unreliable:
            text = "UNRELIABLE " + text + "\n" + "\n".join(f"  reason: {r}" for r in self.diagnostics["reasons"])
        return text

    def __str__(self) -> str:
        return self.summary()


def _finite_or_none(value):
    return float(value) if value is not None and np.isfinite(value) else None


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.floating, float)):
        return _finite_or_none(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# --------------------------------------------------------------------------------------------
# Argument checks


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def resolve_model(model, params: Mapping[str, Any] | None = None) -> toy_models.ToyModel:
    """A `ToyModel`, or a family name plus `params` for `toy_models.get` (errors are ValueErrors)."""
    if isinstance(model, str):
        return toy_models.get(model, **dict(params or {}))
    if params:
        raise ValueError("params is only for a family name; pass the ToyModel alone")
    if not isinstance(model, toy_models.ToyModel):
        raise ValueError(f"model must be a toy_models.ToyModel or a family name, got {type(model).__name__}")
    return model


def default_nbeta(n: int) -> float:
    """The llc default t = nβ = min(1000, n / log n), i.e. β = min(1000/n, 1/log n) <= Watanabe's β*.

    A small β keeps the data-set fluctuation at the true w* small (≈ −β d/2 for regular models,
    relative ~√β for singular ones); t = 1000 is about as cold as SGLD mixes in seconds on the toy
    models (minibatches make the cost independent of n)."""
    return float(min(DEFAULT_LLC_NBETA, n * watanabe_beta(n)))


def packing_pays() -> bool:
    """Whether to pack jobs into one compiled call by default: on accelerators, not on CPU.

    On a CPU the work is the same either way; XLA compiles the nested vmap over jobs and chains
    more slowly, and its code for the batched minibatch gathers is slower at large batches.
    Measured on a 2-core CPU (`benchmarks/batch_speed.py --compare-packing`, 40 llc jobs of 5
    models, 8 seeds each, n = 20000, 2 chains × 500 draws): with minibatch 100, 92 s cold packed
    against 43 s one at a time, and 1.16× the jobs per minute warm; with minibatch 1000, 60 s
    against 36 s cold and 0.30× warm. A GPU runs one small job far below its width, and packing
    is what fills it (not measured here: no GPU was available)."""
    return jax.default_backend() != "cpu"


def default_rlct_nbetas(n: int, num_temperatures: int | None = None, *, population: bool = False) -> np.ndarray:
    """rlct's temperatures: on a data set, 5 from t_max/30 to t_max = min(3000, n/log n); on the
    population (no data-set fluctuation, t unbounded by n), 7 from 100 to 30 000."""
    if population:
        return np.geomspace(DEFAULT_POPULATION_RLCT_NBETAS[0], DEFAULT_POPULATION_RLCT_NBETAS[1],
                            num_temperatures or 7)
    top = min(DEFAULT_RLCT_MAX_NBETA, n * watanabe_beta(n))
    return np.geomspace(top / 30.0, top, num_temperatures or 5)


# --------------------------------------------------------------------------------------------
# One SGLD run at one temperature


class _Run(NamedTuple):
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
        return self.num_steps * (self.step_size + sum(earlier["step_size"] for earlier in self.earlier_runs))


def _sgld_run(posterior, initial_positions, key, *, trace_sink=None, **options) -> _Run:
    """One `_sgld_runs` job; raises its error."""
    run = _sgld_runs([posterior], [initial_positions], [key], trace_sinks=None if trace_sink is None else [trace_sink],
                     **options)[0]
    if isinstance(run, Exception):
        raise run
    return run


def _sgld_runs(posteriors, initial_positions, keys, *, batch_size, num_chains, num_draws, thinning, step_size,
               target_acceptance, pilot_steps, bias_tolerance, keep_positions=False, bias_floor=0.05,
               trace_sinks=None) -> list["_Run | ValueError"]:
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
    (`_refined_runs`).
    """
    num_jobs = len(posteriors)
    # (the fourth key once drew the minibatches of the bias check; kept so the chains stay the same)
    key_pilot, key_gradient_pilot, key_sample, _ = (list(k) for k in zip(*(jax.random.split(key, 4) for key in keys)))
    records: list[dict | None] = [None] * num_jobs
    if step_size is None:
        calibrations = calibrate_step_sizes(posteriors, initial_positions, key_pilot, batch_size=batch_size,
                                            target_acceptance=target_acceptance, num_steps=pilot_steps)
        mala_step_sizes = [calibration.step_size for calibration in calibrations]
        pilots = pilot_gradient_statistics_jobs(posteriors, initial_positions, key_gradient_pilot,
                                                batch_size=batch_size, step_sizes=[e / 4 for e in mala_step_sizes],
                                                num_steps=4 * pilot_steps)
        step_sizes = []
        for job, (calibration, mala_step_size, pilot) in enumerate(zip(calibrations, mala_step_sizes, pilots)):
            bias_step_size = bias_tolerance * mala_step_size / max(step_size_bias(mala_step_size, pilot, bias_floor),
                                                                   1e-300)
            chosen = min(mala_step_size, bias_step_size)
            step_sizes.append(chosen)
            records[job] = {
                **calibration._replace(step_size=float(chosen)).to_json(), "mala_step_size": mala_step_size,
                "bias_step_size": bias_step_size, "bias_tolerance": bias_tolerance,
                "pilot_mean_squared_gradient": pilot.mean_squared_gradient,
                "pilot_llc": pilot.mean_scaled_loss_gap}
    else:
        step_sizes = [step_size] * num_jobs
    num_burnin = max(num_draws * thinning // 4, 1)
    num_steps = num_burnin + num_draws * thinning
    lengths = dict(num_chains=num_chains, num_steps=num_steps, num_burnin=num_burnin, thinning=thinning,
                   record_positions=keep_positions)

    def sampler_at(job, epsilon):
        return make_sampler("sgld", posteriors[job], step_size=epsilon, batch_size=batch_size)

    traces = sample_jobs([sampler_at(job, e) for job, e in enumerate(step_sizes)], initial_positions, key_sample,
                         **lengths)
    runs = []
    for job, (posterior, trace, epsilon) in enumerate(zip(posteriors, traces, step_sizes)):
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
        checked = _drawn_gradient_statistics(trace)
        runs.append(_Run(trace, records[job], float(epsilon), num_steps, num_burnin, tuple(divergences),
                         step_size_bias(epsilon, checked, bias_floor), checked))
    if step_size is None:  # a given ε is the caller's to keep
        runs = _refined_runs(runs, sampler_at, key_sample, lengths, bias_tolerance, bias_floor)
    for job, (posterior, run) in enumerate(zip(posteriors, runs)):
        if trace_sinks is not None and isinstance(run, _Run):
            trace_sinks[job].append((f"nbeta={float(posterior.nbeta):.6g}", run.trace._replace(positions=None)))
    return runs


def _refined_runs(runs, sampler_at, keys, lengths, bias_tolerance: float, bias_floor: float) -> list:
    """Step-size refinement: a calibrated run whose bias predicted on its own draws exceeds
    `REFINE_BIAS_FACTOR` × `bias_tolerance` becomes the burn-in of a rerun at the ε that meets the
    tolerance, ε' = ε · tolerance / predicted bias, started from its final positions (so the chains
    need not spread out from w* again); at most `MAX_STEP_SIZE_REFINEMENTS` times, and not where
    a heavy-tailed gradient makes the prediction untrustworthy (`MAX_GRADIENT_SHARE`; under a
    |w|^h prior a smaller ε only lets the chains nearer the pole of ∇log φ).

    Why: the pilot measures E|ĝ|² next to w*, but the chains spread along the singular set to
    where the transverse curvature, and so the bias, is larger (reduced-rank regression: the
    curvature in B grows with |A|²). A rerun that diverges keeps the run it continued.
    """
    runs = list(runs)
    given_up = set()
    for refinement in range(1, MAX_STEP_SIZE_REFINEMENTS + 1):
        pending = [job for job, run in enumerate(runs) if isinstance(run, _Run) and job not in given_up
                   and run.predicted_bias > REFINE_BIAS_FACTOR * bias_tolerance
                   and not _heavy_tailed(run.gradient_statistics)]
        if not pending:
            break
        step_sizes = [runs[job].step_size * bias_tolerance / runs[job].predicted_bias for job in pending]
        traces = sample_jobs([sampler_at(job, epsilon) for job, epsilon in zip(pending, step_sizes)],
                             [runs[job].trace.final_positions for job in pending],
                             [jax.random.fold_in(keys[job], refinement) for job in pending], **lengths)
        for job, epsilon, trace in zip(pending, step_sizes, traces):
            previous = runs[job]
            if isinstance(trace, NonFiniteError):
                given_up.add(job)
                runs[job] = previous._replace(divergences=previous.divergences + (
                    f"the refined ε = {epsilon:.3g} diverged (chain {trace.chain}, step {trace.step}); kept the run "
                    f"at ε = {previous.step_size:.3g}",))
                continue
            checked = _drawn_gradient_statistics(trace)
            earlier = {"step_size": previous.step_size, "predicted_step_size_bias": previous.predicted_bias,
                       "llc": previous.gradient_statistics.mean_scaled_loss_gap}
            runs[job] = previous._replace(
                trace=trace, step_size=float(epsilon), predicted_bias=step_size_bias(epsilon, checked, bias_floor),
                gradient_statistics=checked, earlier_runs=previous.earlier_runs + (earlier,))
    return runs


def _heavy_tailed(statistics: GradientStatistics | None) -> bool:
    """One draw carries more than `MAX_GRADIENT_SHARE` of Σ|ĝ|²: the predicted bias is not to be trusted."""
    return statistics is not None and statistics.largest_share > MAX_GRADIENT_SHARE


def _drawn_gradient_statistics(trace) -> GradientStatistics:
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


def _jitter_start(model, key, num_chains: int, nbeta: float):
    """w* + N(0, (0.1² / nβ) I) per chain: inside the posterior's bulk, and off w* itself, where a
    prior |w_j|^h (h > 0) has log φ = −∞."""
    leaves, treedef = jax.tree_util.tree_flatten(model.w_star)
    keys = jax.random.split(key, len(leaves))
    scale = 0.1 / math.sqrt(nbeta)
    return treedef.unflatten([
        leaf[None] + scale * jax.random.normal(k, (num_chains, *leaf.shape), leaf.dtype) for leaf, k in zip(leaves, keys)
    ])


def _prior_start(model, key, num_chains: int):
    draws = [model.sample_prior(k) for k in jax.random.split(key, num_chains)]
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *draws)


def _run_diagnostics(run: _Run, estimator_diagnostics, *, treat_escape_as_reason: bool) -> dict[str, Any]:
    sampler_diagnostics = run.trace.diagnostics
    reasons = list(estimator_diagnostics.reasons)
    warnings = list(estimator_diagnostics.warnings) + list(run.divergences)
    for message in sampler_diagnostics.warnings:
        if "MALA acceptance" in message or (treat_escape_as_reason and "escaped" in message):
            reasons.append(message)
        elif "R-hat" not in message and "ESS" not in message:  # those are already the estimator's
            warnings.append(message)
    if run.calibration is not None and not run.calibration["met_target"]:
        reasons.append(
            f"step-size calibration failed: no candidate reached MALA acceptance {run.calibration['target_acceptance']} "
            f"(best {np.max(run.calibration['acceptance']):.3f})"
        )
    statistics = run.gradient_statistics
    if _heavy_tailed(statistics):
        reasons.append(
            f"heavy-tailed gradient: one of {statistics.num_points} checked draws carries "
            f"{statistics.largest_share:.0%} of Σ|ĝ|², so SGLD's step-size bias cannot be predicted (a prior or "
            "loss whose gradient is unbounded near the draws, e.g. a |w|^h prior with h <= 1 sampled in w)"
        )
    if run.predicted_bias > MAX_PREDICTED_STEP_SIZE_BIAS:
        reasons.append(
            f"predicted SGLD step-size/minibatch bias {run.predicted_bias:.1%} of λ̂ > {MAX_PREDICTED_STEP_SIZE_BIAS:.0%} "
            "(ε E|ĝ|² / 4λ̂ on the run's own draws): lower the step size"
        )
    langevin_time = run.langevin_time
    if langevin_time < MIN_LANGEVIN_TIME:
        warnings.append(
            f"the chains ran a Langevin time of {langevin_time:.2g} (steps × ε), under the relaxation time 1 of a "
            "unit-variance prior direction: directions along the singular set that only the prior confines may not "
            "have spread out from w* (such runs read low); raise thinning"
        )
    return {
        "reliable": not reasons,
        "unreliable": bool(reasons),
        "reasons": reasons,
        "warnings": warnings,
        "rhat": estimator_diagnostics.rhat,
        "ess_bulk": estimator_diagnostics.ess_bulk,
        "ess_tail": estimator_diagnostics.ess_tail,
        "mala_acceptance": sampler_diagnostics.mala_acceptance,
        "fraction_below_center": sampler_diagnostics.fraction_below_center,
        "step_size": run.step_size,
        "step_size_calibration": run.calibration,
        "predicted_step_size_bias": run.predicted_bias,
        "largest_gradient_share": None if statistics is None else statistics.largest_share,
        "num_chains": run.trace.num_chains,
        "num_draws": run.trace.num_draws,
        "num_steps": run.num_steps,
        "num_burnin": run.num_burnin,
        "thinning": run.trace.thinning,
        "langevin_time": langevin_time,
        "step_size_refinements": list(run.earlier_runs),
    }


def _exact_at(model, nbeta: float, localization: float) -> tuple[float | None, str | None]:
    """toy_models.finite_temperature_rlct where it applies (d <= 2, analytic K), else (None, why)."""
    if model.dimension > 2:
        return None, f"exact λ(t) by quadrature needs d <= 2 (d = {model.dimension})"
    if model.population_loss is None:
        return None, "no analytic population loss"
    try:
        return toy_models.finite_temperature_rlct(model, nbeta, localization=localization), None
    except ValueError as error:
        return None, f"quadrature failed: {error}"


# --------------------------------------------------------------------------------------------
# The methods


def _llc_at_jobs(model, datas, nbetas, keys, *, localization, trace_sink=None, trace_sinks=None, pack=None,
                 data_source=None, **run_options):
    """(λ̂, run) per job (data set, nβ, key); a failed job gives (None, error). With `pack` (default:
    `packing_pays()`) every stage of all the jobs is one compiled call, else one job after another.
    `trace_sink` collects every job's trace in one list (rlct), `trace_sinks` one list per job."""
    posteriors = [TemperedPosterior(loss_fn=model.loss, data=data, nbeta=nbeta, center=model.w_star,
                                    localization=localization, prior=model.prior, data_source=data_source)
                  for data, nbeta in zip(datas, nbetas)]
    starts, run_keys = [], []
    for key, nbeta in zip(keys, nbetas):
        key_start, key_run = jax.random.split(key)
        starts.append(_jitter_start(model, key_start, run_options["num_chains"], nbeta))
        run_keys.append(key_run)
    if trace_sink is not None:
        trace_sinks = [[] for _ in keys]
    if pack is None:
        pack = packing_pays()
    if pack:
        runs = _sgld_runs(posteriors, starts, run_keys, trace_sinks=trace_sinks, **run_options)
    else:
        runs = [_sgld_runs([posterior], [start], [key], trace_sinks=None if trace_sinks is None else [sink],
                           **run_options)[0]
                for posterior, start, key, sink in zip(posteriors, starts, run_keys, trace_sinks or [None] * len(keys))]
    if trace_sink is not None:
        trace_sink.extend(trace for sink in trace_sinks for trace in sink)
    return [(None, run) if isinstance(run, Exception)
            else (estimators.llc(run.trace.loss, run.trace.loss_at_center, nbeta), run)
            for run, nbeta in zip(runs, nbetas)]


def _fit_systematic_error(fit_value, means, systematic_errors) -> float:
    """Σ_k |λ̂(means + s_k e_k) − λ̂(means)|: each temperature's predicted SGLD bias s_k carried
    through the extrapolation `fit_value` (a function of the LLC means) one at a time, and the
    shifts added in absolute value, since their signs are not known. The extrapolation's
    coefficients alternate in sign and exceed 1, so this can be several times any one s_k."""
    base = fit_value(np.asarray(means, np.float64))
    shifts = []
    for k, bias in enumerate(systematic_errors):
        shifted = np.array(means, np.float64)
        shifted[k] += bias
        shifts.append(abs(fit_value(shifted) - base))
    return float(np.sum(shifts))


def _llc_outcome(result, run, nbeta):
    """The (value, std_error, nβ, diagnostics, temperatures) of one llc job."""
    diagnostics = _run_diagnostics(run, result.diagnostics, treat_escape_as_reason=True)
    diagnostics["per_chain"] = result.per_chain
    diagnostics["systematic_error"] = absolute_step_size_bias(run.step_size, run.gradient_statistics)
    return result.mean, result.std_error, nbeta, diagnostics, nbeta


def _method_wbic(model, data, key, *, n, nbeta, localization, run_options):
    if nbeta is not None:
        raise ValueError("wbic runs at β* = 1/log n by definition; do not pass nbeta")
    if localization:
        raise ValueError("wbic samples the global posterior (γ = 0); do not pass localization")
    nbeta = n * watanabe_beta(n)
    posterior = TemperedPosterior(loss_fn=model.loss, data=data, nbeta=nbeta, center=model.w_star,
                                  localization=0.0, prior=model.prior)
    key_start, key_run = jax.random.split(key)
    start = _prior_start(model, key_start, run_options["num_chains"])
    run = _sgld_run(posterior, start, key_run, **run_options)
    pointwise = np.asarray(model.pointwise_log_likelihood(model.w_star, data), np.float64)
    loss_at_truth = float(-pointwise.mean())
    differences = np.asarray(run.trace.loss, np.float64) - np.asarray(run.trace.loss_at_center, np.float64)
    result = estimators.wbic(differences + loss_at_truth, n)
    diagnostics = _run_diagnostics(run, result.diagnostics, treat_escape_as_reason=False)
    log_n = math.log(n)
    diagnostics["n_loss_at_truth"] = n * loss_at_truth
    diagnostics["implied_rlct"] = (result.mean - n * loss_at_truth) / log_n
    diagnostics["implied_rlct_std_error"] = result.std_error / log_n
    # the implied λ is the LLC at β*, nβ*(E[L_n] − L_n(w*)): its predicted bias is ε E|ĝ|²/4, WBIC's log n times it
    diagnostics["implied_rlct_systematic_error"] = absolute_step_size_bias(run.step_size, run.gradient_statistics)
    diagnostics["systematic_error"] = diagnostics["implied_rlct_systematic_error"] * log_n
    diagnostics["beta"] = 1.0 / log_n
    return result.mean, result.std_error, nbeta, diagnostics, nbeta


def _method_rlct(model, data, key, *, n, nbeta, localization, run_options, nbetas=None, data_source=None):
    if nbeta is not None:
        raise ValueError("rlct sweeps several temperatures; pass nbetas=[...] instead of nbeta")
    nbetas = (default_rlct_nbetas(n, population=data_source is not None) if nbetas is None
              else np.asarray(nbetas, dtype=np.float64))
    if nbetas.ndim != 1 or nbetas.size < 4 or np.any(nbetas <= 1) or np.unique(nbetas).size != nbetas.size:
        raise ValueError(f"rlct needs at least 4 distinct nbetas > 1, got {np.ravel(nbetas).tolist()}")
    means, errors, biases, per_temperature, reasons = [], [], [], [], []
    temperatures = [float(t) for t in nbetas]
    runs = _llc_at_jobs(model, [data] * nbetas.size, temperatures, list(jax.random.split(key, nbetas.size)),
                        localization=localization, data_source=data_source, **run_options)
    for t, (result, run) in zip(temperatures, runs):
        if isinstance(run, Exception):
            raise run
        run_diag = _run_diagnostics(run, result.diagnostics, treat_escape_as_reason=True)
        means.append(result.mean)
        errors.append(result.std_error)
        biases.append(absolute_step_size_bias(run.step_size, run.gradient_statistics))
        reasons += [f"nbeta={t:.4g}: {r}" for r in run_diag["reasons"]]
        per_temperature.append({
            "nbeta": float(t), "llc": result.mean, "std_error": result.std_error, "rhat": run_diag["rhat"],
            "ess_bulk": run_diag["ess_bulk"], "mala_acceptance": run_diag["mala_acceptance"],
            "step_size": run_diag["step_size"], "predicted_step_size_bias": run_diag["predicted_step_size_bias"],
            "systematic_error": biases[-1], "step_size_refinements": run_diag["step_size_refinements"],
            "langevin_time": run_diag["langevin_time"], "reasons": run_diag["reasons"],
        })
    usable = [e for e in errors if math.isfinite(e) and e > 0]
    if not usable:
        raise ValueError(f"rlct: no temperature gave a positive standard error ({errors}); the chains did not move")
    # A temperature without an error bar (see its reasons) must not pin the fit: give it the largest one.
    widest = max(usable + [abs(m) for m in means])
    errors = [e if math.isfinite(e) and e > 0 else widest for e in errors]
    fit = estimators.fit_rlct_multiplicity(nbetas, means, errors, second_order=True)
    reasons += [f"fit: {r}" for r in fit.diagnostics.reasons]
    systematic_error = _fit_systematic_error(
        lambda values: estimators.fit_rlct_multiplicity(nbetas, values, errors, second_order=True).averaged_rlct,
        means, biases)
    diagnostics = {
        "reliable": not reasons,
        "unreliable": bool(reasons),
        "reasons": reasons,
        "warnings": [f"fit: {w}" for w in fit.diagnostics.warnings],
        "rhat": max(p["rhat"] for p in per_temperature),
        "ess_bulk": min(p["ess_bulk"] for p in per_temperature),
        "mala_acceptance": min(p["mala_acceptance"] for p in per_temperature),
        "step_size": [p["step_size"] for p in per_temperature],
        "nbetas": nbetas,
        "per_temperature": per_temperature,
        "multiplicity_estimate": fit.multiplicity,
        "multiplicity_std_error": fit.multiplicity_std_error,
        "integer_multiplicity": fit.integer_multiplicity,
        "rlct_continuous_m": fit.rlct,
        "rlct_continuous_m_std_error": fit.rlct_std_error,
        "second_order_coefficient": fit.second_order_coefficient,
        "systematic_error": systematic_error,
        "fit_chi2": fit.chi2,
        "fit_dof": fit.dof,
        "num_chains": run_options["num_chains"],
        "num_draws": run_options["num_draws"],
        "thinning": run_options["thinning"],
    }
    diagnostics["rlct_at_integer_multiplicity"] = fit.rlct_at_integer_multiplicity
    diagnostics["rlct_at_integer_multiplicity_std_error"] = fit.rlct_at_integer_std_error
    diagnostics["model_weights"] = [{"shape": shape, "weight": weight, "rlct": value}
                                    for shape, weight, value in fit.model_weights]
    return fit.averaged_rlct, fit.averaged_rlct_std_error, float(nbetas.max()), diagnostics, nbetas


def _method_ti(model, data, key, *, n, nbeta, localization, run_options, num_temperatures=DEFAULT_TI_TEMPERATURES):
    if nbeta is not None:
        raise ValueError("ti integrates over a β ladder from 0 to 1; do not pass nbeta")
    if localization:
        raise ValueError("ti integrates the global posterior (γ = 0); do not pass localization")
    betas = estimators.temperature_ladder(n, num_temperatures=num_temperatures)
    pointwise = np.asarray(model.pointwise_log_likelihood(model.w_star, data), np.float64)
    n_loss_at_truth = float(-pointwise.sum())
    key_prior, key_prior_batch, key_ladder = jax.random.split(key, 3)
    # β = 0: independent prior draws, each with its own minibatch (an unbiased E_prior[n(L_n − L_n(w*))]).
    num_prior_draws = run_options["num_chains"] * run_options["num_draws"]
    prior_draws = _prior_start(model, key_prior, num_prior_draws)
    batch_size = run_options["batch_size"]

    def scaled_gap(w, batch_key):
        batch = data if batch_size is None else _minibatch(data, batch_key, n, batch_size)
        return n * (model.loss(w, batch) - model.loss(model.w_star, batch))

    prior_gaps = np.asarray(jax.jit(jax.vmap(scaled_gap))(prior_draws, jax.random.split(key_prior_batch, num_prior_draws)),
                            np.float64)
    if not np.all(np.isfinite(prior_gaps)):
        raise ValueError("the loss is not finite at some prior draws: thermodynamic integration needs a finite E_prior[n L_n]")
    means = [float(prior_gaps.mean())]
    errors = [float(prior_gaps.std(ddof=1) / math.sqrt(prior_gaps.size))]
    reasons, warnings, per_temperature = [], [], []
    for beta, key_beta in zip(betas[1:], jax.random.split(key_ladder, betas.size - 1)):
        posterior = TemperedPosterior(loss_fn=model.loss, data=data, nbeta=float(n * beta), center=model.w_star,
                                      localization=0.0, prior=model.prior)
        key_start, key_run = jax.random.split(key_beta)
        # Where nβ < 1 the prior dominates and SGLD's relative bias is that of a d-dimensional
        # Gaussian, so λ̂ in ε E|ĝ|² / 4λ̂ is floored at d/2 instead of at 0.05.
        bias_floor = 0.5 * model.dimension if n * beta < 1 else 0.05
        run = _sgld_run(posterior, _prior_start(model, key_start, run_options["num_chains"]), key_run,
                        bias_floor=bias_floor, **run_options)
        result = estimators.llc(run.trace.loss, run.trace.loss_at_center, n)  # E_β[n(L_n − L_n(w*))] ± MCSE
        run_diag = _run_diagnostics(run, result.diagnostics, treat_escape_as_reason=False)
        means.append(result.mean)
        errors.append(result.std_error)
        reasons += [f"nbeta={n * beta:.4g}: {r}" for r in run_diag["reasons"]]
        per_temperature.append({"beta": float(beta), "nbeta": float(n * beta), "mean_scaled_loss_gap": result.mean,
                                "std_error": result.std_error, "rhat": run_diag["rhat"], "ess_bulk": run_diag["ess_bulk"],
                                "mala_acceptance": run_diag["mala_acceptance"], "step_size": run_diag["step_size"]})
    integral = estimators.free_energy_ti(betas, means, errors)
    reasons += list(integral.diagnostics.reasons)
    warnings += list(integral.diagnostics.warnings)
    log_n = math.log(n)
    diagnostics = {
        "reliable": not reasons,
        "unreliable": bool(reasons),
        "reasons": reasons,
        "warnings": warnings,
        "rhat": max(p["rhat"] for p in per_temperature),
        "ess_bulk": min(p["ess_bulk"] for p in per_temperature),
        "mala_acceptance": min(p["mala_acceptance"] for p in per_temperature),
        "step_size": [p["step_size"] for p in per_temperature],
        "betas": betas,
        "per_temperature": per_temperature,
        "prior_mean_scaled_loss_gap": means[0],
        "n_loss_at_truth": n_loss_at_truth,
        "free_energy_minus_n_loss": integral.mean,
        "discretisation_error": integral.discretisation_error,
        "crude_rlct": integral.mean / log_n,
        "num_chains": run_options["num_chains"],
        "num_draws": run_options["num_draws"],
        "thinning": run_options["thinning"],
    }
    return n_loss_at_truth + integral.mean, integral.std_error, float(n), diagnostics, float(n)


def _minibatch(data, key, n: int, batch_size: int):
    indices = jax.random.randint(key, (batch_size,), 0, n)
    return jax.tree_util.tree_map(lambda leaf: leaf[indices], data)


def _waic_summaries(model, positions, data, n: int, num_chains: int, chunk_size: int):
    """(log E_w p(X_i|w), Var_w log p(X_i|w), per-draw influence ψ_s) over data chunks of
    `chunk_size`, so that the [draws, n] array of ℓ_{s,i} is never held at once. The last chunk is
    padded to the compiled shape and its padding masked out of ψ and dropped."""

    @jax.jit
    def chunk_summaries(chunk, mask):
        values = jax.vmap(lambda w: model.pointwise_log_likelihood(w, chunk))(positions)  # [draws, chunk]
        num_draws = values.shape[0]
        log_predictive = jax.nn.logsumexp(values, axis=0) - jnp.log(num_draws)
        centred = values - values.mean(axis=0, keepdims=True)
        variance = jnp.sum(centred**2, axis=0) / (num_draws - 1)
        return log_predictive, variance, 0.5 * jnp.sum(mask[None] * (centred**2 - variance[None]), axis=1)

    log_predictive, variance, influence = [], [], 0.0
    for start in range(0, n, chunk_size):
        size = min(chunk_size, n - start)
        indices = np.minimum(np.arange(start, start + chunk_size), n - 1)
        chunk = jax.tree_util.tree_map(lambda leaf: leaf[indices], data)
        lp, v, psi = chunk_summaries(chunk, jnp.asarray(np.arange(chunk_size) < size, jnp.float32))
        log_predictive.append(np.asarray(lp, np.float64)[:size])
        variance.append(np.asarray(v, np.float64)[:size])
        influence = influence + np.asarray(psi, np.float64)
    return np.concatenate(log_predictive), np.concatenate(variance), np.reshape(influence, (num_chains, -1))


def _method_waic(model, data, key, *, n, nbeta, localization, run_options):
    if nbeta is not None:
        raise ValueError("waic samples the posterior at β = 1 (nβ = n); do not pass nbeta")
    if localization:
        raise ValueError("waic samples the global posterior (γ = 0); do not pass localization")
    nbeta = float(n)
    posterior = TemperedPosterior(loss_fn=model.loss, data=data, nbeta=nbeta, center=model.w_star,
                                  localization=0.0, prior=model.prior)
    key_start, key_run = jax.random.split(key)
    start = _jitter_start(model, key_start, run_options["num_chains"], nbeta)
    # At β = 1 the centre w* is not the posterior's mode (E[n(L_n − L_n(w*))] ≈ λ − χ²/2 can be near
    # 0), so the bias prediction's λ̂ is floored at 1/2, the scale of one regular direction.
    run = _sgld_run(posterior, start, key_run, keep_positions=True, bias_floor=0.5, **run_options)
    num_chains, num_draws = run.trace.num_chains, run.trace.num_draws
    every = max(1, num_draws // WAIC_MAX_DRAWS_PER_CHAIN)  # thin the draws the n-sized sums run over
    positions = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf[:, ::every].reshape(-1, *leaf.shape[2:])),
                                       run.trace.positions)
    log_predictive, variance, influence = _waic_summaries(model, positions, data, n, num_chains, WAIC_CHUNK_SIZE)
    result = estimators.waic_from_summaries(log_predictive, variance, influence)
    diagnostics = _run_diagnostics(run._replace(trace=run.trace._replace(positions=None)), result.diagnostics,
                                   treat_escape_as_reason=False)
    empirical_entropy = float(-np.mean(np.asarray(model.pointwise_log_likelihood(model.w_star, data), np.float64)))
    diagnostics.update({
        "training_loss": result.training_loss,
        "functional_variance": result.functional_variance,
        "singular_fluctuation": result.singular_fluctuation,
        "singular_fluctuation_std_error": result.singular_fluctuation_std_error,
        "empirical_entropy": empirical_entropy,
        "n_waic_minus_empirical_entropy": n * (result.mean - empirical_entropy),
        "waic_draws_used": int(influence.size),
        "std_error_kind": "data-sampling standard error of WAIC as an estimate of the generalisation loss",
    })
    return result.mean, result.std_error, nbeta, diagnostics, nbeta


_METHOD_FUNCTIONS = {"wbic": _method_wbic, "rlct": _method_rlct, "ti": _method_ti,
                     "waic": _method_waic}


def estimate(
    model: toy_models.ToyModel | str,
    method: str = "llc",
    *,
    key: PRNGKeyArray,
    params: Mapping[str, Any] | None = None,
    n: int = DEFAULT_NUM_DATA,
    num_chains: int = 4,
    num_draws: int = DEFAULT_NUM_DRAWS,
    thinning: int = DEFAULT_THINNING,
    nbeta: float | None = None,
    nbetas: Sequence[float] | None = None,
    localization: float = 0.0,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    step_size: float | None = None,
    target_acceptance: float = 0.9,
    bias_tolerance: float = DEFAULT_BIAS_TOLERANCE,
    pilot_steps: int = 400,
    exact: bool = True,
    keep_traces: bool = False,
    population: bool = False,
) -> EstimateResult:
    """Estimate the learning coefficient of a registry model (see the module docstring for methods).

    Parameters
    ----------
    model : a `toy_models.ToyModel`, or a family name with `params` (e.g. "rrr", {"M": 5, ...}).
    method : "llc" (default), "wbic", "rlct", "ti" or "waic".
    key : PRNG key (data, chain starts, pilot and main run are split from it; no default seed).
    n : data size (>= 2); the data are `model.sample_data(key_data, n)`.
    num_chains, num_draws, thinning : per temperature; each chain runs num_draws · thinning
        recorded steps after num_draws · thinning / 4 burn-in steps. The default 4000 × 10 lets
        the chains spread along the singular set from w* (see `DEFAULT_THINNING`; the
        diagnostics report the Langevin time steps × ε and warn below 1).
    nbeta : t = nβ for llc (default min(1000, n/log n)); not allowed for wbic or rlct.
    nbetas : the temperatures of rlct (default 5 from t_max/30 to min(3000, n/log n)).
    localization : γ >= 0 (default 0: the model prior alone keeps the posterior proper).
    batch_size : SGLD minibatch (default min(n, 1000); None: full batch).
    step_size : ε; None (default) calibrates it from pilot MALA acceptance >= `target_acceptance`.
    exact : for d <= 2 also compute the exact population-limit λ(nβ) by quadrature.
    keep_traces : return every main SGLD run's trace in `EstimateResult.traces` (`slt.save_trace`
        writes one to netCDF).
    population : llc and rlct only, registry models only. Every SGLD minibatch is fresh data with
        the label noise integrated out (`model.sample_expected_data`), so the chains sample
        exp(−t K(w)) φ(w): the estimate is of the population λ(t), free of the data-set
        fluctuation λ_n(t) − λ(t), and t is not bounded by n (rlct's default temperatures become
        7 from 100 to 30 000). `n` then only names the data size the result is reported for.

    Raises
    ------
    ValueError : unknown family, method or parameter, n < 2, num_chains < 1, ... (before sampling).
    """
    start_time = time.perf_counter()
    if not isinstance(key, jax.Array):
        raise ValueError("key must be a PRNG key, e.g. jax.random.key(0)")
    model, settings = _checked_settings(
        model, method, params, n=n, num_chains=num_chains, num_draws=num_draws, thinning=thinning, nbeta=nbeta,
        nbetas=nbetas, localization=localization, batch_size=batch_size, step_size=step_size,
        target_acceptance=target_acceptance, bias_tolerance=bias_tolerance, pilot_steps=pilot_steps, exact=exact,
        keep_traces=keep_traces, population=population)
    return _finished_or_raise(_estimate_jobs(model, method, [key], start_time=start_time, **settings))[0]


def estimate_many(
    model: toy_models.ToyModel | str,
    method: str = "llc",
    *,
    keys: Sequence[PRNGKeyArray],
    params: Mapping[str, Any] | None = None,
    pack: bool | None = None,
    **settings,
) -> list[EstimateResult]:
    """`estimate` once per key, packed: `estimate_many(model, keys=[k0, k1, ...])[j]` is
    `estimate(model, key=k_j)` with the same settings (`settings`: `estimate`'s keyword
    arguments), up to float32 rounding where the model's matrix products are batched over
    jobs (bitwise for elementwise models such as the normal crossings).

    With `pack` (default `packing_pays()`: on accelerators, not on CPU) every llc stage of all
    the jobs (each calibration probe, the gradient pilot, each chunk of the main run) is one
    compiled call, `vmap` over jobs of `vmap` over chains: J small estimates cost about the
    dispatches of one, which is what fills a GPU. On a CPU packing is slower (see
    `packing_pays`), so there the jobs run one after another, sharing compiled code. Other
    methods run one estimate per key (rlct packs its own temperatures under the same rule).
    Memory when packed: J data sets and J runs' states and recorded losses.

    Raises a ValueError for bad settings before anything runs, else the first failed job's error.
    """
    return _finished_or_raise(estimate_jobs(model, method, keys=keys, params=params, pack=pack, **settings))


def estimate_jobs(model, method: str = "llc", *, keys, params=None, pack: bool | None = None,
                  **settings) -> list["EstimateResult | Exception"]:
    """`estimate_many`, but a job that fails after the settings were checked (divergence, a
    non-finite loss: ValueError or FloatingPointError) gives its exception in its place
    instead of stopping the others (what a batch needs)."""
    start_time = time.perf_counter()
    if isinstance(keys, jax.Array) and keys.ndim == 0:
        raise ValueError("keys must be a sequence of PRNG keys, e.g. list(jax.random.split(key, 8))")
    keys = list(keys)
    if not keys:
        raise ValueError("keys is empty: pass at least one PRNG key")
    for index, key in enumerate(keys):
        if not isinstance(key, jax.Array):
            raise ValueError(f"keys[{index}] must be a PRNG key, e.g. jax.random.key(0)")
    bound = inspect.signature(estimate).bind(model, method, key=keys[0], params=params, **settings)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    del arguments["key"]
    model, checked = _checked_settings(**arguments)
    return _estimate_jobs(model, method, keys, start_time=start_time, pack=pack, **checked)


def _finished_or_raise(outcomes):
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return outcomes


def _checked_settings(model, method, params, *, n, num_chains, num_draws, thinning, nbeta, nbetas, localization,
                      batch_size, step_size, target_acceptance, bias_tolerance, pilot_steps, exact, keep_traces,
                      population=False):
    """`estimate`'s argument checks (ValueError naming the argument); the model and the settings."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known methods: {', '.join(METHODS)}")
    if method not in IMPLEMENTED_METHODS:
        raise ValueError(f"method {method!r} is not implemented yet; implemented: {', '.join(IMPLEMENTED_METHODS)}")
    model = resolve_model(model, params)
    n = _check_int("n", n, 2)
    num_chains = _check_int("num_chains", num_chains, 1)
    num_draws = _check_int("num_draws", num_draws, 2)
    thinning = _check_int("thinning", thinning, 1)
    pilot_steps = _check_int("pilot_steps", pilot_steps, 2)
    if nbeta is not None and not (isinstance(nbeta, (int, float)) and math.isfinite(nbeta) and nbeta > 0):
        raise ValueError(f"nbeta must be a finite number > 0, got {nbeta!r}")
    if nbetas is not None and method != "rlct":
        raise ValueError("nbetas is only for method 'rlct'")
    if not (isinstance(localization, (int, float)) and math.isfinite(localization) and localization >= 0):
        raise ValueError(f"localization must be a finite number >= 0, got {localization!r}")
    if batch_size is not None:
        batch_size = _check_int("batch_size", batch_size, 1)
        if not population:  # a data set's minibatch is at most the data set; the population has no size
            batch_size = min(batch_size, n)
            if batch_size == n:
                batch_size = None
    if step_size is not None and not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a finite number > 0, got {step_size!r}")
    if not (isinstance(target_acceptance, (int, float)) and 0 < target_acceptance < 1):
        raise ValueError(f"target_acceptance must be in (0, 1), got {target_acceptance!r}")
    if not (isinstance(bias_tolerance, (int, float)) and 0 < bias_tolerance < 1):
        raise ValueError(f"bias_tolerance must be in (0, 1), got {bias_tolerance!r}")
    if not isinstance(population, bool):
        raise ValueError(f"population must be True or False, got {population!r}")
    if population:
        if method not in ("llc", "rlct"):
            raise ValueError(f"population sampling is for llc and rlct; {method} is a property of one data set")
        if model.sample_expected_data is None:
            raise ValueError(f"population sampling needs a model that draws fresh data with the label noise "
                             f"integrated out (sample_expected_data); {model.label} has none")
        if batch_size is None:
            raise ValueError("population sampling draws fresh minibatches: give a batch_size, not None")
    return model, dict(n=n, num_chains=num_chains, num_draws=num_draws, thinning=thinning, nbeta=nbeta, nbetas=nbetas,
                       localization=localization, batch_size=batch_size, step_size=step_size,
                       target_acceptance=target_acceptance, bias_tolerance=bias_tolerance, pilot_steps=pilot_steps,
                       exact=bool(exact), keep_traces=bool(keep_traces), population=population)


def _estimate_jobs(model, method, keys, *, pack=None, n, num_chains, num_draws, thinning, nbeta, nbetas, localization,
                   batch_size, step_size, target_acceptance, bias_tolerance, pilot_steps, exact, keep_traces,
                   population=False, start_time=None) -> list["EstimateResult | Exception"]:
    start_time = time.perf_counter() if start_time is None else start_time
    run_options = dict(batch_size=batch_size, num_chains=num_chains, num_draws=num_draws, thinning=thinning,
                       step_size=step_size, target_acceptance=target_acceptance, pilot_steps=pilot_steps,
                       bias_tolerance=bias_tolerance)
    outcomes: list = []
    pack = packing_pays() if pack is None else bool(pack)
    exact_at = functools.cache(lambda t: _exact_at(model, t, localization))  # one quadrature per t, not per job
    data_source = model.sample_expected_data if population else None
    sampled = _sampled_model(model, localization)

    def data_for(key_data):  # on the population: a reference batch that fixes the shapes
        return model.sample_expected_data(key_data, batch_size) if population else model.sample_data(key_data, n)

    if method == "llc":
        split = [jax.random.split(key) for key in keys]
        datas = [data_for(key_data) for key_data, _ in split]
        nbeta = default_nbeta(n) if nbeta is None else float(nbeta)
        sinks = [[] for _ in keys] if keep_traces else None
        runs = _llc_at_jobs(sampled, datas, [nbeta] * len(keys), [key_method for _, key_method in split],
                            localization=localization, trace_sinks=sinks, pack=pack, data_source=data_source,
                            **run_options)
        seconds = (time.perf_counter() - start_time) / len(keys)
        for job, (result, run) in enumerate(runs):
            if isinstance(run, Exception):
                outcomes.append(run)
                continue
            outcomes.append(_result(model, method, _llc_outcome(result, run, nbeta), n=n, localization=localization,
                                    batch_size=batch_size, exact=exact, exact_at=exact_at, seconds=seconds,
                                    traces=() if sinks is None else _in_model_coordinates(model, sampled, sinks[job]),
                                    packed_jobs=len(keys) if pack else 1, population=population, sampled=sampled))
        return outcomes
    for key in keys:
        job_start = time.perf_counter() if outcomes else start_time
        key_data, key_method = jax.random.split(key)
        data = data_for(key_data)
        sink = [] if keep_traces else None
        extra = {"nbetas": nbetas, "data_source": data_source} if method == "rlct" else {}
        try:
            outcome = _METHOD_FUNCTIONS[method](sampled, data, key_method, n=n, nbeta=nbeta, localization=localization,
                                                run_options={**run_options, "trace_sink": sink}, **extra)
        except (ValueError, FloatingPointError) as error:
            if len(keys) == 1:
                raise
            outcomes.append(error)
            continue
        outcomes.append(_result(model, method, outcome, n=n, localization=localization, batch_size=batch_size,
                                exact=exact, exact_at=exact_at, seconds=time.perf_counter() - job_start,
                                traces=_in_model_coordinates(model, sampled, sink or ()), population=population,
                                sampled=sampled))
    return outcomes


def _sampled_model(model, localization: float):
    """The model the samplers run on: `model.in_sampling_coordinates()` (a |w|^h prior with
    h <= 1 has an unbounded score in w), except under localisation, which is a term in w."""
    if localization:
        return model
    return model.in_sampling_coordinates()


def _in_model_coordinates(model, sampled, labelled_traces) -> tuple:
    """The (label, trace) pairs with positions mapped back from `sampled`'s coordinates to `model`'s w."""
    if sampled is model:
        return tuple(labelled_traces)
    to_model = sampled.prior.to_model

    def mapped(tree):
        return None if tree is None else jax.tree_util.tree_map(lambda leaf: np.asarray(to_model(jnp.asarray(leaf))), tree)

    return tuple((label, trace._replace(positions=mapped(trace.positions), final_positions=mapped(trace.final_positions)))
                 for label, trace in labelled_traces)


def _result(model, method, outcome, *, n, localization, batch_size, exact, exact_at, seconds, traces, sampled,
            packed_jobs=1, population=False):
    value, std_error, reported_nbeta, diagnostics, temperatures = outcome
    diagnostics["localization"] = float(localization)
    diagnostics["prior"] = type(model.prior).__name__
    coordinates = None if sampled is model else sampled.prior
    diagnostics["sampling_coordinates"] = None if coordinates is None else (
        f"sampled in u_j = sign(w_j) |w_j|^(h_j+1) for j in {list(coordinates.flattened)} (prior |w_j|^h_j, h_j <= 1)")
    diagnostics["batch_size"] = n if batch_size is None else batch_size
    diagnostics["data"] = "population" if population else "data set"
    diagnostics["beta"] = None if population else reported_nbeta / n
    diagnostics["interval_note"] = INTERVAL_NOTE
    if packed_jobs > 1:
        diagnostics["packed_jobs"] = packed_jobs
    exact_value = exact_reason = None
    if exact and method in ("llc", "wbic", "waic", "ti"):
        exact_value, exact_reason = exact_at(float(reported_nbeta))
    if exact and method == "ti" and exact_reason is None:
        diagnostics["exact_free_energy_minus_n_loss"] = -toy_models.tempered_density_grid(model, float(n)).log_partition
    elif exact and method == "rlct":
        values = [exact_at(float(t)) for t in temperatures]
        exact_reason = values[0][1]
        if exact_reason is None:
            diagnostics["exact_per_temperature"] = [v for v, _ in values]
            exact_value = values[-1][0]
    diagnostics["exact_at_nbeta"] = exact_value
    if exact_reason is not None:
        diagnostics["exact_unavailable"] = exact_reason
    if exact_value is not None and model.true_rlct is not None:
        diagnostics["finite_temperature_bias"] = exact_value - float(model.true_rlct)
    return EstimateResult(
        model=model.label,
        params=dict(model.params),
        method=method,
        estimate=float(value),
        std_error=float(std_error),
        true_rlct=model.true_rlct,
        multiplicity=model.multiplicity,
        n=n,
        nbeta=float(reported_nbeta),
        diagnostics=diagnostics,
        seconds=seconds,
        traces=traces,
        systematic_error=float(diagnostics.get("systematic_error", 0.0)),
    )

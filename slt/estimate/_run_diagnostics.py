"""The diagnostics dict of one SGLD run, and the exact λ(t) where quadrature reaches."""

from typing import Any

import numpy as np

import toy_models
from slt.estimate._runs import LIGHT_TAILED_SHARE, Run, heavy_tailed, tail_persisted
from slt.run import DiagnosticCode

MAX_PREDICTED_STEP_SIZE_BIAS = 0.1  # above this on the run's own draws the result is unreliable
# Below this Langevin time (steps × ε, in units of a unit-variance prior's relaxation time) the
# result warns that the directions only the prior confines may not have equilibrated.
MIN_LANGEVIN_TIME = 1.0


def run_diagnostics(run: Run, estimator_diagnostics, *, treat_escape_as_reason: bool) -> dict[str, Any]:
    sampler_diagnostics = run.trace.diagnostics
    reasons = list(estimator_diagnostics.reasons)
    warnings = list(estimator_diagnostics.warnings) + list(run.divergences)
    for message, code in zip(sampler_diagnostics.warnings, sampler_diagnostics.warning_codes):
        if code == DiagnosticCode.LOW_MALA_ACCEPTANCE or (treat_escape_as_reason and code == DiagnosticCode.ESCAPED):
            reasons.append(message)
        elif code not in (DiagnosticCode.HIGH_RHAT, DiagnosticCode.LOW_ESS):  # those are already the estimator's
            warnings.append(message)
    if run.calibration is not None and not run.calibration["met_target"]:
        reasons.append(
            f"step-size calibration failed: no candidate reached MALA acceptance {run.calibration['target_acceptance']} "
            f"(best {np.max(run.calibration['acceptance']):.3f})"
        )
    statistics = run.gradient_statistics
    if heavy_tailed(statistics):
        reasons.append(
            f"heavy-tailed gradient: one of {statistics.num_points} checked draws carries "
            f"{statistics.largest_share:.0%} of Σ|ĝ|², so SGLD's step-size bias cannot be predicted (a prior or "
            "loss whose gradient is unbounded near the draws, e.g. a |w|^h prior with h <= 1 sampled in w)"
        )
    elif tail_persisted(run):
        first = max(earlier["largest_gradient_share"] for earlier in run.earlier_runs)
        reasons.append(
            f"heavy-tailed gradient: one draw carried {first:.0%} of Σ|ĝ|² before the step-size refinement and still "
            f"{statistics.largest_share:.0%} (> {LIGHT_TAILED_SHARE:.1%}) after it: a tail that does not shrink with ε "
            "is the target's (e.g. a |w|^h prior with h <= 1 sampled in w), so SGLD's step-size bias cannot be predicted"
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


def exact_at(model, nbeta: float, localization: float) -> tuple[float | None, str | None]:
    """toy_models.finite_temperature_rlct where it applies (d <= 2, analytic K), else (None, why)."""
    if model.dimension > 2:
        return None, f"exact λ(t) by quadrature needs d <= 2 (d = {model.dimension})"
    if model.population_loss is None:
        return None, "no analytic population loss"
    try:
        return toy_models.finite_temperature_rlct(model, nbeta, localization=localization), None
    except ValueError as error:
        return None, f"quadrature failed: {error}"

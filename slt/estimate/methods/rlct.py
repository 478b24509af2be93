"""rlct: LLCs at several t_k, then `estimators.fit_rlct_multiplicity(second_order=True)`:
λ̂(t) = λ − (m−1)/log t + b/log² t.

Default temperatures (`default_rlct_nbetas`): on a data set 5 geometrically from t_max/30 to
t_max = min(3000, n/log n); on the population 7 from 100 to 30 000. The estimate is λ averaged over
the shapes (integer m, with and without b) with Akaike weights, its standard error includes the
spread between shapes (`model_weights`); λ at the best integer m and the continuous m̂ ± se are
reported too. The extrapolation amplifies each λ̂(t_k)'s noise several-fold
(`benchmarks/rlct_fit_study.py`); `systematic_error` carries each temperature's predicted SGLD
bias through the fit (`fit_systematic_error`). Limitation: the fit removes the (m−1)/log t term,
not power-law corrections a t^(−g) (m = 1).
"""

import math

import jax
import numpy as np

import estimators
from slt.estimate._calibration import absolute_step_size_bias
from slt.estimate._defaults import default_rlct_nbetas, packing_pays
from slt.estimate._run_diagnostics import run_diagnostics
from slt.estimate._settings import SettingsError
from slt.estimate.methods._method import JobsOneByOne, MethodOutcome
from slt.estimate.methods.llc import llc_at_temperatures


def fit_systematic_error(fit_value, means, systematic_errors) -> float:
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


class RLCT(JobsOneByOne):
    name = "rlct"

    def validate(self, settings):
        if settings.nbeta is not None:
            raise SettingsError("nbeta", "not allowed for method 'rlct': rlct sweeps several temperatures; pass "
                                "nbetas=[...] instead")

    def planned_sgld_runs(self, settings):
        return len(default_rlct_nbetas(settings.n, population=settings.population) if settings.nbetas is None
                   else settings.nbetas)

    def run(self, model, data, key, settings, context, trace_sink):
        nbetas = (default_rlct_nbetas(settings.n, population=context.data_source is not None)
                  if settings.nbetas is None else np.asarray(settings.nbetas, dtype=np.float64))
        means, errors, biases, per_temperature, reasons = [], [], [], [], []
        temperatures = [float(t) for t in nbetas]
        sinks = None if trace_sink is None else [[] for _ in temperatures]
        runs = llc_at_temperatures(model, [data] * nbetas.size, temperatures, list(jax.random.split(key, nbetas.size)),
                                   settings, context, trace_sinks=sinks, pack=packing_pays())
        if trace_sink is not None:
            trace_sink.extend(trace for sink in sinks for trace in sink)
        for t, (result, run) in zip(temperatures, runs):
            if isinstance(run, Exception):
                raise run
            run_diag = run_diagnostics(run, result.diagnostics, treat_escape_as_reason=True)
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
        systematic_error = fit_systematic_error(
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
            "num_chains": settings.num_chains,
            "num_draws": settings.num_draws,
            "thinning": settings.thinning,
        }
        diagnostics["rlct_at_integer_multiplicity"] = fit.rlct_at_integer_multiplicity
        diagnostics["rlct_at_integer_multiplicity_std_error"] = fit.rlct_at_integer_std_error
        diagnostics["model_weights"] = [{"shape": shape, "weight": weight, "rlct": value}
                                        for shape, weight, value in fit.model_weights]
        return MethodOutcome(fit.averaged_rlct, fit.averaged_rlct_std_error, float(nbetas.max()), diagnostics, nbetas)

    def exact(self, model, outcome, settings, exact_at):
        values = [exact_at(float(t)) for t in outcome.temperatures]
        reason = values[0][1]
        if reason is not None:
            return None, reason
        outcome.diagnostics["exact_per_temperature"] = [value for value, _ in values]
        return values[-1][0], None

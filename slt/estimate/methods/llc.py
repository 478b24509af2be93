"""llc: λ̂(t) = nβ (E_β[L_n(w)] − L_n(w*)) at w* (Lau et al. 2023), from the paired same-batch
differences L_b(w) − L_b(w*) (`estimators.llc`).

Default t = nβ = min(1000, n / log n) (`default_nbeta`), with the model prior φ and γ = 0: the
posterior whose population-limit λ(t) `toy_models.finite_temperature_rlct` computes for d <= 2.
Its `systematic_error` is the SGLD bias ε E|ĝ|²/4 predicted on the run's own draws.
"""

import jax

import estimators
from slt.estimate._calibration import absolute_step_size_bias
from slt.estimate._defaults import default_nbeta, packing_pays
from slt.estimate._run_diagnostics import run_diagnostics
from slt.estimate._runs import jitter_start, sgld_runs
from slt.estimate._settings import EstimateSettings
from slt.estimate.methods._method import MethodContext, MethodOutcome


def llc_at_temperatures(model, datas, nbetas, keys, settings: EstimateSettings, context: MethodContext,
                        trace_sinks=None, pack: bool | None = None):
    """(`estimators.llc` result, run) per job (data set, nβ, key); a failed job gives (None, error).
    With `pack` (default `context.pack`) every stage of all the jobs is one compiled call, else
    one job after another. `trace_sinks`: one list per job that collects its trace."""
    posteriors = [context.hooks.make_posterior(loss_fn=model.loss, data=data, nbeta=nbeta, center=model.w_star,
                                               localization=settings.localization, prior=model.prior,
                                               data_source=context.data_source)
                  for data, nbeta in zip(datas, nbetas)]
    starts, run_keys = [], []
    for key, nbeta in zip(keys, nbetas):
        key_start, key_run = jax.random.split(key)
        starts.append(jitter_start(model, key_start, settings.num_chains, nbeta))
        run_keys.append(key_run)
    if context.pack if pack is None else pack:
        runs = sgld_runs(posteriors, starts, run_keys, settings, hooks=context.hooks, trace_sinks=trace_sinks)
    else:
        runs = [sgld_runs([posterior], [start], [key], settings, hooks=context.hooks,
                          trace_sinks=None if trace_sinks is None else [sink])[0]
                for posterior, start, key, sink in zip(posteriors, starts, run_keys, trace_sinks or [None] * len(keys))]
    return [(None, run) if isinstance(run, Exception)
            else (estimators.llc(run.trace.loss, run.trace.loss_at_center, nbeta), run)
            for run, nbeta in zip(runs, nbetas)]


class LLC:
    name = "llc"
    user_model_refusal = None
    packs_jobs = True  # the jobs of one call run packed (`MethodContext.pack`)

    def validate(self, settings: EstimateSettings) -> None:
        pass

    def planned_sgld_runs(self, settings: EstimateSettings) -> int:
        return 1

    def run_jobs(self, model, datas, keys, settings, context):
        nbeta = default_nbeta(settings.n) if settings.nbeta is None else settings.nbeta
        runs = llc_at_temperatures(model, datas, [nbeta] * len(keys), keys, settings, context,
                                   trace_sinks=context.trace_sinks)
        outcomes = []
        for result, run in runs:
            if isinstance(run, Exception):
                outcomes.append(run)
                continue
            diagnostics = run_diagnostics(run, result.diagnostics, treat_escape_as_reason=True)
            diagnostics["per_chain"] = result.per_chain
            diagnostics["systematic_error"] = absolute_step_size_bias(run.step_size, run.gradient_statistics)
            outcomes.append(MethodOutcome(result.mean, result.std_error, nbeta, diagnostics, nbeta))
        return outcomes

    def exact(self, model, outcome, settings, exact_at):
        return exact_at(float(outcome.nbeta))


__all__ = ["LLC", "llc_at_temperatures", "packing_pays"]

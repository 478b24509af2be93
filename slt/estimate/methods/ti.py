"""ti: the free energy F_n = −log ∫ φ(w) Π_i p(X_i|w) dw by thermodynamic integration
(`estimators.free_energy_ti`): F_n = n L_n(w*) + ∫_0^1 E_β[n (L_n(w) − L_n(w*))] dβ over the
geometric ladder `estimators.temperature_ladder(n, 20)` (β = 0: independent prior draws; each
β > 0: an SGLD run of the global posterior, γ = 0, chains started from prior draws).

The estimate is F_n; the diagnostics carry F_n − n L_n(w*) (≈ λ log n − (m−1) log log n + O(1)),
its crude λ̂ = (F_n − n L_n(w*)) / log n, the ladder's discretisation error, and for d <= 2 the
exact population-limit value −log ∫ φ e^{−n K} by quadrature (`exact_free_energy_minus_n_loss`).
"""

import math

import jax
import numpy as np

import estimators
import toy_models
from slt.estimate._run_diagnostics import run_diagnostics
from slt.estimate._runs import prior_start, sgld_run
from slt.estimate.methods._method import JobsOneByOne, MethodOutcome, global_posterior_only

DEFAULT_TI_TEMPERATURES = 20


def minibatch(data, key, n: int, batch_size: int):
    indices = jax.random.randint(key, (batch_size,), 0, n)
    return jax.tree_util.tree_map(lambda leaf: leaf[indices], data)


class TI(JobsOneByOne):
    name = "ti"
    user_model_refusal = "thermodynamic integration starts from prior draws and sums per-datum log-likelihoods"
    num_temperatures = DEFAULT_TI_TEMPERATURES

    def validate(self, settings):
        global_posterior_only(settings, "ti integrates over a β ladder from 0 to 1",
                              "ti integrates the global posterior (γ = 0)")

    def planned_sgld_runs(self, settings):
        return self.num_temperatures - 1  # β = 0 is prior draws, not a run

    def run(self, model, data, key, settings, context, trace_sink):
        n = settings.n
        betas = estimators.temperature_ladder(n, num_temperatures=self.num_temperatures)
        pointwise = np.asarray(model.pointwise_log_likelihood(model.w_star, data), np.float64)
        n_loss_at_truth = float(-pointwise.sum())
        key_prior, key_prior_batch, key_ladder = jax.random.split(key, 3)
        # β = 0: independent prior draws, each with its own minibatch (an unbiased E_prior[n(L_n − L_n(w*))]).
        num_prior_draws = settings.num_chains * settings.num_draws
        prior_draws = prior_start(model, key_prior, num_prior_draws)
        batch_size = settings.minibatch_size

        def scaled_gap(w, batch_key):
            batch = data if batch_size is None else minibatch(data, batch_key, n, batch_size)
            return n * (model.loss(w, batch) - model.loss(model.w_star, batch))

        prior_gaps = np.asarray(jax.jit(jax.vmap(scaled_gap))(prior_draws, jax.random.split(key_prior_batch, num_prior_draws)),
                                np.float64)
        if not np.all(np.isfinite(prior_gaps)):
            raise ValueError("the loss is not finite at some prior draws: thermodynamic integration needs a finite E_prior[n L_n]")
        means = [float(prior_gaps.mean())]
        errors = [float(prior_gaps.std(ddof=1) / math.sqrt(prior_gaps.size))]
        reasons, warnings, per_temperature = [], [], []
        for beta, key_beta in zip(betas[1:], jax.random.split(key_ladder, betas.size - 1)):
            posterior = context.hooks.make_posterior(loss_fn=model.loss, data=data, nbeta=float(n * beta), center=model.w_star,
                                          localization=0.0, prior=model.prior)
            key_start, key_run = jax.random.split(key_beta)
            # Where nβ < 1 the prior dominates and SGLD's relative bias is that of a d-dimensional
            # Gaussian, so λ̂ in ε E|ĝ|² / 4λ̂ is floored at d/2 instead of at 0.05.
            bias_floor = 0.5 * model.dimension if n * beta < 1 else 0.05
            run = sgld_run(posterior, prior_start(model, key_start, settings.num_chains), key_run, settings,
                           hooks=context.hooks, trace_sink=trace_sink, bias_floor=bias_floor)
            result = estimators.llc(run.trace.loss, run.trace.loss_at_center, n)  # E_β[n(L_n − L_n(w*))] ± MCSE
            run_diag = run_diagnostics(run, result.diagnostics, treat_escape_as_reason=False)
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
            "num_chains": settings.num_chains,
            "num_draws": settings.num_draws,
            "thinning": settings.thinning,
        }
        return MethodOutcome(n_loss_at_truth + integral.mean, integral.std_error, float(n), diagnostics, float(n))

    def exact(self, model, outcome, settings, exact_at):
        value, reason = exact_at(float(outcome.nbeta))
        if reason is None:
            outcome.diagnostics["exact_free_energy_minus_n_loss"] = -toy_models.tempered_density_grid(
                model, float(settings.n)).log_partition
        return value, reason

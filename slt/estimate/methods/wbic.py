"""wbic: WBIC = E_{β*}[n L_n] at β* = 1/log n on the global posterior (model prior, γ = 0, chains
started from prior draws), as n L_n(w*) + E[n (L_b(w) − L_b(w*))] (the same-batch difference is a
control variate; `estimators.wbic`). Also reported: the implied λ̂ = (WBIC − n L_n(w*)) / log n,
whose predicted SGLD bias is ε E|ĝ|²/4 (WBIC's is log n times that).
"""

import math

import jax
import numpy as np

import estimators
from slt.estimate._calibration import absolute_step_size_bias
from slt.estimate._run_diagnostics import run_diagnostics
from slt.estimate._runs import prior_start, sgld_run
from slt.estimate.methods._method import JobsOneByOne, MethodOutcome, global_posterior_only
from slt.samplers import watanabe_beta


class WBIC(JobsOneByOne):
    name = "wbic"

    def validate(self, settings):
        global_posterior_only(settings, "wbic runs at β* = 1/log n by definition",
                              "wbic samples the global posterior (γ = 0)")

    def run(self, model, data, key, settings, context, trace_sink):
        n = settings.n
        nbeta = n * watanabe_beta(n)
        posterior = context.hooks.make_posterior(loss_fn=model.loss, data=data, nbeta=nbeta, center=model.w_star,
                                                 localization=0.0, prior=model.prior)
        key_start, key_run = jax.random.split(key)
        start = prior_start(model, key_start, settings.num_chains)
        run = sgld_run(posterior, start, key_run, settings, hooks=context.hooks, trace_sink=trace_sink)
        pointwise = np.asarray(model.pointwise_log_likelihood(model.w_star, data), np.float64)
        loss_at_truth = float(-pointwise.mean())
        differences = np.asarray(run.trace.loss, np.float64) - np.asarray(run.trace.loss_at_center, np.float64)
        result = estimators.wbic(differences + loss_at_truth, n)
        diagnostics = run_diagnostics(run, result.diagnostics, treat_escape_as_reason=False)
        log_n = math.log(n)
        diagnostics["n_loss_at_truth"] = n * loss_at_truth
        diagnostics["implied_rlct"] = (result.mean - n * loss_at_truth) / log_n
        diagnostics["implied_rlct_std_error"] = result.std_error / log_n
        diagnostics["implied_rlct_systematic_error"] = absolute_step_size_bias(run.step_size, run.gradient_statistics)
        diagnostics["systematic_error"] = diagnostics["implied_rlct_systematic_error"] * log_n
        diagnostics["beta"] = 1.0 / log_n
        return MethodOutcome(result.mean, result.std_error, nbeta, diagnostics, nbeta)

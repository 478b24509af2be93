"""nested: λ and m themselves from the density of states V(ε) = ∫_{K<ε} φ ≈ c ε^λ (−log ε)^(m−1),
by nested sampling of the population K(w) under the model's prior (`slt.nested_rlct`), read by
`estimators.rlct_from_dead_points` (Poisson-process likelihood of the deaths in s = −log K, m by
evidence). Unlike the sampling methods it estimates λ at t → ∞, not λ(nβ); λ(t) = t E_t[K] on a
grid of t comes from the same run (`estimators.lambda_curve`). Accuracy and cost:
`benchmarks/results/accuracy_nested.md`.

Limits: a model without a population loss (a user model) is sampled on its data set's
K_n(w) = max(L_n(w) − min L_n, 0) and fitted only above its noise floor, s = −log K_n <=
log n + `slt.nested.NOISE_FLOOR_MARGIN` (`slt.nested_rlct`); the sampling settings (chains,
draws, nβ, γ, batch size) do not apply.
"""

import math

import numpy as np

from slt.estimate.methods._method import JobsOneByOne, MethodOutcome, global_posterior_only
from slt.nested import nested_rlct

NUM_LIVE = 500  # live points; with NUM_INNER_STEPS the settings of benchmarks/results/accuracy_nested.md
NUM_INNER_STEPS = 3
CURVE_TEMPERATURES = np.logspace(1, 6, 21)  # t of the reported λ(t) curve


class Nested(JobsOneByOne):
    name = "nested"

    def validate(self, settings):
        global_posterior_only(settings, "nested sampling reads λ as t → ∞, and λ(t) at every t from one run",
                              "nested sampling explores the whole prior")

    def planned_sgld_runs(self, settings):
        return 0  # nested sampling shows its own bar

    def run(self, model, data, key, settings, context, trace_sink):
        on_data = getattr(model, "population_loss", None) is None
        estimate = nested_rlct(key, model, data=data if on_data else None, temperatures=CURVE_TEMPERATURES,
                                   num_live=NUM_LIVE, num_inner_steps=NUM_INNER_STEPS, progress=context.progress)
        result, curve, run = estimate.result, estimate.curve, estimate.run
        probabilities = np.asarray(result.multiplicity_probabilities, dtype=np.float64)
        fit = result.diagnostics
        diagnostics = {
            "reliable": not fit.reasons, "reasons": list(fit.reasons), "warnings": list(fit.warnings),
            "multiplicity_estimate": result.multiplicity_estimate,  # None: the evidence for m is not clear
            "multiplicity_probabilities": probabilities.tolist(),
            "rlct_by_multiplicity": np.asarray(result.rlct_by_multiplicity).tolist(),
            "lambda_t": {"t": curve.temperatures.tolist(), "lambda": curve.rlct.tolist(),
                         "low": curve.rlct_band[0].tolist(), "high": curve.rlct_band[1].tolist(),
                         "free_energy": curve.free_energy.tolist()},
            "window": list(fit.window), "num_in_window": int(fit.num_in_window),
            "asymptotic_regime_reached": bool(fit.asymptotic_regime_reached),
            "rescaled_ks_pvalue": float(fit.rescaled_ks_pvalue),
            "num_live": NUM_LIVE, "num_deaths": int(run.death_loss.size),
            "log_volume_reached": float(-np.sum(1.0 / run.num_live)),
            "stop_reason": run.stop_reason, "min_acceptance": float(run.min_acceptance),
            "loss": "data set K_n" if on_data else "population K",
            "window_end": estimate.window_end,  # data set: the deepest s = −log K_n fitted (noise floor)
            "systematic_error": float(result.systematic_error),  # λ averaged over m by P(m)
            "gap_dispersion": float(fit.gap_dispersion),
        }
        return MethodOutcome(result.estimate, result.std_error, math.inf, diagnostics, math.inf)

    def exact(self, model, outcome, settings, exact_at):
        return None, "nested estimates λ itself (t → ∞): compare with true_rlct"

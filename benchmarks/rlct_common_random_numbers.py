"""Shared random numbers across the rlct temperatures: how correlated are the per-chain LLCs?

    .venv/bin/python benchmarks/rlct_common_random_numbers.py

The normal crossing w1²w2⁴ (λ = 1/4, m = 1), n = 10⁶, the default rlct temperatures, 16 chains ×
1000 draws per temperature, run twice: with independent keys per temperature (what `slt.estimate`
does) and with one key for all (same chain keys, noise, minibatches and scaled start). Prints the
λ̂(t_k), the correlation of the per-chain λ̂ between neighbouring temperatures, the exact λ(t_k)
and the model-averaged λ of `estimators.fit_rlct_multiplicity` (points taken as independent).
The correlations quoted in `estimators/_multiplicity.py` come from this script.
"""

import time

import jax
import numpy as np

import estimators
import toy_models
from slt.estimate import EstimateSettings, MethodContext, default_rlct_nbetas, llc_at_temperatures

RUN = dict(batch_size=1000, num_chains=16, num_draws=1000, thinning=10, step_size=None, target_acceptance=0.9,
           pilot_steps=400, bias_tolerance=0.02)


def main() -> None:
    model = toy_models.get("normal_crossing", powers=(1, 2))
    n = 1_000_000
    key_data, key_method = jax.random.split(jax.random.key(0))
    data = model.sample_data(key_data, n)
    temperatures = [float(t) for t in default_rlct_nbetas(n)]
    exact = [toy_models.finite_temperature_rlct(model, t) for t in temperatures]
    print("t:", np.round(temperatures, 1), " exact λ(t):", np.round(exact, 4))
    for label, keys in (("independent", list(jax.random.split(key_method, len(temperatures)))),
                        ("shared", [key_method] * len(temperatures))):
        start = time.perf_counter()
        runs = llc_at_temperatures(model, [data] * len(temperatures), temperatures, keys,
                                   EstimateSettings(n=n, **RUN), MethodContext(pack=False))
        per_chain = np.array([result.per_chain for result, _ in runs])  # [temperatures, chains]
        errors = [result.std_error for result, _ in runs]
        correlation = np.corrcoef(per_chain)
        fit = estimators.fit_rlct_multiplicity(np.array(temperatures), per_chain.mean(axis=1), errors, second_order=True)
        print(f"{label} ({time.perf_counter() - start:.0f} s): λ̂(t) {np.round(per_chain.mean(axis=1), 4)}, "
              f"se {np.round(errors, 4)}")
        print("  correlation of per-chain λ̂ between neighbouring t:",
              np.round([correlation[i, i + 1] for i in range(len(temperatures) - 1)], 2))
        print(f"  model-averaged λ {fit.averaged_rlct:.4f} ± {fit.averaged_rlct_std_error:.4f}")


if __name__ == "__main__":
    main()

"""One SGLD run on a deep linear network at given settings: λ̂ by quarter of the draws, with the predicted bias.

    .venv/bin/python benchmarks/dln_settings_probe.py WIDTHS R NBETA GAMMA EPS STEPS BATCH [SAMPLER] [N] [CHAINS]
    .venv/bin/python benchmarks/dln_settings_probe.py 30,40,25,35 5 1000 0 1e-5 6000 1000 sgld 100000 2

What settings of nβ, γ (localisation), ε, batch size and sampler give an accurate LLC quickly:
one `slt.sample` run of `slt.sgld` (MALA check off) or `slt.rmsprop_sgld` on
`toy_models.get("dln", widths, r)` with the model's N(0, 1) prior, data
`model.sample_data(key, N)` (default N = 10⁵), chains started at w*, a fifth of the steps burn-in,
thinning 10. Prints one JSON line: λ̂ = nβ E[L_b(w) − L_b(w*)] overall and per quarter of the
draws (a drift between quarters means the chains have not equilibrated), the predicted SGLD bias
ε E|ĝ|²/4 per quarter (`slt.sgld` only) and the quarters minus it, the Langevin time steps × ε,
and the wall time with the load average. Results measured with it: dln_settings_probe.md.
"""

import json
import os
import sys
import time

import jax
import numpy as np

import estimators
import slt
import toy_models


def main(argv) -> int:
    widths = tuple(int(x) for x in argv[0].split(","))
    rank, nbeta, localization, step_size = int(argv[1]), float(argv[2]), float(argv[3]), float(argv[4])
    num_steps, batch_size = int(argv[5]), int(argv[6])
    sampler = argv[7] if len(argv) > 7 else "sgld"
    n = int(argv[8]) if len(argv) > 8 else 100_000
    num_chains = int(argv[9]) if len(argv) > 9 else 4
    model = toy_models.get("dln", widths=widths, r=rank)
    key_data, key_run = jax.random.split(jax.random.key(0))
    posterior = slt.TemperedPosterior(loss_fn=model.loss, data=model.sample_data(key_data, n), nbeta=nbeta,
                                      center=model.w_star, localization=localization, prior=model.prior)
    options = {"mala_diagnostic": False} if sampler == "sgld" else {}
    kernel = slt.make_sampler(sampler, posterior, step_size=step_size, batch_size=batch_size, **options)
    thinning = 10
    burnin = num_steps // 5 // thinning * thinning
    start = time.time()
    trace = slt.sample(kernel, model.w_star, key_run, num_chains=num_chains, num_steps=num_steps, num_burnin=burnin,
                       thinning=thinning)
    seconds = time.time() - start
    result = estimators.llc(trace.loss, trace.loss_at_center, nbeta)
    gap = nbeta * (np.asarray(trace.loss, np.float64) - np.asarray(trace.loss_at_center, np.float64))
    draws = gap.shape[1]
    quarters = [float(gap[:, i * draws // 4:(i + 1) * draws // 4].mean()) for i in range(4)]
    squared = np.asarray(trace.info.get("grad_squared_norm", np.full_like(gap, np.nan)), np.float64)
    bias = [float(step_size * squared[:, i * draws // 4:(i + 1) * draws // 4].mean() / 4) for i in range(4)]
    truth = float(model.true_rlct)
    print(json.dumps({
        "widths": widths, "r": rank, "d": model.dimension, "true_rlct": truth, "nbeta": nbeta, "gamma": localization,
        "step_size": step_size, "steps": num_steps, "batch_size": batch_size, "sampler": sampler, "n": n,
        "chains": num_chains, "llc": round(float(result.mean), 2), "std_error": round(float(result.std_error), 2),
        "relative_error": round(float(result.mean) / truth - 1, 4), "quarters": [round(q, 1) for q in quarters],
        "predicted_bias_quarters": [round(b, 1) for b in bias],
        "quarters_minus_bias": [round(q - b, 1) for q, b in zip(quarters, bias)],
        "langevin_time": step_size * num_steps, "seconds": round(seconds, 1), "load": round(os.getloadavg()[0], 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

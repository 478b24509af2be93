"""Where SGD's fast escape from a K > 0 minimum comes from: noise shape, not discreteness.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/dynamics_escape.py [--particles 2000] [--steps 10000]

`slt.dynamics.escape_experiment` on `local_minimum()` (a well at K0 = 0.15 beside the singular
cross, barrier about 0.045) at T = η/(2b) = 0.005 (η = 0.01, b = 1, 5000 data), every particle
starting at the well's bottom, one key (0) for all. Four dynamics at the same drift time and T:

- Brownian motion: noise 2ηT I (isotropic, Hessian-matched on K = 0 only);
- SGD as an SDE (`sgd_sde`): SGD's drift ∇L_n and Gaussian noise of SGD's covariance ηC(w)/b;
- SGD: the same mean and covariance per step, with the minibatch's own (non-Gaussian) law;
- heavy-ball SGD, μ = 0.9, at η_eff = η.

Brownian → SDE changes only the noise's shape; SDE → SGD only its law beyond the covariance.
Also printed: SGD's local temperature η tr C(w)/(2b tr H(w)) at the bottom (`measured_sgd_temperature`),
against T, and SGD's noise power over Brownian motion's, tr C(w)/(2σ²), on the way out
(`gradient_covariance`): where K > 0 the Fisher (C) is not σ²·Hessian. Writes
benchmarks/results/dynamics_escape.{md,json}.
"""

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from slt import dynamics

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    args = parser.parse_args()
    potential = dynamics.local_minimum()
    started = time.time()
    points = dynamics.escape_experiment(potential, jax.random.key(0), learning_rates=(args.learning_rate,),
                                        batch_size=1, momentum=0.9, num_particles=args.particles,
                                        num_steps=args.steps, num_data=5000, num_records=200)
    seconds = time.time() - started
    # the same data set escape_experiment draws (its key_data) and the well's bottom
    data = potential.sample_data(jax.random.split(jax.random.key(0))[0], 5000)
    grid = dynamics.gibbs_grid(potential, 1.0, num_bins=50, refine=2)
    in_well = np.asarray(jax.vmap(potential.basin)(jnp.asarray(grid.points))) == 1
    bottom = grid.points[np.argmin(np.where(in_well, grid.loss, np.inf))]
    local_temperature = float(dynamics.measured_sgd_temperature(potential, data, jnp.asarray(bottom[None]),
                                                                args.learning_rate, 1)[0])
    # SGD's local temperature along the way out: the segment from the bottom towards the origin
    fractions = np.linspace(0.0, 1.0, 11)[:-1]
    path = np.asarray(bottom)[None, :] * (1.0 - fractions[:, None])
    # noise power per step, SGD over Brownian: (η² tr C/b) / (2ηT · 2) = tr C/(2σ²) at T = ησ²/(2b)
    profile = np.asarray([float(jnp.trace(dynamics.gradient_covariance(potential, data, jnp.asarray(w, jnp.float32))))
                          for w in path]) / 2.0
    path_loss = np.asarray(jax.vmap(potential.population_loss)(jnp.asarray(path, jnp.float32)), np.float64)
    well, saddle = dynamics.barrier_height(dynamics.gibbs_grid(potential, 0.05, num_bins=60, refine=2), potential)
    rows = [{"dynamics": p.name, "temperature": p.temperature, "fraction_escaped": p.fraction_escaped.value,
             "std_error": p.fraction_escaped.std_error, "median_steps": p.median_steps} for p in points]
    record = {
        "command": ("PYTHONPATH=$PWD .venv/bin/python benchmarks/dynamics_escape.py "
                    f"--particles {args.particles} --steps {args.steps} --learning-rate {args.learning_rate}"),
        "potential": potential.name, "well_loss": well, "barrier": saddle - well, "batch_size": 1,
        "learning_rate": args.learning_rate, "num_particles": args.particles, "num_steps": args.steps,
        "sgd_local_temperature_at_bottom": local_temperature,
        "way_out": [{"w": list(map(float, w)), "loss": float(k), "noise_power_ratio": float(t)}
                    for w, k, t in zip(path, path_loss, profile)], "rows": rows, "seconds": seconds,
        "machine": platform.platform(), "jax": jax.__version__,
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "dynamics_escape.json"), "w") as handle:
        json.dump(record, handle, indent=2)
    labels = {"brownian": "Brownian, noise 2ηT·I", "sgd_sde": "SGD as SDE, Gaussian noise ηC(w)/b",
              "sgd": "SGD (minibatch)", "heavy_ball": "heavy-ball SGD, μ = 0.9, same η_eff"}
    lines = [
        f"# Escape from a K > 0 minimum: the decomposition ({potential.name})",
        "",
        (f"`{record['command']}` ({seconds:.0f} s). Well at K = {well:.3f}, barrier {saddle - well:.3f}; "
         f"T = η/(2b) = {points[0].temperature:g} (η = {args.learning_rate:g}, b = 1), {args.particles} particles "
         f"from the well's bottom, {args.steps} steps. SGD's local temperature at the bottom, "
         f"η tr C/(2b tr H) = {local_temperature:.4f} (T = {points[0].temperature:g})."),
        "",
        "| dynamics | escaped (± s.e.) | median escape step |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {labels.get(r['dynamics'], r['dynamics'])} | {r['fraction_escaped']:.3f} ± {r['std_error']:.3f} | "
              f"{r['median_steps']:g} |" for r in rows]
    lines += ["", "SGD's noise power per step over Brownian motion's at the same T, tr(η²C(w)/b)/tr(2ηT·I) = "
              "tr C(w)/(2σ²), on the segment from the well's bottom to the origin (through the rim):", "",
              "| w | K(w) | SGD / Brownian noise power |", "| --- | --- | --- |"]
    lines += [f"| ({w[0]:.2f}, {w[1]:.2f}) | {k:.3f} | {t:.2f} |"
              for w, k, t in zip(path, path_loss, profile)]
    with open(os.path.join(RESULTS, "dynamics_escape.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How well can λ be extrapolated from LLCs at several temperatures? A study on exact λ(t).

    .venv/bin/python benchmarks/rlct_fit_study.py        # about a minute; no sampling
    .venv/bin/python benchmarks/rlct_fit_study.py --population   # rlct's population temperatures

For every registry model with d <= 2 the exact population-limit λ(t) = t E_t[K]
(`toy_models.finite_temperature_rlct`, quadrature) at `slt.estimate`'s default rlct temperatures
(5 values of t from 100 to 3000; with --population the 7 from 100 to 30 000) plays the part of the LLC estimates, with Gaussian noise of a
given relative size added (200 replications per model and noise level, seed 0). Each noisy
curve goes through `estimators.fit_rlct_multiplicity(second_order=True)`, and the table gives,
for the best-integer-m fit and for the model-averaged λ (what `slt estimate --method rlct`
reports), the median, 90th percentile and maximum relative error against the true λ, the share
within 10 %, and how often λ lies in estimate ± 1.96 se.

Noise 0 isolates the bias of the shapes λ − (m−1)/log t + b/log² t themselves (the t^(−δ)
approach of m = 1 models is only approximated). The rows above it show how fast the
extrapolation's error grows with the noise of each temperature's LLC. Writes
benchmarks/results/rlct_fit_study.{md,json}.
"""

import argparse
import json
import os
import sys

import numpy as np

import toy_models
from estimators import fit_rlct_multiplicity
from slt.estimate import default_rlct_nbetas

NOISE_LEVELS = (0.0, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05)
REPLICATIONS = 200
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", action="store_true",
                        help="the temperatures of `estimate(..., method='rlct', population=True)`")
    args = parser.parse_args(argv)
    nbetas = default_rlct_nbetas(1_000_000, population=args.population)
    suffix = "_population" if args.population else ""
    curves = []
    for model in toy_models.catalogue():
        if model.dimension > 2 or model.true_rlct is None:
            continue
        try:
            exact = np.array([toy_models.finite_temperature_rlct(model, float(t)) for t in nbetas])
        except ValueError:
            continue
        curves.append((model.label, float(model.true_rlct), exact))
    rng = np.random.default_rng(0)
    rows = []
    for noise in NOISE_LEVELS:
        replications = REPLICATIONS if noise else 1
        found = {"best integer m": ([], []), "model-averaged": ([], [])}
        for _, truth, exact in curves:
            for _ in range(replications):
                errors = np.maximum(noise, 1e-4) * exact
                values = exact + (noise * exact * rng.standard_normal(exact.size) if noise else 0.0)
                fit = fit_rlct_multiplicity(nbetas, values, errors, second_order=True)
                for name, (value, error) in {
                    "best integer m": (fit.rlct_at_integer_multiplicity, fit.rlct_at_integer_std_error),
                    "model-averaged": (fit.averaged_rlct, fit.averaged_rlct_std_error),
                }.items():
                    found[name][0].append(abs(value - truth) / truth)
                    found[name][1].append(abs(value - truth) <= 1.96 * error)
        for name, (relative, covered) in found.items():
            relative = np.array(relative)
            rows.append({"noise": noise, "fit": name, "median": float(np.median(relative)),
                         "p90": float(np.quantile(relative, 0.9)), "max": float(relative.max()),
                         "within_10_percent": float(np.mean(relative <= 0.1)),
                         "coverage": float(np.mean(covered)) if noise else None})
    lines = [
        "# Extrapolating λ from LLCs at t = " + ", ".join(f"{t:.0f}" for t in nbetas),
        "",
        f"Command: `python benchmarks/rlct_fit_study.py{' --population' if args.population else ''}`. Exact λ(t) of the "
        f"{len(curves)} registry models with d <= 2, relative Gaussian noise per temperature, "
        f"{REPLICATIONS} replications per model and noise level (1 at noise 0).",
        "",
        "| noise per LLC | fit | median error | 90th pct | max | within 10 % | λ in ±1.96 se |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        coverage = "–" if row["coverage"] is None else f"{row['coverage']:.0%}"
        lines.append(f"| {row['noise']:.2%} | {row['fit']} | {row['median']:.1%} | {row['p90']:.1%} | {row['max']:.1%} "
                     f"| {row['within_10_percent']:.0%} | {coverage} |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"rlct_fit_study{suffix}.md"), "w") as handle:
        handle.write(text)
    with open(os.path.join(RESULTS, f"rlct_fit_study{suffix}.json"), "w") as handle:
        json.dump({"nbetas": nbetas.tolist(), "models": [c[0] for c in curves], "rows": rows}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

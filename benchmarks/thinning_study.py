"""How many of a run's steps to record: 1000 draws at thinning 40 against 4000 at thinning 10.

    .venv/bin/python benchmarks/thinning_study.py

Both schedules run the same 50 000 SGLD steps per chain (num_draws · thinning · 5/4, with the
burn-in) from the same key, so the chains are the same up to which steps are recorded; only the
number of draws the LLC averages over differs. For each model: λ̂ ± se (MCSE from the bulk ESS,
`estimators.llc`), the ESS, the ratio se(1000 × 40) / se(4000 × 10) and the wall time of each run.
Each run's time includes compiling its own loop. Writes
benchmarks/results/thinning_study.{md,json} and prints the table.
"""

import json
import os
import platform
import statistics
import sys
import time

import jax

import toy_models
from slt.estimate import estimate

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
MODELS = ("regular(d=1)", "normal_crossing(powers=1,1, prior_powers=0,0)", "normal_crossing(powers=1,2, prior_powers=0,0)",
          "normal_crossing(powers=1,1,1, prior_powers=0,0,0)", "rrr(M=5, H=3, N=5, r=0)", "dln(widths=3,3,3,3, r=1)",
          "dln(widths=10,5,10, r=5)", "tanh(H=3, true_units=0)")
SCHEDULES = ((1000, 40), (4000, 10))  # (num_draws, thinning): the same number of steps


def main() -> int:
    catalogue = [m for m in toy_models.catalogue() if m.dimension <= 100]
    key = jax.random.key(0)
    rows = []
    for index, model in enumerate(catalogue):  # keys as in benchmarks/accuracy.py
        if model.label not in MODELS:
            continue
        row = {"model": model.label, "d": model.dimension, "lambda": float(model.true_rlct)}
        for num_draws, thinning in SCHEDULES:
            start = time.perf_counter()
            result = estimate(model, "llc", key=jax.random.fold_in(key, index), num_draws=num_draws, thinning=thinning)
            row[f"{num_draws}x{thinning}"] = {
                "estimate": result.estimate, "std_error": result.std_error, "ess_bulk": result.diagnostics["ess_bulk"],
                "num_steps": result.diagnostics["num_steps"], "seconds": time.perf_counter() - start}
        old, new = (row[f"{d}x{t}"] for d, t in SCHEDULES)
        assert old["num_steps"] == new["num_steps"]
        row["std_error_ratio"] = old["std_error"] / new["std_error"]
        rows.append(row)
        print(f"{model.label:50s} λ={row['lambda']:.4g}  1000×40: {old['estimate']:.4g} ± {old['std_error']:.3g} "
              f"(ESS {old['ess_bulk']:.0f}, {old['seconds']:.0f} s)  4000×10: {new['estimate']:.4g} ± "
              f"{new['std_error']:.3g} (ESS {new['ess_bulk']:.0f}, {new['seconds']:.0f} s)  "
              f"se ratio {row['std_error_ratio']:.2f}", flush=True)
    ratios = [row["std_error_ratio"] for row in rows]
    summary = {"min_ratio": min(ratios), "median_ratio": statistics.median(ratios), "max_ratio": max(ratios)}
    lines = ["# Recording every 10th step against every 40th (same 50 000 steps per chain)", "",
             "Command: `python benchmarks/thinning_study.py`  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, {platform.python_version()}", "",
             "Same key per model as `benchmarks/accuracy.py`; 4 chains, default n, nβ and calibration. se is the",
             "MCSE from the bulk ESS. Times include compilation (each model and schedule compiles its own loop).", "",
             "| model | d | λ | 1000 × 40: λ̂ ± se | ESS | s | 4000 × 10: λ̂ ± se | ESS | s | se ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        old, new = (row[f"{d}x{t}"] for d, t in SCHEDULES)
        lines.append(f"| {row['model']} | {row['d']} | {row['lambda']:.4g} | {old['estimate']:.4g} ± {old['std_error']:.2g} "
                     f"| {old['ess_bulk']:.0f} | {old['seconds']:.0f} | {new['estimate']:.4g} ± {new['std_error']:.2g} "
                     f"| {new['ess_bulk']:.0f} | {new['seconds']:.0f} | {row['std_error_ratio']:.2f} |")
    lines += ["", f"se ratio (1000 × 40 over 4000 × 10): min {summary['min_ratio']:.2f}, median "
                  f"{summary['median_ratio']:.2f}, max {summary['max_ratio']:.2f}", ""]
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "thinning_study.md"), "w") as handle:
        handle.write("\n".join(lines))
    with open(os.path.join(RESULTS, "thinning_study.json"), "w") as handle:
        json.dump({"command": "python benchmarks/thinning_study.py", "summary": summary, "rows": rows}, handle, indent=1)
    print(lines[-2])
    return 0


if __name__ == "__main__":
    sys.exit(main())

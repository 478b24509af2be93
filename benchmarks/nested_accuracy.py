"""Accuracy and cost of λ and m by nested sampling (`slt.nested_rlct`) on the registry catalogue.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/nested_accuracy.py                 # every model with d <= 30
    PYTHONPATH=$PWD .venv/bin/python benchmarks/nested_accuracy.py --min-dimension 31 --max-dimension 100 \
        --max-seconds 240 --stem timing_nested       # time against d (rrr and dln up to d = 100)

For each model: λ̂ ± se at m̂, the 95 % interval λ̂ ± 1.96 se, m̂ with P(m), the registry's λ and
m, |λ̂ − λ|/λ, whether the interval holds λ, the fit window, the stop reason and the seconds (on
the population K, the model's own prior, one seed per model from `jax.random.key(seed)` split by
model index). Rows are written after every model to benchmarks/results/accuracy_nested.{md,csv,json}
(with the machine, its load, the command and package versions), so a partial table is usable.
"""

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time

import jax
import numpy as np

import estimators
import slt
import toy_models

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def run_path(runs_dir, model) -> str:
    return os.path.join(runs_dir, "".join(c if c.isalnum() or c in ",=_-" else "_" for c in model.label) + ".npz")


def run_model(model, key, settings, runs_dir=None, from_runs=False) -> dict:
    started = time.perf_counter()
    if from_runs:  # re-read a saved run: the estimator changed, the sampling did not
        run = slt.load_nested_run(run_path(runs_dir, model))
    else:
        run = slt.nested_sample_model(key, model, progress=False, **settings)
        if runs_dir:
            slt.save_nested_run(run_path(runs_dir, model), run)
    truth = None if model.true_rlct is None else float(model.true_rlct)
    reached = {"log_loss_reached": float(np.log(run.death_loss[-1])),
               "log_volume_reached": float(-np.sum(1.0 / run.num_live)),
               "num_dead": int(run.death_loss.size), "stop_reason": run.stop_reason,
               "sampling_seconds": run.seconds}
    try:
        result = estimators.rlct_from_dead_points(run.death_loss, run.num_live)
    except ValueError as error:  # too shallow for any window: a row that says so
        return {"model": model.label, "d": model.dimension, "lambda": truth, "m": model.multiplicity,
                "estimate": None, "std_error": None, "systematic_error": None, "interval_low": None, "interval_high": None,
                "relative_error": None, "covered": None, "m_hat": None, "m_best": None, "p_m": None, "lambda_by_m": None,
                "gap_dispersion": None,
                "window_s": None, "num_in_window": 0, "asymptotic": False, "reasons": [str(error)],
                **reached, "seconds": (run.seconds if from_runs else 0.0) + time.perf_counter() - started}
    seconds = (run.seconds if from_runs else 0.0) + time.perf_counter() - started
    return {
        "model": model.label, "d": model.dimension, "lambda": truth, "m": model.multiplicity,
        "estimate": result.estimate, "std_error": result.std_error, "systematic_error": result.systematic_error,
        "interval_low": result.interval[0], "interval_high": result.interval[1],
        "relative_error": None if truth is None else abs(result.estimate - truth) / truth,
        "covered": None if truth is None else bool(result.interval[0] <= truth <= result.interval[1]),
        "m_hat": result.multiplicity_estimate, "m_best": result.multiplicity, "p_m": [round(float(p), 4) for p in result.multiplicity_probabilities],
        "lambda_by_m": [round(float(v), 5) for v in result.rlct_by_multiplicity],
        "window_s": [round(v, 3) for v in result.diagnostics.window],
        "num_in_window": result.diagnostics.num_in_window, "gap_dispersion": result.diagnostics.gap_dispersion,
        "asymptotic": result.diagnostics.asymptotic_regime_reached,
        "reasons": list(result.diagnostics.reasons), "warnings": list(result.diagnostics.warnings),
        **reached, "seconds": seconds,
    }


def summarise(rows) -> dict:
    known = [r for r in rows if r["lambda"] is not None and r["estimate"] is not None]
    with_m = [r for r in known if r["m"] is not None]
    errors = [r["relative_error"] for r in known]
    return {
        "models": len(rows),
        "median_relative_error": statistics.median(errors) if errors else None,
        "max_relative_error": max(errors) if errors else None,
        "within_3_percent": sum(e <= 0.03 for e in errors),
        "coverage": sum(r["covered"] for r in known) / len(known) if known else None,
        "m_correct": sum(r["m_hat"] == r["m"] for r in with_m), "m_known": len(with_m),
        "m_reported": sum(r["m_hat"] is not None for r in with_m),
        "m_wrong": sum(r["m_hat"] is not None and r["m_hat"] != r["m"] for r in with_m),
        "max_seconds": max(r["seconds"] for r in rows) if rows else None,
        "median_seconds": statistics.median(r["seconds"] for r in rows) if rows else None,
    }


def write(rows, header, stem) -> None:
    os.makedirs(RESULTS, exist_ok=True)
    summary = summarise(rows)
    with open(os.path.join(RESULTS, f"{stem}.json"), "w") as stream:
        json.dump({**header, "summary": summary, "rows": rows}, stream, indent=1)
    columns = [c for c in rows[0] if c not in ("reasons", "warnings")] + ["reasons", "warnings"]
    with open(os.path.join(RESULTS, f"{stem}.csv"), "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("; ".join(v) if k in ("reasons", "warnings") else v) for k, v in row.items()})
    lines = [
        "# λ and m by nested sampling (`slt.nested_rlct`, population K, the model's prior)", "",
        f"Command: `{header['command']}`  ", f"Machine: {header['machine']}  ",
        f"Load average at start / end: {header['load_start']} / {header.get('load_end', 'running')}  ",
        f"Settings: {header['settings']}, seed {header['seed']}  ", f"Versions: {header['versions']}", "",
        *([f"Note: {header['note']}", ""] if header.get("note") else []),
        f"Summary: {json.dumps(summary)}", "",
        "m̂: the multiplicity reported, or null when the evidence for it is not clear (P(m̂) < 0.9, or m̂ changes as "
        "the window start moves deeper); λ̂ is then at the m in brackets. ± sys: λ averaged over m by P(m). "
        "D: dispersion of the rescaled gaps (batch means; se is multiplied by √D when D > 1).", "",
        "| model | d | λ | m | λ̂ ± se ± sys | 95 % interval | rel. err | in | m̂ | P(m) | D | window s | asympt. | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["estimate"] is None:
            lines.append(f"| {r['model']} | {r['d']} | {r['lambda']} | {r['m']} | failed: {r['reasons'][0]} "
                         f"(log K reached {r['log_loss_reached']:.1f}, log X {r['log_volume_reached']:.1f}, "
                         f"{r['stop_reason']}) | | | | | | | | | {r['seconds']:.1f} |")
            continue
        rel = "" if r["relative_error"] is None else f"{100 * r['relative_error']:.2f} %"
        lines.append(
            f"| {r['model']} | {r['d']} | {r['lambda']} | {r['m']} | {r['estimate']:.4f} ± {r['std_error']:.4f} ± "
            f"{r['systematic_error']:.4f} | [{r['interval_low']:.4f}, {r['interval_high']:.4f}] | {rel} | {r['covered']} | "
            f"{'null (' + str(r['m_best']) + ')' if r['m_hat'] is None else r['m_hat']} | {r['p_m']} | "
            f"{r['gap_dispersion']:.2f} | {r['window_s']} | {r['asymptotic']} | {r['seconds']:.1f} |"
        )
    with open(os.path.join(RESULTS, f"{stem}.md"), "w") as stream:
        stream.write("\n".join(lines) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-dimension", type=int, default=30)
    parser.add_argument("--min-dimension", type=int, default=1)
    parser.add_argument("--families", default="", help="comma-separated families (default: all)")
    parser.add_argument("--num-live", type=int, default=500)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--stem", default="accuracy_nested")
    parser.add_argument("--exclude-families", default="", help="comma-separated families to leave out")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in <stem>.json, run the rest")
    parser.add_argument("--note", default="", help="a note printed under the table's header (what was left out, why)")
    parser.add_argument("--runs-dir", default="", help="save each run here (.npz, not committed: a few MB each)")
    parser.add_argument("--from-runs", action="store_true",
                        help="re-estimate from the runs saved in --runs-dir (seconds: the saved sampling time)")
    parser.add_argument("--render-only", action="store_true", help="rewrite <stem>.md/csv from <stem>.json, no runs")
    args = parser.parse_args(argv)
    if args.render_only:
        with open(os.path.join(RESULTS, f"{args.stem}.json")) as stream:
            stored = json.load(stream)
        rows = stored.pop("rows")
        stored.pop("summary")
        write(rows, {**stored, **({"note": args.note} if args.note else {})}, args.stem)
        return
    families = set(filter(None, args.families.split(",")))
    excluded = set(filter(None, args.exclude_families.split(",")))
    models = sorted(
        (m for m in toy_models.catalogue() if args.min_dimension <= m.dimension <= args.max_dimension
         and (not families or m.name in families) and m.name not in excluded),
        key=lambda m: m.dimension,
    )
    settings = {"num_live": args.num_live, "num_inner_steps": args.sweeps, "max_seconds": args.max_seconds}
    header = {
        "command": " ".join([os.path.relpath(sys.argv[0])] + (argv if argv is not None else sys.argv[1:])),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "load_start": " ".join(f"{x:.1f}" for x in os.getloadavg()), "settings": settings, "seed": args.seed,
        "versions": slt.package_versions(), **({"note": args.note} if args.note else {}),
    }
    keys = jax.random.split(jax.random.key(args.seed), len(models))
    rows, done = [], set()
    if args.resume and os.path.exists(os.path.join(RESULTS, f"{args.stem}.json")):
        with open(os.path.join(RESULTS, f"{args.stem}.json")) as stream:
            previous = json.load(stream)
        rows, done = previous["rows"], {r["model"] for r in previous["rows"]}
        header["command"] = previous["command"] + " ; then " + header["command"]
        header["load_start"] = previous["load_start"] + " ; then " + header["load_start"]
    for index, model in enumerate(models):  # key: index in this invocation's model list (see the command)
        if model.label in done:
            continue
        rows.append(run_model(model, keys[index], settings, args.runs_dir, args.from_runs))
        header["load_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
        write(rows, header, args.stem)
        r = rows[-1]
        value = "failed" if r["estimate"] is None else f"λ̂={r['estimate']:.4f}±{r['std_error']:.4f}±{r['systematic_error']:.4f} m̂={r['m_hat']}"
        print(f"{r['model']:55s} d={r['d']:3d} λ={r['lambda']} m={r['m']} {value} {r['seconds']:.0f}s {r['reasons'] or ''}",
              flush=True)
    print(json.dumps(summarise(rows)))


if __name__ == "__main__":
    main()

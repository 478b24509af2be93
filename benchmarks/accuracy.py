"""Accuracy of `slt estimate` with default settings on every registry model with d <= 100.

    .venv/bin/python benchmarks/accuracy.py            # the full catalogue (d <= 100), method llc
    .venv/bin/python benchmarks/accuracy.py --quick    # a 4-model smoke test
    .venv/bin/python benchmarks/accuracy.py --method rlct
    .venv/bin/python benchmarks/accuracy.py --from-json benchmarks/results/accuracy_llc.json  # no llc rerun

For each model: λ̂ ± se from `slt.estimate(model, method, key=...)` with the library's
defaults (n = 10⁶, 4 chains × 4000 draws, ε calibrated), |λ̂ − λ|/λ against the registry's exact
λ, whether λ lies in λ̂ ± 1.96 se, and, for method llc, the same against the finite-temperature
value λ(nβ) = t E_t[K] of the population K at the run's t = nβ, which is what the error bar is
about: by quadrature for d <= 2 (`toy_models.finite_temperature_rlct`, exact) and by nested
sampling otherwise (95 % band over Skilling's log-X paths), so

    λ̂ − λ = (λ̂ − λ(nβ)) + (λ(nβ) − λ):  the SGLD sampler error + the finite-temperature bias

on every row it reaches. The nested λ(nβ) is cached by model and nβ (`--nested-cache`, a JSON file
next to the results; rows of benchmarks/results/llc_against_nested.json made with the same
settings are reused too), so a rerun samples only what is new; `--recompute-nested` ignores both.
For method wbic the λ̂ is the implied (WBIC − n L_n(w*)) / log n. Writes Markdown, CSV and JSON to
benchmarks/results/accuracy[_quick]_<method>.{md,csv,json} and prints the summary.
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

import toy_models
from slt.estimate import INTERVAL_Z, estimate

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
if BENCHMARKS not in sys.path:  # when loaded by path (tests), not run as a script
    sys.path.insert(0, BENCHMARKS)
from lambda_t_column import (  # noqa: E402
    cache_key,
    finite_temperature_value,
    load_nested_cache,
    nested_entry,
    save_nested_cache,
    with_finite_temperature,
)

QUICK = ("regular(d=2)", "normal_crossing(powers=1,2, prior_powers=0,0)", "rrr(M=3, H=2, N=4, r=0)",
         "dln(widths=2,2,2, r=0)")
RESULTS = os.path.join(BENCHMARKS, "results")
NESTED_CACHE = os.path.join(RESULTS, "nested_lambda_t_cache.json")


def empirical_lambda_t(model, data, nbeta: float) -> float | None:
    """The exact λ_n(nβ) of this very data set (`toy_models.empirical_finite_temperature_rlct`),
    so the sampler can be judged apart from the data-set fluctuation; None for other families or d > 2."""
    if model.name != "normal_crossing" or model.dimension > 2:
        return None
    return toy_models.empirical_finite_temperature_rlct(model, data, nbeta)


def row_for(model, result, empirical=None) -> dict:
    if result.method == "wbic":
        value, error = result.diagnostics["implied_rlct"], result.diagnostics["implied_rlct_std_error"]
        systematic = result.diagnostics["implied_rlct_systematic_error"]
    else:
        value, error, systematic = result.estimate, result.std_error, result.systematic_error
    truth = None if model.true_rlct is None else float(model.true_rlct)
    exact = result.diagnostics.get("exact_at_nbeta")

    def in_interval(target, half_width=INTERVAL_Z * error + systematic):
        return None if target is None else bool(abs(target - value) <= half_width)

    def in_mc_interval(target):  # Monte-Carlo error alone, as the table reported before systematic_error
        return in_interval(target, INTERVAL_Z * error)

    return {
        "model": model.label,
        "d": model.dimension,
        "lambda": truth,
        "lambda_fraction": None if model.true_rlct is None else str(model.true_rlct),
        "m": model.multiplicity,
        "estimate": value,
        "std_error": error,
        "systematic_error": systematic,
        "relative_error": None if truth is None else abs(value - truth) / truth,
        "truth_in_interval": in_interval(truth),
        "truth_in_mc_interval": in_mc_interval(truth),
        "nbeta": result.nbeta,
        "exact_at_nbeta": exact,
        "relative_error_vs_exact": None if exact is None else abs(value - exact) / exact,
        "exact_in_interval": in_interval(exact),
        "exact_in_mc_interval": in_mc_interval(exact),
        "empirical_exact_at_nbeta": empirical,
        "empirical_exact_in_interval": in_interval(empirical),
        "empirical_exact_in_mc_interval": in_mc_interval(empirical),
        "reliable": not result.unreliable,
        "reasons": "; ".join(result.diagnostics["reasons"]),
        "rhat": result.diagnostics.get("rhat"),
        "ess_bulk": result.diagnostics.get("ess_bulk"),
        "mala_acceptance": result.diagnostics.get("mala_acceptance"),
        "step_size": result.diagnostics.get("step_size"),
        "predicted_step_size_bias": result.diagnostics.get("predicted_step_size_bias"),
        # the first stage's predicted bias where the run was continued at a smaller ε (else None)
        "first_stage_predicted_bias": next((stage["predicted_step_size_bias"]
                                            for stage in result.diagnostics.get("step_size_refinements") or []), None),
        "langevin_time": (result.diagnostics.get("langevin_time") if result.method != "rlct"
                          else min(p["langevin_time"] for p in result.diagnostics["per_temperature"])),
        "multiplicity_estimate": result.diagnostics.get("multiplicity_estimate"),
        "seconds": result.seconds,
    }


def summarise(rows) -> dict:
    known = [r for r in rows if r["relative_error"] is not None]
    exact = [r for r in rows if r["relative_error_vs_exact"] is not None]
    quadrature = [r for r in exact if r.get("exact_source", "quadrature") == "quadrature"]
    biased = [r for r in exact if r.get("finite_temperature_bias") is not None]
    empirical = [r for r in rows if r["empirical_exact_at_nbeta"] is not None]

    def share(subset, flag):
        return sum(r[flag] for r in subset) / len(subset) if subset else None

    def median(subset, field):
        return statistics.median(abs(r[field]) for r in subset) if subset else None
    return {
        "models": len(rows),
        "with_known_lambda": len(known),
        "max_relative_error": max((r["relative_error"] for r in known), default=None),
        "median_relative_error": statistics.median(r["relative_error"] for r in known) if known else None,
        "within_10_percent": sum(r["relative_error"] <= 0.10 for r in known),
        "coverage_of_lambda": share(known, "truth_in_interval"),
        "mc_coverage_of_lambda": share(known, "truth_in_mc_interval"),
        # against λ(nβ) on every row that has one (quadrature or nested)
        "with_exact_lambda_t": len(exact),
        "with_nested_lambda_t": len(exact) - len(quadrature),
        "without_lambda_t": [r["model"] for r in rows if r["relative_error_vs_exact"] is None],
        "max_relative_error_vs_exact": max((r["relative_error_vs_exact"] for r in exact), default=None),
        "median_relative_error_vs_exact": median(exact, "relative_error_vs_exact"),
        "coverage_of_exact_lambda_t": share(exact, "exact_in_interval"),
        "mc_coverage_of_exact_lambda_t": share(exact, "exact_in_mc_interval"),
        "coverage_of_exact_lambda_t_with_band": share([r for r in exact if "exact_in_interval_with_band" in r],
                                                      "exact_in_interval_with_band"),
        # the quadrature rows alone (d <= 2), as the table reported before the nested column
        "with_quadrature_lambda_t": len(quadrature),
        "median_relative_error_vs_quadrature": median(quadrature, "relative_error_vs_exact"),
        "coverage_of_quadrature_lambda_t": share(quadrature, "exact_in_interval"),
        "median_finite_temperature_bias": median(biased, "finite_temperature_bias"),
        "max_finite_temperature_bias": max((abs(r["finite_temperature_bias"]) for r in biased), default=None),
        "finite_temperature_bias_over_10_percent": sum(abs(r["finite_temperature_bias"]) > 0.10 for r in biased),
        "with_empirical_lambda_t": len(empirical),
        "coverage_of_empirical_lambda_t": share(empirical, "empirical_exact_in_interval"),
        "mc_coverage_of_empirical_lambda_t": share(empirical, "empirical_exact_in_mc_interval"),
        "reliable": sum(r["reliable"] for r in rows),
        "total_seconds": sum(r["seconds"] for r in rows),
    }


def fmt(value, spec=".3g"):
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def lambda_t_cell(row) -> str:
    if row.get("exact_low") is None:
        return fmt(row["exact_at_nbeta"], ".4g")
    return f"{row['exact_at_nbeta']:.4g} [{row['exact_low']:.4g}, {row['exact_high']:.4g}]"


def source_cell(row) -> str:
    source = row.get("exact_source") or ("quadrature" if row["exact_at_nbeta"] is not None else None)
    return {"quadrature": "quad", "nested": "nested", None: "–"}.get(source, source)


def markdown(rows, summary, command, method) -> str:
    lines = [
        f"# Accuracy of `slt estimate --method {method}` "
        + ("(default settings)" if not any(flag in command for flag in ("--population", "--chains", "--batch-size", "--thinning", "--draws"))
           else "(the settings in the command)"),
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, {platform.python_version()}",
        "",
        "λ̂ ± se ± sys: se is the Monte-Carlo standard error at nβ, sys the SGLD step-size/minibatch bias",
        "predicted on the run's own draws (ε E|ĝ|²/4; rlct: carried through its fit). 'in CI' is the reported interval",
        "λ̂ ± (1.96 se + sys); the summary also gives the coverage of λ̂ ± 1.96 se alone. λ(nβ) = t E_t[K] is the",
        "population-limit finite-temperature value, the quantity a single-temperature LLC measures: exact by",
        "quadrature for d <= 2 ('quad'), else by nested sampling ('nested', its 95 % band over log-X paths in",
        "brackets; cached by model and nβ, see the script). λ̂ − λ = (λ̂ − λ(nβ)) + (λ(nβ) − λ): the sampler's",
        "error plus the finite-temperature bias (column 'bias').",
        "",
        "λ_n(nβ) is the same for the run's own data set (normal crossings: sufficient statistics), so it",
        "separates the sampler's error from the data-set fluctuation λ_n(t) − λ(t).",
        "",
    ]
    with_bias = any(r.get("predicted_step_size_bias") is not None for r in rows)  # not rlct: one bias per temperature
    if with_bias:
        lines += ["SGLD bias is the step-size/minibatch bias predicted on the run's own draws; in brackets, the",
                  "first stage's where that was over 3 % and the run was continued at a smaller ε. T is the",
                  "run's Langevin time (steps × ε, summed over the stages; the diagnostics warn below 1).", ""]
    lines += [
        "| model | d | λ | m | λ̂ ± se ± sys | \\|λ̂−λ\\|/λ | λ in CI | λ(nβ) | from | \\|λ̂−λ(nβ)\\|/λ(nβ) | λ(nβ) in CI | bias | "
        "λ_n(nβ) | λ_n(nβ) in CI | " + ("SGLD bias | T | " if with_bias else "") + "reliable | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if with_bias else "") + "---|---|",
    ]
    for r in rows:
        bias = ""
        if with_bias:
            first = r.get("first_stage_predicted_bias")
            bias = (f"| {fmt(r.get('predicted_step_size_bias'), '.1%')}" + (f" ({first:.1%})" if first is not None else "")
                    + f" | {fmt(r.get('langevin_time'), '.2g')} ")
        lines.append(
            f"| {r['model']} | {r['d']} | {r['lambda_fraction'] or '?'} | {r['m'] if r['m'] is not None else '?'} "
            f"| {r['estimate']:.4g} ± {r['std_error']:.2g}"
            + (f" ± {r['systematic_error']:.2g}" if r.get("systematic_error") else "")
            + f" | {fmt(r['relative_error'], '.1%')} | {fmt(r['truth_in_interval'])} "
            f"| {lambda_t_cell(r)} | {source_cell(r)} | {fmt(r['relative_error_vs_exact'], '.1%')} "
            f"| {fmt(r['exact_in_interval'])} | {fmt(r.get('finite_temperature_bias'), '+.1%')} "
            f"| {fmt(r['empirical_exact_at_nbeta'], '.4g')} | {fmt(r['empirical_exact_in_interval'])} "
            f"{bias}| {fmt(r['reliable'])} | {r['seconds']:.0f} |"
        )
    s = summary
    lines += [
        "",
        "## Summary",
        "",
        f"- models: {s['models']} ({s['with_known_lambda']} with known λ), reliable: {s['reliable']}",
        f"- against the true λ: max relative error {fmt(s['max_relative_error'], '.1%')}, median "
        f"{fmt(s['median_relative_error'], '.1%')}, within 10 %: {s['within_10_percent']}/{s['with_known_lambda']}, "
        f"λ inside λ̂ ± (1.96 se + sys): {fmt(s['coverage_of_lambda'], '.0%')} "
        f"(inside λ̂ ± 1.96 se: {fmt(s['mc_coverage_of_lambda'], '.0%')})",
        f"- sampler error against λ(nβ) ({s['with_exact_lambda_t']} models: {s['with_quadrature_lambda_t']} by quadrature, "
        f"{s.get('with_nested_lambda_t', 0)} by nested sampling; none for {', '.join(s.get('without_lambda_t') or []) or '–'}): "
        f"|λ̂ − λ(nβ)|/λ(nβ) max {fmt(s['max_relative_error_vs_exact'], '.1%')}, "
        f"median {fmt(s['median_relative_error_vs_exact'], '.1%')}; λ(nβ) inside λ̂ ± (1.96 se + sys): "
        f"{fmt(s['coverage_of_exact_lambda_t'], '.0%')} (± 1.96 se alone: {fmt(s['mc_coverage_of_exact_lambda_t'], '.0%')}; "
        f"with the nested band's sd added in quadrature: {fmt(s.get('coverage_of_exact_lambda_t_with_band'), '.0%')})",
        f"- the quadrature rows alone (d <= 2, {s['with_quadrature_lambda_t']} models): median "
        f"{fmt(s['median_relative_error_vs_quadrature'], '.1%')}, coverage {fmt(s['coverage_of_quadrature_lambda_t'], '.0%')}",
        f"- finite-temperature bias |λ(nβ) − λ|/λ: median {fmt(s['median_finite_temperature_bias'], '.1%')}, "
        f"max {fmt(s['max_finite_temperature_bias'], '.1%')}, over 10 % on {s['finite_temperature_bias_over_10_percent']} "
        f"of {s['with_exact_lambda_t']}",
        f"- against the exact λ_n(nβ) of the run's own data ({s['with_empirical_lambda_t']} normal crossings): "
        f"coverage {fmt(s['coverage_of_empirical_lambda_t'], '.0%')} "
        f"(± 1.96 se alone: {fmt(s['mc_coverage_of_empirical_lambda_t'], '.0%')})",
        f"- total time {s['total_seconds']:.0f} s",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 small models only (smoke test)")
    parser.add_argument("--method", default="llc", choices=("llc", "wbic", "rlct"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-dimension", type=int, default=100)
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--population", action="store_true",
                        help="sample the population posterior (estimate(..., population=True); llc and rlct)")
    parser.add_argument("--chains", type=int, default=None, help="num_chains (default: estimate's)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch_size (default: estimate's)")
    parser.add_argument("--thinning", type=int, default=None, help="thinning (default: estimate's)")
    parser.add_argument("--draws", type=int, default=None, help="num_draws (default: estimate's)")
    parser.add_argument("--nested-cache", default=NESTED_CACHE, help="cache of nested λ(nβ) by model and nβ")
    parser.add_argument("--recompute-nested", action="store_true", help="sample every nested λ(nβ) again")
    parser.add_argument("--no-nested", action="store_true", help="λ(nβ) by quadrature only (d <= 2)")
    parser.add_argument("--from-json", default=None,
                        help="recompute the λ(nβ) columns and summary of a results JSON made by this script "
                             "(no llc rerun) and rewrite its .md/.csv/.json")
    args = parser.parse_args(argv)
    settings = {name: value for name, value in (("num_chains", args.chains), ("batch_size", args.batch_size),
                                                ("thinning", args.thinning), ("num_draws", args.draws))
                if value is not None}
    if args.population:
        settings["population"] = True
    catalogue = [m for m in toy_models.catalogue() if m.dimension <= args.max_dimension]
    index_of = {model.label: index for index, model in enumerate(toy_models.catalogue())}
    key = jax.random.key(args.seed)
    cache = {} if args.no_nested else load_nested_cache(args.nested_cache, reuse_llc_against_nested=not args.recompute_nested)
    recomputed = set()

    def cache_lookup(model, nbeta):
        name = cache_key(model.label, nbeta)
        if name not in cache or (args.recompute_nested and name not in recomputed):
            # its own key: fold_in(key(seed), catalogue index), as llc_against_nested.py's row index
            rule = f"fold_in(key({args.seed}), {index_of[model.label]})"
            print(f"nested λ(nβ = {nbeta:g}) of {model.label} ...", flush=True)
            cache[name] = nested_entry(model, nbeta, jax.random.fold_in(key, index_of[model.label]), rule)
            recomputed.add(name)
            save_nested_cache(args.nested_cache, cache)
        return cache[name]

    def add_lambda_t(row, model, quadrature):
        if args.method != "llc" or args.no_nested:  # nested λ(nβ) is the llc's target only
            return with_finite_temperature(row, quadrature, None if quadrature is None else "quadrature")
        return with_finite_temperature(row, *finite_temperature_value(model, row["nbeta"], quadrature, cache_lookup))

    by_label = {model.label: model for model in catalogue}
    start = time.perf_counter()
    if args.from_json:
        with open(args.from_json) as handle:
            stored = json.load(handle)
        rows = []
        for stored_row in stored["rows"]:
            quadrature = stored_row["exact_at_nbeta"] if stored_row.get(
                "exact_source", "quadrature" if stored_row["exact_at_nbeta"] is not None else None) == "quadrature" else None
            rows.append(add_lambda_t(stored_row, by_label[stored_row["model"]], quadrature))
        command = stored["command"].split(" ; λ(nβ) columns: ")[0] + " ; λ(nβ) columns: python benchmarks/accuracy.py " + " ".join(
            argv if argv is not None else sys.argv[1:])
        stem = args.from_json[:-len(".json")] if args.from_json.endswith(".json") else args.from_json
    else:
        models = [m for m in catalogue if m.label in QUICK] if args.quick else catalogue
        rows = []
        for index, model in enumerate(models):
            model_key = jax.random.fold_in(key, index)
            result = estimate(model, args.method, key=model_key, **settings)
            empirical = None
            if args.method == "llc" and not args.population:  # `estimate` draws its data with the first half of its key
                empirical = empirical_lambda_t(model, model.sample_data(jax.random.split(model_key)[0], result.n), result.nbeta)
            row = add_lambda_t(row_for(model, result, empirical), model, result.diagnostics.get("exact_at_nbeta"))
            rows.append(row)
            print(f"[{time.perf_counter() - start:6.0f} s] {row['model']:50s} d={row['d']:3d} λ={row['lambda_fraction'] or '?':>5s} "
                  f"λ̂={row['estimate']:.4g}±{row['std_error']:.2g} rel={fmt(row['relative_error'], '.1%'):>6s} "
                  f"λ(t)={fmt(row['exact_at_nbeta'], '.4g'):>6s} ({source_cell(row)}) {'ok' if row['reliable'] else 'UNRELIABLE'} "
                  f"({row['seconds']:.0f} s)", flush=True)
        command = "python benchmarks/accuracy.py" + (" --quick" if args.quick else "") + (
            f" --method {args.method}" if args.method != "llc" else "") + (f" --seed {args.seed}" if args.seed else "") + (
            " --population" if args.population else "") + (f" --chains {args.chains}" if args.chains else "") + (
            f" --batch-size {args.batch_size}" if args.batch_size else "") + (
            f" --thinning {args.thinning}" if args.thinning else "") + (f" --draws {args.draws}" if args.draws else "") + (
            " --no-nested" if args.no_nested else "") + (" --recompute-nested" if args.recompute_nested else "")
        os.makedirs(args.out, exist_ok=True)
        stem = os.path.join(args.out, f"accuracy{'_quick' if args.quick else ''}_{args.method}"
                                      f"{'_population' if args.population else ''}"
                                      f"{f'_chains{args.chains}' if args.chains else ''}"
                                      f"{f'_b{args.batch_size}' if args.batch_size else ''}"
                                      f"{f'_thin{args.thinning}' if args.thinning else ''}"
                                      f"{f'_draws{args.draws}' if args.draws else ''}")
    summary = summarise(rows)
    with open(stem + ".md", "w") as handle:
        handle.write(markdown(rows, summary, command, args.method))
    with open(stem + ".csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(stem + ".json", "w") as handle:
        json.dump({"command": command, "summary": summary, "rows": rows}, handle, indent=1)
    print(markdown([], summary, command, args.method).split("## Summary")[1].strip())
    print(f"wrote {stem}.md/.csv/.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

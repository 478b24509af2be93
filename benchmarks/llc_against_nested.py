"""The SGLD llc's sampler error apart from its finite-temperature bias, on every row of the llc table.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/llc_against_nested.py            # every row
    PYTHONPATH=$PWD .venv/bin/python benchmarks/llc_against_nested.py --resume   # go on after a stop

For each row of benchmarks/results/accuracy_llc.json (the committed `slt estimate --method llc`
table, not rerun) this computes λ(nβ) = t E_t[K] at that row's t = nβ by nested sampling
(`slt.nested_sample_model` then `estimators.lambda_curve`: the population K(w) under the model's
own prior, 95 % band over Skilling's log-X paths), so

    λ̂ − λ = (λ̂ − λ(nβ)) + (λ(nβ) − λ):  the SGLD sampler error + the finite-temperature bias.

Like for like: the nested λ(nβ) is of the POPULATION K, the same quantity as the table's quadrature
column (`toy_models.finite_temperature_rlct`, d <= 2), which it is checked against. The llc itself
ran on one data set of n = 10⁶ (γ = 0), so λ̂ − λ(nβ) also holds that data set's fluctuation
λ_n(nβ) − λ(nβ) (the llc table's λ_n column measures it for the normal crossings).

The run stops when the live points hold < 1e-4 of Z(nβ) (`max_temperature`; no minimum depth: only
λ(nβ) is wanted) or at `--max-seconds`; a row stopped by time says so (`converged` false, with the
live points' share of Z(nβ)) and is left out of the summary. Keys: `jax.random.key(seed)` folded
with the row's index in the llc table, split into `key_run` and `key_paths` as `slt.nested_rlct`
does. Each finished row is written at once (atomically) to
benchmarks/results/llc_against_nested.{md,csv,json}; `--resume` keeps the rows already there.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

import estimators
import slt
import toy_models

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
INTERVAL_Z = 1.96
NESTED_KEYS = ("nested", "nested_low", "nested_high", "stop_reason", "converged", "live_share_of_z", "num_dead",
               "log_volume_reached", "min_acceptance")


def nested_lambda_t(key, model, nbeta: float, settings: dict, num_paths: int = 64) -> dict:
    """λ(nβ) on the population by nested sampling, with its band, stop reason and live share of Z(nβ)."""
    key_run, key_paths = jax.random.split(key)
    run = slt.nested_sample_model(key_run, model, progress=False, max_temperature=float(nbeta), **settings)
    seed = int(jax.random.randint(key_paths, (), 0, np.iinfo(np.int32).max))
    curve = estimators.lambda_curve(run.death_loss, run.num_live, run.live_loss, [float(nbeta)], seed=seed,
                                    num_paths=num_paths)
    # the live points' share of Z(t) at the expected log X (the stopping rule's quantity)
    log_x = -np.cumsum(1.0 / run.num_live)
    log_dx = np.concatenate([[0.0], log_x[:-1]]) + np.log(-np.expm1(log_x - np.concatenate([[0.0], log_x[:-1]])))
    log_z_dead = np.logaddexp.reduce(log_dx - nbeta * run.death_loss)
    log_z_live = log_x[-1] + np.logaddexp.reduce(-nbeta * run.live_loss) - np.log(run.live_loss.size)
    return {"nested": float(curve.rlct[0]), "nested_low": float(curve.rlct_band[0, 0]),
            "nested_high": float(curve.rlct_band[1, 0]), "stop_reason": run.stop_reason,
            "converged": run.stop_reason == "depth reached",
            "live_share_of_z": float(np.exp(log_z_live - np.logaddexp(log_z_dead, log_z_live))),
            "num_dead": int(run.death_loss.size), "log_volume_reached": float(log_x[-1]),
            "min_acceptance": float(run.min_acceptance)}


def compare(llc_row: dict, nested: dict) -> dict:
    """One output row: the llc's numbers, the nested λ(nβ), the bias and the sampler error."""
    truth, estimate = llc_row["lambda"], llc_row["estimate"]
    std_error, systematic = llc_row["std_error"], llc_row["systematic_error"] or 0.0
    value = nested["nested"]
    quadrature = llc_row.get("exact_at_nbeta")
    sampler_error = estimate - value
    nested_sd = (nested["nested_high"] - nested["nested_low"]) / (2 * INTERVAL_Z)
    return {
        "model": llc_row["model"], "d": llc_row["d"], "lambda": truth, "lambda_fraction": llc_row["lambda_fraction"],
        "m": llc_row["m"], "nbeta": llc_row["nbeta"],
        "llc": estimate, "llc_std_error": std_error, "llc_systematic_error": systematic,
        "quadrature": quadrature,
        "quadrature_in_band": None if quadrature is None else bool(nested["nested_low"] <= quadrature <= nested["nested_high"]),
        **nested,
        "bias": None if truth is None else value - truth,
        "relative_bias": None if truth is None else abs(value - truth) / truth,
        "sampler_error": sampler_error,
        "relative_sampler_error": abs(sampler_error) / value,
        "sampler_error_in_se": sampler_error / std_error,
        "sampler_error_in_interval": abs(sampler_error) / (INTERVAL_Z * std_error + systematic),
        "covered": bool(abs(sampler_error) <= INTERVAL_Z * std_error + systematic),
        "covered_mc": bool(abs(sampler_error) <= INTERVAL_Z * std_error),
        # the nested value has its own error: its band's half-width / 1.96 as a standard deviation
        "sampler_error_in_combined_se": sampler_error / np.hypot(std_error, nested_sd),
        "covered_combined": bool(abs(sampler_error) <= np.hypot(INTERVAL_Z * std_error + systematic, INTERVAL_Z * nested_sd)),
    }


def summarise(rows: list[dict]) -> dict:
    """Medians and coverage over the converged rows (a time-capped row's λ(nβ) is not trusted)."""
    done = [r for r in rows if r["converged"]]
    known = [r for r in done if r["relative_bias"] is not None]
    checked = [r for r in done if r["quadrature_in_band"] is not None]
    return {
        "rows": len(rows), "converged": len(done),
        "not_converged": [r["model"] for r in rows if not r["converged"]],
        "median_relative_sampler_error": statistics.median(r["relative_sampler_error"] for r in done) if done else None,
        "median_abs_sampler_error_in_se": statistics.median(abs(r["sampler_error_in_se"]) for r in done) if done else None,
        "coverage": sum(r["covered"] for r in done) / len(done) if done else None,
        "coverage_mc": sum(r["covered_mc"] for r in done) / len(done) if done else None,
        "median_abs_sampler_error_in_combined_se": (statistics.median(abs(r["sampler_error_in_combined_se"]) for r in done)
                                                   if done else None),
        "coverage_combined": sum(r["covered_combined"] for r in done) / len(done) if done else None,
        "median_relative_bias": statistics.median(r["relative_bias"] for r in known) if known else None,
        "quadrature_checked": len(checked), "quadrature_in_band": sum(r["quadrature_in_band"] for r in checked),
        "seconds": sum(r["seconds"] for r in rows),
    }


def fmt(value, spec=".4g"):
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def markdown(header: dict, rows: list[dict], summary: dict) -> str:
    s = summary
    lines = [
        "# SGLD llc against nested-sampling λ(nβ): sampler error apart from finite-temperature bias", "",
        f"Command: `{header['command']}`  ", f"Machine: {header['machine']}  ",
        f"Load average at start (earlier invocations: start (end)) / end: {header['load_start']} / {header['load_end']}  ",
        f"Settings: {header['settings']}, seed {header['seed']} (row i: fold_in(key(seed), i))  ",
        f"Versions: {header['versions']}", "",
        *([f"Note: {header['note']}", ""] if header.get("note") else []),
        "λ̂ ± se ± sys is the committed `benchmarks/results/accuracy_llc.json` (SGLD on one data set of",
        "n = 10⁶ at the row's nβ, 1000 on every row: the default min(1000, n/log n)). λ(nβ) nested is t E_t[K] of the POPULATION K under the",
        "model's prior, with its 95 % band over log-X paths: the same quantity as the quadrature column",
        "(d <= 2), so the llc's error λ̂ − λ(nβ) also holds the data set's fluctuation λ_n(nβ) − λ(nβ).",
        "bias = λ(nβ) − λ; err/se = (λ̂ − λ(nβ))/se; err/CI = |λ̂ − λ(nβ)|/(1.96 se + sys), ≤ 1 is covered.",
        "err/√(se²+sd²) adds the nested value's own error (sd = band half-width / 1.96) in quadrature.",
        "A row stopped by time (live share of Z(nβ) ≥ 1e-4) is marked and left out of the summary.", "",
        "| model | d | λ | m | λ̂ ± se ± sys | λ(nβ) quadrature | λ(nβ) nested [95 %] | quad. in band | bias λ(nβ)−λ | "
        "\\|bias\\|/λ | λ̂−λ(nβ) | err/se | err/CI | λ(nβ) in CI | err/√(se²+sd²) | stop | live share | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["converged"]:
            lines.append(f"| {r['model']} | {r['d']} | {r['lambda_fraction'] or '?'} | {r['m'] if r['m'] is not None else '?'} "
                         f"| {r['llc']:.4g} ± {r['llc_std_error']:.2g} ± {r['llc_systematic_error']:.2g} | {fmt(r['quadrature'])} "
                         f"| not converged (log X reached {r['log_volume_reached']:.1f}) | – | – | – | – | – | – | – "
                         f"| {r['stop_reason']} | {r['live_share_of_z']:.1e} | {r['seconds']:.0f} |")
            continue
        lines.append(
            f"| {r['model']} | {r['d']} | {r['lambda_fraction'] or '?'} | {r['m'] if r['m'] is not None else '?'} "
            f"| {r['llc']:.4g} ± {r['llc_std_error']:.2g} ± {r['llc_systematic_error']:.2g} | {fmt(r['quadrature'])} "
            f"| {r['nested']:.4g} [{r['nested_low']:.4g}, {r['nested_high']:.4g}] | {fmt(r['quadrature_in_band'])} "
            f"| {fmt(r['bias'], '+.3g')} | {fmt(r['relative_bias'], '.1%')} | {r['sampler_error']:+.3g} "
            f"| {r['sampler_error_in_se']:+.2f} | {r['sampler_error_in_interval']:.2f} | {fmt(r['covered'])} "
            f"| {r['sampler_error_in_combined_se']:+.2f} "
            f"| {r['stop_reason']} | {r['live_share_of_z']:.1e} | {r['seconds']:.0f} |")
    lines += ["", "## Summary", "",
              f"- rows {s['rows']}, converged {s['converged']}; not converged (time cap): {', '.join(s['not_converged']) or 'none'}",
              f"- quadrature λ(nβ) inside the nested band: {s['quadrature_in_band']}/{s['quadrature_checked']} (d <= 2)",
              f"- SGLD sampler error: median |λ̂ − λ(nβ)|/λ(nβ) {fmt(s['median_relative_sampler_error'], '.1%')}, "
              f"median |λ̂ − λ(nβ)|/se {fmt(s['median_abs_sampler_error_in_se'], '.2f')}; λ(nβ) inside λ̂ ± (1.96 se + sys): "
              f"{fmt(s['coverage'], '.0%')} (± 1.96 se alone: {fmt(s['coverage_mc'], '.0%')})",
              f"- the same with the nested band's own error added in quadrature: median |λ̂ − λ(nβ)|/√(se² + sd_nested²) "
              f"{fmt(s['median_abs_sampler_error_in_combined_se'], '.2f')}, covered {fmt(s['coverage_combined'], '.0%')}",
              f"- finite-temperature bias: median |λ(nβ) − λ|/λ {fmt(s['median_relative_bias'], '.1%')}",
              f"- nested sampling time {s['seconds']:.0f} s"]
    return "\n".join(lines) + "\n"


def write_atomic(path: str, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(handle, "w", newline="") as stream:
        stream.write(text)
    os.replace(temporary, path)


def write_all(stem: str, header: dict, rows: list[dict]) -> dict:
    header = {**header, "load_end": " ".join(f"{v:.1f}" for v in os.getloadavg())}
    summary = summarise(rows)
    write_atomic(stem + ".json", json.dumps({**header, "summary": summary, "rows": rows}, indent=1))
    columns = [c for c in rows[0]] if rows else []
    lines = [",".join(columns)] + [",".join("" if r[c] is None else str(r[c]).replace(",", ";") for c in columns) for r in rows]
    write_atomic(stem + ".csv", "\n".join(lines) + "\n")
    write_atomic(stem + ".md", markdown(header, rows, summary))
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-live", type=int, default=500)
    parser.add_argument("--num-inner-steps", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--exclude-families", default="", help="comma-separated families to skip (e.g. tanh)")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in the output")
    parser.add_argument("--note", default=None, help="a line of notes for the table (kept on --resume)")
    parser.add_argument("--llc-table", default=os.path.join(RESULTS, "accuracy_llc.json"))
    parser.add_argument("--stem", default=os.path.join(RESULTS, "llc_against_nested"))
    args = parser.parse_args(argv)
    settings = {"num_live": args.num_live, "num_inner_steps": args.num_inner_steps, "max_seconds": args.max_seconds,
                "min_log_volume": 0.0, "min_log_loss_span": 0.0}
    with open(args.llc_table) as handle:
        llc_rows = json.load(handle)["rows"]
    models = {model.label: model for model in toy_models.catalogue()}
    excluded = {family for family in args.exclude_families.split(",") if family}
    rows, previous_command, previous_load, note = [], None, "", args.note
    if args.resume and os.path.exists(args.stem + ".json"):
        with open(args.stem + ".json") as handle:
            stored = json.load(handle)
        by_label = {r["model"]: r for r in llc_rows}
        rows = [{**compare(by_label[r["model"]], {k: r[k] for k in NESTED_KEYS}), "seconds": r["seconds"]} for r in stored["rows"]]
        previous_command = stored["command"]
        previous_load = f"{stored['load_start']} (end {stored['load_end']}) ; then "
        note = note or stored.get("note")
    done = {r["model"] for r in rows}
    arguments = list(argv if argv is not None else sys.argv[1:])
    if "--note" in arguments:  # the note is printed on its own line, not in the command
        del arguments[arguments.index("--note"):arguments.index("--note") + 2]
    command = "benchmarks/llc_against_nested.py " + " ".join(arguments)
    header = {"command": (previous_command + " ; then " if previous_command else "") + command.strip(),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
              "load_start": previous_load + " ".join(f"{v:.1f}" for v in os.getloadavg()),
              "settings": {k: v for k, v in settings.items()}, "seed": args.seed, "note": note,
              "versions": slt.package_versions()}
    key = jax.random.key(args.seed)
    # d <= 2 first: they are checked against quadrature before the rest is trusted
    order = sorted(range(len(llc_rows)), key=lambda i: (llc_rows[i]["d"] > 2, llc_rows[i]["d"], i))
    position = {llc_row["model"]: i for i, llc_row in enumerate(llc_rows)}  # rows are written in the llc table's order
    for index in order:
        llc_row = llc_rows[index]
        model = models[llc_row["model"]]
        if llc_row["model"] in done or model.name in excluded:
            continue
        started = time.perf_counter()
        nested = nested_lambda_t(jax.random.fold_in(key, index), model, llc_row["nbeta"], settings)
        row = {**compare(llc_row, nested), "seconds": time.perf_counter() - started}
        rows.append(row)
        rows.sort(key=lambda r: position[r["model"]])
        write_all(args.stem, header, rows)
        print(f"{row['model']:50s} quad={fmt(row['quadrature'])} nested={row['nested']:.4g} "
              f"[{row['nested_low']:.4g}, {row['nested_high']:.4g}] llc={row['llc']:.4g} err/se={row['sampler_error_in_se']:+.2f} "
              f"{row['stop_reason']} ({row['seconds']:.0f} s)", flush=True)
    print(json.dumps(write_all(args.stem, header, rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Summary rows, the printed table and the saved files of `devinterp_compare.py`."""

import csv
import json
import math
import os
import platform
import statistics
from pathlib import Path
from typing import Any

import jax
import numpy as np

INTERVAL_Z = 1.96


def machine_description() -> dict[str, Any]:
    cpu_model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "numpy": np.__version__,
        "load_average_start": os.getloadavg(),
    }


def covers(estimate: float, std_error: float, truth: float | None) -> bool | None:
    if truth is None or not (math.isfinite(estimate) and math.isfinite(std_error)):
        return None
    return abs(estimate - truth) <= INTERVAL_Z * std_error


def summarise(case, model, exact_at_nbeta: float | None, repeats: list[dict]) -> dict[str, Any]:
    """One row per case (`devinterp_compare.Case`) from its repeats: medians, ratios, coverage."""
    truth = float(model.true_rlct) if model.true_rlct is not None else None
    row: dict[str, Any] = {
        "case": case.name, "model": model.label, "d": model.dimension, "n": case.n, "nbeta": case.nbeta,
        "batch_size": case.batch_size, "num_chains": case.num_chains, "num_draws": case.num_draws,
        "num_burnin": case.num_burnin, "devinterp_lr": case.devinterp_lr, "true_rlct": truth,
        "exact_at_nbeta": exact_at_nbeta, "repeats": len(repeats), "speed_only": case.speed_only,
    }
    for tool in ("workbench", "devinterp"):
        runs = [r[tool] for r in repeats if tool in r]
        if not runs:
            continue
        first = runs[0]
        row[f"{tool}_seconds_median"] = statistics.median(r["seconds"] for r in runs)
        row[f"{tool}_seconds"] = [r["seconds"] for r in runs]
        row[f"{tool}_estimate"] = first["estimate"]
        row[f"{tool}_std_error"] = first["std_error"]
        row[f"{tool}_estimates"] = [r["estimate"] for r in runs]
        row[f"{tool}_covers_truth"] = covers(first["estimate"], first["std_error"], truth)
        row[f"{tool}_covers_exact_at_nbeta"] = covers(first["estimate"], first["std_error"], exact_at_nbeta)
    shifts = [r["devinterp"]["init_loss_shift"] for r in repeats if "init_loss_shift" in r.get("devinterp", {})]
    if shifts:
        row["devinterp_init_loss_shift"] = shifts[0]
    if "workbench" in repeats[0]:
        row["workbench_reliable"] = repeats[0]["workbench"]["reliable"]
        row["workbench_reasons"] = repeats[0]["workbench"]["reasons"]
    warm = [r["workbench"]["warm_sample_seconds"] for r in repeats if "warm_sample_seconds" in r.get("workbench", {})]
    if warm:
        row["workbench_warm_sample_seconds"] = warm[0]
        if "devinterp_seconds_median" in row:
            row["ratio_warm"] = row["devinterp_seconds_median"] / warm[0]
    no_mala = [r["workbench"]["no_mala_seconds"] for r in repeats if "no_mala_seconds" in r.get("workbench", {})]
    if no_mala:
        row["workbench_no_mala_seconds"] = no_mala[0]
        if "devinterp_seconds_median" in row:
            row["ratio_no_mala"] = row["devinterp_seconds_median"] / no_mala[0]
    if "devinterp_seconds_median" in row and "workbench_seconds_median" in row:
        row["ratio_median"] = row["devinterp_seconds_median"] / row["workbench_seconds_median"]
        per_repeat = [r["devinterp"]["seconds"] / r["workbench"]["seconds"] for r in repeats if "devinterp" in r]
        row["ratio_per_repeat"] = per_repeat
    row["runs"] = repeats
    return row


def format_estimate(row, tool) -> str:
    if f"{tool}_estimate" not in row:
        return "—"
    return f"{row[f'{tool}_estimate']:.4g} ± {row[f'{tool}_std_error']:.2g}"


def print_table(rows: list[dict]) -> None:
    """One line per case. `wb warm s`: the sampling alone with a cached executable (repeat 0)."""
    header = (f"{'case':6s} {'d':>9s} {'chains×draws':>12s} {'devinterp s':>11s} {'workbench s':>11s} {'ratio':>7s} "
              f"{'wb warm s':>9s} {'ratio':>7s}  {'devinterp λ̂ ± se':>19s} {'workbench λ̂ ± se':>19s} {'λ':>6s} "
              f"{'λ(nβ)':>6s}  covers λ/λ(nβ) dv; wb  wb flag")
    print(header)
    print("-" * len(header))
    show = {True: "yes", False: "no", None: "·"}
    for row in rows:
        def flag(tool):
            if f"{tool}_estimate" not in row:
                return "—"
            return f"{show[row[f'{tool}_covers_truth']]}/{show[row[f'{tool}_covers_exact_at_nbeta']]}"

        def number(key, pattern):
            return pattern.format(row[key]) if row.get(key) is not None else "—"

        print(f"{row['case']:6s} {row['d']:>9,d} {row['num_chains']:>4d}×{row['num_draws']:<7d} "
              f"{number('devinterp_seconds_median', '{:.2f}'):>11s} {row['workbench_seconds_median']:>11.2f} "
              f"{number('ratio_median', '{:.1f}×'):>7s} {number('workbench_warm_sample_seconds', '{:.2f}'):>9s} "
              f"{number('ratio_warm', '{:.0f}×'):>7s}  {format_estimate(row, 'devinterp'):>19s} "
              f"{format_estimate(row, 'workbench'):>19s} {number('true_rlct', '{:.4g}'):>6s} "
              f"{number('exact_at_nbeta', '{:.3f}'):>6s}  {flag('devinterp')}; {flag('workbench')}"
              + ("  ok" if row.get("workbench_reliable") else "  UNRELIABLE")
              + ("  (speed only)" if row["speed_only"] else ""))
    for row in rows:
        if row.get("devinterp_init_loss_shift") is not None and row["batch_size"] < row["n"]:
            print(f"{row['case']}: devinterp's init_loss (L(w*) on {row['num_chains']} minibatches, shared by all chains) "
                  f"moves its λ̂ by nβ (L_n(w*) − init_loss) = {row['devinterp_init_loss_shift']:+.3g}, "
                  "an error its std across chains does not include")
        if row.get("workbench_no_mala_seconds") is not None:
            print(f"{row['case']}: workbench without its MALA diagnostic (one gradient per step, as devinterp): "
                  f"{row['workbench_no_mala_seconds']:.2f} s" + (f", ratio {row['ratio_no_mala']:.1f}×"
                                                                  if row.get("ratio_no_mala") else ""))


CSV_FIELDS = ["case", "model", "d", "n", "nbeta", "batch_size", "num_chains", "num_draws", "num_burnin",
              "devinterp_lr", "repeats", "devinterp_seconds_median", "workbench_seconds_median", "ratio_median",
              "workbench_warm_sample_seconds", "ratio_warm",
              "workbench_no_mala_seconds", "ratio_no_mala", "devinterp_init_loss_shift",
              "devinterp_estimate", "devinterp_std_error", "workbench_estimate", "workbench_std_error",
              "true_rlct", "exact_at_nbeta", "devinterp_covers_truth", "workbench_covers_truth",
              "devinterp_covers_exact_at_nbeta", "workbench_covers_exact_at_nbeta", "workbench_reliable", "speed_only"]


def save(rows, meta, stem: str, output_dir: Path) -> tuple[Path, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = output_dir / f"{stem}.json", output_dir / f"{stem}.csv"
    json_path.write_text(json.dumps({"meta": meta, "cases": rows}, indent=1, default=float) + "\n")
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return json_path, csv_path

"""Jobs per minute of `slt batch` on CPU: a sweep of 50 small registry models, tiny runs.

    .venv/bin/python benchmarks/batch_speed.py                      # 50 jobs, local executor
    .venv/bin/python benchmarks/batch_speed.py --executor ray --num-jobs 20
    .venv/bin/python benchmarks/batch_speed.py --compare-packing     # packed vs one job at a time

The sweep: 10 small registry models (d <= 4: regular, normal crossings, reduced-rank regression,
a deep linear network, a one-unit tanh network) × seeds 0, 1, ..., each an llc job with n = 1000,
2 chains × 50 draws, minibatch 100, the step size calibrated as `slt.estimate` does by default
(pilot_steps = 50) and no quadrature (`exact = false`). Jobs of one model differ only in the seed,
so they share every compiled executable (see `slt.batch`, "Compilation"): a model's first job
pays the compilation, the others run in milliseconds. The persistent compilation cache is not
used here (the sweep runs `run_batch` in process), so every run starts cold.

`--compare-packing` runs the sweep four times in one process, one job at a time, packed (the
seeds of a model as one vmapped call per stage, `slt.estimate_many`), and both again with every
executable compiled, and prints the warm ratio: what decides `slt.estimate.packing_pays` for a
backend (on a GPU session, run it there).

Printed: wall time, jobs per minute over the whole sweep (start-up excluded: the timer starts at
`run_batch`), the first job's time and the median of the rest, and the machine's load average
(the numbers are only comparable on an idle machine).
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import jax

from slt.batch import parse_spec, result_files, run_batch

MODELS = (
    ("regular", {"d": 1}),
    ("regular", {"d": 2}),
    ("regular", {"d": 4}),
    ("normal_crossing", {"powers": [1, 1]}),
    ("normal_crossing", {"powers": [1, 2]}),
    ("normal_crossing", {"powers": [2, 2]}),
    ("normal_crossing", {"powers": [1, 1, 1]}),
    ("rrr", {"M": 2, "H": 1, "N": 2, "r": 0}),
    ("dln", {"widths": [1, 1, 1, 1], "r": 0}),
    ("tanh", {"H": 1, "true_units": 0}),
)


def sweep_spec(num_jobs: int, num_models: int = len(MODELS), n: int = 1000, num_draws: int = 50,
               batch_size: int = 100) -> dict:
    """`num_jobs` jobs: the first `num_models` models in turn, each with ceil(num_jobs / num_models)
    seeds, cut to num_jobs."""
    seeds_per_model = -(-num_jobs // num_models)
    jobs = [{"model": family, "params": params} for family, params in MODELS[:num_models]]
    spec = {
        "description": "batch speed benchmark",
        "defaults": {
            "seeds": list(range(seeds_per_model)),
            "sampler": {"n": n, "num_chains": 2, "num_draws": num_draws, "batch_size": batch_size, "pilot_steps": 50,
                        "exact": False},
        },
        "jobs": jobs,
    }
    return spec


def run_sweep(jobs, executor: str, packing: bool | None) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out"
        start = time.perf_counter()
        run_batch(jobs, out, executor=executor, packing=packing, save_traces=False)
        seconds = time.perf_counter() - start
        records = [json.loads(path.read_text()) for path in result_files(out)]
    return seconds, records


def compare_packing(jobs, executor: str) -> None:
    rounds = [("one at a time, cold", False), ("packed, cold", True), ("one at a time, warm", False),
              ("packed, warm", True)]
    minutes = {}
    for label, packing in rounds:
        seconds, records = run_sweep(jobs, executor, packing)
        minutes[label] = 60 * len(jobs) / seconds
        failed = sum(record["status"] == "failed" for record in records)
        print(f"{label}: {seconds:.1f} s, {minutes[label]:.1f} jobs/min, {failed} failed")
    ratio = minutes["packed, warm"] / minutes["one at a time, warm"]
    print(f"packed / one at a time, warm: {ratio:.2f}× the jobs per minute")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-jobs", type=int, default=50)
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    parser.add_argument("--num-models", type=int, default=len(MODELS), help="use the first K of the 10 models")
    parser.add_argument("--n", type=int, default=1000, help="data size of every job (default 1000)")
    parser.add_argument("--num-draws", type=int, default=50, help="draws per chain (thinning 10; default 50)")
    parser.add_argument("--batch-size", type=int, default=100, help="SGLD minibatch (default 100)")
    parser.add_argument("--compare-packing", action="store_true",
                        help="time the sweep one job at a time and packed, cold and warm")
    arguments = parser.parse_args()

    spec = sweep_spec(arguments.num_jobs, arguments.num_models, arguments.n, arguments.num_draws, arguments.batch_size)
    jobs = parse_spec(spec)[: arguments.num_jobs]
    load_before = os.getloadavg()
    machine = (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"JAX {jax.__version__} on {jax.default_backend()} × {jax.local_device_count()}")
    if arguments.compare_packing:
        print(f"{machine}; {len(jobs)} jobs, {arguments.num_models} models, n = {arguments.n}, "
              f"{arguments.num_draws} draws × 2 chains, batch {arguments.batch_size}")
        compare_packing(jobs, arguments.executor)
        print(f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
        return
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(arguments.out or Path(scratch) / "out")
        start = time.perf_counter()
        summary = run_batch(jobs, out, executor=arguments.executor)
        seconds = time.perf_counter() - start
        load_after = os.getloadavg()
        records = [json.loads(path.read_text()) for path in result_files(out)]
    by_id = {record["id"]: record for record in records}
    job_seconds = [by_id[job.id]["job_seconds"] for job in jobs]
    reliable = sum(bool(record.get("reliable")) for record in records)
    print(f"{machine}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    print(f"{summary.num_jobs} jobs ({arguments.num_models} models), executor {arguments.executor}: {seconds:.1f} s, "
          f"{summary.failed} failed, {reliable} marked reliable")
    print(f"first job {job_seconds[0]:.2f} s, median of the rest {statistics.median(job_seconds[1:]):.2f} s")
    print(f"jobs per minute: {60 * summary.num_jobs / seconds:.1f}")


if __name__ == "__main__":
    main()

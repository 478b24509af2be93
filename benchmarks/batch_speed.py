"""Jobs per minute of `slt batch` on CPU: a sweep of 50 small registry models, tiny runs.

    .venv/bin/python benchmarks/batch_speed.py                      # 50 jobs, local executor
    .venv/bin/python benchmarks/batch_speed.py --executor ray --num-jobs 20

The sweep: 10 small registry models (d <= 4: regular, normal crossings, reduced-rank regression,
a deep linear network, a one-unit tanh network) × seeds 0, 1, ..., each an llc job with n = 1000,
2 chains × 50 draws, minibatch 100, the step size calibrated as `slt.estimate` does by default
(pilot_steps = 50) and no quadrature (`exact = false`). Jobs of one model differ only in the seed,
so they share every compiled executable (see `slt._batch`, "Compilation"): a model's first job
pays the compilation, the others run in milliseconds. The persistent compilation cache is not
used here (the sweep runs `run_batch` in process), so every run starts cold.

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

from slt._batch import parse_spec, result_files, run_batch

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


def sweep_spec(num_jobs: int) -> dict:
    """`num_jobs` jobs: the models in turn, each with ceil(num_jobs / 10) seeds, cut to num_jobs."""
    seeds_per_model = -(-num_jobs // len(MODELS))
    jobs = [{"model": family, "params": params} for family, params in MODELS]
    spec = {
        "description": "batch speed benchmark",
        "defaults": {
            "seeds": list(range(seeds_per_model)),
            "sampler": {"n": 1000, "num_chains": 2, "num_draws": 50, "batch_size": 100, "pilot_steps": 50,
                        "exact": False},
        },
        "jobs": jobs,
    }
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-jobs", type=int, default=50)
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    arguments = parser.parse_args()

    jobs = parse_spec(sweep_spec(arguments.num_jobs))[: arguments.num_jobs]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(arguments.out or Path(scratch) / "out")
        load_before = os.getloadavg()
        start = time.perf_counter()
        summary = run_batch(jobs, out, executor=arguments.executor)
        seconds = time.perf_counter() - start
        load_after = os.getloadavg()
        records = [json.loads(path.read_text()) for path in result_files(out)]
    by_id = {record["id"]: record for record in records}
    job_seconds = [by_id[job.id]["job_seconds"] for job in jobs]
    reliable = sum(bool(record.get("reliable")) for record in records)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"JAX {jax.__version__} on {jax.default_backend()} × {jax.local_device_count()}; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    print(f"{summary.num_jobs} jobs ({len(MODELS)} models), executor {arguments.executor}: {seconds:.1f} s, "
          f"{summary.failed} failed, {reliable} marked reliable")
    print(f"first job {job_seconds[0]:.2f} s, median of the rest {statistics.median(job_seconds[1:]):.2f} s")
    print(f"jobs per minute: {60 * summary.num_jobs / seconds:.1f}")


if __name__ == "__main__":
    main()

"""Speed of `slt.trajectory.llc_trajectory` against one checkpoint at a time through `slt.estimate`.

    python benchmarks/trajectory_speed.py [--checkpoints 100] [--baseline-checkpoints 5] [--small]

The job: a deep linear network (registry "dln", widths 100-50-100: 10 000 parameters), n data,
`--checkpoints` checkpoints (w* plus independent N(0, 0.01²) perturbations: the sampling cost
does not depend on where the checkpoint is), 4 chains × 1000 draws (thinning 1, 250 burn-in
steps), minibatch 100, nβ = n / log n, γ = 100. The trajectory calibrates ε once and packs
`--pack-size` checkpoints per compiled call. The baseline runs `slt.estimate(method="llc")` on
the same model with w* set to each checkpoint, with the same ε (no per-checkpoint calibration:
the baseline's most favourable setting), chains, draws, thinning, batch and nβ; it is timed on
`--baseline-checkpoints` checkpoints and scaled to all of them (the per-checkpoint time is flat:
each call compiles and samples the same amount). Results go to
benchmarks/results/trajectory_speed.md with the machine's load (`uptime`) before and after.
"""

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

import slt
import slt.trajectory
import toy_models

RESULTS = Path(__file__).resolve().parent / "results" / "trajectory_speed.md"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=100)
    parser.add_argument("--baseline-checkpoints", type=int, default=5)
    parser.add_argument("--widths", type=int, nargs="+", default=[100, 50, 100])
    parser.add_argument("--num-data", type=int, default=1000)
    parser.add_argument("--num-draws", type=int, default=1000)
    parser.add_argument("--num-chains", type=int, default=4)
    parser.add_argument("--pack-size", type=int, default=10)
    parser.add_argument("--small", action="store_true", help="tiny job (tests): 4 checkpoints, widths 4-3-4")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.small:
        args.checkpoints, args.baseline_checkpoints, args.widths, args.num_draws = 4, 1, [4, 3, 4], 50
    load_before = uptime()
    model = toy_models.get("dln", widths=tuple(args.widths), r=min(args.widths) // 2)
    key_data, key_checkpoints, key_run = jax.random.split(jax.random.key(0), 3)
    data = model.sample_data(key_data, args.num_data)
    leaves, treedef = jax.tree_util.tree_flatten(model.w_star)
    checkpoints = []
    for index in range(args.checkpoints):
        keys = jax.random.split(jax.random.fold_in(key_checkpoints, index), len(leaves))
        checkpoints.append(treedef.unflatten([leaf + 0.01 * jax.random.normal(k, leaf.shape) for leaf, k in
                                              zip(leaves, keys)]))
    nbeta = args.num_data / np.log(args.num_data)
    settings = dict(num_chains=args.num_chains, num_draws=args.num_draws, thinning=1, batch_size=100)

    start = time.perf_counter()
    result = slt.trajectory.llc_trajectory(model, checkpoints, key=key_run, data=data, nbeta=nbeta,
                                           localization=100.0, pack_size=args.pack_size, **settings)
    trajectory_seconds = time.perf_counter() - start
    step_size = result.calibration["step_size"]
    load_middle = uptime()

    start = time.perf_counter()
    baseline = []
    for index in range(args.baseline_checkpoints):
        at_checkpoint = dataclasses.replace(model, w_star=checkpoints[index])
        baseline.append(slt.estimate(at_checkpoint, "llc", key=jax.random.fold_in(key_run, index), n=args.num_data,
                                     nbeta=nbeta, step_size=step_size, exact=False, localization=100.0, **settings))
    baseline_seconds = time.perf_counter() - start
    per_checkpoint = baseline_seconds / args.baseline_checkpoints
    baseline_total = per_checkpoint * args.checkpoints
    load_after = uptime()

    dimension = toy_models.parameter_count(model.w_star)
    estimates = result.column("estimate")
    lines = [
        "# trajectory_speed", "",
        f"`python benchmarks/trajectory_speed.py {' '.join(sys.argv[1:] if argv is None else argv)}`"
        f" ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, JAX {jax.__version__},"
        f" backend {jax.default_backend()})", "",
        f"Job: dln widths {tuple(args.widths)} ({dimension} parameters), n = {args.num_data}, {args.checkpoints} "
        f"checkpoints × {args.num_chains} chains × {args.num_draws} draws (+{args.num_draws // 4} burn-in), batch 100, "
        f"nβ = {nbeta:.1f}, γ = 100, pack size {args.pack_size}.", "",
        "| run | seconds | per checkpoint (s) |", "|---|---:|---:|",
        f"| llc_trajectory (calibration included; ε = {step_size:.3g}) | {trajectory_seconds:.1f} | "
        f"{trajectory_seconds / args.checkpoints:.2f} |",
        f"| slt.estimate one at a time (timed on {args.baseline_checkpoints}, scaled to {args.checkpoints}) | "
        f"{baseline_total:.1f} | {per_checkpoint:.2f} |", "",
        f"Speed-up: {baseline_total / trajectory_seconds:.1f}×. Target: trajectory ≤ 600 s and ≥ 5× the baseline.", "",
        f"Estimates (trajectory): median {np.nanmedian(estimates):.1f}, range {np.nanmin(estimates):.1f} to "
        f"{np.nanmax(estimates):.1f}; baseline first estimates: "
        f"{', '.join(f'{r.estimate:.1f}' for r in baseline)} (different data and keys: same order only).", "",
        "Machine load (`uptime`; the 2-core machine is shared with other engineers' jobs):", "",
        f"- before: {load_before}", f"- after the trajectory: {load_middle}", f"- after the baseline: {load_after}", "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.small:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""LLC of deep linear networks from 10² to 10⁶ parameters: λ̂ with its interval against Aoyagi's λ.

    .venv/bin/python benchmarks/dln_scaling.py --max-params 3000          # the small end
    .venv/bin/python benchmarks/dln_scaling.py                            # the whole suite (hours on a CPU)
    .venv/bin/python benchmarks/dln_scaling.py --num-draws 1000 --num-chains 2 --suffix _short
    .venv/bin/python benchmarks/dln_scaling.py --flops-only               # matmul FLOP/s and FLOPs per step

The suite (`suite()`): 13 networks, one per target size d_k = 10^(2.2 + 3.8 k/12), k = 0..12, each
drawn from `numpy.random.default_rng(k)` in the manner of Furman & Lau (2024, arXiv 2402.03698):
a depth L uniform in 2..8 weight matrices and L + 1 widths uniform in [w/2, 3w/2] with
w = √(d_k / L), drawn again until d is within [0.7, 1.4] d_k; then a true rank r uniform in
0..min(widths). The truth λ and m are Aoyagi's (`toy_models.deep_linear_rlct`
through `toy_models.get("dln", ...)`), and the actual d is whatever the drawn widths give.

Each case is one `slt.estimate(model, "llc", key=jax.random.key(seed), n=..., ...)` with the
library's settings unless a flag overrides one (`--nbeta`, `--localization`, `--batch-size`,
`--num-chains`, `--num-draws`, `--thinning`, `--population`). The data set is
`model.sample_data(key, n)`: n × (H_1 + H_{L+1}) floats, 4 bytes each (printed per case); the
default n = 10⁵ keeps the 10⁶-parameter cases under 1 GB (slt.estimate's own default is 10⁶).
Reported per case: λ̂, its standard error and systematic error, the interval
λ̂ ± (1.96 se + systematic), whether it holds λ, the relative error λ̂/λ − 1, the wall time of
the whole call (compilation and calibration included), the calibrated ε, the Langevin time and
the reliability verdict, with the load average before and after (the machine is shared: a time
measured under load is not the machine's speed).

FLOPs: a DLN forward pass on a batch of B costs 2 B d multiply-adds-as-two (Σ_l 2 B H_l H_{l+1});
a gradient (forward, weight gradients, activation gradients) about 6 B d. `flops_per_step` states
what one SGLD step of `slt.sgld` computes: every step one gradient (6 B d); a recorded step
also the loss at w* on the same batch (2 B d) and, with the MALA diagnostic, a gradient at the
proposal (6 B d; the potential at the position reuses the step's own loss, as `slt.sgld` does;
before that it cost another 2 B d forward pass). `--flops-only` measures the machine's dense matmul rate on the suite's
layer shapes (jitted `x @ W`, median of 20) for comparison.

Results: benchmarks/results/dln_scaling{suffix}.{md,csv,json}, with the machine (CPU, cores,
load) and the command line.
"""

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

import slt
import toy_models

RESULTS = Path(__file__).resolve().parent / "results"
NUM_CASES = 13


def suite(num_cases: int = NUM_CASES, largest: float = 1e6) -> list[dict]:
    """The benchmark's DLNs, smallest first: widths and rank from `default_rng(k)` (module docstring);
    `largest` moves the top target (1e8 for the GPU suite, `benchmarks/gpu_checks.sh`)."""
    cases = []
    for k in range(num_cases):
        rng = np.random.default_rng(k)
        target = 10.0 ** (2.2 + (math.log10(largest) - 2.2) * k / (num_cases - 1))
        while True:  # redraw until d is within [0.7, 1.4] × the target
            depth = int(rng.integers(2, 9))
            width = math.sqrt(target / depth)
            low, high = max(1, int(round(width / 2))), max(2, int(round(1.5 * width)))
            widths = tuple(int(h) for h in rng.integers(low, high + 1, size=depth + 1))
            if 0.7 <= sum(a * b for a, b in zip(widths[:-1], widths[1:])) / target <= 1.4:
                break
        rank = int(rng.integers(0, min(widths) + 1))
        model = toy_models.get("dln", widths=widths, r=rank)
        cases.append({"case": k, "widths": widths, "r": rank, "depth": depth, "d": model.dimension,
                      "true_rlct": float(model.true_rlct), "multiplicity": model.multiplicity})
    return sorted(cases, key=lambda case: case["d"])


def flops_per_step(widths, batch_size: int, *, reuse_position_loss: bool = True) -> dict:
    """Floating-point operations of one SGLD step on a DLN (module docstring): unrecorded, recorded
    without and with the MALA check."""
    d = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    forward = 2 * batch_size * d
    gradient = 3 * forward
    mala = gradient + (0 if reuse_position_loss else forward)
    return {"d": d, "batch_size": batch_size, "forward": forward, "unrecorded": gradient,
            "recorded_no_mala": gradient + forward, "recorded_mala": gradient + forward + mala}


def matmul_rate(shapes, repeats: int = 20) -> list[dict]:
    """Dense matmul GFLOP/s of jitted `x @ W` for each (batch, fan_in, fan_out), median of `repeats`."""
    rows = []
    key_x, key_w = jax.random.split(jax.random.key(0))
    multiply = jax.jit(lambda x, w: x @ w)
    for batch, fan_in, fan_out in shapes:
        x = jax.random.normal(key_x, (batch, fan_in))
        w = jax.random.normal(key_w, (fan_in, fan_out))
        multiply(x, w).block_until_ready()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            multiply(x, w).block_until_ready()
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        rows.append({"shape": [batch, fan_in, fan_out], "seconds": seconds,
                     "gflops": 2 * batch * fan_in * fan_out / seconds / 1e9, "load": os.getloadavg()[0]})
    return rows


def step_speed(case: dict, *, batch_size: int, num_steps: int, num_chains: int, thinning: int, n: int) -> dict:
    """Seconds per SGLD step-chain of `slt.sample` at a fixed ε (compiled once first, then timed
    warm), with the achieved FLOP/s (`flops_per_step`, thinning-weighted) and the memory floor:
    one step reads and writes the parameters and reads the gradient, at least 12 d bytes (float32)."""
    model = toy_models.get("dln", widths=case["widths"], r=case["r"])
    key_data, key_run = jax.random.split(jax.random.key(case["case"]))
    posterior = slt.TemperedPosterior.from_model(model, model.sample_data(key_data, n), nbeta=1000.0, use_prior=True)
    sampler = slt.make_sampler("sgld", posterior, step_size=1e-7, batch_size=batch_size)
    run = dict(num_chains=num_chains, num_steps=num_steps, thinning=thinning)
    slt.sample(sampler, model.w_star, key_run, **run)  # compiles
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    slt.sample(sampler, model.w_star, jax.random.fold_in(key_run, 1), **run)
    seconds = (time.perf_counter() - start) / (num_steps * num_chains)
    flops = flops_per_step(case["widths"], batch_size)
    mean_flops = flops["unrecorded"] + (flops["recorded_mala"] - flops["unrecorded"]) / thinning
    return {"d": case["d"], "batch_size": batch_size, "seconds_per_step": seconds, "flops_per_step": mean_flops,
            "gflops": mean_flops / seconds / 1e9, "memory_floor_bytes": 12 * case["d"], "load_before": load_before,
            "load_after": os.getloadavg()[0]}


def machine() -> dict:
    model_name = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": model_name, "cpu_count": os.cpu_count(), "affinity_cores": len(os.sched_getaffinity(0)),
            "platform": platform.platform(), "python": platform.python_version(), "jax": jax.__version__,
            "jax_backend": jax.default_backend(), "devices": [str(device) for device in jax.devices()],
            "load_average_start": list(os.getloadavg())}


def run_case(case: dict, args) -> dict:
    model = toy_models.get("dln", widths=case["widths"], r=case["r"])
    settings = {name: value for name, value in (
        ("nbeta", args.nbeta), ("localization", args.localization), ("batch_size", args.batch_size),
        ("num_chains", args.num_chains), ("num_draws", args.num_draws), ("thinning", args.thinning),
    ) if value is not None}
    if args.population:
        settings["population"] = True
    load_before = os.getloadavg()[0]
    result = slt.estimate(model, "llc", key=jax.random.key(1000 + case["case"]), n=args.n, **settings)
    diagnostics = result.diagnostics
    low, high = result.interval
    truth = case["true_rlct"]
    steps = diagnostics["num_steps"]
    return {**case, "widths": list(case["widths"]), "estimate": result.estimate, "std_error": result.std_error,
            "systematic_error": result.systematic_error, "interval": [low, high],
            "covers": bool(low <= truth <= high), "relative_error": result.estimate / truth - 1,
            "seconds": result.seconds, "nbeta": result.nbeta, "n": result.n, "step_size": diagnostics["step_size"],
            "num_chains": diagnostics["num_chains"], "num_steps": steps, "langevin_time": diagnostics["langevin_time"],
            "refinements": len(diagnostics["step_size_refinements"]),
            "mala_acceptance": diagnostics["mala_acceptance"], "rhat": diagnostics["rhat"],
            "reliable": not result.unreliable, "reasons": list(diagnostics["reasons"]),
            "data_megabytes": args.n * (case["widths"][0] + case["widths"][-1]) * 4 / 1e6,
            "load_before": load_before, "load_after": os.getloadavg()[0]}


def write_results(rows: list[dict], meta: dict, suffix: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"dln_scaling{suffix}"
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "cases": rows}, indent=1, default=float))
    columns = ["case", "d", "depth", "r", "true_rlct", "estimate", "std_error", "systematic_error", "covers",
               "relative_error", "seconds", "step_size", "num_steps", "refinements", "langevin_time", "reliable", "load_before",
               "load_after"]
    with stem.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    machine_info = meta["machine"]
    lines = [f"# DLN scaling: `{meta['command']}`", "",
             f"Machine: {machine_info['cpu_model']}, {machine_info['affinity_cores']} cores, JAX {machine_info['jax']} "
             f"({machine_info['jax_backend']}); load average at start {machine_info['load_average_start'][0]:.1f}, "
             f"at end {meta['load_average_end'][0]:.1f} (a shared machine: times are under that load).", "",
             "| d | depth | r | λ | λ̂ ± se (sys) | interval holds λ | rel. error | s | final ε | steps × stages | Langevin time | reliable | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['d']} | {row['depth']} | {row['r']} | {row['true_rlct']:g} | {row['estimate']:.1f} ± "
            f"{row['std_error']:.1f} ({row['systematic_error']:.1f}) | {'yes' if row['covers'] else 'no'} | "
            f"{row['relative_error']:+.1%} | {row['seconds']:.0f} | {row['step_size']:.2g} | "
            f"{row['num_steps']} × {1 + row['refinements']} | "
            f"{row['langevin_time']:.3g} | {'yes' if row['reliable'] else 'no'} | {row['load_before']:.0f} |")
    if meta.get("matmul"):
        lines += ["", "Dense matmul rate (jitted x @ W, median of 20):", ""]
        lines += [f"- {m['shape']}: {m['gflops']:.1f} GFLOP/s (load {m['load']:.0f})" for m in meta["matmul"]]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-params", type=int, default=10**7, help="skip networks with more parameters")
    parser.add_argument("--min-params", type=int, default=0)
    parser.add_argument("--largest", type=float, default=1e6, help="top target size of the suite (1e8 on a GPU)")
    parser.add_argument("--n", type=int, default=100_000, help="data size (default 1e5; see the docstring)")
    parser.add_argument("--nbeta", type=float)
    parser.add_argument("--localization", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--num-chains", type=int)
    parser.add_argument("--num-draws", type=int)
    parser.add_argument("--thinning", type=int)
    parser.add_argument("--population", action="store_true", help="fresh expected data per minibatch")
    parser.add_argument("--suffix", default="", help="results file suffix, e.g. _short")
    parser.add_argument("--flops-only", action="store_true", help="measure matmul FLOP/s and print FLOPs per step")
    parser.add_argument("--list", action="store_true", help="print the suite and exit")
    parser.add_argument("--speed-only", action="store_true",
                        help="time SGLD steps per case (fixed ε, 2 chains × 200 steps) instead of estimating")
    args = parser.parse_args(argv)
    cases = [case for case in suite(largest=args.largest) if args.min_params <= case["d"] <= args.max_params]
    if args.list or args.flops_only:
        for case in suite(largest=args.largest):
            flops = flops_per_step(case["widths"], args.batch_size or 1000)
            print(f"d = {case['d']:>8} depth {case['depth']} r = {case['r']:>3} λ = {case['true_rlct']:>9g} "
                  f"m = {case['multiplicity']} widths {case['widths']}  FLOPs/step (B = {flops['batch_size']}): "
                  f"{flops['unrecorded']:.3g} unrecorded, {flops['recorded_mala']:.3g} recorded with MALA")
        if args.flops_only:
            shapes = [(1000, 100, 100), (1000, 450, 450), (100, 450, 450), (1000, 1000, 1000)]
            for row in matmul_rate(shapes):
                print(f"matmul {row['shape']}: {row['gflops']:.1f} GFLOP/s ({row['seconds'] * 1e3:.3f} ms, "
                      f"load {row['load']:.1f})")
        return 0
    if args.speed_only:
        rows = [step_speed(case, batch_size=args.batch_size or 1000, num_steps=200, num_chains=2, thinning=10, n=args.n)
                for case in cases]
        for row in rows:
            print(f"d = {row['d']:>9}: {row['seconds_per_step'] * 1e3:.3f} ms per step-chain, {row['gflops']:.1f} GFLOP/s "
                  f"achieved, memory floor {row['memory_floor_bytes'] / 1e6:.1f} MB per step, load {row['load_before']:.1f}",
                  flush=True)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"dln_speed{args.suffix}.json").write_text(json.dumps({"machine": machine(), "cases": rows}, indent=1))
        return 0
    meta = {"machine": machine(), "command": " ".join(["dln_scaling.py"] + sys.argv[1:]), "n": args.n,
            "versions": slt.package_versions()}
    meta["matmul"] = matmul_rate([(args.batch_size or 1000, 100, 100), (args.batch_size or 1000, 450, 450)])
    rows = []
    for case in cases:
        row = run_case(case, args)
        rows.append(row)
        print(f"d = {row['d']:>8}: λ̂ = {row['estimate']:.1f} ± {row['std_error']:.1f} (sys {row['systematic_error']:.1f}), "
              f"λ = {row['true_rlct']:g}, {row['relative_error']:+.1%}, holds λ: {row['covers']}, "
              f"{row['seconds']:.0f} s, load {row['load_before']:.1f}", flush=True)
        meta["load_average_end"] = list(os.getloadavg())
        write_results(rows, meta, args.suffix)  # after every case, so a cut run keeps what it measured
    return 0


if __name__ == "__main__":
    sys.exit(main())

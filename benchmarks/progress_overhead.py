"""What the progress bar costs: `slt estimate normal_crossing --set powers=1,2` (the README's first
example, default settings, seed 0) with the bar off and forced on, alternating in one process.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/progress_overhead.py [--pairs 6] [--out benchmarks/results/progress_overhead.md]

Each setting runs once first to compile (the bar's callbacks are compiled into the loop, so "on"
is its own program); then `--pairs` alternating off/on runs are timed warm, in wall-clock and in
the process's CPU time (all threads; less disturbed by other users of a shared machine). The bar
writes to /dev/null (tqdm's formatting, without a terminal). The driver feeds the bar after each
compiled chunk (`slt.run._engine.CHUNKS_PER_PHASE`), so the cost is per chunk: the reports one
estimate makes are counted. For comparison, the CPU cost of one compiled `jax.debug.callback`
(`slt.run.compiled_progress`: a scan with and without them). The estimate must come out bitwise
the same with the bar on (checked, not assumed).
"""

import argparse
import contextlib
import os
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import slt
import toy_models
from slt.run import compiled_progress, progress_bar

CALLBACKS = 2000


def timed(model, progress: bool):
    """(wall s, CPU s, estimate, callbacks made) of one default estimate."""
    counted = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        wall, cpu = time.perf_counter(), time.process_time()
        # a chain-steps bar of our own (the driver feeds it as it feeds the pipeline's), to count the reports
        with progress_bar("estimate", 0, enabled=progress) as bar:
            result = slt.estimate(model, key=0, progress=False)
            counted.append(0 if bar is None else bar.reports)
        return time.perf_counter() - wall, time.process_time() - cpu, result.estimate, counted[0]


def callback_cost() -> float:
    """CPU seconds per compiled progress callback: a scan of CALLBACKS groups of 10 cheap steps, with
    and without one callback per group, median of 5."""

    def loop(report):
        def group(x, _):
            x = jax.lax.fori_loop(0, 10, lambda i, y: jnp.sin(y) + 1.0, x)
            if report:
                compiled_progress(1)
            return x, None

        return jax.jit(lambda x: jax.lax.scan(group, x, None, length=CALLBACKS)[0])

    costs = []
    with progress_bar("callbacks", 0, enabled=True, stream=open(os.devnull, "w")):
        runs = {report: loop(report) for report in (False, True)}
        for run in runs.values():
            run(jnp.zeros(4)).block_until_ready()
            jax.effects_barrier()
        for _ in range(5):
            cpu = {}
            for report, run in runs.items():
                start = time.process_time()
                run(jnp.zeros(4)).block_until_ready()
                jax.effects_barrier()
                cpu[report] = time.process_time() - start
            costs.append((cpu[True] - cpu[False]) / CALLBACKS)
    return statistics.median(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "progress_overhead.md")
    args = parser.parse_args()
    model = toy_models.get("normal_crossing", powers=(1, 2))
    loads = [os.getloadavg()[0]]
    cold_off = timed(model, False)
    cold_on = timed(model, True)
    if cold_off[2] != cold_on[2]:
        raise SystemExit(f"the bar changed the estimate: {cold_off[2]!r} against {cold_on[2]!r}")
    rows = []
    for pair in range(args.pairs):
        off, on = timed(model, False), timed(model, True)
        loads.append(os.getloadavg()[0])
        rows.append((pair, off, on))
        print(f"pair {pair}: wall {off[0]:.2f} / {on[0]:.2f} s, CPU {off[1]:.2f} / {on[1]:.2f} s, "
              f"reports {on[3]}, load {loads[-1]:.1f}", flush=True)
    per_callback = callback_cost()
    reports = rows[-1][2][3]
    wall_ratios = [on[0] / off[0] for _, off, on in rows]
    cpu_ratios = [on[1] / off[1] for _, off, on in rows]
    lines = [
        "# Progress bar overhead",
        "",
        "`slt estimate normal_crossing --set powers=1,2` (default settings, seed 0) through `slt.estimate`, bar off "
        "and forced on (to /dev/null), alternating in one process; `benchmarks/progress_overhead.py`.",
        "",
        f"Cold (first run, compiles): wall off {cold_off[0]:.2f} s, on {cold_on[0]:.2f} s. Estimate with and without "
        f"the bar: {cold_off[2]!r} (bitwise equal).",
        "",
        "| pair | wall off (s) | wall on (s) | on / off | CPU off (s) | CPU on (s) | on / off |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(f"| {pair} | {off[0]:.2f} | {on[0]:.2f} | {on[0] / off[0]:.4f} | {off[1]:.2f} | {on[1]:.2f} | "
          f"{on[1] / off[1]:.4f} |" for pair, off, on in rows),
        "",
        f"Median ratio on/off: wall {statistics.median(wall_ratios):.4f} (range {min(wall_ratios):.4f}–"
        f"{max(wall_ratios):.4f}), CPU {statistics.median(cpu_ratios):.4f} (range {min(cpu_ratios):.4f}–"
        f"{max(cpu_ratios):.4f}) over {len(rows)} warm pairs.",
        "",
        f"Reports (chunks) per estimate with the bar: {reports}. One compiled callback (`compiled_progress`, "
        f"not used by the driver) costs {per_callback * 1e6:.1f} µs CPU (median of 5 scans of {CALLBACKS}).",
        "",
        f"1-minute load average during the runs: {min(loads):.1f}–{max(loads):.1f} (a shared 2-core machine: "
        "single times are loaded).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

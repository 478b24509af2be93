"""The driver's own cost of feeding a progress bar, on a short SGLD run where a fixed cost shows:
normal_crossing(1, 2), 4 chains × 12 500 steps (2500 burn-in, thinning 10), bar off and on
(to /dev/null), in shuffled order per round, CPU time of the process (all threads) and wall time.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/progress_driver_micro.py [--rounds 16] [--out benchmarks/results/progress_driver_micro.md]

The draws must be bitwise the same with the bar on (checked).
"""

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import jax
import numpy as np

import slt
import toy_models
from slt.run import progress_bar

RUN = dict(num_chains=4, num_steps=12_500, num_burnin=2_500, thinning=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "progress_driver_micro.md")
    args = parser.parse_args()
    model = toy_models.get("normal_crossing", powers=(1, 2))
    data = model.sample_data(jax.random.key(1), 1_000_000)
    sampler = slt.make_sampler("sgld", slt.TemperedPosterior(model.loss, data, 1000.0, model.w_star, 0.0),
                               step_size=1e-4, batch_size=1000)

    def run(on: bool):
        with open(os.devnull, "w") as sink, progress_bar("micro", 0, enabled=on, stream=sink):
            wall, cpu = time.perf_counter(), time.process_time()
            trace = slt.sample(sampler, model.w_star, jax.random.key(0), **RUN)
            return time.perf_counter() - wall, time.process_time() - cpu, trace.loss

    if not np.array_equal(run(False)[2], run(True)[2]):
        raise SystemExit("the bar changed the draws")
    rounds, shuffle, loads = [], random.Random(0), [os.getloadavg()[0]]
    for _ in range(args.rounds):
        order = [False, True]
        shuffle.shuffle(order)
        got = {on: run(on)[:2] for on in order}
        rounds.append(got)
        loads.append(os.getloadavg()[0])
    cpu = [r[True][1] / r[False][1] for r in rounds]
    wall = [r[True][0] / r[False][0] for r in rounds]
    lines = [
        "# The driver's cost of feeding a bar (short run)",
        "",
        f"`benchmarks/progress_driver_micro.py`: normal_crossing(1, 2), {RUN}, bar off and on, {args.rounds} rounds "
        "in shuffled order. Draws bitwise equal.",
        "",
        f"Median off: wall {statistics.median(r[False][0] for r in rounds):.3f} s, CPU "
        f"{statistics.median(r[False][1] for r in rounds):.3f} s; on: wall "
        f"{statistics.median(r[True][0] for r in rounds):.3f} s, CPU {statistics.median(r[True][1] for r in rounds):.3f} s.",
        f"Ratio on/off per round, median: CPU {statistics.median(cpu):.4f} (range {min(cpu):.3f}–{max(cpu):.3f}), "
        f"wall {statistics.median(wall):.4f} (range {min(wall):.3f}–{max(wall):.3f}).",
        f"1-minute load average: {min(loads):.1f}–{max(loads):.1f} (shared 2-core machine).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

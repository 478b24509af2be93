"""The volume hypothesis across training sets: test accuracy of guess-and-check vs SGD and SGLD per set.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/experiment_volume_spread.py [--seeds 0,1,2,3,4]

`slt.experiments.volume_hypothesis_experiment` with its default settings except the LLC part
(num_llc=2, num_llc_steps=600: the LLC columns are not reported here), once per seed; the seed
draws the 8-point training set (and everything else). Per set: mean test accuracy ± SE over
the accepted solutions of each method, and guess-and-check minus SGD. Writes
benchmarks/results/experiment_volume_spread.{md,json}.
"""

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from slt import experiments

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    started = time.time()
    for seed in seeds:
        result = experiments.volume_hypothesis_experiment(jax.random.key(seed), num_llc=2, num_llc_steps=600)
        accuracy = {m.name: m.test_accuracy for m in result.methods}
        accepted = {m.name: (m.num_accepted, m.num_tried) for m in result.methods}
        rows.append({"seed": seed, **{f"{name}_accuracy": list(map(float, value)) for name, value in accuracy.items()},
                     **{f"{name}_accepted": list(value) for name, value in accepted.items()}})
        print(rows[-1], flush=True)
    seconds = time.time() - started
    names = [m.name for m in result.methods]
    record = {"command": f"PYTHONPATH=$PWD .venv/bin/python benchmarks/experiment_volume_spread.py --seeds {args.seeds}",
              "rows": rows, "seconds": seconds, "machine": platform.platform(), "jax": jax.__version__}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "experiment_volume_spread.json"), "w") as handle:
        json.dump(record, handle, indent=2)
    lines = ["# Volume hypothesis: test accuracy per training set", "", f"`{record['command']}` ({seconds:.0f} s).", "",
             "| seed (training set) | " + " | ".join(names) + f" | {names[0]} − {names[1]} |",
             "| --- |" + " --- |" * (len(names) + 1)]
    for row in rows:
        cells = [f"{row[f'{n}_accuracy'][0]:.3f} ± {row[f'{n}_accuracy'][1]:.3f}" for n in names]
        gap = row[f"{names[0]}_accuracy"][0] - row[f"{names[1]}_accuracy"][0]
        lines.append(f"| {row['seed']} | " + " | ".join(cells) + f" | {gap:+.3f} |")
    for name in names:
        values = np.array([row[f"{name}_accuracy"][0] for row in rows])
        lines.append(f"\n{name}: range {values.min():.3f}–{values.max():.3f}, mean {values.mean():.3f}, "
                     f"sd across sets {values.std(ddof=1):.3f}")
    with open(os.path.join(RESULTS, "experiment_volume_spread.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""SGD as a Bayesian sampler at 7 bits: P_SGD(f|S) against P_B(f|S) by nested sampling, several training sets.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/experiment_bayesian_sampler_7bit.py [--seed 0] [--sets 3]

`slt.experiments.bayesian_sampler_nested_experiment` with its defaults (7 bits, 7-40-40-1 ReLU
network, |S| = 118, |T| = 10, Adam, the top functions of 16384 runs), then a repeat check on the
first training set: `--repeats` independent nested runs of P(S) and of P_B(f|S) for its three
most frequent functions (each from a fresh run in S), whose spread is set against the stated
standard errors. Writes benchmarks/results/experiment_bayesian_sampler_7bit.{md,json}.
"""

import argparse
import json
import os
import platform
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np

from slt import experiments
from slt.nested import region_draws, region_log_volume

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
NAME = "experiment_bayesian_sampler_7bit"


def repeat_check(key, result, training_set, num_repeats):
    """Independent nested runs of log P(S) and of log P_B(f|S) for the first three functions."""
    network = experiments.MultilayerNetwork(result.num_bits, result.widths)
    scales = network.prior_scales(1.0, 0.1)
    inputs = experiments.boolean_inputs(result.num_bits)
    labels = experiments.target_function(inputs)
    train = np.asarray(training_set.train_index)
    test = np.setdiff1d(np.arange(inputs.shape[0]), train)

    def hinge(w, labelled):
        return jnp.sum(jax.nn.relu(-labelled[1] * network.apply(w, labelled[0])))

    train_set = (inputs[train], labels[train])
    rows = {"log_p_train": [], **{row.test_pattern: [] for row in training_set.functions[:3]}}
    for repeat_key in jax.random.split(key, num_repeats):
        key_s, key_functions = jax.random.split(repeat_key)
        prior_of_s = region_log_volume(key_s, hinge, train_set, scales, num_live=result.num_live,
                                       num_ess_steps=result.num_ess_steps)
        rows["log_p_train"].append((prior_of_s.log_volume, prior_of_s.std_error))
        for function_key, row in zip(jax.random.split(key_functions, 3), training_set.functions[:3]):
            key_start, key_run = jax.random.split(function_key)
            start = region_draws(key_start, prior_of_s.inside, scales, hinge, train_set, num_draws=result.num_live,
                                 num_ess_steps=result.num_ess_steps)
            test_set = (inputs[test], jnp.asarray([1.0 if c == "+" else -1.0 for c in row.test_pattern], jnp.float32))
            volume = region_log_volume(key_run, hinge, test_set, scales, initial=start, base_fn=hinge,
                                       base_args=train_set, num_live=result.num_live,
                                       num_ess_steps=result.num_ess_steps)
            rows[row.test_pattern].append((volume.log_volume, volume.std_error))
    return {name: {"values": [v for v, _ in runs], "stated_std_error": float(np.sqrt(np.mean([s**2 for _, s in runs]))),
                   "spread_sd": float(np.std([v for v, _ in runs], ddof=1))} for name, runs in rows.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.time()
    key_experiment, key_repeat = jax.random.split(jax.random.key(args.seed))
    result = experiments.bayesian_sampler_nested_experiment(key_experiment, num_training_sets=args.sets)
    experiment_seconds = time.time() - started
    repeats = repeat_check(key_repeat, result, result.training_sets[0], args.repeats) if args.repeats > 1 else {}
    seconds = time.time() - started
    load_after = os.getloadavg()
    command = f"PYTHONPATH=$PWD .venv/bin/python benchmarks/{NAME}.py --seed {args.seed} --sets {args.sets} --repeats {args.repeats}"
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    payload = {
        "command": command, "revision": revision, "machine": platform.platform(), "cpus": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": load_after, "seconds": seconds,
        "experiment_seconds": experiment_seconds,
        "settings": {"num_bits": result.num_bits, "num_train": result.num_train, "widths": result.widths,
                     "optimizer": result.optimizer, "num_runs": result.num_runs, "num_live": result.num_live,
                     "num_ess_steps": result.num_ess_steps},
        "training_sets": [{**s._asdict(), "functions": [f._asdict() for f in s.functions]} for s in result.training_sets],
        "repeat_check": repeats,
    }
    with open(os.path.join(RESULTS, f"{NAME}.json"), "w") as stream:
        json.dump(payload, stream, indent=1)
    lines = [
        "# SGD as a Bayesian sampler at 7 bits: P_SGD(f|S) vs P_B(f|S) by nested sampling", "",
        f"`{command}`: {seconds:.0f} s on {os.cpu_count()} shared CPU cores (load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; revision {revision}).", "",
        f"{result.num_bits} bits, |S| = {result.num_train}, |T| = {2**result.num_bits - result.num_train}, "
        f"network {result.num_bits}-{'-'.join(map(str, result.widths))}-1 (ReLU), {result.optimizer}, "
        f"{result.num_runs} runs per set; nested sampling with {result.num_live} live points and "
        f"{result.num_ess_steps} elliptical slice moves per replacement. Natural logs; ± one standard error.", "",
        "| set | converged | distinct f | log P(S) | r (log P_SGD vs log P_B) | 95 % bootstrap | Σ P_B(f|S) over the rows | seconds (train / P(S) / functions) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for index, s in enumerate(result.training_sets):
        mass = sum(np.exp(f.log_p_bayes) for f in s.functions)
        lines.append(f"| {index} | {s.converged}/{result.num_runs} | {s.num_distinct} | {s.log_p_train:.2f} ± "
                     f"{s.log_p_train_std_error:.2f} | {s.pearson:.3f} | [{s.pearson_interval[0]:.3f}, "
                     f"{s.pearson_interval[1]:.3f}] | {mass:.3f} | {s.seconds['train']:.0f} / "
                     f"{s.seconds['prior_of_s']:.0f} / {s.seconds['functions']:.0f} |")
    for index, s in enumerate(result.training_sets):
        lines += ["", f"Training set {index}: functions by P_SGD", "",
                  "| f on T | count | log P_SGD | log P_B(f|S) | log P(f) | test accuracy |", "| --- | --- | --- | --- | --- | --- |"]
        for f in s.functions:
            lines.append(f"| `{f.test_pattern}` | {f.count} | {f.log_p_sgd:.2f} ± {f.log_p_sgd_std_error:.2f} | "
                         f"{f.log_p_bayes:.2f} ± {f.log_p_bayes_std_error:.2f} | {s.log_p_train + f.log_p_bayes:.2f} | "
                         f"{f.test_accuracy:.1f} |")
    if repeats:
        lines += ["", f"Repeat check (training set 0, {args.repeats} independent runs each): spread against the stated error", "",
                  "| quantity | values | sd of the runs | stated se (rms) |", "| --- | --- | --- | --- |"]
        for name, entry in repeats.items():
            label = "log P(S)" if name == "log_p_train" else f"log P_B(`{name}`|S)"
            lines.append(f"| {label} | {', '.join(f'{v:.2f}' for v in entry['values'])} | {entry['spread_sd']:.3f} | "
                         f"{entry['stated_std_error']:.3f} |")
    with open(os.path.join(RESULTS, f"{NAME}.md"), "w") as stream:
        stream.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

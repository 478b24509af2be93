"""SGD as a Bayesian sampler at 7 bits: P_SGD(f|S) against P_B(f|S) by nested sampling, several training sets.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/experiment_bayesian_sampler_7bit.py [--seed 0] [--sets 3] [--runs N]

`slt.experiments.bayesian_sampler_nested_experiment` with its defaults (7 bits, 7-40-40-1 ReLU
network, |S| = 118, |T| = 10, Adam, the top 20 functions) but `--runs` optimiser runs and
`--repeats` independent nested runs per set, once per training set (set i with key
split(key(seed), sets)[i]; the results file is rewritten after each set, so a cut run keeps its
finished sets). Each P(S) and P_B(f|S) is the mean of the repeats with the se of their spread,
shown beside the error the runs state themselves. Writes
benchmarks/results/experiment_bayesian_sampler_7bit.{md,json}.
"""

import argparse
import json
import os
import platform
import subprocess
import time

import jax
import numpy as np

from slt import experiments

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
NAME = "experiment_bayesian_sampler_7bit"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=8192)
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.time()
    key_experiment = jax.random.key(args.seed)
    command = (f"PYTHONPATH=$PWD .venv/bin/python benchmarks/{NAME}.py --seed {args.seed} --sets {args.sets} "
               f"--runs {args.runs} --repeats {args.repeats}")
    done = []
    for set_key in jax.random.split(key_experiment, args.sets):
        result = experiments.bayesian_sampler_nested_experiment(set_key, num_training_sets=1, num_runs=args.runs,
                                                                num_repeats=args.repeats)
        done += result.training_sets
        result = result._replace(training_sets=tuple(done))
        write(args, command, result, load_before, time.time() - started)
    return 0


def write(args, command, result, load_before, seconds):
    load_after = os.getloadavg()
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    payload = {
        "command": command, "revision": revision, "machine": platform.platform(), "cpus": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": load_after, "seconds": seconds,
        "settings": {"num_bits": result.num_bits, "num_train": result.num_train, "widths": result.widths,
                     "optimizer": result.optimizer, "num_runs": result.num_runs, "num_live": result.num_live,
                     "num_ess_steps": result.num_ess_steps, "num_repeats": result.num_repeats},
        "training_sets": [{**s._asdict(), "functions": [f._asdict() for f in s.functions]} for s in result.training_sets],
    }
    with open(os.path.join(RESULTS, f"{NAME}.json"), "w") as stream:
        json.dump(payload, stream, indent=1)
    lines = [
        "# SGD as a Bayesian sampler at 7 bits: P_SGD(f|S) vs P_B(f|S) by nested sampling", "",
        f"`{command}`: {seconds:.0f} s ({len(result.training_sets)} of {args.sets} sets) on {os.cpu_count()} shared CPU cores (load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; revision {revision}).", "",
        f"{result.num_bits} bits, |S| = {result.num_train}, |T| = {2**result.num_bits - result.num_train}, "
        f"network {result.num_bits}-{'-'.join(map(str, result.widths))}-1 (ReLU), {result.optimizer}, "
        f"{result.num_runs} runs per set; nested sampling with {result.num_live} live points and "
        f"{result.num_ess_steps} elliptical slice moves per replacement, {result.num_repeats} independent runs of "
        "every nested quantity. Natural logs; ± one standard error: binomial for P_SGD, the spread of the "
        "independent runs (sd/√R) for P(S) and P_B, with the error the runs state themselves in brackets.", "",
        "| set | converged | distinct f | log P(S) [stated] | r (log P_SGD vs log P_B) | 95 % bootstrap | Σ P_B(f|S) over the rows | seconds (train / nested) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for index, s in enumerate(result.training_sets):
        mass = sum(np.exp(f.log_p_bayes) for f in s.functions)
        lines.append(f"| {index} | {s.converged}/{result.num_runs} | {s.num_distinct} | {s.log_p_train:.2f} ± "
                     f"{s.log_p_train_std_error:.2f} [{s.log_p_train_stated_std_error:.2f}] | {s.pearson:.3f} | "
                     f"[{s.pearson_interval[0]:.3f}, {s.pearson_interval[1]:.3f}] | {mass:.3f} | "
                     f"{s.seconds['train']:.0f} / {s.seconds['nested']:.0f} |")
    for index, s in enumerate(result.training_sets):
        lines += ["", f"Training set {index}: functions by P_SGD", "",
                  "| f on T | count | log P_SGD | log P_B(f|S) [stated] | runs | log P(f) | test accuracy |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for f in s.functions:
            lines.append(f"| `{f.test_pattern}` | {f.count} | {f.log_p_sgd:.2f} ± {f.log_p_sgd_std_error:.2f} | "
                         f"{f.log_p_bayes:.2f} ± {f.log_p_bayes_std_error:.2f} [{f.log_p_bayes_stated_std_error:.2f}] | "
                         f"{', '.join(f'{v:.2f}' for v in f.log_p_bayes_runs)} | {s.log_p_train + f.log_p_bayes:.2f} | "
                         f"{f.test_accuracy:.1f} |")
    with open(os.path.join(RESULTS, f"{NAME}.md"), "w") as stream:
        stream.write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())

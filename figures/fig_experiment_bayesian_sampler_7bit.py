"""Is SGD a Bayesian sampler at 7 bits? P_SGD(f|S) against P_B(f|S) by nested sampling, one panel per training set.

Reads benchmarks/results/experiment_bayesian_sampler_7bit.json (written by
`benchmarks/experiment_bayesian_sampler_7bit.py`; the figure computes nothing). Each point is one
of the functions Adam found most often; error bars are ± one standard error (binomial for
P_SGD, the nested run's own for P_B), drawn on log–log axes; the dotted line is P_SGD = P_B; each
title gives Pearson r of the logs with its 95 % bootstrap interval. `--small` runs
`slt.experiments.bayesian_sampler_nested_experiment` on its tiny settings instead (tests).
"""

import json
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from slt import experiments
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__.splitlines()[0])
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "experiment_bayesian_sampler_7bit.json"

if args.small:
    result = experiments.bayesian_sampler_nested_experiment(
        jax.random.key(0), **experiments.SMALL_SETTINGS["bayesian-sampler-nested"])
    training_sets = [{**s._asdict(), "functions": [f._asdict() for f in s.functions]} for s in result.training_sets]
    source = "--small: 3 bits, one training set"
else:
    payload = json.loads(RESULTS.read_text())
    training_sets = payload["training_sets"]
    settings = payload["settings"]
    source = (f"{settings['num_bits']} bits, |S| = {settings['num_train']}, "
              f"{settings['num_bits']}-{'-'.join(map(str, settings['widths']))}-1 ReLU, "
              f"{settings['optimizer']} × {settings['num_runs']} runs per set")


def bars(log_p, std_error):
    """Asymmetric bars on a log axis for log p ± se."""
    log_p, std_error = np.asarray(log_p), np.asarray(std_error)
    p = np.exp(log_p)
    return p, np.stack([p - np.exp(log_p - std_error), np.exp(log_p + std_error) - p])


figure, axes = plt.subplots(1, len(training_sets), figsize=(4.0 * len(training_sets), 4.0), squeeze=False)
for index, (axis, training_set) in enumerate(zip(axes[0], training_sets)):
    rows = [f for f in training_set["functions"] if f["log_p_bayes"] is not None and np.isfinite(f["log_p_bayes"])]
    p_bayes, bayes_bars = bars([f["log_p_bayes"] for f in rows], [f["log_p_bayes_std_error"] for f in rows])
    p_sgd, sgd_bars = bars([f["log_p_sgd"] for f in rows], [f["log_p_sgd_std_error"] for f in rows])
    axis.errorbar(p_bayes, p_sgd, xerr=bayes_bars, yerr=sgd_bars, fmt="o", ms=4, color=f"C{index}", capsize=2)
    low = min(p_bayes.min(), p_sgd.min()) / 2
    axis.plot([low, 1.0], [low, 1.0], "k:", lw=1)
    r, (r_low, r_high) = training_set["pearson"], training_set["pearson_interval"]
    axis.set(xscale="log", yscale="log", xlabel="P_B(f | S)  (nested sampling)", ylabel="P_SGD(f | S)",
             title=f"set {index}: r = {r:.2f} [{r_low:.2f}, {r_high:.2f}]\n"
                   f"log P(S) = {training_set['log_p_train']:.1f} ± {training_set['log_p_train_std_error']:.1f}")
    print(f"set {index}: r = {r:.3f} [{r_low:.3f}, {r_high:.3f}] over {len(rows)} functions; "
          f"log P(S) = {training_set['log_p_train']:.2f}; Σ P_B over them {np.sum(p_bayes):.3f}")
figure.suptitle(f"SGD as a Bayesian sampler: {source}", fontsize=9)
figure.tight_layout()
save_figure(figure, args.out, "fig_experiment_bayesian_sampler_7bit")

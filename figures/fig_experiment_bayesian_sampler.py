"""Is SGD a Bayesian sampler? log P_opt(f|S) against log P_B(f|S) on Boolean functions (Mingard et al. 2021).

Writes fig_experiment_bayesian_sampler.png/pdf into --out. Same as `slt experiment bayesian-sampler`.
"""

import jax
import matplotlib.pyplot as plt
import numpy as np

from slt import experiments
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__.splitlines()[0])
settings = (experiments.SMALL_SETTINGS["bayesian-sampler"] if args.small
            else dict(num_prior_draws=1 << 20, num_runs=2048))
result = experiments.bayesian_sampler_experiment(jax.random.key(0), **settings)
figure, axis = plt.subplots(figsize=(4.8, 4.2))
p_bayes = np.array([row.p_bayes for row in result.functions])
for optimizer, r in result.pearson.items():
    p_opt = np.array([row.p_optimizers[optimizer] for row in result.functions])
    both = (p_bayes > 0) & (p_opt > 0)
    axis.scatter(p_bayes[both], p_opt[both], s=14, label=f"{optimizer} (r = {r:.3f})")
    print(f"{optimizer}: Pearson r = {r:.3f}, converged {result.converged[optimizer]}/{result.num_runs}")
low, high = p_bayes[p_bayes > 0].min() / 2, 1.0
axis.plot([low, high], [low, high], "k:", lw=1)
axis.set(xscale="log", yscale="log", xlabel="P_B(f | S)", ylabel="P_opt(f | S)",
         title=f"Optimisers find functions about as often as the prior does\n"
               f"({result.num_bits}-bit Boolean functions, |S| = {result.num_train}; dotted: P_opt = P_B)")
axis.legend(fontsize=8)
for row in result.functions:
    if np.isfinite(row.llc):
        print(f"f = {row.test_pattern}: P_B {row.p_bayes:.4f}, LLC {row.llc:.2f} ± {row.llc_std_error:.2f}")
save_figure(figure, args.out, "fig_experiment_bayesian_sampler")

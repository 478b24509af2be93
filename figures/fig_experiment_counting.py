"""Counting arguments: LLC and local volume of a direct network vs one with an extra, cancelled computation.

Writes fig_experiment_counting.png/pdf into --out: V(ε) near each network (log-log) and the LLC.
Same as `slt experiment counting`.
"""

import jax
import matplotlib.pyplot as plt
import numpy as np

from slt import experiments
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__.splitlines()[0])
settings = (experiments.SMALL_SETTINGS["counting"] if args.small
            else dict(num_volume_draws=1 << 20, num_steps=5000, num_burnin=1000))
result = experiments.counting_experiment(jax.random.key(0), **settings)
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
for row in result.rows:
    positive = row.volumes > 0
    volumes, errors = row.volumes[positive], row.volume_std_errors[positive]
    lower = np.minimum(errors, 0.9 * volumes)  # a log axis cannot show a bar reaching 0
    slope = (f"slope {row.volume_slope:.2f} ± {row.volume_slope_std_error:.2f}" if np.isfinite(row.volume_slope)
             else "slope n/a (too few draws at small ε)")
    left.errorbar(row.epsilons[positive], volumes, [lower, errors], fmt="o-", label=f"{row.name}: {slope}")
    print(f"{row.name}: LLC {row.llc:.3f} ± {row.llc_std_error:.3f}, volume slope {row.volume_slope:.2f} ± "
          f"{row.volume_slope_std_error:.2f}, theory {row.theory}")
left.set(xscale="log", yscale="log", xlabel="ε", ylabel="fraction of box with K < ε",
         title="Local volume V(ε): slope ≈ λ, lower V = fewer parameters fit")
left.legend(fontsize=8)
names = [row.name for row in result.rows]
right.errorbar(np.arange(len(names)), [row.llc for row in result.rows], [row.llc_std_error for row in result.rows],
               fmt="o")
right.set(xticks=np.arange(len(names)), xticklabels=names, ylabel=f"LLC at nβ = {result.nbeta:g}  (± 1 se)",
          title="The extra, cancelled computation raises λ̂")
figure.suptitle("Counting argument: the same function tanh(x₁) computed directly, with idle units, or with an extra computation")
save_figure(figure, args.out, "fig_experiment_counting")

"""Volume hypothesis: guess-and-check vs SGD and SGLD on the kink task (Chiang et al., ICLR 2023).

Writes fig_experiment_volume.png/pdf into --out: V(ε) of the prior against ε (log-log), and the
LLC of each method's solutions against their test accuracy. Same as `slt experiment volume`.
"""

import jax
import matplotlib.pyplot as plt

from slt import experiments
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__.splitlines()[0])
settings = experiments.SMALL_SETTINGS["volume"] if args.small else dict(num_draws=1 << 20, num_runs=256, num_llc=8)
result = experiments.volume_hypothesis_experiment(jax.random.key(0), **settings)
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
positive = result.volumes > 0
left.errorbar(result.epsilons[positive], result.volumes[positive], result.volume_std_errors[positive], fmt="o-")
left.set(xscale="log", yscale="log", xlabel="ε", ylabel="V(ε) = P(L < ε)",
         title=f"Guess-and-check volume: slope {result.volume_slope.value:.2f} ± {result.volume_slope.std_error:.2f} (n/2 = {result.generic_rlct:g})")
for method in result.methods:
    print(f"{method.name}: accepted {method.num_accepted}/{method.num_tried}, test accuracy "
          f"{method.test_accuracy.value:.3f} ± {method.test_accuracy.std_error:.3f}, LLC {method.llc.value:.2f} ± "
          f"{method.llc.std_error:.2f}")
    right.errorbar(method.llc_test_accuracies, method.llcs, method.llc_std_errors, fmt="o", label=method.name)
right.set(xlabel="test accuracy", ylabel=f"LLC at nβ = {result.nbeta:g}  (± 1 se)",
          title="λ̂ vs test accuracy of each solution")
figure.suptitle("Volume hypothesis: guess-and-check, SGD and SGLD find solutions of similar λ̂ on the kink task")
right.legend()
save_figure(figure, args.out, "fig_experiment_volume")

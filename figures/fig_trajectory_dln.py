"""LLC over a deep linear network's training run: saddle-to-saddle stages and Aoyagi's λ at the end.

A 4-3-4 linear network y = W₂W₁x is trained by full-batch gradient descent from a small
initialisation on a rank-3 teacher with singular values 5, 2, 0.8 (examples/dln_saddle_to_saddle.py):
it learns them one at a time, the loss resting on a plateau (a saddle) between. Left: loss and
the learned singular values. Middle: `slt.trajectory.llc_trajectory` over the checkpoints, all
parameters and each layer alone, at γ = 1.4 nβ s₂ (3000 at n = 10⁴; meant to exceed nβ × the negative curvature of the rank-1
and rank-2 saddles, but the rank-1 plateau still reads "saddle_or_escape", as it did at
γ = 1.4 nβ s₁ = 7600, tried once: docs/trajectory.md), with the
teacher's transitions (dotted: a mode reaches half its final size) and the detected stage
boundaries (dashed). Right: the final checkpoint (a minimum of rank 3) at γ = 1 against
Aoyagi's λ = 15/2 for widths (4, 3, 4), rank 3, and each layer alone against its exact value
(the loss is quadratic in one layer: λ_S = ½ · rank of the other layer · the layer's other width).
"""

import sys
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import slt.trajectory
import toy_models
from slt.plotting import figure_arguments, save_figure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import dln_saddle_to_saddle as dln  # noqa: E402

args = figure_arguments(__doc__)
WIDTHS, SINGULAR_VALUES, RANK = (4, 3, 4), (5.0, 2.0, 0.8), 3
TRUTH_LOCALIZATION = 1.0
num_data = 2000 if args.small else 10_000
num_checkpoints = 16 if args.small else 40
stage_draws, truth_draws = (150, 400) if args.small else (1000, 2000)

key_teacher, key_data, key_init, key_stage, key_truth = jax.random.split(jax.random.key(2026), 5)
target = dln.teacher(key_teacher, WIDTHS, SINGULAR_VALUES)
data = dln.make_data(key_data, target, num_data)
checkpoints, steps, singular = dln.train(key_init, WIDTHS, data, init_scale=1e-4, learning_rate=0.01,
                                         num_steps=2000, num_checkpoints=num_checkpoints)
transitions = dln.transition_steps(steps, singular, RANK)
model = dln.user_model(data, checkpoints[-1])
nbeta = num_data / np.log(num_data)
STAGE_LOCALIZATION = float(round(1.4 * nbeta * SINGULAR_VALUES[1], -2))  # 3000 at n = 10 000
layers = {"W1": "0", "W2": "1"}

stage = slt.trajectory.llc_trajectory(model, checkpoints, key=key_stage, steps=list(steps), restrict=layers,
                                      localization=STAGE_LOCALIZATION, batch_size=500, num_draws=stage_draws,
                                      thinning=2, pack_size=num_checkpoints)
truth = slt.trajectory.llc_trajectory(model, checkpoints[-1:], key=key_truth, steps=[int(steps[-1])],
                                      restrict=layers, localization=TRUTH_LOCALIZATION, batch_size=500,
                                      num_draws=truth_draws, thinning=5)
slt.trajectory.write_table(stage, args.out / "fig_trajectory_dln_stages.csv")
slt.trajectory.write_table(truth, args.out / "fig_trajectory_dln_final.csv")

aoyagi = float(toy_models.deep_linear_rlct(WIDTHS, RANK).rlct)
final = {row["subset"]: row for row in truth.rows}
exact_layer = {"W1": 0.5 * RANK * WIDTHS[0], "W2": 0.5 * RANK * WIDTHS[2]}
boundaries = slt.trajectory.stage_boundaries(stage)
spacing = int(steps[1] - steps[0])
print(f"nβ = {stage.settings['nbeta']:.1f}, γ = {STAGE_LOCALIZATION:g}; ε (stages) = {stage.calibration['step_size']:.3g}, "
      f"ε (final) = {truth.calibration['step_size']:.3g}; {stage.settings['seconds']:.0f} s + "
      f"{truth.settings['seconds']:.0f} s")
print(f"teacher transitions (mode reaches half its final size) at steps {transitions}")
print(f"LLC stage boundaries at steps {boundaries} (checkpoint spacing {spacing})")
matched = set()
for number, transition in enumerate(transitions, 1):
    nearest = min(boundaries, key=lambda b: abs(b - transition)) if boundaries else None
    lined_up = nearest is not None and abs(nearest - transition) <= spacing
    matched.update([nearest] if lined_up else [])
    print(f"  mode {number} learned at step {transition}: nearest LLC boundary {nearest} -> "
          f"{'lines up (within one checkpoint)' if lined_up else 'no LLC boundary within one checkpoint'}")
print(f"  LLC boundaries with no transition within one checkpoint: {sorted(set(boundaries) - matched)}")
readings = [row["reading"] for row in stage.rows if row["subset"] == "all"]
print(f"rows read saddle_or_escape (γ = {STAGE_LOCALIZATION:g}): steps "
      f"{[int(s) for s, r in zip(steps, readings) if r == 'saddle_or_escape']}; read descent: "
      f"{[int(s) for s, r in zip(steps, readings) if r == 'descent']}")
row = final["all"]
error = row["estimate"] / aoyagi - 1
print(f"final checkpoint, γ = {TRUTH_LOCALIZATION:g}: λ̂ = {row['estimate']:.3f} ± {row['std_error']:.3f} "
      f"(systematic {row['systematic_error']:.3f}) against Aoyagi λ = {aoyagi:g}: {100 * error:+.1f} % "
      f"({'within' if abs(error) <= 0.10 else 'NOT within'} 10 %); reading {row['reading']}")
layer_sum = final["W1"]["estimate"] + final["W2"]["estimate"]
for name in layers:
    print(f"  layer {name} alone: λ̂ = {final[name]['estimate']:.3f} ± {final[name]['std_error']:.3f} "
          f"against exact {exact_layer[name]:g}")
print(f"sum of the disjoint layer LLCs {layer_sum:.3f} against the full LLC {row['estimate']:.3f} "
      f"(ratio {layer_sum / row['estimate']:.2f}; exact {sum(exact_layer.values()):g} against {aoyagi:g})")

figure = plt.figure(figsize=(14, 4.8))
grid = figure.add_gridspec(2, 3, width_ratios=(1.2, 1.2, 0.8))
ax_loss, ax_llc = figure.add_subplot(grid[0, 0:2]), None
ax_llc = figure.add_subplot(grid[1, 0:2], sharex=ax_loss)
slt.trajectory.plot_trajectory(stage, axes=(ax_loss, ax_llc))
twin = ax_loss.twinx()
for mode in range(RANK):
    twin.plot(steps, singular[:, mode], color="tab:grey", lw=0.8, ls=":")
twin.set_ylabel("singular values of W₂W₁ (dotted)")
for transition in transitions:
    for axis in (ax_loss, ax_llc):
        axis.axvline(transition, color="tab:red", ls=":", lw=0.9)
ax_llc.set_title(f"γ = {STAGE_LOCALIZATION:g}: red dotted = teacher transitions, grey dashed = LLC stage boundaries",
                 fontsize="small")
ax_final = figure.add_subplot(grid[:, 2])
names = ["all", "W1", "W2"]
truth_values = [aoyagi, exact_layer["W1"], exact_layer["W2"]]
positions = np.arange(len(names))
ax_final.errorbar(positions, [final[n]["estimate"] for n in names],
                  yerr=[final[n]["estimate"] - final[n]["interval_low"] for n in names], fmt="o", color="C0",
                  label=f"λ̂ at the final checkpoint (γ = {TRUTH_LOCALIZATION:g})")
ax_final.plot(positions, truth_values, "k_", ms=18, mew=2, label="exact (Aoyagi; quadratic for one layer)")
ax_final.set_xticks(positions, ["all (rank 3)", "W₁ alone", "W₂ alone"])
ax_final.set_ylim(0, 1.3 * max(truth_values))
ax_final.legend(fontsize="small", loc="lower right")
ax_final.set_title("final checkpoint against known λ", fontsize="small")
figure.suptitle("Deep linear network 4-3-4 trained from small initialisation: loss plateaus and LLC steps")
save_figure(figure, args.out, "fig_trajectory_dln")

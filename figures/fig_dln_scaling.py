"""LLC of deep linear networks against Aoyagi's λ, 10² to 10⁶ parameters, from `benchmarks/dln_scaling.py`.

Left: λ̂ with its reported interval λ̂ ± (1.96 se + systematic) against the true λ on log–log axes
(the dashed line is λ̂ = λ), coloured by the parameter count d. Right: the relative error
λ̂/λ − 1 and the wall time of each estimate against d. The full figure reads the benchmark's
results, every `benchmarks/results/dln_scaling*.json` (one row per network, the first file by
name winning, so `dln_scaling.json` before the partial runs), and names the files in its title;
it computes nothing. `--small` runs one small network on tiny settings (a given ε, no calibration) through `slt.estimate`
instead (tests).
"""

import json
import sys
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import slt
import toy_models
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__.splitlines()[0])
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"

if args.small:
    rows, source = [], "--small: one tiny DLN, 2 chains × 300 draws at a given ε"
    for index, (widths, rank) in enumerate([((8, 4, 7, 7, 3, 5), 3)]):
        model = toy_models.get("dln", widths=widths, r=rank)
        result = slt.estimate(model, "llc", key=jax.random.key(index), n=10_000, num_chains=2, num_draws=300,
                              thinning=2, batch_size=100, step_size=1e-5)
        rows.append({"d": model.dimension, "true_rlct": float(model.true_rlct), "estimate": result.estimate,
                     "interval": list(result.interval), "relative_error": result.estimate / float(model.true_rlct) - 1,
                     "seconds": result.seconds})
else:
    found = sorted(RESULTS.glob("dln_scaling*.json"))
    if not found:
        sys.exit("no benchmarks/results/dln_scaling*.json: run benchmarks/dln_scaling.py first")
    by_size = {}
    for path in found:  # one row per network; dln_scaling.json (the full run) sorts first and wins
        for row in json.loads(path.read_text())["cases"]:
            by_size.setdefault(row["d"], row)
    rows = [by_size[d] for d in sorted(by_size)]
    source = ", ".join(path.name for path in found)

for row in rows:
    print(f"d = {row['d']}: λ̂ = {row['estimate']:.4g} in [{row['interval'][0]:.4g}, {row['interval'][1]:.4g}], "
          f"λ = {row['true_rlct']:g}, {row['relative_error']:+.1%}, {row['seconds']:.0f} s")

d = np.array([row["d"] for row in rows], float)
truth = np.array([row["true_rlct"] for row in rows], float)
estimate = np.array([row["estimate"] for row in rows], float)
low = np.array([row["interval"][0] for row in rows], float)
high = np.array([row["interval"][1] for row in rows], float)
colors = plt.cm.viridis((np.log10(d) - 2) / 4)

figure, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 4.2), gridspec_kw={"wspace": 0.4})
span = [0.7 * truth.min(), 1.4 * max(truth.max(), high.max())]
left.plot(span, span, "--", color="grey", lw=1, label="λ̂ = λ")
for x, y, lo, hi, color in zip(truth, estimate, low, high, colors):
    left.errorbar([x], [y], yerr=[[max(y - lo, 0)], [max(hi - y, 0)]], fmt="o", color=color, ms=4, capsize=2)
left.set(xscale="log", yscale="log", xlabel="Aoyagi's λ", ylabel="λ̂ (interval: 1.96 se + systematic)")
left.legend(loc="upper left")
middle.scatter(d, 100 * (estimate / truth - 1), c=colors, s=18)
middle.axhspan(-5, 5, color="grey", alpha=0.15, lw=0, label="±5 %")
middle.axhline(0, color="grey", lw=1)
middle.set(xscale="log", xlim=(50, 2e6), xlabel="parameters d", ylabel="relative error λ̂/λ − 1 (%)")
middle.legend(loc="lower left")
right.scatter(d, [row["seconds"] for row in rows], c=colors, s=18, marker="s")
right.set(xscale="log", yscale="log", xlim=(50, 2e6), xlabel="parameters d", ylabel="wall time of the estimate (s)")
mappable = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(2, 6))
figure.colorbar(mappable, ax=right, label="log₁₀ d")
figure.suptitle(f"DLN LLC at scale ({source})", fontsize=8)
save_figure(figure, args.out, "fig_dln_scaling")

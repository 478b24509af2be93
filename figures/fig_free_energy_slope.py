"""Exact free energy F(n) = −log ∫ φ e^{−n K} against log n: slope λ, with the −(m−1) log log n term."""

import matplotlib.pyplot as plt
import numpy as np

import toy_models
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__)
sizes = np.logspace(1, 4 if args.small else 7, 4 if args.small else 10)
resolution = 201 if args.small else 501
models = [
    toy_models.get("regular", d=2),
    toy_models.get("normal_crossing", powers=(1, 1)),
    toy_models.get("normal_crossing", powers=(1, 2)),
    toy_models.get("tanh", H=1),
]
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
for model, color in zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
    free_energy = np.array([
        -toy_models.tempered_density_grid(model, n, resolution=resolution).log_partition for n in sizes
    ])
    local_slope = np.array([toy_models.finite_temperature_rlct(model, n, resolution=resolution) for n in sizes])
    rlct, multiplicity = float(model.true_rlct), model.multiplicity
    asymptote = rlct * np.log(sizes) - (multiplicity - 1) * np.log(np.log(sizes))
    offset = free_energy[-1] - asymptote[-1]
    label = f"{model.label}: λ = {model.true_rlct}, m = {multiplicity}"
    left.plot(np.log(sizes), free_energy, "o", color=color, markersize=4, label=label)
    left.plot(np.log(sizes), asymptote + offset, "-", color=color, alpha=0.6)
    right.plot(np.log(sizes), local_slope, "o-", color=color, markersize=4)
    right.axhline(rlct, color=color, linestyle=":", alpha=0.8)
left.set_xlabel("log n")
left.set_ylabel("F(n) − n L(w₀)  (nats)")
left.set_title("Points: exact F(n); lines: λ log n − (m−1) log log n + c")
left.legend(fontsize=8)
right.set_xlabel("log n")
right.set_ylabel("λ(n) = dF / d log n")
right.set_title("The local slope creeps up to λ (dotted), slowly when m > 1")
figure.suptitle("Free energy of the tempered posterior at β = 1, population limit, by quadrature")
save_figure(figure, args.out, "fig_free_energy_slope")

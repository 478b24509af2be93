"""Tempered posteriors of y = w₁w₂x concentrate on the singular cross as nβ grows."""

import matplotlib.pyplot as plt
import numpy as np

import toy_models
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__)
model = toy_models.get("normal_crossing", powers=(1, 1))
temperatures = [10.0, 1e2, 1e3, 1e4]
resolution = 201 if args.small else 601
figure, axes = plt.subplots(1, len(temperatures) + 1, figsize=(15, 3.6),
                            gridspec_kw={"width_ratios": [1] * len(temperatures) + [1.3]})
width = 0.05
near_cross = []
for axis, nbeta in zip(axes, temperatures):
    density = toy_models.tempered_density_grid(model, nbeta, resolution=resolution, half_width=6.0)
    w1, w2 = density.axes
    cell_area = np.multiply.outer(np.gradient(w1), np.gradient(w2))
    image = axis.pcolormesh(w1, w2, np.log10(density.weights / cell_area + 1e-12).T, vmin=-4, vmax=2, shading="auto")
    image.set_rasterized(True)
    axis.set_xlim(-2, 2)
    axis.set_ylim(-2, 2)
    axis.set_aspect("equal")
    axis.set_title(f"nβ = {nbeta:g}")
    axis.set_xlabel("w₁")
    mask = np.minimum.outer(np.abs(w1), np.abs(w2)) < width
    near_cross.append(density.weights[mask].sum())
axes[0].set_ylabel("w₂")
figure.colorbar(image, ax=axes[: len(temperatures)], label="log₁₀ posterior density", shrink=0.9)
sweep = np.logspace(0.5, 5, 10 if args.small else 25)
mass = []
for nbeta in sweep:
    density = toy_models.tempered_density_grid(model, nbeta, resolution=resolution, half_width=6.0)
    w1, w2 = density.axes
    mass.append(density.weights[np.minimum.outer(np.abs(w1), np.abs(w2)) < width].sum())
axes[-1].semilogx(sweep, mass, "o-", markersize=3)
axes[-1].set_xlabel("nβ")
axes[-1].set_ylabel(f"P(min(|w₁|, |w₂|) < {width})")
axes[-1].set_title("Mass near the cross → 1")
figure.suptitle("Prior N(0, 1)² times e^{−nβ K}, K = (w₁w₂)²/2: the posterior collapses onto {w₁w₂ = 0}, not onto a point")
save_figure(figure, args.out, "fig_tempered_posteriors")

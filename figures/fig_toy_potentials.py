"""The population loss K(w) of the two-parameter registry models, with their singular sets."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.flatten_util import ravel_pytree

import toy_models
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__)
resolution = 101 if args.small else 401
panels = [
    (toy_models.get("regular", d=2), "regular y = w·x: a point"),
    (toy_models.get("normal_crossing", powers=(1, 1)), "y = w₁w₂ x"),
    (toy_models.get("normal_crossing", powers=(1, 2)), "y = w₁w₂² x"),
    (toy_models.get("normal_crossing", powers=(2, 2)), "y = w₁²w₂² x"),
    (toy_models.get("normal_crossing", powers=(1, 3)), "y = w₁w₂³ x"),
    (toy_models.get("tanh", H=1), "y = a tanh(b x)"),
]
grid = np.linspace(-1.5, 1.5, resolution)
w1, w2 = np.meshgrid(grid, grid, indexing="ij")
figure, axes = plt.subplots(2, 3, figsize=(11, 7), sharex=True, sharey=True)
for axis, (model, title) in zip(axes.flat, panels):
    unravel = ravel_pytree(model.w_star)[1]
    points = jnp.stack([w1.ravel(), w2.ravel()], axis=-1)
    population = np.asarray(jax.vmap(lambda w: model.population_loss(unravel(w)))(points)).reshape(w1.shape)
    image = axis.contourf(w1, w2, np.log10(population + 1e-8), levels=np.linspace(-8, 1, 19), extend="both")
    image.set_rasterized(True)
    axis.contour(w1, w2, population, levels=[1e-4], colors="white", linewidths=1.0)
    axis.set_title(f"{title}\nλ = {model.true_rlct}, m = {model.multiplicity}", fontsize=10)
    axis.set_aspect("equal")
for axis in axes[-1]:
    axis.set_xlabel("w₁ (tanh: a)")
for axis in axes[:, 0]:
    axis.set_ylabel("w₂ (tanh: b)")
figure.colorbar(image, ax=axes, label="log₁₀ K(w)", shrink=0.8)
figure.suptitle("Population loss K(w): singular models vanish on sets, not points (white: K = 10⁻⁴)")
save_figure(figure, args.out, "fig_toy_potentials")

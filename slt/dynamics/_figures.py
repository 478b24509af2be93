"""Figures of the dynamics comparison (matplotlib `Figure` objects, no pyplot state).

Each function returns a `matplotlib.figure.Figure`; `slt.plotting.save_figure` writes it as
PNG and PDF.
"""


import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from slt.dynamics._experiments import BasinPoint, Comparison
from slt.dynamics._measures import occupancy

_LABELS = {"brownian": "Brownian (Langevin)", "sgd": "SGD", "heavy_ball": "heavy-ball SGD", "nesterov": "Nesterov SGD"}
_COLOURS = {"brownian": "tab:blue", "sgd": "tab:red", "heavy_ball": "tab:green", "nesterov": "tab:purple"}


def occupancy_maps(comparison: Comparison) -> Figure:
    """Gibbs cell masses beside each dynamics' occupancy (second half of the run), one log scale."""
    results = comparison.results
    figure = Figure(figsize=(3.0 * (len(results) + 1) + 1.0, 4.0), layout="constrained")
    axes = figure.subplots(1, len(results) + 1, sharex=True, sharey=True)
    grid = comparison.grid_population
    floor = 0.3 / grid.probabilities.size
    norm = LogNorm(vmin=floor, vmax=max(grid.probabilities.max(), 1e-12) * 3)
    (x_lo, x_hi), (y_lo, y_hi) = grid.edges[0][[0, -1]], grid.edges[1][[0, -1]]
    extent = (x_lo, x_hi, y_lo, y_hi)

    def show(axis, masses, title):
        image = axis.imshow(np.maximum(masses, floor).T, origin="lower", extent=extent, norm=norm,
                            cmap="viridis", interpolation="nearest", aspect="equal")
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("w₁")
        return image

    image = show(axes[0], grid.probabilities, f"Gibbs exp(−K/T) (exact)\nT = {comparison.temperature:g}\n")
    axes[0].set_ylabel("w₂")
    for axis, result in zip(axes[1:], results):
        counts = occupancy(result.late_positions, grid)
        show(axis, counts / counts.sum(),
             f"{_LABELS.get(result.name, result.name)}\nη = {result.learning_rate:g}, μ = {result.momentum:g}\n"
             f"TV to Gibbs {result.distance.total_variation:.2f} (floor {result.distance.floor_mean:.2f})")
    figure.colorbar(image, ax=list(axes), label="mass per cell (second half of the run)", shrink=0.8)
    figure.suptitle(
        f"Occupancy near K = (w₁w₂)²/2 at one matched temperature T = η_eff/(2b) (η_eff = "
        f"{comparison.effective_learning_rate:g}, b = {comparison.batch_size}): compare each panel with Gibbs",
        fontsize=10,
    )
    return figure


def time_near_singularity(comparison: Comparison) -> Figure:
    """Fraction of particles near the singular set and near its crossing point against steps."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    near_axis, crossing_axis = figure.subplots(1, 2, sharex=True)
    steps = comparison.steps + 1
    count = comparison.results[0].final_positions.shape[0]
    for result in comparison.results:
        colour = _COLOURS.get(result.name)
        for axis, curve in ((near_axis, result.curve), (crossing_axis, result.crossing_curve)):
            band = 2 * np.sqrt(np.clip(curve * (1 - curve), 0, None) / count)
            axis.plot(steps, curve, color=colour, label=_LABELS.get(result.name, result.name))
            axis.fill_between(steps, curve - band, curve + band, color=colour, alpha=0.2, linewidth=0)
    near_axis.axhline(comparison.gibbs_near_singular, color="black", linestyle="--", label="Gibbs (exact)")
    crossing_axis.axhline(comparison.gibbs_near_crossing, color="black", linestyle="--", label="Gibbs (exact)")
    crossing_axis.axhline(comparison.uniform_near_crossing, color="grey", linestyle=":", label="uniform (prior)")
    near_axis.set_title(f"within {comparison.epsilon:g} of the singular set w₁w₂ = 0", fontsize=10)
    crossing_axis.set_title(f"within the crossing box |w|∞ < {comparison.crossing_radius:g}", fontsize=10)
    for axis in (near_axis, crossing_axis):
        axis.set_xlabel("step")
        axis.set_ylabel("fraction of particles (±2 binomial s.e.)")
        axis.set_ylim(0, 1.02)
    crossing_axis.legend(fontsize=8, loc="upper left")
    figure.suptitle(
        f"Time near the singularity at T = {comparison.temperature:g}: does each dynamics settle at the Gibbs value "
        "(dashed)?",
        fontsize=10,
    )
    return figure


def basin_preference(points: tuple[BasinPoint, ...]) -> Figure:
    """Fraction ending in the singular basin against η, one colour per momentum μ."""
    figure = Figure(figsize=(7, 5), layout="constrained")
    axis = figure.subplots()
    momenta = sorted({p.momentum for p in points})
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for index, momentum in enumerate(momenta):
        row = sorted((p for p in points if p.momentum == momentum), key=lambda p: p.learning_rate)
        rates = [p.learning_rate for p in row]
        colour = palette[index % len(palette)]
        axis.errorbar(rates, [p.sgd.value for p in row], yerr=[2 * p.sgd.std_error for p in row], color=colour,
                      marker="o", capsize=3, label=f"momentum SGD, μ = {momentum:g}")
        axis.errorbar(rates, [p.brownian.value for p in row], yerr=[2 * p.brownian.std_error for p in row],
                      color=colour, marker="s", linestyle=":", capsize=3, alpha=0.8, label=f"Brownian, μ = {momentum:g}")
        axis.plot(rates, [p.gibbs for p in row], color=colour, linestyle="--", label=f"Gibbs, μ = {momentum:g}")
    axis.set_xscale("log")
    axis.set_xlabel("learning rate η (T = η/(2b(1 − μ)))")
    axis.set_ylabel("fraction in the singular basin (±2 s.e.)")
    axis.set_ylim(0, 1.02)
    axis.legend(fontsize=7, ncol=2, loc="lower left")
    axis.set_title("Singular (λ = 1/2) vs regular (λ = 1) basin at equal loss K = 0: fraction ending in the\n"
                   "singular basin; SGD (solid), Brownian (dotted), Gibbs (dashed) at the same T(η, μ)", fontsize=9)
    return figure

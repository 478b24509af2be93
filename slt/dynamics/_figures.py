"""Figures of the dynamics comparison (matplotlib `Figure` objects, no pyplot state).

Each function returns a `matplotlib.figure.Figure`; `slt.plotting.save_figure` writes it as
PNG and PDF.
"""


import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from slt.dynamics._experiments import BasinPoint, Comparison
from slt.dynamics._measures import occupancy

_LABELS = {"brownian": "Brownian (Langevin)", "sgd": "SGD", "heavy_ball": "heavy-ball SGD", "nesterov": "Nesterov SGD",
           "gradient_descent": "gradient descent (no noise)", "sgd_sde": "SGD as SDE (Gaussian, cov ηC/b)"}
_COLOURS = {"brownian": "tab:blue", "sgd": "tab:red", "heavy_ball": "tab:green", "nesterov": "tab:purple",
            "gradient_descent": "tab:grey", "sgd_sde": "tab:orange"}


def occupancy_maps(comparison: Comparison) -> Figure:
    """Gibbs cell masses beside each dynamics' occupancy (second half of the run), one log scale."""
    results = comparison.results
    figure = Figure(figsize=(2.6 * (len(results) + 1) + 1.0, 3.8), layout="constrained")
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
             f"crossing box {result.crossing_occupancy.value:.2f} (Gibbs {comparison.gibbs_near_crossing:.2f})")
    figure.colorbar(image, ax=list(axes), label="mass per cell (second half of the run)", shrink=0.8)
    figure.suptitle(
        f"Occupancy near K = (w₁w₂)²/2 at one matched temperature T = η_eff/(2b) (η_eff = "
        f"{comparison.effective_learning_rate:g}, b = {comparison.batch_size}): compare each panel with Gibbs",
        fontsize=10,
    )
    return figure


def time_near_singularity(comparison: Comparison) -> Figure:
    """Three panels against steps: the fraction of particles in the crossing box (the measure that
    separates the dynamics), the mean log|w1² − w2²| with SGD's predicted collapse slope −2Tη_eff,
    and the fraction within ε of the singular set (a descent measure: gradient descent scores 1)."""
    figure = Figure(figsize=(15, 4.4), layout="constrained")
    crossing_axis, imbalance_axis, near_axis = figure.subplots(1, 3, sharex=True)
    steps = comparison.steps + 1
    count = comparison.results[0].final_positions.shape[0]
    for result in comparison.results:
        colour = _COLOURS.get(result.name)
        label = _LABELS.get(result.name, result.name)
        for axis, curve in ((crossing_axis, result.crossing_curve), (near_axis, result.curve)):
            band = 2 * np.sqrt(np.clip(curve * (1 - curve), 0, None) / count)
            axis.plot(steps, curve, color=colour, label=label)
            axis.fill_between(steps, curve - band, curve + band, color=colour, alpha=0.2, linewidth=0)
        imbalance_axis.plot(steps, result.imbalance_curve, color=colour, label=label)
        if result.predicted_collapse_rate > 0 and result.name == "sgd":
            half = len(steps) // 2
            anchor = result.imbalance_curve[half]
            imbalance_axis.plot(steps[half:], anchor - result.predicted_collapse_rate * (steps[half:] - steps[half]),
                                color="black", linestyle="--", label="slope −2Tη_eff (collapse law)")
    crossing_axis.axhline(comparison.gibbs_near_crossing, color="black", linestyle="--", label="Gibbs (exact)")
    crossing_axis.axhline(comparison.uniform_near_crossing, color="grey", linestyle=":", label="uniform (prior)")
    near_axis.axhline(comparison.gibbs_near_singular, color="black", linestyle="--", label="Gibbs (exact)")
    crossing_axis.set_title(f"in the crossing box |w|∞ < {comparison.crossing_radius:g} (separates the dynamics)",
                            fontsize=10)
    imbalance_axis.set_title("mean log|w₁² − w₂²|: constant at a stationary law, falls under collapse", fontsize=10)
    near_axis.set_title(f"within {comparison.epsilon:g} of w₁w₂ = 0 (descent: noise-free GD scores 1)", fontsize=10)
    for axis in (crossing_axis, near_axis):
        axis.set_ylabel("fraction of particles (±2 binomial s.e.)")
        axis.set_ylim(0, 1.02)
    imbalance_axis.set_ylabel("mean over particles of log|w₁² − w₂²|")
    for axis in (crossing_axis, imbalance_axis, near_axis):
        axis.set_xlabel("step")
    crossing_axis.legend(fontsize=7, loc="center right")
    imbalance_axis.legend(fontsize=7, loc="lower left")
    figure.suptitle(
        f"K = (w₁w₂)²/2 at one matched temperature T = {comparison.temperature:g}: Brownian motion settles at Gibbs; "
        "SGD (and its Gaussian SDE) collapses onto the crossing point",
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
    unstable = [p for p in points if p.sgd_stability >= 1]
    if unstable:
        axis.scatter([p.learning_rate for p in unstable], [p.sgd.value for p in unstable], s=120, facecolors="none",
                     edgecolors="black", zorder=5, label="SGD past its stability limit on the box")
    axis.set_title("Singular (λ = 1/2) vs regular (λ = 1) basin at equal loss K = 0: fraction ending in the\n"
                   "singular basin; SGD (solid), Brownian (dotted; stable substeps, (ε/T)h_max <= 1), Gibbs (dashed)",
                   fontsize=9)
    axis.legend(fontsize=7, ncol=2, loc="lower left")
    return figure

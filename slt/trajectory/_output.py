"""The trajectory's table (CSV), its stage boundaries, and its figure."""

import csv
import os
import tempfile
from math import log
from pathlib import Path

import numpy as np

COLUMNS = ("checkpoint", "index", "step", "subset", "num_parameters", "loss", "estimate", "std_error",
           "systematic_error", "interval_low", "interval_high", "gradient_norm", "downhill_bound", "non_minimum",
           "reading", "escape", "mala_acceptance", "fraction_below_center", "rhat", "ess_bulk", "warnings")


def write_table(result, path: str | os.PathLike) -> Path:
    """One CSV row per checkpoint and restriction (columns `COLUMNS`), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in result.rows:
            writer.writerow({name: "" if row.get(name) is None else row.get(name) for name in COLUMNS})
    os.replace(handle.name, path)
    return path


def change_points(values, errors, *, penalty: float | None = None) -> list[int]:
    """Stage boundaries of a series: the segmentation into constant pieces that minimises

        Σ_segments Σ_{k in segment} (v_k − mean_segment)² / σ_k²  +  penalty × (number of segments),

    found exactly by dynamic programming (optimal partitioning, Jackson et al. 2005), with σ_k
    the given errors and penalty = 2 log N by default (BIC-like: a new segment must lower χ² by
    more than 2 log N). Returns the indices k where a new segment starts (k >= 1). Points with a
    non-finite value or error are skipped (they neither start nor end a segment).
    """
    values, errors = np.asarray(values, float), np.asarray(errors, float)
    kept = np.flatnonzero(np.isfinite(values) & np.isfinite(errors) & (errors > 0))
    count = len(kept)
    if count < 2:
        return []
    penalty = 2.0 * log(count) if penalty is None else float(penalty)
    weights = 1.0 / np.square(errors[kept])
    v = values[kept]
    cumulative_w = np.concatenate([[0.0], np.cumsum(weights)])
    cumulative_wv = np.concatenate([[0.0], np.cumsum(weights * v)])
    cumulative_wv2 = np.concatenate([[0.0], np.cumsum(weights * v * v)])

    def cost(start, stop):  # weighted squared deviation of v[start:stop] from its weighted mean
        w = cumulative_w[stop] - cumulative_w[start]
        wv = cumulative_wv[stop] - cumulative_wv[start]
        return cumulative_wv2[stop] - cumulative_wv2[start] - wv * wv / w

    best = np.full(count + 1, np.inf)
    best[0] = 0.0
    previous = np.zeros(count + 1, dtype=int)
    for stop in range(1, count + 1):
        candidates = [best[start] + cost(start, stop) + penalty for start in range(stop)]
        previous[stop] = int(np.argmin(candidates))
        best[stop] = candidates[previous[stop]]
    starts, stop = [], count
    while stop > 0:
        starts.append(previous[stop])
        stop = previous[stop]
    return sorted(int(kept[start]) for start in starts if start > 0)


def geometric_term(result, subset: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Midpoint and standard deviation of the localised geometric term per row of `subset`.

    The geometric term lies in [λ̂, λ̂ + downhill_bound] (see `llc_trajectory`): taken as uniform
    there, its mean is λ̂ + B/2 and its variance B²/12, plus the MCSE and predicted SGLD bias
    ((interval half-width / 1.96)²). Rows read "saddle_or_escape" (or failed) are NaN.
    """
    estimate, low, high, bound = (result.column(name, subset)
                                  for name in ("estimate", "interval_low", "interval_high", "downhill_bound"))
    usable = np.array([row["reading"] in ("minimum", "descent") for row in result.rows if row["subset"] == subset])
    middle = np.where(usable, estimate + bound / 2, np.nan)
    sigma = np.sqrt(np.square((high - low) / (2 * 1.96)) + np.square(bound) / 12)
    return middle, np.where(usable, sigma, np.nan)


def stage_boundaries(result, subset: str = "all") -> list[int]:
    """Training steps where `change_points` of the geometric term of `subset`'s LLC
    (`geometric_term`: value λ̂ + B/2, error √(σ_MC² + B²/12)) start a new stage."""
    middle, sigma = geometric_term(result, subset)
    steps = result.column("step", subset)
    return [int(steps[k]) for k in change_points(middle, sigma)]


def plot_trajectory(result, *, subsets=None, boundaries: bool = True, axes=None):
    """Loss (top) and LLC with restricted LLCs (bottom) against training step. Lines: λ̂ (filled
    markers: rows read "minimum", hollow: "descent", where λ̂ is a lower bound); shaded:
    [interval_low, interval_high + downhill_bound] (the bracket of the geometric term with its
    error); rows read "saddle_or_escape" are marked × on the axis; the y range fits the "minimum"
    rows. Dashed lines: the `stage_boundaries` of the full LLC."""
    import matplotlib.pyplot as plt

    subsets = result.subsets if subsets is None else subsets
    if axes is None:
        figure, axes = plt.subplots(2, 1, sharex=True, figsize=(6.4, 5.2))
    else:
        figure = axes[0].figure
    steps = result.column("step")
    axes[0].plot(steps, result.column("loss"), color="black", lw=1.2)
    axes[0].set_ylabel(r"training loss $L_n(w^*_k)$")
    limits = []
    for number, subset in enumerate(subsets):
        color = f"C{number}"
        readings = np.array([row["reading"] for row in result.rows if row["subset"] == subset])
        usable, minimum = np.isin(readings, ("minimum", "descent")), readings == "minimum"
        estimate = np.where(usable, result.column("estimate", subset), np.nan)
        limits.append(np.where(minimum, estimate, np.nan))
        label = "LLC (all parameters)" if subset == "all" else f"restricted LLC: {subset}"
        axes[1].plot(steps, estimate, color=color, lw=1.2, label=label)
        axes[1].plot(steps[minimum], estimate[minimum], ls="none", marker="o", ms=3, color=color)
        axes[1].plot(steps[readings == "descent"], estimate[readings == "descent"], ls="none", marker="o", ms=4,
                     mfc="none", color=color, label="not a minimum: λ̂ is a lower bound" if number == 0 else None)
        axes[1].fill_between(steps, np.where(usable, result.column("interval_low", subset), np.nan),
                             np.where(usable, result.column("interval_high", subset)
                                      + result.column("downhill_bound", subset), np.nan),
                             color=color, alpha=0.2, lw=0)
        if (~usable).any():
            axes[1].plot(steps[~usable], np.zeros((~usable).sum()), ls="none", marker="x", color=color, ms=4,
                         label="saddle or escape (λ̂ < −bound)" if number == 0 else None)
    finite = np.concatenate(limits)
    finite = finite[np.isfinite(finite)]
    if finite.size:  # scaled to the rows read "minimum"; rows far from a minimum may leave the frame
        low, high = min(finite.min(), 0.0), finite.max()
        span = max(high - low, 1e-12)
        axes[1].set_ylim(low - 0.1 * span, high + 0.3 * span)
    if boundaries:
        for step in stage_boundaries(result):
            for axis in axes:
                axis.axvline(step, color="grey", ls="--", lw=0.8)
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel(r"$\hat\lambda(w^*_k)$")
    axes[1].legend(fontsize="small")
    return figure

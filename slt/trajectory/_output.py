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


def stage_boundaries(result, subset: str = "all") -> list[int]:
    """Training steps where `change_points` of the LLC of `subset` start a new stage; σ_k is the
    row's interval half-width / 1.96 (MCSE and predicted SGLD bias). Rows marked non_minimum
    are left out: their λ̂ carries a downhill term, not geometry."""
    estimate, low, high = (result.column(name, subset) for name in ("estimate", "interval_low", "interval_high"))
    non_minimum = np.array([bool(row["non_minimum"]) for row in result.rows if row["subset"] == subset])
    steps = result.column("step", subset)
    sigma = (high - low) / (2 * 1.96)
    estimate = np.where(non_minimum, np.nan, estimate)
    return [int(steps[k]) for k in change_points(estimate, sigma)]


def plot_trajectory(result, *, subsets=None, boundaries: bool = True, axes=None):
    """Loss (top) and LLC with restricted LLCs (bottom) against training step; intervals shaded;
    non-minimum rows drawn hollow; `stage_boundaries` of the full LLC as dashed lines."""
    import matplotlib.pyplot as plt

    subsets = result.subsets if subsets is None else subsets
    if axes is None:
        figure, axes = plt.subplots(2, 1, sharex=True, figsize=(6.4, 5.2))
    else:
        figure = axes[0].figure
    steps = result.column("step")
    axes[0].plot(steps, result.column("loss"), color="black", lw=1.2)
    axes[0].set_ylabel(r"training loss $L_n(w^*_k)$")
    for number, subset in enumerate(subsets):
        color = f"C{number}"
        estimate = result.column("estimate", subset)
        non_minimum = np.array([bool(row["non_minimum"]) for row in result.rows if row["subset"] == subset])
        shown = np.where(non_minimum, np.nan, estimate)
        label = "LLC (all parameters)" if subset == "all" else f"restricted LLC: {subset}"
        axes[1].plot(steps, shown, color=color, lw=1.2, marker="o", ms=2.5, label=label)
        axes[1].fill_between(steps, np.where(non_minimum, np.nan, result.column("interval_low", subset)),
                             np.where(non_minimum, np.nan, result.column("interval_high", subset)),
                             color=color, alpha=0.25, lw=0)
        if non_minimum.any():
            axes[1].plot(steps[non_minimum], np.zeros(non_minimum.sum()), ls="none", marker="x", color=color,
                         ms=4, label=f"{subset}: not a minimum (λ̂ not shown)" if number == 0 else None)
    if boundaries:
        for step in stage_boundaries(result):
            for axis in axes:
                axis.axvline(step, color="grey", ls="--", lw=0.8)
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel(r"$\hat\lambda(w^*_k)$")
    axes[1].legend(fontsize="small")
    return figure

"""Diagnostics computed on every run: step-size health, escape from w*, and mixing of the loss.

`diagnose(trace)` returns a `Diagnostics` NamedTuple; its `warnings` is a tuple of plain
sentences (empty when nothing looks wrong) and `warning_codes` the `DiagnosticCode` of each, which
is what callers match on. Nothing is printed or raised: the caller decides.

Rules
-----
MALA acceptance
    mean over chains and draws of ``info["mala_acceptance"]`` (SGLD with its MALA diagnostic):
    the Metropolis–Hastings acceptance probability the Langevin proposal would have on the same
    batch. About 0.9 is healthy (Furman & Lau 2024 report 0.86–0.93); below
    `min_mala_acceptance` the step size is too large for the local curvature.
Loss below the loss at w*
    With d_t = L_b(w_t) − L_b(w*) on the same batch (``loss − loss_at_center``), the minibatch
    noise scale of chain c at draw t is estimated from successive differences, which slow drift
    of the chain barely affects, in a window of `noise_window` differences around t (the noise
    is heteroscedastic: on K = w1² w2² its size is ∝ |w1 w2|, which moves with the chain):

        σ_{c,t} = median_{s near t} |d_{s+1} − d_s| / (√2 · Φ⁻¹(3/4)),   Φ⁻¹(3/4) ≈ 0.6745,

    the standard deviation of d if its draw-to-draw noise were independent and Gaussian. A
    draw is *below the center* when d_t < −k σ_{c,t} with k = `noise_multiple` (3 by default),
    or, where σ_{c,t} = 0 (a full-batch chain that did not move), when d_t < 0. Healthy SGLD
    chains on the 2-D normal crossing (n = 1000, batch 100) have about 1 % of such draws (a
    Gaussian would have 0.13 %; minibatch noise of products of normals has heavier tails). A
    chain with more than `max_fraction_below` (5 %) of its draws below the center, or with
    mean d below zero by more than k Monte-Carlo standard errors (a negative local learning
    coefficient; the Monte-Carlo standard error of the chain's mean by batch means,
    `batch_means_standard_error`, 20 batches, so the rule needs at least 40 draws), is reported:
    w* is not a local minimum of the loss, or the chain left its basin.
R-hat and ESS
    rank-normalised split R-hat and bulk / tail effective sample sizes of the loss trace from
    `arviz_stats` (Vehtari et al. 2021); tail ESS uses the 5 % and 95 % quantiles. Warnings
    when R-hat > `max_rhat` or either ESS < `min_ess_per_chain` × chains (Vehtari et al.
    recommend 100 per chain). R-hat needs at least 2 chains and 4 draws, else it is NaN.
"""

import warnings
from enum import StrEnum
from typing import NamedTuple

import numpy as np
from jaxtyping import Float
from scipy.ndimage import median_filter

_PHI_INV_3_4 = 0.6744897501960817


class DiagnosticCode(StrEnum):
    """What a `Diagnostics` warning is about (one per rule of the module docstring)."""

    LOW_MALA_ACCEPTANCE = "low_mala_acceptance"
    ESCAPED = "escaped"  # loss below the loss at w*: w* is not a minimum or the chain left its basin
    HIGH_RHAT = "high_rhat"
    LOW_ESS = "low_ess"


class Diagnostics(NamedTuple):
    """Summary of one run; per-chain arrays have shape [chains]. None where not recorded."""

    mala_acceptance: float | None
    mala_acceptance_per_chain: Float[np.ndarray, " chains"] | None
    fraction_below_center: float | None
    fraction_below_center_per_chain: Float[np.ndarray, " chains"] | None
    loss_gap_mean_per_chain: Float[np.ndarray, " chains"] | None
    noise_scale_per_chain: Float[np.ndarray, " chains"] | None  # median over draws of σ_{c,t}
    rhat: float
    ess_bulk: float
    ess_tail: float
    warnings: tuple[str, ...]
    warning_codes: tuple[DiagnosticCode, ...] = ()  # the code of each warning, in the same order


def loss_gap_noise_scale(
    loss_gap: Float[np.ndarray, "chains draws"], window: int = 25
) -> Float[np.ndarray, "chains draws"]:
    """σ_{c,t} = median of |d_{s+1} − d_s| over the `window` differences nearest draw t, / (√2 Φ⁻¹(3/4)).

    Draw t is matched with the difference d_t − d_{t−1} (draw 0 with d_1 − d_0); windows are
    clipped at the ends of the chain. All zeros with fewer than 2 draws.
    """
    if loss_gap.shape[1] < 2:
        return np.zeros(loss_gap.shape)
    differences = np.abs(np.diff(loss_gap, axis=1))
    differences = np.concatenate([differences[:, :1], differences], axis=1)
    return median_filter(differences, size=(1, window), mode="nearest") / (np.sqrt(2.0) * _PHI_INV_3_4)


def batch_means_standard_error(
    values: Float[np.ndarray, "chains draws"], num_batches: int = 20
) -> Float[np.ndarray, " chains"]:
    """Monte-Carlo standard error of each chain's mean by non-overlapping batch means.

    The chain is cut into `num_batches` equal batches (the first draws dropped when the length
    does not divide); se = sd(batch means) / √num_batches. Valid when a batch is much longer
    than the autocorrelation time; NaN with fewer than 2 draws per batch.
    """
    batch_length = values.shape[1] // num_batches
    if batch_length < 2:
        return np.full(values.shape[0], np.nan)
    kept = values[:, values.shape[1] - batch_length * num_batches:]
    means = kept.reshape(values.shape[0], num_batches, batch_length).mean(axis=2)
    return means.std(axis=1, ddof=1) / np.sqrt(num_batches)


def _quietly(function, *args, **kwargs) -> float:
    """arviz_stats on degenerate input (constant trace, one chain) divides by zero: NaN then."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(function(*args, **kwargs))
    return value


def diagnose(
    trace,
    *,
    noise_multiple: float = 3.0,
    noise_window: int = 25,
    max_fraction_below: float = 0.05,
    min_mala_acceptance: float = 0.8,
    max_rhat: float = 1.01,
    min_ess_per_chain: float = 100.0,
) -> Diagnostics:
    """Diagnostics of a `Trace` (see the module docstring for each rule and its threshold)."""
    import arviz_stats

    messages, codes = [], []
    acceptance = trace.info.get("mala_acceptance")
    acceptance_mean = acceptance_per_chain = None
    if acceptance is not None and np.any(np.isfinite(acceptance)):
        acceptance_per_chain = np.nanmean(acceptance, axis=1)
        acceptance_mean = float(np.nanmean(acceptance))
        if acceptance_mean < min_mala_acceptance:
            messages.append(
                f"mean MALA acceptance of the SGLD step is {acceptance_mean:.3f} < {min_mala_acceptance}: "
                "the step size is too large"
            )
            codes.append(DiagnosticCode.LOW_MALA_ACCEPTANCE)

    fraction = fraction_per_chain = gap_mean = noise_scale = None
    if trace.loss is not None and trace.loss_at_center is not None:
        gap = np.asarray(trace.loss, np.float64) - np.asarray(trace.loss_at_center, np.float64)
        noise = loss_gap_noise_scale(gap, noise_window)
        below = np.where(noise > 0, gap < -noise_multiple * noise, gap < 0)
        noise_scale = np.median(noise, axis=1)
        fraction_per_chain = below.mean(axis=1)
        fraction = float(below.mean())
        gap_mean = gap.mean(axis=1)
        gap_standard_error = batch_means_standard_error(gap)
        # Fewer than 2 draws per batch: no standard error, so no verdict from the mean.
        negative = np.isfinite(gap_standard_error) & (gap_mean < -noise_multiple * gap_standard_error)
        escaped = np.flatnonzero((fraction_per_chain > max_fraction_below) | negative)
        if escaped.size:
            messages.append(
                f"w* is not a minimum or the chain escaped: chains {escaped.tolist()} have "
                f"{np.round(fraction_per_chain[escaped], 3).tolist()} of their draws with loss below the loss "
                f"at w* by more than {noise_multiple:g} × minibatch noise (allowed {max_fraction_below}), "
                f"mean loss − loss at w* {np.round(gap_mean[escaped], 6).tolist()}"
            )
            codes.append(DiagnosticCode.ESCAPED)

    rhat = ess_bulk = ess_tail = float("nan")
    if trace.loss is not None:
        loss = np.asarray(trace.loss, np.float64)
        num_chains = loss.shape[0]
        if num_chains >= 2:
            rhat = _quietly(arviz_stats.rhat, loss, chain_axis=0, draw_axis=1)
        ess_bulk = _quietly(arviz_stats.ess, loss, method="bulk", chain_axis=0, draw_axis=1)
        ess_tail = _quietly(arviz_stats.ess, loss, method="tail", prob=(0.05, 0.95), chain_axis=0, draw_axis=1)
        if rhat > max_rhat:
            messages.append(f"R-hat of the loss is {rhat:.3f} > {max_rhat}: the chains disagree")
            codes.append(DiagnosticCode.HIGH_RHAT)
        minimum_ess = min_ess_per_chain * num_chains
        for name, value in (("bulk", ess_bulk), ("tail", ess_tail)):
            if value < minimum_ess:
                messages.append(f"{name} ESS of the loss is {value:.0f} < {minimum_ess:.0f} ({min_ess_per_chain:g} per chain)")
                codes.append(DiagnosticCode.LOW_ESS)

    return Diagnostics(
        mala_acceptance=acceptance_mean,
        mala_acceptance_per_chain=acceptance_per_chain,
        fraction_below_center=fraction,
        fraction_below_center_per_chain=fraction_per_chain,
        loss_gap_mean_per_chain=gap_mean,
        noise_scale_per_chain=noise_scale,
        rhat=rhat,
        ess_bulk=ess_bulk,
        ess_tail=ess_tail,
        warnings=tuple(messages),
        warning_codes=tuple(codes),
    )

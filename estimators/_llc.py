"""The local learning coefficient (LLC) and WBIC from loss traces."""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

from estimators._diagnostics import (
    Diagnostics,
    as_trace,
    check_positive,
    format_estimate,
    mean_and_mcse,
    trace_diagnostics,
)


class LLCResult(NamedTuple):
    """λ̂ pooled over chains (`mean`) with its MCSE, λ̂ of each chain, and diagnostics."""

    mean: float
    std_error: float
    per_chain: np.ndarray
    diagnostics: Diagnostics

    @property
    def unreliable(self) -> bool:
        return self.diagnostics.unreliable

    def summary(self) -> str:
        return format_estimate("LLC", self.mean, self.std_error, self.diagnostics)

    def __str__(self) -> str:
        return self.summary()


def llc(
    loss_trace: Float[ArrayLike, "chains draws"],
    loss_at_center: Float[ArrayLike, "chains draws"] | float,
    nbeta: float,
    *,
    rhat_threshold: float = 1.01,
    min_ess: float = 100.0,
) -> LLCResult:
    r"""Local learning coefficient λ̂(w*) = nβ (E_β[L_n(w)] − L_n(w*)) (Lau et al. 2023, arXiv 2308.12108).

    Computed draw by draw as the paired difference d_{c,t} = nβ (L_{c,t} − L*_{c,t}), where
    L_{c,t} is the loss at draw t of chain c and L*_{c,t} the loss at the centre w* (a scalar, or
    the same-minibatch loss at w* per draw, which cancels most of the minibatch noise).

        λ̂ = mean_{c,t} d_{c,t},   λ̂_c = mean_t d_{c,t},   MCSE = sd(d) / √ESS_bulk(d)

    Parameters
    ----------
    loss_trace : L_n (or a minibatch L_b) at each draw, shaped [chains, draws].
    loss_at_center : L_n(w*) as a scalar, or L_b(w*) per draw with the trace's shape.
    nbeta : nβ > 0, with n the full data size (see `slt.samplers.TemperedPosterior`).

    Diagnostics and the `unreliable` reasons: R-hat > `rhat_threshold` (1.01, Vehtari et al. 2021),
    bulk or tail ESS < `min_ess`, and a negative pooled estimate (w* is not a local minimum of the
    loss the chains saw, or the chains left its basin). A negative chain gives a warning.

    Limitations
    -----------
    The MCSE covers Monte-Carlo error only: not the sampler's discretisation bias (SGLD step
    size), the localisation γ, nor the multiplicity bias λ̂(t) ≈ λ − (m − 1)/log t at t = nβ
    (see `fit_rlct_multiplicity`).
    """
    nbeta = check_positive(nbeta, "nbeta")
    losses = as_trace(loss_trace, "loss_trace")
    center = np.asarray(loss_at_center, dtype=np.float64)
    if center.ndim == 0:
        if not np.isfinite(center):
            raise ValueError(f"loss_at_center is not finite: {float(center)}")
    else:
        if center.shape != losses.shape:
            raise ValueError(
                f"loss_at_center must be a scalar or shaped like loss_trace {losses.shape}, got {center.shape}"
            )
        center = as_trace(center, "loss_at_center")
    differences = nbeta * (losses - center)
    estimate = mean_and_mcse(differences)
    per_chain = differences.mean(axis=1)
    diagnostics = trace_diagnostics(differences, rhat_threshold=rhat_threshold, min_ess=min_ess)
    if not estimate.std_error > 0:
        diagnostics = diagnostics.with_reasons(
            "the scaled loss gap nβ (L(w) − L(w*)) is the same at every draw: the chains did not move the loss "
            "(stuck, or the loss does not depend on the parameters near w*), so there is no error bar"
        )
    if estimate.mean < 0:
        diagnostics = diagnostics.with_reasons(
            f"negative estimate {estimate.mean:.3g}: the loss averaged below L(w*), so w* is not a local minimum "
            "(or the chains left its basin)"
        )
    negative_chains = np.flatnonzero(per_chain < 0)
    if negative_chains.size:
        diagnostics = diagnostics.with_warnings(f"chains {negative_chains.tolist()} have a negative λ̂")
    return LLCResult(estimate.mean, estimate.std_error, per_chain, diagnostics)


class WBICResult(NamedTuple):
    """WBIC = E_{β*}[n L_n] (`mean`), its MCSE, and diagnostics."""

    mean: float
    std_error: float
    per_chain: np.ndarray
    diagnostics: Diagnostics

    @property
    def unreliable(self) -> bool:
        return self.diagnostics.unreliable

    def summary(self) -> str:
        return format_estimate("WBIC", self.mean, self.std_error, self.diagnostics)

    def __str__(self) -> str:
        return self.summary()


def wbic(
    loss_trace: Float[ArrayLike, "chains draws"],
    num_data: int,
    *,
    rhat_threshold: float = 1.01,
    min_ess: float = 100.0,
) -> WBICResult:
    r"""Widely applicable Bayesian information criterion (Watanabe 2013, JMLR 14:867–897).

        WBIC = E_{β*}[n L_n(w)],   β* = 1/log n,

    the posterior mean of n L_n under p_β*(w) ∝ φ(w) e^{−nβ* L_n(w)} (global posterior with the
    prior, no localisation). It estimates the free energy F_n = −log ∫ φ e^{−n L_n} dw:
    WBIC = n L_n(w0) + λ log n + O_p(√log n), so WBIC − F_n = O_p(√log n).

    Parameters
    ----------
    loss_trace : L_n(w) (mean over all n data) at draws from p_β* with β* = `watanabe_beta(n)`,
        shaped [chains, draws]. This function cannot check the temperature: draws at any other β
        give E_β[n L_n], not WBIC.
    num_data : n.

    Limitations
    -----------
    Off by O(√log n) from F_n at finite n, and biased toward overestimating the evidence at small
    n (Friel et al. 2015, arXiv 1501.05447); the MCSE is Monte-Carlo error only.
    """
    if int(num_data) != num_data or num_data < 2:
        raise ValueError(f"num_data must be an integer >= 2, got {num_data}")
    scaled = num_data * as_trace(loss_trace, "loss_trace")
    estimate = mean_and_mcse(scaled)
    diagnostics = trace_diagnostics(scaled, rhat_threshold=rhat_threshold, min_ess=min_ess)
    return WBICResult(estimate.mean, estimate.std_error, scaled.mean(axis=1), diagnostics)

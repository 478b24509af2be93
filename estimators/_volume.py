"""λ (and m) from the volume scaling V(ε) = ∫_{K(w) < ε} φ(w) dw ≈ c ε^λ (−log ε)^(m−1)."""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

from estimators._diagnostics import check_vector, no_trace_diagnostics
from estimators._fit import RLCTResult, shape_warning, weighted_least_squares


class VolumeEstimate(NamedTuple):
    """V̂(ε_k) = #{K(w_s) < ε_k}/N from N prior draws, with binomial standard errors √(V̂(1−V̂)/N)."""

    epsilons: np.ndarray
    volumes: np.ndarray
    std_errors: np.ndarray
    counts: np.ndarray
    num_samples: int


def volume_from_losses(
    loss_samples: Float[ArrayLike, " samples"],
    epsilons: Float[ArrayLike, " k"],
) -> VolumeEstimate:
    r"""Estimate V(ε) = P_φ(K(w) < ε) from K(w_s) at N independent prior draws w_s ~ φ.

        V̂(ε) = (1/N) Σ_s 1[K(w_s) < ε],   SE = √(V̂(1 − V̂)/N)   (binomial).

    `loss_samples` must be K(w) = L(w) − L(w0) >= 0 (the excess loss) at independent draws from
    the prior. Counts of zero give V̂ = 0 with SE 0: draw more or raise ε.
    """
    losses = np.asarray(loss_samples, dtype=np.float64).ravel()
    if losses.size == 0:
        raise ValueError("loss_samples is empty")
    if not np.all(np.isfinite(losses)):
        raise ValueError(f"loss_samples has non-finite values (first at index {int(np.flatnonzero(~np.isfinite(losses))[0])})")
    epsilons = check_vector(epsilons, "epsilons", positive=True)
    ordered = np.sort(losses)
    counts = np.searchsorted(ordered, epsilons, side="left")
    volumes = counts / losses.size
    return VolumeEstimate(epsilons, volumes, np.sqrt(volumes * (1 - volumes) / losses.size), counts, losses.size)


def _design(epsilons: np.ndarray, multiplicity: int | None) -> np.ndarray:
    log_epsilon = np.log(epsilons)
    columns = [np.ones_like(log_epsilon), log_epsilon]
    if multiplicity is None:
        columns.append(np.log(-log_epsilon))
    return np.stack(columns, axis=1)


def _offset(epsilons: np.ndarray, multiplicity: int | None) -> np.ndarray:
    return 0.0 if multiplicity is None else (multiplicity - 1) * np.log(-np.log(epsilons))


def _check(epsilons, multiplicity):
    if np.any(epsilons >= 1):
        raise ValueError("epsilons must be < 1 (log(−log ε) must be defined)")
    if multiplicity is not None and (int(multiplicity) != multiplicity or multiplicity < 1):
        raise ValueError(f"multiplicity must be a positive integer or None, got {multiplicity}")


def rlct_from_volume(
    epsilons: Float[ArrayLike, " k"],
    volumes: Float[ArrayLike, " k"],
    std_errors: Float[ArrayLike, " k"],
    *,
    multiplicity: int | None = 1,
) -> RLCTResult:
    r"""λ from the slope of log V(ε) against log ε (Watanabe 2009, Thm 7.1; volume scaling).

        log V(ε) = log c + λ log ε + (m − 1) log(−log ε) + o(1)   as ε → 0

    Weighted least squares on log V with σ_log V = σ_V / V (delta method); `multiplicity` = m
    held fixed (default 1), or None to fit m too.

    Limitations
    -----------
    Treats the points as independent; volumes counted from one set of prior draws are nested and
    positively correlated: use `rlct_from_loss_samples`, whose jackknife error bar accounts for it.
    The o(1) term (e.g. V = √ε (1 + ½ log(1/ε)) for w1²w2² uniform on [−1,1]²) biases λ unless ε
    spans very small values.
    """
    epsilons = check_vector(epsilons, "epsilons", positive=True)
    volumes = check_vector(volumes, "volumes", length=epsilons.size)
    std_errors = check_vector(std_errors, "std_errors", length=epsilons.size)
    _check(epsilons, multiplicity)
    if np.any(volumes <= 0):
        raise ValueError(f"volumes must be > 0 (zero counts at ε = {epsilons[volumes <= 0].tolist()}): raise ε or draw more")
    fit = weighted_least_squares(_design(epsilons, multiplicity), np.log(volumes) - _offset(epsilons, multiplicity),
                                 std_errors / volumes)
    return _result(fit, multiplicity, fit.covariance, epsilons.size)


def _result(fit, multiplicity, covariance, num_points, std_error=None, diagnostics=None):
    if multiplicity is None:
        m, m_se = 1.0 + fit.coefficients[2], float(np.sqrt(covariance[2, 2]))
    else:
        m, m_se = float(multiplicity), 0.0
    if diagnostics is None:
        diagnostics = no_trace_diagnostics(num_draws=num_points)
    diagnostics = diagnostics.with_warnings(shape_warning(fit, "log V linear in log ε"))
    rlct_se = float(np.sqrt(covariance[1, 1])) if std_error is None else std_error
    if fit.coefficients[1] <= 0:
        diagnostics = diagnostics.with_reasons("volume does not shrink with ε")
    return RLCTResult(float(fit.coefficients[1]), rlct_se, float(m), m_se, covariance, fit.chi2, fit.dof, diagnostics)


def rlct_from_loss_samples(
    loss_samples: Float[ArrayLike, " samples"],
    epsilons: Float[ArrayLike, " k"],
    *,
    multiplicity: int | None = 1,
    num_groups: int = 20,
) -> RLCTResult:
    r"""λ from prior draws of K: `volume_from_losses` then the fit of `rlct_from_volume`, with a
    delete-one-group jackknife standard error.

    The draws are split into G = `num_groups` groups; λ̂_(g) is the fit without group g (same
    weights), and SE² = (G−1)/G Σ_g (λ̂_(g) − λ̄)², which accounts for the nesting of the counts
    V̂(ε_1) ⊂ V̂(ε_2) ⊂ … that `rlct_from_volume`'s independent-points error bar ignores.

    Limitations
    -----------
    Needs enough draws that every group-deleted count at the smallest ε is positive; the fit is
    reliable only where the asymptotic form holds over the chosen ε (see `rlct_from_volume`).
    """
    losses = np.asarray(loss_samples, dtype=np.float64).ravel()
    estimate = volume_from_losses(losses, epsilons)
    epsilons = estimate.epsilons
    _check(epsilons, multiplicity)
    if np.any(estimate.counts == 0):
        raise ValueError(f"no draws with K < ε at ε = {epsilons[estimate.counts == 0].tolist()}: raise ε or draw more")
    if num_groups < 2 or losses.size < num_groups:
        raise ValueError(f"num_groups must be in [2, number of samples], got {num_groups}")
    design = _design(epsilons, multiplicity)
    offset = _offset(epsilons, multiplicity)
    weights_se = estimate.std_errors / estimate.volumes
    fit = weighted_least_squares(design, np.log(estimate.volumes) - offset, weights_se)
    groups = np.array_split(losses, num_groups)
    group_counts = np.stack([np.searchsorted(np.sort(g), epsilons, side="left") for g in groups])
    replicates = []
    for g in range(num_groups):
        counts = estimate.counts - group_counts[g]
        if np.any(counts == 0):
            raise ValueError("a jackknife replicate has zero counts at the smallest ε: draw more or raise ε")
        volumes = counts / (losses.size - groups[g].size)
        replicates.append(weighted_least_squares(design, np.log(volumes) - offset, weights_se).coefficients)
    replicates = np.stack(replicates)
    deviations = replicates - replicates.mean(axis=0)
    covariance = (num_groups - 1) / num_groups * deviations.T @ deviations
    diagnostics = no_trace_diagnostics(num_draws=losses.size)
    if estimate.counts.min() < 100:
        diagnostics = diagnostics.with_warnings(f"only {int(estimate.counts.min())} draws below the smallest ε")
    return _result(fit, multiplicity, covariance, epsilons.size, diagnostics=diagnostics)

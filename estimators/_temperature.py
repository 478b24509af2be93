"""Global λ from several inverse temperatures: the slope of E_β[n L_n] in 1/β, its one-chain
importance-reweighted variant, and the variance form."""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float
from scipy.special import logsumexp

from estimators._diagnostics import (
    Diagnostics,
    as_trace,
    check_positive,
    check_vector,
    format_estimate,
    mean_and_mcse,
    trace_diagnostics,
)
from estimators._fit import RLCTResult, shape_warning, weighted_least_squares

# Plain (unsmoothed) importance sampling has a finite-variance CLT only for k < 1/2 (Vehtari,
# Simpson, Gelman, Yao & Gabry 2024, "Pareto smoothed importance sampling"; 0.7 is their limit
# for *smoothed* weights). For Gamma-tailed n L_n the weights e^{(β−β')nL} have k = 1 − β'/β.
PARETO_K_THRESHOLD = 0.5


def _check_num_data(num_data) -> int:
    if int(num_data) != num_data or num_data < 2:
        raise ValueError(f"num_data must be an integer >= 2, got {num_data}")
    return int(num_data)


def _combine(diagnostics: Sequence[Diagnostics], labels: Sequence[str]) -> Diagnostics:
    """The worst of several traces' diagnostics, each reason prefixed by its label."""
    return Diagnostics(
        num_chains=min(d.num_chains for d in diagnostics),
        num_draws=min(d.num_draws for d in diagnostics),
        rhat=max(d.rhat for d in diagnostics),
        ess_bulk=min(d.ess_bulk for d in diagnostics),
        ess_tail=min(d.ess_tail for d in diagnostics),
        warnings=tuple(f"{label}: {w}" for d, label in zip(diagnostics, labels) for w in d.warnings),
        reasons=tuple(f"{label}: {r}" for d, label in zip(diagnostics, labels) for r in d.reasons),
    )


def _influence_std_error(influence: np.ndarray) -> tuple[float, float]:
    """MCSE of an estimator θ̂ ≈ θ + mean(ψ) from its per-draw influence trace ψ [chains, draws]."""
    estimate = mean_and_mcse(influence)
    return estimate.std_error, estimate.ess


def rlct_from_temperatures(
    betas: Float[ArrayLike, " k"],
    loss_traces: Sequence[Float[ArrayLike, "chains draws"]],
    num_data: int,
    *,
    rhat_threshold: float = 1.01,
    min_ess: float = 100.0,
) -> RLCTResult:
    r"""Global RLCT from posterior means at several inverse temperatures (Watanabe 2013, Sec. 6).

        E_β[n L_n(w)] = n L_n(w0) + λ/β + O_p(√(1/β))

    so λ is the slope of Ê_k = mean of n L_n over draws at β_k against x_k = 1/β_k, fitted by
    weighted least squares with weights 1/σ_k², σ_k the MCSE of Ê_k (from the bulk ESS). With
    two temperatures this is λ̂ = (Ê_1 − Ê_2)/(1/β_1 − 1/β_2). The standard error is the fit's
    (runs at different β independent); `multiplicity` is NaN (this form does not see m).

    Parameters
    ----------
    betas : inverse temperatures β_k (distinct, > 0), typically around β* = 1/log n.
    loss_traces : one [chains, draws] trace of L_n(w) per β_k, drawn from the global tempered
        posterior φ(w) e^{−nβ_k L_n(w)}.
    num_data : n.

    Limitations
    -----------
    The O_p(√(1/β)) fluctuation term and the multiplicity correction −(m−1)/(β log(nβ)) are not
    modelled; a large χ² flags them (warning). Temperatures close together give a large error bar.
    """
    num_data = _check_num_data(num_data)
    betas = check_vector(betas, "betas", positive=True)
    if len(loss_traces) != betas.size:
        raise ValueError(f"{betas.size} betas but {len(loss_traces)} loss_traces")
    if betas.size < 2 or np.unique(betas).size != betas.size:
        raise ValueError(f"need at least two distinct temperatures, got {betas.tolist()}")
    means, std_errors, diagnostics = [], [], []
    for k, trace in enumerate(loss_traces):
        scaled = num_data * as_trace(trace, f"loss_traces[{k}]")
        estimate = mean_and_mcse(scaled)
        means.append(estimate.mean)
        std_errors.append(estimate.std_error)
        diagnostics.append(trace_diagnostics(scaled, rhat_threshold=rhat_threshold, min_ess=min_ess))
    std_errors = np.asarray(std_errors)
    if np.any(~(std_errors > 0)):
        raise ValueError("a trace has zero or undefined Monte-Carlo error (constant or too short)")
    design = np.stack([np.ones_like(betas), 1.0 / betas], axis=1)
    fit = weighted_least_squares(design, np.asarray(means), std_errors)
    combined = _combine(diagnostics, [f"beta={b:.4g}" for b in betas])
    combined = combined.with_warnings(shape_warning(fit, "E_β[n L_n] linear in 1/β"))
    rlct, rlct_se = float(fit.coefficients[1]), float(np.sqrt(fit.covariance[1, 1]))
    if rlct < 0:
        combined = combined.with_reasons(f"negative slope {rlct:.3g}: E_β[n L_n] falls as the temperature rises")
    return RLCTResult(rlct, rlct_se, float("nan"), float("nan"), fit.covariance, fit.chi2, fit.dof, combined)


class ReweightedMean(NamedTuple):
    """E_β'[X] by importance reweighting draws at β, its MCSE, the Kish importance ESS and Pareto k̂."""

    mean: float
    std_error: float
    importance_ess: float
    pareto_k: float
    diagnostics: Diagnostics

    @property
    def unreliable(self) -> bool:
        return self.diagnostics.unreliable

    def summary(self) -> str:
        return format_estimate("E_β'[X]", self.mean, self.std_error, self.diagnostics)

    def __str__(self) -> str:
        return self.summary()


def pareto_khat(log_weights: np.ndarray) -> float:
    """Shape k̂ of a generalised Pareto fit to the largest M = min(N/5, 3√N) importance weights.

    Zhang & Stephens (2009, Technometrics 51:316) empirical-Bayes fit with the weak prior toward
    0.5 used by PSIS (Vehtari, Simpson, Gelman, Yao & Gabry 2024, arXiv 1507.02646). k̂ < 0.5:
    weights with finite variance, so the plain importance estimate and its MCSE are trustworthy;
    above, they are not, whatever the Kish ESS says. A diagnostic only (no smoothing of the weights).
    """
    ordered = np.sort(np.ravel(log_weights))
    tail = int(min(0.2 * ordered.size, 3 * np.sqrt(ordered.size)))
    if tail < 5:
        return float("nan")
    weights = np.exp(ordered - ordered[-1])
    exceedances = weights[-tail:] - weights[-tail - 1]
    quartile = exceedances[int(tail / 4 + 0.5) - 1]
    if not quartile > exceedances[0]:
        return float("nan")
    grid_size = 30 + int(np.sqrt(tail))
    b = 1 - np.sqrt(grid_size / (np.arange(1, grid_size + 1) - 0.5))
    b = b / (3 * quartile) + 1 / exceedances[-1]
    with np.errstate(all="ignore"):
        k = np.mean(np.log1p(-b[:, None] * exceedances), axis=1)
        profile = tail * (np.log(-b / k) - k - 1)
        posterior = np.exp(profile - logsumexp(profile))
        b_mean = np.sum(b * posterior) / np.sum(posterior)
        shape = np.mean(np.log1p(-b_mean * exceedances))
    shape = (tail * shape + 10 * 0.5) / (tail + 10)
    return float(shape) if np.isfinite(shape) else float("inf")


def _importance_reasons(log_weights: np.ndarray, kish: float, min_importance_ess: float) -> list[str]:
    reasons = []
    khat = pareto_khat(log_weights)
    if khat > PARETO_K_THRESHOLD:
        reasons.append(f"Pareto k̂ {khat:.2f} > {PARETO_K_THRESHOLD}: the importance weights have too heavy a tail "
                       "(target temperature too far)")
    if kish < min_importance_ess:
        reasons.append(f"importance ESS {kish:.0f} < {min_importance_ess:.0f}: target temperature too far")
    return reasons


def _log_weights(scaled_losses: np.ndarray, beta: float, target_beta: float) -> np.ndarray:
    log_weights = -(target_beta - beta) * scaled_losses
    return log_weights - log_weights.max()


def reweighted_mean(
    loss_trace: Float[ArrayLike, "chains draws"],
    num_data: int,
    beta: float,
    target_beta: float,
    observable: Float[ArrayLike, "chains draws"] | None = None,
    *,
    min_importance_ess: float = 100.0,
) -> ReweightedMean:
    r"""E_β'[X] from draws at β by importance reweighting (self-normalised):

        E_β'[X] = E_β[X e^{−(β'−β) n L_n}] / E_β[e^{−(β'−β) n L_n}] ≈ Σ_i ω_i X_i / Σ_i ω_i,

    ω_i = e^{−(β'−β) n L_n(w_i)}. X defaults to n L_n. The MCSE is that of the mean of the
    influence ψ_i = ω_i (X_i − Ê)/ω̄ (delta method), using the bulk ESS of ψ over chains. The
    Kish ESS (Σω)²/Σω² and the Pareto k̂ of the weights' tail measure the weight degeneracy; the
    result is flagged unreliable when k̂ > 0.5 or the Kish ESS < `min_importance_ess`. The Kish ESS
    alone is fooled by heavy-tailed weights (reweighting to a much hotter β' gives a large Kish
    ESS and a badly wrong mean); k̂ catches it.

    Limitations
    -----------
    Only for β' close to β. Hotter targets are the hard side: when t L_n has a Gamma-like tail
    (as near a minimum) the weights have Pareto index k = 1 − β'/β, so β' < β/2 fails (k > 1/2);
    colder targets lose effective sample size as exp((β'−β)² Var_β[n L_n]) with Var ≈ λ/β².
    """
    num_data = _check_num_data(num_data)
    beta, target_beta = check_positive(beta, "beta"), check_positive(target_beta, "target_beta")
    scaled = num_data * as_trace(loss_trace, "loss_trace")
    values = scaled if observable is None else as_trace(observable, "observable")
    if values.shape != scaled.shape:
        raise ValueError(f"observable must be shaped like loss_trace {scaled.shape}, got {values.shape}")
    log_weights = _log_weights(scaled, beta, target_beta)
    weights = np.exp(log_weights)
    weights = weights / weights.mean()
    estimate = float(np.sum(weights * values) / np.sum(weights))
    influence = weights * (values - estimate)
    std_error, _ = _influence_std_error(influence)
    importance_ess = float(weights.sum() ** 2 / np.sum(weights**2))
    diagnostics = trace_diagnostics(influence).with_reasons(
        *_importance_reasons(log_weights, importance_ess, min_importance_ess))
    return ReweightedMean(estimate, std_error, importance_ess, pareto_khat(log_weights), diagnostics)


def rlct_from_reweighting(
    loss_trace: Float[ArrayLike, "chains draws"],
    num_data: int,
    beta: float,
    target_betas: Float[ArrayLike, " k"] | None = None,
    *,
    rhat_threshold: float = 1.01,
    min_ess: float = 100.0,
    min_importance_ess: float = 100.0,
) -> RLCTResult:
    r"""Global λ from one set of draws at β: reweight to several β'_k and take the slope in 1/β'.

    Ê_k = E_β'_k[n L_n] by `reweighted_mean`; λ̂ = Σ_k c_k Ê_k, the ordinary least-squares slope of
    Ê_k against 1/β'_k (c_k = (x_k − x̄)/Σ(x_j − x̄)², x_k = 1/β'_k). The Ê_k share the same draws,
    so the standard error comes from the influence of each draw on λ̂,
    ψ_i = Σ_k c_k ω_ki (n L_n(w_i) − Ê_k)/ω̄_k, as sd(ψ)/√ESS_bulk(ψ). The default β'_k are the five
    values β(1 + s/√(2 log n)), s ∈ {−1, −½, 0, ½, 1} (the LLC paper's code, around β*).

    Limitations
    -----------
    As β'_k → β the slope becomes the variance form β² Var_β[n L_n] (see `rlct_from_variance`),
    which carries the same −(m−1)/log(nβ) finite-temperature bias.
    """
    num_data = _check_num_data(num_data)
    beta = check_positive(beta, "beta")
    if target_betas is None:
        target_betas = beta * (1 + np.linspace(-1, 1, 5) / np.sqrt(2 * np.log(num_data)))
    target_betas = check_vector(target_betas, "target_betas", positive=True)
    if np.unique(target_betas).size < 2:
        raise ValueError("need at least two distinct target_betas")
    scaled = num_data * as_trace(loss_trace, "loss_trace")
    inverse = 1.0 / target_betas
    coefficients = (inverse - inverse.mean()) / np.sum((inverse - inverse.mean()) ** 2)
    estimate, influence, reasons = 0.0, np.zeros_like(scaled), []
    for target, coefficient in zip(target_betas, coefficients):
        log_weights = _log_weights(scaled, beta, target)
        weights = np.exp(log_weights)
        weights = weights / weights.mean()
        mean = float(np.sum(weights * scaled) / np.sum(weights))
        estimate += coefficient * mean
        influence += coefficient * weights * (scaled - mean)
        kish = float(weights.sum() ** 2 / np.sum(weights**2))
        reasons += [f"beta'={target:.4g}: {r}" for r in _importance_reasons(log_weights, kish, min_importance_ess)]
    std_error, _ = _influence_std_error(influence)
    diagnostics = trace_diagnostics(influence, rhat_threshold=rhat_threshold, min_ess=min_ess).with_reasons(*reasons)
    if estimate < 0:
        diagnostics = diagnostics.with_reasons(f"negative estimate {estimate:.3g}")
    return RLCTResult(float(estimate), std_error, float("nan"), float("nan"),
                      np.array([[std_error**2]]), float("nan"), 0, diagnostics)


def rlct_from_variance(
    loss_trace: Float[ArrayLike, "chains draws"],
    num_data: int,
    beta: float,
    *,
    rhat_threshold: float = 1.01,
    min_ess: float = 100.0,
) -> RLCTResult:
    r"""Variance form λ̂ = β² Var_β[n L_n(w)] (Imai 2019, arXiv 1906.01341).

    From F(β) = −log ∫ φ e^{−β n L_n}: F'(β) = E_β[n L_n] ≈ n L_n(w0) + λ/β, so
    F''(β) = −Var_β[n L_n] ≈ −λ/β² and λ = β² Var_β[n L_n]. The MCSE uses the influence
    ψ_i = β² ((n L_n(w_i) − Ê)² − V̂) of each draw: sd(ψ)/√ESS_bulk(ψ).

    Parameters
    ----------
    loss_trace : L_n(w) at draws from the tempered posterior at β, [chains, draws].
    num_data : n.  beta : β (nβ the inverse temperature of the draws).

    Limitations
    -----------
    At finite t = nβ the same derivation with Z(t) ∝ t^{−λ}(log t)^{m−1} gives
    λ − (m−1)/log t − (m−1)/log² t: biased low when m > 1. A fourth-moment estimate, so its
    MCSE is larger than the mean's and heavy tails hurt it.
    """
    num_data = _check_num_data(num_data)
    beta = check_positive(beta, "beta")
    scaled = num_data * as_trace(loss_trace, "loss_trace")
    centred = scaled - scaled.mean()
    variance = float(np.mean(centred**2)) * scaled.size / max(scaled.size - 1, 1)
    influence = beta**2 * (centred**2 - variance)
    std_error, _ = _influence_std_error(influence)
    diagnostics = trace_diagnostics(influence, rhat_threshold=rhat_threshold, min_ess=min_ess)
    return RLCTResult(beta**2 * variance, std_error, float("nan"), float("nan"),
                      np.array([[std_error**2]]), float("nan"), 0, diagnostics)

"""WAIC and the singular fluctuation from a pointwise log-likelihood array (Watanabe 2010)."""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float
from scipy.special import logsumexp

from estimators._diagnostics import Diagnostics, format_estimate, mean_and_mcse, trace_diagnostics


class WAICResult(NamedTuple):
    """WAIC per datum (`mean`) and its parts; normalisations in `waic`'s docstring.

    Attributes
    ----------
    mean : WAIC = T_n + V_n/n.
    std_error : the data-sampling standard error sd_i(waic_i)/√n of WAIC as an estimate of the
        generalisation loss (the usual WAIC error bar; not Monte-Carlo error).
    training_loss : T_n.
    functional_variance : V_n.
    singular_fluctuation, singular_fluctuation_std_error : ν̂ = V_n/2 and its MCSE.
    diagnostics : of the per-draw influence on V_n; warnings for data with large posterior variance.
    """

    mean: float
    std_error: float
    training_loss: float
    functional_variance: float
    singular_fluctuation: float
    singular_fluctuation_std_error: float
    diagnostics: Diagnostics

    @property
    def unreliable(self) -> bool:
        return self.diagnostics.unreliable

    def summary(self) -> str:
        return (format_estimate("WAIC", self.mean, self.std_error, self.diagnostics)
                + f", ν̂ = {self.singular_fluctuation:.4g} ± {self.singular_fluctuation_std_error:.2g}")

    def __str__(self) -> str:
        return self.summary()


def waic(
    pointwise_log_likelihood: Float[ArrayLike, "draws n"] | Float[ArrayLike, "chains draws n"],
    *,
    rhat_threshold: float = 1.01,
    min_ess: float = 100.0,
) -> WAICResult:
    r"""WAIC, the Bayes training loss and the singular fluctuation (Watanabe 2010, JMLR 11:3571–3594).

    From ℓ_{s,i} = log p(X_i | w_s) at posterior draws w_s (β = 1), per datum (Watanabe's
    normalisation, the scale of the loss L_n; arviz's elpd_waic is −n·WAIC):

        T_n  = −(1/n) Σ_i log E_w[p(X_i|w)]          (training loss of the predictive)
        V_n  = Σ_i Var_w[log p(X_i|w)]                 (functional variance, unbiased in draws)
        WAIC = T_n + V_n / n,        ν̂ = V_n / 2       (singular fluctuation at β = 1)

    Watanabe's theorems: E[G_n] = λ/n + o(1/n), E[T_n] − S = (λ − 2ν)/n + o(1/n), E[V_n] → 2ν, so
    E[WAIC] = E[G_n] + S + o(1/n) with S the entropy of the truth; regular models have ν = λ = d/2.

    Parameters
    ----------
    pointwise_log_likelihood : ℓ shaped [draws, n] or [chains, draws, n], from the posterior at β = 1.

    Limitations
    -----------
    Only for draws at β = 1 (at other β, ν = β E[V_n]/2 and WAIC needs its β-form). The MCSE of ν̂
    uses the per-draw influence ψ_s = Σ_i ((ℓ_{s,i} − ℓ̄_i)² − v_i)/2; data with posterior variance
    v_i > 0.4 give a warning (Vehtari, Gelman & Gabry 2017).
    """
    values = np.asarray(pointwise_log_likelihood, dtype=np.float64)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise ValueError(f"pointwise_log_likelihood must be [draws, n] or [chains, draws, n], got {values.shape}")
    if values.size == 0:
        raise ValueError(f"pointwise_log_likelihood is empty (shape {values.shape})")
    if not np.all(np.isfinite(values)):
        chain, draw, datum = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"pointwise_log_likelihood has non-finite values (first at chain {chain}, draw {draw}, datum {datum})")
    num_chains, num_draws, num_data = values.shape
    if num_chains * num_draws < 2:
        raise ValueError("need at least two posterior draws")
    flat = values.reshape(-1, num_data)
    log_predictive = logsumexp(flat, axis=0) - np.log(flat.shape[0])
    centred = flat - flat.mean(axis=0)
    pointwise_variance = np.sum(centred**2, axis=0) / (flat.shape[0] - 1)
    influence = (0.5 * np.sum(centred**2 - pointwise_variance, axis=1)).reshape(num_chains, num_draws)
    return waic_from_summaries(log_predictive, pointwise_variance, influence,
                               rhat_threshold=rhat_threshold, min_ess=min_ess)


def waic_from_summaries(
    log_predictive: Float[ArrayLike, " n"],
    pointwise_variance: Float[ArrayLike, " n"],
    influence: Float[ArrayLike, "chains draws"],
    *,
    rhat_threshold: float = 1.01,
    min_ess: float = 100.0,
) -> WAICResult:
    r"""`waic` from per-datum summaries, for data too large to hold ℓ_{s,i} at once.

    log_predictive : log E_w[p(X_i|w)] = logsumexp_s ℓ_{s,i} − log S, per datum.
    pointwise_variance : Var_w[ℓ_{s,i}] with the 1/(S − 1) normalisation, per datum.
    influence : ψ_s = Σ_i ((ℓ_{s,i} − ℓ̄_i)² − v_i)/2 per draw, shaped [chains, draws] (sums over
        chunks of data add up).
    """
    log_predictive = np.asarray(log_predictive, dtype=np.float64)
    pointwise_variance = np.asarray(pointwise_variance, dtype=np.float64)
    influence = np.asarray(influence, dtype=np.float64)
    if log_predictive.ndim != 1 or log_predictive.shape != pointwise_variance.shape or log_predictive.size == 0:
        raise ValueError(f"log_predictive and pointwise_variance must be equal, non-empty vectors, got "
                         f"{log_predictive.shape} and {pointwise_variance.shape}")
    if influence.ndim != 2 or influence.size < 2:
        raise ValueError(f"influence must be [chains, draws] with at least two draws, got {influence.shape}")
    for name, array in (("log_predictive", log_predictive), ("pointwise_variance", pointwise_variance),
                        ("influence", influence)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} has non-finite values (first at index {np.argwhere(~np.isfinite(array))[0].tolist()})")
    num_data = log_predictive.size
    training_loss = float(-np.mean(log_predictive))
    functional_variance = float(np.sum(pointwise_variance))
    pointwise_waic = -log_predictive + pointwise_variance
    estimate = float(np.mean(pointwise_waic))
    std_error = float(np.std(pointwise_waic, ddof=1) / np.sqrt(num_data)) if num_data > 1 else float("nan")
    fluctuation_se = mean_and_mcse(influence).std_error
    diagnostics = trace_diagnostics(influence, rhat_threshold=rhat_threshold, min_ess=min_ess)
    large = int(np.sum(pointwise_variance > 0.4))
    if large:
        diagnostics = diagnostics.with_warnings(f"{large} data have posterior variance of log p > 0.4: WAIC may be biased")
    return WAICResult(estimate, std_error, training_loss, functional_variance, functional_variance / 2,
                      fluctuation_se, diagnostics)

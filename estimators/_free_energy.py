"""Free energy by thermodynamic integration, and λ (and m) from the free energy's growth in n."""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

from estimators._diagnostics import Diagnostics, check_vector, format_estimate, no_trace_diagnostics
from estimators._fit import RLCTResult, shape_warning, weighted_least_squares

RULES = ("log_trapezoid", "trapezoid")


class FreeEnergyResult(NamedTuple):
    """F_n by thermodynamic integration (`mean`), its Monte-Carlo standard error, and the rule's error.

    `discretisation_error` is the Richardson estimate |I(ladder) − I(every other rung)|/3 of the
    quadrature error (the trapezoid error is O(h²)); it is not included in `std_error`.
    """

    mean: float
    std_error: float
    discretisation_error: float
    diagnostics: Diagnostics

    @property
    def unreliable(self) -> bool:
        return self.diagnostics.unreliable

    def summary(self) -> str:
        return (format_estimate("F_n", self.mean, self.std_error, self.diagnostics)
                + f" (quadrature error ~{self.discretisation_error:.2g})")

    def __str__(self) -> str:
        return self.summary()


def temperature_ladder(num_data: int, num_temperatures: int = 41, lowest_nbeta: float = 1e-3) -> np.ndarray:
    """β ladder for `free_energy_ti`: 0, then geometric from β = `lowest_nbeta`/n to 1.

    E_β[n L_n] ≈ λ/β for nβ >> 1 and ≈ E_prior[n L_n] for nβ << 1, so β·E_β[n L_n] is smooth in
    log β and geometric spacing with the log-trapezoid rule integrates it with an error that
    shrinks like (Δ log β)².
    """
    if num_temperatures < 3:
        raise ValueError(f"num_temperatures must be >= 3, got {num_temperatures}")
    return np.concatenate([[0.0], np.geomspace(lowest_nbeta / num_data, 1.0, num_temperatures - 1)])


def _weights(betas: np.ndarray, rule: str) -> np.ndarray:
    """Quadrature weights w_k with ∫_0^{β_K} f dβ ≈ Σ_k w_k f(β_k), betas[0] = 0."""
    weights = np.zeros_like(betas)
    for k in range(betas.size - 1):
        left, right = betas[k], betas[k + 1]
        if rule == "trapezoid" or left == 0.0:
            weights[k] += 0.5 * (right - left)
            weights[k + 1] += 0.5 * (right - left)
        else:  # trapezoid in log β on β f(β): ∫ f dβ = ∫ β f d log β
            step = np.log(right / left)
            weights[k] += 0.5 * step * left
            weights[k + 1] += 0.5 * step * right
    return weights


def free_energy_ti(
    betas: Float[ArrayLike, " k"],
    mean_losses_times_n: Float[ArrayLike, " k"],
    std_errors: Float[ArrayLike, " k"],
    *,
    rule: str = "log_trapezoid",
) -> FreeEnergyResult:
    r"""Free energy by thermodynamic integration over a β ladder.

    With F(β) = −log ∫ φ(w) e^{−β n L_n(w)} dw and a proper normalised prior φ (F(0) = 0),
    F'(β) = E_β[n L_n], so

        F_n = F(1) = ∫_0^1 E_β[n L_n(w)] dβ ≈ Σ_k ω_k Ê_k,   SE² = Σ_k ω_k² σ_k²,

    with Ê_k ± σ_k the posterior means of n L_n at β_k (independent runs). Rule "log_trapezoid"
    (default): the trapezoid rule in β on the first interval [0, β_1] and in log β on β E_β[n L_n]
    above it, exact for E_β ∝ 1/β, which is the asymptotic form λ/β; use it with
    `temperature_ladder` (geometric). Rule "trapezoid": plain trapezoid in β. The quadrature error
    is estimated by halving the ladder (`discretisation_error`).

    Parameters
    ----------
    betas : strictly increasing, from 0 (prior draws) to 1.
    mean_losses_times_n : E_β[n L_n] at each β.
    std_errors : their standard errors (0 allowed for exact values).

    Limitations
    -----------
    Needs a proper prior (β = 0 means prior draws) and a ladder fine enough where E_β[n L_n]
    changes fastest, nβ ≈ 1; the discretisation error is flagged when it exceeds the
    Monte-Carlo error and 1e-3 of |F_n|.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    betas = check_vector(betas, "betas")
    values = check_vector(mean_losses_times_n, "mean_losses_times_n", length=betas.size)
    std_errors = check_vector(std_errors, "std_errors", length=betas.size)
    if betas.size < 3:
        raise ValueError(f"a ladder needs at least 3 temperatures, got {betas.size}")
    if betas[0] != 0.0 or betas[-1] != 1.0 or np.any(np.diff(betas) <= 0):
        raise ValueError("betas must increase strictly from 0 (prior draws) to 1")
    if np.any(std_errors < 0):
        raise ValueError("std_errors must be >= 0")
    weights = _weights(betas, rule)
    estimate = float(weights @ values)
    std_error = float(np.sqrt(np.sum((weights * std_errors) ** 2)))
    coarse = np.unique(np.concatenate([np.arange(0, betas.size, 2), [betas.size - 1]]))
    coarse_estimate = float(_weights(betas[coarse], rule) @ values[coarse])
    discretisation_error = abs(estimate - coarse_estimate) / 3.0
    diagnostics = no_trace_diagnostics(num_draws=betas.size)
    if discretisation_error > max(std_error, 1e-3 * abs(estimate)):
        diagnostics = diagnostics.with_reasons(
            f"quadrature error ~{discretisation_error:.2g} exceeds the Monte-Carlo error {std_error:.2g}: refine the ladder"
        )
    return FreeEnergyResult(estimate, std_error, discretisation_error, diagnostics)


def rlct_from_free_energies(
    sample_sizes: Float[ArrayLike, " k"],
    free_energies: Float[ArrayLike, " k"],
    std_errors: Float[ArrayLike, " k"],
    *,
    energies_at_truth: Float[ArrayLike, " k"] | float = 0.0,
    multiplicity: int | None = 1,
) -> RLCTResult:
    r"""λ (and optionally m) from free energies at several n (Watanabe 2009, main formula).

        F_n − n L_n(w0) = λ log n − (m − 1) log log n + c + o(1)

    Weighted least squares of y_k = F_{n_k} − n_k L_{n_k}(w0) ± σ_k on (1, log n) after adding
    (m − 1) log log n for a given integer `multiplicity`, or on (1, log n, −log log n) with
    `multiplicity=None`, which fits m as well (then `covariance` is that of (c, λ, m − 1)).

    Parameters
    ----------
    sample_sizes : the sample sizes n_k (> e, distinct).
    free_energies, std_errors : F_{n_k} ± σ_k (e.g. from `free_energy_ti`; σ_k > 0).
    energies_at_truth : n_k L_{n_k}(w0) (0 when F is measured against the population loss).

    Limitations
    -----------
    The o(1) remainder includes O(1/log n) terms when m > 1 (for the normal crossing with a
    Gaussian prior, −log(log n + c) rather than −log log n), which bias λ by about c/log² n;
    fitting m needs n spread over several decades.
    """
    sizes = check_vector(sample_sizes, "sample_sizes", positive=True)
    energies = check_vector(free_energies, "free_energies", length=sizes.size)
    std_errors = check_vector(std_errors, "std_errors", length=sizes.size, positive=True)
    if np.any(sizes <= np.e):
        raise ValueError("sample_sizes must be > e so that log log n is defined")
    at_truth = np.broadcast_to(np.asarray(energies_at_truth, dtype=np.float64), sizes.shape)
    values = energies - at_truth
    log_n, log_log_n = np.log(sizes), np.log(np.log(sizes))
    if multiplicity is None:
        fit = weighted_least_squares(np.stack([np.ones_like(log_n), log_n, -log_log_n], 1), values, std_errors)
        m, m_se = 1.0 + fit.coefficients[2], float(np.sqrt(fit.covariance[2, 2]))
    else:
        if int(multiplicity) != multiplicity or multiplicity < 1:
            raise ValueError(f"multiplicity must be a positive integer or None, got {multiplicity}")
        fit = weighted_least_squares(np.stack([np.ones_like(log_n), log_n], 1),
                                     values + (multiplicity - 1) * log_log_n, std_errors)
        m, m_se = float(multiplicity), 0.0
    diagnostics = no_trace_diagnostics(num_draws=sizes.size).with_warnings(
        shape_warning(fit, "λ log n − (m−1) log log n"))
    if fit.dof < 1:
        diagnostics = diagnostics.with_warnings("no degrees of freedom left to check the fit")
    return RLCTResult(float(fit.coefficients[1]), float(np.sqrt(fit.covariance[1, 1])), float(m), m_se,
                      fit.covariance, fit.chi2, fit.dof, diagnostics)

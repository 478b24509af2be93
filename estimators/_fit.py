"""Weighted least squares with known standard errors, the fitting core of the slope estimators."""

from typing import NamedTuple

import numpy as np
from scipy import stats

from estimators._diagnostics import Diagnostics, format_estimate


class LinearFit(NamedTuple):
    """y ≈ X θ with Var(y_k) = σ_k² known.

    θ̂ = (Xᵀ W X)⁻¹ Xᵀ W y, W = diag(1/σ_k²), Cov(θ̂) = (Xᵀ W X)⁻¹ (the standard errors treat
    the σ_k as exact and the points as independent). chi2 = Σ_k (y_k − (Xθ̂)_k)²/σ_k² with
    `dof` = K − p degrees of freedom; `p_value` = P(χ²_dof ≥ chi2) (NaN when dof = 0), a test of
    the model's shape.
    """

    coefficients: np.ndarray
    covariance: np.ndarray
    chi2: float
    dof: int
    p_value: float


def weighted_least_squares(design: np.ndarray, values: np.ndarray, std_errors: np.ndarray) -> LinearFit:
    design = np.asarray(design, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    std_errors = np.asarray(std_errors, dtype=np.float64)
    num_points, num_coefficients = design.shape
    if num_points < num_coefficients:
        raise ValueError(f"{num_points} points cannot determine {num_coefficients} coefficients")
    if not np.all(std_errors > 0):
        raise ValueError("standard errors must be > 0 for a weighted fit (pass a small positive value for exact inputs)")
    weights = 1.0 / std_errors**2
    normal = design.T @ (weights[:, None] * design)
    covariance = np.linalg.inv(normal)
    coefficients = covariance @ (design.T @ (weights * values))
    residuals = values - design @ coefficients
    chi2 = float(np.sum(weights * residuals**2))
    dof = num_points - num_coefficients
    p_value = float(stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan")
    return LinearFit(coefficients, covariance, chi2, dof, p_value)


def generalized_least_squares(design: np.ndarray, values: np.ndarray, covariance: np.ndarray) -> LinearFit:
    """`weighted_least_squares` for correlated values, Cov(y) = `covariance` (symmetric positive
    definite): whitened by its Cholesky factor L (y' = L⁻¹y, X' = L⁻¹X), which turns it into unit
    weights, so θ̂ = (Xᵀ C⁻¹ X)⁻¹ Xᵀ C⁻¹ y, Cov(θ̂) = (Xᵀ C⁻¹ X)⁻¹ and χ² = rᵀ C⁻¹ r."""
    covariance = np.asarray(covariance, dtype=np.float64)
    try:
        factor = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        raise ValueError("the covariance of the values must be symmetric positive definite") from None
    whitened_design = np.linalg.solve(factor, np.asarray(design, dtype=np.float64))
    whitened_values = np.linalg.solve(factor, np.asarray(values, dtype=np.float64))
    return weighted_least_squares(whitened_design, whitened_values, np.ones(whitened_values.size))


def shape_warning(fit: LinearFit, what: str, threshold: float = 1e-3) -> str:
    """A warning when the fit's χ² rejects the model shape at level `threshold`."""
    if fit.dof > 0 and fit.p_value < threshold:
        return (f"{what} does not fit the points (chi2 = {fit.chi2:.1f} on {fit.dof} dof, p = {fit.p_value:.1e}); "
                "higher-order terms or underestimated standard errors")
    return ""


class RLCTResult(NamedTuple):
    """A learning-coefficient estimate from a fit or a moment, with its standard error.

    Attributes
    ----------
    mean : the estimate of λ.
    std_error : its standard error (Monte-Carlo or from the fit's covariance).
    multiplicity, multiplicity_std_error : m where the method estimates it (else the value held
        fixed with standard error 0, or NaN where the method says nothing about m).
    covariance : covariance of the fitted coefficients (1×1 for a moment estimator).
    chi2, dof : goodness of fit (NaN, 0 for a moment estimator).
    diagnostics : see `Diagnostics`; `unreliable` is True when any check failed.
    """

    mean: float
    std_error: float
    multiplicity: float
    multiplicity_std_error: float
    covariance: np.ndarray
    chi2: float
    dof: int
    diagnostics: Diagnostics

    @property
    def unreliable(self) -> bool:
        return self.diagnostics.unreliable

    def summary(self) -> str:
        text = format_estimate("λ", self.mean, self.std_error, self.diagnostics)
        if np.isfinite(self.multiplicity):
            text += f", m = {self.multiplicity:.3g} ± {self.multiplicity_std_error:.2g}"
        return text

    def __str__(self) -> str:
        return self.summary()

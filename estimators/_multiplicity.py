r"""λ and the multiplicity m from LLC estimates at several inverse temperatures t = nβ.

Derivation. Let K(w) >= 0 be the loss minus its minimum near w* and Z(t) = ∫ e^{−tK(w)} φ(w) dw
the local partition function at inverse temperature t = nβ. If the zeta function
ζ(z) = ∫ K(w)^z φ(w) dw has its largest pole at z = −λ, of order m (resolution of
singularities; Watanabe 2009, Algebraic Geometry and Statistical Learning Theory, Ch. 4 and 6,
the source of the "(m−1) log log n" term of the free energy), then as t → ∞

    Z(t) = C t^{−λ} (log t)^{m−1} (1 + O(1/log t)).

So −log Z(t) = λ log t − (m−1) log log t − log C + o(1), and the tempered mean of tK is

    E_t[tK] = t · d(−log Z)/dt = λ − (m−1)/log t + O(1/log² t)        (*)

because d/dt log log t = 1/(t log t). The LLC estimator λ̂ = nβ(E_β[L_n] − L_n(w*)) is exactly
E_t[tK] with t = nβ, so at finite t it is biased low by (m−1)/log t: for the normal crossing
w1² w2² (λ = 1/2, m = 2) at n = 1000, t = n/log n ≈ 145, λ̂ ≈ 0.5 − 1/log 145 ≈ 0.30. The
O(1/log² t) term comes from the next term C' t^{−λ} (log t)^{m−2} of Z and is not small at
practical t: for K = w1²w2²/2 with a N(0, 1) prior the exact value is
E_t[tK] = 1/2 + z(1 − K₁(z)/K₀(z)), z = 1/(4t), ≈ 1/2 − 1/(log t + log 8 − γ_Euler).
Fitting (*) to λ̂(t_k) at several t_k recovers λ and m; `second_order=True` adds the
b/log² t term, which absorbs that constant shift (b ≈ (m−1)·c for 1/(log t + c)).

Model averaging. Over a narrow range of t the candidate shapes (integer m, with or without b)
fit noisy λ̂(t_k) about equally well and extrapolate to different λ, so choosing one and
quoting its standard error understates the uncertainty. `averaged_rlct` weighs every candidate
by its Akaike weight w_i ∝ exp(−(χ²_i + 2 p_i)/2) and its standard error adds the spread
between candidates (Buckland, Burnham & Augustin 1997, Biometrics 53:603):

    λ̄ = Σ w_i λ_i,    se(λ̄) = Σ w_i √(se_i² + (λ_i − λ̄)²).

`benchmarks/rlct_fit_study.py` measures both on the exact λ(t) of the registry's d <= 2 models
with simulated noise.
"""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

from estimators._diagnostics import Diagnostics, check_vector, format_estimate, no_trace_diagnostics
from estimators._fit import generalized_least_squares, shape_warning, weighted_least_squares


class MultiplicityFit(NamedTuple):
    """Fit of λ̂(t) = λ − (m − 1)/log t [+ b/log² t].

    Attributes
    ----------
    rlct, rlct_std_error : λ with m continuous.
    multiplicity, multiplicity_std_error : m, continuous.
    covariance : covariance of (λ, m[, b]).
    second_order_coefficient : b (0 when not fitted).
    integer_multiplicity : the integer m in 1..`max_multiplicity` with the smallest χ² when m is
        fixed, and `rlct_at_integer_multiplicity` (± `rlct_at_integer_std_error`) the λ fitted with it.
    averaged_rlct, averaged_rlct_std_error : λ averaged over the candidate shapes (integer m, with
        and without b) with Akaike weights, its error bar including the spread between candidates.
    model_weights : (shape, weight, λ) per candidate, e.g. ("m=2+b", 0.31, 0.49).
    chi2, dof : goodness of fit of the continuous model.
    diagnostics : `reasons` when the fit is unreliable (too few temperatures, m < 1 by more
        than 3 standard errors, ill-determined fit).
    """

    rlct: float
    rlct_std_error: float
    multiplicity: float
    multiplicity_std_error: float
    covariance: np.ndarray
    second_order_coefficient: float
    integer_multiplicity: int
    rlct_at_integer_multiplicity: float
    rlct_at_integer_std_error: float
    chi2: float
    dof: int
    diagnostics: Diagnostics
    averaged_rlct: float = float("nan")
    averaged_rlct_std_error: float = float("nan")
    model_weights: tuple[tuple[str, float, float], ...] = ()

    @property
    def unreliable(self) -> bool:
        return self.diagnostics.unreliable

    def summary(self) -> str:
        text = (format_estimate("λ", self.rlct, self.rlct_std_error, self.diagnostics)
                + f", m = {self.multiplicity:.3g} ± {self.multiplicity_std_error:.2g}"
                + f"; integer m = {self.integer_multiplicity}: λ = {self.rlct_at_integer_multiplicity:.6g}"
                + f" ± {self.rlct_at_integer_std_error:.2g}"
                + f"; model-averaged λ = {self.averaged_rlct:.6g} ± {self.averaged_rlct_std_error:.2g}")
        return text

    def __str__(self) -> str:
        return self.summary()


def fit_rlct_multiplicity(
    nbetas: Float[ArrayLike, " k"],
    llc_means: Float[ArrayLike, " k"],
    llc_std_errors: Float[ArrayLike, " k"],
    *,
    second_order: bool = False,
    max_multiplicity: int = 6,
    llc_correlation: Float[ArrayLike, "k k"] | None = None,
) -> MultiplicityFit:
    r"""Fit λ̂(t) = λ − (m − 1)/log t [+ b/log² t] to LLC estimates at inverse temperatures t = nβ.

    Weighted least squares (weights 1/σ_k²) of the LLC means λ̂_k ± σ_k on the regressors
    (1, −1/log t_k[, 1/log² t_k]); the coefficient of −1/log t is m − 1. See the module docstring
    for the derivation of λ̂(t) = t d(−log Z)/dt = λ − (m−1)/log t. Also fits λ with each integer
    m = 1..`max_multiplicity` held fixed and keeps the one with the smallest χ².

    Parameters
    ----------
    nbetas : t_k = n β_k > 1 (several, spread over as many decades of t as possible).
    llc_means, llc_std_errors : λ̂(t_k) and its standard error (from `llc`).
    second_order : also fit the b/log² t term (needs >= 3 temperatures and a wide range of t).
    llc_correlation : the correlation matrix R of the λ̂(t_k) (None: independent). With runs that
        share their random numbers across temperatures (the same chain keys, noise and
        minibatches at every t), neighbouring λ̂(t_k) are correlated about 0.95 (measured on
        w1²w2⁴, 16 chains: 0.94–0.97, against 0.09–0.42 with independent keys;
        `benchmarks/rlct_common_random_numbers.py`) and their
        differences, which set m and the extrapolation, are far better determined than each
        value: every fit is then generalised least squares with Cov = D R D, D = diag(σ_k), and
        χ² = rᵀ Cov⁻¹ r.

    Limitations
    -----------
    1/log t changes slowly: separating λ from m needs t spread over decades (e.g. 1e2 to 1e6),
    and with `second_order` the three coefficients are strongly correlated (see `covariance`).
    Without `second_order` the neglected c/log² t term biases λ by about 0.02 for the normal
    crossing over t = 1e2..1e6 (−0.019 with m fitted, +0.021 with m = 2 held), several error bars.
    Points are independent unless `llc_correlation` is given. Correlated points make the fit
    trust the shape of λ̂(t) more, which helps only where the shape is right: as `slt.estimate`'s
    rlct default (shared random numbers, R from batch means) it made the registry table worse
    (`benchmarks/accuracy.py --method rlct`: median error 16.2 % against 13.0 %, 14 against 17 of
    36 within 10 %, coverage 56 % against 72 %), since precise differences expose trends the
    shapes do not model (the t^(−g) approach, the data set's own λ_n(t), SGLD bias growing with t),
    so `slt.estimate` keeps independent temperatures.
    """
    nbetas = check_vector(nbetas, "nbetas", positive=True)
    means = check_vector(llc_means, "llc_means", length=nbetas.size)
    std_errors = check_vector(llc_std_errors, "llc_std_errors", length=nbetas.size, positive=True)
    if np.any(nbetas <= 1):
        raise ValueError(f"nbetas must be > 1 (log t > 0), got {nbetas.tolist()}")
    if llc_correlation is None:
        solve = lambda design, values: weighted_least_squares(design, values, std_errors)
    else:
        correlation = np.asarray(llc_correlation, dtype=np.float64)
        if correlation.shape != (nbetas.size, nbetas.size) or not np.all(np.isfinite(correlation)):
            raise ValueError(f"llc_correlation must be a finite {nbetas.size}×{nbetas.size} matrix, got shape "
                             f"{correlation.shape}")
        if not np.allclose(correlation, correlation.T) or not np.allclose(np.diag(correlation), 1.0):
            raise ValueError("llc_correlation must be symmetric with ones on the diagonal")
        covariance = correlation * np.outer(std_errors, std_errors)
        solve = lambda design, values: generalized_least_squares(design, values, covariance)
    inverse_log = 1.0 / np.log(nbetas)
    columns = [np.ones_like(nbetas), -inverse_log] + ([inverse_log**2] if second_order else [])
    design = np.stack(columns, axis=1)
    fit = solve(design, means)
    rlct, excess = fit.coefficients[:2]
    rlct_se, multiplicity_se = np.sqrt(np.diag(fit.covariance)[:2])
    multiplicity = 1.0 + excess

    fixed = _fixed_multiplicity_fits(inverse_log, means, solve, max_multiplicity)
    integer_m = min(range(1, max_multiplicity + 1), key=lambda m: fixed[m, second_order].chi2)
    integer_fit = fixed[integer_m, second_order]
    averaged, averaged_se, weights = _model_average(fixed, inverse_log.size)

    diagnostics = no_trace_diagnostics(num_chains=0, num_draws=nbetas.size)
    reasons = []
    if fit.dof < 1:
        reasons.append(f"{nbetas.size} temperatures for {design.shape[1]} coefficients: no check of the fit")
    if multiplicity < 1 - 3 * multiplicity_se:
        reasons.append(f"m = {multiplicity:.3g} ± {multiplicity_se:.2g} < 1: the LLC increases faster with t than the model allows")
    if not (rlct_se < np.inf) or rlct_se > max(abs(rlct), 1e-12):
        reasons.append(f"λ is not determined (standard error {rlct_se:.2g}): widen the range of t")
    diagnostics = diagnostics.with_reasons(*reasons).with_warnings(shape_warning(fit, "λ − (m−1)/log t"))
    return MultiplicityFit(
        rlct=float(rlct),
        rlct_std_error=float(rlct_se),
        multiplicity=float(multiplicity),
        multiplicity_std_error=float(multiplicity_se),
        covariance=fit.covariance,
        second_order_coefficient=float(fit.coefficients[2]) if second_order else 0.0,
        integer_multiplicity=integer_m,
        rlct_at_integer_multiplicity=float(integer_fit.coefficients[0]),
        rlct_at_integer_std_error=float(np.sqrt(integer_fit.covariance[0, 0])),
        chi2=fit.chi2,
        dof=fit.dof,
        diagnostics=diagnostics,
        averaged_rlct=averaged,
        averaged_rlct_std_error=averaged_se,
        model_weights=weights,
    )


def _fixed_multiplicity_fits(inverse_log, means, solve, max_multiplicity: int) -> dict:
    """{(m, with_b): fit of λ − (m−1)/log t [+ b/log² t] with m held fixed}, m = 1..max_multiplicity,
    each by `solve(design, values)` (weighted or generalised least squares)."""
    fits = {}
    for m in range(1, max_multiplicity + 1):
        shifted = means + (m - 1) * inverse_log
        for with_b in (False, True):
            columns = [np.ones_like(inverse_log)] + ([inverse_log**2] if with_b else [])
            if len(columns) <= inverse_log.size:
                fits[m, with_b] = solve(np.stack(columns, axis=1), shifted)
    return fits


def _model_average(fixed: dict, num_points: int):
    """Akaike-weighted λ over the fixed-m shapes that leave a residual degree of freedom."""
    candidates = []
    for (m, with_b), fit in fixed.items():
        num_coefficients = 1 + with_b
        if num_coefficients < num_points:  # with no residual degree of freedom the shape cannot be weighed
            candidates.append((f"m={m}" + ("+b" if with_b else ""), fit.chi2 + 2 * num_coefficients,
                               fit.coefficients[0], float(np.sqrt(fit.covariance[0, 0]))))
    scores = np.array([c[1] for c in candidates])
    weights = np.exp(-(scores - scores.min()) / 2)
    weights /= weights.sum()
    values = np.array([c[2] for c in candidates])
    errors = np.array([c[3] for c in candidates])
    mean = float(np.sum(weights * values))
    std_error = float(np.sum(weights * np.sqrt(errors**2 + (values - mean) ** 2)))
    return mean, std_error, tuple((c[0], float(w), float(c[2])) for c, w in zip(candidates, weights))

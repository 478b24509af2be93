"""Thermodynamic integration against exact free energies in 1-D and 2-D, and λ from F_n in log n."""

import numpy as np
import pytest
from test_estimators_exact import (
    NORMAL_CROSSING_SHIFT,
    Z_TOLERANCE,
    normal_crossing_free_energy,
    normal_crossing_mean,
    quartic_free_energy,
    quartic_mean,
)

from estimators import free_energy_ti, rlct_from_free_energies, temperature_ladder

N = 1000


def quartic_ladder_means(betas, n):
    # E_β[n K] = E_t[tK]/β at t = nβ; at β = 0 the prior mean n E[w⁴/2] = 3n/2.
    return np.array([1.5 * n if beta == 0 else quartic_mean(n * beta) / beta for beta in betas])


def normal_crossing_ladder_means(betas, n):
    # at β = 0 the prior mean n E[(w1 w2)²/2] = n/2.
    return np.array([0.5 * n if beta == 0 else normal_crossing_mean(n * beta) / beta for beta in betas])


@pytest.mark.parametrize("model", ["quartic", "normal_crossing"])
def test_exact_ladder_reproduces_the_exact_free_energy_within_the_quadrature_error(model):
    # Exact E_β[nK] on a 41-rung geometric ladder: |F_TI − F| <= 3 × the Richardson error estimate
    # (plus 1e-5 for the quadrature of the exact values themselves).
    betas = temperature_ladder(N, 41)
    if model == "quartic":
        means, exact = quartic_ladder_means(betas, N), quartic_free_energy(N)
    else:
        means, exact = normal_crossing_ladder_means(betas, N), normal_crossing_free_energy(N)
    result = free_energy_ti(betas, means, np.zeros_like(means))
    assert abs(result.mean - exact) < 3 * result.discretisation_error + 1e-5
    assert result.discretisation_error < 1e-3
    assert result.std_error == 0


def test_noisy_ladder_covers_the_exact_free_energy_with_its_standard_error():
    # Each rung's mean gets N(0, σ_k²) noise with σ_k = 2 % of it (an MCMC-like error bar);
    # |F̂ − F| <= Z_TOLERANCE·SE + 3·(quadrature error).
    betas = temperature_ladder(N, 41)
    means = normal_crossing_ladder_means(betas, N)
    std_errors = 0.02 * means
    noisy = means + std_errors * np.random.default_rng(20).standard_normal(means.size)
    result = free_energy_ti(betas, noisy, std_errors)
    exact = normal_crossing_free_energy(N)
    assert abs(result.mean - exact) < Z_TOLERANCE * result.std_error + 3 * result.discretisation_error
    assert not result.unreliable


def test_a_coarse_plain_trapezoid_is_flagged():
    betas = temperature_ladder(N, 11)
    means = quartic_ladder_means(betas, N)
    result = free_energy_ti(betas, means, np.zeros_like(means), rule="trapezoid")
    assert result.unreliable and "UNRELIABLE" in str(result)
    assert abs(result.mean - quartic_free_energy(N)) < 3 * result.discretisation_error


def test_ladder_errors():
    with pytest.raises(ValueError, match="from 0"):
        free_energy_ti([0.1, 0.5, 1.0], [3.0, 2.0, 1.0], [0.1] * 3)
    with pytest.raises(ValueError, match="non-finite"):
        free_energy_ti([0.0, 0.5, 1.0], [3.0, np.nan, 1.0], [0.1] * 3)
    with pytest.raises(ValueError, match="rule"):
        free_energy_ti([0.0, 0.5, 1.0], [3.0, 2.0, 1.0], [0.1] * 3, rule="simpson")


def test_slope_of_the_exact_free_energy_in_log_n_is_lambda():
    # Normal crossing: F_n = ½ log n − log(log n + c) + const + O(1/n), c = log 8 − γ. With m = 2
    # held fixed, the neglected −log(1 + c/log n) has slope c/log² n in log n, so the fitted λ lies
    # in [1/2 + c/log² n_max, 1/2 + c/log² n_min] (a weighted mean of that slope).
    sizes = np.logspace(4, 12, 9)
    energies = normal_crossing_free_energy(sizes)
    fit = rlct_from_free_energies(sizes, energies, np.full(sizes.size, 1e-3), multiplicity=2)
    shift = NORMAL_CROSSING_SHIFT
    assert 0.5 + shift / np.log(sizes[-1]) ** 2 - 1e-4 < fit.mean < 0.5 + shift / np.log(sizes[0]) ** 2
    # With m = 1 (the multiplicity ignored) the slope is visibly low: λ − 1/log n.
    ignored = rlct_from_free_energies(sizes, energies, np.full(sizes.size, 1e-3), multiplicity=1)
    assert ignored.mean < 0.5 - 0.5 / np.log(sizes[-1])
    # Quartic (m = 1): corrections are powers of n, the slope is λ = 1/4 within 2e-3 over 1e4..1e10.
    sizes = np.logspace(4, 10, 7)
    quartic = rlct_from_free_energies(sizes, [quartic_free_energy(n) for n in sizes], np.full(sizes.size, 1e-3))
    assert abs(quartic.mean - 0.25) < 2e-3


def test_lambda_and_m_from_thermodynamic_integration_at_several_n():
    # The whole pipeline: noisy ladders at each n → F_n ± SE → λ with m fitted, then m = 2 fixed.
    rng = np.random.default_rng(21)
    sizes = np.logspace(3, 9, 7)
    energies, std_errors = [], []
    for n in sizes:
        betas = temperature_ladder(int(n), 41)
        means = normal_crossing_ladder_means(betas, n)
        rung_errors = 0.01 * means
        result = free_energy_ti(betas, means + rung_errors * rng.standard_normal(means.size), rung_errors)
        energies.append(result.mean)
        std_errors.append(np.hypot(result.std_error, result.discretisation_error))
    fixed = rlct_from_free_energies(sizes, energies, std_errors, multiplicity=2)
    bias_bound = NORMAL_CROSSING_SHIFT / np.log(sizes[0]) ** 2  # see the test above
    assert -Z_TOLERANCE * fixed.std_error < fixed.mean - 0.5 < Z_TOLERANCE * fixed.std_error + bias_bound
    # Fitting m as well: the c/log n remainder leaks into m (and λ). Its size is measured by the same
    # fit on the exact F_n (same weights); the noisy fit must lie within Z_TOLERANCE·SE of that bias.
    fitted = rlct_from_free_energies(sizes, energies, std_errors, multiplicity=None)
    exact = rlct_from_free_energies(sizes, normal_crossing_free_energy(sizes), std_errors, multiplicity=None)
    assert abs(exact.mean - 0.5) < 0.02 and abs(exact.multiplicity - 2) < 0.3
    assert abs(fitted.mean - 0.5) < Z_TOLERANCE * fitted.std_error + abs(exact.mean - 0.5)
    assert abs(fitted.multiplicity - 2) < Z_TOLERANCE * fitted.multiplicity_std_error + abs(exact.multiplicity - 2)

"""Global λ from several temperatures, one-chain reweighting and the variance form, on exact draws."""

import numpy as np
import pytest
from test_estimators_exact import Z_TOLERANCE, normal_crossing_draws, normal_crossing_loss, normal_crossing_mean

from estimators import reweighted_mean, rlct_from_reweighting, rlct_from_temperatures, rlct_from_variance
from estimators._fit import weighted_least_squares
from slt.samplers import watanabe_beta

N = 1000


def flat_quartic_losses(rng, beta, shape, n=N):
    """K = w⁴/2 under the flat-prior tempered posterior at nβ: nβK ~ Gamma(1/4, 1) exactly."""
    return rng.gamma(0.25, size=shape) / (n * beta)


def test_slope_in_inverse_temperature_recovers_lambda_exactly_for_a_pure_power():
    # Flat prior, K = w⁴/2: E_β[nK] = (1/4)/β exactly, so the slope in 1/β is λ = 1/4 with no bias.
    rng = np.random.default_rng(30)
    betas = watanabe_beta(N) * np.array([0.7, 0.85, 1.0, 1.2, 1.4])
    traces = [flat_quartic_losses(rng, beta, (4, 1000)) for beta in betas]
    result = rlct_from_temperatures(betas, traces, N)
    assert abs(result.mean - 0.25) < Z_TOLERANCE * result.std_error
    assert not result.unreliable
    assert np.isnan(result.multiplicity)


def test_slope_on_the_normal_crossing_matches_the_same_fit_of_the_exact_means():
    # Normal crossing with N(0, I) prior; the finite-temperature target is the same weighted fit
    # applied to the exact E_β[nK] = E_t[tK]/β, which lies below λ = 1/2 (the multiplicity bias).
    rng = np.random.default_rng(31)
    betas = watanabe_beta(N) * np.array([0.5, 1.0, 2.0])
    traces = []
    for beta in betas:
        w1, w2 = normal_crossing_draws(rng, N * beta, (4, 2000))
        traces.append(normal_crossing_loss(w1, w2))
    result = rlct_from_temperatures(betas, traces, N)
    std_errors = [N * trace.std() / np.sqrt(trace.size) for trace in traces]  # independent draws
    design = np.stack([np.ones(3), 1 / betas], axis=1)
    target = weighted_least_squares(design, normal_crossing_mean(N * betas) / betas, std_errors).coefficients[1]
    assert abs(result.mean - target) < Z_TOLERANCE * result.std_error
    assert target < 0.5 - 0.5 / np.log(N * betas.max())


def test_an_unmixed_temperature_makes_the_slope_unreliable_and_says_which():
    rng = np.random.default_rng(35)
    betas = watanabe_beta(N) * np.array([0.8, 1.0, 1.25])
    traces = [flat_quartic_losses(rng, beta, (4, 1000)) for beta in betas]
    traces[1][0] += 0.01  # one chain at the middle temperature stuck elsewhere
    result = rlct_from_temperatures(betas, traces, N)
    assert result.unreliable and "UNRELIABLE" in str(result)
    assert any(reason.startswith(f"beta={betas[1]:.4g}: R-hat") for reason in result.diagnostics.reasons)


def test_temperature_input_errors():
    with pytest.raises(ValueError, match="two distinct"):
        rlct_from_temperatures([0.1, 0.1], [np.ones((2, 10)), np.ones((2, 10))], N)
    with pytest.raises(ValueError, match="loss_traces"):
        rlct_from_temperatures([0.1, 0.2], [np.ones((2, 10))], N)
    with pytest.raises(ValueError, match=r"loss_traces\[1\].*chain 0"):
        rlct_from_temperatures([0.1, 0.2], [np.ones((2, 10)), np.full((2, 10), np.nan)], N)


def test_reweighting_to_a_nearby_temperature_matches_the_exact_mean():
    rng = np.random.default_rng(32)
    beta = watanabe_beta(N)
    losses = flat_quartic_losses(rng, beta, (4, 2000))
    for target in (0.8 * beta, 1.25 * beta):
        result = reweighted_mean(losses, N, beta, target)
        assert abs(result.mean - 0.25 / target) < Z_TOLERANCE * result.std_error
        assert result.importance_ess > 1000 and result.pareto_k < 0.5
        assert not result.unreliable
    # Much hotter: weights e^{+(β−β')nK} with a heavy tail (Pareto k = 1 − β'/β = 0.95). The Kish ESS stays
    # large while the mean is far off; Pareto k̂ flags it.
    far = reweighted_mean(losses, N, beta, beta / 20)
    assert far.importance_ess > 1000 and abs(far.mean - 0.25 / (beta / 20)) > 10 * far.std_error
    assert far.unreliable and any("Pareto" in reason for reason in far.diagnostics.reasons)


@pytest.mark.parametrize("estimator", ["reweighting", "variance"])
def test_one_chain_estimators_recover_lambda_with_calibrated_errors(estimator):
    # Flat prior, K = w⁴/2 at β*: both λ̂ = slope of the reweighted means and λ̂ = β² Var_β[nK] have
    # expectation 1/4 up to O(1/draws). Over R = 100 replicates: the mean of λ̂ is within
    # Z_TOLERANCE·sd/√R of 1/4, and the spread of λ̂ matches the reported standard error: the ratio
    # sd(λ̂)/rms(SE) has a relative sampling error of about 1/√(2R) = 7 % (more with heavy
    # tails), so the band [0.75, 1.33] is about ±4 of those. (A Σz² test is too sensitive to the
    # heavy tails of z that self-normalised weights produce at this many draws.)
    rng = np.random.default_rng(33)
    beta = watanabe_beta(N)
    replicates = 100
    estimates, std_errors = [], []
    for _ in range(replicates):
        losses = flat_quartic_losses(rng, beta, (4, 2000))
        if estimator == "reweighting":
            result = rlct_from_reweighting(losses, N, beta)
        else:
            result = rlct_from_variance(losses, N, beta)
        estimates.append(result.mean)
        std_errors.append(result.std_error)
    estimates = np.asarray(estimates)
    spread = estimates.std(ddof=1)
    assert abs(estimates.mean() - 0.25) < Z_TOLERANCE * spread / np.sqrt(replicates)
    assert 0.75 < spread / np.sqrt(np.mean(np.square(std_errors))) < 1.33


def test_variance_form_matches_the_exact_variance_of_the_normal_crossing():
    # Var_t[tK] = a(t) − t a'(t) with a(t) = E_t[tK] (F'' = −Var); a' by a central difference in log t.
    rng = np.random.default_rng(34)
    beta = watanabe_beta(N)
    t = N * beta
    step = 1e-4
    derivative = (normal_crossing_mean(t * np.exp(step)) - normal_crossing_mean(t * np.exp(-step))) / (2 * step)
    exact = normal_crossing_mean(t) - derivative
    w1, w2 = normal_crossing_draws(rng, t, (4, 5000))
    result = rlct_from_variance(normal_crossing_loss(w1, w2), N, beta)
    assert abs(result.mean - exact) < Z_TOLERANCE * result.std_error
    assert exact < normal_crossing_mean(t) < 0.5  # biased low, more than the LLC (an extra −(m−1)/log² t)

"""`llc` and `wbic` on exact draws: known λ, exact finite-temperature means, MCSE calibration, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from test_estimators_exact import (
    Z_TOLERANCE,
    normal_crossing_draws,
    normal_crossing_loss,
    normal_crossing_mean,
    quartic_draws,
    quartic_mean,
)

import toy_models
from estimators import llc, wbic
from slt.samplers import watanabe_beta


def ar1_gamma_trace(rng, num_chains, num_draws, correlation, shape):
    """Autocorrelated chains whose every draw is exactly Gamma(shape, 1): a Gaussian AR(1) with
    lag-1 correlation `correlation`, mapped through Φ and the Gamma inverse CDF (a copula)."""
    latent = np.empty((num_chains, num_draws))
    latent[:, 0] = rng.standard_normal(num_chains)
    innovations = np.sqrt(1 - correlation**2) * rng.standard_normal((num_chains, num_draws))
    for draw in range(1, num_draws):
        latent[:, draw] = correlation * latent[:, draw - 1] + innovations[:, draw]
    return stats.gamma.ppf(stats.norm.cdf(latent), shape)


def test_llc_matches_the_exact_finite_temperature_value_of_the_normal_crossing():
    # K = (w1 w2)²/2 with N(0, I) prior at nβ = n/log n, n = 1000: E_t[tK] = 0.3474 (Bessel form).
    n = 1000
    nbeta = n * watanabe_beta(n)
    rng = np.random.default_rng(1)
    w1, w2 = normal_crossing_draws(rng, nbeta, (4, 2000))
    result = llc(normal_crossing_loss(w1, w2), 0.0, nbeta)
    assert abs(result.mean - normal_crossing_mean(nbeta)) < Z_TOLERANCE * result.std_error
    assert result.per_chain.shape == (4,)
    assert not result.unreliable, result.diagnostics.reasons
    assert result.diagnostics.num_chains == 4 and result.diagnostics.num_draws == 2000


@pytest.mark.parametrize("nbeta", [10.0, 1e3])
def test_llc_of_the_quartic_with_a_flat_prior_is_one_quarter_at_every_temperature(nbeta):
    # Flat prior, K = w⁴/2: tK ~ Gamma(1/4, 1) exactly, so λ̂ = 1/4 = λ with no finite-t bias.
    rng = np.random.default_rng(2)
    w = (2 * rng.gamma(0.25, size=(4, 2000)) / nbeta) ** 0.25
    result = llc(w**4 / 2, 0.0, nbeta)
    assert abs(result.mean - 0.25) < Z_TOLERANCE * result.std_error


def test_llc_with_a_gaussian_prior_matches_quadrature_for_the_quartic():
    t = 200.0
    rng = np.random.default_rng(3)
    w = quartic_draws(rng, t, (4, 2000))
    result = llc(w**4 / 2, 0.0, t)
    assert abs(result.mean - quartic_mean(t)) < Z_TOLERANCE * result.std_error


@pytest.mark.parametrize("d", [1, 3, 10])
def test_llc_recovers_the_registry_lambda_of_regular_models(d):
    # Flat prior, K = |w − w*|²/2: the tempered posterior is N(w*, I/t) and tK ~ Gamma(d/2), so
    # λ̂ = d/2 = the registry's true_rlct exactly; the loss is the registry's population_loss.
    model = toy_models.get("regular", d=d)
    nbeta = 500.0
    key = jax.random.key(d)
    draws = model.w_star[None, :] + jax.random.normal(key, (4000, d)) / jnp.sqrt(nbeta)
    losses = jax.vmap(model.population_loss)(draws).reshape(4, 1000)
    result = llc(losses, 0.0, nbeta)
    assert abs(result.mean - float(model.true_rlct)) < Z_TOLERANCE * result.std_error


def test_the_standard_error_uses_the_effective_sample_size():
    # 200 replicate sets of strongly autocorrelated chains (lag-1 correlation 0.9) with exact
    # Gamma(1/4) marginals: z = (λ̂ − 1/4)/SE must be about N(0, 1). Σ z² ~ χ²_200 when the SE is
    # right; the bounds are its 0.05 % and 99.95 % quantiles. An SE of sd/√(chains·draws)
    # (autocorrelation ignored) gives Σ z² of several thousand.
    rng = np.random.default_rng(4)
    nbeta = 100.0
    replicates = 200
    z_scores = []
    for _ in range(replicates):
        trace = ar1_gamma_trace(rng, 4, 500, 0.9, 0.25) / nbeta
        result = llc(trace, 0.0, nbeta)
        z_scores.append((result.mean - 0.25) / result.std_error)
    sum_of_squares = float(np.sum(np.square(z_scores)))
    low, high = stats.chi2.ppf([0.0005, 0.9995], replicates)
    assert low < sum_of_squares < high, (sum_of_squares, low, high)


def test_a_same_minibatch_center_loss_cancels_the_batch_noise():
    rng = np.random.default_rng(5)
    nbeta = 50.0
    exact = rng.gamma(0.25, size=(4, 1000)) / nbeta
    batch_noise = rng.normal(0, 1.0, size=exact.shape)  # L_b(w) = K(w) + noise_b, L_b(w*) = noise_b
    paired = llc(exact + batch_noise, batch_noise, nbeta)
    clean = llc(exact, 0.0, nbeta)
    assert paired.mean == pytest.approx(clean.mean, rel=1e-9)
    assert paired.std_error == pytest.approx(clean.std_error, rel=1e-6)
    unpaired = llc(exact + batch_noise, 0.0, nbeta)
    assert unpaired.std_error > 10 * paired.std_error


def test_doubling_the_loss_and_halving_nbeta_gives_the_same_estimate():
    rng = np.random.default_rng(6)
    loss = 1.0 + rng.gamma(0.5, size=(3, 400)) / 80.0
    center = np.full_like(loss, 1.0) + rng.normal(0, 1e-3, size=loss.shape)
    once = llc(loss, center, 80.0)
    scaled = llc(2 * loss, 2 * center, 40.0)
    assert scaled.mean == pytest.approx(once.mean, rel=1e-12)
    assert scaled.std_error == pytest.approx(once.std_error, rel=1e-9)
    np.testing.assert_allclose(scaled.per_chain, once.per_chain, rtol=1e-12)
    assert scaled.diagnostics.rhat == pytest.approx(once.diagnostics.rhat, rel=1e-9)


def test_non_finite_and_empty_traces_give_clear_errors():
    trace = np.ones((4, 100))
    trace[2, 17] = np.nan
    with pytest.raises(ValueError, match=r"NaN first at chain 2, draw 17"):
        llc(trace, 0.0, 10.0)
    trace[2, 17] = np.inf
    with pytest.raises(ValueError, match=r"inf first at chain 2"):
        llc(trace, 0.0, 10.0)
    for empty in (np.ones((0, 100)), np.ones((4, 0))):
        with pytest.raises(ValueError, match="empty"):
            llc(empty, 0.0, 10.0)
    with pytest.raises(ValueError, match=r"\[chains, draws\]"):
        llc(np.ones(100), 0.0, 10.0)
    with pytest.raises(ValueError, match="loss_at_center"):
        llc(np.ones((4, 100)), np.ones((4, 99)), 10.0)
    with pytest.raises(ValueError, match="loss_at_center has non-finite"):
        llc(np.ones((4, 100)), np.full((4, 100), np.nan), 10.0)
    with pytest.raises(ValueError, match="nbeta"):
        llc(np.ones((4, 100)), 0.0, 0.0)
    with pytest.raises(ValueError, match="NaN first at chain 1"):
        wbic(np.stack([np.ones(10), np.full(10, np.nan)]), 100)


def test_a_negative_estimate_is_flagged_unreliable():
    rng = np.random.default_rng(7)
    result = llc(rng.normal(-0.01, 0.001, size=(4, 1000)), 0.0, 100.0)
    assert result.unreliable
    assert any("not a local minimum" in reason for reason in result.diagnostics.reasons)
    assert str(result).startswith("UNRELIABLE")


def test_a_loss_that_never_moves_has_no_error_bar_and_is_flagged():
    # Chains stuck where the loss equals L(w*) to float precision: mean 0, standard error 0.
    losses = np.full((4, 500), 0.9189)
    result = llc(losses, losses, 1000.0)
    assert result.mean == 0.0 and result.std_error == 0.0
    assert result.unreliable and any("same at every draw" in reason for reason in result.diagnostics.reasons)


def test_disagreeing_chains_and_few_draws_are_flagged_unreliable():
    rng = np.random.default_rng(8)
    trace = rng.gamma(0.25, size=(4, 1000))
    trace[0] += 1.0  # one chain stuck elsewhere
    stuck = llc(trace, 0.0, 1.0)
    assert stuck.unreliable and any("R-hat" in reason for reason in stuck.diagnostics.reasons)
    short = llc(rng.gamma(0.25, size=(2, 20)), 0.0, 1.0)
    assert short.unreliable and any("ESS" in reason for reason in short.diagnostics.reasons)
    assert "UNRELIABLE" in short.summary()
    clean = llc(rng.gamma(0.25, size=(4, 1000)), 0.0, 1.0)
    assert not clean.unreliable and "UNRELIABLE" not in str(clean)
    # One chain: R-hat compares its halves, so a drift within the chain is caught.
    single = llc(rng.gamma(0.25, size=(1, 4000)), 0.0, 1.0)
    assert not single.unreliable and np.isfinite(single.diagnostics.rhat)
    assert any("one chain" in warning for warning in single.diagnostics.warnings)
    drifting = rng.gamma(0.25, size=(1, 4000))
    drifting[0, 2000:] += 1.0
    assert any("R-hat" in reason for reason in llc(drifting, 0.0, 1.0).diagnostics.reasons)


def test_wbic_matches_the_exact_tempered_mean_of_the_quartic():
    # K = w⁴/2, N(0, 1) prior, n = 1000, β* = 1/log n: WBIC = E_β*[nK] = E_t[tK]/β*, t = nβ*.
    n = 1000
    beta = watanabe_beta(n)
    rng = np.random.default_rng(9)
    w = quartic_draws(rng, n * beta, (4, 2000))
    result = wbic(w**4 / 2, n)
    assert abs(result.mean - quartic_mean(n * beta) / beta) < Z_TOLERANCE * result.std_error
    assert not result.unreliable

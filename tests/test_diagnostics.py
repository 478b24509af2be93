"""Diagnostics: the escape rule on sampled chains and on synthetic traces, MALA acceptance, R-hat/ESS."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toy_models
from slt.run import Trace, diagnose, loss_gap_noise_scale, sample
from slt.samplers import TemperedPosterior, make_sampler


def synthetic_trace(loss, loss_at_center=None, **info):
    loss = np.asarray(loss, np.float64)
    return Trace(
        loss=loss, loss_at_center=np.zeros_like(loss) if loss_at_center is None else loss_at_center,
        info=info, positions=None, sampler=None, hyperparameters={}, nbeta=None, num_data=None,
        num_steps=loss.shape[1], num_burnin=0, thinning=1, key_data=np.zeros(2, np.uint32), key_impl="threefry2x32",
        num_devices=1, config={}, versions={},
    )


def escape_warnings(diagnostics):
    return [w for w in diagnostics.warnings if w.startswith("w* is not a minimum")]


@pytest.fixture(scope="module")
def crossing_data():
    model = toy_models.get("normal_crossing", powers=(1, 1))
    return model, model.sample_data(jax.random.key(2), 1000)


def test_healthy_chain_at_a_minimum_is_not_flagged(crossing_data):
    """K = w1² w2² at w* = 0, SGLD as in the LLC paper (n = 1000, batch 100)."""
    model, data = crossing_data
    posterior = TemperedPosterior.from_model(model, data, localization=1.0)
    sampler = make_sampler("sgld", posterior, step_size=1e-4, batch_size=100)
    trace = sample(sampler, posterior.center, jax.random.key(0), num_chains=4, num_steps=3000)
    diagnostics = trace.diagnostics
    assert escape_warnings(diagnostics) == []
    assert np.all(diagnostics.fraction_below_center_per_chain < 0.03)
    assert np.all(diagnostics.loss_gap_mean_per_chain > 0)
    assert 0.95 < diagnostics.mala_acceptance <= 1.0
    assert diagnostics.rhat < 1.01 and diagnostics.ess_bulk > 400 and diagnostics.ess_tail > 400
    assert diagnostics.warnings == ()


def test_center_that_is_not_a_minimum_is_flagged_as_escape(crossing_data):
    """Centered at w* = (1, 1), where K = 1/2: the chain slides to w1 w2 ≈ 0 and its loss falls
    far below the loss at w*."""
    model, data = crossing_data
    posterior = TemperedPosterior.from_model(model, data, localization=1.0, center=jnp.ones(2))
    sampler = make_sampler("sgld", posterior, step_size=1e-4, batch_size=100, mala_diagnostic=False)
    trace = sample(sampler, posterior.center, jax.random.key(0), num_chains=3, num_steps=2000)
    diagnostics = trace.diagnostics
    assert len(escape_warnings(diagnostics)) == 1
    assert "chains [0, 1, 2]" in escape_warnings(diagnostics)[0]
    assert np.all(diagnostics.fraction_below_center_per_chain > 0.5)  # about 0.7: noise is large there too
    assert np.all(diagnostics.loss_gap_mean_per_chain < 0)
    assert diagnostics.mala_acceptance is None  # the field is NaN without the MALA diagnostic


def test_noise_scale_follows_heteroscedastic_noise_and_ignores_drift():
    rng = np.random.default_rng(0)
    draws = 4000
    scale = np.where(np.arange(draws) < draws // 2, 0.01, 0.1)
    drift = np.linspace(0.0, 5.0, draws)  # slow drift, large overall spread
    gap = drift + scale * rng.standard_normal(draws)
    estimate = loss_gap_noise_scale(gap[None])[0]
    np.testing.assert_allclose(np.median(estimate[100:1900]), 0.01, rtol=0.1)
    np.testing.assert_allclose(np.median(estimate[2100:3900]), 0.1, rtol=0.1)


def test_escape_rule_on_synthetic_gaps():
    rng = np.random.default_rng(1)
    noise = 0.01 * rng.standard_normal((3, 2000))
    healthy = synthetic_trace(0.002 + noise)
    assert escape_warnings(diagnose(healthy)) == []
    assert diagnose(healthy).fraction_below_center < 0.005  # Gaussian: Φ(−3.2) ≈ 0.07 %
    escaped_chain = np.concatenate([0.002 + noise[:2], -0.05 + noise[2:]])
    flagged = escape_warnings(diagnose(synthetic_trace(escaped_chain)))
    assert len(flagged) == 1 and "chains [2]" in flagged[0]
    # Escaping half-way through: half the draws far below w*.
    half = noise.copy()
    half[1, 1000:] -= 0.05
    assert "chains [1]" in escape_warnings(diagnose(synthetic_trace(half)))[0]
    # A small negative mean, many standard errors below zero, but no single draw beyond 3σ.
    assert "chains [0]" in escape_warnings(diagnose(synthetic_trace(np.concatenate([-0.002 + noise[:1], 0.002 + noise[1:]]))))[0]
    # A full-batch chain stuck exactly at w*: σ = 0, d = 0 is not below.
    assert escape_warnings(diagnose(synthetic_trace(np.zeros((2, 50))))) == []


def test_mala_rhat_and_ess_warnings_and_degenerate_inputs():
    rng = np.random.default_rng(2)
    loss = 1.0 + rng.standard_normal((4, 500))
    acceptance = np.full((4, 500), 0.6, np.float32)
    diagnostics = diagnose(synthetic_trace(loss, mala_acceptance=acceptance))
    assert diagnostics.mala_acceptance == pytest.approx(0.6)
    assert any("MALA acceptance of the SGLD step is 0.600 < 0.8" in w for w in diagnostics.warnings)
    assert not any("R-hat" in w or "ESS" in w for w in diagnostics.warnings)

    shifted = loss + np.arange(4)[:, None]  # chains disagree
    assert any(w.startswith("R-hat of the loss") for w in diagnose(synthetic_trace(shifted)).warnings)

    sticky = np.cumsum(rng.standard_normal((4, 500)), axis=1)  # a random walk: tiny ESS
    assert any(w.startswith("bulk ESS") for w in diagnose(synthetic_trace(sticky)).warnings)

    # One chain and constant traces: NaN instead of warnings from numpy (pytest turns them into errors).
    one_chain = diagnose(synthetic_trace(loss[:1]))
    assert np.isnan(one_chain.rhat) and one_chain.ess_bulk > 100
    constant = diagnose(synthetic_trace(np.ones((2, 10))))
    assert np.isnan(constant.rhat) or constant.rhat == pytest.approx(1.0)

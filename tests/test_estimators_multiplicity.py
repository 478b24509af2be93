"""`fit_rlct_multiplicity` on exact E_t[tK]: the multiplicity bias of the LLC and its correction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_estimators_exact import (
    NORMAL_CROSSING_SHIFT,
    Z_TOLERANCE,
    normal_crossing_draws,
    normal_crossing_loss,
    normal_crossing_mean,
    quartic_mean,
)

import toy_models
from estimators import fit_rlct_multiplicity, llc
from slt.samplers import watanabe_beta

NBETAS = np.logspace(2, 6, 9)  # t = nβ from 1e2 to 1e6
STD_ERROR = 0.005  # a typical LLC error bar; the fit's tolerances scale with it


def test_the_naive_llc_is_biased_low_by_about_m_minus_1_over_log_t():
    # Normal crossing (λ = 1/2, m = 2), N(0, I) prior: exactly λ̂(t) = 1/2 + 1/(4t) − 1/(log t + c) +
    # O(log t/t²) with c = log 8 − γ ≈ 1.50 — the leading bias (m − 1)/log t, the constant c from the prior.
    t = NBETAS
    bias = 0.5 - normal_crossing_mean(t)
    np.testing.assert_allclose(bias, 1 / (np.log(t) + NORMAL_CROSSING_SHIFT) - 1 / (4 * t), rtol=0, atol=1e-5)
    assert np.all((0.7 / np.log(t) < bias) & (bias < 1 / np.log(t)))
    # At n = 1000, nβ* = n/log n ≈ 145: λ̂ ≈ 0.35 here (0.5 − 1/log 145 ≈ 0.30 to leading order).
    nbeta = 1000 * watanabe_beta(1000)
    assert 0.5 - 1 / np.log(nbeta) < normal_crossing_mean(nbeta) < 0.36


def test_llc_on_exact_draws_shows_the_bias_and_the_fit_corrects_it():
    # The registry's normal crossing (λ = 1/2, m = 2; its population loss is (w1 w2)²/2 and its
    # prior N(0, I), as in the exact sampler). LLC estimates from exact draws at five
    # temperatures, then the fit: the raw LLC at the smallest t is many error bars below λ; the
    # fitted integer m is the registry's and the corrected λ covers it within Z_TOLERANCE·SE.
    model = toy_models.get("normal_crossing", powers=(1, 1))
    truth = float(model.true_rlct)
    loss_fn = jax.jit(jax.vmap(model.population_loss))
    rng = np.random.default_rng(10)
    nbetas = np.logspace(2, 6, 5)
    results = []
    for t in nbetas:
        w1, w2 = normal_crossing_draws(rng, t, (20_000,))
        losses = np.asarray(loss_fn(jnp.stack([w1, w2], axis=1)), dtype=np.float64).reshape(4, 5000)
        np.testing.assert_allclose(losses.ravel(), normal_crossing_loss(w1, w2), rtol=1e-5)
        results.append(llc(losses, 0.0, t))
    means = np.array([r.mean for r in results])
    std_errors = np.array([r.std_error for r in results])
    assert means[0] < truth - 10 * std_errors[0]
    fit = fit_rlct_multiplicity(nbetas, means, std_errors, second_order=True)
    assert fit.integer_multiplicity == model.multiplicity
    assert abs(fit.rlct_at_integer_multiplicity - truth) < Z_TOLERANCE * fit.rlct_at_integer_std_error
    assert abs(fit.rlct - truth) < Z_TOLERANCE * fit.rlct_std_error


def _exact_fit(values, rng, second_order):
    noisy = values + STD_ERROR * rng.standard_normal(values.size)
    return fit_rlct_multiplicity(NBETAS, noisy, np.full(values.size, STD_ERROR), second_order=second_order)


def test_second_order_fit_recovers_lambda_and_m_of_the_normal_crossing():
    # Exact λ̂(t) plus N(0, 0.005²) noise. The fit's own bias b (noise-free fit; the O(1/log³ t)
    # terms it leaves out) must be at most half its standard error; then |λ̂ − 1/2| <= Z·SE + b.
    exact = normal_crossing_mean(NBETAS)
    noise_free = fit_rlct_multiplicity(NBETAS, exact, np.full(exact.size, STD_ERROR), second_order=True)
    bias = abs(noise_free.rlct - 0.5)
    bias_integer = abs(noise_free.rlct_at_integer_multiplicity - 0.5)
    assert bias < 0.5 * noise_free.rlct_std_error
    assert bias_integer < 0.5 * noise_free.rlct_at_integer_std_error
    fit = _exact_fit(exact, np.random.default_rng(11), second_order=True)
    assert abs(fit.rlct - 0.5) < Z_TOLERANCE * fit.rlct_std_error + bias
    assert abs(fit.multiplicity - 2) < Z_TOLERANCE * fit.multiplicity_std_error + abs(noise_free.multiplicity - 2)
    assert fit.integer_multiplicity == 2
    assert abs(fit.rlct_at_integer_multiplicity - 0.5) < Z_TOLERANCE * fit.rlct_at_integer_std_error + bias_integer
    assert fit.rlct_at_integer_std_error < 0.004
    assert not fit.unreliable
    assert fit.covariance.shape == (3, 3)


def test_first_order_fit_is_biased_by_the_neglected_term_as_documented():
    # Without the 1/log² t term, λ is off by ~0.02 (continuous m) on t = 1e2..1e6: within the
    # 0.03 the docstring states, and far outside the fit's own error bar (the shape warning).
    exact = normal_crossing_mean(NBETAS)
    fit = fit_rlct_multiplicity(NBETAS, exact, np.full(exact.size, STD_ERROR))
    assert abs(fit.rlct - 0.5) < 0.03
    assert abs(fit.rlct_at_integer_multiplicity - 0.5) < 0.03
    assert fit.integer_multiplicity == 2


def test_a_regular_like_singularity_has_multiplicity_one():
    # 1-D quartic K = w⁴/2 with N(0, 1) prior (λ = 1/4, m = 1); its corrections are powers of t.
    nbetas = np.logspace(3, 7, 9)
    exact = np.array([quartic_mean(t) for t in nbetas])
    noisy = exact + STD_ERROR * np.random.default_rng(12).standard_normal(exact.size)
    fit = fit_rlct_multiplicity(nbetas, noisy, np.full(exact.size, STD_ERROR))
    assert fit.integer_multiplicity == 1
    assert abs(fit.rlct_at_integer_multiplicity - 0.25) < Z_TOLERANCE * fit.rlct_at_integer_std_error
    assert abs(fit.multiplicity - 1) < Z_TOLERANCE * fit.multiplicity_std_error


def test_bad_inputs_raise_and_a_too_short_sweep_is_unreliable():
    with pytest.raises(ValueError, match="> 1"):
        fit_rlct_multiplicity([0.5, 10, 100], [0.1, 0.2, 0.3], [0.01] * 3)
    with pytest.raises(ValueError, match="llc_std_errors"):
        fit_rlct_multiplicity([10, 100, 1000], [0.1, 0.2, 0.3], [0.01, 0.0, 0.01])
    with pytest.raises(ValueError, match="non-finite"):
        fit_rlct_multiplicity([10, 100, 1000], [0.1, np.nan, 0.3], [0.01] * 3)
    fit = fit_rlct_multiplicity([100, 1000], [0.3, 0.35], [0.01, 0.01])
    assert fit.unreliable and "UNRELIABLE" in str(fit)


def _exact_curve(label_params, nbetas):
    model = toy_models.get(*label_params[:1], **label_params[1])
    return model, np.array([toy_models.finite_temperature_rlct(model, float(t)) for t in nbetas])


def test_model_average_covers_lambda_at_the_stated_rate_where_one_chosen_shape_does_not():
    """Exact λ(t) of the normal crossing w1²w2² (m = 2) and of w1²w2⁴ (m = 1, a t^(−1/4) approach)
    at the default rlct temperatures (t = 100 … 3000), 2 % noise: 200 replications each. The
    model-averaged interval must hold λ in >= 80 % of them (the spread between shapes is counted);
    the chosen-integer-m interval, which leaves it out, holds it far less often. A planted bug
    (the between-shape spread dropped from the error bar) falls under the bar."""
    nbetas = np.geomspace(100, 3000, 5)
    rng = np.random.default_rng(4)
    for params in (("normal_crossing", {"powers": (1, 1)}), ("normal_crossing", {"powers": (1, 2)})):
        model, exact = _exact_curve(params, nbetas)
        truth = float(model.true_rlct)
        averaged, chosen, spread_dropped = [], [], []
        for _ in range(200):
            errors = 0.02 * exact
            fit = fit_rlct_multiplicity(nbetas, exact + errors * rng.standard_normal(exact.size), errors,
                                        second_order=True)
            averaged.append(abs(fit.averaged_rlct - truth) < 1.96 * fit.averaged_rlct_std_error)
            chosen.append(abs(fit.rlct_at_integer_multiplicity - truth) < 1.96 * fit.rlct_at_integer_std_error)
            weights = np.array([w for _, w, _ in fit.model_weights])
            values = np.array([v for _, _, v in fit.model_weights])
            assert abs(np.sum(weights) - 1) < 1e-12 and abs(np.sum(weights * values) - fit.averaged_rlct) < 1e-12
            # The planted bug: the within-shape error alone (smallest candidate error bar).
            spread_dropped.append(abs(fit.averaged_rlct - truth) < 1.96 * fit.rlct_at_integer_std_error)
        assert np.mean(averaged) >= 0.8, (params, np.mean(averaged))
        assert np.mean(chosen) < 0.7 and np.mean(spread_dropped) < 0.7, (params, np.mean(chosen), np.mean(spread_dropped))


def test_model_average_concentrates_on_the_true_shape_without_noise_to_speak_of():
    nbetas = np.geomspace(100, 3000, 5)
    model, exact = _exact_curve(("normal_crossing", {"powers": (1, 1)}), nbetas)
    fit = fit_rlct_multiplicity(nbetas, exact, np.full(exact.size, 1e-4), second_order=True)
    best = max(fit.model_weights, key=lambda item: item[1])
    assert best[0] == "m=2+b" and best[1] > 0.9
    assert abs(fit.averaged_rlct - 0.5) < 0.01


def test_correlated_llcs_are_fitted_by_generalised_least_squares():
    """Exact λ(t) of w1²w2² (m = 2) at the default rlct temperatures with 2 % noise correlated
    0.96^|i−j| between temperatures (what shared random numbers give: 0.94–0.97 measured between
    neighbours), 300 replications. With the correlation the model-averaged λ is closer to the
    truth than the fit that takes the points as independent (measured: median error 0.011
    against 0.020) and its interval holds λ at >= 85 % (measured 94 %); the independent fit
    over-covers (its error bar counts the shared shift as noise of every point). A planted bug, a
    wrong correlation (−0.2 off the diagonal), loses the gain (measured median 0.027)."""
    nbetas = np.geomspace(100, 3000, 5)
    model, exact = _exact_curve(("normal_crossing", {"powers": (1, 1)}), nbetas)
    truth = float(model.true_rlct)
    index = np.arange(nbetas.size)
    correlation = 0.96 ** np.abs(np.subtract.outer(index, index))
    errors = 0.02 * exact
    factor = np.linalg.cholesky(correlation * np.outer(errors, errors))
    rng = np.random.default_rng(7)
    anti = np.where(np.eye(nbetas.size, dtype=bool), 1.0, -0.2)
    outcome = {"gls": [], "independent": [], "planted": []}
    for _ in range(300):
        values = exact + factor @ rng.standard_normal(nbetas.size)
        for label, matrix in (("gls", correlation), ("independent", None), ("planted", anti)):
            fit = fit_rlct_multiplicity(nbetas, values, errors, second_order=True, llc_correlation=matrix)
            outcome[label].append((abs(fit.averaged_rlct - truth), fit.averaged_rlct_std_error))
    median = {label: np.median([e for e, _ in rows]) for label, rows in outcome.items()}
    coverage = {label: np.mean([e < 1.96 * s for e, s in rows]) for label, rows in outcome.items()}
    assert median["gls"] < 0.7 * median["independent"], median
    assert coverage["gls"] >= 0.85, coverage
    assert not median["planted"] < 0.7 * median["independent"], median
    with pytest.raises(ValueError, match="symmetric with ones on the diagonal"):
        fit_rlct_multiplicity(nbetas, exact, errors, llc_correlation=correlation * 0.5)
    with pytest.raises(ValueError, match="positive definite"):
        fit_rlct_multiplicity(nbetas, exact, errors, llc_correlation=np.ones((5, 5)))

"""Population sampling: fresh minibatches with the label noise integrated out
(`ToyModel.sample_expected_data`, `TemperedPosterior(data_source=...)`, `estimate(..., population=True)`)."""

import dataclasses

import jax
import numpy as np
import pytest

import toy_models
from slt import make_sampler
from slt.estimate import estimate
from slt.samplers import TemperedPosterior

STEP_SIZE_BIAS = 0.05  # the calibrated SGLD bias target is 2 %; the slow test allows 5 %, as test_estimate does


@pytest.mark.parametrize("family, params", [("normal_crossing", {"powers": (1, 2)}), ("rrr", {"M": 3, "H": 2, "N": 4, "r": 0}),
                                            ("tanh", {"H": 2, "true_units": 0})])
def test_expected_data_give_an_unbiased_population_loss_gap(family, params):
    # E_x[L_B(w) − L_B(w*)] = K(w): checked against the analytic K where there is one, and against
    # the noisy data's gap (which has the same mean) where there is not, within 5 standard errors.
    model = toy_models.get(family, **params)
    w = jax.tree_util.tree_map(lambda leaf: leaf + 0.3, model.w_star)
    gaps_expected, gaps_noisy = [], []
    for index in range(200):
        key = jax.random.key(index)
        expected = model.sample_expected_data(key, 500)
        noisy = model.sample_data(key, 500)
        gaps_expected.append(float(model.loss(w, expected) - model.loss(model.w_star, expected)))
        gaps_noisy.append(float(model.loss(w, noisy) - model.loss(model.w_star, noisy)))
    gaps_expected, gaps_noisy = np.array(gaps_expected), np.array(gaps_noisy)
    mean, error = gaps_expected.mean(), gaps_expected.std(ddof=1) / np.sqrt(gaps_expected.size)
    if model.population_loss is not None:
        truth = float(model.population_loss(w))
        assert abs(mean - truth) < 5 * error + 1e-6 * truth, (mean, error, truth)
    difference = gaps_noisy - gaps_expected
    assert abs(difference.mean()) < 5 * difference.std(ddof=1) / np.sqrt(difference.size)
    # Integrating the label noise out is what makes the high-t LLC usable: a smaller spread.
    assert gaps_expected.std() < gaps_noisy.std()


def _population_posterior(model, nbeta=100.0):
    return TemperedPosterior(loss_fn=model.loss, data=model.sample_expected_data(jax.random.key(0), 8), nbeta=nbeta,
                             center=model.w_star, prior=model.prior, data_source=model.sample_expected_data)


def test_population_posterior_draws_fresh_batches_of_any_size():
    model = toy_models.get("normal_crossing", powers=(1, 1))
    posterior = _population_posterior(model)
    assert posterior.population and posterior.num_data == 8
    first = posterior.sample_batch(jax.random.key(1), 50)
    second = posterior.sample_batch(jax.random.key(2), 50)
    assert first.inputs.shape[0] == 50  # larger than the reference sample: drawn, not indexed
    assert not np.allclose(first.inputs, second.inputs)
    assert not posterior.full_batch(8)  # a batch the size of the reference sample is still fresh data
    with pytest.raises(ValueError, match="needs a batch size"):
        posterior.full_batch(None)
    data_set = TemperedPosterior(loss_fn=model.loss, data=first, nbeta=100.0, center=model.w_star)
    assert not data_set.population and data_set.full_batch(None) and data_set.full_batch(50)


def test_population_posterior_survives_jit_and_vmap_and_refuses_full_batch_kernels():
    model = toy_models.get("normal_crossing", powers=(1, 1))
    posterior = _population_posterior(model)
    leaves, treedef = jax.tree_util.tree_flatten(posterior)
    rebuilt = treedef.unflatten(leaves)
    assert rebuilt.population and rebuilt.data_source is model.sample_expected_data
    batch = jax.jit(lambda p, k: p.sample_batch(k, 16))(posterior, jax.random.key(3))
    assert batch.inputs.shape == (16, 1)
    for name, options in (("mala", {"step_size": 1e-3}), ("hmc", {"step_size": 1e-3, "num_integration_steps": 2})):
        with pytest.raises(ValueError, match="population"):
            make_sampler(name, posterior, **options)


@pytest.mark.parametrize("settings, match", [
    (dict(method="wbic"), "llc and rlct"),
    (dict(method="llc", batch_size=None), "batch_size"),
    (dict(method="llc", population=1), "true or false"),
])
def test_population_estimate_rejects_what_it_cannot_do(settings, match):
    settings = {**settings}
    method = settings.pop("method")
    with pytest.raises(ValueError, match=match):
        estimate(toy_models.get("regular", d=1), method, key=jax.random.key(0), population=settings.pop("population", True),
                 **settings)


def test_population_estimate_needs_a_model_that_draws_fresh_data():
    model = dataclasses.replace(toy_models.get("regular", d=1), sample_expected_data=None)
    with pytest.raises(ValueError, match="sample_expected_data"):
        estimate(model, "llc", key=jax.random.key(0), population=True)


def test_population_minibatch_is_not_capped_by_the_data_size():
    result = estimate(toy_models.get("regular", d=1), "llc", key=jax.random.key(0), population=True, n=50,
                      batch_size=200, num_chains=2, num_draws=20, thinning=2, pilot_steps=20, exact=False)
    assert result.diagnostics["batch_size"] == 200 and result.diagnostics["data"] == "population"


def test_population_rlct_defaults_to_temperatures_beyond_the_data_size():
    result = estimate(toy_models.get("regular", d=1), "rlct", key=jax.random.key(0), population=True, n=1000,
                      num_chains=2, num_draws=50, thinning=2, pilot_steps=50, batch_size=32, exact=False)
    nbetas = np.asarray(result.diagnostics["nbetas"])
    assert nbetas.size == 7 and nbetas[0] == pytest.approx(100.0) and nbetas[-1] == pytest.approx(30_000.0)
    assert result.diagnostics["data"] == "population" and result.diagnostics["beta"] is None
    assert np.isfinite(result.estimate)


@pytest.mark.slow
def test_population_llc_matches_the_exact_population_lambda_t_with_no_data_set_term():
    # w1² w2⁴ at t = 100: on a data set the LLC measures λ_n(t), which differs from λ(t) by the
    # data-set fluctuation (test_estimate bounds it separately); on the population it is λ(t) itself.
    # Here t = 5000 is above n = 2000, which a data set cannot reach at all (β > 1).
    model = toy_models.get("normal_crossing", powers=(1, 2))
    for nbeta, seed in ((100.0, 11), (5000.0, 12)):
        exact = toy_models.finite_temperature_rlct(model, nbeta)
        result = estimate(model, "llc", key=jax.random.key(seed), n=2000, nbeta=nbeta, num_chains=32, num_draws=4000,
                          batch_size=100, population=True)
        assert not result.unreliable, result.diagnostics["reasons"]
        assert result.diagnostics["exact_at_nbeta"] == pytest.approx(exact)
        tolerance = 4 * result.std_error + STEP_SIZE_BIAS * exact
        assert abs(result.estimate - exact) < tolerance, (nbeta, result.estimate, result.std_error, exact)
        # tight enough to tell λ(t) from λ: the finite-temperature bias at t = 100 is larger
        assert tolerance < float(model.true_rlct) - toy_models.finite_temperature_rlct(model, 100.0)


def test_cli_population_flag_reaches_the_estimate():
    import contextlib
    import io
    import json

    from slt.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["estimate", "regular", "--set", "d=1", "--population", "--n", "2000", "--chains", "2",
                     "--draws", "50", "--json"])
    assert code == 0
    record = json.loads(out.getvalue())
    assert record["diagnostics"]["data"] == "population" and record["diagnostics"]["beta"] is None

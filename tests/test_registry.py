"""The registry: K(w) >= 0 with K(w*) = 0, empirical loss → K, determinism, parameter checks."""

import json
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import toy_models

CATALOGUE = toy_models.catalogue()
IDS = [model.label for model in CATALOGUE]
# 36 models x 3 points x 2 sample sizes ≈ 200 two-sided checks; at |z| <= 4.5 the chance that any
# correct model fails is about 200 * 6.8e-6 ≈ 0.1%.
Z_TOLERANCE = 4.5


def tree_keys(key, tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef.unflatten(list(jax.random.split(key, len(leaves))))


def perturb(tree, key, scale):
    return jax.tree_util.tree_map(
        lambda leaf, k: leaf + scale * jax.random.normal(k, leaf.shape, leaf.dtype), tree, tree_keys(key, tree)
    )


def test_families_and_names():
    assert toy_models.names() == ("regular", "normal_crossing", "rrr", "dln", "tanh")
    assert {m.name for m in CATALOGUE} == set(toy_models.names())


@pytest.mark.parametrize("model", CATALOGUE, ids=IDS)
def test_model_record_is_complete(model):
    assert model.dimension == toy_models.parameter_count(model.w_star)
    assert isinstance(model.true_rlct, Fraction) and model.true_rlct > 0
    assert model.true_rlct <= Fraction(model.dimension, 2)  # λ <= d/2 for every model
    assert model.multiplicity is None or 1 <= model.multiplicity <= model.dimension
    assert model.reference
    assert json.loads(json.dumps(model.describe()))["true_rlct"] == str(model.true_rlct)


@pytest.mark.parametrize("model", CATALOGUE, ids=IDS)
def test_population_loss_is_zero_at_truth_and_nonnegative(model, x64):
    assert float(model.population_loss(model.w_star)) == pytest.approx(0.0, abs=1e-12)
    for key in jax.random.split(jax.random.key(1), 32):
        key_prior, key_near = jax.random.split(key)
        assert float(model.population_loss(model.sample_prior(key_prior))) >= 0.0
        assert float(model.population_loss(perturb(model.w_star, key_near, 1e-2))) >= 0.0


@pytest.mark.parametrize("model", CATALOGUE, ids=IDS)
def test_empirical_loss_gap_converges_to_population_loss(model, x64):
    """L_n(w) − L_n(w*) is a mean of i.i.d. log-likelihood ratios with expectation K(w)."""
    key_points, key_data = jax.random.split(jax.random.key(7))
    key_a, key_b, key_c = jax.random.split(key_points, 3)
    points = [perturb(model.w_star, key_a, 0.1), perturb(model.w_star, key_b, 0.5), model.sample_prior(key_c)]
    for n in (2_000, 200_000):
        data = model.sample_data(jax.random.fold_in(key_data, n), n)
        at_truth = model.pointwise_log_likelihood(model.w_star, data)
        for w in points:
            ratios = np.asarray(at_truth - model.pointwise_log_likelihood(w, data))
            standard_error = ratios.std(ddof=1) / np.sqrt(n)
            population = float(model.population_loss(w))
            assert float(model.loss(w, data) - model.loss(model.w_star, data)) == pytest.approx(ratios.mean(), rel=1e-9, abs=1e-12)
            assert abs(ratios.mean() - population) <= Z_TOLERANCE * standard_error + 1e-12, (n, population)


@pytest.mark.parametrize("model", CATALOGUE[::4], ids=IDS[::4])
def test_same_key_same_data_and_other_key_other_data(model):
    first = model.sample_data(jax.random.key(3), 50)
    again = model.sample_data(jax.random.key(3), 50)
    other = model.sample_data(jax.random.key(4), 50)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first.targets, other.targets)
    assert toy_models.num_data(first) == 50
    assert jnp.shape(model.loss(model.w_star, first)) == ()


@pytest.mark.parametrize("h", [0, 1, 2, 3, 6])
def test_power_gaussian_prior_is_normalised_and_samples_its_density(h, x64):
    prior = toy_models.PowerGaussianPrior((h,), scale=0.7)
    mass, _ = integrate.quad(lambda w: float(jnp.exp(prior.log_density(jnp.asarray([w])))), -10, 10, points=[0.0])
    assert mass == pytest.approx(1.0, abs=1e-6)
    draws = np.asarray(jax.vmap(lambda k: prior.sample(k, jnp.zeros(1)))(jax.random.split(jax.random.key(0), 20_000)))[:, 0]
    # |w| has density ∝ w^h e^{-w²/2s²}: w²/(2s²) ~ Gamma((h+1)/2); compare the whole law.
    assert stats.kstest(draws**2 / (2 * 0.7**2), stats.gamma((h + 1) / 2).cdf).pvalue > 1e-3
    assert abs(np.mean(draws > 0) - 0.5) < 4 * 0.5 / np.sqrt(draws.size)


@pytest.mark.parametrize("powers", [(1,), (1, 0), (2, 1, 3)])
def test_power_prior_coordinates_carry_the_prior_to_a_density_with_a_bounded_score(powers, x64):
    """u_j = sign(w_j)|w_j|^(h_j+1) where h_j = 1: the law of u must be the push-forward of φ,
    φ(w(u)) |det dw/du|, with the Jacobian from autodiff; it must integrate to 1; its score must
    be bounded near 0 where φ's is h/w; and prior draws must follow it."""
    prior = toy_models.PowerGaussianPrior(powers, scale=0.8)
    coordinates = prior.sampling_coordinates()
    assert coordinates.flattened == tuple(j for j, h in enumerate(powers) if h == 1)
    points = jax.random.normal(jax.random.key(1), (50, len(powers)), jnp.float64) * 1.5
    for u in points:
        jacobian = jnp.diag(jax.jacfwd(coordinates.to_model)(u))
        pushed = prior.log_density(coordinates.to_model(u)) + jnp.sum(jnp.log(jnp.abs(jacobian)))
        assert float(coordinates.log_density(u)) == pytest.approx(float(pushed), rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(coordinates.from_model(coordinates.to_model(u)), u, rtol=1e-12, atol=1e-12)
    if len(powers) <= 2:  # normalised (a 1-D or 2-D integral)
        def density(*u):
            return float(jnp.exp(coordinates.log_density(jnp.asarray(u))))
        bounds = [(-40, 40)] * len(powers)
        mass = integrate.nquad(density, bounds, opts={"points": [0.0], "limit": 200})[0]
        assert mass == pytest.approx(1.0, abs=1e-6)
    j = coordinates.flattened[0]
    near_zero = jnp.zeros(len(powers), jnp.float64).at[:].set(0.5).at[j].set(1e-8)
    assert abs(float(jax.grad(coordinates.log_density)(near_zero)[j])) < 1.0  # h/w would give 1e8
    draws = np.asarray(jax.vmap(lambda k: coordinates.sample(k, jnp.zeros(len(powers))))(
        jax.random.split(jax.random.key(0), 20_000)))[:, j]
    # for h = 1, u_j is Laplace with scale 2s²
    assert stats.kstest(draws, stats.laplace(scale=2 * 0.8**2).cdf).pvalue > 1e-3


def test_a_prior_without_a_weak_zero_has_no_sampling_coordinates():
    assert toy_models.PowerGaussianPrior((0, 2, 3)).sampling_coordinates() is None
    model = toy_models.get("normal_crossing", powers=(1, 2))
    assert model.in_sampling_coordinates() is model


def test_a_model_in_sampling_coordinates_has_the_same_loss_and_is_built_once():
    model = toy_models.get("normal_crossing", powers=(3, 1), prior_powers=(1, 1))
    sampled = model.in_sampling_coordinates()
    assert sampled is model.in_sampling_coordinates()  # one per model: compiled samplers are reused
    assert sampled.label == model.label and sampled.true_rlct == model.true_rlct
    assert isinstance(sampled.prior, toy_models.PowerPriorCoordinates)
    data = model.sample_data(jax.random.key(0), 64)
    w = jnp.asarray([0.7, -0.4])
    u = sampled.prior.from_model(w)
    assert float(sampled.loss(u, data)) == pytest.approx(float(model.loss(w, data)), rel=1e-6)
    assert float(sampled.population_loss(u)) == pytest.approx(float(model.population_loss(w)), rel=1e-6)
    np.testing.assert_allclose(sampled.w_star, sampled.prior.from_model(model.w_star))


def test_gaussian_prior_log_density_matches_scipy():
    prior = toy_models.GaussianPrior(scale=2.0)
    params = {"a": jnp.asarray([0.3, -1.0]), "b": jnp.asarray([[2.0]])}
    expected = stats.norm(0, 2.0).logpdf([0.3, -1.0, 2.0]).sum()
    assert float(prior.log_density(params)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "family, params, fragment",
    [
        ("nope", {}, "unknown model family 'nope'"),
        ("regular", {"d": 0}, "'d' must be >= 1"),
        ("regular", {}, "missing required parameter 'd'"),
        ("regular", {"d": 2, "width": 3}, "unknown parameter 'width'"),
        ("normal_crossing", {"powers": (1, 0)}, "'powers[1]' must be >= 1"),
        ("normal_crossing", {"powers": (1, 2), "prior_powers": (0,)}, "'prior_powers' has 1 entries"),
        ("normal_crossing", {"powers": (1, 2), "prior_powers": (0, -1)}, "'prior_powers[1]' must be >= 0"),
        ("rrr", {"M": 3, "H": 2, "N": 3, "r": 3}, "'r' = 3 exceeds min(M, H, N) = 2"),
        ("rrr", {"M": -1, "H": 2, "N": 3}, "'M' must be >= 1"),
        ("dln", {"widths": (4, -3, 4)}, "'widths[1]' must be >= 1"),
        ("dln", {"widths": (4,)}, "'widths' needs at least 2 entries"),
        ("dln", {"widths": (4, 3, 4), "r": 4}, "'r' = 4 exceeds the smallest width 3"),
        ("tanh", {"H": 2, "true_units": 3}, "'true_units' = 3 exceeds H = 2"),
        ("tanh", {"H": 2.5}, "'H' must be an integer"),
    ],
)
def test_bad_parameters_name_the_parameter(family, params, fragment):
    with pytest.raises(toy_models.ModelParameterError) as error:
        toy_models.get(family, **params)
    assert fragment in str(error.value)


def test_parse_assignments_from_the_command_line():
    assert toy_models.parse_assignments("dln", ["widths=4,3,3,4", "r=1"]) == {"widths": (4, 3, 3, 4), "r": 1}
    assert toy_models.parse_assignments("normal_crossing", ["powers=[1,2]"]) == {"powers": (1, 2)}
    with pytest.raises(toy_models.ModelParameterError, match="'M' must be integer-valued"):
        toy_models.parse_assignments("rrr", ["M=five"])
    with pytest.raises(toy_models.ModelParameterError, match="expected KEY=VALUE"):
        toy_models.parse_assignments("rrr", ["M"])


def test_tanh_with_true_units_stores_bounds_not_a_value():
    model = toy_models.get("tanh", H=3, true_units=1)
    assert model.true_rlct is None and model.rlct_bounds == (None, Fraction(3))
    assert float(model.population_loss(model.w_star)) == pytest.approx(0.0, abs=1e-7)


def test_model_is_frozen():
    model = toy_models.get("regular", d=2)
    with pytest.raises(AttributeError):
        model.true_rlct = Fraction(7)
    with pytest.raises(TypeError):
        model.params["d"] = 3


def test_a_model_built_in_x64_mode_is_not_reused_in_32_bit_mode():
    import warnings

    with jax.enable_x64(True):
        wide = toy_models.get("normal_crossing", powers=(1, 3))
        assert wide.w_star.dtype == jnp.float64
    narrow = toy_models.get("normal_crossing", powers=(1, 3))
    assert narrow is not wide and narrow.w_star.dtype == jnp.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 64-bit array from the x64 build would warn here
        narrow.loss(jnp.asarray([0.3, -0.2]), narrow.sample_data(jax.random.key(0), 8))
    assert toy_models.get("normal_crossing", powers=(1, 3)) is narrow  # still cached per mode

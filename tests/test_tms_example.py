"""examples/tms_superposition.py: the exact population loss and the k-gons' known learning coefficients."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest


@pytest.fixture(scope="module")
def tms(load_script):
    return load_script("examples/tms_superposition.py")


def test_population_loss_equals_quadrature_of_the_per_sample_loss(tms, x64):
    """K(W, b) in closed form against a 4000-point midpoint rule over t on each feature (error
    O(h²) away from the kinks, O(h²)·slope at a kink: far below 1e-6 here)."""
    key_weight, key_bias = jax.random.split(jax.random.key(5))
    params = {"W": jax.random.normal(key_weight, (2, 6)), "b": 0.3 * jax.random.normal(key_bias, (6,))}
    nodes = (jnp.arange(4000) + 0.5) / 4000
    quadrature = 0.0
    for feature in range(6):
        x = nodes[:, None] * jax.nn.one_hot(feature, 6)[None, :]
        quadrature += tms.loss(params, {"x": x}) / 6
    assert abs(float(tms.population_loss(params)) - float(quadrature)) < 1e-6


@pytest.mark.parametrize(("k", "dead_positive", "rank"), [(5, 1, 17), (5, 0, 14), (6, 0, 17)])
def test_kgon_is_a_minimally_singular_critical_point_with_lambda_half_the_rank(tms, x64, k, dead_positive, rank):
    params, gradient_norm = tms.kgon_critical_point(k, dead_positive)
    spectrum = tms.hessian_spectrum(params)
    assert gradient_norm < 1e-7
    assert spectrum["rank"] == rank
    assert spectrum["min_eigenvalue"] > -1e-8 and spectrum["null_flatness"] < 1e-10
    assert tms.kgon_learning_coefficient(k, dead_positive) == rank / 2


def test_the_4gon_with_positive_dead_biases_is_a_saddle(tms, x64):
    spectrum = tms.hessian_spectrum(tms.kgon_critical_point(4, 2)[0])
    assert spectrum["min_eigenvalue"] < -1e-3


def test_describe_reads_k_and_the_dead_biases(tms):
    params = tms.kgon_params(5, 1.2, -0.3, [-0.1])
    assert tms.describe(params) == (5, 0, 1)
    assert tms.describe(tms.kgon_params(4, 1.0, -0.1, [0.08, -0.2])) == (4, 1, 1)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(params["W"]), axis=0)[:5], 1.2)

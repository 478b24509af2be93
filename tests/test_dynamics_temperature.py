"""SGD's implied temperature does not depend on n: its stationary law is not the Bayes posterior at n."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toy_models
from slt import dynamics


@pytest.mark.parametrize("learning_rate, momentum", [(0.02, 0.9), (0.05, 0.0)])
def test_sgd_stationary_variance_is_set_by_eta_b_mu_not_by_n(learning_rate, momentum):
    """Heavy-ball SGD on the regular 2-D regression K = ||w − w*||²/2 at n = 200 and n = 20 000.

    `sgd_temperature` is T = ησ²/(2b(1 − μ)), i.e. nβ_SGD = 2b(1 − μ)/(ησ²) whatever n is; the
    stationary variance is T/h times the discrete-time factors of
    `test_heavy_ball_stationary_variance_matches_sgd_temperature` (finite η, multiplicative
    noise), with each data set's own σ_g² = Var_n(x(y − x·w_n*)) and h = ⟨x²⟩ about its own
    minimiser w_n*. The Bayes posterior at sample size n (nβ = n) has variance 1/(n h): 100×
    apart between the two n, while SGD's must agree with T/h at both. 10 000 independent
    particles each: relative SE √(2/N) of a variance; tolerance 4 SE per coordinate.
    Checked against a planted bug (`sgd_temperature` 10 % too hot): fails.
    """
    model = toy_models.get("regular", d=2)
    potential = dynamics.from_model(model)
    batch_size, num_particles = 10, 10_000
    ratios = {}
    for num_data in (200, 20_000):
        key_data, key_run = jax.random.split(jax.random.fold_in(jax.random.key(12), num_data))
        data = potential.sample_data(key_data, num_data)
        inputs = np.asarray(data.inputs, np.float64)
        targets = np.asarray(data.targets, np.float64)[:, 0]
        minimiser = np.linalg.solve(inputs.T @ inputs, inputs.T @ targets)
        initial = jnp.broadcast_to(jnp.asarray(minimiser, jnp.float32), (num_particles, 2))
        algorithm = dynamics.momentum_sgd(potential, learning_rate, momentum, batch_size, data)
        final = dynamics.simulate(algorithm, initial, key_run, 400, 400).positions[:, -1]
        variance = np.var(np.asarray(final, np.float64) - minimiser, axis=0, ddof=1)
        residuals = targets - inputs @ minimiser
        curvature = np.mean(inputs**2, axis=0)
        noise_variance = np.var(inputs * residuals[:, None], axis=0)
        correction = 2 * (1 + momentum) / (2 * (1 + momentum) - learning_rate * curvature)
        unit = dynamics.sgd_temperature(learning_rate, batch_size, momentum) / curvature * correction
        expected = unit * noise_variance / (1 - 3 * unit)
        ratios[num_data] = variance / expected
    for num_data, ratio in ratios.items():
        np.testing.assert_allclose(ratio, 1.0, rtol=0, atol=4 * math.sqrt(2 / num_particles), err_msg=str(num_data))


def test_implied_inverse_temperature_formula():
    """nβ_SGD = 1/T = 2b(1 − μ)/(ησ²): the documented formula, exactly, and no n anywhere."""
    for learning_rate, batch_size, momentum in ((0.05, 5, 0.0), (0.01, 32, 0.9), (0.2, 1, 0.5)):
        assert 1 / dynamics.sgd_temperature(learning_rate, batch_size, momentum) == pytest.approx(
            2 * batch_size * (1 - momentum) / learning_rate, rel=1e-12)

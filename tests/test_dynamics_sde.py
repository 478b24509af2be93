"""SGD as an SDE (`sgd_sde`): its moments against the data, its step against SGD's; stability limits."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt import dynamics


@pytest.mark.parametrize("build", [lambda: dynamics.normal_crossing((1, 1)), dynamics.two_basin, dynamics.local_minimum])
def test_closed_form_gradient_moments_match_per_example_gradients(build, x64):
    """∇L_n and C(w) from the data moments equal the mean and covariance (1/n) of jax.grad of the
    per-example losses, at random points of the box (float64; 1e-9 relative)."""
    potential = build()
    data = potential.sample_data(jax.random.key(1), 300)
    points = dynamics.uniform_in_box(jax.random.key(2), potential.bounds, 5).astype(jnp.float64)
    one = lambda datum: jax.tree_util.tree_map(lambda leaf: leaf[None], datum)
    for w in points:
        grads = np.asarray(jax.vmap(lambda datum: jax.grad(potential.loss_fn)(w, one(datum)))(data))
        covariance = np.cov(grads.T, bias=True)
        np.testing.assert_allclose(np.asarray(dynamics.gradient_covariance(potential, data, w)), covariance,
                                   rtol=1e-9, atol=1e-12)
        _, info = dynamics.sgd_sde(potential, 1e-3, 4, data).step(jax.random.key(0), dynamics.PositionState(w))
        assert float(info.loss) == pytest.approx(float(potential.loss_fn(w, data)), rel=1e-9)


def test_sde_step_has_sgd_step_mean_and_covariance():
    """From one point of K = (w1 w2)²/2, 40 000 single steps of `sgd_sde` and of `sgd` (b = 3,
    with replacement): both means equal w − η∇L_n and both covariances η² C(w)/b. Tolerance 5
    standard errors of each empirical mean/variance (SE from the draws themselves)."""
    potential = dynamics.normal_crossing((1, 1))
    data = potential.sample_data(jax.random.key(3), 2000)
    w = jnp.asarray([0.7, -0.4])
    learning_rate, batch_size, num = 0.1, 3, 40_000
    keys = jax.random.split(jax.random.key(4), num)
    covariance = np.asarray(dynamics.gradient_covariance(potential, data, w), np.float64) * learning_rate**2 / batch_size
    mean = np.asarray(w - learning_rate * jax.grad(potential.loss_fn)(w, data), np.float64)
    for algorithm in (dynamics.sgd_sde(potential, learning_rate, batch_size, data),
                      dynamics.sgd(potential, learning_rate, batch_size, data)):
        steps = np.asarray(jax.vmap(lambda k: algorithm.step(k, algorithm.init(w))[0].position)(keys), np.float64)
        centred = steps - steps.mean(axis=0)
        assert np.all(np.abs(steps.mean(axis=0) - mean) < 5 * np.sqrt(np.diag(covariance) / num))
        products = centred[:, :, None] * centred[:, None, :]
        standard_error = products.reshape(num, 4).std(axis=0).reshape(2, 2) / np.sqrt(num)
        assert np.all(np.abs(products.mean(axis=0) - covariance) < 5 * standard_error + 1e-12), (products.mean(0), covariance)


def test_sde_noise_lies_along_the_gradient_of_w1w2():
    """On the normal crossing C(w) is rank 1 along ∇(w1 w2) = (w2, w1), as SGD's: the SDE conserves
    nothing else, and its step changes w1² − w2² by the factor 1 − η²a² like SGD's."""
    potential = dynamics.normal_crossing((1, 1))
    data = potential.sample_data(jax.random.key(5), 500)
    w = jnp.asarray([0.5, 0.2])
    covariance = np.asarray(dynamics.gradient_covariance(potential, data, w))
    direction = np.asarray([0.2, 0.5]) / np.hypot(0.2, 0.5)
    assert np.linalg.matrix_rank(covariance, tol=1e-6 * np.abs(covariance).max()) == 1
    np.testing.assert_allclose(covariance @ direction, np.trace(covariance) * direction, rtol=1e-4)


@pytest.mark.parametrize("integrator, momentum, limit", [
    ("brownian", 0.0, 2.0), ("sgd", 0.0, 2.0), ("sgd_sde", 0.0, 2.0), ("heavy_ball", 0.9, 3.8),
    ("nesterov", 0.9, 3.8 / 2.8),
])
def test_stability_limit_is_where_the_noise_free_iteration_diverges_on_a_quadratic(integrator, momentum, limit):
    """The documented limit against the iteration itself on K = h w²/2 (h = 1): 400 noise-free steps
    at 0.98 × limit shrink (or stay bounded), at 1.02 × limit grow by > 10."""
    assert dynamics.stability_limit(integrator, momentum) == pytest.approx(limit)

    def run(step):
        position, velocity = 1.0, 0.0
        for _ in range(400):
            gradient = position  # K = w²/2
            velocity = momentum * velocity + gradient
            direction = velocity if integrator != "nesterov" else gradient + momentum * velocity
            position = position - step * direction
        return abs(position)

    assert run(0.98 * limit) < 1.0
    assert run(1.02 * limit) > 10.0


def test_unstable_steps_are_refused_for_diffusions_and_warned_for_sgd():
    """Brownian motion at ε/T past 2/h_max and `sgd_sde` past η h_max = 2 raise ValueError naming
    the step; SGD and momentum SGD past theirs warn; just below every limit, nothing."""
    crossing = dynamics.normal_crossing((1, 1))
    data = crossing.sample_data(jax.random.key(0), 100)
    h_max = dynamics.max_curvature(crossing)
    assert 2.9 < h_max <= 3.0  # the Hessian of (w1 w2)²/2 at (±1, ±1) has eigenvalue 3
    below, above = 0.99 * 2 / h_max, 1.01 * 2 / h_max
    temperature = 0.01
    with pytest.raises(ValueError, match="brownian on normal_crossing.*ε/T = "):
        dynamics.brownian(crossing, temperature, above * temperature)
    with pytest.raises(ValueError, match="sgd_sde .*learning rate η = "):
        dynamics.sgd_sde(crossing, above, 5, data)
    with pytest.warns(dynamics.UnstableStepWarning, match="sgd on"):
        dynamics.sgd(crossing, above, 5, data)
    with pytest.warns(dynamics.UnstableStepWarning, match="heavy_ball"):
        dynamics.momentum_sgd(crossing, 1.01 * 3.8 / h_max, 0.9, 5, data)
    with pytest.warns(dynamics.UnstableStepWarning, match="nesterov"):
        dynamics.nesterov_sgd(crossing, 1.01 * 3.8 / 2.8 / h_max, 0.9, 5, data)
    dynamics.brownian(crossing, temperature, below * temperature)
    dynamics.sgd_sde(crossing, below, 5, data)
    dynamics.sgd(crossing, below, 5, data)


def test_basin_sweep_takes_stable_brownian_substeps():
    """The basin sweep's Brownian reference at η_eff = η/(1 − μ) takes ⌈η_eff h_max⌉ substeps so that
    (ε/T)h_max <= 1, and records SGD's own stability number (past 1: unstable on the box)."""
    potential = dynamics.two_basin()
    points = dynamics.basin_sweep(potential, jax.random.key(0), learning_rates=(0.2,), momenta=(0.0, 0.9),
                                  batch_size=10, num_particles=8, num_steps=4, num_data=50, num_bins=8)
    h_max = dynamics.max_curvature(potential)
    for point in points:
        effective = point.learning_rate / (1 - point.momentum)
        assert point.brownian_substeps == math.ceil(effective * h_max)
        assert effective / point.brownian_substeps * h_max <= 1.0
        expected = point.learning_rate * h_max / dynamics.stability_limit("heavy_ball", point.momentum)
        assert point.sgd_stability == pytest.approx(expected)

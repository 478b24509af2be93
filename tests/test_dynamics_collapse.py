"""Stochastic collapse: SGD on K = (w1 w2)²/2 shrinks w1² − w2² at the rate η²σ_g²/b = 2Tη per step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt import dynamics


def _collapse_run(learning_rate, batch_size, num_particles, num_steps, num_records, key):
    crossing = dynamics.normal_crossing((1, 1))
    key_data, key_run = jax.random.split(key)
    data = crossing.sample_data(key_data, 20_000)
    x = np.asarray(data.inputs, np.float64)[:, 0]
    y = np.asarray(data.targets, np.float64)[:, 0]
    floor = np.mean(x * y) / np.mean(x * x)  # u_n*: the full-data gradient vanishes at w1 w2 = u_n*
    per_example = x * x * floor - x * y  # a_i at the valley's floor (mean 0)
    start = jnp.asarray([0.3, floor / 0.3], jnp.float32)
    initial = jnp.broadcast_to(start, (num_particles, 2))
    algorithm = dynamics.sgd(crossing, learning_rate, batch_size, data)
    paths = dynamics.simulate(algorithm, initial, key_run, num_steps, num_steps // num_records)
    return paths, per_example


@pytest.mark.parametrize("learning_rate, batch_size, num_steps", [(0.05, 5, 4000), (0.1, 2, 800)])
def test_sgd_imbalance_decays_at_the_collapse_rate(learning_rate, batch_size, num_steps):
    """Slope of E log|w1² − w2²| against step = −η² σ_g²/b (`collapse_rate`), at the valley's floor.

    Each step multiplies D = w1² − w2² by 1 − η²a² exactly (`slt.dynamics._collapse`), so the
    expected slope is E log(1 − η²a²) = −η² E a² − η⁴ E a⁴/2 − …, with a the batch mean of b
    draws (with replacement) of a_i = x_i² u_n* − x_i y_i: E a² = s²/b (= `collapse_rate`'s
    σ_g²/b), E a⁴ = (κ + 3(b − 1)s⁴)/b³ from the data's own second and fourth moments. 200
    independent particles from w = (0.3, u_n*/0.3), run until D has shrunk by e² to e⁴; the per-particle least-squares slopes give
    the standard error; tolerance 4 SE (about 0.6 % of the rate). Neglected: the spread of
    w1 w2 along the floor, relative T b (w1² + w2²) <= 0.05 % here.
    Checked against a planted bug (collapse_rate doubled, i.e. exp(−4Tηt)): fails by > 100 SE.
    """
    paths, per_example = _collapse_run(learning_rate, batch_size, 200, num_steps, 40, jax.random.key(24))
    slope = dynamics.imbalance_slope(paths.positions, paths.steps)
    second = np.mean(per_example**2)
    fourth = np.mean(per_example**4)
    rate = dynamics.collapse_rate(learning_rate, batch_size, noise_variance=float(second))
    assert rate == pytest.approx(learning_rate**2 * second / batch_size, rel=1e-12)
    assert rate == pytest.approx(2 * learning_rate * dynamics.sgd_temperature(learning_rate, batch_size,
                                                                               noise_variance=float(second)))
    batch_fourth = (fourth + 3 * (batch_size - 1) * second**2) / batch_size**3
    expected = -(rate + learning_rate**4 * batch_fourth / 2)
    assert abs(slope.value - expected) < 4 * slope.std_error, (slope, expected, rate)
    assert slope.std_error < 0.01 * rate  # the test resolves the rate to about 1 %


def test_gradient_descent_changes_the_imbalance_only_at_first_order_in_the_step():
    """Noise-free GD conserves D = w1² − w2² up to O(η): each step multiplies it by 1 − η²u², and
    Σ η²u² over a descent is O(η) (gradient flow conserves D exactly). Over the same flow time
    (200), halving η must halve |Δ log D| (ratio 2 ± 10 %, the O(η) remainder), and the change must
    stay below 0.01, against SGD's e² collapse in the test above. Deterministic."""
    crossing = dynamics.normal_crossing((1, 1))
    initial = jnp.asarray([[0.6, 0.5], [-0.9, 0.3], [0.2, -0.8]], jnp.float32)
    drifts = {}
    for learning_rate in (0.05, 0.025):
        num_steps = round(200 / learning_rate)
        paths = dynamics.simulate(dynamics.sgd(crossing, learning_rate), initial, jax.random.key(0), num_steps, num_steps)
        drifts[learning_rate] = np.abs(dynamics.log_imbalance(paths.positions[:, -1]) - dynamics.log_imbalance(initial))
    assert np.all(drifts[0.05] < 0.01), drifts
    np.testing.assert_allclose(drifts[0.05] / drifts[0.025], 2.0, rtol=0.1)

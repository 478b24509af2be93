"""Dynamics against exact laws, tight enough to catch the planted bugs of tests/mutants.toml:
Brownian motion 10 % too hot (brownian-temperature-hot), momentum not mirrored at the walls
(momentum-not-mirrored), and Brownian motion at 2T inside `compare_dynamics`
(compare-dynamics-brownian-2t).

The statistic for the temperature is the stationary mean of K over independent particles against
the Gibbs quadrature E_T[K] = Σ weights · K on the grid (`gibbs_grid`); its standard error is
sd(K)/√particles (one final draw per particle, independent). On K = (w1 w2)²/2 in [−1, 1]² at
T = 0.05, E_T[K] = 0.01328 and E_1.1T[K] = 0.01431 (+7.8 %).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt import dynamics

Z = 4.0


@pytest.fixture(scope="module")
def crossing():
    return dynamics.normal_crossing((1, 1))


def mean_loss_z(potential, positions, grid, relative_bias_bound=0.0):
    """(z, tolerance in units of the standard error) of the particles' mean K against E_T[K] on `grid`."""
    losses = np.asarray(jax.vmap(potential.population_loss)(jnp.asarray(positions)), np.float64)
    exact = float(np.sum(grid.weights * grid.loss))
    std_error = losses.std(ddof=1) / np.sqrt(losses.size)
    return (losses.mean() - exact) / std_error, Z + relative_bias_bound * exact / std_error


def test_brownian_stationary_mean_loss_matches_gibbs_to_one_percent(crossing):
    """w ← w − (ε/T)∇K + √(2ε)ξ at T = 0.05, ε = 0.001, time 3 from a uniform start (diffusion over
    the box takes ~2), 40 000 particles: MCSE of E[K] ≈ 0.86 % of it, so T 10 % too hot (+7.8 % in
    E[K]) lies ≈ 9 MCSE off. The Euler bias is O(ε): measured +1.6 % at ε = 0.0025 and +3.5 % at
    ε = 0.005 (40 000 particles), so ≈ +0.6 % (0.7 MCSE) here, inside the 4-MCSE tolerance.
    Observed on the unmutated code, keys 0–3: z = −0.40, 0.35, 0.77, 0.83 (key 1 is used); at 1.1 T,
    z = 9.09 and 9.13 (keys 2, 3).
    """
    temperature, step_size = 0.05, 0.001
    grid = dynamics.gibbs_grid(crossing, temperature, num_bins=20, refine=8)
    key_init, key_run = jax.random.split(jax.random.key(1))
    initial = dynamics.uniform_in_box(key_init, crossing.bounds, 40_000)
    num_steps = round(3.0 / step_size)
    paths = dynamics.simulate(dynamics.brownian(crossing, temperature, step_size), initial, key_run,
                              num_steps, num_steps)
    z, tolerance = mean_loss_z(crossing, paths.positions[:, -1], grid)
    assert abs(z) < tolerance, z


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_reflected_at_a_wall_is_the_free_flight_folded_into_the_box(crossing, nesterov, x64):
    """Method of images: on the axis w2 = 0 the gradient of K = (w1 w2)²/2 vanishes, so a particle
    there flies freely (v ← μ v, w ← w − η v or w − η μ v). A reflecting wall must give the free
    flight folded into the box, with the velocity reversed on each bounce. Without mirroring the
    momentum, the particle keeps pushing into the wall and stays near it instead."""
    learning_rate, momentum, num_steps = 0.1, 0.9, 60
    algorithm = dynamics.momentum_sgd(crossing, learning_rate, momentum, nesterov=nesterov)
    state = algorithm.init(jnp.asarray([0.9, 0.0]))
    state = state._replace(momentum=jnp.asarray([-1.0, 0.0]))  # moving towards the wall w1 = 1
    free_position, free_buffer = np.array([0.9, 0.0]), np.array([-1.0, 0.0])
    for step in range(num_steps):
        state, _ = algorithm.step(jax.random.key(step), state)
        free_buffer = momentum * free_buffer
        free_position = free_position - learning_rate * (momentum * free_buffer if nesterov else free_buffer)
    assert free_position[0] > 1.5  # the free flight did cross the wall (and only once)
    folded, sign = dynamics.reflect_into_box(jnp.asarray(free_position), crossing.bounds)
    np.testing.assert_allclose(state.position, folded, atol=1e-12)
    np.testing.assert_allclose(state.momentum, free_buffer * np.asarray(sign), atol=1e-12)


@pytest.mark.slow
def test_compare_dynamics_runs_brownian_motion_at_the_matched_temperature(crossing):
    """`compare_dynamics` at η_eff = 0.1, b = 1 (T = η_eff σ²/(2b) = 0.05), 600 steps of ε = η_eff T
    = 0.005 (time 3): the Brownian particles' mean K must match the Gibbs E_T[K] of the comparison's
    own grid within 4 MCSE (2000 particles, MCSE ≈ 3.8 % of E[K]) plus the Euler bias bound 5 %
    (measured +3.5 % at this ε): a tolerance of ≈ 5.3 MCSE. At 2T, E_2T[K] = 0.0221 = 1.66 E_T[K]:
    z ≈ 15. Observed on the unmutated code with 4000 particles, keys 0–2: z = 0.42, 1.69, 0.79.
    """
    comparison = dynamics.compare_dynamics(crossing, jax.random.key(0), effective_learning_rate=0.1, batch_size=1,
                                           momentum=0.5, num_particles=2000, num_steps=600, num_data=2000,
                                           num_records=3)
    assert comparison.temperature == pytest.approx(0.05)
    brownian, = [result for result in comparison.results if result.name == "brownian"]
    assert brownian.temperature == pytest.approx(comparison.temperature)
    z, tolerance = mean_loss_z(crossing, brownian.final_positions, comparison.grid_population, relative_bias_bound=0.05)
    assert abs(z) < tolerance, (z, tolerance)

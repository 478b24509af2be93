"""slt.dynamics: kernels against their update rules, Brownian motion against the exact Gibbs law,
the Gibbs quadrature against the closed-form marginal, and the SGD temperature against data."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

from slt import dynamics
from slt.samplers import SamplingAlgorithm


@pytest.fixture(scope="module")
def crossing():
    return dynamics.normal_crossing((1, 1))


# --------------------------------------------------------------------------------------------
# Brownian motion converges to the Gibbs density as the step shrinks


def test_brownian_distance_to_gibbs_shrinks_with_step_size(crossing):
    """Stationary law of w ← w − (ε/T)∇K + √(2ε)ξ on K = (w1 w2)²/2 in [−1, 1]², T = 0.05.

    20 000 independent particles (one final draw each) from a uniform start, run for time 3
    (diffusion over the box takes ~2). The histogram on 10 × 10 cells is multinomial, so the
    TV distance of exact Gibbs draws has a known law: its 99.9 % quantile (simulated) is the
    tolerance. At ε = 0.0025 the O(ε) bias is far below that floor and the distance must be
    inside it; at ε = 0.03 ((ε/T) h_max = 1.76, just inside the stability limit 2, h_max = 2.94
    on the box) the bias must show above it.
    Checked against a planted bug (noise √ε instead of √(2ε), i.e. temperature T/2): the
    small-step distance then lies far outside the floor and the test fails.
    """
    temperature = 0.05
    grid = dynamics.gibbs_grid(crossing, temperature, num_bins=10, refine=8)
    key_init, key_run, key_floor = jax.random.split(jax.random.key(20251123), 3)
    initial = dynamics.uniform_in_box(key_init, crossing.bounds, 20_000)
    distances = {}
    for step_size in (0.03, 0.0025):
        num_steps = int(round(3.0 / step_size))
        paths = dynamics.simulate(dynamics.brownian(crossing, temperature, step_size), initial, key_run,
                                  num_steps, num_steps)
        distances[step_size] = dynamics.distance_to_gibbs(paths.positions[:, -1], grid, key_floor)
    small, large = distances[0.0025], distances[0.03]
    assert small.total_variation <= small.floor_upper, small
    assert large.total_variation > large.floor_upper, large
    assert large.total_variation > small.total_variation


# --------------------------------------------------------------------------------------------
# The exact Gibbs quadrature


def test_gibbs_marginal_matches_erf_formula(crossing):
    """Uniform prior on [−1, 1]², K = (w1 w2)²/2: p(w1) ∝ √(2πT) erf(c|w1|)/(c|w1|)·c, c = 1/√(2T).

    Deterministic: the grid marginal (midpoint rule, 8 sub-cells per bin, K in float32) against
    the formula integrated per bin by a 400-point midpoint rule. Observed error 2e-5; tolerance
    2e-4. A planted bug (T doubled in the grid) gives 2.3e-2 and fails.
    """
    temperature = 0.01
    grid = dynamics.gibbs_grid(crossing, temperature, num_bins=20, refine=8)
    c = 1.0 / math.sqrt(2 * temperature)
    edges = grid.edges[0]
    fine = np.linspace(-1, 1, 20 * 400 + 1)
    centres = 0.5 * (fine[1:] + fine[:-1])
    density = erf(c * np.abs(centres)) / (c * np.abs(centres))
    exact = density.reshape(20, 400).sum(axis=1)
    exact /= exact.sum()
    np.testing.assert_allclose(grid.probabilities.sum(axis=1), exact, rtol=0, atol=2e-4)
    assert np.allclose(edges, np.linspace(-1, 1, 21))


def test_gibbs_basin_mass_prefers_the_singular_basin_as_temperature_falls():
    """Equal loss K = 0 in both basins: λ = 1/2 (m = 2) beats λ = 1, so the singular basin's
    Gibbs mass grows as T falls (mass ~ T^λ (log 1/T)^(m−1))."""
    landscape = dynamics.two_basin()
    masses = [dynamics.gibbs_singular_basin_mass(dynamics.gibbs_grid(landscape, t, num_bins=30), landscape)
              for t in (0.03, 0.01, 0.003)]
    assert masses[0] < masses[1] < masses[2] < 1


# --------------------------------------------------------------------------------------------
# SGD and momentum against their update rules


def _run(algorithm: SamplingAlgorithm, position, keys):
    state = algorithm.init(position)
    step = jax.jit(algorithm.step)
    positions = []
    for key in keys:
        state, info = step(key, state)
        assert bool(info.is_finite)
        positions.append(state.position)
    return jnp.stack(positions)


def test_full_batch_sgd_is_gradient_descent(crossing, x64):
    """Full batch (no minibatch noise): w ← w − η ∇L_n(w) exactly, on data and on K."""
    data = crossing.sample_data(jax.random.key(0), 64)
    learning_rate, position = 0.1, jnp.asarray([0.6, -0.4])
    keys = jax.random.split(jax.random.key(1), 20)
    on_data = _run(dynamics.sgd(crossing, learning_rate, batch_size=None, data=data), position, keys)
    on_population = _run(dynamics.sgd(crossing, learning_rate), position, keys)
    expected_data, expected_population, w_data, w_population = [], [], position, position
    for _ in keys:
        w_data = w_data - learning_rate * jax.grad(crossing.loss_fn)(w_data, data)
        w_population = w_population - learning_rate * jax.grad(crossing.population_loss)(w_population)
        expected_data.append(w_data)
        expected_population.append(w_population)
    np.testing.assert_allclose(on_data, jnp.stack(expected_data), rtol=0, atol=1e-12)
    np.testing.assert_allclose(on_population, jnp.stack(expected_population), rtol=0, atol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_sgd_follows_its_recursion(crossing, nesterov, x64):
    """v ← μv + g; w ← w − η v (heavy ball) or w − η (g + μ v) (Nesterov), g on the step's batch."""
    data = crossing.sample_data(jax.random.key(0), 200)
    learning_rate, momentum, batch_size = 0.05, 0.8, 7
    keys = jax.random.split(jax.random.key(2), 15)
    position = jnp.asarray([0.3, 0.5])
    got = _run(dynamics.momentum_sgd(crossing, learning_rate, momentum, batch_size, data, nesterov=nesterov),
               position, keys)
    w, v, expected = position, jnp.zeros(2), []
    for key in keys:
        indices = jax.random.randint(key, (batch_size,), 0, 200)
        batch = jax.tree_util.tree_map(lambda leaf: leaf[indices], data)
        g = jax.grad(crossing.loss_fn)(w, batch)
        v = momentum * v + g
        w = w - learning_rate * ((g + momentum * v) if nesterov else v)
        expected.append(w)
    np.testing.assert_allclose(got, jnp.stack(expected), rtol=0, atol=1e-12)


def test_zero_momentum_is_plain_sgd(crossing):
    data = crossing.sample_data(jax.random.key(0), 100)
    keys = jax.random.split(jax.random.key(3), 10)
    position = jnp.asarray([0.2, -0.7])
    plain = _run(dynamics.sgd(crossing, 0.05, 4, data), position, keys)
    for algorithm in (dynamics.momentum_sgd(crossing, 0.05, 0.0, 4, data),
                      dynamics.nesterov_sgd(crossing, 0.05, 0.0, 4, data)):
        np.testing.assert_array_equal(_run(algorithm, position, keys), plain)


def test_info_has_the_kernel_contract_fields(crossing):
    data = crossing.sample_data(jax.random.key(0), 50)
    for algorithm in (dynamics.brownian(crossing, 0.1, 1e-3), dynamics.sgd(crossing, 0.1, 5, data),
                      dynamics.momentum_sgd(crossing, 0.1, 0.5, 5, data)):
        state, info = algorithm.step(jax.random.key(0), algorithm.init(jnp.asarray([0.5, 0.5])))
        assert state.position.shape == (2,)
        assert {"loss", "loss_at_center", "is_finite"} <= set(info._fields)


# --------------------------------------------------------------------------------------------
# Reproducibility and the box


def test_same_key_same_trajectories(crossing):
    data = crossing.sample_data(jax.random.key(0), 100)
    initial = dynamics.uniform_in_box(jax.random.key(1), crossing.bounds, 8)
    for algorithm in (dynamics.brownian(crossing, 0.05, 1e-3), dynamics.momentum_sgd(crossing, 0.05, 0.9, 5, data)):
        first = dynamics.simulate(algorithm, initial, jax.random.key(7), 40, 10)
        again = dynamics.simulate(algorithm, initial, jax.random.key(7), 40, 10)
        other = dynamics.simulate(algorithm, initial, jax.random.key(8), 40, 10)
        np.testing.assert_array_equal(first.positions, again.positions)
        assert not np.array_equal(first.positions, other.positions)
        assert first.positions.shape == (8, 4, 2)


def test_reflection_stays_in_box_and_mirrors():
    bounds = ((-1.0, 1.0), (0.0, 2.0))
    position, sign = dynamics.reflect_into_box(jnp.asarray([1.25, -0.5]), bounds)
    np.testing.assert_allclose(position, [0.75, 0.5])
    np.testing.assert_array_equal(sign, [-1.0, -1.0])
    position, sign = dynamics.reflect_into_box(jnp.asarray([3.5, 1.0]), bounds)
    np.testing.assert_allclose(position, [-0.5, 1.0])
    np.testing.assert_array_equal(sign, [1.0, 1.0])


# --------------------------------------------------------------------------------------------
# The temperature of SGD noise


def test_sgd_temperature_formula_matches_minibatch_noise_on_the_singular_set(crossing):
    """On the axis w2 = 0 of the normal crossing, tr C / tr H = var(x y)/mean(x²) → σ² = 1.

    Its sampling error over n data: var of x²y² is E x⁴ E y⁴ − 1 = 8, var of x² is 2, so the
    ratio's standard error is about √(10/n); tolerance 4 standard errors. Checked against a
    planted bug (b in place of 2b in the formula): the ratio is then off by 2 and fails.
    """
    n = 20_000
    data = crossing.sample_data(jax.random.key(5), n)
    points = jnp.asarray([[0.5, 0.0], [-0.8, 0.0], [0.0, 0.3]])
    learning_rate, batch_size, momentum = 0.04, 4, 0.5
    measured = dynamics.measured_sgd_temperature(crossing, data, points, learning_rate, batch_size, momentum)
    formula = dynamics.sgd_temperature(learning_rate, batch_size, momentum)
    assert formula == pytest.approx(0.04 / (2 * 4 * 0.5))
    np.testing.assert_allclose(measured / formula, 1.0, atol=4 * math.sqrt(10 / n))


# --------------------------------------------------------------------------------------------
# The measures on hand-made paths


def test_fractions_and_escape_times_on_known_paths():
    landscape = dynamics.local_minimum()
    inside, outside = [1.0, 1.0], [0.0, 0.5]
    paths = np.asarray([[inside, inside, outside], [inside, inside, inside], [inside, outside, inside]])
    escapes = dynamics.escape_times(paths, landscape, steps=np.asarray([10, 20, 30]))
    np.testing.assert_array_equal(escapes.times, [30, np.inf, 20])
    assert escapes.fraction_escaped.value == pytest.approx(2 / 3)
    assert escapes.median == 30
    near = dynamics.near_singular_fraction(paths, landscape, 0.1)
    assert near.value == pytest.approx((1 / 3 + 0 + 1 / 3) / 3)
    basin = dynamics.singular_basin_fraction(paths[:, -1], landscape)
    assert basin.value == pytest.approx(1 / 3)
    assert basin.std_error == pytest.approx(math.sqrt(2 / 9 / 3))


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda p: dynamics.brownian(p, -1.0, 1e-3), "temperature must be"),
        (lambda p: dynamics.brownian(p, 0.1, 0.0), "step_size must be"),
        (lambda p: dynamics.sgd(p, 0.1, batch_size=5), "batch_size needs data"),
        (lambda p: dynamics.momentum_sgd(p, 0.1, 1.0), "momentum must be"),
        (lambda p: dynamics.sgd(p, -0.1), "learning_rate must be"),
        (lambda p: dynamics.sgd_temperature(0.1, 0), "batch_size"),
        (lambda p: dynamics.gibbs_grid(p, 0.0), "temperature must be"),
        (lambda p: dynamics.two_basin(gate=(1.0, 0.5)), "two_basin needs"),
    ],
)
def test_bad_arguments_raise_value_error(crossing, build, fragment):
    with pytest.raises(ValueError, match=fragment):
        build(crossing)


def test_any_registry_model_runs_minibatch_sgd_on_its_data():
    """A pytree-parameter model (reduced-rank regression): momentum SGD on minibatches of its own
    data lowers the full-data loss from a perturbed start (deterministic given the keys)."""
    import toy_models

    model = toy_models.get("rrr", M=3, H=2, N=3, r=1)
    potential = dynamics.from_model(model)
    data = potential.sample_data(jax.random.key(0), 400)
    start = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf + 0.3, leaf - 0.3]), model.w_star)
    paths = dynamics.simulate(dynamics.momentum_sgd(potential, 0.02, 0.9, 20, data), start, jax.random.key(1), 200, 100)
    for particle in range(2):
        initial = jax.tree_util.tree_map(lambda leaf: leaf[particle], start)
        last = jax.tree_util.tree_map(lambda leaf: leaf[particle, -1], paths.positions)
        assert float(model.loss(last, data)) < float(model.loss(initial, data)) - 0.05


@pytest.mark.parametrize("learning_rate, momentum", [(0.02, 0.9), (0.2, 0.0)])
def test_heavy_ball_stationary_variance_matches_sgd_temperature(learning_rate, momentum):
    """Heavy-ball SGD on the regular 2-D regression (K = ||w − w*||²/2, C = σ²H at w*).

    For v ← μv + g, w ← w − ηv on a quadratic with curvature h and gradient noise variance s²
    per step, the stationary variance is η s² (1 + μ) / (h (1 − μ)(2(1 + μ) − ηh)), i.e.
    T/h · A with T = ησ²/(2b(1 − μ)) (`sgd_temperature`) and A = 2(1 + μ)/(2(1 + μ) − ηh).
    Minibatch noise here is multiplicative: s² = (c + 3v)/b at spread v (E x⁴ = 3), with c the
    data's own variance of x_j (y − x·w*) (≈ σ² = 1, but off by ~2 % at n = 20 000) and h its
    mean x_j², so v = u c / (1 − 3u) with u = T A / h at σ² = 1. 10 000 independent particles
    (final draws after 400 steps, when the start is forgotten to 1e-8): the sample variance
    has relative standard error √(2/N); tolerance 4 of them per coordinate. Checked against a planted bug (PyTorch-style dampening v ← μv + (1 − μ)g,
    which divides the variance by 1/(1 − μ) = 10): fails.
    """
    import toy_models

    model = toy_models.get("regular", d=2)
    potential = dynamics.from_model(model)
    key_data, key_run = jax.random.split(jax.random.key(11))
    data = potential.sample_data(key_data, 20_000)
    batch_size, num_particles = 10, 10_000
    initial = jnp.broadcast_to(model.w_star, (num_particles, 2))
    algorithm = dynamics.momentum_sgd(potential, learning_rate, momentum, batch_size, data)
    final = dynamics.simulate(algorithm, initial, key_run, 400, 400).positions[:, -1]
    variance = np.var(final - np.asarray(model.w_star), axis=0, ddof=1)
    inputs = np.asarray(data.inputs, np.float64)
    residuals = np.asarray(data.targets, np.float64)[:, 0] - inputs @ np.asarray(model.w_star, np.float64)
    curvature = np.mean(inputs**2, axis=0)
    noise_variance = np.var(inputs * residuals[:, None], axis=0)  # the data's own σ² E x² per coordinate
    correction = 2 * (1 + momentum) / (2 * (1 + momentum) - learning_rate * curvature)
    unit = dynamics.sgd_temperature(learning_rate, batch_size, momentum) / curvature * correction
    expected = unit * noise_variance / (1 - 3 * unit)
    np.testing.assert_allclose(variance / expected, 1.0, rtol=0, atol=4 * math.sqrt(2 / num_particles))

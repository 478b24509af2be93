"""Stochastic-gradient kernels: stationary laws on Gaussian targets, SGLD against quadrature on
K = w1² w2², the convention shared with `sgld`, and hyperparameter validation.

Error bars. Every statistical assertion compares an estimate with its prediction within
`Z` Monte Carlo standard errors. The MCSE is a non-overlapping batch-means estimate: each chain
is cut into `NUM_BATCHES` consecutive batches after burn-in, and MCSE = sd(batch means) /
√(chains × batches). The chains are independent and each batch is many autocorrelation
times long (the docstrings give the times), so the batch means are close to independent.
Each test was also run once against a planted bug and failed (see `test_planted_bug_*`).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.optimize
import scipy.stats

import toy_models
from slt.samplers import (
    SamplingAlgorithm,
    TemperedPosterior,
    check_step_size,
    langevin_step,
    rmsprop_sgld,
    sghmc,
    sgld,
    sgnht,
    watanabe_beta,
)

Z = 3.0  # tolerance in MCSEs
NUM_BATCHES = 10


def run_chains(algorithm: SamplingAlgorithm, key, initial_positions, *, num_draws, thin=1, burn_in=0,
               record=lambda state, info: state.position):
    """`record(state, info)` every `thin` steps after `burn_in`, for every chain: (chains, draws, ...).

    A jitted `lax.scan` over steps, `vmap` over chains; chain keys from `split(key, chains)`.
    """
    def one_chain(chain_key, position):
        key_burn, key_draws = jax.random.split(chain_key)

        def advance(state, step_key):
            state, info = algorithm.step(step_key, state)
            return state, info

        state = algorithm.init(position)
        if burn_in:
            state, _ = jax.lax.scan(advance, state, jax.random.split(key_burn, burn_in))

        def draw(state, draw_key):
            state, infos = jax.lax.scan(advance, state, jax.random.split(draw_key, thin))
            last_info = jax.tree_util.tree_map(lambda x: x[-1], infos)
            return state, record(state, last_info)

        _, trace = jax.lax.scan(draw, state, jax.random.split(key_draws, num_draws))
        return trace

    chain_keys = jax.random.split(key, jax.tree_util.tree_leaves(initial_positions)[0].shape[0])
    return jax.jit(jax.vmap(one_chain))(chain_keys, initial_positions)


def batch_means(values):
    """(mean, MCSE) of a (chains, draws) array by non-overlapping batch means."""
    values = np.asarray(values, dtype=np.float64)
    chains, draws = values.shape
    size = draws // NUM_BATCHES
    means = values[:, : size * NUM_BATCHES].reshape(chains, NUM_BATCHES, size).mean(axis=-1).ravel()
    return means.mean(), means.std(ddof=1) / math.sqrt(means.size)


def gaussian_target(scales) -> TemperedPosterior:
    """p(w) = N(0, diag(scales²)) written as a TemperedPosterior: nβ = 1, one dummy datum."""
    inverse_variance = 1.0 / jnp.square(jnp.asarray(scales, dtype=float))
    return TemperedPosterior(
        loss_fn=lambda w, batch: 0.5 * jnp.sum(inverse_variance * jnp.square(w)) * jnp.mean(batch),
        data=jnp.ones(1),
        nbeta=1.0,
        center=jnp.zeros(len(scales)),
    )


def momentum_stationary_covariance(step_size, friction, scale, noise_friction=None):
    """Exact stationary covariance of (w, v) for the linear recursion SGHMC makes on N(0, s²).

    With k = ε/s², σ² = 2aε (a = `noise_friction`, default the friction α):
    v' = (1−α) v − k w + σζ,  w' = w + v' = (1−k) w + (1−α) v + σζ,
    so x = (w, v) has x' = M x + b ζ and Σ = M Σ Mᵀ + b bᵀ (discrete Lyapunov). As ε → 0,
    Var(w) → s² and Var(v) → ε when a = α.
    """
    noise_friction = friction if noise_friction is None else noise_friction
    k = step_size / scale**2
    transition = np.array([[1 - k, 1 - friction], [-k, 1 - friction]])
    noise = math.sqrt(2 * noise_friction * step_size) * np.ones((2, 1))
    return scipy.linalg.solve_discrete_lyapunov(transition, noise @ noise.T)


def momentum_stationary_variance(step_size, friction, scale):
    return momentum_stationary_covariance(step_size, friction, scale)[0, 0]


def sgnht_equilibrium_friction(step_size, diffusion, scales):
    """ξ* at which the thermostat is at rest: mean_j Var(v_j) = ε for the recursion with friction ξ*
    and noise 2aε. With exact gradients and ε → 0, ξ* → a; at finite ε the discrete velocity is
    hotter than ε, so ξ* > a and the position runs cooler than s² (found by root bracketing)."""
    def excess(friction):
        return np.mean([momentum_stationary_covariance(step_size, friction, s, diffusion)[1, 1]
                        for s in scales]) / step_size - 1

    return scipy.optimize.brentq(excess, diffusion / 4, 1.0, xtol=1e-12)


# --------------------------------------------------------------------------------------------
# SGLD bias law


def planted_sgld_small_noise(posterior, step_size):
    """SGLD with the noise off by √2: w + ε∇log p + √ε ξ (the Welling–Teh noise with our drift)."""
    step_size = check_step_size(step_size)

    def init(position):
        return sgld(posterior, step_size).init(position)

    def step(key, state):
        grad, _ = posterior.grad_log_density(state.position, posterior.data)
        noise = jax.random.normal(key, state.position.shape, state.position.dtype)
        return type(state)(state.position + step_size * grad + jnp.sqrt(step_size) * noise), None

    return SamplingAlgorithm(init, step)


def sgld_second_moment(make_kernel, step_size, key, num_chains=256, num_draws=4000):
    algorithm = make_kernel(gaussian_target([1.0]), step_size)
    start = jax.random.normal(jax.random.key(1), (num_chains, 1))  # exact draws from N(0, 1)
    positions = run_chains(algorithm, key, start, num_draws=num_draws, burn_in=int(5 / step_size))
    return batch_means(np.square(positions[..., 0]))


@pytest.mark.parametrize("step_size", [0.05, 0.1, 0.2])
def test_sgld_stationary_variance_follows_the_step_size_law(step_size):
    """SGLD on N(0, s²), s = 1, full batch: stationary variance s² / (1 − ε/(2s²)).

    Derivation. ∇log p(w) = −w/s², so the step is w' = (1 − k) w + √(2ε) ξ with k = ε/s², an
    AR(1) recursion. Its stationary variance solves V = (1 − k)² V + 2ε, so
    V = 2ε / (1 − (1 − k)²) = 2ε / (2k − k²) = s² / (1 − ε/(2s²)).

    Tolerance: E[w²] (the mean is 0) within 3 MCSE, batch means over 256 chains × 10 batches of
    400 draws; the autocorrelation time of w² is about 1/(2k) ≤ 10 steps. The MCSE is about
    0.6 %, below the bias being tested (2.6 %, 5.3 %, 11 %), so the naive answer s² fails here
    at every step size (asserted too).
    """
    estimate, mcse = sgld_second_moment(sgld, step_size, jax.random.key(2))
    predicted = 1.0 / (1.0 - step_size / 2.0)
    assert abs(estimate - predicted) < Z * mcse, (estimate, predicted, mcse)
    assert abs(estimate - 1.0) > Z * mcse  # the law is resolved: the unbiased value is rejected


def test_planted_bug_sgld_noise_off_by_sqrt2_fails_the_law():
    """The same check catches noise √ε instead of √(2ε) (stationary variance about halved)."""
    step_size = 0.1
    estimate, mcse = sgld_second_moment(planted_sgld_small_noise, step_size, jax.random.key(2))
    predicted = 1.0 / (1.0 - step_size / 2.0)
    assert abs(estimate - predicted) > Z * mcse


# --------------------------------------------------------------------------------------------
# SGHMC, SGNHT, RMSProp-SGLD: stationary moments on N(0, diag(s²))

SCALES = (0.5, 1.0, 2.0)


def stationary_moments(algorithm, key, num_chains, num_draws, thin, burn_in):
    start = jax.random.normal(jax.random.key(3), (num_chains, len(SCALES))) * jnp.asarray(SCALES)[None, :]
    positions = np.asarray(run_chains(algorithm, key, start, num_draws=num_draws, thin=thin, burn_in=burn_in))
    return [batch_means(positions[..., j]) for j in range(len(SCALES))], [
        batch_means(np.square(positions[..., j])) for j in range(len(SCALES))
    ]


def assert_moments(moments, predicted_variances):
    means, second = moments
    for (mean, mean_mcse), (var, var_mcse), predicted in zip(means, second, predicted_variances):
        assert abs(mean) < Z * mean_mcse, (mean, mean_mcse)
        assert abs(var - predicted) < Z * var_mcse, (var, predicted, var_mcse)


def test_sghmc_stationary_moments():
    """SGHMC on N(0, diag(0.5², 1, 2²)), ε = 0.01, α = 0.1, full batch.

    Prediction: the exact discrete stationary variance of the linear recursion
    (`momentum_stationary_variance`; 0.2563, 1.0025, 4.0025 here) and mean 0. Tolerance 3 MCSE
    by batch means over 128 chains × 10 batches of 500 draws (thin 5); the slowest
    autocorrelation time is about 40 steps (critically damped s = 2 coordinate).
    """
    algorithm = sghmc(gaussian_target(SCALES), 0.01, friction=0.1)
    moments = stationary_moments(algorithm, jax.random.key(4), 128, 5000, 5, 2000)
    assert_moments(moments, [momentum_stationary_variance(0.01, 0.1, s) for s in SCALES])


def test_sgnht_stationary_moments_and_thermostat():
    """SGNHT on N(0, diag(0.5², 1, 2²)), ε = 0.01, a = 0.1, full batch.

    The thermostat holds the mean kinetic temperature v·v/(dε) at 1. With exact gradients and the
    thermostat frozen at ξ the recursion is linear (SGHMC's with friction ξ and noise 2aε), so
    its equilibrium ξ* solves mean_j Var(v_j; ξ*) = ε (`sgnht_equilibrium_friction`: 0.1057
    here, not a = 0.1, because the discrete velocity runs hot at k = ε/s² = 0.04), and the
    predicted Var(w_j) is the Lyapunov variance at ξ* (0.2389, 0.9480, 3.7909: about 5 % below
    s², a discretisation bias of SGNHT, which the naive prediction s² misses by 20 MCSE).
    Tolerance 3 MCSE by batch means as for SGHMC. The thermostat: at stationarity E[Δξ] = 0, so
    the mean kinetic temperature is exactly 1 (checked within 3 MCSE). The mean of ξ itself sits
    about 1 % below the frozen-thermostat ξ* (its fluctuations, which the frozen model leaves out,
    are worth about 4 MCSE here), so ξ is only checked to 2 % of ξ*: a model tolerance, not an
    error bar.
    """
    step_size, diffusion = 0.01, 0.1
    friction = sgnht_equilibrium_friction(step_size, diffusion, SCALES)
    algorithm = sgnht(gaussian_target(SCALES), step_size, diffusion=diffusion)
    moments = stationary_moments(algorithm, jax.random.key(5), 128, 5000, 5, 2000)
    assert_moments(moments, [momentum_stationary_covariance(step_size, friction, s, diffusion)[0, 0] for s in SCALES])
    start = jnp.zeros((128, len(SCALES)))
    thermostat, kinetic = run_chains(algorithm, jax.random.key(6), start, num_draws=2000, thin=5, burn_in=2000,
                                     record=lambda state, info: (info.thermostat, info.kinetic_temperature))
    mean, mcse = batch_means(kinetic)
    assert abs(mean - 1.0) < Z * mcse, (mean, mcse)
    assert float(np.mean(thermostat)) == pytest.approx(friction, rel=0.02)


def rmsprop_second_moments(decay):
    step_size = 0.005
    algorithm = rmsprop_sgld(gaussian_target(SCALES), step_size, decay=decay, damping=1e-5)
    _, second = stationary_moments(algorithm, jax.random.key(7), 128, 8000, 5, 20000)
    return second, [s**2 / (1 - step_size / (2 * s)) for s in SCALES]


def test_rmsprop_sgld_stationary_moments():
    """RMSProp-SGLD on N(0, diag(0.5², 1, 2²)), ε = 0.005, α = 0.9999, full batch.

    The preconditioner settles at G_j ≈ 1/√E[s_j²] = s_j (the gradient is −w/s², so
    E[s²] = 1/s²), and with G held there the law is SGLD's with step ε s_j on coordinate j, so
    the predicted variance is s²/(1 − ε/(2s)): 0.25 × 1.005, 1.0025, 4 × 1.00125.
    Tolerance 3 MCSE (batch means, 128 chains × 10 batches of 800 draws, thin 5, after 20 000
    burn-in steps, twice the averaging time 1/(1 − α); the slowest autocorrelation time is
    s/ε = 400 steps). The dropped Γ term leaves a bias that grows with the ratio of the chain's
    correlation time to the averaging time, (s/ε)(1 − α): measured +1 % to +2.5 % here (1–2 MCSE,
    inside the tolerance, not zero), and +5 % to +17 % at α = 0.999, which the next test shows
    this check detects.
    """
    second, predicted = rmsprop_second_moments(0.9999)
    for (var, mcse), value in zip(second, predicted):
        assert abs(var - value) < Z * mcse, (var, value, mcse)


def test_rmsprop_gamma_bias_at_short_averaging_is_detected():
    """Power check for the test above: at α = 0.999 the Γ-term bias (large |w| → large V → small
    G → the chain lingers) inflates the variance beyond 3 MCSE on every coordinate."""
    second, predicted = rmsprop_second_moments(0.999)
    for (var, mcse), value in zip(second, predicted):
        assert var - value > Z * mcse, (var, value, mcse)


# --------------------------------------------------------------------------------------------
# SGLD on the localised normal crossing K = w1² w2², against quadrature


def crossing_setup(n=1000, localization=10.0):
    model = toy_models.get("normal_crossing", powers=(1, 1))
    data = model.sample_data(jax.random.key(11), n)
    nbeta = n * watanabe_beta(n)
    posterior = TemperedPosterior.from_model(model, data, nbeta=nbeta, localization=localization)
    return model, posterior


def crossing_quadrature(posterior):
    """E[nβ(L_n(w) − L_n(0))] under p(w) ∝ exp(−nβ L_n(w) − (γ/2)|w|²), by quadrature.

    L_n(w) − L_n(0) = a u² − b u with u = w1 w2 (the loss is quadratic in the monomial); a and b
    are read off the model's own empirical loss, and the identity is checked at random points.
    Given w1 = t the density is Gaussian in w2 with precision P = 2nβ a t² + γ and mean
    m = nβ b t / P, so the w2 integral is closed-form and t is integrated on a fine grid
    (Simpson, 400 001 points on ±12/√γ). A brute-force 2-D grid is the cross-check.
    """
    loss = jax.jit(lambda w: posterior.loss_fn(w, posterior.data))
    base = float(loss(jnp.zeros(2)))
    plus, minus = float(loss(jnp.asarray([1.0, 1.0]))) - base, float(loss(jnp.asarray([-1.0, 1.0]))) - base
    a, b = (plus + minus) / 2, (minus - plus) / 2
    points = np.asarray(jax.random.normal(jax.random.key(12), (20, 2)))
    exact = np.asarray(jax.vmap(loss)(jnp.asarray(points))) - base
    u = points[:, 0] * points[:, 1]
    np.testing.assert_allclose(a * u**2 - b * u, exact, rtol=1e-9, atol=1e-12)

    nbeta, gamma = posterior.nbeta, posterior.localization
    t = np.linspace(-12 / math.sqrt(gamma), 12 / math.sqrt(gamma), 400_001)
    precision = 2 * nbeta * a * t**2 + gamma
    mean = nbeta * b * t / precision
    log_weight = -0.5 * gamma * t**2 - 0.5 * np.log(precision) + 0.5 * precision * mean**2
    weight = np.exp(log_weight - log_weight.max())
    conditional = nbeta * (a * t**2 * (1 / precision + mean**2) - b * t * mean)
    semi_analytic = scipy.integrate.simpson(weight * conditional, x=t) / scipy.integrate.simpson(weight, x=t)

    grid = np.linspace(-8 / math.sqrt(gamma), 8 / math.sqrt(gamma), 2001)
    w1, w2 = np.meshgrid(grid, grid, indexing="ij")
    energy = nbeta * (a * (w1 * w2) ** 2 - b * w1 * w2)
    log_density = -energy - 0.5 * gamma * (w1**2 + w2**2)
    density = np.exp(log_density - log_density.max())
    brute = np.sum(density * energy) / np.sum(density)
    assert abs(brute - semi_analytic) < 1e-4 * abs(semi_analytic)
    return semi_analytic


def sgld_crossing_estimate(posterior, step_size, key, num_chains, num_draws, thin):
    algorithm = sgld(posterior, step_size, mala_diagnostic=False)
    start = jnp.zeros((num_chains, 2))
    excess = run_chains(
        algorithm, key, start, num_draws=num_draws, thin=thin, burn_in=int(5 / (posterior.localization * step_size)),
        record=lambda state, info: posterior.nbeta * (info.loss - info.loss_at_center),
    )
    return batch_means(excess)


def richardson_crossing_estimate(posterior, likelihood_scale=1.0):
    """2 m(ε) − m(2ε) at ε = 5e-4 and its MCSE, sampling with nβ × `likelihood_scale` and
    reporting nβ(L − L*) in the posterior's own nβ units (so a scale ≠ 1 is a planted bug)."""
    sampled = TemperedPosterior(posterior.loss_fn, posterior.data, likelihood_scale * posterior.nbeta,
                                posterior.center, posterior.localization)
    fine, fine_mcse = sgld_crossing_estimate(sampled, 5e-4, jax.random.key(13), 32, 1000, 10)
    coarse, coarse_mcse = sgld_crossing_estimate(sampled, 1e-3, jax.random.key(15), 32, 1000, 5)
    return (2 * fine - coarse) / likelihood_scale, math.hypot(2 * fine_mcse, coarse_mcse) / likelihood_scale


def test_sgld_matches_quadrature_on_normal_crossing(x64):
    """SGLD's mean nβ(L_n − L_n(w*)) on K = w1² w2² (n = 1000, nβ = n/log n, γ = 10, flat prior,
    full batch) agrees with quadrature of the same density (0.0991 for this data set) within
    3 MCSE, after removing the step-size bias by Richardson extrapolation.

    Step-size bias: SGLD's bias is linear in ε to first order, and here it is not negligible
    (about +9 % per 1e-3 of ε, measured: the quantity is a small difference of larger terms).
    So the estimate is 2 m(ε) − m(2ε) with ε = 5e-4, whose bias is O(ε²), with MCSE
    √(4 MCSE(ε)² + MCSE(2ε)²) ≈ 0.010, the two runs having independent keys.
    MCSE of each run: batch means over 32 chains × 10 batches of 100 draws (thin 10 at ε and 5 at
    2ε, so 5e-3 time units between draws); the slowest direction (along the axes, set by γ) has
    autocorrelation time 1/γ = 0.1 time units, a twentieth of a batch.
    """
    _, posterior = crossing_setup()
    truth = crossing_quadrature(posterior)
    estimate, mcse = richardson_crossing_estimate(posterior)
    assert abs(estimate - truth) < Z * mcse, (estimate, truth, mcse)


def test_planted_bug_crossing_quadrature_catches_wrong_temperature(x64):
    """The same comparison fails when the sampler uses 2nβ while the estimate is reported in nβ
    units (a likelihood-scale slip): 0.033 ± 0.005 against 0.099."""
    _, posterior = crossing_setup()
    truth = crossing_quadrature(posterior)
    estimate, mcse = richardson_crossing_estimate(posterior, likelihood_scale=2.0)
    assert abs(estimate - truth) > Z * mcse, (estimate, truth, mcse)


@pytest.mark.slow
def test_sgld_crossing_bias_law_slow(x64):
    """Slow: estimates at ε = 2.5e-4, 5e-4 and 1e-3 (128 chains × 2000 draws, 5e-3 time units
    between draws, MCSE about 0.0015 each) lie on a line in ε whose intercept (weighted least
    squares, weights 1/MCSE²) is within 3 standard errors of quadrature: the bias is linear in ε
    (diffrax-style order test) and vanishes at ε = 0. The line's residuals are checked by a
    chi-square test at level 1e-3 (one degree of freedom)."""
    _, posterior = crossing_setup()
    truth = crossing_quadrature(posterior)
    step_sizes = np.array([2.5e-4, 5e-4, 1e-3])
    results = [sgld_crossing_estimate(posterior, eps, jax.random.key(14 + i), 128, 2000, int(round(5e-3 / eps)))
               for i, eps in enumerate(step_sizes)]
    estimates, mcses = np.array([r[0] for r in results]), np.array([r[1] for r in results])
    design = np.stack([np.ones(3), step_sizes], axis=1) / mcses[:, None]
    coefficients, residual, _, _ = np.linalg.lstsq(design, estimates / mcses, rcond=None)
    covariance = np.linalg.inv(design.T @ design)
    intercept, intercept_se = coefficients[0], math.sqrt(covariance[0, 0])
    assert abs(intercept - truth) < Z * intercept_se, (intercept, truth, intercept_se, estimates, mcses)
    assert scipy.stats.chi2.sf(float(residual[0]), df=1) > 1e-3, (estimates, mcses)


# --------------------------------------------------------------------------------------------
# The shared convention, the contract, and validation


def test_momentum_kernels_with_unit_friction_are_sgld_step_for_step():
    """SGHMC with α = 1 and SGNHT with a = 1 (thermostat starting at 1, one step) equal SGLD with
    the same key: the step size means the same thing in every SG kernel."""
    posterior = crossing_setup()[1]
    key = jax.random.key(21)
    position = jnp.asarray([0.3, -0.2])
    sgld_state, _ = sgld(posterior, 1e-3, batch_size=100).step(key, sgld(posterior, 1e-3, batch_size=100).init(position))
    for algorithm in (sghmc(posterior, 1e-3, batch_size=100, friction=1.0),
                      sgnht(posterior, 1e-3, batch_size=100, diffusion=1.0)):
        state, _ = algorithm.step(key, algorithm.init(position))
        np.testing.assert_allclose(state.position, sgld_state.position, rtol=1e-6, atol=1e-7)


def test_rmsprop_with_unit_preconditioner_is_sgld():
    """On a target whose statistical gradient is ±1 in every coordinate, V̂ = 1 and G = 1/(1 + λ):
    with λ → 0 the step is SGLD's with the same key, localisation drift included."""
    posterior = TemperedPosterior(loss_fn=lambda w, batch: jnp.sum(w) * jnp.mean(batch), data=jnp.ones(4),
                                  nbeta=1.0, center=jnp.zeros(3), localization=2.0)
    key = jax.random.key(22)
    position = jnp.asarray([0.3, -0.2, 1.0])
    expected, _ = sgld(posterior, 1e-2).step(key, sgld(posterior, 1e-2).init(position))
    algorithm = rmsprop_sgld(posterior, 1e-2, damping=1e-12)
    state, info = algorithm.step(key, algorithm.init(position))
    np.testing.assert_allclose(state.position, expected.position, rtol=1e-5)
    assert float(info.preconditioner_mean) == pytest.approx(1.0, rel=1e-5)


def test_statistics_leave_out_the_localization():
    """V uses −nβ∇L_b + ∇log φ only: the same loss with and without γ gives the same V."""
    def make(localization):
        return TemperedPosterior(loss_fn=lambda w, batch: 0.5 * jnp.sum(jnp.square(w)) * jnp.mean(batch),
                                 data=jnp.ones(2), nbeta=3.0, center=jnp.ones(2), localization=localization)

    position = jnp.asarray([0.5, -1.5])
    states = [rmsprop_sgld(make(g), 1e-3).step(jax.random.key(0), rmsprop_sgld(make(g), 1e-3).init(position))[0]
              for g in (0.0, 50.0)]
    np.testing.assert_allclose(states[0].square_average, states[1].square_average)
    np.testing.assert_allclose(states[0].square_average, 0.01 * jnp.square(3.0 * position))


@pytest.mark.parametrize("factory", [rmsprop_sgld, sghmc, sgnht])
def test_info_contract_and_minibatch(factory):
    model, posterior = crossing_setup(n=200)
    algorithm = factory(posterior, 1e-4, batch_size=32)
    state = algorithm.init(jnp.asarray([0.2, 0.1]))
    keys = jax.random.split(jax.random.key(0), 3)
    state, info = jax.jit(algorithm.step)(keys[0], state)
    assert {"loss", "loss_at_center", "is_finite"} <= set(info._fields)
    assert bool(info.is_finite) and state.position.shape == (2,)
    # loss_at_center is on the same minibatch as loss: it differs from the full-data value
    assert float(info.loss_at_center) != pytest.approx(float(model.loss(model.w_star, posterior.data)))
    # keys: different keys give different steps, and the step is a pure function of the key
    again, _ = jax.jit(algorithm.step)(keys[0], algorithm.init(jnp.asarray([0.2, 0.1])))
    other, _ = jax.jit(algorithm.step)(keys[1], algorithm.init(jnp.asarray([0.2, 0.1])))
    np.testing.assert_array_equal(again.position, jax.jit(algorithm.step)(keys[0], algorithm.init(jnp.asarray([0.2, 0.1])))[0].position)
    assert not np.allclose(other.position, again.position)


def test_sghmc_uses_fresh_noise_for_batch_and_momentum():
    """Two steps with different keys from the same state differ in the noise (no key reuse across
    the batch draw and the noise draw: with a fixed batch the noise still varies)."""
    posterior = gaussian_target([1.0, 1.0])
    algorithm = sghmc(posterior, 0.01, friction=0.5)
    state = algorithm.init(jnp.zeros(2))
    key_a, key_b = jax.random.split(jax.random.key(3))
    a, _ = algorithm.step(key_a, state)
    b, _ = algorithm.step(key_b, state)
    assert not np.allclose(a.momentum, b.momentum)
    # the noise is not the key's batch draw reused: it matches the named noise key's draw
    _, key_noise = jax.random.split(key_a)
    expected = langevin_step(jnp.zeros(2), jnp.zeros(2), 0.5 * 0.01, key_noise)
    np.testing.assert_allclose(a.momentum, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("factory", "kwargs", "name"),
    [
        (sghmc, {"step_size": 0.0}, "step_size"),
        (sghmc, {"step_size": float("nan")}, "step_size"),
        (sghmc, {"step_size": 1e-3, "friction": 0.0}, "friction"),
        (sghmc, {"step_size": 1e-3, "friction": 1.5}, "friction"),
        (sghmc, {"step_size": 1e-3, "friction": float("nan")}, "friction"),
        (sgnht, {"step_size": -1.0}, "step_size"),
        (sgnht, {"step_size": 1e-3, "diffusion": 0.0}, "diffusion"),
        (sgnht, {"step_size": 1e-3, "batch_size": 0}, "batch_size"),
        (rmsprop_sgld, {"step_size": float("inf")}, "step_size"),
        (rmsprop_sgld, {"step_size": 1e-3, "decay": 1.0}, "decay"),
        (rmsprop_sgld, {"step_size": 1e-3, "decay": float("nan")}, "decay"),
        (rmsprop_sgld, {"step_size": 1e-3, "damping": 0.0}, "damping"),
        (rmsprop_sgld, {"step_size": 1e-3, "batch_size": 2.5}, "batch_size"),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(factory, kwargs, name):
    with pytest.raises(ValueError, match=name):
        factory(gaussian_target([1.0]), **kwargs)

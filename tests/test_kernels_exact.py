"""Exact samplers: simulation-based calibration (SBC) on a conjugate Gaussian model, the planted
likelihood-scale bug SBC must catch, window adaptation, the numpyro reference, the contract.

SBC (Talts et al. 2018). Model: w ~ N(0, s²), y_1..y_n | w ~ N(w, 1), written as a
`TemperedPosterior` with L_n(w) = (1/n) Σ ½ (y_i − w)², nβ = n and a `GaussianPrior(s)`. Each
replicate draws w from the prior and data given w, runs the sampler from an independent prior
draw, and records the rank of the true w among `num_draws` thinned draws. If the sampler
targets the right posterior the rank is uniform on {0, …, num_draws}; a chi-square test over
`NUM_BINS` equal bins must not reject at level 1e-3. The planted bug runs the same sampler with
nβ = 2n on data generated at n (posterior too narrow by √2, and shrunk): the same test must
reject at 1e-3. Replicates are vmapped; the slow tier repeats with 10× more replicates.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from slt.samplers import (
    TemperedPosterior,
    hmc,
    langevin_step,
    mala,
    mala_log_acceptance,
    numpyro_nuts_reference,
    nuts,
    window_adaptation,
)
from toy_models import GaussianPrior

NUM_DATA = 20
PRIOR_SCALE = 1.0
NUM_BINS = 10
LEVEL = 1e-3
POSTERIOR_SD = 1 / math.sqrt(NUM_DATA + 1 / PRIOR_SCALE**2)


def conjugate_posterior(data, likelihood_scale=1.0) -> TemperedPosterior:
    return TemperedPosterior(
        loss_fn=lambda w, batch: 0.5 * jnp.mean(jnp.square(batch - w[0])),
        data=data,
        nbeta=likelihood_scale * NUM_DATA,
        center=jnp.zeros(1),
        prior=GaussianPrior(PRIOR_SCALE),
    )


SAMPLERS = {
    # Langevin ε = σ²/2 (acceptance about 0.9), thin 10; leapfrog ε = σ/2
    "mala": (lambda p: mala(p, 0.5 * POSTERIOR_SD**2), 10),
    "hmc": (lambda p: hmc(p, 0.5 * POSTERIOR_SD, 5), 2),
    "nuts": (lambda p: nuts(p, 0.5 * POSTERIOR_SD), 2),
}


def sbc_ranks(name, key, num_replicates, num_draws=99, burn_in=100, likelihood_scale=1.0):
    make_sampler, thin = SAMPLERS[name]

    def replicate(replicate_key):
        key_truth, key_data, key_start, key_chain = jax.random.split(replicate_key, 4)
        truth = PRIOR_SCALE * jax.random.normal(key_truth, (1,))
        data = truth[0] + jax.random.normal(key_data, (NUM_DATA,))
        with jax.ensure_compile_time_eval():  # TemperedPosterior checks its center eagerly
            posterior = conjugate_posterior(data, likelihood_scale)
        algorithm = make_sampler(posterior)
        state = algorithm.init(PRIOR_SCALE * jax.random.normal(key_start, (1,)))

        def advance(state, step_key):
            return algorithm.step(step_key, state)[0], None

        def draw(state, draw_key):
            state, _ = jax.lax.scan(advance, state, jax.random.split(draw_key, thin))
            return state, state.position[0]

        key_burn, key_draws = jax.random.split(key_chain)
        state, _ = jax.lax.scan(advance, state, jax.random.split(key_burn, burn_in))
        _, draws = jax.lax.scan(draw, state, jax.random.split(key_draws, num_draws))
        return jnp.sum(draws < truth[0])

    return np.asarray(jax.jit(jax.vmap(replicate))(jax.random.split(key, num_replicates)))


def uniformity_p_value(ranks, num_draws=99):
    counts = np.bincount(ranks * NUM_BINS // (num_draws + 1), minlength=NUM_BINS)
    return scipy.stats.chisquare(counts).pvalue


@pytest.mark.parametrize("name", ["mala", "hmc", "nuts"])
def test_sbc_ranks_are_uniform(name):
    p_value = uniformity_p_value(sbc_ranks(name, jax.random.key(0), 1000))
    assert p_value > LEVEL, p_value


@pytest.mark.parametrize("name", ["mala", "nuts"])
def test_planted_bug_sbc_catches_likelihood_scale(name):
    """nβ = 2n while the data come from n: the same test rejects."""
    p_value = uniformity_p_value(sbc_ranks(name, jax.random.key(0), 1000, likelihood_scale=2.0))
    assert p_value < LEVEL, p_value


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mala", "hmc", "nuts"])
def test_sbc_ranks_are_uniform_slow(name):
    p_value = uniformity_p_value(sbc_ranks(name, jax.random.key(1), 10_000))
    assert p_value > LEVEL, p_value


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mala", "hmc", "nuts"])
def test_planted_bug_small_scale_error_caught_slow(name):
    """Slow: 10 000 replicates catch a 10 % likelihood-scale error, not only a factor 2."""
    p_value = uniformity_p_value(sbc_ranks(name, jax.random.key(1), 10_000, likelihood_scale=1.1))
    assert p_value < LEVEL, p_value


# --------------------------------------------------------------------------------------------
# Adaptation, the numpyro reference, and the contract


def fixed_data():
    return 0.7 + jax.random.normal(jax.random.key(5), (NUM_DATA,))


def analytic_posterior(data):
    precision = NUM_DATA + 1 / PRIOR_SCALE**2
    return float(jnp.sum(data)) / precision, 1 / math.sqrt(precision)


def test_window_adaptation_then_nuts_matches_the_analytic_posterior():
    """Adapted M⁻¹ is the posterior variance up to its estimation error, and NUTS with the adapted
    parameters has the analytic posterior mean within 3 MCSE (MCSE = sd/√(chains × draws):
    1-D NUTS draws are close to independent; batch means agree)."""
    data = fixed_data()
    posterior = conjugate_posterior(data)
    mean, sd = analytic_posterior(data)
    adapted = window_adaptation(posterior, jax.random.key(6), jnp.zeros(1), 500)
    assert 0 < adapted.step_size < 10 * sd
    assert float(adapted.inverse_mass_matrix[0]) == pytest.approx(sd**2, rel=0.5)
    algorithm = nuts(posterior, adapted.step_size, adapted.inverse_mass_matrix)

    def chain(key):
        def body(state, step_key):
            state, info = algorithm.step(step_key, state)
            return state, (state.position[0], info.acceptance_rate)

        return jax.lax.scan(body, algorithm.init(adapted.position), jax.random.split(key, 1000))[1]

    draws, acceptance = jax.jit(jax.vmap(chain))(jax.random.split(jax.random.key(7), 8))
    draws = np.asarray(draws, dtype=np.float64)
    assert abs(draws.mean() - mean) < 3 * sd / math.sqrt(draws.size)
    assert float(jnp.mean(acceptance)) > 0.6


def test_numpyro_reference_matches_the_analytic_posterior():
    """numpyro NUTS on the same potential: mean within 3 MCSE (MCSE from numpyro-independent
    batch means over 2 chains × 10 batches), L_n per draw equals the loss at the draw."""
    data = fixed_data()
    posterior = conjugate_posterior(data)
    mean, sd = analytic_posterior(data)
    reference = numpyro_nuts_reference(posterior, jax.random.key(8), jnp.zeros(1), num_warmup=300,
                                       num_samples=2000, num_chains=2)
    draws = np.asarray(reference.positions[..., 0], dtype=np.float64)
    batches = draws.reshape(2, 10, -1).mean(-1).ravel()
    assert abs(draws.mean() - mean) < 3 * batches.std(ddof=1) / math.sqrt(batches.size)
    assert draws.std() == pytest.approx(sd, rel=0.1)  # 4000 near-independent draws: sd error ≈ 1.1 %
    expected = jax.vmap(jax.vmap(lambda w: posterior.loss_fn(w, data)))(reference.positions)
    np.testing.assert_allclose(reference.loss, expected, rtol=1e-6)
    assert not bool(jnp.any(reference.diverging))


def test_mala_acceptance_equals_the_reference_formula(x64):
    """MALA's cached-gradient acceptance equals `slt.samplers.mala_log_acceptance` recomputed."""
    posterior = conjugate_posterior(fixed_data())
    algorithm = mala(posterior, 0.05)
    state = algorithm.init(jnp.asarray([0.3]))
    key = jax.random.key(9)
    new_state, info = algorithm.step(key, state)
    key_proposal, _ = jax.random.split(key)
    proposal = langevin_step(state.position, state.grad_log_density, 0.05, key_proposal)
    expected = mala_log_acceptance(posterior, posterior.data, state.position, proposal, state.grad_log_density, 0.05)
    np.testing.assert_allclose(jnp.log(info.acceptance_rate), expected, rtol=1e-10)
    chosen = proposal if bool(info.is_accepted) else state.position
    np.testing.assert_allclose(new_state.position, chosen, rtol=1e-12)


@pytest.mark.parametrize("factory", [lambda p: mala(p, 0.01), lambda p: hmc(p, 0.1, 3), lambda p: nuts(p, 0.1)])
def test_info_loss_is_at_the_entering_position(factory):
    posterior = conjugate_posterior(fixed_data())
    algorithm = factory(posterior)
    state = algorithm.init(jnp.asarray([0.2]))
    step = jax.jit(algorithm.step)
    for key in jax.random.split(jax.random.key(10), 3):
        new_state, info = step(key, state)
        assert float(info.loss) == pytest.approx(float(posterior.loss_fn(state.position, posterior.data)), rel=1e-6)
        assert float(info.loss_at_center) == pytest.approx(float(posterior.loss_fn(jnp.zeros(1), posterior.data)))
        assert bool(info.is_finite) and 0 <= float(info.acceptance_rate) <= 1
        assert float(new_state.loss) == pytest.approx(float(posterior.loss_fn(new_state.position, posterior.data)), rel=1e-6)
        state = new_state


def test_non_finite_proposal_is_rejected():
    """A potential that is NaN beyond w = 1: MALA never moves there."""
    posterior = TemperedPosterior(
        loss_fn=lambda w, batch: jnp.where(w[0] > 1.0, jnp.nan, 0.5 * w[0] ** 2) * jnp.mean(batch),
        data=jnp.ones(2), nbeta=1.0, center=jnp.zeros(1))
    algorithm = mala(posterior, 0.5)

    def body(state, key):
        state, info = algorithm.step(key, state)
        return state, state.position[0]

    _, path = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.key(11), 500)))(
        algorithm.init(jnp.asarray([0.9])))
    assert bool(jnp.all(path <= 1.0)) and bool(jnp.all(jnp.isfinite(path)))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda p: mala(p, 0.0), "step_size"),
        (lambda p: mala(p, float("nan")), "step_size"),
        (lambda p: hmc(p, 0.1, 0), "num_integration_steps"),
        (lambda p: hmc(p, -0.1, 3), "step_size"),
        (lambda p: hmc(p, 0.1, 3, jnp.asarray([-1.0])), "inverse_mass_matrix"),
        (lambda p: hmc(p, 0.1, 3, jnp.ones(3)), "inverse_mass_matrix"),
        (lambda p: nuts(p, float("inf")), "step_size"),
        (lambda p: nuts(p, 0.1, max_num_doublings=0), "max_num_doublings"),
        (lambda p: window_adaptation(p, jax.random.key(0), jnp.zeros(1), 10, algorithm="mh"), "algorithm"),
        (lambda p: window_adaptation(p, jax.random.key(0), jnp.zeros(1), 10, algorithm="hmc"),
         "num_integration_steps"),
        (lambda p: window_adaptation(p, jax.random.key(0), jnp.full(1, jnp.nan), 10), "position"),
        (lambda p: numpyro_nuts_reference(p, jax.random.key(0), jnp.zeros(1), num_samples=0), "num_samples"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, name):
    with pytest.raises(ValueError, match=name):
        call(conjugate_posterior(fixed_data()))

"""The driver: determinism, chains and devices, burn-in and thinning, compilation, faults, bad input."""

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toy_models
from slt.run import NonFiniteError, sample, sample_jobs
from slt.samplers import (
    SAMPLERS,
    SamplingAlgorithm,
    TemperedPosterior,
    UnknownSamplerError,
    make_sampler,
    register_sampler,
    sgld,
)


def crossing_posterior(n=200, localization=1.0):
    model = toy_models.get("normal_crossing", powers=(1, 1))
    data = model.sample_data(jax.random.key(11), n)
    return TemperedPosterior.from_model(model, data, localization=localization)


@pytest.fixture(scope="module")
def crossing_sgld():
    posterior = crossing_posterior()
    return posterior, make_sampler("sgld", posterior, step_size=1e-3, batch_size=20)


# A tiny kernel defined here: a Gaussian random walk whose `step` counts its own traces.


class WalkState(NamedTuple):
    position: jax.Array
    count: jax.Array


class WalkInfo(NamedTuple):
    loss: jax.Array
    loss_at_center: jax.Array
    is_finite: jax.Array
    count: jax.Array


def random_walk(scale=0.1, bad_step=None, bad_marker=None):
    """w ← w + scale ξ; loss = |w|². With `bad_step`, the chain whose position[0] equals
    `bad_marker` (positions do not move when scale = 0) reports is_finite False at that step."""
    traces = {"step": 0, "init": 0}

    def init(position):
        traces["init"] += 1
        return WalkState(position, jnp.zeros((), jnp.int32))

    def step(key, state):
        traces["step"] += 1
        loss = jnp.sum(jnp.square(state.position))
        is_finite = jnp.isfinite(loss)
        if bad_step is not None:
            is_finite = is_finite & ~((state.count == bad_step) & (state.position[0] == bad_marker))
        new_position = state.position + scale * jax.random.normal(key, state.position.shape)
        info = WalkInfo(loss, jnp.zeros_like(loss), is_finite, state.count)
        return WalkState(new_position, state.count + 1), info

    return SamplingAlgorithm(init, step), traces


@contextlib.contextmanager
def count_compilations():
    """The names of the functions XLA compiles meanwhile (jitted functions and eager ops)."""
    events = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            events.append(kwargs.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def test_same_key_same_trace_and_other_key_differs(crossing_sgld):
    posterior, sampler = crossing_sgld
    run = dict(num_chains=3, num_steps=60, num_burnin=10, thinning=2, record_positions=True)
    first = sample(sampler, posterior.center, jax.random.key(0), **run)
    second = sample(sampler, posterior.center, jax.random.key(0), **run)
    other = sample(sampler, posterior.center, jax.random.key(1), **run)
    for a, b in ((first.loss, second.loss), (first.positions, second.positions),
                 (first.info["mala_acceptance"], second.info["mala_acceptance"])):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.loss, other.loss)
    assert first.loss.shape == first.loss_at_center.shape == (3, 25)
    assert first.positions.shape == (3, 25, 2)
    assert (first.sampler, first.nbeta, first.num_data) == ("sgld", posterior.nbeta, 200)
    assert first.hyperparameters == {"step_size": 1e-3, "batch_size": 20, "mala_diagnostic": True}
    np.testing.assert_array_equal(first.key_data, jax.random.key_data(jax.random.key(0)))


def test_chain_of_a_vmapped_run_equals_a_single_chain_run_with_its_key(crossing_sgld):
    posterior, sampler = crossing_sgld
    key, num_chains = jax.random.key(3), 4
    run = dict(num_steps=40, record_positions=True)
    together = sample(sampler, posterior.center, key, num_chains=num_chains, **run)
    chain_keys = jax.random.split(key, num_chains)
    for chain in (0, 2):
        alone = sample(sampler, posterior.center, chain_keys[chain:chain + 1], num_chains=1, **run)
        np.testing.assert_array_equal(alone.loss[0], together.loss[chain])
        np.testing.assert_array_equal(alone.positions[0], together.positions[chain])


def test_burnin_thinning_and_chunking_select_steps_of_the_same_run():
    walk, _ = random_walk()
    start, key = jnp.zeros(3), jax.random.key(5)
    full = sample(walk, start, key, num_chains=2, num_steps=60, record_positions=True)
    thinned = sample(walk, start, key, num_chains=2, num_steps=60, num_burnin=12, thinning=4,
                     record_positions=True, chunk_size=5)  # 12 draws: chunks of 5, 5, 2
    assert full.loss.shape == (2, 60) and thinned.loss.shape == (2, 12)
    assert thinned.positions.shape == (2, 12, 3)
    # Draw j is the state entering step num_burnin + (j + 1) thinning − 1, and info of that step.
    steps = 12 + 4 * np.arange(1, 13) - 1
    np.testing.assert_array_equal(thinned.info["count"], np.broadcast_to(steps, (2, 12)))
    np.testing.assert_array_equal(thinned.positions, full.positions[:, steps])
    np.testing.assert_array_equal(thinned.loss, full.loss[:, steps])


def test_initial_positions_per_chain_and_custom_record():
    walk, _ = random_walk(scale=0.0)
    starts = jnp.arange(6.0).reshape(3, 2)

    def record_first_coordinate(state, info):
        return {"first_coordinate": state.position[0]}

    trace = sample(walk, starts, jax.random.key(0), num_chains=3, num_steps=4,
                   initial_position_per_chain=True, record=record_first_coordinate)
    assert trace.loss is None and trace.loss_at_center is None
    np.testing.assert_array_equal(trace.info["first_coordinate"], np.repeat([[0.0], [2.0], [4.0]], 4, axis=1))
    with pytest.raises(ValueError, match="initial_position.*leading axis of num_chains = 4"):
        sample(walk, starts, jax.random.key(0), num_chains=4, num_steps=4, initial_position_per_chain=True)


def test_pytree_positions_and_progress_bar(capsys):
    walk_array, _ = random_walk()

    def step(key, state):
        new_state, info = walk_array.step(key, WalkState(state.position["w"], state.count))
        return WalkState({"w": new_state.position}, new_state.count), info

    walk = SamplingAlgorithm(lambda position: WalkState(position, jnp.zeros((), jnp.int32)), step)
    trace = sample(walk, {"w": jnp.ones(2)}, jax.random.key(0), num_chains=2, num_steps=30, num_burnin=10,
                   record_positions=True, progress=True, chunk_size=5)
    assert trace.positions["w"].shape == (2, 20, 2)
    assert "60/60 chain-steps" in capsys.readouterr().err  # 2 chains × 30 steps


def test_no_recompilation_per_call_chunk_step_or_chain():
    walk, traces = random_walk()
    start = jnp.zeros(2)
    run = dict(num_chains=4, num_burnin=20, thinning=2, chunk_size=10)
    sample(walk, start, jax.random.key(0), num_steps=60, **run)  # burn-in 1 chunk; draws: 2 chunks of 10
    traced_once = dict(traces)
    # Step is traced once for the burn-in phase and twice (incl. one abstract evaluation) for the
    # thinned sampling phase; init once. Not per step, chunk or chain.
    assert traced_once == {"init": 1, "step": 3}
    with count_compilations() as compilations:
        sample(walk, start, jax.random.key(1), num_steps=120, **run)  # 5 chunks of 10 draws now
        sample(walk, start, jax.random.key(2), num_steps=220, **run)  # 10 chunks
    assert traces == traced_once
    assert compilations == []


def test_one_compilation_for_full_chunks_and_one_for_a_shorter_last_chunk(crossing_sgld):
    posterior, _ = crossing_sgld
    sampler = make_sampler("sgld", posterior, step_size=1e-3, batch_size=17)  # a batch size no other test uses: cold cache
    with count_compilations() as compilations:
        sample(sampler, posterior.center, jax.random.key(0), num_chains=2, num_steps=70, chunk_size=20)
    # init, then chunks of 20, 20, 20 and 10 draws: two executables for the sampling phase.
    driver_compilations = [name for name in compilations if name in ("jit(_initialise)", "jit(_run_phase)")]
    assert driver_compilations == ["jit(_initialise)", "jit(_run_phase)", "jit(_run_phase)"], compilations
    with count_compilations() as compilations:
        sample(sampler, posterior.center, jax.random.key(1), num_chains=2, num_steps=170, chunk_size=20)
    assert compilations == []


def test_sgld_executable_is_reused_across_data_temperature_centre_and_step_size():
    """The posterior and ε are traced arguments: a new data set (same n), nβ, w* and ε reuse the
    compiled run; the numbers still follow the new values (nβ and ε are not baked in)."""
    model = toy_models.get("normal_crossing", powers=(1, 1))
    run = dict(num_chains=2, num_steps=40, num_burnin=10, thinning=3)

    def run_with(seed, nbeta, center_shift, step_size):
        data = model.sample_data(jax.random.key(seed), 300)
        posterior = TemperedPosterior(loss_fn=model.loss, data=data, nbeta=nbeta, center=model.w_star + center_shift,
                                      localization=0.5, prior=model.prior)
        sampler = make_sampler("sgld", posterior, step_size=step_size, batch_size=23)
        return sample(sampler, posterior.center, jax.random.key(0), **run)

    first = run_with(0, 100.0, 0.0, 1e-3)
    with count_compilations() as compilations:
        second = run_with(1, 250.0, 0.1, 3e-4)
    assert [name for name in compilations if name in ("jit(_initialise)", "jit(_run_phase)")] == []
    assert not np.allclose(first.loss, second.loss)
    assert second.nbeta == 250.0 and second.hyperparameters["step_size"] == 3e-4
    # The same values through a plain closure kernel give the same draws.
    data = model.sample_data(jax.random.key(1), 300)
    posterior = TemperedPosterior(loss_fn=model.loss, data=data, nbeta=250.0, center=model.w_star + 0.1,
                                  localization=0.5, prior=model.prior)
    closure = sgld(posterior, step_size=3e-4, batch_size=23)
    np.testing.assert_allclose(sample(closure, posterior.center, jax.random.key(0), **run).loss, second.loss,
                               rtol=1e-5)


class CountingState(NamedTuple):
    position: jax.Array
    recorded_steps: jax.Array
    unrecorded_steps: jax.Array


class CountingInfo(NamedTuple):
    loss: jax.Array
    is_finite: jax.Array


def test_only_recorded_steps_run_the_full_step_and_the_chain_is_unchanged():
    """Burn-in and the steps inside a thinning block use `unrecorded_step`; the last step of each
    block (the recorded one) uses `step`. For SGLD the two give the same chain: same draws as a
    kernel that has no `unrecorded_step` (MALA acceptance computed on every step)."""
    def counting(position):
        return CountingState(position, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def full(key, state):
        return state._replace(recorded_steps=state.recorded_steps + 1), CountingInfo(jnp.zeros(()), jnp.ones((), bool))

    def light(key, state):
        return state._replace(unrecorded_steps=state.unrecorded_steps + 1), CountingInfo(jnp.zeros(()), jnp.ones((), bool))

    def record_counts(state, info):
        return {"loss": info.loss, "recorded": state.recorded_steps, "unrecorded": state.unrecorded_steps}

    trace = sample(SamplingAlgorithm(counting, full, light), jnp.zeros(1), jax.random.key(0), num_chains=2,
                   num_steps=40, num_burnin=10, thinning=5, record=record_counts)
    # Draw j is recorded at step 10 + 5(j + 1) − 1, entering it after j full and 10 + 4(j + 1) light steps.
    draws = np.arange(6)
    np.testing.assert_array_equal(trace.info["recorded"][0], draws)
    np.testing.assert_array_equal(trace.info["unrecorded"][0], 10 + 4 * (draws + 1))

    posterior = crossing_posterior()
    algorithm = sgld(posterior, step_size=1e-3, batch_size=20)
    every_step = SamplingAlgorithm(algorithm.init, algorithm.step)
    run = dict(num_chains=2, num_steps=60, num_burnin=20, thinning=4, record_positions=True)
    light_run = sample(algorithm, posterior.center, jax.random.key(3), **run)
    full_run = sample(every_step, posterior.center, jax.random.key(3), **run)
    np.testing.assert_array_equal(light_run.positions, full_run.positions)
    np.testing.assert_array_equal(light_run.loss_at_center, full_run.loss_at_center)
    np.testing.assert_array_equal(light_run.info["mala_acceptance"], full_run.info["mala_acceptance"])


def test_nonfinite_step_is_named_with_chain_and_step():
    walk, _ = random_walk(scale=0.0, bad_step=17, bad_marker=2.0)
    starts = jnp.asarray([[0.0], [1.0], [2.0], [3.0]])
    with pytest.raises(NonFiniteError, match="in chain 2 at step 17") as error:
        sample(walk, starts, jax.random.key(0), num_chains=4, num_steps=40, num_burnin=5, thinning=5,
               initial_position_per_chain=True)
    assert (error.value.chain, error.value.step, error.value.chains) == (2, 17, (2,))
    # In burn-in too, and with chunks (the run stops at the chunk where it happened).
    with pytest.raises(NonFiniteError, match="in chain 2 at step 17"):
        sample(walk, starts, jax.random.key(0), num_chains=4, num_steps=40, num_burnin=30, chunk_size=2,
               initial_position_per_chain=True)


def test_nan_loss_of_a_real_model_names_the_first_chain_and_step():
    """A loss that is NaN beyond |w| > 1.5 with a step size that lets chains wander there; the
    reported (chain, step) is the first NaN of a run whose kernel does not report it."""
    model = toy_models.get("normal_crossing", powers=(1, 1))
    data = model.sample_data(jax.random.key(1), 100)

    def loss_fn(w, batch):
        return jnp.where(jnp.max(jnp.abs(w)) > 1.5, jnp.nan, model.loss(w, batch))

    posterior = TemperedPosterior(loss_fn, data, nbeta=1.0, center=jnp.zeros(2))
    kernel = sgld(posterior, step_size=0.05, batch_size=10, mala_diagnostic=False)
    run = dict(num_chains=5, num_steps=200)
    with pytest.raises(NonFiniteError) as error:
        sample(kernel, posterior.center, jax.random.key(4), **run)

    def blind_step(key, state):
        state, info = kernel.step(key, state)
        return state, info._replace(is_finite=jnp.asarray(True))

    blind = sample(SamplingAlgorithm(kernel.init, blind_step), posterior.center, jax.random.key(4), **run)
    nan_chains, nan_steps = np.nonzero(np.isnan(blind.loss))
    first_step = nan_steps.min()
    assert (error.value.step, error.value.chain) == (first_step, nan_chains[nan_steps == first_step].min())
    assert set(error.value.chains) == set(nan_chains.tolist())


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"num_chains": 0}, "num_chains must be an integer >= 1"),
        ({"num_chains": 2.0}, "num_chains must be an integer"),
        ({"num_steps": 0}, "num_steps must be an integer >= 1"),
        ({"thinning": 0}, "thinning must be an integer >= 1"),
        ({"num_burnin": 10}, "num_burnin = 10 must be < num_steps = 10"),
        ({"num_burnin": -1}, "num_burnin must be an integer >= 0"),
        ({"thinning": 3}, "not a multiple of thinning = 3"),
        ({"chunk_size": 0}, "chunk_size must be an integer >= 1"),
        ({"initial_position": jnp.asarray([0.0, jnp.nan])}, r"initial_position has non-finite entries"),
        ({"initial_position": {"a": jnp.ones(1), "b": jnp.asarray([jnp.inf])}}, r"non-finite entries at \['b'\]"),
        ({"key": 0}, "key must be one PRNG key"),
        ({"key": jax.random.split(jax.random.key(0), 3)}, "key must be one PRNG key .* num_chains = 2"),
        ({"record": "loss"}, "record must be callable"),
    ],
)
def test_bad_input_is_refused_before_compiling(arguments, message):
    walk, traces = random_walk()
    call = {"initial_position": jnp.zeros(2), "key": jax.random.key(0), "num_chains": 2, "num_steps": 10}
    call.update(arguments)
    with count_compilations() as compilations, pytest.raises(ValueError, match=message):
        sample(walk, call.pop("initial_position"), call.pop("key"), **call)
    assert traces == {"step": 0, "init": 0}
    assert compilations == []


def test_sampler_registry_refuses_unknown_names_and_bad_hyperparameters():
    posterior = crossing_posterior(n=20)
    with pytest.raises(UnknownSamplerError, match="unknown sampler 'sgdl'; known samplers: sgld"):
        make_sampler("sgdl", posterior, step_size=1e-3)
    with pytest.raises(ValueError, match="step_size must be a finite number > 0"):
        make_sampler("sgld", posterior, step_size=0.0)
    with pytest.raises(ValueError, match="sampler 'sgld': .*learning_rate.*accepted hyperparameters: step_size"):
        make_sampler("sgld", posterior, learning_rate=1e-3)
    with pytest.raises(ValueError, match="step_size"):
        make_sampler("sgld", posterior)


def test_registry_is_extensible():
    def walk_constructor(posterior, scale):
        return random_walk(scale)[0]

    register_sampler("test_walk", walk_constructor)
    try:
        sampler = make_sampler("test_walk", crossing_posterior(n=20), scale=0.5)
        assert (sampler.name, sampler.hyperparameters, sampler.num_data) == ("test_walk", {"scale": 0.5}, 20)
        with pytest.raises(ValueError, match="already registered"):
            register_sampler("test_walk", lambda posterior: None)
        trace = sample(sampler, jnp.zeros(1), jax.random.key(0), num_chains=1, num_steps=3)
        assert trace.sampler == "test_walk"
    finally:
        SAMPLERS.pop("test_walk")


_DEVICE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    sys.path.insert(0, {tests!r})
    from test_driver import crossing_posterior
    from slt.run import sample
    from slt.samplers import make_sampler
    posterior = crossing_posterior()
    sampler = make_sampler("sgld", posterior, step_size=1e-3, batch_size=20)
    trace = sample(sampler, posterior.center, jax.random.key(7), **{run!r})
    from test_driver import _crossing_jobs, PACKED_RUN
    from slt.run import sample_jobs
    packed = sample_jobs(*_crossing_jobs(), **PACKED_RUN)
    print(json.dumps({{"device_count": jax.device_count(), "devices": trace.num_devices,
                      "loss": trace.loss.tolist(), "positions": trace.positions.tolist(),
                      "packed_devices": [t.num_devices for t in packed],
                      "packed_positions": [t.positions.tolist() for t in packed]}}))
    """
)


# 6 chains: padded to 8 on 4 devices; 4 chunks of 4 draws (one compiled phase on each side).
DEVICE_RUN = dict(num_chains=6, num_steps=32, thinning=2, chunk_size=4, record_positions=True)


def run_with_devices(num_devices: int) -> dict:
    environment = dict(os.environ, JAX_PLATFORMS="cpu",
                       XLA_FLAGS=f"--xla_force_host_platform_device_count={num_devices}")
    script = _DEVICE_SCRIPT.format(tests=os.path.dirname(__file__), run=DEVICE_RUN)
    completed = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                               timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_results_do_not_change_with_the_number_of_devices():
    """4 simulated CPU devices (6 chains padded to 8) against this process's 1 device, bit for bit;
    the same for packed jobs (3 chains a job padded to 4)."""
    sharded = run_with_devices(4)
    assert sharded["device_count"] == sharded["devices"] == 4
    posterior = crossing_posterior()
    sampler = make_sampler("sgld", posterior, step_size=1e-3, batch_size=20)
    trace = sample(sampler, posterior.center, jax.random.key(7), **DEVICE_RUN)
    assert trace.num_devices == jax.device_count() == 1
    np.testing.assert_array_equal(np.asarray(sharded["loss"], trace.loss.dtype), trace.loss)
    np.testing.assert_array_equal(np.asarray(sharded["positions"], trace.positions.dtype), trace.positions)
    # packed jobs: 3 chains per job padded to 4, sharded over the chain axis
    assert sharded["packed_devices"] == [4, 4, 4]
    for positions, single in zip(sharded["packed_positions"], sample_jobs(*_crossing_jobs(), **PACKED_RUN)):
        np.testing.assert_array_equal(np.asarray(positions, single.positions.dtype), single.positions)


def test_kernel_and_record_contract_violations_are_named_at_trace_time():
    class BareInfo(NamedTuple):
        loss: jax.Array

    no_is_finite = SamplingAlgorithm(lambda position: WalkState(position, jnp.zeros((), jnp.int32)),
                                     lambda key, state: (state, BareInfo(jnp.sum(state.position))))
    with count_compilations() as compilations, pytest.raises(TypeError, match="has no field 'is_finite'"):
        sample(no_is_finite, jnp.zeros(2), jax.random.key(0), num_chains=2, num_steps=3)
    assert "jit(_run_phase)" not in compilations
    walk, _ = random_walk()
    with pytest.raises(TypeError, match="record.*must return a mapping"):
        sample(walk, jnp.zeros(2), jax.random.key(0), num_chains=2, num_steps=3, record=record_loss_only_as_array)


def record_loss_only_as_array(state, info):
    return info.loss


# --------------------------------------------------------------------------------------------
# Packed jobs: several posteriors of one model structure in one compiled call


def _crossing_jobs(step_sizes=(1e-3, 5e-4, 2e-3)):
    """Three jobs of the w1w2 crossing: other data, nβ, centre and step size each."""
    model = toy_models.get("normal_crossing", powers=(1, 1))
    samplers, starts, keys = [], [], []
    for job, step_size in enumerate(step_sizes):
        data = model.sample_data(jax.random.key(20 + job), 200)
        posterior = TemperedPosterior(loss_fn=model.loss, data=data, nbeta=50.0 * (job + 1),
                                      center=model.w_star + 0.01 * job, localization=1.0)
        samplers.append(make_sampler("sgld", posterior, step_size=step_size, batch_size=20))
        starts.append(jnp.broadcast_to(model.w_star, (3, 2)) + 0.05 * jnp.arange(3.0)[:, None])
        keys.append(jax.random.key(40 + job))
    return samplers, starts, keys


PACKED_RUN = dict(num_chains=3, num_steps=40, num_burnin=10, thinning=3, record_positions=True)


def test_final_positions_are_the_state_after_the_last_step():
    """A run's `final_positions` (what a continued run starts from) are the positions after its
    last step: in a run one step longer, the state entering that extra step (same step keys)."""
    walk, _ = random_walk()
    start, key = jnp.zeros(3), jax.random.key(5)
    short = sample(walk, start, key, num_chains=2, num_steps=20, num_burnin=8, thinning=4)
    longer = sample(walk, start, key, num_chains=2, num_steps=21, record_positions=True)
    assert short.final_positions.shape == (2, 3)
    np.testing.assert_array_equal(short.final_positions, longer.positions[:, 20])
    samplers, starts, keys = _crossing_jobs()
    for job, trace in enumerate(sample_jobs(samplers, starts, keys, **PACKED_RUN)):
        alone = sample(samplers[job], starts[job], keys[job], initial_position_per_chain=True, **PACKED_RUN)
        np.testing.assert_array_equal(trace.final_positions, alone.final_positions)


def test_packed_jobs_equal_their_own_runs_bit_for_bit():
    """Job j of `sample_jobs` is `sample(samplers[j], ...)`, whatever its pack mates (an
    elementwise model: the batching over jobs changes no rounding)."""
    samplers, starts, keys = _crossing_jobs()
    packed = sample_jobs(samplers, starts, keys, **PACKED_RUN)
    pair = sample_jobs(samplers[1:], starts[1:], keys[1:], **PACKED_RUN)
    for job, trace in enumerate(packed):
        alone = sample(samplers[job], starts[job], keys[job], initial_position_per_chain=True, **PACKED_RUN)
        np.testing.assert_array_equal(trace.loss, alone.loss)
        np.testing.assert_array_equal(trace.positions, alone.positions)
        assert trace.nbeta == alone.nbeta and trace.hyperparameters == alone.hyperparameters
    for trace, mate in zip(packed[1:], pair):
        np.testing.assert_array_equal(trace.loss, mate.loss)
    assert not np.array_equal(packed[0].loss, packed[1].loss)


def test_a_diverging_job_does_not_touch_its_pack_mates():
    samplers, starts, keys = _crossing_jobs(step_sizes=(1e-3, 1e6, 2e-3))
    packed = sample_jobs(samplers, starts, keys, **PACKED_RUN)
    assert isinstance(packed[1], NonFiniteError)
    with pytest.raises(NonFiniteError) as alone:
        sample(samplers[1], starts[1], keys[1], initial_position_per_chain=True, **PACKED_RUN)
    assert (packed[1].chain, packed[1].step) == (alone.value.chain, alone.value.step)
    for job in (0, 2):
        single = sample(samplers[job], starts[job], keys[job], initial_position_per_chain=True, **PACKED_RUN)
        np.testing.assert_array_equal(packed[job].loss, single.loss)


def test_packed_jobs_must_share_the_kernel_and_shapes():
    samplers, starts, keys = _crossing_jobs()
    model = toy_models.get("normal_crossing", powers=(1, 1))
    other_batch = make_sampler("sgld", samplers[0].operands[0], step_size=1e-3, batch_size=10)
    with pytest.raises(ValueError, match=r"samplers\[1\] has another kernel"):
        sample_jobs([samplers[0], other_batch], starts[:2], keys[:2], **PACKED_RUN)
    bigger = TemperedPosterior(loss_fn=model.loss, data=model.sample_data(jax.random.key(0), 300), nbeta=50.0,
                               center=model.w_star, localization=1.0)
    with pytest.raises(ValueError, match=r"samplers\[1\]'s posterior has other shapes"):
        sample_jobs([samplers[0], make_sampler("sgld", bigger, step_size=1e-3, batch_size=20)], starts[:2], keys[:2],
                    **PACKED_RUN)
    with pytest.raises(ValueError, match="one of each per job"):
        sample_jobs(samplers, starts[:2], keys, **PACKED_RUN)

"""The compiled part of the driver: per-chain scans, chain sharding, job batching, and the checks
and trace assembly around them (`slt.run._driver` documents the structure of a run)."""

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from math import ceil

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec
from jaxtyping import PyTree

from slt.run._diagnostics import diagnose
from slt.run._progress import advance_progress, expect_progress, open_bar, progress_bar
from slt.run._trace import Trace, package_versions
from slt.samplers._kernel import Sampler

CHAIN_AXIS = "chains"

# --------------------------------------------------------------------------------------------
# Errors and the record hook


class NonFiniteError(FloatingPointError):
    """A chain produced a non-finite loss or gradient; `chain` and `step` name the first one.

    `step` counts from 0 over the whole run, burn-in included. `chains` lists every chain that
    had gone bad by the time the run stopped.
    """

    def __init__(self, chain: int, step: int, chains: tuple[int, ...]):
        self.chain, self.step, self.chains = chain, step, chains
        super().__init__(
            f"non-finite loss or gradient (info.is_finite is False) in chain {chain} at step {step} "
            f"(steps count from 0, burn-in included; first occurrence, lowest chain at that step); "
            f"chains affected: {list(chains)}"
        )


def default_record(state, info) -> dict[str, jax.Array]:
    """`loss`, `loss_at_center` and every other scalar field of `info` except `is_finite`.

    (`is_finite` is checked by the driver on every step, recorded or not.)
    """
    fields = info._asdict() if hasattr(info, "_asdict") else dict(info)
    return {
        name: value
        for name, value in fields.items()
        if name != "is_finite" and jnp.ndim(value) == 0
    }


# --------------------------------------------------------------------------------------------
# Checks done before anything is compiled


def check_integer(name: str, value, minimum: int) -> int:
    """`value` as an int if it is an integer (not a bool) >= `minimum`; else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _is_key_array(key) -> bool:
    return isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def _chain_keys(key, num_chains: int) -> tuple[jax.Array, np.ndarray, str]:
    """Chain keys, plus the key's raw data and implementation name for the trace."""
    if _is_key_array(key):
        key_data = np.asarray(jax.random.key_data(key))
        key_impl = str(jax.random.key_impl(key))
        if key.shape == ():
            return jax.random.split(key, num_chains), key_data, key_impl
        if key.shape == (num_chains,):
            return key, key_data, key_impl
    elif isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32:
        key_data, key_impl = np.asarray(key), "raw_uint32"
        if key.shape == (2,):
            return jax.random.split(key, num_chains), key_data, key_impl
        if key.shape == (num_chains, 2):
            return jnp.asarray(key), key_data, key_impl
    raise ValueError(
        "key must be one PRNG key (jax.random.key(seed)) or an array of num_chains = "
        f"{num_chains} keys; got {type(key).__name__} with shape {getattr(key, 'shape', None)}"
    )


def _check_position(initial_position: PyTree, num_chains: int, per_chain: bool) -> None:
    leaves = jax.tree_util.tree_leaves(initial_position)
    if not leaves:
        raise ValueError("initial_position is an empty pytree")
    for path, leaf in jax.tree_util.tree_flatten_with_path(initial_position)[0]:
        where = jax.tree_util.keystr(path) or "(the array)"
        values = np.asarray(leaf)
        if not jnp.issubdtype(values.dtype, jnp.floating):
            raise ValueError(f"initial_position{jax.tree_util.keystr(path)} must be floating point, got {values.dtype}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"initial_position has non-finite entries at {where}")
        if per_chain and (values.ndim == 0 or values.shape[0] != num_chains):
            raise ValueError(
                f"initial_position{jax.tree_util.keystr(path)} has shape {values.shape}; with "
                f"initial_position_per_chain=True every leaf needs a leading axis of num_chains = {num_chains}"
            )


def _chunk_lengths(total: int, chunk: int) -> list[int]:
    return [chunk] * (total // chunk) + ([total % chunk] if total % chunk else [])


# --------------------------------------------------------------------------------------------
# The compiled part


def vmap_over_jobs(function: Callable, in_axes: tuple) -> Callable:
    """`jax.vmap(function, in_axes)` over a leading job axis (in_axes 0 or None per argument),
    except that one job is run unbatched (its axis squeezed, then restored): a job axis of
    size 1 compiles to the same program as a plain call, and XLA compiles the nested vmap much
    more slowly (the cold rounds of `benchmarks/batch_speed.py --compare-packing` take 1.7–2.3
    times as long packed)."""

    def over_jobs(*args):
        batched = [a for a, axis in zip(args, in_axes) if axis == 0]
        if jax.tree_util.tree_leaves(batched)[0].shape[0] != 1:
            return jax.vmap(function, in_axes=in_axes)(*args)
        squeezed = [a if axis is None else jax.tree_util.tree_map(lambda leaf: leaf[0], a)
                    for a, axis in zip(args, in_axes)]
        return jax.tree_util.tree_map(lambda leaf: leaf[None], function(*squeezed))

    return over_jobs


def stack_jobs(trees: Sequence[PyTree]) -> PyTree:
    """One pytree whose leaves stack the jobs' leaves on a new leading job axis."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack([jnp.asarray(leaf) for leaf in leaves]), *trees)


def _over_chains(function: Callable, mesh: Mesh | None, num_chain_arguments: int, jobs: bool = False) -> Callable:
    """vmap `function` over the leading axis of its first `num_chain_arguments` arguments
    (the rest are shared), and with a mesh shard that axis over the devices.

    With `jobs`, the chain arguments have a leading job axis before the chain axis and the
    LAST argument (the operands) a job axis: an outer vmap over jobs, the inner over chains
    (the job's operands shared by its chains); the chain axis is the one sharded."""

    def batched(*args):
        in_axes = (0,) * num_chain_arguments + (None,) * (len(args) - num_chain_arguments)
        over_chains = jax.vmap(function, in_axes=in_axes)
        if not jobs:
            return over_chains(*args)
        return vmap_over_jobs(over_chains, in_axes[:-1] + (0,))(*args)

    if mesh is None:
        return batched

    def sharded(*args):
        chains = PartitionSpec(None, CHAIN_AXIS) if jobs else PartitionSpec(CHAIN_AXIS)
        shared = PartitionSpec()
        in_specs = (chains,) * num_chain_arguments + (shared,) * (len(args) - num_chain_arguments)
        return jax.shard_map(batched, mesh=mesh, in_specs=in_specs, out_specs=chains, check_vma=False)(*args)

    return sharded


@partial(jax.jit, static_argnames=("kernel", "per_chain", "num_chains", "mesh", "jobs"))
def _initialise(positions, operands, *, kernel, per_chain, num_chains, mesh, jobs=False):
    if not per_chain:
        positions = jax.tree_util.tree_map(lambda leaf: jnp.broadcast_to(leaf, (num_chains, *jnp.shape(leaf))), positions)
    return _over_chains(lambda position, operands: kernel.init(operands, position), mesh, 1, jobs)(positions, operands)


def _run_one_chain(state, first_nonfinite, chain_key, start_step, *, step_fn, unrecorded_fn, record_fn, num_blocks,
                   block_length, recording, record_positions):
    """`num_blocks` blocks of `block_length` steps of one chain from global step `start_step`.

    Returns the final state, the first non-finite step so far (−1 if none) and, when
    `recording`, one record per block (the last step of the block). Every step but the recorded
    ones runs `unrecorded_fn` (the kernel's step without record-only diagnostics).
    """

    def advance(step, state, first_nonfinite, step_index):
        new_state, info = step(jax.random.fold_in(chain_key, step_index), state)
        if not hasattr(info, "is_finite"):
            raise TypeError(f"the kernel's info {type(info).__name__} has no field 'is_finite' (see slt.samplers.SamplingAlgorithm)")
        newly_bad = (first_nonfinite < 0) & ~jnp.asarray(info.is_finite, bool)
        return new_state, jnp.where(newly_bad, step_index, first_nonfinite), info

    def recorded(state, info):
        records = record_fn(state, info)
        if not isinstance(records, Mapping):
            raise TypeError(f"record(state, info) must return a mapping name -> array, got {type(records).__name__}")
        return {"records": dict(records), "positions": state.position if record_positions else None}

    def unrecorded_steps(state, first_nonfinite, steps):
        def body(carry, step_index):
            state, first_nonfinite, _ = advance(unrecorded_fn, *carry, step_index)
            return (state, first_nonfinite), None

        (state, first_nonfinite), _ = jax.lax.scan(body, (state, first_nonfinite), steps)
        return state, first_nonfinite

    if not recording:
        steps = start_step + jnp.arange(num_blocks * block_length, dtype=jnp.int32)
        state, first_nonfinite = unrecorded_steps(state, first_nonfinite, steps)
        return state, first_nonfinite, None

    def block(carry, first_step_of_block):
        state, first_nonfinite = carry
        if block_length > 1:
            steps = first_step_of_block + jnp.arange(block_length - 1, dtype=jnp.int32)
            state, first_nonfinite = unrecorded_steps(state, first_nonfinite, steps)
        new_state, first_nonfinite, info = advance(step_fn, state, first_nonfinite,
                                                   first_step_of_block + block_length - 1)
        return (new_state, first_nonfinite), recorded(state, info)

    block_starts = start_step + block_length * jnp.arange(num_blocks, dtype=jnp.int32)
    (state, first_nonfinite), records = jax.lax.scan(block, (state, first_nonfinite), block_starts)
    return state, first_nonfinite, records


@partial(
    jax.jit,
    static_argnames=("kernel", "record_fn", "num_blocks", "block_length", "recording", "record_positions", "mesh",
                     "jobs"),
)
def _run_phase(states, first_nonfinite, chain_keys, start_step, operands, *, kernel, record_fn, num_blocks,
               block_length, recording, record_positions, mesh, jobs=False):
    def one_chain(state, first_nonfinite, chain_key, start_step, operands):
        return _run_one_chain(
            state, first_nonfinite, chain_key, start_step, step_fn=partial(kernel.step, operands),
            unrecorded_fn=partial(kernel.unrecorded_step, operands), record_fn=record_fn,
            num_blocks=num_blocks, block_length=block_length, recording=recording, record_positions=record_positions,
        )

    return _over_chains(one_chain, mesh, 3, jobs)(states, first_nonfinite, chain_keys, start_step, operands)


def _chain_mesh() -> Mesh | None:
    devices = jax.local_devices()
    return None if len(devices) == 1 else Mesh(np.asarray(devices), (CHAIN_AXIS,))


def _pad_chains(tree, padded: int, axis: int = 0):
    """Repeat the last chain until the chain axis (`axis`) has `padded` entries."""
    def pad(leaf):
        missing = padded - leaf.shape[axis]
        if missing == 0:
            return leaf
        last = jax.lax.slice_in_dim(leaf, leaf.shape[axis] - 1, leaf.shape[axis], axis=axis)
        return jnp.concatenate([leaf, jnp.repeat(last, missing, axis=axis)], axis=axis)

    return jax.tree_util.tree_map(pad, tree)


def _raise_if_nonfinite(first_nonfinite: np.ndarray, num_chains: int) -> None:
    first_nonfinite = first_nonfinite[:num_chains]
    bad = np.flatnonzero(first_nonfinite >= 0)
    if bad.size:
        chain = int(bad[np.argmin(first_nonfinite[bad])])  # argmin takes the lowest chain on ties
        raise NonFiniteError(chain, int(first_nonfinite[chain]), tuple(int(c) for c in bad))


def _check_run_lengths(num_chains, num_steps, num_burnin, thinning, chunk_size):
    num_chains = check_integer("num_chains", num_chains, 1)
    num_steps = check_integer("num_steps", num_steps, 1)
    num_burnin = check_integer("num_burnin", num_burnin, 0)
    thinning = check_integer("thinning", thinning, 1)
    if num_burnin >= num_steps:
        raise ValueError(f"num_burnin = {num_burnin} must be < num_steps = {num_steps}")
    if (num_steps - num_burnin) % thinning:
        raise ValueError(
            f"num_steps − num_burnin = {num_steps - num_burnin} is not a multiple of thinning = {thinning}"
        )
    num_draws = (num_steps - num_burnin) // thinning
    if chunk_size is not None:
        chunk_size = check_integer("chunk_size", chunk_size, 1)
    return num_chains, num_steps, num_burnin, thinning, num_draws, chunk_size


CHUNKS_PER_PHASE = 10  # recorded-draw chunks while a bar is open (each reports when done; burn-in in chunks as long)


def _drive(states, first_nonfinite, chain_keys, operands, *, kernel, record, record_positions, mesh, jobs,
           num_chains, num_steps, num_burnin, num_draws, thinning, chunk_size, progress):
    """Burn-in, then the recorded draws, chunk by chunk; the draws stacked on the host (chain
    padding dropped), the first non-finite step per chain and the final positions. Without `jobs`
    a non-finite chain raises after its chunk (with a bar, once the next one is under way); with
    `jobs` the caller decides per job.

    `progress`: None feeds an open "chain-steps" bar (`slt.run.progress_bar`) if there is one;
    True also opens one on stderr when none is open; False neither. A fed bar hears after every
    chunk (`CHUNKS_PER_PHASE` per phase unless `chunk_size` is given); chunks do not change the
    draws (per-step keys depend on the global step index only)."""
    if progress and open_bar() is None:
        total = num_steps * int(np.size(first_nonfinite))
        with progress_bar("sampling", total, enabled=True):
            return _drive(states, first_nonfinite, chain_keys, operands, kernel=kernel, record=record,
                          record_positions=record_positions, mesh=mesh, jobs=jobs, num_chains=num_chains,
                          num_steps=num_steps, num_burnin=num_burnin, num_draws=num_draws, thinning=thinning,
                          chunk_size=chunk_size, progress=None)
    reporting = progress is not False and open_bar() is not None
    chains = int(np.size(first_nonfinite))  # chains (padded) × jobs
    if reporting:
        expect_progress(num_steps * chains)
        if chunk_size is None:
            chunk_size = max(1, ceil(num_draws / CHUNKS_PER_PHASE))

    phase = partial(_run_phase, operands=operands, kernel=kernel, record_fn=record, record_positions=record_positions,
                    mesh=mesh, jobs=jobs)
    unpad = (lambda leaf: np.asarray(leaf)[:, :num_chains]) if jobs else (lambda leaf: np.asarray(leaf)[:num_chains])
    check = (lambda first: None) if jobs else (lambda first: _raise_if_nonfinite(np.asarray(first), num_chains))
    draws = []

    def settle(first, chunk, steps):  # waits for a chunk: its check, its draws, its report
        check(first)
        if chunk is not None:
            draws.append(jax.tree_util.tree_map(unpad, chunk))
        if reporting:
            jax.block_until_ready(first)
            advance_progress(steps * chains)

    # with a bar, chunk k is settled after chunk k + 1 is dispatched, so the device never waits for the host
    pending = []
    step_index = 0
    burnin_chunk = num_burnin if chunk_size is None else chunk_size * thinning
    lengths = [(length, 1, False) for length in _chunk_lengths(num_burnin, max(burnin_chunk, 1))]
    lengths += [(blocks, thinning, True) for blocks in _chunk_lengths(num_draws, chunk_size or num_draws)]
    for num_blocks, block_length, recording in lengths:
        states, first_nonfinite, chunk = phase(states, first_nonfinite, chain_keys, np.int32(step_index),
                                               num_blocks=num_blocks, block_length=block_length, recording=recording)
        step_index += num_blocks * block_length
        pending.append((first_nonfinite, chunk if recording else None, num_blocks * block_length))
        while len(pending) > (1 if reporting else 0):
            settle(*pending.pop(0))
    while pending:
        settle(*pending.pop(0))
    chain_axis = 1 if jobs else 0
    stacked = jax.tree_util.tree_map(lambda *chunks: np.concatenate(chunks, axis=chain_axis + 1), *draws)
    return stacked, np.asarray(first_nonfinite), jax.tree_util.tree_map(unpad, states.position)


def _make_trace(stacked, metadata: Sampler | None, *, num_steps, num_burnin, thinning, key_data, key_impl,
                num_devices, config, final_positions=None) -> Trace:
    records = dict(stacked["records"])
    trace = Trace(
        loss=records.pop("loss", None),
        loss_at_center=records.pop("loss_at_center", None),
        info=records,
        positions=stacked["positions"],
        sampler=None if metadata is None else metadata.name,
        hyperparameters={} if metadata is None else dict(metadata.hyperparameters),
        nbeta=None if metadata is None else metadata.nbeta,
        num_data=None if metadata is None else metadata.num_data,
        num_steps=num_steps,
        num_burnin=num_burnin,
        thinning=thinning,
        key_data=key_data,
        key_impl=key_impl,
        num_devices=num_devices,
        config=dict(config or {}),
        versions=package_versions(),
        diagnostics=None,
        final_positions=final_positions,
    )
    return trace._replace(diagnostics=diagnose(trace))

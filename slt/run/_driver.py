"""The one driver: any kernel obeying the contract of `slt._kernel`, many chains at once.

    sampler = make_sampler("sgld", posterior, step_size=1e-4, batch_size=100)
    trace = sample(sampler, posterior.center, jax.random.key(0), num_chains=8, num_steps=2000,
                   num_burnin=500, thinning=5)

Structure of a run (`num_steps` = S steps in all, burn-in B, thinning t, D = (S − B) / t draws):

- Chain c runs with key k_c = `jax.random.split(key, num_chains)[c]` (or `key[c]` when `key`
  is already an array of `num_chains` keys), and step s of that chain (s = 0, ..., S − 1,
  burn-in included) uses `jax.random.fold_in(k_c, s)`. Per-step keys therefore depend only on
  the chain key and the step index: not on the chunking, the burn-in/thinning split, the number
  of chains run beside it, or the number of devices.
- Steps 0, ..., B − 1 are burn-in and are not recorded. Draw j (j = 0, ..., D − 1) is
  `record(state, info)` at step s_j = B + (j + 1) t − 1, the last step of its thinning block,
  where `state` is the state *entering* step s_j and `info` is what that step returned, so
  `info.loss` (evaluated at the entering position) and `state.position` belong together.
- Only recorded steps run the kernel's full `step`; burn-in and the t − 1 steps before each
  recorded one run its `unrecorded_step` when it has one (SGLD: no MALA acceptance, no loss at
  w*, so with thinning 10 the diagnostic costs a tenth of a gradient per step, not one). The
  chain is the same either way.
- The steps are a jitted `lax.scan` (blocks of t steps inside a scan over draws), `vmap`-ed
  over chains; with several local devices the chains are sharded over them with `shard_map`
  (one mesh axis, ``"chains"``), and `num_chains` is padded up to a multiple of the device count
  with copies of the last chain, which are dropped afterwards.
- A non-finite loss or gradient (`info.is_finite` False) is tracked inside the scan as the
  first bad step per chain; after each chunk the driver raises `NonFiniteError` naming the
  chain and the step of the first occurrence.

Packed jobs (`sample_jobs`): J runs of one traced kernel (same sampler, loss, prior, static
settings and shapes; any data, nβ, w*, γ, ε) in one compiled call per chunk, `vmap` over jobs
of `vmap` over chains, the chains sharded as above. Job j's chains are `sample`'s for its
sampler, start and key (bitwise for elementwise models; batched matrix products may round
differently in the last bit). A job with a non-finite step gets its `NonFiniteError` in its
place, its pack mates run on. One job is run unbatched, so it compiles like `sample`.

Compilation: one executable per phase (burn-in, sampling) and chunk length. Nothing is traced
per step, per chunk or per chain. A `Sampler` from `make_sampler` for a kernel in
`TRACED_OPERAND_SAMPLERS` (SGLD and the stochastic-gradient kernels) is compiled with its
posterior (data, nβ, w*, γ) and its float hyperparameters (ε, ...) as traced arguments: any
later run with the same loss function, prior, static settings (batch size, ...), shapes and
chunk length reuses the executable, whatever the data, temperature or step size. Other
kernels are closures: repeated calls with the same kernel object (`algorithm.step`) reuse the
cache, a new kernel object (e.g. calling `sgld(...)` directly again) compiles afresh. A new
`lambda` as `record` always compiles afresh.
"""

from dataclasses import dataclass
from functools import partial
import inspect
from math import ceil
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PRNGKeyArray, PyTree
from tqdm.auto import tqdm

from slt._diagnostics import diagnose
from slt._kernel import SamplingAlgorithm, sgld
from slt._kernels_exact import hmc, mala, nuts
from slt._kernels_sg import rmsprop_sgld, sghmc, sgnht
from slt._posterior import Params, TemperedPosterior
from slt._trace import Trace, package_versions

CHAIN_AXIS = "chains"

# --------------------------------------------------------------------------------------------
# The sampler registry


class Sampler(NamedTuple):
    """A kernel with the metadata a trace records: `init` and `step` as in `SamplingAlgorithm`.

    `sample` uses only `init` and `step`; the other fields are copied into the `Trace`.
    """

    init: Callable[[Params], Any]
    step: Callable[[PRNGKeyArray, Any], tuple[Any, Any]]
    name: str
    hyperparameters: Mapping[str, Any]
    nbeta: float
    num_data: int
    traced: "TracedKernel | None" = None
    operands: Any = None  # (posterior, float hyperparameters): the traced arguments of `traced`
    unrecorded_step: Callable[[PRNGKeyArray, Any], tuple[Any, Any]] | None = None


@dataclass(frozen=True)
class TracedKernel:
    """A kernel rebuilt inside the compiled function from traced operands.

    Hashable and equal for equal (constructor, static hyperparameters), so `jax.jit` reuses
    one executable across posteriors and float hyperparameters of the same shapes.
    """

    constructor: Callable[..., SamplingAlgorithm]
    static: tuple[tuple[str, Any], ...]
    traced_names: tuple[str, ...]

    def build(self, operands) -> SamplingAlgorithm:
        posterior, values = operands
        return self.constructor(posterior, **dict(self.static), **dict(zip(self.traced_names, values)))

    def init(self, operands, position):
        return self.build(operands).init(position)

    def step(self, operands, key, state):
        return self.build(operands).step(key, state)

    def unrecorded_step(self, operands, key, state):
        algorithm = self.build(operands)
        return (getattr(algorithm, "unrecorded_step", None) or algorithm.step)(key, state)


@dataclass(frozen=True, eq=False)
class _ClosureKernel:
    """A closure kernel in the `TracedKernel` calling shape (no operands); equal when its
    `step` and `init` are the same objects."""

    init_fn: Callable
    step_fn: Callable
    unrecorded_fn: Callable | None = None

    def __eq__(self, other):
        return (isinstance(other, _ClosureKernel) and other.init_fn is self.init_fn and other.step_fn is self.step_fn
                and other.unrecorded_fn is self.unrecorded_fn)

    def __hash__(self):
        return hash((id(self.init_fn), id(self.step_fn), id(self.unrecorded_fn)))

    def init(self, operands, position):
        return self.init_fn(position)

    def step(self, operands, key, state):
        return self.step_fn(key, state)

    def unrecorded_step(self, operands, key, state):
        return (self.unrecorded_fn or self.step_fn)(key, state)


class UnknownSamplerError(ValueError):
    """No sampler of that name in the registry; the message lists the known names."""


SAMPLERS: dict[str, Callable[..., SamplingAlgorithm]] = {
    "sgld": sgld,
    "rmsprop_sgld": rmsprop_sgld,
    "sghmc": sghmc,
    "sgnht": sgnht,
    "mala": mala,
    "hmc": hmc,
    "nuts": nuts,
}
_BUILTIN_SAMPLERS = dict(SAMPLERS)
"""Sampler name -> constructor `constructor(posterior, **hyperparameters) -> SamplingAlgorithm`."""

TRACED_OPERAND_SAMPLERS = {"sgld", "rmsprop_sgld", "sghmc", "sgnht"}
"""Kernels compiled with the posterior and float hyperparameters as traced arguments (their
constructors accept tracers for those and are checked concretely by `make_sampler` first)."""


def register_sampler(name: str, constructor: Callable[..., SamplingAlgorithm], *, replace: bool = False) -> None:
    """Add `constructor(posterior, **hyperparameters) -> SamplingAlgorithm` under `name`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"sampler name must be a non-empty string, got {name!r}")
    if name in SAMPLERS and not replace and SAMPLERS[name] is not constructor:
        raise ValueError(f"a sampler named {name!r} is already registered; pass replace=True to replace it")
    SAMPLERS[name] = constructor


def sampler_names() -> tuple[str, ...]:
    return tuple(SAMPLERS)


def make_sampler(name: str, posterior: TemperedPosterior, **hyperparameters) -> Sampler:
    """Build the registered sampler `name` on `posterior`: `make_sampler("sgld", posterior, step_size=1e-4)`.

    Raises `UnknownSamplerError` for an unknown name and `ValueError` naming the argument for an
    unknown or missing hyperparameter, before anything is compiled; the constructor itself
    checks values (e.g. `step_size` > 0). The recorded hyperparameters include the
    constructor's defaults.
    """
    if name not in SAMPLERS:
        raise UnknownSamplerError(f"unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}")
    constructor = SAMPLERS[name]
    signature = inspect.signature(constructor)
    accepted = [p for p in list(signature.parameters)[1:]]
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        raise ValueError(
            f"sampler {name!r}: unknown hyperparameter {unknown[0]!r}; accepted hyperparameters: {', '.join(accepted)}"
        )
    try:
        bound = signature.bind(posterior, **hyperparameters)
    except TypeError as error:
        raise ValueError(f"sampler {name!r}: {error}; accepted hyperparameters: {', '.join(accepted)}") from None
    bound.apply_defaults()
    recorded = dict(list(bound.arguments.items())[1:])
    algorithm = constructor(posterior, **hyperparameters)
    traced = operands = None
    if name in TRACED_OPERAND_SAMPLERS and constructor is _BUILTIN_SAMPLERS.get(name):
        traced_names = tuple(k for k, v in recorded.items() if isinstance(v, float))
        static = tuple((k, v) for k, v in recorded.items() if k not in traced_names)
        try:
            hash(static)
        except TypeError:  # an unhashable setting: keep the closure
            pass
        else:
            traced = TracedKernel(constructor, static, traced_names)
            operands = (posterior, tuple(recorded[k] for k in traced_names))
    return Sampler(algorithm.init, algorithm.step, name, recorded, float(posterior.nbeta), int(posterior.num_data),
                   traced, operands, getattr(algorithm, "unrecorded_step", None))


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


def _check_integer(name: str, value, minimum: int) -> int:
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
            raise TypeError(f"the kernel's info {type(info).__name__} has no field 'is_finite' (see slt._kernel)")
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


# --------------------------------------------------------------------------------------------
# The driver


def sample(
    algorithm: SamplingAlgorithm | Sampler,
    initial_position: Params,
    key: PRNGKeyArray,
    *,
    num_chains: int,
    num_steps: int,
    num_burnin: int = 0,
    thinning: int = 1,
    record: Callable[[Any, Any], Mapping[str, jax.Array]] = default_record,
    record_positions: bool = False,
    initial_position_per_chain: bool = False,
    progress: bool = False,
    chunk_size: int | None = None,
    config: Mapping[str, Any] | None = None,
) -> Trace:
    """Run `num_chains` chains of `algorithm` for `num_steps` steps each and return the `Trace`.

    Parameters
    ----------
    algorithm : a `SamplingAlgorithm(init, step)` obeying the kernel contract of `slt._kernel`,
        or a `Sampler` from `make_sampler` (whose name, hyperparameters, nβ and n go into the
        trace).
    initial_position : the start w_0, one parameter pytree shared by every chain, or, with
        `initial_position_per_chain=True`, a pytree whose leaves have a leading chain axis.
    key : one PRNG key, split into the chain keys `jax.random.split(key, num_chains)`, or an
        array of `num_chains` keys used as the chain keys (chain c of a run equals a one-chain
        run with `key=chain_keys[c:c + 1]`).
    num_chains, num_steps : chains and steps per chain (burn-in included), each >= 1.
    num_burnin : 0 <= B < num_steps steps run first and not recorded.
    thinning : t >= 1; one draw per t steps. `num_steps − num_burnin` must be a multiple of t,
        giving D = (num_steps − num_burnin) / t draws per chain.
    record : `record(state, info) -> {name: array}`, what each draw keeps. `loss` and
        `loss_at_center` become `Trace.loss` / `Trace.loss_at_center`, the rest `Trace.info`.
        Pass a module-level function: a new `lambda` per call compiles again.
    record_positions : also keep `state.position` per draw (memory: D × d per chain).
    progress : show a tqdm bar updated once per chunk.
    chunk_size : draws per compiled chunk (burn-in runs in chunks of chunk_size × t steps). None:
        one chunk, or about 20 chunks when `progress` is on. A shorter last chunk compiles once
        more.
    config : free-form JSON-serialisable settings stored with the trace (model, n, seed, ...).

    Returns
    -------
    Trace : arrays of shape [chains, draws, ...] on the host, the run's metadata, and
        `diagnostics` (see `slt._diagnostics.diagnose`).

    Raises
    ------
    ValueError : bad arguments, before anything is compiled, naming the argument.
    NonFiniteError : a chain met a non-finite loss or gradient; names the chain and the step.
    """
    num_chains, num_steps, num_burnin, thinning, num_draws, chunk_size = _check_run_lengths(
        num_chains, num_steps, num_burnin, thinning, chunk_size, progress)
    if not callable(getattr(algorithm, "init", None)) or not callable(getattr(algorithm, "step", None)):
        raise ValueError("algorithm must have callable init and step (a SamplingAlgorithm or a Sampler)")
    if not callable(record):
        raise ValueError(f"record must be callable, got {record!r}")
    _check_position(initial_position, num_chains, initial_position_per_chain)
    chain_keys, key_data, key_impl = _chain_keys(key, num_chains)

    mesh = _chain_mesh()
    num_devices = 1 if mesh is None else mesh.size
    padded = ceil(num_chains / num_devices) * num_devices
    chain_keys = _pad_chains(chain_keys, padded)
    positions = jax.tree_util.tree_map(jnp.asarray, initial_position)
    if initial_position_per_chain:
        positions = _pad_chains(positions, padded)
    first_nonfinite = jnp.full((padded,), -1, dtype=jnp.int32)
    if mesh is not None:
        sharding = NamedSharding(mesh, PartitionSpec(CHAIN_AXIS))
        chain_keys, first_nonfinite = jax.device_put((chain_keys, first_nonfinite), sharding)
        if initial_position_per_chain:
            positions = jax.device_put(positions, sharding)

    if isinstance(algorithm, Sampler) and algorithm.traced is not None:
        kernel, operands = algorithm.traced, algorithm.operands
    else:
        kernel = _ClosureKernel(algorithm.init, algorithm.step, getattr(algorithm, "unrecorded_step", None))
        operands = None
    states = _initialise(positions, operands, kernel=kernel, per_chain=initial_position_per_chain,
                         num_chains=padded, mesh=mesh)
    stacked, _, final_positions = _drive(
        states, first_nonfinite, chain_keys, operands, kernel=kernel, record=record, record_positions=record_positions,
        mesh=mesh, jobs=False, num_chains=num_chains, num_steps=num_steps, num_burnin=num_burnin, num_draws=num_draws,
        thinning=thinning, chunk_size=chunk_size, progress=progress)
    metadata = algorithm if isinstance(algorithm, Sampler) else None
    return _make_trace(stacked, metadata, num_steps=num_steps, num_burnin=num_burnin, thinning=thinning,
                       key_data=key_data, key_impl=key_impl, num_devices=num_devices, config=config,
                       final_positions=final_positions)


def sample_jobs(
    samplers: Sequence[Sampler],
    initial_positions: Sequence[Params],
    keys: Sequence[PRNGKeyArray],
    *,
    num_chains: int,
    num_steps: int,
    num_burnin: int = 0,
    thinning: int = 1,
    record: Callable[[Any, Any], Mapping[str, jax.Array]] = default_record,
    record_positions: bool = False,
    progress: bool = False,
    chunk_size: int | None = None,
    configs: Sequence[Mapping[str, Any]] | None = None,
) -> list["Trace | NonFiniteError"]:
    """Several runs of one compiled kernel in one call: job j is `sample(samplers[j],
    initial_positions[j], keys[j], initial_position_per_chain=True, ...)`, packed.

    The jobs differ in what `make_sampler` traces (data, nβ, w*, γ, ε, ...); they must share the
    kernel (same sampler, loss function, prior and static settings) and the operands' shapes.
    The compiled call is `vmap` over jobs of `vmap` over chains (chains sharded over local
    devices as in `sample`), so J small jobs cost one dispatch per chunk instead of J: what
    a GPU needs when each job alone is too small to fill it. Job j's chains are the same as
    `sample`'s (the per-step keys depend only on the job's chain keys and the step index).

    Returns one `Trace` per job, or, for a job whose chains met a non-finite loss or gradient,
    the `NonFiniteError` `sample` would have raised (the other jobs are unaffected: a job's
    chains never see another job's numbers). Memory: J times one job's.
    """
    num_chains, num_steps, num_burnin, thinning, num_draws, chunk_size = _check_run_lengths(
        num_chains, num_steps, num_burnin, thinning, chunk_size, progress)
    samplers = list(samplers)
    if not samplers:
        raise ValueError("sample_jobs needs at least one sampler")
    if len(initial_positions) != len(samplers) or len(keys) != len(samplers):
        raise ValueError(f"got {len(samplers)} samplers, {len(initial_positions)} initial positions and "
                         f"{len(keys)} keys; give one of each per job")
    if configs is not None and len(configs) != len(samplers):
        raise ValueError(f"got {len(configs)} configs for {len(samplers)} jobs")
    kernel = samplers[0].traced if isinstance(samplers[0], Sampler) else None
    if kernel is None:
        raise ValueError("sample_jobs needs Samplers from make_sampler with a traced kernel "
                         f"(one of {sorted(TRACED_OPERAND_SAMPLERS)})")
    structure = jax.tree_util.tree_structure(samplers[0].operands)
    shapes = [jnp.shape(leaf) for leaf in jax.tree_util.tree_leaves(samplers[0].operands)]
    for index, sampler in enumerate(samplers[1:], 1):
        if not isinstance(sampler, Sampler) or sampler.traced != kernel:
            raise ValueError(f"samplers[{index}] has another kernel than samplers[0] (sampler, loss, prior and "
                             "static hyperparameters must match to share one compiled call)")
        if (jax.tree_util.tree_structure(sampler.operands) != structure
                or [jnp.shape(leaf) for leaf in jax.tree_util.tree_leaves(sampler.operands)] != shapes):
            raise ValueError(f"samplers[{index}]'s posterior has other shapes or structure than samplers[0]'s "
                             "(loss function, prior, data size or parameter shapes)")
    if not callable(record):
        raise ValueError(f"record must be callable, got {record!r}")
    for position in initial_positions:
        _check_position(position, num_chains, True)
    chain_keys, key_records = [], []
    for key in keys:
        job_keys, key_data, key_impl = _chain_keys(key, num_chains)
        chain_keys.append(job_keys)
        key_records.append((key_data, key_impl))

    mesh = _chain_mesh()
    num_devices = 1 if mesh is None else mesh.size
    padded = ceil(num_chains / num_devices) * num_devices
    chain_keys = _pad_chains(jnp.stack(chain_keys), padded, axis=1)
    positions = _pad_chains(stack_jobs(initial_positions), padded, axis=1)
    operands = stack_jobs([sampler.operands for sampler in samplers])
    first_nonfinite = jnp.full((len(samplers), padded), -1, dtype=jnp.int32)
    if mesh is not None:
        sharding = NamedSharding(mesh, PartitionSpec(None, CHAIN_AXIS))
        chain_keys, first_nonfinite, positions = jax.device_put((chain_keys, first_nonfinite, positions), sharding)
    states = _initialise(positions, operands, kernel=kernel, per_chain=True, num_chains=padded, mesh=mesh, jobs=True)
    stacked, first_nonfinite, final_positions = _drive(
        states, first_nonfinite, chain_keys, operands, kernel=kernel, record=record, record_positions=record_positions,
        mesh=mesh, jobs=True, num_chains=num_chains, num_steps=num_steps, num_burnin=num_burnin, num_draws=num_draws,
        thinning=thinning, chunk_size=chunk_size, progress=progress)
    results = []
    for job, sampler in enumerate(samplers):
        try:
            _raise_if_nonfinite(first_nonfinite[job], num_chains)
        except NonFiniteError as error:
            results.append(error)
            continue
        key_data, key_impl = key_records[job]
        results.append(_make_trace(jax.tree_util.tree_map(lambda leaf: leaf[job], stacked), sampler,
                                   num_steps=num_steps, num_burnin=num_burnin, thinning=thinning, key_data=key_data,
                                   key_impl=key_impl, num_devices=num_devices,
                                   config=None if configs is None else configs[job],
                                   final_positions=jax.tree_util.tree_map(lambda leaf: leaf[job], final_positions)))
    return results


def _check_run_lengths(num_chains, num_steps, num_burnin, thinning, chunk_size, progress):
    num_chains = _check_integer("num_chains", num_chains, 1)
    num_steps = _check_integer("num_steps", num_steps, 1)
    num_burnin = _check_integer("num_burnin", num_burnin, 0)
    thinning = _check_integer("thinning", thinning, 1)
    if num_burnin >= num_steps:
        raise ValueError(f"num_burnin = {num_burnin} must be < num_steps = {num_steps}")
    if (num_steps - num_burnin) % thinning:
        raise ValueError(
            f"num_steps − num_burnin = {num_steps - num_burnin} is not a multiple of thinning = {thinning}"
        )
    num_draws = (num_steps - num_burnin) // thinning
    if chunk_size is not None:
        chunk_size = _check_integer("chunk_size", chunk_size, 1)
    elif progress:
        chunk_size = max(1, ceil(num_draws / 20))
    return num_chains, num_steps, num_burnin, thinning, num_draws, chunk_size


def _drive(states, first_nonfinite, chain_keys, operands, *, kernel, record, record_positions, mesh, jobs,
           num_chains, num_steps, num_burnin, num_draws, thinning, chunk_size, progress):
    """Burn-in, then the recorded draws, chunk by chunk; the draws stacked on the host (chain
    padding dropped), the first non-finite step per chain and the final positions. Without `jobs`
    a non-finite chain raises after its chunk; with `jobs` the caller decides per job."""
    phase = partial(_run_phase, operands=operands, kernel=kernel, record_fn=record, record_positions=record_positions,
                    mesh=mesh, jobs=jobs)
    unpad = (lambda leaf: np.asarray(leaf)[:, :num_chains]) if jobs else (lambda leaf: np.asarray(leaf)[:num_chains])
    check = (lambda first: None) if jobs else (lambda first: _raise_if_nonfinite(np.asarray(first), num_chains))
    draws = []
    step_index = 0
    with tqdm(total=num_steps, unit="step", disable=not progress, desc="sampling") as bar:
        burnin_chunk = num_burnin if chunk_size is None else chunk_size * thinning
        for length in _chunk_lengths(num_burnin, max(burnin_chunk, 1)):
            states, first_nonfinite, _ = phase(states, first_nonfinite, chain_keys, np.int32(step_index),
                                               num_blocks=length, block_length=1, recording=False)
            check(first_nonfinite)
            step_index += length
            bar.update(length)
        for blocks in _chunk_lengths(num_draws, chunk_size or num_draws):
            states, first_nonfinite, chunk = phase(states, first_nonfinite, chain_keys, np.int32(step_index),
                                                   num_blocks=blocks, block_length=thinning, recording=True)
            check(first_nonfinite)
            draws.append(jax.tree_util.tree_map(unpad, chunk))
            step_index += blocks * thinning
            bar.update(blocks * thinning)
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

"""The one driver: any kernel obeying the contract of `slt.samplers._kernel`, many chains at once.

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

from collections.abc import Callable, Mapping, Sequence
from math import ceil
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import PRNGKeyArray

from slt.run._engine import (
    CHAIN_AXIS,
    NonFiniteError,
    _chain_keys,
    _chain_mesh,
    _check_position,
    _check_run_lengths,
    _drive,
    _initialise,
    _make_trace,
    _pad_chains,
    _raise_if_nonfinite,
    default_record,
    stack_jobs,
    vmap_over_jobs,
)
from slt.run._trace import Trace
from slt.samplers._kernel import ClosureKernel, Sampler, SamplingAlgorithm
from slt.samplers._posterior import Params

__all__ = ["CHAIN_AXIS", "NonFiniteError", "default_record", "sample", "sample_jobs", "stack_jobs", "vmap_over_jobs"]

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
    progress: bool | None = None,
    chunk_size: int | None = None,
    config: Mapping[str, Any] | None = None,
) -> Trace:
    """Run `num_chains` chains of `algorithm` for `num_steps` steps each and return the `Trace`.

    Parameters
    ----------
    algorithm : a `SamplingAlgorithm(init, step)` obeying the kernel contract of `slt.samplers._kernel`,
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
    progress : None (default) feeds an open "chain-steps" bar (`slt.run.progress_bar`), if any,
        after each compiled chunk; True also opens one on stderr (chains × steps) when none is
        open; False neither.
    chunk_size : draws per compiled chunk (burn-in runs in chunks of chunk_size × t steps). None:
        one chunk, or about 10 while a bar is fed. A shorter last chunk compiles once more. The
        draws do not depend on it.
    config : free-form JSON-serialisable settings stored with the trace (model, n, seed, ...).

    Returns
    -------
    Trace : arrays of shape [chains, draws, ...] on the host, the run's metadata, and
        `diagnostics` (see `slt.run._diagnostics.diagnose`).

    Raises
    ------
    ValueError : bad arguments, before anything is compiled, naming the argument.
    NonFiniteError : a chain met a non-finite loss or gradient; names the chain and the step.
    """
    num_chains, num_steps, num_burnin, thinning, num_draws, chunk_size = _check_run_lengths(
        num_chains, num_steps, num_burnin, thinning, chunk_size)
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
        kernel = ClosureKernel(algorithm.init, algorithm.step, getattr(algorithm, "unrecorded_step", None))
        operands = None
    states = _initialise(positions, operands, kernel=kernel, per_chain=initial_position_per_chain,
                         num_chains=padded, mesh=mesh)
    stacked, _, final_positions = _drive(
        states, first_nonfinite, chain_keys, operands, kernel=kernel, record=record, record_positions=record_positions,
        mesh=mesh, jobs=False, num_chains=num_chains, num_steps=num_steps, num_burnin=num_burnin, num_draws=num_draws,
        thinning=thinning, chunk_size=chunk_size, progress=progress)
    metadata = algorithm if isinstance(algorithm, Sampler) else _kernel_metadata(algorithm)
    return _make_trace(stacked, metadata, num_steps=num_steps, num_burnin=num_burnin, thinning=thinning,
                       key_data=key_data, key_impl=key_impl, num_devices=num_devices, config=config,
                       final_positions=final_positions)


def _kernel_metadata(algorithm) -> "Sampler | None":
    """A bare kernel's own metadata (`SamplingAlgorithm.metadata`, e.g. `slt.sgld`'s) in the form
    `_make_trace` reads, with concrete numbers; None where it has none or holds traced values."""
    metadata = getattr(algorithm, "metadata", None)
    if not metadata:
        return None
    try:
        hyperparameters = {name: value if value is None or isinstance(value, (bool, str)) else float(value)
                           for name, value in dict(metadata.get("hyperparameters", {})).items()}
        nbeta = None if metadata.get("nbeta") is None else float(metadata["nbeta"])
        num_data = None if metadata.get("num_data") is None else int(metadata["num_data"])
    except (TypeError, jax.errors.ConcretizationTypeError):
        return None
    return Sampler(algorithm.init, algorithm.step, metadata.get("name"), hyperparameters, nbeta, num_data)


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
    progress: bool | None = None,
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
        num_chains, num_steps, num_burnin, thinning, chunk_size)
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
                         "(SGLD and the stochastic-gradient kernels)")
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

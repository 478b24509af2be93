"""Batch jobs: a TOML sweep spec expanded into jobs, each one `slt.estimate` call, run locally or on Ray.

    jobs = load_spec("sweep.toml")                       # validated, expanded, ids assigned
    summary = run_batch(jobs, "runs/sweep")               # runs/sweep/jobs/<id>.json, results.csv
    summary = run_batch(jobs, "runs/sweep", resume=True)  # after a crash: only the missing jobs

The spec
--------
A TOML file (read with the standard library's `tomllib`) with three top-level keys:

``description`` (optional string), ``defaults`` (optional table: the keys of a job except
``model``, ``user_model`` and ``grid``, applied to every job; ``sampler`` tables merge key by
key) and ``jobs`` (a non-empty array of tables). A job has

- ``model`` = a registry family (`toy_models.names()`) with ``params`` = its parameters
  (`{ d = 1 }`, `{ powers = [1, 2] }`), or ``user_model`` = ``"package.module:function"``, a
  function called as ``function(**params)`` that returns a `toy_models.ToyModel` (a
  `toy_models.UserModel` is passed on to `slt.estimate` as well);
- ``method`` = ``"llc"`` (default), ``"wbic"``, ``"rlct"``, ... : a method `slt.estimate` implements;
- ``sampler`` = a table of `slt.estimate.EstimateSettings` fields (`SAMPLER_FIELDS`): ``n``,
  ``num_chains``, ``num_draws``, ``thinning``, ``nbeta``, ``nbetas``, ``localization``,
  ``batch_size`` (an integer or ``"full"``), ``step_size`` (omit to calibrate),
  ``target_acceptance``, ``bias_tolerance``, ``pilot_steps``, ``exact``; omitted ones take
  their defaults. With the method they are checked as one `EstimateSettings` (the check
  `slt.estimate` runs), so a spec `slt.estimate` would refuse is refused here, before any job;
- ``seeds`` = a non-empty list of distinct integers >= 0 (required: there is no default seed);
- ``device`` = ``"any"`` (default: JAX's default backend), ``"cpu"`` or ``"gpu"``;
- ``grid`` = lists of values for ``method``, ``params.<name>`` and ``sampler.<name>``, written
  with TOML dotted keys (``grid.sampler.nbeta = [100, 1000]``).

A job entry expands into the cartesian product of its grid lists and its seeds: one entry with
grid lists of sizes g_1, ..., g_k and s seeds gives g_1 ⋯ g_k · s jobs (seeds vary fastest).
Every value is checked before anything runs; an error names the field, e.g.
``jobs[2].sampler.num_chains: must be an integer >= 1, got 0`` (a grid value:
``jobs[1].grid.sampler.nbeta[0]: ...``). Unknown keys are refused.

Each job's resolved config is a JSON object with every setting explicit (the family's default
parameters, `slt.estimate`'s defaults, the llc temperature nβ = min(1000, n / log n) when not
given, the rlct temperatures, ``batch_size = "full"`` when it is >= n), and its id is

    id = sha256(canonical JSON of the resolved config, seed included)[:16],

so the same job written two ways has one id, and changing any setting (or a default of
`slt.estimate`) gives a new one.

Outputs
-------
``OUT/jobs/<id>.json`` per job: `EstimateResult.to_json()` (for a job that `slt.estimate`
refused or that diverged: ``status = "failed"`` and the ``error``), plus ``id``,
``config_hash`` (the full sha256), ``config``, ``seed``, ``git_revision`` (``git rev-parse
HEAD`` of the source tree, or null), ``versions`` (`slt.package_versions()`), ``backend``,
``num_devices`` and ``job_seconds``. ``OUT/results.csv``: one row per job of the spec, rebuilt
from the job files after every run. ``OUT/spec.toml``: a copy of the spec. Every file is
written atomically: a temporary ``.<name>.<random>.tmp`` in the same folder, flushed and
fsync-ed, then `os.replace`; readers take only ``*.json`` names, so a half-written file is never
read as a result, and a run deletes stale temporaries. ``OUT/traces/<id>.<k>.nc``: the traces of
job <id>'s SGLD runs (one for llc and wbic, one per temperature for rlct and ti; losses, per-step
info and diagnostics, no positions), netCDF written atomically by `slt.save_trace` with the job's
config, hash, seed, git revision and package versions, and listed in the job file's
``trace_files``. They are written before the job file, so a job file means its traces are
complete. ``save_traces=False`` (``slt batch --no-traces``) skips them.

Determinism
-----------
A job's key is ``jax.random.key(seed)`` and nothing else: not its position in the spec, the
executor, the worker or what ran before it. Everything inside `slt.estimate` is a function of
that key and the config, so a killed and resumed batch equals an uninterrupted one, and the
Ray executor (which runs the same `run_jobs` on the same packs in its workers) equals the local
one, bit for bit on the same machine and device count (packed jobs: see "Packing").

Device count: the driver shards chains over all local devices, and on CPU the float32 values
agree across device counts only up to rounding when the kernel uses the full data set
(``batch_size = "full"`` or ``batch_size >= n``): XLA CPU vectorises the full-batch loss and
gradient reduction differently for a vmap over several chains than for one chain per device,
which changes the last bit (about 1e-7 relative) of some losses, and so of some draws. With
minibatches we found bitwise agreement. Either way the differences are far below the
Monte-Carlo standard error.

For deterministic GPU runs set, before starting Python,

    XLA_FLAGS=--xla_gpu_deterministic_ops=true        # deterministic reductions and scatters
    XLA_FLAGS="$XLA_FLAGS --xla_gpu_exclude_nondeterministic_ops=true"   # refuse the rest
    JAX_DEFAULT_MATMUL_PRECISION=highest               # no TF32 (same numbers on every GPU generation)

JAX's PRNG (threefry) is deterministic on every backend, so with these flags a GPU job repeats
bit for bit on the same GPU model, driver and JAX version; the numbers still differ from CPU.

Compilation
-----------
The local executor runs jobs in one process, and the samplers are compiled with the data, nβ,
w* and step size as traced arguments (`slt.run`), while `toy_models.get` returns one object
per (family, parameters). So jobs of one model that differ in seed, nβ, step size or any other
float setting share every executable: the first job of a model compiles, the rest run at once
(`benchmarks/batch_speed.py`). A new model, data size, chain count, draw
count or batch size compiles again. The `slt` command also turns on JAX's persistent
compilation cache (`slt.enable_compilation_cache`), so a rerun or a resumed batch loads the
executables from disk.

Packing
-------
Jobs whose configs differ only in the seed are cut, in spec order, into packs of at most
``pack_size`` (default 32, ``slt batch --pack-size J``). Where packing pays (device "gpu", or
"any" on a machine whose JAX backend is not the CPU: `slt.estimate.packing_pays`) a pack of llc
jobs runs as one `slt.estimate_many` call: every stage of all its jobs (each calibration probe,
the gradient pilot, each chunk of the main run) is one compiled call, `vmap` over jobs of `vmap`
over chains with the chains sharded over the local devices, so 32 small jobs cost the dispatches
of one and fill the accelerator. A packed job's numbers differ from its unpacked run in the last
float32 bits (the batched products round differently, and the chain carries that along; far
below the Monte-Carlo error, and tested within 0.01 standard errors), and they depend on the
pack's other members. So packs are cut from the whole job list, never from the unfinished jobs, and a
resumed run reruns a pack with any missing job whole (writing only the missing files): resumed
and uninterrupted runs agree bit for bit. Packed records list their pack in ``packed_with``. On
a CPU the jobs of a pack run one after another (the same numbers as single jobs): there packing
does not pay (measured in `slt.estimate.packing_pays`). ``run_batch(packing=True)`` forces it.

Limitations
-----------
A user model's id covers its import path and parameters, not its code: edit the function and
rerun into a new folder. Jobs with ``device = "any"`` take whatever backend the machine has;
their ``backend`` is recorded but is not part of the id. On Ray, a task asks for one GPU when its
jobs have ``device = "gpu"`` and for none otherwise, and Ray then hides the GPUs from it, so
``"any"`` runs on CPU there. The Ray executor writes results on
the driver, so workers need not share its file system, but they must be able to import the
package (and any user model) themselves.
"""

from slt.batch._execute import RESULT_FORMAT, build_model, check_device, run_job, run_jobs
from slt.batch._executors import (
    DEFAULT_PACK_SIZE,
    DEFAULT_RAY_CHUNK_SIZE,
    EXECUTORS,
    BatchSummary,
    pack_jobs,
    ray_tasks,
    run_batch,
)
from slt.batch._files import (
    TABLE_COLUMNS,
    TABLE_NAME,
    TIMING_COLUMNS,
    atomic_write_text,
    read_result,
    result_files,
    table_row,
    write_table,
)
from slt.batch._spec import (
    DEVICES,
    SAMPLER_FIELDS,
    Job,
    SpecError,
    canonical_json,
    config_hash,
    load_spec,
    parse_spec,
    settings_from_config,
)

__all__ = [
    "DEFAULT_PACK_SIZE",
    "DEFAULT_RAY_CHUNK_SIZE",
    "DEVICES",
    "EXECUTORS",
    "RESULT_FORMAT",
    "SAMPLER_FIELDS",
    "TABLE_COLUMNS",
    "TABLE_NAME",
    "TIMING_COLUMNS",
    "BatchSummary",
    "Job",
    "SpecError",
    "atomic_write_text",
    "build_model",
    "canonical_json",
    "check_device",
    "config_hash",
    "load_spec",
    "parse_spec",
    "pack_jobs",
    "ray_tasks",
    "read_result",
    "result_files",
    "run_batch",
    "run_job",
    "run_jobs",
    "settings_from_config",
    "table_row",
    "write_table",
]

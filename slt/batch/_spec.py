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
- ``sampler`` = a table of `slt.estimate`'s settings: ``n``, ``num_chains``, ``num_draws``,
  ``thinning``, ``nbeta``, ``nbetas``, ``localization``, ``batch_size`` (an integer or
  ``"full"``), ``step_size`` (omit to calibrate), ``target_acceptance``, ``bias_tolerance``,
  ``pilot_steps``, ``exact``; omitted ones take `slt.estimate`'s defaults;
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
w* and step size as traced arguments (`slt._driver`), while `toy_models.get` returns one object
per (family, parameters). So jobs of one model that differ in seed, nβ, step size or any other
float setting share every executable: the first job of a model compiles (about 5 s for a small
model on a 2-core CPU), the rest run at once (measured by `benchmarks/batch_speed.py`: 5.3 s for a
model's first tiny job, 15 ms for each later one). A new model, data size, chain count, draw
count or batch size compiles again. The `slt` command also turns on JAX's persistent
compilation cache (`slt.enable_compilation_cache`), so a rerun or a resumed batch loads the
executables from disk.

Packing
-------
Jobs whose configs differ only in the seed are cut, in spec order, into packs of at most
``pack_size`` (default 32, ``slt batch --pack-size J``). Where packing pays (device "gpu", or
"any" on a machine whose JAX backend is not the CPU: `slt._estimate.packing_pays`) a pack of llc
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
does not pay (measured in `slt._estimate.packing_pays`). ``run_batch(packing=True)`` forces it.

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

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import importlib
import inspect
import io
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

import toy_models
from slt import _estimate
from slt._trace import package_versions, save_trace

RESULT_FORMAT = 1
EXECUTORS = ("local", "ray")
DEVICES = ("any", "cpu", "gpu")
DEFAULT_RAY_CHUNK_SIZE = 4
DEFAULT_PACK_SIZE = 32  # jobs per packed call where packing pays (accelerators)
JOBS_FOLDER = "jobs"
TRACES_FOLDER = "traces"
TABLE_NAME = "results.csv"
SPEC_COPY_NAME = "spec.toml"
TABLE_COLUMNS = (
    "id", "status", "model", "family", "user_model", "params", "method", "seed", "device", "n", "nbeta",
    "num_chains", "num_draws", "batch_size", "estimate", "std_error", "true_rlct", "multiplicity",
    "exact_at_nbeta", "reliable", "rhat", "ess_bulk", "step_size", "reasons", "error", "backend",
    "num_devices", "seconds",
)
TIMING_COLUMNS = ("seconds",)
"""Columns of `results.csv` that measure time and so differ between identical runs."""

_TOP_LEVEL_KEYS = ("description", "defaults", "jobs")
_JOB_KEYS = ("model", "user_model", "params", "method", "sampler", "seeds", "device", "grid")
_DEFAULT_KEYS = ("params", "method", "sampler", "seeds", "device")
_USER_MODEL_PATTERN = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class SpecError(ValueError):
    """A batch spec is malformed; the message starts with the field, e.g. `jobs[2].sampler.n: ...`."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One resolved job: `config` is JSON-ready with every setting explicit; `id` its hash prefix.

    `source` says where in the spec it came from (`jobs[1] (grid sampler.nbeta=100.0, seed 3)`),
    for messages only; it is not part of the config.
    """

    id: str
    config_hash: str
    config: Mapping[str, Any]
    source: str

    @property
    def seed(self) -> int:
        return self.config["seed"]


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    """What `run_batch` did: `ran` new jobs, `skipped` ones already done (`--resume`), `failed`
    ones (run now or before) and the path of the table."""

    num_jobs: int
    ran: int
    skipped: int
    failed: int
    table: Path


# --------------------------------------------------------------------------------------------
# Validation of single values


def _describe(value) -> str:
    return repr(value) if not isinstance(value, str) else f"'{value}'"


def _integer(where: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{where}: must be an integer >= {minimum}, got {_describe(value)}")
    return value


def _number(where: str, value, *, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open or high == math.inf else "]"
        top = "∞" if high == math.inf else f"{high:g}"
        raise SpecError(f"{where}: must be a finite number in {left}{low:g}, {top}{right}, got {_describe(value)}")
    return float(value)


def _boolean(where: str, value) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{where}: must be true or false, got {_describe(value)}")
    return value


def _batch_size(where: str, value):
    if value == "full":
        return "full"
    if isinstance(value, str):
        raise SpecError(f"{where}: must be an integer >= 1 or \"full\", got {_describe(value)}")
    return _integer(where, value, 1)


def _nbetas(where: str, value) -> list[float]:
    if not isinstance(value, list) or len(value) < 4:
        raise SpecError(f"{where}: must be a list of at least 4 distinct numbers > 1, got {_describe(value)}")
    values = [_number(f"{where}[{i}]", v, low=1.0, low_open=True) for i, v in enumerate(value)]
    if len(set(values)) != len(values):
        raise SpecError(f"{where}: the temperatures must be distinct, got {value!r}")
    return values


_SAMPLER_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "n": lambda where, v: _integer(where, v, 2),
    "num_chains": lambda where, v: _integer(where, v, 1),
    "num_draws": lambda where, v: _integer(where, v, 2),
    "thinning": lambda where, v: _integer(where, v, 1),
    "pilot_steps": lambda where, v: _integer(where, v, 2),
    "nbeta": lambda where, v: _number(where, v, low=0.0, low_open=True),
    "nbetas": _nbetas,
    "localization": lambda where, v: _number(where, v, low=0.0),
    "batch_size": _batch_size,
    "step_size": lambda where, v: _number(where, v, low=0.0, low_open=True),
    "target_acceptance": lambda where, v: _number(where, v, low=0.0, high=1.0, low_open=True, high_open=True),
    "bias_tolerance": lambda where, v: _number(where, v, low=0.0, high=1.0, low_open=True, high_open=True),
    "exact": _boolean,
}


def _estimate_defaults() -> dict[str, Any]:
    """`slt.estimate`'s keyword defaults for the sampler settings (so the config is explicit).

    An option `slt.estimate` gains later and the spec does not know keeps its default and is not
    part of the config; a spec field `slt.estimate` no longer has fails when a job runs."""
    signature = inspect.signature(_estimate.estimate)
    return {name: signature.parameters[name].default for name in _SAMPLER_FIELDS if name in signature.parameters}


def _method(where: str, value) -> str:
    if not isinstance(value, str) or value not in _estimate.METHODS:
        raise SpecError(f"{where}: must be one of {', '.join(_estimate.IMPLEMENTED_METHODS)}, got {_describe(value)}")
    if value not in _estimate.IMPLEMENTED_METHODS:
        raise SpecError(f"{where}: method '{value}' is not implemented by slt.estimate yet; implemented: "
                        f"{', '.join(_estimate.IMPLEMENTED_METHODS)}")
    return value


def _device(where: str, value) -> str:
    if value not in DEVICES:
        raise SpecError(f"{where}: must be one of {', '.join(DEVICES)}, got {_describe(value)}")
    return value


def _seeds(where: str, value) -> list[int]:
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: must be a non-empty list of integers >= 0, got {_describe(value)}")
    seeds = [_integer(f"{where}[{i}]", seed, 0) for i, seed in enumerate(value)]
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{where}: seeds must be distinct, got {value!r}")
    return seeds


def _table(where: str, value, allowed: Sequence[str] | None = None) -> dict:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: must be a table, got {_describe(value)}")
    if allowed is not None:
        unknown = [key for key in value if key not in allowed]
        if unknown:
            raise SpecError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(allowed)}")
    return value


def _parameter_value(where: str, value):
    """Family parameters are integers or lists of integers (TOML arrays become tuples)."""
    if isinstance(value, list):
        return tuple(_parameter_value(f"{where}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"{where}: must be a number, a string or a list, got {_describe(value)}")
    return value


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def canonical_json(config: Mapping[str, Any]) -> str:
    """The text that is hashed: sorted keys, no spaces, floats as Python's shortest repr."""
    return json.dumps(_jsonable(dict(config)), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of `canonical_json(config)`; a job's id is its first 16 hex digits."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Spec → jobs


def _import_user_model(where: str, path) -> Callable[..., Any]:
    if not isinstance(path, str) or not _USER_MODEL_PATTERN.match(path):
        raise SpecError(f"{where}: must be an import path 'package.module:function', got {_describe(path)}")
    module_name, function_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any failure to import is the spec's problem, reported with the field
        raise SpecError(f"{where}: cannot import module '{module_name}': {error!r}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SpecError(f"{where}: module '{module_name}' has no function '{function_name}'")
    return function


def _merge(defaults: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    merged = {key: value for key, value in defaults.items()}
    for key, value in entry.items():
        if key in ("sampler", "params") and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _grid_axes(where: str, grid) -> list[tuple[str, list, str]]:
    """[(dotted name, values, where)] with names `method`, `params.X` or `sampler.X`."""
    _table(where, grid, ("method", "params", "sampler"))
    axes = []
    for name, value in grid.items():
        if name == "method":
            entries = [("method", value)]
        else:
            _table(f"{where}.{name}", value, tuple(_SAMPLER_FIELDS) if name == "sampler" else None)
            entries = [(f"{name}.{field}", field_values) for field, field_values in value.items()]
        for dotted, values in entries:
            if not isinstance(values, list) or not values:
                raise SpecError(f"{where}.{dotted}: must be a non-empty list of values, got {_describe(values)}")
            axes.append((dotted, values, f"{where}.{dotted}"))
    return axes


def _resolve_sampler(where: str, sampler: Mapping[str, Any], method: str, defaults: Mapping[str, Any]) -> dict:
    resolved = dict(defaults)
    for field, value in sampler.items():
        resolved[field] = _SAMPLER_FIELDS[field](f"{where}.{field}", value)
    for field in ("localization", "target_acceptance", "bias_tolerance"):
        resolved[field] = float(resolved[field])
    n = resolved["n"]
    if resolved["batch_size"] is None or (resolved["batch_size"] != "full" and resolved["batch_size"] >= n):
        resolved["batch_size"] = "full"
    # As slt.estimate: nβ only for llc (default min(1000, n / log n)); the temperatures only for rlct.
    if resolved["nbetas"] is not None and method != "rlct":
        raise SpecError(f"{where}.nbetas: only for method 'rlct' (this job's method is '{method}')")
    if resolved["nbeta"] is not None and method != "llc":
        raise SpecError(f"{where}.nbeta: not allowed for method '{method}' (only llc takes one temperature; "
                        "rlct takes nbetas = [...])")
    if method == "llc" and resolved["nbeta"] is None:
        resolved["nbeta"] = _estimate.default_nbeta(n)
    if method == "rlct" and resolved["nbetas"] is None:
        resolved["nbetas"] = [float(t) for t in _estimate.default_rlct_nbetas(n)]
    if method == "wbic" and resolved["localization"] != 0.0:
        raise SpecError(f"{where}.localization: must be 0 for method 'wbic' (it samples the global posterior)")
    if resolved["step_size"] is not None:
        resolved["step_size"] = float(resolved["step_size"])
    return resolved


def _resolve_params(where: str, family: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
    params = {name: _parameter_value(f"{where}.{name}", value) for name, value in params.items()}
    if family is None:
        return params
    try:
        model = toy_models.get(family, **params)
    except ValueError as error:  # ModelParameterError names the parameter
        raise SpecError(f"{where}: {error}") from None
    return dict(model.params)


def parse_spec(spec: Mapping[str, Any], source: str = "spec") -> tuple[Job, ...]:
    """Validate a spec (the mapping `tomllib` returns) and expand it into jobs, in spec order.

    Raises `SpecError` (a ValueError) naming the field, before any job runs. Duplicate jobs
    (the same resolved config and seed) are refused too.
    """
    _table(source, spec, _TOP_LEVEL_KEYS)
    if "description" in spec and not isinstance(spec["description"], str):
        raise SpecError(f"description: must be a string, got {_describe(spec['description'])}")
    defaults = _table("defaults", spec.get("defaults", {}), _DEFAULT_KEYS)
    for key in ("params", "sampler"):
        if key in defaults:
            _table(f"defaults.{key}", defaults[key], tuple(_SAMPLER_FIELDS) if key == "sampler" else None)
    for field, value in defaults.get("sampler", {}).items():  # named as defaults.sampler.X, not jobs[i]...
        _SAMPLER_FIELDS[field](f"defaults.sampler.{field}", value)
    entries = spec.get("jobs")
    if not isinstance(entries, list) or not entries:
        raise SpecError("jobs: must be a non-empty array of tables ([[jobs]] ...)")
    estimate_defaults = _estimate_defaults()
    jobs: list[Job] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"jobs[{index}]"
        _table(where, entry, _JOB_KEYS)
        if ("model" in entry) == ("user_model" in entry):
            raise SpecError(f"{where}: give exactly one of model (a registry family) and user_model ('package.module:function')")
        job = _merge(defaults, entry)
        family = user_model = None
        if "model" in job:
            family = job["model"]
            if family not in toy_models.names():
                raise SpecError(f"{where}.model: unknown family {_describe(family)}; known: {', '.join(toy_models.names())}")
        else:
            user_model = job["user_model"]
            _import_user_model(f"{where}.user_model", user_model)
        params_where = f"{where}.params" if "params" in entry else "defaults.params"
        params = _table(params_where, job.get("params", {}))
        sampler_where = f"{where}.sampler" if "sampler" in entry else "defaults.sampler"
        sampler = _table(sampler_where, job.get("sampler", {}), tuple(_SAMPLER_FIELDS))
        method_where = f"{where}.method" if "method" in entry else "defaults.method"
        method = job.get("method", "llc")
        device = _device(f"{where}.device" if "device" in entry else "defaults.device", job.get("device", "any"))
        if "seeds" not in job:
            raise SpecError(f"{where}.seeds: required (there is no default seed), e.g. seeds = [0, 1, 2]")
        seeds = _seeds(f"{where}.seeds" if "seeds" in entry else "defaults.seeds", job["seeds"])
        axes = _grid_axes(f"{where}.grid", entry.get("grid", {}))
        for dotted, values, value_where in axes:  # each grid value alone, to name it
            for i, value in enumerate(values):
                if dotted == "method":
                    _method(f"{value_where}[{i}]", value)
                elif dotted.startswith("sampler."):
                    _SAMPLER_FIELDS[dotted.split(".", 1)[1]](f"{value_where}[{i}]", value)
                else:
                    _parameter_value(f"{value_where}[{i}]", value)
        for point in itertools.product(*(values for _, values, _ in axes)):
            point_method, point_params, point_sampler = method, dict(params), dict(sampler)
            label = []
            for (dotted, _, _), value in zip(axes, point):
                label.append(f"{dotted}={value!r}")
                if dotted == "method":
                    point_method = value
                elif dotted.startswith("params."):
                    point_params[dotted.split(".", 1)[1]] = value
                else:
                    point_sampler[dotted.split(".", 1)[1]] = value
            located = f"{where} (grid {', '.join(label)})" if label else where
            point_method = _method(f"{located}.method" if label else method_where, point_method)
            resolved_params = _resolve_params(f"{located}.params" if label else params_where, family, point_params)
            resolved_sampler = _resolve_sampler(f"{located}.sampler" if label else sampler_where, point_sampler,
                                                point_method, estimate_defaults)
            for seed in seeds:
                config = _jsonable({
                    "model": family,
                    "user_model": user_model,
                    "params": resolved_params,
                    "method": point_method,
                    "sampler": resolved_sampler,
                    "device": device,
                    "seed": seed,
                })
                digest = config_hash(config)
                job_source = f"{located}, seed {seed}"
                if digest in seen:
                    raise SpecError(f"{job_source}: the same job as {seen[digest]} (identical resolved config and seed)")
                seen[digest] = job_source
                jobs.append(Job(digest[:16], digest, config, job_source))
    return tuple(jobs)


def load_spec(path: str | os.PathLike) -> tuple[Job, ...]:
    """Read a TOML spec file and return its jobs (`parse_spec`); syntax errors name the file."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            spec = tomllib.load(handle)
    except FileNotFoundError:
        raise SpecError(f"spec file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML: {error}") from None
    return parse_spec(spec, source=str(path))


# --------------------------------------------------------------------------------------------
# One job


def _build_model(config: Mapping[str, Any]):
    params = {name: tuple(value) if isinstance(value, list) else value for name, value in config["params"].items()}
    if config["model"] is not None:
        return toy_models.get(config["model"], **params)
    factory = _import_user_model("user_model", config["user_model"])
    model = factory(**params)
    if not isinstance(model, (toy_models.ToyModel, toy_models.UserModel)):
        raise SpecError(f"user_model: {config['user_model']} returned {type(model).__name__}, "
                        "not a toy_models.ToyModel or UserModel")
    return model


def check_device(device: str, where: str = "device") -> None:
    """Fail fast when a job asks for a backend this process does not have (no waiting)."""
    if device == "any":
        return
    if device == "gpu":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            gpus = []
        if not gpus:
            raise ValueError(f"{where} = \"gpu\" but JAX has no GPU backend here (backends: "
                             f"{jax.default_backend()}); install jax[cuda12] on a GPU machine, or set device = \"cpu\"/\"any\"")
        if jax.default_backend() != "gpu":
            raise ValueError(f"{where} = \"gpu\" but JAX's default backend is {jax.default_backend()!r}; unset JAX_PLATFORMS")
    elif jax.default_backend() != device:
        raise ValueError(f"{where} = \"{device}\" but JAX's default backend is {jax.default_backend()!r}; "
                         f"run with JAX_PLATFORMS={device}")


def run_job(config: Mapping[str, Any], git_revision: str | None = None, keep_traces: bool = False) -> dict[str, Any]:
    """Run one resolved job config: `slt.estimate` with key `jax.random.key(seed)`; the result record.

    A ValueError or FloatingPointError from `slt.estimate` (refused input, repeated divergence)
    gives a record with status "failed" and the message; anything else propagates. With
    `keep_traces` the record also holds ``_traces``: (label, `slt.Trace`) per SGLD run, for
    `run_batch` to write (not JSON; removed before the record is written).
    """
    return run_jobs([config], git_revision, keep_traces)[0]


def run_jobs(configs: Sequence[Mapping[str, Any]], git_revision: str | None = None, keep_traces: bool = False,
             pack: bool | None = None) -> list[dict[str, Any]]:
    """`run_job` for jobs whose configs differ only in the seed, through one
    `slt.estimate_many`-style call: packed into one compiled call per stage when `pack` (default:
    `_estimate.packing_pays()`, i.e. on accelerators), else one after another. Their records
    carry ``packed_with`` (the pack's job ids) when packed, since a packed job's last float32
    bits depend on its pack mates."""
    start = time.perf_counter()
    first = configs[0]
    if any(_without_seed(config) != _without_seed(first) for config in configs[1:]):
        raise ValueError("run_jobs: the configs must differ only in their seed")
    check_device(first["device"])
    sampler = dict(first["sampler"])
    if sampler["batch_size"] == "full":
        sampler["batch_size"] = None
    if sampler["nbetas"] is not None:
        sampler["nbetas"] = np.asarray(sampler["nbetas"], dtype=np.float64)
    model = _build_model(first)
    pack = _estimate.packing_pays() if pack is None else bool(pack)
    try:
        outcomes = _estimate.estimate_jobs(model, first["method"], keys=[jax.random.key(c["seed"]) for c in configs],
                                           keep_traces=keep_traces, pack=pack, **sampler)
    except (ValueError, FloatingPointError) as error:  # refused settings: every job of the pack fails alike
        outcomes = [error] * len(configs)
    seconds = (time.perf_counter() - start) / len(configs)
    digests = [config_hash(config) for config in configs]
    ids = [digest[:16] for digest in digests]
    records = []
    for config, digest, outcome in zip(configs, digests, outcomes):
        record: dict[str, Any] = {"batch_format": RESULT_FORMAT}
        if isinstance(outcome, Exception):
            record.update(status="failed", error=f"{type(outcome).__name__}: {outcome}",
                          model=getattr(model, "label", str(config["model"])))
        else:
            record.update(outcome.to_json())
            record.update(status="ok", error=None)
            if keep_traces:
                record["_traces"] = list(outcome.traces)
        record.update(
            id=digest[:16], config_hash=digest, config=_jsonable(dict(config)), seed=config["seed"],
            git_revision=git_revision, versions=package_versions(), backend=jax.default_backend(),
            num_devices=jax.local_device_count(), job_seconds=seconds,
        )
        if pack and len(configs) > 1 and config["method"] == "llc":
            record["packed_with"] = ids
        records.append(record)
    return records


# --------------------------------------------------------------------------------------------
# Files


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the whole new one, never part:
    a temporary `.<name>.<random>.tmp` in the same folder, flushed and fsync-ed, then `os.replace`
    (and the folder fsync-ed, so the rename survives a crash)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; a result file is an ordinary file
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the `.<name>.<random>.tmp` files a killed run left behind; return how many."""
    removed = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_file() and _is_temporary(entry.name):
                entry.unlink(missing_ok=True)
                removed += 1
    return removed


def result_files(out_dir: str | os.PathLike) -> list[Path]:
    """The finished job files of a batch folder (never temporaries)."""
    folder = Path(out_dir) / JOBS_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))


def read_result(path: Path, job: Job | None = None) -> dict[str, Any] | None:
    """The record in `path` if it is a complete result (of `job`, when given), else None."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("batch_format") != RESULT_FORMAT:
        return None
    if record.get("status") not in ("ok", "failed") or not isinstance(record.get("config"), dict):
        return None
    digest = config_hash(record["config"])
    if record.get("config_hash") != digest or record.get("id") != digest[:16] or path.stem != digest[:16]:
        return None
    if job is not None and digest != job.config_hash:
        return None
    return record


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def table_row(record: Mapping[str, Any]) -> dict[str, str]:
    """One `results.csv` row from a job record."""
    config = record["config"]
    diagnostics = record.get("diagnostics") or {}
    values = {
        "id": record["id"],
        "status": record["status"],
        "model": record.get("model"),
        "family": config["model"],
        "user_model": config["user_model"],
        "params": config["params"],
        "method": config["method"],
        "seed": config["seed"],
        "device": config["device"],
        "n": config["sampler"]["n"],
        "nbeta": record.get("nbeta"),
        "num_chains": config["sampler"]["num_chains"],
        "num_draws": config["sampler"]["num_draws"],
        "batch_size": config["sampler"]["batch_size"],
        "estimate": record.get("estimate"),
        "std_error": record.get("std_error"),
        "true_rlct": record.get("true_rlct"),
        "multiplicity": record.get("multiplicity"),
        "exact_at_nbeta": diagnostics.get("exact_at_nbeta"),
        "reliable": record.get("reliable"),
        "rhat": diagnostics.get("rhat"),
        "ess_bulk": diagnostics.get("ess_bulk"),
        "step_size": diagnostics.get("step_size"),
        "reasons": "; ".join(diagnostics.get("reasons", [])) or None,
        "error": record.get("error"),
        "backend": record.get("backend"),
        "num_devices": record.get("num_devices"),
        "seconds": record.get("job_seconds"),
    }
    return {column: _cell(values[column]) for column in TABLE_COLUMNS}


def write_table(out_dir: str | os.PathLike, jobs: Sequence[Job]) -> Path:
    """Rebuild `results.csv` from the job files, one row per job of `jobs` that has a valid file."""
    out_dir = Path(out_dir)
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for job in jobs:
        record = read_result(out_dir / JOBS_FOLDER / f"{job.id}.json", job)
        if record is not None:
            writer.writerow(table_row(record))
    path = out_dir / TABLE_NAME
    atomic_write_text(path, stream.getvalue())
    return path


def git_revision(folder: str | os.PathLike | None = None) -> str | None:
    """`git rev-parse HEAD` of the source tree holding this package, or None (no git, not a checkout)."""
    folder = Path(__file__).resolve().parent if folder is None else Path(folder)
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                   timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    revision = completed.stdout.strip()
    return revision if completed.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", revision) else None


@contextlib.contextmanager
def _lock(out_dir: Path):
    """An exclusive lock on OUT/.lock: two batch runs on one folder would delete each other's
    temporaries and race on the table."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out_dir / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another batch run is using {out_dir} (it holds {out_dir / '.lock'})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# Executors


def _local_results(packs: Sequence[Sequence[Job]], revision: str | None, keep_traces: bool,
                   packing: bool | None) -> Iterable[dict[str, Any]]:
    for jobs in packs:
        yield from run_jobs([job.config for job in jobs], revision, keep_traces, _packing(jobs, packing))


def _run_packs(packs: list[list[Mapping[str, Any]]], revision: str | None, keep_traces: bool = False,
               pack: bool = False) -> list[dict[str, Any]]:
    """Ray task body: the same `run_jobs`, pack after pack, in one worker (its JAX caches shared)."""
    return [record for configs in packs for record in run_jobs(configs, revision, keep_traces, pack)]


def _write_traces(out_dir: Path, record: dict[str, Any]) -> None:
    """Write the record's ``_traces`` as OUT/traces/<id>.<k>.nc (atomic each) and list them in
    ``trace_files``; each trace's config holds the job's config, hash, seed and git revision."""
    traces = record.pop("_traces", None)
    if not traces:
        return
    names = []
    for index, (label, trace) in enumerate(traces):
        name = f"{record['id']}.{index}.nc"
        provenance = {"job_id": record["id"], "config_hash": record["config_hash"], "config": record["config"],
                      "seed": record["seed"], "git_revision": record["git_revision"], "run": label,
                      "model": record.get("model"), "method": record.get("method")}
        save_trace(trace._replace(config={**trace.config, **provenance}), out_dir / TRACES_FOLDER / name)
        names.append(f"{TRACES_FOLDER}/{name}")
    record["trace_files"] = names


def _chunks(jobs: Sequence[Job], chunk_size: int) -> list[list[Job]]:
    """Jobs grouped by everything but the seed (they share compiled functions), then cut into
    chunks of at most `chunk_size`."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(canonical_json(_without_seed(job.config)), []).append(job)
    return [group[i:i + chunk_size] for group in groups.values() for i in range(0, len(group), chunk_size)]


def _without_seed(config: Mapping[str, Any]) -> dict[str, Any]:
    """What jobs that can share compiled code (and a pack) have in common: the config but the seed."""
    return {key: value for key, value in config.items() if key != "seed"}


def _tasks(packs: Sequence[list[Job]], chunk_size: int) -> list[list[list[Job]]]:
    """Consecutive packs of one config (but the seed) joined into Ray tasks of about `chunk_size`
    jobs, at least one pack each: a task's device request and packing follow its first job."""
    tasks: list[list[list[Job]]] = []
    for jobs in packs:
        if (tasks and sum(map(len, tasks[-1])) + len(jobs) <= chunk_size
                and _without_seed(tasks[-1][0][0].config) == _without_seed(jobs[0].config)):
            tasks[-1].append(jobs)
        else:
            tasks.append([jobs])
    return tasks


def _packing(jobs: Sequence[Job], packing: bool | None = None) -> bool:
    """Whether these jobs will be packed: `packing` when given, else device "gpu" yes, "cpu" no,
    "any" as this machine's backend decides (`_estimate.packing_pays`)."""
    if packing is not None:
        return packing
    device = jobs[0].config["device"]
    return device == "gpu" or (device == "any" and _estimate.packing_pays())


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError("the ray executor needs Ray: pip install 'slt-workbench[ray]' (or 'ray>=2.40')") from None
    return ray


@contextlib.contextmanager
def _ray_starts_processes():
    """Ray starts (and stops) its local services with `subprocess.Popen(preexec_fn=...)`, which
    runs the at-fork hooks, and JAX's warns that os.fork() with threads may deadlock. The child
    execs at once, so the warning does not apply; it is silenced here only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        yield


def _ray_results(packs: Sequence[list[Job]], revision: str | None, *, address: str | None,
                 chunk_size: int, keep_traces: bool = False, packing: bool | None = None) -> Iterable[dict[str, Any]]:
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        with _ray_starts_processes():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        jobs = [job for jobs in packs for job in jobs]
        if any(job.config["device"] == "gpu" for job in jobs):
            gpus = ray.cluster_resources().get("GPU", 0)
            if gpus < 1:
                first = next(job for job in jobs if job.config["device"] == "gpu")
                raise ValueError(f"{first.source}: device = \"gpu\" but the Ray cluster has no GPU resources "
                                 f"(cluster resources: {sorted(ray.cluster_resources())}); not waiting for one")
        remote = ray.remote(_run_packs)
        pending = {}
        for task in _tasks(packs, chunk_size):
            gpu = task[0][0].config["device"] == "gpu"
            reference = remote.options(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=0).remote(
                [[job.config for job in jobs] for jobs in task], revision, keep_traces, _packing(task[0], packing))
            pending[reference] = task
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for reference in done:
                del pending[reference]
                yield from ray.get(reference)
    finally:
        if started_here:
            with _ray_starts_processes():
                ray.shutdown()


def run_batch(
    jobs: Sequence[Job] | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    executor: str = "local",
    resume: bool = False,
    ray_address: str | None = None,
    ray_chunk_size: int = DEFAULT_RAY_CHUNK_SIZE,
    pack_size: int = DEFAULT_PACK_SIZE,
    packing: bool | None = None,
    progress: bool | None = None,
    spec_text: str | None = None,
    save_traces: bool = True,
) -> BatchSummary:
    """Run the jobs (or the spec file `jobs` names) into `out_dir`; see the module docstring.

    Parameters
    ----------
    jobs : from `load_spec`/`parse_spec`, or a path to a TOML spec.
    out_dir : created if missing. Without `resume` it must hold no results yet.
    executor : "local" (in this process) or "ray" (chunks of jobs as Ray tasks;
        `ray.init(address=ray_address)`, a local instance when None).
    pack_size : at most this many jobs that differ only in their seed run as one packed call
        (`slt.estimate_many`) where packing pays (GPU; on CPU they run one after another).
    packing : force packing on or off (None: by each job's device and this machine's backend).
    resume : skip jobs whose result file is complete and matches; rerun the rest.
    progress : a tqdm bar over jobs; None: only when stderr is a terminal.
    spec_text : the spec's text, copied to OUT/spec.toml (read from the path when `jobs` is one).
    save_traces : write each job's SGLD traces to OUT/traces/<id>.<k>.nc (default True).

    Raises
    ------
    ValueError : an unknown executor, results already present without `resume`, a job asking for a
        GPU where there is none (before any job runs), Ray missing.
    """
    if isinstance(jobs, (str, os.PathLike)):
        spec_text = Path(jobs).read_text(encoding="utf-8") if spec_text is None else spec_text
        jobs = load_spec(jobs)
    jobs = tuple(jobs)
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    ray_chunk_size = _integer("ray_chunk_size", ray_chunk_size, 1)
    pack_size = _integer("pack_size", pack_size, 1)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} exists and is not a folder")
    existing = result_files(out_dir)
    if not resume and (existing or (out_dir / TABLE_NAME).exists()):
        raise ValueError(f"--out {out_dir} already holds results ({len(existing)} job files); pass --resume to "
                         "skip the finished jobs and run the rest, or choose a new folder")
    if executor == "local":
        for job in jobs:  # fail fast: before anything runs
            check_device(job.config["device"], f"{job.source}: device")
    (out_dir / JOBS_FOLDER).mkdir(parents=True, exist_ok=True)
    if save_traces:
        (out_dir / TRACES_FOLDER).mkdir(exist_ok=True)
    with _lock(out_dir):
        remove_stale_temporaries(out_dir / JOBS_FOLDER)
        if (out_dir / TRACES_FOLDER).is_dir():
            remove_stale_temporaries(out_dir / TRACES_FOLDER)
        remove_stale_temporaries(out_dir)
        if spec_text is not None:
            atomic_write_text(out_dir / SPEC_COPY_NAME, spec_text)
        done = {}
        if resume:
            for job in jobs:
                record = read_result(out_dir / JOBS_FOLDER / f"{job.id}.json", job)
                if record is not None:
                    done[job.id] = record
        # Packs are cut from the whole job list, not from the unfinished jobs, so a resumed run
        # packs every job with the same mates as an uninterrupted one; a packed job's numbers
        # depend on its mates (last float32 bits), so a pack with any unfinished job runs whole.
        packs = []
        for jobs_of_pack in _chunks(jobs, pack_size):
            pending = [job for job in jobs_of_pack if job.id not in done]
            if pending:
                packs.append(jobs_of_pack if _packing(jobs_of_pack, packing) else pending)
        todo = [job for jobs_of_pack in packs for job in jobs_of_pack if job.id not in done]
        revision = git_revision()
        if executor == "local":
            results = _local_results(packs, revision, save_traces, packing)
        else:
            results = _ray_results(packs, revision, address=ray_address, chunk_size=ray_chunk_size,
                                   keep_traces=save_traces, packing=packing)
        show = sys.stderr.isatty() if progress is None else progress
        failed = sum(record["status"] == "failed" for record in done.values())
        with tqdm(total=len(jobs), initial=len(done), unit="job", disable=not show, desc="batch") as bar:
            for record in results:
                if record["id"] in done:  # a finished pack mate, rerun only to repeat the pack
                    continue
                _write_traces(out_dir, record)
                atomic_write_text(out_dir / JOBS_FOLDER / f"{record['id']}.json",
                                  json.dumps(record, indent=1, allow_nan=False) + "\n")
                failed += record["status"] == "failed"
                bar.update(1)
        table = write_table(out_dir, jobs)
    return BatchSummary(num_jobs=len(jobs), ran=len(todo), skipped=len(done), failed=failed, table=table)

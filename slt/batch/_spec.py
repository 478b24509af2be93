"""Batch spec → jobs: the TOML spec checked (its sampler tables as `EstimateSettings`) and expanded."""

import dataclasses
import hashlib
import importlib
import itertools
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import toy_models
from slt.estimate import METHODS, EstimateSettings, SettingsError, default_nbeta, default_rlct_nbetas

DEVICES = ("any", "cpu", "gpu")
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

    @property
    def settings(self) -> EstimateSettings:
        """The job's `EstimateSettings` (method and sampler table of its config)."""
        return settings_from_config(self.config)


# --------------------------------------------------------------------------------------------
# Validation of single values


def _describe(value) -> str:
    return repr(value) if not isinstance(value, str) else f"'{value}'"


def _integer(where: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{where}: must be an integer >= {minimum}, got {_describe(value)}")
    return value


def _batch_size(where: str, value):
    if value == "full":
        return "full"
    if isinstance(value, str):
        raise SpecError(f"{where}: must be an integer >= 1 or \"full\", got {_describe(value)}")
    return _integer(where, value, 1)


SAMPLER_FIELDS = ("n", "num_chains", "num_draws", "thinning", "pilot_steps", "nbeta", "nbetas", "localization",
                  "batch_size", "step_size", "target_acceptance", "bias_tolerance", "exact")
"""The `EstimateSettings` fields a spec's ``sampler`` table may set (the others keep their defaults)."""


def _settings(where: str, method: str, sampler: Mapping[str, Any]) -> EstimateSettings:
    """`EstimateSettings` from a spec's sampler table (``batch_size = "full"``: None); its check's
    error becomes a SpecError naming the field under `where`."""
    values = dict(sampler)
    if "batch_size" in values:
        values["batch_size"] = None if _batch_size(f"{where}.batch_size", values["batch_size"]) == "full" \
            else values["batch_size"]
    try:
        return EstimateSettings(method=method, **values)
    except SettingsError as error:
        raise SpecError(f"{where}.{error.field}: {error.problem}") from None


def _check_field(where: str, field: str, value) -> None:
    """One sampler value alone (a default or a grid value), named by `where`."""
    if field == "batch_size":
        _batch_size(where, value)
        if value == "full":
            return
    try:  # rlct is the one method that takes every field (nbetas)
        EstimateSettings(method="rlct" if field == "nbetas" else "llc", **{field: value})
    except SettingsError as error:
        raise SpecError(f"{where}: {error.problem}") from None


def settings_from_config(config: Mapping[str, Any], **extra) -> EstimateSettings:
    """The `EstimateSettings` of a resolved job config (what `run_jobs` runs), with `extra` fields."""
    sampler = dict(config["sampler"])
    if sampler["batch_size"] == "full":
        sampler["batch_size"] = None
    return EstimateSettings(method=config["method"], **sampler, **extra)


def _method(where: str, value) -> str:
    if not isinstance(value, str) or value not in METHODS:
        raise SpecError(f"{where}: must be one of {', '.join(METHODS)}, got {_describe(value)}")
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
            _table(f"{where}.{name}", value, SAMPLER_FIELDS if name == "sampler" else None)
            entries = [(f"{name}.{field}", field_values) for field, field_values in value.items()]
        for dotted, values in entries:
            if not isinstance(values, list) or not values:
                raise SpecError(f"{where}.{dotted}: must be a non-empty list of values, got {_describe(values)}")
            axes.append((dotted, values, f"{where}.{dotted}"))
    return axes


def _resolve_sampler(where: str, sampler: Mapping[str, Any], method: str) -> dict:
    """The spec's sampler table checked as `EstimateSettings` and written out in full: every field
    of `SAMPLER_FIELDS` explicit, llc's nβ and rlct's temperatures resolved, ``batch_size = "full"``
    when it is None or >= n."""
    settings = _settings(where, method, sampler)
    resolved = {field: getattr(settings, field) for field in SAMPLER_FIELDS}
    resolved["batch_size"] = "full" if settings.minibatch_size is None else settings.batch_size
    if method == "llc" and settings.nbeta is None:
        resolved["nbeta"] = default_nbeta(settings.n)
    nbetas = default_rlct_nbetas(settings.n) if method == "rlct" and settings.nbetas is None else settings.nbetas
    resolved["nbetas"] = None if nbetas is None else [float(t) for t in nbetas]
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
            _table(f"defaults.{key}", defaults[key], SAMPLER_FIELDS if key == "sampler" else None)
    for field, value in defaults.get("sampler", {}).items():  # named as defaults.sampler.X, not jobs[i]...
        _check_field(f"defaults.sampler.{field}", field, value)
    entries = spec.get("jobs")
    if not isinstance(entries, list) or not entries:
        raise SpecError("jobs: must be a non-empty array of tables ([[jobs]] ...)")
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
        sampler = _table(sampler_where, job.get("sampler", {}), SAMPLER_FIELDS)
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
                    _check_field(f"{value_where}[{i}]", dotted.split(".", 1)[1], value)
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
                                                point_method)
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

"""One batch job (or a pack of jobs that differ only in the seed): its model, its device check, its record."""

import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax

import toy_models
from slt.batch._spec import SpecError, _import_user_model, _jsonable, config_hash, settings_from_config
from slt.estimate import estimate_jobs, packing_pays
from slt.run import package_versions

RESULT_FORMAT = 1


def build_model(config: Mapping[str, Any]):
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
    `slt.estimate.packing_pays()`, i.e. on accelerators), else one after another. Their records
    carry ``packed_with`` (the pack's job ids) when packed, since a packed job's last float32
    bits depend on its pack mates."""
    start = time.perf_counter()
    first = configs[0]
    if any(_without_seed(config) != _without_seed(first) for config in configs[1:]):
        raise ValueError("run_jobs: the configs must differ only in their seed")
    check_device(first["device"])
    settings = settings_from_config(first, keep_traces=keep_traces)
    model = build_model(first)
    pack = packing_pays() if pack is None else bool(pack)
    try:
        outcomes = estimate_jobs(model, first["method"], keys=[jax.random.key(c["seed"]) for c in configs],
                                 pack=pack, settings=settings)
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


def _without_seed(config: Mapping[str, Any]) -> dict[str, Any]:
    """What jobs that can share compiled code (and a pack) have in common: the config but the seed."""
    return {key: value for key, value in config.items() if key != "seed"}

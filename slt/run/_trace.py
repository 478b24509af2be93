"""The `Trace` of a run, its arviz DataTree form, and netCDF save/load with provenance.

Layout of the DataTree (arviz 1.x conventions, dims ``chain``, ``draw``):

- ``posterior``: ``loss`` (L_b(w) per draw) and, when recorded, the positions, one variable per
  parameter leaf, named ``position`` for a bare array or ``position.<path>`` for a pytree leaf
  (``position.A``, ``position.0``), with extra dims ``<name>_dim_k``.
- ``sample_stats``: ``loss_at_center`` (L_b(w*) on the same batch) and every other recorded
  info field.
- Root attributes: the metadata of the run, each as JSON text (``sampler``,
  ``hyperparameters``, ``nbeta``, ``num_data``, ``num_steps``, ``num_burnin``, ``thinning``,
  ``key_data``, ``key_impl``, ``num_devices``, ``config``, ``versions``), plus the diagnostics'
  warnings (``diagnostic_warnings``) for people reading the file. Values stored in
  ``config`` and ``hyperparameters`` must be JSON-serialisable (numpy scalars and arrays are
  turned into lists; tuples come back as lists).
"""

import importlib.metadata
import json
import os
import platform
import tempfile
from functools import lru_cache
from typing import Any, NamedTuple

import jax
import numpy as np
import xarray
from jaxtyping import Float, PyTree

TRACE_FORMAT = 1
_METADATA_FIELDS = (
    "sampler", "hyperparameters", "nbeta", "num_data", "num_steps", "num_burnin", "thinning",
    "key_data", "key_impl", "num_devices", "config", "versions",
)
_VERSIONED_PACKAGES = ("jax", "jaxlib", "numpyro", "blackjax", "arviz", "arviz-base", "arviz-stats", "xarray",
                       "h5netcdf", "numpy", "slt-workbench")


class Trace(NamedTuple):
    """What a run of `slt.sample` keeps. Arrays are numpy, indexed [chain, draw, ...].

    Attributes
    ----------
    loss : L_b(w_t) per draw, the loss at the draw's position on its step's batch (None if the
        record hook dropped it).
    loss_at_center : L_b(w*) on the same batch, so that nβ (loss − loss_at_center) is free of
        the batch-to-batch noise of L_b(w*).
    info : the other recorded fields, e.g. ``mala_acceptance``.
    positions : the parameter pytree with leaves [chain, draw, ...], or None.
    sampler, hyperparameters, nbeta, num_data : from a `Sampler` (None / {} for a bare
        `SamplingAlgorithm`).
    num_steps, num_burnin, thinning : the run's schedule; draw j is step
        num_burnin + (j + 1) · thinning − 1.
    key_data, key_impl : `jax.random.key_data` of the key passed to `sample` and its
        implementation name; `jax.random.wrap_key_data(key_data, impl=key_impl)` rebuilds it.
    num_devices : devices the chains were sharded over (results do not depend on it).
    config : the caller's settings (JSON-serialisable).
    versions : package versions at sampling time (`package_versions()`).
    diagnostics : `slt.run.Diagnostics`, recomputed on load.
    final_positions : the chains' positions after the run's last step, leaves [chain, ...], from
        which a run can be continued (None on a loaded trace: `save_trace` does not write them).
    """

    loss: Float[np.ndarray, "chains draws"] | None
    loss_at_center: Float[np.ndarray, "chains draws"] | None
    info: dict[str, np.ndarray]
    positions: PyTree | None
    sampler: str | None
    hyperparameters: dict[str, Any]
    nbeta: float | None
    num_data: int | None
    num_steps: int
    num_burnin: int
    thinning: int
    key_data: np.ndarray
    key_impl: str
    num_devices: int
    config: dict[str, Any]
    versions: dict[str, str]
    diagnostics: Any = None
    final_positions: PyTree | None = None

    @property
    def num_chains(self) -> int:
        return self._first_array().shape[0]

    @property
    def num_draws(self) -> int:
        return self._first_array().shape[1]

    def _first_array(self) -> np.ndarray:
        for array in (self.loss, self.loss_at_center, *self.info.values(), *jax.tree_util.tree_leaves(self.positions)):
            if array is not None:
                return array
        raise ValueError("the trace recorded nothing")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of python and the packages a trace depends on ("not installed" where absent)."""
    versions = {"python": platform.python_version()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _jsonable(value, where: str):
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (np.ndarray, np.generic)) or (isinstance(value, jax.Array) and not jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)):
        return np.asarray(value).tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where} = {value!r} is not JSON-serialisable; store a number, string, list or dict")


def _position_names(positions) -> list[tuple[str, np.ndarray]]:
    leaves = jax.tree_util.tree_flatten_with_path(positions)[0]
    named = []
    for path, leaf in leaves:
        parts = [str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path]
        named.append((".".join(["position", *parts]), np.asarray(leaf)))
    return named


def to_datatree(trace: Trace) -> xarray.DataTree:
    """The trace as an arviz 1.x DataTree with ``posterior`` and ``sample_stats`` groups."""
    import arviz_base

    posterior = {} if trace.loss is None else {"loss": np.asarray(trace.loss)}
    if trace.positions is not None:
        posterior.update(_position_names(trace.positions))
    sample_stats = {} if trace.loss_at_center is None else {"loss_at_center": np.asarray(trace.loss_at_center)}
    sample_stats.update({name: np.asarray(value) for name, value in trace.info.items()})
    attrs = {name: json.dumps(_jsonable(getattr(trace, name), name)) for name in _METADATA_FIELDS}
    attrs["slt_trace_format"] = TRACE_FORMAT
    if trace.diagnostics is not None:
        attrs["diagnostic_warnings"] = json.dumps(list(trace.diagnostics.warnings))
    groups = {name: group for name, group in (("posterior", posterior), ("sample_stats", sample_stats)) if group}
    return arviz_base.from_dict(groups, attrs={"/": attrs})


def from_datatree(tree: xarray.DataTree, position_template: PyTree | None = None) -> Trace:
    """Inverse of `to_datatree`. Positions come back in the structure of `position_template`
    when given, else as a dict ``{variable name: array}`` (a bare array for ``position``)."""
    from slt.run._diagnostics import diagnose

    if tree.attrs.get("slt_trace_format") != TRACE_FORMAT:
        raise ValueError(f"not an slt trace (slt_trace_format = {tree.attrs.get('slt_trace_format')!r})")
    metadata = {name: json.loads(tree.attrs[name]) for name in _METADATA_FIELDS}
    metadata["key_data"] = np.asarray(metadata["key_data"], dtype=np.uint32)
    posterior = tree["posterior"].to_dataset() if "posterior" in tree.children else xarray.Dataset()
    sample_stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else xarray.Dataset()

    positions = {name: posterior[name].values for name in posterior.data_vars if name.startswith("position")}
    if not positions:
        positions = None
    elif position_template is not None:
        names = [name for name, _ in _position_names(position_template)]
        missing = sorted(set(names) - set(positions))
        if missing:
            raise ValueError(f"position_template has leaves the file lacks: {missing}")
        treedef = jax.tree_util.tree_structure(position_template)
        positions = treedef.unflatten([positions[name] for name in names])
    elif list(positions) == ["position"]:
        positions = positions["position"]

    info = {name: sample_stats[name].values for name in sample_stats.data_vars if name != "loss_at_center"}
    trace = Trace(
        loss=posterior["loss"].values if "loss" in posterior else None,
        loss_at_center=sample_stats["loss_at_center"].values if "loss_at_center" in sample_stats else None,
        info=info,
        positions=positions,
        **metadata,
    )
    return trace._replace(diagnostics=diagnose(trace))


def save_trace(trace: Trace, path: str | os.PathLike) -> None:
    """Write the trace to netCDF-4 (h5netcdf engine) atomically: a temporary file in the same
    folder, then `os.replace`, so a reader never sees a half-written file."""
    tree = to_datatree(trace)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(handle)
    try:
        tree.to_netcdf(temporary, engine="h5netcdf")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def load_trace(path: str | os.PathLike, position_template: PyTree | None = None) -> Trace:
    """Read a trace written by `save_trace` (see `from_datatree` for `position_template`)."""
    with xarray.open_datatree(os.fspath(path), engine="h5netcdf") as tree:
        return from_datatree(tree.load(), position_template)

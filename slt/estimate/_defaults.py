"""Defaults that depend on the data size or the backend: llc's nβ, rlct's temperatures, packing."""

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

import toy_models
from slt.samplers import watanabe_beta

DEFAULT_LLC_NBETA = 1000.0
DEFAULT_RLCT_MAX_NBETA = 3000.0
DEFAULT_POPULATION_RLCT_NBETAS = (100.0, 30_000.0)


def resolve_model(model, params: Mapping[str, Any] | None = None) -> toy_models.ToyModel:
    """A `ToyModel`, or a family name plus `params` for `toy_models.get` (errors are ValueErrors)."""
    if isinstance(model, str):
        return toy_models.get(model, **dict(params or {}))
    if params:
        raise ValueError("params is only for a family name; pass the ToyModel alone")
    if not isinstance(model, toy_models.ToyModel):
        raise ValueError(f"model must be a toy_models.ToyModel or a family name, got {type(model).__name__}")
    return model


def default_nbeta(n: int) -> float:
    """The llc default t = nβ = min(1000, n / log n), i.e. β = min(1000/n, 1/log n) <= Watanabe's β*.

    A small β keeps the data-set fluctuation at the true w* small (≈ −β d/2 for regular models,
    relative ~√β for singular ones); t = 1000 is about as cold as SGLD mixes in seconds on the toy
    models (minibatches make the cost independent of n)."""
    return float(min(DEFAULT_LLC_NBETA, n * watanabe_beta(n)))


def packing_pays() -> bool:
    """Whether to pack jobs into one compiled call by default: on accelerators, not on CPU.

    On a CPU the work is the same either way; XLA compiles the nested vmap over jobs and chains
    more slowly, and its code for the batched minibatch gathers is slower at large batches
    (`benchmarks/batch_speed.py --compare-packing`). A GPU runs one small job far below its
    width, and packing is what fills it."""
    return jax.default_backend() != "cpu"


def default_rlct_nbetas(n: int, num_temperatures: int | None = None, *, population: bool = False) -> np.ndarray:
    """rlct's temperatures: on a data set, 5 from t_max/30 to t_max = min(3000, n/log n); on the
    population (no data-set fluctuation, t unbounded by n), 7 from 100 to 30 000."""
    if population:
        return np.geomspace(DEFAULT_POPULATION_RLCT_NBETAS[0], DEFAULT_POPULATION_RLCT_NBETAS[1],
                            num_temperatures or 7)
    top = min(DEFAULT_RLCT_MAX_NBETA, n * watanabe_beta(n))
    return np.geomspace(top / 30.0, top, num_temperatures or 5)

"""The registry: families by name, their parameters, and the catalogue of reference instances."""

import functools
import inspect
from collections.abc import Callable, Iterable

import jax

from toy_models import _families
from toy_models._families import ModelParameterError
from toy_models._model import ToyModel

_FAMILIES: dict[str, Callable[..., ToyModel]] = {
    "regular": _families.regular,
    "normal_crossing": _families.normal_crossing,
    "rrr": _families.rrr,
    "dln": _families.dln,
    "tanh": _families.tanh,
}

# Parameters that take a comma-separated list on the command line.
_TUPLE_PARAMETERS = {"powers", "prior_powers", "widths"}


class UnknownModelError(ModelParameterError):
    """No family of that name."""


def names() -> tuple[str, ...]:
    """The family names `get` accepts."""
    return tuple(_FAMILIES)


def parameters(name: str) -> dict[str, object]:
    """A family's parameter names with their defaults (`inspect.Parameter.empty` if required)."""
    return {p.name: p.default for p in inspect.signature(_family(name)).parameters.values()}


def _family(name: str) -> Callable[..., ToyModel]:
    if name not in _FAMILIES:
        raise UnknownModelError(f"unknown model family {name!r}; known families: {', '.join(_FAMILIES)}")
    return _FAMILIES[name]


def get(name: str, **params) -> ToyModel:
    """Build one instance: `get("rrr", M=5, H=3, N=5, r=0)`.

    Raises `ModelParameterError` naming the parameter for unknown, missing or invalid ones.
    """
    family = _family(name)
    accepted = parameters(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ModelParameterError(
            f"{name}: unknown parameter {unknown[0]!r}; accepted: {', '.join(accepted)}"
        )
    missing = [k for k, default in accepted.items() if default is inspect.Parameter.empty and k not in params]
    if missing:
        raise ModelParameterError(f"{name}: missing required parameter {missing[0]!r}")
    try:
        return _cached_instance(name, tuple(sorted(params.items())), bool(jax.config.jax_enable_x64))
    except TypeError:  # an unhashable value (a list): build it uncached
        return family(**params)


@functools.lru_cache(maxsize=256)
def _cached_instance(name: str, params: tuple, x64: bool) -> ToyModel:
    """One object per (family, parameters, x64 mode): models are immutable, and the samplers'
    compiled code is keyed on the loss function's owner, so equal models share executables.
    A model built under `jax.enable_x64` holds 64-bit arrays (w*, exponents) and must not be
    handed out in 32-bit mode, where they would promote a float32 run to float64 requests."""
    return _family(name)(**dict(params))


def parse_assignments(name: str, assignments: Iterable[str]) -> dict[str, object]:
    """Turn command-line `KEY=VALUE` strings into keyword arguments for `get(name, ...)`.

    Integers stay integers; list parameters (`powers`, `prior_powers`, `widths`) take
    comma-separated integers, optionally in brackets: `powers=1,2`, `widths=[4,3,3,4]`.
    """
    accepted = parameters(name)
    parsed: dict[str, object] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise ModelParameterError(f"{name}: expected KEY=VALUE, got {assignment!r}")
        if key not in accepted:
            raise ModelParameterError(f"{name}: unknown parameter {key!r}; accepted: {', '.join(accepted)}")
        try:
            if key in _TUPLE_PARAMETERS:
                parsed[key] = tuple(int(part) for part in raw.strip("[]()").split(",") if part.strip())
            else:
                parsed[key] = int(raw)
        except ValueError:
            raise ModelParameterError(f"{name}: parameter {key!r} must be integer-valued, got {raw!r}") from None
    return parsed


# Reference instances with published λ: the test sets of the sources and the checks.
_CATALOGUE: tuple[tuple[str, dict], ...] = (
    *(("regular", {"d": d}) for d in (1, 2, 5, 10)),
    *(
        ("normal_crossing", {"powers": k, "prior_powers": h})
        for k, h in (
            ((1,), (0,)),
            ((2,), (0,)),
            ((1, 1), (0, 0)),
            ((1, 2), (0, 0)),
            ((1, 3), (0, 0)),
            ((1, 3), (1, 0)),
            ((3, 1), (1, 1)),
            ((2, 1), (2, 2)),
            ((1, 1), (1, 1)),
            ((4, 1), (6, 3)),
            ((3, 1), (3, 2)),
            ((2, 2), (0, 0)),
            ((1, 1, 1), (0, 0, 0)),
        )
    ),
    *(
        ("rrr", {"M": M, "H": H, "N": N, "r": r})
        for M, H, N, r in ((5, 3, 5, 0), (5, 4, 5, 0), (4, 3, 8, 0), (8, 3, 4, 0), (3, 8, 4, 0), (3, 2, 4, 0), (5, 3, 5, 1))
    ),
    *(
        ("dln", {"widths": w, "r": r})
        for w, r in (((2, 2, 2), 0), ((2, 2, 2), 1), ((3, 3, 3, 3), 0), ((3, 3, 3, 3), 1), ((1, 1, 1, 1), 0), ((4, 3, 3, 4), 1), ((10, 5, 10), 5))
    ),
    *(("tanh", {"H": H, "true_units": 0}) for H in (1, 2, 3, 4, 5)),
)


def catalogue() -> tuple[ToyModel, ...]:
    """Every reference instance (cheap: no data is sampled)."""
    return tuple(get(name, **params) for name, params in _CATALOGUE)

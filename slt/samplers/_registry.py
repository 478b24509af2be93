"""The sampler registry: a name -> kernel constructor table, and `make_sampler`."""

import inspect
from collections.abc import Callable

from slt.samplers._exact import hmc, mala, nuts
from slt.samplers._kernel import Sampler, SamplingAlgorithm, TracedKernel
from slt.samplers._posterior import TemperedPosterior
from slt.samplers._sg import rmsprop_sgld, sghmc, sgnht
from slt.samplers._sgld import sgld


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

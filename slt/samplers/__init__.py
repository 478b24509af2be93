"""Samplers: the kernel contract, the target density, one module per kernel family, the registry.

A kernel is a `SamplingAlgorithm(init, step)` built from a `TemperedPosterior` and its own
hyperparameters; `slt.run.sample` runs any of them. `make_sampler(name, posterior, ...)` builds a
registered one with the metadata a trace records.
"""

from slt.samplers._exact import (
    ExactState,
    MALAState,
    ReferenceDraws,
    WindowAdaptationResult,
    hmc,
    mala,
    numpyro_nuts_reference,
    nuts,
    window_adaptation,
)
from slt.samplers._kernel import (
    ClosureKernel,
    Sampler,
    SamplingAlgorithm,
    TracedKernel,
    all_finite,
    check_batch_size,
    check_step_size,
    mala_log_acceptance,
)
from slt.samplers._posterior import Params, TemperedPosterior, langevin_step, squared_distance, watanabe_beta
from slt.samplers._registry import (
    SAMPLERS,
    TRACED_OPERAND_SAMPLERS,
    UnknownSamplerError,
    make_sampler,
    register_sampler,
    sampler_names,
)
from slt.samplers._sg import RMSPropSGLDState, SGHMCState, SGNHTState, rmsprop_sgld, sghmc, sgnht
from slt.samplers._sgld import SGLDInfo, SGLDState, sgld

__all__ = [
    "SAMPLERS",
    "TRACED_OPERAND_SAMPLERS",
    "ClosureKernel",
    "ExactState",
    "MALAState",
    "Params",
    "RMSPropSGLDState",
    "ReferenceDraws",
    "SGHMCState",
    "SGLDInfo",
    "SGLDState",
    "SGNHTState",
    "Sampler",
    "SamplingAlgorithm",
    "TemperedPosterior",
    "TracedKernel",
    "UnknownSamplerError",
    "WindowAdaptationResult",
    "all_finite",
    "check_batch_size",
    "check_step_size",
    "hmc",
    "langevin_step",
    "make_sampler",
    "mala",
    "mala_log_acceptance",
    "numpyro_nuts_reference",
    "nuts",
    "register_sampler",
    "rmsprop_sgld",
    "sampler_names",
    "sghmc",
    "sgld",
    "sgnht",
    "squared_distance",
    "watanabe_beta",
    "window_adaptation",
]

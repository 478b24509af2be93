"""Samplers, traces, dynamics and the command line of the singular learning theory workbench.

    posterior = slt.TemperedPosterior.from_model(model, data, localization=1.0)
    trace = slt.sample(slt.sgld(posterior, step_size=1e-4, batch_size=100), model.w_star,
                       jax.random.key(0), num_chains=8, num_steps=5000, num_burnin=1000)
    estimators.llc(trace.loss, trace.loss_at_center, posterior.nbeta)
"""

import importlib.metadata as _metadata

from slt.estimate import EstimateResult, estimate, estimate_many  # binds slt.estimate to the function
from slt.run import (
    Diagnostics,
    NonFiniteError,
    Trace,
    default_record,
    diagnose,
    from_datatree,
    load_trace,
    package_versions,
    prng_key,
    sample,
    sample_jobs,
    save_trace,
    to_datatree,
)
from slt.run._compilation_cache import enable_compilation_cache
from slt.samplers import (
    SAMPLERS,
    ExactState,
    MALAState,
    ReferenceDraws,
    RMSPropSGLDState,
    Sampler,
    SamplingAlgorithm,
    SGHMCState,
    SGLDInfo,
    SGLDState,
    SGNHTState,
    TemperedPosterior,
    UnknownSamplerError,
    WindowAdaptationResult,
    hmc,
    langevin_step,
    make_sampler,
    mala,
    mala_log_acceptance,
    numpyro_nuts_reference,
    nuts,
    register_sampler,
    rmsprop_sgld,
    sampler_names,
    sghmc,
    sgld,
    sgnht,
    watanabe_beta,
    window_adaptation,
)

try:  # the installed distribution's version; a source tree on PYTHONPATH without an install has none
    __version__ = _metadata.version("slt-workbench")
except _metadata.PackageNotFoundError:
    __version__ = "0+unknown"

__all__ = [
    "SAMPLERS",
    "Diagnostics",
    "EstimateResult",
    "ExactState",
    "MALAState",
    "NonFiniteError",
    "RMSPropSGLDState",
    "ReferenceDraws",
    "SGHMCState",
    "SGLDInfo",
    "SGLDState",
    "SGNHTState",
    "Sampler",
    "SamplingAlgorithm",
    "TemperedPosterior",
    "Trace",
    "UnknownSamplerError",
    "WindowAdaptationResult",
    "default_record",
    "diagnose",
    "enable_compilation_cache",
    "estimate",
    "estimate_many",
    "from_datatree",
    "hmc",
    "langevin_step",
    "load_trace",
    "make_sampler",
    "mala",
    "mala_log_acceptance",
    "numpyro_nuts_reference",
    "nuts",
    "package_versions",
    "prng_key",
    "register_sampler",
    "rmsprop_sgld",
    "sample",
    "sample_jobs",
    "sampler_names",
    "save_trace",
    "sghmc",
    "sgld",
    "sgnht",
    "to_datatree",
    "watanabe_beta",
    "window_adaptation",
]

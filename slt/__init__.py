"""Samplers, traces, dynamics and the command line of the singular learning theory workbench.

    posterior = slt.TemperedPosterior.from_model(model, data, localization=1.0)
    trace = slt.sample(slt.sgld(posterior, step_size=1e-4, batch_size=100), model.w_star,
                       jax.random.key(0), num_chains=8, num_steps=5000, num_burnin=1000)
    estimators.llc(trace.loss, trace.loss_at_center, posterior.nbeta)
"""

from slt._compilation_cache import enable_compilation_cache
from slt._diagnostics import Diagnostics, diagnose
from slt._estimate import EstimateResult, estimate, estimate_many
from slt._driver import (
    SAMPLERS,
    NonFiniteError,
    Sampler,
    UnknownSamplerError,
    default_record,
    make_sampler,
    register_sampler,
    sample,
    sample_jobs,
    sampler_names,
)
from slt._kernel import SamplingAlgorithm, SGLDInfo, SGLDState, mala_log_acceptance, sgld
from slt._kernels_exact import (
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
from slt._kernels_sg import RMSPropSGLDState, SGHMCState, SGNHTState, rmsprop_sgld, sghmc, sgnht
from slt._nested import (
    NestedEstimate,
    NestedRun,
    NestedSamplingError,
    live_point_counts,
    load_nested_run,
    nested_finite_temperature_rlct,
    nested_rlct,
    nested_sample_model,
    nested_sampling,
    save_nested_run,
)
from slt._posterior import TemperedPosterior, langevin_step, watanabe_beta
from slt._trace import Trace, from_datatree, load_trace, package_versions, save_trace, to_datatree

__all__ = [
    "NestedEstimate",
    "NestedRun",
    "NestedSamplingError",
    "live_point_counts",
    "load_nested_run",
    "nested_finite_temperature_rlct",
    "nested_rlct",
    "nested_sample_model",
    "nested_sampling",
    "save_nested_run",
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

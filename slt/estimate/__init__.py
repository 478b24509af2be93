"""From a model to a learning-coefficient estimate with its error bar.

    result = slt.estimate(toy_models.get("normal_crossing", powers=(1, 1)), method="llc",
                          key=jax.random.key(0))
    result.estimate, result.std_error, result.unreliable, result.to_json()

`EstimateSettings` holds every setting with its default and is checked once; the methods are
objects in `slt.estimate.methods` (one module each, one table); `EstimateHooks` replaces pieces of
the pipeline for planted-bug tests.
"""

from slt.estimate._calibration import (
    GradientStatistics,
    StepSizeCalibration,
    absolute_step_size_bias,
    calibrate_sgld_step_sizes,
    calibrate_step_sizes,
    pilot_gradient_statistics_jobs,
    step_size_bias,
)
from slt.estimate._defaults import default_nbeta, default_rlct_nbetas, packing_pays, resolve_model
from slt.estimate._pipeline import estimate, estimate_jobs, estimate_many, in_model_coordinates, sampled_model
from slt.estimate._result import INTERVAL_NOTE, INTERVAL_Z, EstimateResult
from slt.estimate._run_diagnostics import MAX_PREDICTED_STEP_SIZE_BIAS, MIN_LANGEVIN_TIME
from slt.estimate._runs import (
    GRADIENT_SHARE_DRAWS_PER_CHAIN,
    LIGHT_TAILED_SHARE,
    MAX_GRADIENT_SHARE,
    MAX_REFINED_LENGTHENING,
    REFINE_BIAS_FACTOR,
    EstimateHooks,
    drawn_gradient_statistics,
    tail_persisted,
)
from slt.estimate._settings import (
    DEFAULT_BIAS_TOLERANCE,
    DEFAULT_NUM_DATA,
    DEFAULT_NUM_DRAWS,
    DEFAULT_THINNING,
    EstimateSettings,
    SettingsError,
)
from slt.estimate.methods import METHODS, Method, MethodContext, MethodOutcome, get_method, llc_at_temperatures

__all__ = [
    "DEFAULT_BIAS_TOLERANCE",
    "DEFAULT_NUM_DATA",
    "DEFAULT_NUM_DRAWS",
    "DEFAULT_THINNING",
    "GRADIENT_SHARE_DRAWS_PER_CHAIN",
    "INTERVAL_NOTE",
    "INTERVAL_Z",
    "LIGHT_TAILED_SHARE",
    "MAX_GRADIENT_SHARE",
    "MAX_PREDICTED_STEP_SIZE_BIAS",
    "MAX_REFINED_LENGTHENING",
    "METHODS",
    "MIN_LANGEVIN_TIME",
    "REFINE_BIAS_FACTOR",
    "EstimateHooks",
    "EstimateResult",
    "EstimateSettings",
    "GradientStatistics",
    "Method",
    "MethodContext",
    "MethodOutcome",
    "SettingsError",
    "StepSizeCalibration",
    "absolute_step_size_bias",
    "calibrate_sgld_step_sizes",
    "calibrate_step_sizes",
    "default_nbeta",
    "default_rlct_nbetas",
    "drawn_gradient_statistics",
    "estimate",
    "estimate_jobs",
    "estimate_many",
    "get_method",
    "in_model_coordinates",
    "llc_at_temperatures",
    "packing_pays",
    "pilot_gradient_statistics_jobs",
    "resolve_model",
    "sampled_model",
    "step_size_bias",
    "tail_persisted",
]

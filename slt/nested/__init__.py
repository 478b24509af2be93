"""Nested sampling of the density of states V(ε) = ∫_{K(w)<ε} φ(w) dw (Skilling 2006), from which
`estimators.rlct_from_dead_points` reads λ and m and `estimators.lambda_curve` reads F(t) and λ(t)
at every temperature at once. See `nested_sampling` for the moves and the stopping rule.
`region_log_volume` measures the Gaussian prior mass of a region {K = 0} (Mingard et al.'s P(f))."""

from slt.nested._noise_floor import NOISE_FLOOR_MARGIN, above_noise_floor, data_loss_minimum, data_window_end
from slt.nested._region import RegionVolume, region_draws, region_log_volume
from slt.nested._sampler import (
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

__all__ = [
    "NOISE_FLOOR_MARGIN",
    "above_noise_floor",
    "data_loss_minimum",
    "data_window_end",
    "NestedEstimate",
    "NestedRun",
    "NestedSamplingError",
    "RegionVolume",
    "live_point_counts",
    "load_nested_run",
    "nested_finite_temperature_rlct",
    "nested_rlct",
    "nested_sample_model",
    "nested_sampling",
    "region_draws",
    "region_log_volume",
    "save_nested_run",
]

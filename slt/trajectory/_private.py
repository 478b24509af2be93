"""The one place `slt.trajectory` reaches into private modules of `slt`.

Re-point these imports when the modules move (the planned `slt/samplers/`, `slt/run/`, ...):

- `TracedKernel` (slt._driver): lets a restricted-LLC kernel be a traced kernel, so
  `slt.sample_jobs` packs checkpoints of one subset into one compiled call.
- `calibrate_step_size`, `pilot_gradient_statistics`, `step_size_bias`,
  `absolute_step_size_bias`, `GradientStatistics` (slt._calibration): the same two-stage step-size
  calibration and SGLD-bias prediction that `slt.estimate` uses.
"""

from slt._calibration import (  # noqa: F401
    GradientStatistics,
    absolute_step_size_bias,
    calibrate_step_size,
    pilot_gradient_statistics,
    step_size_bias,
)
from slt._driver import TracedKernel  # noqa: F401

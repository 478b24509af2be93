"""Single-posterior forms of `slt.estimate`'s step-size calibration, for the one calibration a
trajectory makes: the same bisection on pilot MALA acceptance and the same SGLD-bias pilot, with
the same keys, as `slt.estimate.calibrate_step_sizes` / `pilot_gradient_statistics_jobs` for one job."""

from slt.estimate import (
    GradientStatistics,
    StepSizeCalibration,
    absolute_step_size_bias,
    calibrate_step_sizes,
    pilot_gradient_statistics_jobs,
    step_size_bias,
)

__all__ = ["GradientStatistics", "absolute_step_size_bias", "calibrate_step_size", "pilot_gradient_statistics",
           "step_size_bias"]


def calibrate_step_size(posterior, positions, key, *, batch_size, target_acceptance=0.9, num_steps=400,
                        base_step_size=None, num_candidates=16) -> StepSizeCalibration:
    """`calibrate_step_sizes` for one posterior: the largest ε = ε_0 · 2^k with pilot MALA acceptance
    >= `target_acceptance` whose next grid value fails (positions carry a leading chain axis)."""
    return calibrate_step_sizes([posterior], [positions], [key], batch_size=batch_size,
                                target_acceptance=target_acceptance, num_steps=num_steps,
                                base_step_size=base_step_size, num_candidates=num_candidates)[0]


def pilot_gradient_statistics(posterior, positions, key, *, batch_size, step_size, num_steps) -> GradientStatistics:
    """`pilot_gradient_statistics_jobs` for one posterior: E|ĝ|² and E[nβ(L_b(w) − L_b(w*))] over
    the second half of an SGLD pilot at `step_size`."""
    return pilot_gradient_statistics_jobs([posterior], [positions], [key], batch_size=batch_size,
                                          step_sizes=[step_size], num_steps=num_steps)[0]

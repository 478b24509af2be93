"""The estimate's progress bar: its total planned in advance, and the calibration stage's report.

Total (chain-steps) = jobs × SGLD runs per job (`Method.planned_sgld_runs`) × chains ×
(calibration + main run), with calibration = (`CALIBRATION_PROBES` + `GRADIENT_PILOT_FACTOR`) ×
`pilot_steps` when ε is calibrated. The main runs feed the bar from inside the compiled loop (the
driver); the calibration pilots run their own scans, so their stage is reported when it ends, at
the gradient pilot's hook (`EstimateHooks.pilot_gradient_statistics`). The stages that are not
planned, a step-size refinement or a divergent run retried at ε/4, extend the total when they
start, and the bar says so.
"""

import contextlib
from collections.abc import Iterator

import jax

from slt.estimate._runs import EstimateHooks
from slt.estimate._settings import EstimateSettings
from slt.run import CHAIN_STEPS, advance_progress, open_bar, progress_bar

# `calibrate_step_sizes` bisects a 16-point ε grid: at most ⌈log2 17⌉ = 5 probes of pilot_steps each
CALIBRATION_PROBES = 5
# the gradient pilot at ε_MALA / 4 runs 4 × pilot_steps (`slt.estimate._runs.sgld_runs`)
GRADIENT_PILOT_FACTOR = 4
EXTENSION_NOTE = "step-size refinement or a divergent run retried"


def planned_chain_steps(method, settings: EstimateSettings, num_jobs: int) -> int:
    """The bar's total: every planned calibration and main-run step of every chain of every job."""
    calibration = 0 if settings.step_size is not None else (CALIBRATION_PROBES + GRADIENT_PILOT_FACTOR) * settings.pilot_steps
    return num_jobs * method.planned_sgld_runs(settings) * settings.num_chains * (calibration + settings.num_steps)


@contextlib.contextmanager
def estimate_progress(label: str, method, settings: EstimateSettings, num_jobs: int, hooks: EstimateHooks, *,
                      enabled: bool | None, stream=None) -> Iterator[EstimateHooks]:
    """A bar over the estimate's planned chain-steps while the body runs; yields the hooks to run
    with (the given ones, reporting the calibration stage when the bar shows). `enabled` None: as
    `slt.run.progress_wanted`, and not inside another open bar."""
    total = planned_chain_steps(method, settings, num_jobs)
    if not total or (enabled is None and open_bar(CHAIN_STEPS) is not None):
        yield hooks
        return
    with progress_bar(f"slt estimate {label}", total, enabled=enabled, stream=stream,
                      extension_note=EXTENSION_NOTE) as bar:
        yield hooks if bar is None else _reporting_calibration(hooks, settings)


def _reporting_calibration(hooks: EstimateHooks, settings: EstimateSettings) -> EstimateHooks:
    """`hooks` whose gradient pilot reports the MALA bisection done when it starts and itself
    when it ends (it runs right after the bisection, once per `sgld_runs` call)."""
    pilot = hooks.pilot_gradient_statistics

    def reporting_pilot(posteriors, positions, keys, *, num_steps, **options):
        chains = len(posteriors) * jax.tree_util.tree_leaves(positions[0])[0].shape[0]
        advance_progress(CALIBRATION_PROBES * settings.pilot_steps * chains)
        statistics = pilot(posteriors, positions, keys, num_steps=num_steps, **options)
        advance_progress(num_steps * chains)
        return statistics

    return hooks._replace(pilot_gradient_statistics=reporting_pilot)

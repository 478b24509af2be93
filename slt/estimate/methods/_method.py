"""The interface every estimate method implements, and what it is handed and returns."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from slt.estimate._runs import DEFAULT_HOOKS, EstimateHooks
from slt.estimate._settings import EstimateSettings


class MethodOutcome(NamedTuple):
    """One job's estimate: `estimate` ± `std_error` at the reported `nbeta`, the method's
    diagnostics (a JSON-ready dict with at least reliable/unreliable/reasons/warnings), and the
    `temperatures` at which the exact λ(t) is looked up (`Method.exact`)."""

    estimate: float
    std_error: float
    nbeta: float
    diagnostics: dict[str, Any]
    temperatures: Any


@dataclass(frozen=True)
class MethodContext:
    """What the pipeline hands a method besides model, data and key.

    hooks : the replaceable pieces (`EstimateHooks`).
    data_source : with `settings.population`, `model.sample_expected_data`; else None.
    pack : run the jobs of one call packed into one compiled call per stage.
    trace_sinks : with `settings.keep_traces`, one list per job that collects (label, `Trace`).
    progress : the caller's `progress=` (for a method that draws its own bar: nested sampling).
    """

    hooks: EstimateHooks = DEFAULT_HOOKS
    data_source: Callable | None = None
    pack: bool = False
    trace_sinks: Sequence[list] | None = None
    progress: bool | None = False


class Method(Protocol):
    """An estimate method: a name, a settings check, and a run.

    `validate(settings)` raises `SettingsError` for settings the method refuses (called once, by
    `EstimateSettings.__post_init__`); `run_jobs(model, datas, keys, settings, context)` returns
    per job a `MethodOutcome`, or the ValueError / FloatingPointError that job failed with;
    `exact(model, outcome, settings, exact_at)` returns the (exact value, why not) pair and may add
    entries to `outcome.diagnostics`. `JobsOneByOne` gives `run_jobs` from a one-job `run`.
    """

    name: str
    # why a user model (`toy_models.from_loss`: a loss and a data set, no prior draws, no per-datum
    # likelihood) cannot take this method, or None if it can
    user_model_refusal: str | None

    def validate(self, settings: EstimateSettings) -> None: ...

    def planned_sgld_runs(self, settings: EstimateSettings) -> int:
        """SGLD runs (each: calibration, then the main run) one job makes; what the progress bar plans."""
        ...

    def run_jobs(self, model, datas: Sequence[Any], keys: Sequence[Any], settings: EstimateSettings,
                 context: MethodContext) -> list["MethodOutcome | Exception"]: ...

    def exact(self, model, outcome: MethodOutcome, settings: EstimateSettings,
              exact_at: Callable[[float], tuple[float | None, str | None]]) -> tuple[float | None, str | None]: ...


class JobsOneByOne:
    """Base for a method that runs one job at a time: subclasses define `name`, `validate` and
    `run(model, data, key, settings, context, trace_sink) -> MethodOutcome`. A single job's error
    propagates; with several jobs each failed job gets its error in its place."""

    name: ClassVar[str]
    user_model_refusal: ClassVar[str | None] = None

    def validate(self, settings: EstimateSettings) -> None:
        pass

    def planned_sgld_runs(self, settings: EstimateSettings) -> int:
        return 1

    def run(self, model, data, key, settings: EstimateSettings, context: MethodContext,
            trace_sink: list | None) -> MethodOutcome:
        raise NotImplementedError

    def run_jobs(self, model, datas, keys, settings, context):
        outcomes = []
        for job, (data, key) in enumerate(zip(datas, keys)):
            sink = None if context.trace_sinks is None else context.trace_sinks[job]
            try:
                outcomes.append(self.run(model, data, key, settings, context, sink))
            except (ValueError, FloatingPointError) as error:
                if len(keys) == 1:
                    raise
                outcomes.append(error)
        return outcomes

    def exact(self, model, outcome, settings, exact_at):
        return exact_at(float(outcome.nbeta))


def global_posterior_only(settings: EstimateSettings, nbeta_reason: str, localization_reason: str) -> None:
    """The check of wbic, ti and waic: no nβ of the caller's, no localisation."""
    from slt.estimate._settings import SettingsError

    if settings.nbeta is not None:
        raise SettingsError("nbeta", f"not allowed for method '{settings.method}': {nbeta_reason}")
    if settings.localization:
        raise SettingsError("localization", f"must be 0 for method '{settings.method}': {localization_reason}")


def run_length_diagnostics(settings: EstimateSettings) -> dict[str, int]:
    return {"num_chains": settings.num_chains, "num_draws": settings.num_draws, "thinning": settings.thinning}


def as_array(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)

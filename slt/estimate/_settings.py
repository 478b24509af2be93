"""`EstimateSettings`: every setting of an estimate, its default, and its check, in one place."""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

DEFAULT_NUM_DATA = 1_000_000
DEFAULT_NUM_DRAWS = 4000  # 4000 draws × thinning 10: benchmarks/results/thinning_study.md
DEFAULT_THINNING = 10
DEFAULT_BATCH_SIZE = 1000
DEFAULT_BIAS_TOLERANCE = 0.02  # calibrated ε targets a predicted relative SGLD bias of 2 %
MAX_STEP_SIZE_REFINEMENTS = 2


class SettingsError(ValueError):
    """A bad setting: `field` names it, `problem` says what is wrong ("must be ..., got ...")."""

    def __init__(self, field: str, problem: str, message: str | None = None):
        self.field, self.problem = field, problem
        super().__init__(message or f"{field} {problem}")


def _integer(field: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SettingsError(field, f"must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _number(field: str, value, *, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = False) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open or high == math.inf else "]"
        top = "∞" if high == math.inf else f"{high:g}"
        raise SettingsError(field, f"must be a finite number in {left}{low:g}, {top}{right}, got {value!r}")
    return float(value)


def _boolean(field: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise SettingsError(field, f"must be true or false, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class EstimateSettings:
    """The settings of `slt.estimate`, checked once on construction (`SettingsError`, a ValueError
    naming the field and the bad value); immutable, so a checked object stays checked.

    Attributes
    ----------
    method : a name in `slt.estimate.METHODS` ("llc", "wbic", "rlct", "ti", "waic", "nested").
    n : data size (>= 2); the data are `model.sample_data(key_data, n)`.
    num_chains, num_draws, thinning : per temperature; each chain records num_draws draws, one
        per `thinning` steps, after num_draws · thinning / 4 burn-in steps.
    nbeta : t = nβ for llc (default min(1000, n / log n)); refused by the other methods.
    nbetas : rlct's temperatures (at least 4 distinct values > 1; default `default_rlct_nbetas`).
    localization : γ >= 0; must be 0 for wbic, ti and waic (global posterior).
    batch_size : SGLD minibatch (None: full batch; capped at n on a data set, see `minibatch_size`).
    step_size : ε; None calibrates it (pilot MALA acceptance >= `target_acceptance`, then a
        predicted relative SGLD bias of `bias_tolerance`).
    pilot_steps : steps of each calibration pilot (>= 2).
    exact : for d <= 2 also compute the exact population-limit λ(nβ) by quadrature.
    keep_traces : keep every main SGLD run's trace in `EstimateResult.traces`.
    population : llc and rlct only: fresh minibatches with the label noise integrated out.
    max_step_size_refinements : how often a run whose own draws predict too much SGLD bias is
        continued at a smaller ε (0 turns the refinement off).
    sampling_coordinates : sample a |w|^h prior with h <= 1 in u = sign(w)|w|^(h+1)
        (`ToyModel.in_sampling_coordinates`); False samples in w itself.
    """

    method: str = "llc"
    n: int = DEFAULT_NUM_DATA
    num_chains: int = 4
    num_draws: int = DEFAULT_NUM_DRAWS
    thinning: int = DEFAULT_THINNING
    nbeta: float | None = None
    nbetas: tuple[float, ...] | None = None
    localization: float = 0.0
    batch_size: int | None = DEFAULT_BATCH_SIZE
    step_size: float | None = None
    target_acceptance: float = 0.9
    bias_tolerance: float = DEFAULT_BIAS_TOLERANCE
    pilot_steps: int = 400
    exact: bool = True
    keep_traces: bool = False
    population: bool = False
    max_step_size_refinements: int = MAX_STEP_SIZE_REFINEMENTS
    sampling_coordinates: bool = True

    def __post_init__(self):
        from slt.estimate.methods import METHODS, get_method  # the table imports this module

        if not isinstance(self.method, str) or self.method not in METHODS:
            raise SettingsError("method", f"unknown: {self.method!r}; known methods: {', '.join(METHODS)}",
                                message=f"unknown method {self.method!r}; known methods: {', '.join(METHODS)}")
        checked = {
            "n": _integer("n", self.n, 2),
            "num_chains": _integer("num_chains", self.num_chains, 1),
            "num_draws": _integer("num_draws", self.num_draws, 2),
            "thinning": _integer("thinning", self.thinning, 1),
            "pilot_steps": _integer("pilot_steps", self.pilot_steps, 2),
            "max_step_size_refinements": _integer("max_step_size_refinements", self.max_step_size_refinements, 0),
            "localization": _number("localization", self.localization, low=0.0),
            "target_acceptance": _number("target_acceptance", self.target_acceptance, low=0.0, high=1.0,
                                         low_open=True, high_open=True),
            "bias_tolerance": _number("bias_tolerance", self.bias_tolerance, low=0.0, high=1.0, low_open=True,
                                      high_open=True),
            "exact": _boolean("exact", self.exact),
            "keep_traces": _boolean("keep_traces", self.keep_traces),
            "population": _boolean("population", self.population),
            "sampling_coordinates": _boolean("sampling_coordinates", self.sampling_coordinates),
        }
        if self.nbeta is not None:
            checked["nbeta"] = _number("nbeta", self.nbeta, low=0.0, low_open=True)
        if self.step_size is not None:
            checked["step_size"] = _number("step_size", self.step_size, low=0.0, low_open=True)
        if self.batch_size is not None:
            checked["batch_size"] = _integer("batch_size", self.batch_size, 1)
        if self.nbetas is not None:
            if self.method != "rlct":
                raise SettingsError("nbetas", f"only for method 'rlct' (this method is '{self.method}')")
            values = np.ravel(np.asarray(self.nbetas, dtype=np.float64)) if _all_numbers(self.nbetas) else None
            if (values is None or values.size < 4 or np.any(~np.isfinite(values)) or np.any(values <= 1)
                    or np.unique(values).size != values.size):
                raise SettingsError("nbetas", f"must hold at least 4 distinct nbetas > 1, got {_listed(self.nbetas)}")
            checked["nbetas"] = tuple(float(t) for t in values)
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        if self.population:
            if self.method not in ("llc", "rlct"):
                raise SettingsError("population", f"sampling is for llc and rlct; {self.method} is a property of "
                                    "one data set")
            if self.batch_size is None:
                raise SettingsError("batch_size", "must be given with population sampling (it draws fresh "
                                    "minibatches), not None")
        get_method(self.method).validate(self)

    def replace(self, **changes) -> "EstimateSettings":
        """A copy with `changes`, checked again."""
        return dataclasses.replace(self, **changes)

    @property
    def minibatch_size(self) -> int | None:
        """The minibatch the samplers use: `batch_size` capped at n on a data set, None for the
        full data set (a population has no size, so there it is `batch_size` itself)."""
        if self.batch_size is None or self.population:
            return self.batch_size
        return None if self.batch_size >= self.n else self.batch_size

    @property
    def num_burnin(self) -> int:
        return max(self.num_draws * self.thinning // 4, 1)

    @property
    def num_steps(self) -> int:
        return self.num_burnin + self.num_draws * self.thinning


def _all_numbers(values) -> bool:
    try:
        return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                   for v in np.ravel(np.asarray(values, dtype=object)))
    except (TypeError, ValueError):
        return False


def _listed(values):
    return np.ravel(np.asarray(values, dtype=object)).tolist() if _all_numbers(values) else values

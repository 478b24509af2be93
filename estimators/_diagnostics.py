"""Trace validation, Monte-Carlo standard errors and convergence diagnostics shared by every estimator.

A trace is an array shaped [chains, draws]. The Monte-Carlo standard error (MCSE) of a mean is

    MCSE = sd / √ESS,

with sd the pooled sample standard deviation and ESS the bulk effective sample size over all
chains (rank-normalised, split-chain; Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021,
"Rank-normalization, folding, and localization", Bayesian Analysis 16(2)), computed by
`arviz_stats.ess(method="bulk")`. The ESS uses the autocorrelation inside each chain and the
agreement between chains, so a single stuck chain lowers it; the error bar is not the spread of
the chain means alone.

Thresholds (Vehtari et al. 2021): a result is flagged unreliable when the rank-normalised split
R-hat exceeds 1.01 or the bulk or tail ESS is below 100 (their recommendation is 100 per chain for
4 chains; 100 in total is the least we accept for a standard error to mean anything).
"""

from typing import NamedTuple

import arviz_stats
import numpy as np
from jaxtyping import ArrayLike

RHAT_THRESHOLD = 1.01
MIN_ESS = 100.0


class Diagnostics(NamedTuple):
    """Convergence diagnostics of the trace an estimate was averaged over.

    Attributes
    ----------
    num_chains, num_draws : the trace's shape.
    rhat : rank-normalised split R-hat (NaN where undefined, e.g. a constant trace).
    ess_bulk, ess_tail : bulk and tail (5 % / 95 % quantile) effective sample sizes, all chains.
    warnings : informational notes that do not by themselves make the estimate unreliable.
    reasons : why the estimate is unreliable; empty when it passed every check.
    """

    num_chains: int
    num_draws: int
    rhat: float
    ess_bulk: float
    ess_tail: float
    warnings: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def unreliable(self) -> bool:
        return bool(self.reasons)

    def with_reasons(self, *reasons: str) -> "Diagnostics":
        return self._replace(reasons=self.reasons + tuple(r for r in reasons if r))

    def with_warnings(self, *warnings: str) -> "Diagnostics":
        return self._replace(warnings=self.warnings + tuple(w for w in warnings if w))

    def summary(self) -> str:
        head = (f"chains={self.num_chains} draws={self.num_draws} R-hat={self.rhat:.4f} "
                f"ESS bulk={self.ess_bulk:.0f} tail={self.ess_tail:.0f}")
        lines = [head]
        lines += [f"UNRELIABLE: {r}" for r in self.reasons]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def no_trace_diagnostics(**counts) -> Diagnostics:
    """Diagnostics for an estimate computed from given means or fits (no trace): R-hat and ESS are
    NaN, and `num_draws` counts the points (temperatures, sample sizes, prior draws) it used."""
    return Diagnostics(num_chains=counts.get("num_chains", 0), num_draws=counts.get("num_draws", 0),
                       rhat=float("nan"), ess_bulk=float("nan"), ess_tail=float("nan"))


def as_trace(trace: ArrayLike, name: str = "trace") -> np.ndarray:
    """The trace as float64 numpy [chains, draws]; a clear ValueError if empty, misshapen or non-finite."""
    array = np.asarray(trace, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be shaped [chains, draws], got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}): no draws to estimate from")
    finite = np.isfinite(array)
    if not finite.all():
        bad_chains = np.flatnonzero(~finite.all(axis=1))
        chain = int(bad_chains[0])
        draw = int(np.flatnonzero(~finite[chain])[0])
        kind = "NaN" if np.isnan(array[chain, draw]) else "inf"
        raise ValueError(
            f"{name} has non-finite values ({kind} first at chain {chain}, draw {draw}); "
            f"chains with non-finite values: {bad_chains.tolist()} (a sampler diverged?)"
        )
    return array


def _quiet(function, *args, **kwargs) -> float:
    with np.errstate(all="ignore"):
        try:
            value = float(function(*args, **kwargs))
        except (ValueError, FloatingPointError, ZeroDivisionError):
            value = float("nan")
    return value


def effective_sample_size(trace: np.ndarray, method: str = "bulk") -> float:
    """ESS of a validated [chains, draws] trace over all chains; NaN where undefined (constant or too short)."""
    if method == "tail":
        return _quiet(arviz_stats.ess, trace, method="tail", prob=(0.05, 0.95))
    return _quiet(arviz_stats.ess, trace, method=method)


def trace_diagnostics(trace: np.ndarray, *, rhat_threshold: float = RHAT_THRESHOLD,
                      min_ess: float = MIN_ESS) -> Diagnostics:
    """R-hat, bulk and tail ESS of a validated trace, with the reasons it fails the thresholds."""
    num_chains, num_draws = trace.shape
    constant = bool(np.all(trace == trace.flat[0]))
    if constant:
        rhat = float("nan")
    elif num_chains == 1:  # arviz needs two chains: compare the two halves (split again inside)
        half = num_draws // 2
        rhat = _quiet(arviz_stats.rhat, np.stack([trace[0, :half], trace[0, half:2 * half]]))
    else:
        rhat = _quiet(arviz_stats.rhat, trace)
    ess_bulk = float(trace.size) if constant else effective_sample_size(trace, "bulk")
    ess_tail = float(trace.size) if constant else effective_sample_size(trace, "tail")
    diagnostics = Diagnostics(num_chains, num_draws, rhat, ess_bulk, ess_tail)
    reasons = []
    if constant:
        diagnostics = diagnostics.with_warnings("trace is constant: standard error is 0")
    else:
        if not np.isfinite(rhat):
            reasons.append("R-hat is undefined (too few draws?)")
        elif rhat > rhat_threshold:
            reasons.append(f"R-hat {rhat:.4f} > {rhat_threshold} (chains disagree or have not mixed)")
        for label, ess in (("bulk", ess_bulk), ("tail", ess_tail)):
            if not np.isfinite(ess):
                reasons.append(f"{label} ESS is undefined (too few draws?)")
            elif ess < min_ess:
                reasons.append(f"{label} ESS {ess:.0f} < {min_ess:.0f}")
    if num_chains < 2:
        diagnostics = diagnostics.with_warnings("one chain: R-hat only compares its two halves")
    return diagnostics.with_reasons(*reasons)


class MeanEstimate(NamedTuple):
    mean: float
    std_error: float
    ess: float


def mean_and_mcse(trace: np.ndarray) -> MeanEstimate:
    """Pooled mean and MCSE = sd/√ESS_bulk of a validated trace (0 for a constant trace)."""
    mean = float(trace.mean())
    if trace.size < 2 or np.all(trace == trace.flat[0]):
        return MeanEstimate(mean, 0.0 if trace.size > 1 else float("nan"), float(trace.size))
    ess = effective_sample_size(trace, "bulk")
    sd = float(trace.std(ddof=1))
    std_error = sd / np.sqrt(ess) if np.isfinite(ess) and ess > 0 else float("nan")
    return MeanEstimate(mean, std_error, ess)


def format_estimate(name: str, mean: float, std_error: float, diagnostics: Diagnostics) -> str:
    """`name = mean ± se` and, when diagnostics failed, the word UNRELIABLE and the reasons first."""
    value = f"{name} = {mean:.6g} ± {std_error:.2g}"
    if diagnostics.unreliable:
        return f"UNRELIABLE {value} ({'; '.join(diagnostics.reasons)})"
    return value


def check_positive(value, name: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_vector(values, name: str, *, length: int | None = None, positive: bool = False) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    if length is not None and array.size != length:
        raise ValueError(f"{name} has {array.size} entries, expected {length}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite entries at {np.flatnonzero(~np.isfinite(array)).tolist()}")
    if positive and not np.all(array > 0):
        raise ValueError(f"{name} must be > 0, got {array.tolist()}")
    return array

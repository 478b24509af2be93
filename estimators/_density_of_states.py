"""λ, m, F(t) and λ(t) from the dead points of a nested-sampling run (the density of states).

Model. Near K = 0, V(ε) = ∫_{K<ε} φ ≈ c ε^λ (−log ε)^(m−1) (Watanabe 2009). A nested-sampling
run's deaths are, in u = −log V, a Poisson process whose rate is the number of live points n_i
at each death (Skilling 2006; Fowlie, Handley & Su 2021 for batch deletion). In s = −log K,
u(s) = λ s − (m−1) log s − log c, so the deaths form a Poisson process of intensity
n(s) (λ − (m−1)/s) and c drops out. Over a window of deaths i = a..b (gaps s_{i−1} → s_i, with
n_i live points in gap i) the log-likelihood is

    ℓ(λ, m) = Σ_i log[n_i (λ − (m−1)/s_i)] − Σ_i n_i [λ (s_i − s_{i−1}) − (m−1) log(s_i / s_{i−1})].

For each m, λ̂_m maximises ℓ (one root of Σ 1/(λ − (m−1)/s_i) = Σ n_i Δs_i), with the Poisson
standard error from the curvature, (Σ 1/(λ̂ − (m−1)/s_i)²)^(−1/2). `fit_window(..., correction=True)`
adds a nuisance term β/s² to the intensity (the leading shift of the log term, ε^λ(s + b)^(m−1));
measured on exact processes it makes m unidentifiable over the windows a run reaches (P(m)
spread over 1..3 at λ = 1/2, m = 2, 60 nats), so the default fit leaves it out.

Run-to-run error. The Poisson se assumes every replacement is an independent draw from the
constrained prior. The rescaled gaps n_i ∫ (λ̂ − (m̂−1)/s) ds are then Exp(1) and independent;
their batch-means dispersion D (`gap_dispersion`, 20 blocks) is ≈ 1. D > 1 (replacements
correlated with their cloned parents, or a law drifting inside the window) multiplies the
variances by D and divides the log-likelihood ratios by D (quasi-likelihood); D < 1 is left at 1.

m is a model comparison: log evidence_m = ℓ_m(λ̂_m) + log(√(2π) se_m) (Laplace, flat prior on λ,
the same for every m, so it cancels), P(m) ∝ evidence_m over m = 1..max_multiplicity. At each
window start m̂ is the smallest m that no larger m beats by more than `MULTIPLICITY_EVIDENCE_NATS`
(3 nats, "strong" on Kass & Raftery's scale). m̂ is reported (`multiplicity_estimate`) only with
the evidence for it: P(m̂) >= `MULTIPLICITY_CONFIDENCE` at the chosen start AND no deeper start
clearly (P >= the same) prefers another m; otherwise it is None and a warning says why.

Window. Candidate windows start at `NUM_WINDOWS` values of s spaced evenly in log s between the
first death with s >= `MIN_WINDOW_S` (= 5) past −log X = 5 and 60 % of the way to the deepest
death; each ends at the deepest death (or at the start of a floor, `loss_floor_start`). The
least s is 5 because the next terms of the volume expansion, ε^(λ+δ) with δ of order 1 (δ = 1 for
a regular model: V = P(χ²_d < 2ε) = c ε^(d/2)(1 − d ε/(d + 2) + ...)), lower the intensity at
shallow s the way −(m−1)/s does; from s = 1 the regular model with d = 10 read m̂ = 2 at
P = 0.99 (benchmarks/results/accuracy_nested.md, the note). The fit uses the shallowest start
whose m̂ no deeper start contradicts and whose λ̂ (at that m̂) agrees with every deeper start
within z = 2.5 standard errors of the difference (nested windows: Var(λ̂_deep − λ̂_shallow) ≈
(se_deep² − se_shallow²) D_deep, Poisson se's). If no start below the third deepest satisfies both,
m is not reported and the start is the shallowest that satisfies the agreement on λ̂ alone; if
only the two deepest starts agree the asymptotic regime was not shown to be reached and the
result says so.

Interval. λ̂ is read at the chosen start's m̂; the interval is λ̂ ± (1.96 se + systematic), where
the systematic widens it to hold the central 95 % of the P(m)-weighted mixture Σ_m P(m)
N(λ̂_m, se_m²) (λ averaged over the uncertain m; 0 when P(m̂) ≈ 1). Not covered: a bias of the
sampler itself, and pre-asymptotic terms that the window rule does not see.

F(t) and λ(t): `estimators.lambda_curve` (estimators/_lambda_curve.py).
"""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

from estimators._dead_points import (
    FLOOR_FRACTION,
    _checked_run,
    _exponential_ks_pvalue,
    _mixture_interval,
    _rescaled_gaps,
    _window,
    expected_log_volume,
    fit_window,
    gap_dispersion,
    loss_floor_start,
)

MULTIPLICITY_EVIDENCE_NATS = 3.0
WINDOW_AGREEMENT_Z = 2.5
NUM_WINDOWS = 13
MIN_WINDOW_S = 5.0
MULTIPLICITY_CONFIDENCE = 0.9
_START_LOG_VOLUME = 5.0


class DensityOfStatesDiagnostics(NamedTuple):
    """How the window was chosen and whether the result can be trusted.

    window_starts : the candidate window starts in s = −log K; rlct_by_window, std_error_by_window
        and multiplicity_by_window the fit at each (λ̂ at that window's own m̂).
    chosen_window : index of the window used; window (s_lo, s_hi) and num_in_window its extent.
    asymptotic_regime_reached : λ̂ at the chosen start agrees with every deeper start, and at least
        two deeper starts exist.
    rescaled_ks_pvalue : Kolmogorov–Smirnov p-value of the time-rescaled gaps
        n_i [λ̂ Δs_i − (m̂−1) Δ log s_i], Exp(1) if the model holds (residual structure).
    gap_dispersion : their batch-means dispersion D at the chosen start (`gap_dispersion`).
    warnings, reasons : as in `estimators.Diagnostics`; `reasons` non-empty means unreliable.
    """

    window_starts: np.ndarray
    rlct_by_window: np.ndarray
    std_error_by_window: np.ndarray
    multiplicity_by_window: np.ndarray
    chosen_window: int
    window: tuple[float, float]
    num_in_window: int
    asymptotic_regime_reached: bool
    rescaled_ks_pvalue: float
    gap_dispersion: float
    warnings: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def unreliable(self) -> bool:
        return bool(self.reasons)


class DensityOfStatesResult(NamedTuple):
    """λ̂ ± se ± systematic at m̂, the interval λ̂ ± (1.96 se + systematic), P(m), λ̂ at every m.

    multiplicity : the m λ̂ is read at (the chosen start's m̂); multiplicity_estimate : the same m
    when the evidence for it is clear, else None (see the module docstring). std_error includes
    the dispersion factor √D when D > 1; systematic_error is the m-averaging term.
    """

    estimate: float
    std_error: float
    systematic_error: float
    interval: tuple[float, float]
    multiplicity: int
    multiplicity_estimate: int | None
    multiplicity_probabilities: np.ndarray  # P(m = 1), ..., P(m = max_multiplicity)
    rlct_by_multiplicity: np.ndarray
    std_error_by_multiplicity: np.ndarray
    log_evidence_by_multiplicity: np.ndarray
    diagnostics: DensityOfStatesDiagnostics

    @property
    def unreliable(self) -> bool:
        return self.diagnostics.unreliable

    def summary(self) -> str:
        value = f"λ (nested) = {self.estimate:.6g} ± {self.std_error:.2g}, m = {self.multiplicity}"
        if self.unreliable:
            return f"UNRELIABLE {value} ({'; '.join(self.diagnostics.reasons)})"
        return value

    def __str__(self) -> str:
        return self.summary()


def _choose_multiplicity(log_evidence: np.ndarray) -> int:
    for index in range(log_evidence.size):
        if np.all(log_evidence[index + 1:] - log_evidence[index] <= MULTIPLICITY_EVIDENCE_NATS):
            return index + 1
    return log_evidence.size


def rlct_from_dead_points(
    death_loss: Float[ArrayLike, " dead"],
    num_live: Float[ArrayLike, " dead"],
    *,
    max_multiplicity: int = 4,
) -> DensityOfStatesResult:
    """λ̂ ± se ± systematic, m̂ (or None) and P(m) from a nested-sampling run's deaths (see the
    module docstring).

    Parameters
    ----------
    death_loss : K at each death, non-increasing (`slt.NestedRun.death_loss`); K must reach
        below e^(−1) with enough deaths for a window.
    num_live : live points at each death (`slt.NestedRun.num_live`).
    max_multiplicity : the largest m compared.

    Raises
    ------
    ValueError
        One line, on a non-finite loss, a count < 1, losses out of order, or a run too shallow
        for any window.

    Notes
    -----
    An unreliable result (no stable window, residual structure in
    the rescaled gaps, too few deaths in the window) says so in `diagnostics.reasons`.
    """
    death_loss, num_live = _checked_run(death_loss, num_live)
    if int(max_multiplicity) < 1:
        raise ValueError(f"max_multiplicity must be >= 1, got {max_multiplicity}")
    truncation_warning = []
    ties = np.flatnonzero(death_loss[1:] == death_loss[:-1])
    if ties.size:  # K quantised (w − w* at float64 resolution): stop one live set before the first tie
        end = max(int(ties[0]) - int(num_live[0]), 2)
        truncation_warning.append(f"losses tie from death {ties[0]} on (float resolution); fit uses the first {end}")
        death_loss, num_live = death_loss[:end], num_live[:end]
    floor = loss_floor_start(death_loss, num_live)
    if floor is not None:
        truncation_warning.append(
            f"K stops falling near K ≈ {death_loss[floor]:.3g} (log K falls less than {FLOOR_FRACTION:g} times as fast "
            f"as before: a floor, float resolution or a data set's noise); fit uses the first {floor} deaths"
        )
        death_loss, num_live = death_loss[:floor], num_live[:floor]
    s = -np.log(death_loss)
    log_volume = expected_log_volume(num_live)
    eligible = np.flatnonzero((s >= MIN_WINDOW_S) & (log_volume <= -_START_LOG_VOLUME))
    if eligible.size < 20:
        raise ValueError(
            f"only {eligible.size} deaths have K < e^-1 past log X = -{_START_LOG_VOLUME:g}; run deeper"
        )
    first, last = s[eligible[0]], s[-1]
    starts = np.exp(np.linspace(np.log(first), np.log(first) + 0.6 * (np.log(last) - np.log(first)), NUM_WINDOWS))
    fits, dispersions, raw_dispersions, poisson_errors = [], [], [], []
    for start in starts:
        rlct, std_error, log_evidence = fit_window(death_loss, num_live, start, max_multiplicity=max_multiplicity)
        best = int(np.argmax(log_evidence))
        dispersion = gap_dispersion(_rescaled_gaps(*_window(s, num_live, start), rlct[best], best + 1))
        inflation = max(1.0, dispersion)  # quasi-likelihood: variances × D, log-likelihood ratios ÷ D
        fits.append((rlct, std_error * np.sqrt(inflation), log_evidence / inflation))
        dispersions.append(inflation)
        raw_dispersions.append(dispersion)
        poisson_errors.append(std_error)
    chosen_m = np.array([_choose_multiplicity(evidence) for _, _, evidence in fits])
    by_window = np.array([[fit[0][m - 1], fit[1][m - 1]] for fit, m in zip(fits, chosen_m)])

    def stable(index):
        m = chosen_m[index]
        rlct, std_error = fits[index][0][m - 1], poisson_errors[index][m - 1]
        deeper = np.array([[fit[0][m - 1], error[m - 1], inflation] for fit, error, inflation
                           in zip(fits[index + 1:], poisson_errors[index + 1:], dispersions[index + 1:])]).reshape(-1, 3)
        # nested windows: Var(λ̂_deep − λ̂_shallow) = se_deep² − se_shallow² (Poisson), × the deeper
        # window's D (a shallow window's own misfit must not widen its acceptance)
        spread = np.sqrt(np.maximum(deeper[:, 1] ** 2 - std_error**2, 0.0) * deeper[:, 2])
        return bool(np.all(np.abs(deeper[:, 0] - rlct) <= WINDOW_AGREEMENT_Z * spread + 1e-12))

    # first choice: the shallowest start whose m̂ no deeper start contradicts and whose λ̂ they agree on
    def clear(fit, m):  # P(m) >= MULTIPLICITY_CONFIDENCE at this start
        return 1.0 / np.sum(np.exp(fit[2] - fit[2][m - 1])) >= MULTIPLICITY_CONFIDENCE

    def uncontradicted(index):  # no deeper start clearly prefers another m (one without the power abstains)
        return not any(m != chosen_m[index] and clear(fit, m) for fit, m in zip(fits[index:], chosen_m[index:]))

    chosen = next(i for i in range(NUM_WINDOWS) if uncontradicted(i) and stable(i))
    multiplicity_settled = chosen <= NUM_WINDOWS - 3
    if not multiplicity_settled:  # m̂ keeps changing with the start: λ̂ from the agreement rule alone
        chosen = next(i for i in range(NUM_WINDOWS) if stable(i))
    rlct, std_error, log_evidence = fits[chosen]
    multiplicity = int(chosen_m[chosen])
    probabilities = np.exp(log_evidence - np.max(log_evidence))
    probabilities /= probabilities.sum()
    estimate, error = float(rlct[multiplicity - 1]), float(std_error[multiplicity - 1])
    low, high = _mixture_interval(rlct, std_error, probabilities)
    systematic = max(0.0, estimate - low - 1.96 * error, high - estimate - 1.96 * error)
    confident = multiplicity_settled and probabilities[multiplicity - 1] >= MULTIPLICITY_CONFIDENCE
    s_in, previous, n_in = _window(s, num_live, starts[chosen])
    ks_pvalue = _exponential_ks_pvalue(_rescaled_gaps(s_in, previous, n_in, estimate, multiplicity))
    reached = chosen <= NUM_WINDOWS - 3
    reasons, warnings = [], list(truncation_warning)
    if not reached:
        reasons.append(
            f"λ̂ does not settle as the window moves deeper (only the deepest {NUM_WINDOWS - chosen} of "
            f"{NUM_WINDOWS} window starts agree): the asymptotic regime was not reached; run deeper"
        )
    if ks_pvalue < 1e-3:
        reasons.append(f"the rescaled gaps are not Exp(1) (KS p = {ks_pvalue:.1g}): residual structure in log V(ε)")
    if s_in.size < 200:
        reasons.append(f"only {int(s_in.size)} deaths in the fit window; use more live points or run deeper")
    if not multiplicity_settled:
        warnings.append(
            f"m not reported: m̂ changes as the window start moves deeper ({chosen_m.tolist()}); "
            f"λ̂ is at m = {multiplicity}, the interval averages over m"
        )
    elif not confident:
        warnings.append(
            f"m not reported: P(m) = {np.round(probabilities, 3).tolist()} gives m = {multiplicity} less than "
            f"{MULTIPLICITY_CONFIDENCE:g}; λ̂ is at m = {multiplicity}, the interval averages over m"
        )
    diagnostics = DensityOfStatesDiagnostics(
        window_starts=starts, rlct_by_window=by_window[:, 0], std_error_by_window=by_window[:, 1],
        multiplicity_by_window=chosen_m, chosen_window=int(chosen), window=(float(starts[chosen]), float(last)),
        num_in_window=int(s_in.size), asymptotic_regime_reached=bool(reached), rescaled_ks_pvalue=float(ks_pvalue),
        gap_dispersion=float(raw_dispersions[chosen]), warnings=tuple(warnings), reasons=tuple(reasons),
    )
    half_width = 1.96 * error + systematic
    return DensityOfStatesResult(
        estimate=estimate, std_error=error, systematic_error=float(systematic),
        interval=(estimate - half_width, estimate + half_width),
        multiplicity=multiplicity, multiplicity_estimate=multiplicity if confident else None,
        multiplicity_probabilities=probabilities, rlct_by_multiplicity=rlct,
        std_error_by_multiplicity=std_error, log_evidence_by_multiplicity=log_evidence, diagnostics=diagnostics,
    )

"""λ, m, F(t) and λ(t) from the dead points of a nested-sampling run (the density of states).

Model. Near K = 0, V(ε) = ∫_{K<ε} φ ≈ c ε^λ (−log ε)^(m−1) (Watanabe 2009). A nested-sampling
run's deaths are, in u = −log V, a Poisson process whose rate is the number of live points n_i
at each death (Skilling 2006; Fowlie, Handley & Su 2021 for batch deletion). In s = −log K,
u(s) = λ s − (m−1) log s − log c, so the deaths form a Poisson process of intensity
n(s) (λ − (m−1)/s) and c drops out. Over a window of deaths i = a..b (gaps s_{i−1} → s_i, with
n_i live points in gap i) the log-likelihood is

    ℓ(λ, m) = Σ_i log[n_i (λ − (m−1)/s_i)] − Σ_i n_i [λ (s_i − s_{i−1}) − (m−1) log(s_i / s_{i−1})].

For each m, λ̂_m maximises ℓ (one root of Σ 1/(λ − (m−1)/s_i) = Σ n_i Δs_i), with standard error
from the curvature, se = (Σ 1/(λ̂ − (m−1)/s_i)²)^(−1/2); the shrinkages are independent, so this
is the whole sampling error of the run (checked against independent runs in
tests/test_nested.py and benchmarks/results/accuracy_nested.md).

m is a model comparison: log evidence_m = ℓ_m(λ̂_m) + log(√(2π) se_m) (Laplace, flat prior on λ,
the same for every m, so it cancels), P(m) ∝ evidence_m over m = 1..max_multiplicity. The rule
prefers the smaller m unless the evidence is clear: m̂ is the smallest m that no larger m beats by
more than `MULTIPLICITY_EVIDENCE_NATS` (= 3 nats, "strong" on Kass & Raftery's scale).

Window. Candidate windows start at `NUM_WINDOWS` values of s spaced evenly in log s between the
first death with s >= 1 past −log X = 5 and 60 % of the way to the deepest death; each ends at the
deepest death. The fit uses the shallowest start whose λ̂ (at its own m̂) agrees with every
deeper start within z = 2.5 standard errors of the difference (nested windows:
Var(λ̂_deep − λ̂_shallow) ≈ se_deep² − se_shallow²). If only the two deepest starts agree the
asymptotic regime was not shown to be reached and the result says so.

F(t) = −log Z(t), Z(t) = ∫ e^(−tK) dV = Σ_i e^(−t K_i) (X_{i−1} − X_i) + X_end · mean_live e^(−tK),
and λ(t) = t E_t[K] = −d log Z / d log t (the dead points reweighted), with log X_i simulated
along Skilling's paths (log X_i − log X_{i−1} = log U_i / n_i, U ~ U(0,1)); bands are the
2.5 % and 97.5 % points over the paths and the value is their median.
"""

from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike, Float

MULTIPLICITY_EVIDENCE_NATS = 3.0
WINDOW_AGREEMENT_Z = 2.5
NUM_WINDOWS = 13
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
    warnings: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def unreliable(self) -> bool:
        return bool(self.reasons)


class LambdaCurve(NamedTuple):
    """F(t) = −log Z(t) and λ(t) = t E_t[K] at each t, medians and 95 % bands over log-X paths."""

    temperatures: np.ndarray
    free_energy: np.ndarray
    free_energy_band: np.ndarray  # [2, T]
    rlct: np.ndarray
    rlct_band: np.ndarray  # [2, T]


class DensityOfStatesResult(NamedTuple):
    """λ̂ ± se at m̂, the interval λ̂ ± 1.96 se, P(m), λ̂ at every m, and the diagnostics."""

    estimate: float
    std_error: float
    interval: tuple[float, float]
    multiplicity: int
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


def _checked_run(death_loss, num_live) -> tuple[np.ndarray, np.ndarray]:
    death_loss = np.asarray(death_loss, dtype=np.float64)
    num_live = np.asarray(num_live, dtype=np.float64)
    if death_loss.ndim != 1 or death_loss.size < 2:
        raise ValueError(f"death_loss must be a 1-D array of at least 2 losses, got shape {death_loss.shape}")
    if num_live.shape != death_loss.shape:
        raise ValueError(f"num_live has shape {num_live.shape}, expected {death_loss.shape} (one count per death)")
    if not np.all(np.isfinite(death_loss)):
        raise ValueError(f"death_loss holds a non-finite value ({death_loss[~np.isfinite(death_loss)][0]})")
    if np.any(death_loss <= 0):
        raise ValueError(f"death_loss must be > 0 (s = −log K), got {death_loss.min()}; drop the deaths at K = 0")
    if np.any(num_live < 1):
        raise ValueError(f"num_live must be >= 1 at every death, got {num_live.min()}")
    if np.any(np.diff(death_loss) > 0):
        raise ValueError("death_loss must be non-increasing (deaths in the order they happened)")
    return death_loss, num_live


def expected_log_volume(num_live: Float[ArrayLike, " dead"]) -> np.ndarray:
    """E[log X_i] = −Σ_{j<=i} 1/n_j, the log prior volume enclosed at each death."""
    return -np.cumsum(1.0 / np.asarray(num_live, dtype=np.float64))


def _profile(s, gap_s, gap_log_s, n, multiplicity):
    """λ̂ maximising ℓ(λ, m) on one window (arrays of the window's deaths), its se and ℓ(λ̂)."""
    exposure = np.sum(n * gap_s)
    if multiplicity == 1:
        rlct = s.size / exposure
        return rlct, rlct / np.sqrt(s.size), s.size * np.log(rlct) - rlct * exposure + np.sum(np.log(n))
    offsets = (multiplicity - 1) / s
    low = offsets.max()
    rlct = low + s.size / exposure  # f(λ) = Σ 1/(λ − a_i) − A <= 0 here; f is convex decreasing
    for _ in range(100):  # Newton from the right converges monotonically for a convex decreasing f
        inverse = 1.0 / (rlct - offsets)
        step = (np.sum(inverse) - exposure) / np.sum(inverse**2)
        rlct = max(rlct + step, low + 1e-12 * max(1.0, low))
        if abs(step) <= 1e-13 * rlct:
            break
    gaps = rlct - offsets
    log_likelihood = np.sum(np.log(n * gaps)) - rlct * exposure + (multiplicity - 1) * np.sum(n * gap_log_s)
    return rlct, 1.0 / np.sqrt(np.sum(1.0 / gaps**2)), log_likelihood


def fit_window(
    death_loss: Float[ArrayLike, " dead"],
    num_live: Float[ArrayLike, " dead"],
    window_start: float,
    *,
    max_multiplicity: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(λ̂_m, se_m, log evidence_m) for m = 1..max_multiplicity on the deaths with s = −log K >
    `window_start` (> 0), by the Poisson-process likelihood of the module docstring."""
    death_loss, num_live = _checked_run(death_loss, num_live)
    if not window_start > 0:
        raise ValueError(f"window_start must be > 0 (s = −log K), got {window_start}")
    s = -np.log(death_loss)
    inside = np.flatnonzero(s > window_start)
    if inside.size < 2:
        raise ValueError(f"fewer than 2 deaths with −log K > {window_start:.3g}; the run is too shallow")
    previous = np.concatenate([[window_start], s[inside[:-1]]])
    s_in, n_in = s[inside], num_live[inside]
    gap_s, gap_log_s = s_in - previous, np.log(s_in / previous)
    fits = np.array([_profile(s_in, gap_s, gap_log_s, n_in, m) for m in range(1, max_multiplicity + 1)])
    rlct, std_error, log_likelihood = fits.T
    return rlct, std_error, log_likelihood + np.log(np.sqrt(2 * np.pi) * std_error)


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
    """λ̂ ± se, m̂ and P(m) from a nested-sampling run's deaths (see the module docstring).

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
    s = -np.log(death_loss)
    log_volume = expected_log_volume(num_live)
    eligible = np.flatnonzero((s >= 1.0) & (log_volume <= -_START_LOG_VOLUME))
    if eligible.size < 20:
        raise ValueError(
            f"only {eligible.size} deaths have K < e^-1 past log X = -{_START_LOG_VOLUME:g}; run deeper"
        )
    first, last = s[eligible[0]], s[-1]
    starts = np.exp(np.linspace(np.log(first), np.log(first) + 0.6 * (np.log(last) - np.log(first)), NUM_WINDOWS))
    fits = [fit_window(death_loss, num_live, start, max_multiplicity=max_multiplicity) for start in starts]
    chosen_m = np.array([_choose_multiplicity(evidence) for _, _, evidence in fits])
    by_window = np.array([[fit[0][m - 1], fit[1][m - 1]] for fit, m in zip(fits, chosen_m)])
    chosen = NUM_WINDOWS - 1
    for index in range(NUM_WINDOWS):
        m = chosen_m[index]
        rlct, std_error = fits[index][0][m - 1], fits[index][1][m - 1]
        deeper = np.array([[fit[0][m - 1], fit[1][m - 1]] for fit in fits[index + 1:]]).reshape(-1, 2)
        spread = np.sqrt(np.maximum(deeper[:, 1] ** 2 - std_error**2, 0.0)) + 1e-12
        if np.all(np.abs(deeper[:, 0] - rlct) <= WINDOW_AGREEMENT_Z * spread):
            chosen = index
            break
    rlct, std_error, log_evidence = fits[chosen]
    multiplicity = int(chosen_m[chosen])
    probabilities = np.exp(log_evidence - np.max(log_evidence))
    probabilities /= probabilities.sum()
    estimate, error = float(rlct[multiplicity - 1]), float(std_error[multiplicity - 1])
    inside = s > starts[chosen]
    previous = np.concatenate([[starts[chosen]], s[inside][:-1]])
    rescaled = num_live[inside] * (estimate * (s[inside] - previous) - (multiplicity - 1) * np.log(s[inside] / previous))
    ks_pvalue = _exponential_ks_pvalue(rescaled)
    reached = chosen <= NUM_WINDOWS - 3
    reasons, warnings = [], list(truncation_warning)
    if not reached:
        reasons.append(
            f"λ̂ does not settle as the window moves deeper (only the deepest {NUM_WINDOWS - chosen} of "
            f"{NUM_WINDOWS} window starts agree): the asymptotic regime was not reached; run deeper"
        )
    if ks_pvalue < 1e-3:
        reasons.append(f"the rescaled gaps are not Exp(1) (KS p = {ks_pvalue:.1g}): residual structure in log V(ε)")
    if inside.sum() < 200:
        reasons.append(f"only {int(inside.sum())} deaths in the fit window; use more live points or run deeper")
    if probabilities.max() < 0.9:
        warnings.append(f"m is uncertain: P(m) = {np.round(probabilities, 3).tolist()}")
    diagnostics = DensityOfStatesDiagnostics(
        window_starts=starts, rlct_by_window=by_window[:, 0], std_error_by_window=by_window[:, 1],
        multiplicity_by_window=chosen_m, chosen_window=int(chosen), window=(float(starts[chosen]), float(last)),
        num_in_window=int(inside.sum()), asymptotic_regime_reached=bool(reached), rescaled_ks_pvalue=float(ks_pvalue),
        warnings=tuple(warnings), reasons=tuple(reasons),
    )
    return DensityOfStatesResult(
        estimate=estimate, std_error=error, interval=(estimate - 1.96 * error, estimate + 1.96 * error),
        multiplicity=multiplicity, multiplicity_probabilities=probabilities, rlct_by_multiplicity=rlct,
        std_error_by_multiplicity=std_error, log_evidence_by_multiplicity=log_evidence, diagnostics=diagnostics,
    )


def _exponential_ks_pvalue(gaps: np.ndarray) -> float:
    from scipy import stats

    return float(stats.kstest(gaps, "expon").pvalue) if gaps.size >= 2 else float("nan")


def lambda_curve(
    death_loss: Float[ArrayLike, " dead"],
    num_live: Float[ArrayLike, " dead"],
    live_loss: Float[ArrayLike, " live"],
    temperatures: Float[ArrayLike, " t"],
    *,
    seed: int,
    num_paths: int = 64,
) -> LambdaCurve:
    """F(t) = −log Z(t) and λ(t) = t E_t[K] at every t, by reweighting the dead points.

    Z(t) = Σ_i e^(−t K_i)(X_{i−1} − X_i) + X_end · mean(e^(−t K_live)), with log X simulated along
    `num_paths` Skilling paths (numpy generator seeded by `seed`, no default); value = median,
    band = 2.5 % and 97.5 % points over paths. Valid for t where Z(t) is dominated by the dead
    points (the run was deep enough: see `slt.nested_sampling`'s `max_temperature`).
    """
    death_loss, num_live = _checked_run(death_loss, num_live)
    live_loss = np.asarray(live_loss, dtype=np.float64)
    temperatures = np.asarray(temperatures, dtype=np.float64)
    if temperatures.ndim != 1 or not np.all(np.isfinite(temperatures) & (temperatures > 0)):
        raise ValueError(f"temperatures must be a 1-D array of finite t > 0, got {temperatures}")
    if live_loss.ndim != 1 or live_loss.size == 0 or not np.all(np.isfinite(live_loss)):
        raise ValueError("live_loss must be a non-empty 1-D array of finite losses")
    generator = np.random.default_rng(seed)
    losses = np.concatenate([death_loss, live_loss])
    free_energy, rlct = [], []
    for _ in range(num_paths):
        log_x = np.cumsum(np.log(generator.uniform(size=death_loss.size)) / num_live)
        log_x_before = np.concatenate([[0.0], log_x[:-1]])
        log_dx = log_x_before + np.log(-np.expm1(log_x - log_x_before))
        log_w = np.concatenate([log_dx, np.full(live_loss.size, log_x[-1] - np.log(live_loss.size))])
        exponent = log_w[None, :] - temperatures[:, None] * losses[None, :]
        peak = exponent.max(axis=1, keepdims=True)
        weights = np.exp(exponent - peak)
        total = weights.sum(axis=1)
        free_energy.append(-(np.log(total) + peak[:, 0]))
        rlct.append(temperatures * (weights @ losses) / total)
    free_energy, rlct = np.array(free_energy), np.array(rlct)
    return LambdaCurve(
        temperatures=temperatures,
        free_energy=np.median(free_energy, axis=0), free_energy_band=np.percentile(free_energy, [2.5, 97.5], axis=0),
        rlct=np.median(rlct, axis=0), rlct_band=np.percentile(rlct, [2.5, 97.5], axis=0),
    )

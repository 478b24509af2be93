"""The fitting pieces of `estimators.rlct_from_dead_points` (see `estimators._density_of_states`
for the model): the Poisson-process likelihood of the deaths in s = −log K on one window, the
batch-means dispersion of the rescaled gaps, the start of a floor in K, and the m-averaged interval.
"""

import numpy as np
from jaxtyping import ArrayLike, Float

NUM_BLOCKS = 20
FLOOR_NATS = 5.0
FLOOR_FRACTION = 0.25


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
    """λ̂ maximising ℓ(λ, m) with β = 0 on one window (arrays of the window's deaths): the start
    of `_fit`'s Newton iteration. Returns λ̂."""
    exposure = np.sum(n * gap_s)
    if multiplicity == 1:
        return s.size / exposure
    offsets = (multiplicity - 1) / s
    low = offsets.max()
    rlct = low + s.size / exposure  # f(λ) = Σ 1/(λ − a_i) − A <= 0 here; f is convex decreasing
    for _ in range(100):  # Newton from the right converges monotonically for a convex decreasing f
        inverse = 1.0 / (rlct - offsets)
        step = (np.sum(inverse) - exposure) / np.sum(inverse**2)
        rlct = max(rlct + step, low + 1e-12 * max(1.0, low))
        if abs(step) <= 1e-13 * rlct:
            break
    return rlct


def _fit(s, previous, n, multiplicity, correction):
    """(λ̂, se, log evidence, β̂) maximising ℓ(λ, β | m) of the module docstring on one window,
    β = 0 unless `correction`, by Newton's method on the concave ℓ (backtracking keeps every
    intensity positive).

    se is the λ-marginal of the inverse observed information (β profiled when fitted); the
    evidence is Laplace's, ℓ̂ + ½ log det(2π I⁻¹), with flat priors whose widths are the same
    for every m and cancel in P(m)."""
    gap_s, gap_log_s, gap_inverse = s - previous, np.log(s / previous), 1.0 / previous - 1.0 / s
    exposure, log_exposure, inverse_exposure = np.sum(n * gap_s), np.sum(n * gap_log_s), np.sum(n * gap_inverse)
    offsets, curvature = (multiplicity - 1) / s, 1.0 / s**2
    size = 2 if correction else 1

    def log_likelihood(theta):
        rate = theta[0] - offsets + (theta[1] * curvature if correction else 0.0)
        if np.any(rate <= 0):
            return -np.inf
        return (np.sum(np.log(n * rate)) - theta[0] * exposure + (multiplicity - 1) * log_exposure
                - (theta[1] * inverse_exposure if correction else 0.0))

    def derivatives(theta):
        inverse_rate = 1.0 / (theta[0] - offsets + (theta[1] * curvature if correction else 0.0))
        columns = np.stack([np.ones_like(s), curvature])[:size]
        gradient = columns @ inverse_rate - np.array([exposure, inverse_exposure])[:size]
        return gradient, (columns * inverse_rate**2) @ columns.T

    theta = np.array([_profile(s, gap_s, gap_log_s, n, multiplicity), 0.0])[:size]
    value = log_likelihood(theta)
    for _ in range(200):
        gradient, information = derivatives(theta)
        step = np.linalg.solve(information, gradient)
        scale = 1.0
        while scale > 1e-12:
            candidate = theta + scale * step
            candidate_value = log_likelihood(candidate)
            if candidate_value >= value:
                break
            scale /= 2
        else:
            break
        converged = abs(scale * step[0]) <= 1e-12 * abs(theta[0]) and candidate_value - value <= 1e-12
        theta, value = candidate, candidate_value
        if converged:
            break
    _, information = derivatives(theta)
    covariance = np.linalg.inv(information)
    log_evidence = value + 0.5 * np.linalg.slogdet(2 * np.pi * covariance)[1]
    return theta[0], np.sqrt(covariance[0, 0]), log_evidence, (theta[1] if correction else 0.0)


def fit_window(
    death_loss: Float[ArrayLike, " dead"],
    num_live: Float[ArrayLike, " dead"],
    window_start: float,
    *,
    max_multiplicity: int = 4,
    correction: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(λ̂_m, se_m, log evidence_m) for m = 1..max_multiplicity on the deaths with s = −log K >
    `window_start` (> 0), by the Poisson-process likelihood of the module docstring (with its
    correction β/s² profiled out)."""
    death_loss, num_live = _checked_run(death_loss, num_live)
    if not window_start > 0:
        raise ValueError(f"window_start must be > 0 (s = −log K), got {window_start}")
    s = -np.log(death_loss)
    inside = np.flatnonzero(s > window_start)
    if inside.size < 2:
        raise ValueError(f"fewer than 2 deaths with −log K > {window_start:.3g}; the run is too shallow")
    previous = np.concatenate([[window_start], s[inside[:-1]]])
    fits = np.array([_fit(s[inside], previous, num_live[inside], m, correction)
                     for m in range(1, max_multiplicity + 1)])
    rlct, std_error, log_evidence, _ = fits.T
    return rlct, std_error, log_evidence


def loss_floor_start(death_loss: Float[ArrayLike, " dead"], num_live: Float[ArrayLike, " dead"]) -> int | None:
    """The first death of a floor in K, or None.

    The deaths are cut into blocks of `FLOOR_NATS` nats of log-volume (FLOOR_NATS · N deaths) and
    a_b is the fall of log K across block b. Where V(ε) ∝ ε^λ (−log ε)^(m−1), a_b ≈ FLOOR_NATS/λ
    changes slowly with depth; where K cannot fall further (float resolution of w near w*, a data
    set's noise floor) a_b collapses. A floor starts at the first block b >= 2 whose a_b is below
    `FLOOR_FRACTION` times the median of the blocks before it; the answer is the first death of
    the block before b (one block of margin for the bend into the floor)."""
    death_loss = np.asarray(death_loss, dtype=np.float64)
    block = int(FLOOR_NATS * np.asarray(num_live)[0])
    num_blocks = death_loss.size // block
    if num_blocks < 3:
        return None
    log_loss = np.log(death_loss[: num_blocks * block]).reshape(num_blocks, block)
    falls = log_loss[:, 0] - log_loss[:, -1]
    for index in range(2, num_blocks):
        if falls[index] < FLOOR_FRACTION * np.median(falls[1:index]):
            return (index - 1) * block
    return None


def _window(s, num_live, start):
    inside = np.flatnonzero(s > start)
    return s[inside], np.concatenate([[start], s[inside[:-1]]]), num_live[inside]


def _rescaled_gaps(s_in, previous, n_in, rlct, multiplicity):
    """n_i ∫_gap (λ − (m−1)/s) ds: Exp(1) and independent if the fitted process is the run's."""
    return n_in * (rlct * (s_in - previous) - (multiplicity - 1) * np.log(s_in / previous))


def gap_dispersion(rescaled_gaps: Float[ArrayLike, " gaps"], num_blocks: int = NUM_BLOCKS) -> float:
    """D = Σ_b (S_b − c_b)² / c_b / (B − 1): the variance of the sums S_b of the rescaled gaps over
    B contiguous blocks of c_b gaps each, over its Poisson-process value c_b (batch means).

    D ≈ 1 (within ±√(2/(B−1))) when the deaths are the Poisson process of the fit; D > 1 when
    they are not: replacements correlated with their parents (a few slice sweeps from a cloned
    survivor), or a law that drifts inside the window (a pre-asymptotic term). λ̂ is a ratio of
    the count of deaths to the summed exposure, so its variance grows by the same factor.
    """
    gaps = np.asarray(rescaled_gaps, dtype=np.float64)
    blocks = int(min(num_blocks, gaps.size // 50))
    if blocks < 2:
        return 1.0
    sums = np.array([part.sum() for part in np.array_split(gaps, blocks)])
    counts = np.array([part.size for part in np.array_split(gaps, blocks)])
    return float(np.sum((sums - counts) ** 2 / counts) / (blocks - 1))


def _mixture_interval(rlct, std_error, probabilities) -> tuple[float, float]:
    """The central 95 % interval of Σ_m P(m) N(λ̂_m, se_m²) (λ averaged over m)."""
    from scipy import stats

    keep = probabilities > 1e-6
    rlct, std_error, probabilities = rlct[keep], std_error[keep], probabilities[keep] / probabilities[keep].sum()
    grid = np.linspace(np.min(rlct - 5 * std_error), np.max(rlct + 5 * std_error), 4001)
    cdf = np.sum(probabilities[:, None] * stats.norm.cdf((grid[None, :] - rlct[:, None]) / std_error[:, None]), axis=0)
    return float(np.interp(0.025, cdf, grid)), float(np.interp(0.975, cdf, grid))


def _exponential_ks_pvalue(gaps: np.ndarray) -> float:
    from scipy import stats

    return float(stats.kstest(gaps, "expon").pvalue) if gaps.size >= 2 else float("nan")

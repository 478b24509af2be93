"""Measures of where particles go, each against the Gibbs density computed exactly on a grid.

The reference is the Gibbs posterior at temperature T on the potential's box (uniform prior):

    p_T(w) = exp(−K(w)/T) / ∫_box exp(−K/T),

integrated by the midpoint rule on `refine`² sub-cells of every histogram cell
(`gibbs_grid`). A histogram of N independent draws (one per particle) is multinomial with the
cell masses p_k, so its total-variation distance to the exact masses has a known sampling
distribution; `distance_to_gibbs` reports it (mean and upper quantile, simulated from the
multinomial) beside the measured distance. Time-averaged occupancies of correlated draws have a
larger floor (N is then an upper bound on the effective sample size).

Fractions over particles carry binomial standard errors; fractions of time per particle are
averaged over independent particles with the standard error of that mean (the particles are
independent, the draws within one are not).
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from slt.dynamics._potentials import SINGULAR_BASIN, OTHER_BASIN, Potential


class GibbsGrid(NamedTuple):
    """The Gibbs density at `temperature` on a grid over the box.

    Attributes
    ----------
    temperature : T.
    edges : (edges_1, edges_2), the histogram bin edges (num_bins + 1 each).
    probabilities : [num_bins, num_bins] exact cell masses (sum 1), [i, j] = bin i of w1, j of w2.
    points : [M, 2] quadrature nodes (sub-cell midpoints), M = (num_bins · refine)².
    weights : [M] Gibbs mass of each sub-cell (sum 1).
    loss : [M] the loss at the nodes (K, or L_n − L_n(w*) when built on data).
    """

    temperature: float
    edges: tuple[np.ndarray, np.ndarray]
    probabilities: np.ndarray
    points: np.ndarray
    weights: np.ndarray
    loss: np.ndarray


class Estimate(NamedTuple):
    """A number with its standard error (binomial or across independent particles)."""

    value: float
    std_error: float


class DistanceToGibbs(NamedTuple):
    """Total variation ½ Σ_k |p̂_k − p_k| between a histogram and the exact Gibbs cell masses.

    `floor_mean` and `floor_upper` are the mean and the `quantile` of the same distance for N
    exact, independent Gibbs draws (N = `num_samples`), simulated from the multinomial: a
    measured distance within the floor is indistinguishable from exact sampling.
    """

    total_variation: float
    floor_mean: float
    floor_upper: float
    quantile: float
    num_samples: int


class EscapeTimes(NamedTuple):
    """First time (in steps) each particle started in the local basin is seen outside it.

    `times` is inf for particles still inside at the end (censored); `fraction_escaped` has a
    binomial standard error; `median` is inf when fewer than half escaped. Times are resolved
    to the recording interval.
    """

    times: np.ndarray
    fraction_escaped: Estimate
    median: float


def _evaluate(fn, points: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """fn at every row of `points`, in chunks (jit + vmap per chunk, one compilation)."""
    batched = jax.jit(jax.vmap(fn))
    padded = -len(points) % chunk
    stacked = np.concatenate([points, np.repeat(points[-1:], padded, axis=0)]) if padded else points
    values = [np.asarray(batched(jnp.asarray(stacked[i:i + chunk]))) for i in range(0, len(stacked), chunk)]
    return np.concatenate(values)[: len(points)]


def gibbs_grid(potential: Potential, temperature: float, num_bins: int = 40, refine: int = 4,
               data: PyTree | None = None) -> GibbsGrid:
    """Exact Gibbs cell masses of exp(−K/T) on the box, by the midpoint rule on sub-cells.

    With `data`, the loss is the empirical L_n(w) − L_n(w*) of `potential.loss_fn` instead of K
    (the law SGD on that data set is compared with). Quadrature error: O(h²) per cell, h the
    sub-cell width; refine=4 on 40 bins resolves valleys down to width ~ box/160.
    """
    box = potential.require_box("gibbs_grid")
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if not (isinstance(num_bins, int) and num_bins >= 2 and isinstance(refine, int) and refine >= 1):
        raise ValueError(f"num_bins must be an integer >= 2 and refine >= 1, got {num_bins}, {refine}")
    edges = tuple(np.linspace(lo, hi, num_bins + 1) for lo, hi in box)
    fine = num_bins * refine
    midpoints = [lo + (np.arange(fine) + 0.5) * (hi - lo) / fine for lo, hi in box]
    grid_1, grid_2 = np.meshgrid(*midpoints, indexing="ij")
    points = np.stack([grid_1.ravel(), grid_2.ravel()], axis=1)
    if data is None:
        loss = _evaluate(potential.population_loss, points).astype(np.float64)
    else:
        loss_fn = potential.loss_fn
        loss = _evaluate(lambda w: loss_fn(w, data), points, chunk=256).astype(np.float64)
        loss = loss - float(loss_fn(potential.center, data))
    log_weights = -(loss - loss.min()) / temperature
    weights = np.exp(log_weights)
    weights /= weights.sum()
    probabilities = weights.reshape(num_bins, refine, num_bins, refine).sum(axis=(1, 3))
    return GibbsGrid(float(temperature), edges, probabilities, points, weights, loss)


def gibbs_probability(grid: GibbsGrid, indicator: Callable[[Float[Array, " 2"]], jax.Array]) -> float:
    """P_Gibbs(indicator(w)) by quadrature on the grid's sub-cells."""
    mask = _evaluate(indicator, grid.points).astype(bool)
    return float(grid.weights[mask].sum())


def occupancy(positions: Float[Array, "... 2"], grid: GibbsGrid) -> np.ndarray:
    """Counts of `positions` (any leading shape) in the grid's cells, [num_bins, num_bins]."""
    flat = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    counts, _, _ = np.histogram2d(flat[:, 0], flat[:, 1], bins=grid.edges)
    return counts


def total_variation(counts: np.ndarray, probabilities: np.ndarray) -> float:
    """½ Σ_k |counts_k / N − p_k|."""
    counts = np.asarray(counts, dtype=np.float64)
    return 0.5 * float(np.abs(counts / counts.sum() - probabilities).sum())


def distance_to_gibbs(positions: Float[Array, "particles 2"], grid: GibbsGrid, key: PRNGKeyArray,
                      num_replicates: int = 400, quantile: float = 0.999) -> DistanceToGibbs:
    """TV between the histogram of `positions` (independent draws, one per particle) and the grid's
    exact Gibbs masses, with the multinomial sampling floor of N exact draws (simulated with `key`)."""
    counts = occupancy(positions, grid)
    num_samples = int(counts.sum())
    if num_samples < len(np.asarray(positions).reshape(-1, 2)):
        raise ValueError("some positions fall outside the grid's box")
    probabilities = grid.probabilities.ravel()
    replicate_keys = jax.random.split(key, num_replicates)
    draws = jax.vmap(lambda k: jax.random.multinomial(k, num_samples, jnp.asarray(probabilities, jnp.float32)))(
        replicate_keys
    )
    floors = 0.5 * np.abs(np.asarray(draws, np.float64) / num_samples - probabilities[None, :]).sum(axis=1)
    return DistanceToGibbs(
        total_variation(counts, grid.probabilities), float(floors.mean()), float(np.quantile(floors, quantile)),
        quantile, num_samples,
    )


def _fraction_of_time(flags: np.ndarray) -> Estimate:
    """Mean over particles of each particle's fraction of draws flagged; SE across particles."""
    flags = np.asarray(flags, dtype=np.float64)
    if flags.ndim == 1:
        value = float(flags.mean())
        return Estimate(value, float(np.sqrt(max(value * (1 - value), 0.0) / len(flags))))
    per_particle = flags.reshape(flags.shape[0], -1).mean(axis=1)
    return Estimate(float(per_particle.mean()), float(per_particle.std(ddof=1) / np.sqrt(len(per_particle))))


def fraction_where(positions: Float[Array, "... 2"], indicator: Callable[[Float[Array, " 2"]], jax.Array]) -> Estimate:
    """Fraction of positions with indicator(w) true.

    positions [particles, 2]: one draw per particle, binomial SE.
    positions [particles, draws, 2]: fraction of time per particle, averaged, SE across particles.
    """
    positions = np.asarray(positions)
    flags = _evaluate(indicator, positions.reshape(-1, 2)).reshape(positions.shape[:-1])
    return _fraction_of_time(flags)


def _near(potential: Potential, epsilon: float):
    if potential.singular_distance is None:
        raise ValueError(f"{potential.name} has no singular set defined")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    return lambda w: potential.singular_distance(w) < epsilon


def near_singular_fraction(positions, potential: Potential, epsilon: float) -> Estimate:
    """Fraction of time within ε of the singular set (distance `potential.singular_distance`)."""
    return fraction_where(positions, _near(potential, epsilon))


def gibbs_near_singular(grid: GibbsGrid, potential: Potential, epsilon: float) -> float:
    """Gibbs probability of being within ε of the singular set."""
    return gibbs_probability(grid, _near(potential, epsilon))


def _basin(potential: Potential):
    if potential.basin is None:
        raise ValueError(f"{potential.name} has only one basin")
    return potential.basin


def singular_basin_fraction(positions, potential: Potential) -> Estimate:
    """Fraction of particles (or of time) in basin 0, the singular / global basin."""
    basin = _basin(potential)
    return fraction_where(positions, lambda w: basin(w) == SINGULAR_BASIN)


def gibbs_singular_basin_mass(grid: GibbsGrid, potential: Potential) -> float:
    """Gibbs mass of basin 0 (singular / global); 1 minus it is the other basin's."""
    basin = _basin(potential)
    return gibbs_probability(grid, lambda w: basin(w) == SINGULAR_BASIN)


def escape_times(positions: Float[Array, "particles draws 2"], potential: Potential,
                 steps: Float[Array, " draws"] | None = None) -> EscapeTimes:
    """Escape times from basin 1 (the local minimum), for particles that start there.

    `steps[j]` is the number of steps taken when draw j was recorded (`Trajectories.steps`;
    default j + 1). A particle's escape time is the first recorded step at which it is outside
    basin 1; particles never seen outside are censored (inf).
    """
    basin = _basin(potential)
    positions = np.asarray(positions)
    steps = np.arange(1, positions.shape[1] + 1) if steps is None else np.asarray(steps)
    labels = _evaluate(basin, positions.reshape(-1, 2)).reshape(positions.shape[:-1])
    outside = labels != OTHER_BASIN
    escaped = outside.any(axis=1)
    times = np.where(escaped, steps[np.argmax(outside, axis=1)], np.inf).astype(np.float64)
    fraction = float(escaped.mean())
    median = float(np.median(times)) if fraction > 0.5 else float("inf")
    return EscapeTimes(times, Estimate(fraction, float(np.sqrt(fraction * (1 - fraction) / len(times)))), median)


def sgd_temperature(learning_rate: float, batch_size: int, momentum: float = 0.0, noise_variance: float = 1.0) -> float:
    """The temperature at which the Gibbs law matches SGD's noise: T = η σ² / (2 b (1 − μ)).

    Derivation, in the module convention (`slt.dynamics.brownian`): Langevin at temperature T in
    gradient-flow time η per step adds noise of covariance 2ηT I. An SGD step adds η² C(w)/b, C
    the covariance of per-example gradients (minibatch of b drawn with replacement). For
    Gaussian regression through g (every potential here), on the zero set C = σ² H with H the
    Hessian of K (Fisher = Hessian): matching the noise in the directions where K curves,
    η² σ² H/b = 2ηT H (in the scale of H's own stationary spread) gives T = ησ²/(2b).
    Heavy-ball or Nesterov momentum μ multiplies the effective learning rate by 1/(1 − μ) and,
    to first order in η, the temperature too. Along flat directions (H = 0) SGD has no noise at
    all, unlike Brownian motion: the law is not Gibbs there; see `measured_sgd_temperature`.

    Prior vs likelihood. SGD's implied inverse temperature is nβ_SGD = 1/T = 2b(1 − μ)/(ησ²): it
    is set by the optimiser (η, b, μ) and does not involve the sample size n. The Bayes
    posterior at sample size n is exp(−n L_n(w)) φ(w), i.e. nβ = n. So where SGD has a
    stationary law (a quadratic minimum: variance T/h, `tests/test_dynamics_temperature.py`
    measures it at n = 200 and 20 000) it is a tempered posterior at nβ = 2b(1 − μ)/η, the
    same for every n, not the Bayes posterior at n; and near singular sets it has none (its
    noise vanishes along the valleys: `slt.dynamics.collapse_rate`).
    """
    if not (learning_rate > 0 and isinstance(batch_size, int) and batch_size >= 1 and 0 <= momentum < 1
            and noise_variance > 0):
        raise ValueError(
            f"need learning_rate > 0, integer batch_size >= 1, 0 <= momentum < 1, noise_variance > 0; got "
            f"{learning_rate}, {batch_size}, {momentum}, {noise_variance}"
        )
    return learning_rate * noise_variance / (2.0 * batch_size * (1.0 - momentum))


def measured_sgd_temperature(potential: Potential, data: PyTree, positions: Float[Array, "points d"],
                             learning_rate: float, batch_size: int, momentum: float = 0.0) -> np.ndarray:
    """T(w) = η tr C(w) / (2 b (1 − μ) tr H(w)) at each point, from the data.

    C(w) = covariance over the data of the per-example gradients ∇ℓ_i(w); H(w) = Hessian of
    L_n(w), its trace by central differences of the gradient (step `1e-3`, error O(1e-6)):
    forward-over-reverse Hessians of `w ** k` are NaN at w = 0 (0 · 0^(−1)). Equal to
    `sgd_temperature(...)` wherever C = σ² H (Gaussian regression on its zero set); elsewhere it
    says how far SGD's noise is from that temperature.
    """
    loss_fn = potential.loss_fn
    if loss_fn is None:
        raise ValueError(f"{potential.name} has no per-example loss")
    one = lambda datum: jax.tree_util.tree_map(lambda leaf: leaf[None], datum)  # noqa: E731
    full_grad = jax.grad(loss_fn)
    difference = 1e-3

    def at(w):
        grads = jax.vmap(lambda datum: full_grad(w, one(datum)))(data)
        spread = jnp.sum(jnp.var(grads, axis=0))
        basis = jnp.eye(w.shape[0], dtype=w.dtype) * difference
        curvature = jax.vmap(lambda e: jnp.dot(full_grad(w + e, data) - full_grad(w - e, data), e))(basis)
        return spread / (jnp.sum(curvature) / (2 * difference**2))

    ratios = np.asarray(jax.jit(jax.vmap(at))(jnp.asarray(positions)))
    return learning_rate * ratios / (2.0 * batch_size * (1.0 - momentum))


def barrier_height(grid: GibbsGrid, potential: Potential, num_levels: int = 2000) -> tuple[float, float]:
    """(lowest K in basin 1, lowest saddle level joining it to basin 0's minimum) on the grid.

    The saddle level is the smallest threshold t (to 1/`num_levels` of the loss range) at which
    {K <= t} on the quadrature grid connects the minima of the two basins (4-neighbour
    connectivity); the barrier seen from basin 1 is the difference. Grid-resolved only.
    """
    from scipy import ndimage

    basin = _basin(potential)
    size = int(round(np.sqrt(len(grid.loss))))
    loss = grid.loss.reshape(size, size)
    labels = _evaluate(basin, grid.points).reshape(size, size)
    start_singular = np.unravel_index(np.argmin(np.where(labels == SINGULAR_BASIN, loss, np.inf)), loss.shape)
    start_other = np.unravel_index(np.argmin(np.where(labels == OTHER_BASIN, loss, np.inf)), loss.shape)
    for level in np.linspace(loss.min(), loss.max(), num_levels):
        components, _ = ndimage.label(loss <= level)
        if components[start_other] and components[start_other] == components[start_singular]:
            return float(loss[start_other]), float(level)
    return float(loss[start_other]), float(loss.max())

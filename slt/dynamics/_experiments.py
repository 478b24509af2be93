"""The comparisons behind `slt dynamics` and figures/fig_dynamics.py.

Which measures separate the dynamics (`compare_dynamics`, on K = (w1 w2)²/2): the occupancy of
the crossing box |w − w*|_∞ < δ over the second half of the run (Gibbs gives it a definite
mass; Brownian motion matches it at stationarity; SGD's collapse drives it to 1; noise-free
gradient descent stays near its starting valley), and the slope of E log|w1² − w2²| against
step (0 at a stationary law; −2Tη_eff for SGD, its stochastic collapse, `slt.dynamics.collapse_rate`).
The time within ε of the singular set w1 w2 = 0 measures *descent* (noise-free gradient
descent scores 1 on it), not a preference among the points of the singular set.

Matching, used throughout: SGD with learning rate η and batch b on Gaussian-regression data has
temperature T = ησ²/(2b(1 − μ)) (`sgd_temperature`). Brownian motion runs at that T with step
ε = η_eff T, η_eff = η/(1 − μ), so that one step of every dynamics covers the same gradient-flow
time η_eff. Momentum runs use η = η_eff (1 − μ) so that all of them share η_eff and T.
Brownian motion is compared with the Gibbs law of K; the SGD variants with the Gibbs law of
their own data's L_n − L_n(w*) at the same T (the two differ by O(1/√n); both are reported).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

import math
import warnings

from slt.dynamics._collapse import collapse_rate, log_imbalance, mean_slope
from slt.dynamics._kernels import brownian, momentum_sgd, nesterov_sgd, sgd
from slt.dynamics._measures import (
    DistanceToGibbs,
    Estimate,
    GibbsGrid,
    distance_to_gibbs,
    escape_times,
    fraction_where,
    gibbs_grid,
    gibbs_near_singular,
    gibbs_probability,
    gibbs_singular_basin_mass,
    near_singular_fraction,
    sgd_temperature,
    singular_basin_fraction,
)
from slt.dynamics._potentials import Potential
from slt.dynamics._sde import sgd_sde
from slt.dynamics._simulate import simulate, uniform_in_box
from slt.dynamics._stability import UnstableStepWarning, max_curvature, stability_number
from slt.run import plan_progress

DYNAMICS = ("gradient_descent", "brownian", "sgd_sde", "sgd", "heavy_ball", "nesterov")


class DynamicsResult(NamedTuple):
    """One dynamics in a comparison; fractions are [value, std_error] `Estimate`s.

    crossing_occupancy : fraction of time in the crossing box |w − w*|_∞ < δ over the second
        half (per particle, SE across particles): the measure that separates the dynamics.
    imbalance_slope : slope per step of E log|w1² − w2²| over the second half (SE across
        particles): 0 at a stationary law, −`predicted_collapse_rate` for SGD's collapse.
    predicted_collapse_rate : 2Tη_eff for the noisy SGD variants (exact law for plain SGD on
        the (1, 1) crossing, first order for momentum), 0 for Brownian motion and GD.
    near_singular : fraction of time within ε of the singular set over the second half: a
        *descent* measure (noise-free gradient descent scores 1), not an attraction measure.
    near_crossing : fraction of particles within the crossing box |w|_∞ < δ at the end.
    distance : TV of the final positions to the matched Gibbs law, with its sampling floor.
    curve : fraction of particles within ε of the singular set at each recorded step;
    crossing_curve : the same for the crossing box |w − w*|_∞ < δ.
    final_positions : [particles, 2] at the last record; late_positions : [particles, draws, 2]
    over the second half of the run (for occupancy pictures; draws within a particle correlate).
    """

    name: str
    learning_rate: float
    momentum: float
    temperature: float
    distance: DistanceToGibbs
    near_singular: Estimate
    near_crossing: Estimate
    curve: np.ndarray
    crossing_curve: np.ndarray
    final_positions: np.ndarray
    late_positions: np.ndarray
    crossing_occupancy: Estimate
    imbalance_slope: Estimate
    predicted_collapse_rate: float
    imbalance_curve: np.ndarray


class Comparison(NamedTuple):
    """Gibbs references and every dynamics' result; `steps` are the recorded step counts."""

    potential: str
    temperature: float
    effective_learning_rate: float
    batch_size: int
    num_data: int
    epsilon: float
    crossing_radius: float
    gibbs_near_singular: float
    gibbs_near_crossing: float
    uniform_near_crossing: float
    gibbs_loss_vs_population_tv: float
    grid_population: GibbsGrid
    grid_data: GibbsGrid
    steps: np.ndarray
    results: tuple[DynamicsResult, ...]


def _algorithms(potential, data, effective_learning_rate, batch_size, momentum, temperature):
    slow = effective_learning_rate * (1.0 - momentum)
    return {
        "gradient_descent": (sgd(potential, effective_learning_rate), effective_learning_rate, 0.0),
        "brownian": (brownian(potential, temperature, effective_learning_rate * temperature), effective_learning_rate, 0.0),
        "sgd_sde": (sgd_sde(potential, effective_learning_rate, batch_size, data), effective_learning_rate, 0.0),
        "sgd": (sgd(potential, effective_learning_rate, batch_size, data), effective_learning_rate, 0.0),
        "heavy_ball": (momentum_sgd(potential, slow, momentum, batch_size, data), slow, momentum),
        "nesterov": (nesterov_sgd(potential, slow, momentum, batch_size, data), slow, momentum),
    }


def compare_dynamics(potential: Potential, key: PRNGKeyArray, *, effective_learning_rate: float = 0.05,
                     batch_size: int = 5, momentum: float = 0.9, num_particles: int = 2000, num_steps: int = 20000,
                     num_data: int = 20000, num_records: int = 100, epsilon: float = 0.1,
                     crossing_radius: float = 0.2, num_bins: int = 40) -> Comparison:
    """Gradient descent, Brownian motion, SGD as an SDE, SGD, heavy-ball and Nesterov SGD from the
    same uniform start, at one T (`DYNAMICS`; see the module docstring for the measures).

    T = η_eff σ²/(2b); the momentum runs use η = η_eff(1 − μ); gradient descent (on K, no noise)
    and `sgd_sde` (Gaussian noise of SGD's covariance on the same data) use η_eff. Every
    particle starts uniform in the box (the prior of the Gibbs law). Keys: data, initial
    positions, runs, floors. Needs a regression potential with a residual_map (for `sgd_sde`).
    """
    box = potential.require_box("compare_dynamics")
    if num_steps % num_records:
        raise ValueError(f"num_steps ({num_steps}) must be a multiple of num_records ({num_records})")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    key_data, key_init, key_run, key_floor = jax.random.split(key, 4)
    data = potential.sample_data(key_data, num_data)
    temperature = sgd_temperature(effective_learning_rate * (1.0 - momentum), batch_size, momentum)
    grid_population = gibbs_grid(potential, temperature, num_bins=num_bins)
    grid_data = gibbs_grid(potential, temperature, num_bins=num_bins, data=data)
    initial = uniform_in_box(key_init, box, num_particles)

    def in_crossing(w):
        return jnp.max(jnp.abs(w - potential.center)) < crossing_radius

    def near(w):
        return potential.singular_distance(w) < epsilon

    area = np.prod([hi - lo for lo, hi in box])
    results = []
    steps = None
    algorithms = _algorithms(potential, data, effective_learning_rate, batch_size, momentum, temperature)
    plan_progress(len(algorithms) * num_particles * num_steps)  # for an open bar (`slt dynamics compare`)
    for name, (algorithm, learning_rate, mu) in algorithms.items():
        trajectories = simulate(algorithm, initial, key_run, num_steps, num_steps // num_records)
        steps = trajectories.steps
        final = trajectories.positions[:, -1]
        grid = grid_population if name == "brownian" else grid_data
        half = trajectories.positions.shape[1] // 2
        paths = jnp.asarray(trajectories.positions)
        curve = np.asarray(jax.jit(jax.vmap(jax.vmap(near)))(paths)).mean(axis=0)
        crossing_flags = np.asarray(jax.jit(jax.vmap(jax.vmap(in_crossing)))(paths))
        crossing_curve = crossing_flags.mean(axis=0)
        imbalance = log_imbalance(trajectories.positions)
        noisy = name not in ("brownian", "gradient_descent")
        results.append(DynamicsResult(
            name, learning_rate, mu, temperature,
            distance_to_gibbs(final, grid, key_floor),
            near_singular_fraction(trajectories.positions[:, half:], potential, epsilon),
            fraction_where(final, in_crossing),
            curve,
            crossing_curve,
            final,
            trajectories.positions[:, half:],
            _time_fraction(crossing_flags[:, half:]),
            _slope(imbalance[:, half:], steps[half:]),
            collapse_rate(effective_learning_rate, batch_size) if noisy else 0.0,
            np.mean(np.maximum(imbalance, np.log(np.finfo(np.float32).tiny)), axis=0),
        ))
    return Comparison(
        potential.name, temperature, effective_learning_rate, batch_size, num_data, epsilon, crossing_radius,
        gibbs_near_singular(grid_population, potential, epsilon),
        gibbs_probability(grid_population, in_crossing),
        float((2 * crossing_radius) ** 2 / area),
        0.5 * float(np.abs(grid_population.probabilities - grid_data.probabilities).sum()),
        grid_population, grid_data, steps, tuple(results),
    )


def _time_fraction(flags: np.ndarray) -> Estimate:
    per_particle = flags.mean(axis=1)
    return Estimate(float(per_particle.mean()), float(per_particle.std(ddof=1) / math.sqrt(len(per_particle))))


def _slope(values: np.ndarray, steps: np.ndarray) -> Estimate:
    """`mean_slope`, or NaN when a value is not finite (a particle exactly on w1² = w2²) or < 2 draws."""
    if values.shape[1] < 2 or not np.all(np.isfinite(values)):
        return Estimate(float("nan"), float("nan"))
    return mean_slope(values, steps.astype(np.float64))


class BasinPoint(NamedTuple):
    """Singular-basin fraction at the end of a run at one (η, μ), against Gibbs and Brownian."""

    learning_rate: float
    momentum: float
    temperature: float
    sgd: Estimate
    brownian: Estimate
    gibbs: float
    brownian_substeps: int
    sgd_stability: float


def basin_sweep(potential: Potential, key: PRNGKeyArray, *, learning_rates=(0.02, 0.05, 0.1, 0.2),
                momenta=(0.0, 0.5, 0.9), batch_size: int = 1, num_particles: int = 1000, num_steps: int = 4000,
                num_data: int = 5000, num_bins: int = 40, brownian_step_bound: float = 1.0) -> tuple[BasinPoint, ...]:
    """Which basin particles end in, for (heavy-ball) SGD at each learning rate η and momentum μ.

    Each run: particles uniform in the box, `num_steps` steps; T = ησ²/(2b(1 − μ)); Brownian
    motion at that T over the same gradient-flow time η_eff·num_steps, η_eff = η/(1 − μ), in
    k = ⌈η_eff h_max/`brownian_step_bound`⌉ substeps per SGD step of ε = Tη_eff/k each, so that
    (ε/T) h_max <= `brownian_step_bound` (1 = half the stability limit 2; `brownian_substeps`);
    Gibbs basin mass at T. `sgd_stability` is SGD's η h_max over its limit (past 1 it is
    unstable in the sharpest part of the box; its warning is recorded there, not raised).
    The same data set, initial positions and run key serve every (η, μ).
    """
    box = potential.require_box("basin_sweep")
    if not 0 < brownian_step_bound < 2:
        raise ValueError(f"brownian_step_bound must be in (0, 2), got {brownian_step_bound}")
    key_data, key_init, key_run = jax.random.split(key, 3)
    data = potential.sample_data(key_data, num_data)
    initial = uniform_in_box(key_init, box, num_particles)
    points = []

    def brownian_substeps(learning_rate, mu):
        return max(1, math.ceil(learning_rate / (1.0 - mu) * max_curvature(potential) / brownian_step_bound))

    # for an open bar (`slt dynamics basins`): SGD's steps and Brownian motion's substeps, every (η, μ)
    plan_progress(num_particles * num_steps * sum(1 + brownian_substeps(lr, mu) for lr in learning_rates
                                                  for mu in momenta))
    for learning_rate in learning_rates:
        for mu in momenta:
            temperature = sgd_temperature(learning_rate, batch_size, mu)
            effective = learning_rate / (1.0 - mu)
            substeps = brownian_substeps(learning_rate, mu)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnstableStepWarning)
                sgd_run = momentum_sgd(potential, learning_rate, mu, batch_size, data)
            runs = {
                "sgd": (sgd_run, num_steps),
                "brownian": (brownian(potential, temperature, effective * temperature / substeps), num_steps * substeps),
            }
            ends = {name: simulate(algorithm, initial, key_run, steps, steps).positions[:, -1]
                    for name, (algorithm, steps) in runs.items()}
            grid = gibbs_grid(potential, temperature, num_bins=num_bins)
            points.append(BasinPoint(
                learning_rate, mu, temperature,
                singular_basin_fraction(ends["sgd"], potential),
                singular_basin_fraction(ends["brownian"], potential),
                gibbs_singular_basin_mass(grid, potential),
                substeps,
                stability_number(potential, "heavy_ball", learning_rate, mu),
            ))
    return tuple(points)


class EscapePoint(NamedTuple):
    """Escape from the local well for one dynamics at one T; `learning_rate` is η_eff."""

    name: str
    temperature: float
    fraction_escaped: Estimate
    median_steps: float


def escape_experiment(potential: Potential, key: PRNGKeyArray, *, learning_rates=(0.01, 0.02, 0.04), batch_size: int = 1,
                      momentum: float = 0.9, num_particles: int = 500, num_steps: int = 10000, num_data: int = 5000,
                      num_records: int = 200) -> tuple[EscapePoint, ...]:
    """Escape from the local minimum (basin 1) of `local_minimum`: every particle starts at its
    bottom c; Brownian motion, SGD as an SDE (`sgd_sde`: SGD's drift and noise covariance,
    Gaussian), SGD and heavy-ball SGD at each η, all at matched T and η_eff. Brownian → SDE
    changes only the noise's shape (2T I → ηC(w)/b); SDE → SGD only its law beyond the
    covariance (Gaussian → a sum of b per-example gradients)."""
    key_data, key_run = jax.random.split(key)
    data = potential.sample_data(key_data, num_data)
    labels = jax.vmap(potential.basin)
    # the bottom of the local well: the lowest point of basin 1 on a fine grid
    grid = gibbs_grid(potential, 1.0, num_bins=50, refine=2)
    in_other = np.asarray(labels(jnp.asarray(grid.points))) == 1
    start = grid.points[np.argmin(np.where(in_other, grid.loss, np.inf))]
    initial = jnp.broadcast_to(jnp.asarray(start, jnp.float32), (num_particles, 2))
    points = []
    plan_progress(len(learning_rates) * 4 * num_particles * num_steps)  # the four runs below, every η
    for learning_rate in learning_rates:
        temperature = sgd_temperature(learning_rate, batch_size)
        runs = {
            "brownian": brownian(potential, temperature, learning_rate * temperature),
            "sgd_sde": sgd_sde(potential, learning_rate, batch_size, data),
            "sgd": sgd(potential, learning_rate, batch_size, data),
            "heavy_ball": momentum_sgd(potential, learning_rate * (1 - momentum), momentum, batch_size, data),
        }
        for name, algorithm in runs.items():
            trajectories = simulate(algorithm, initial, key_run, num_steps, num_steps // num_records)
            escapes = escape_times(trajectories.positions, potential, trajectories.steps)
            points.append(EscapePoint(name, temperature, escapes.fraction_escaped, escapes.median))
    return tuple(points)

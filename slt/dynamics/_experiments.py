"""The comparisons behind `slt dynamics` and figures/fig_dynamics.py.

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
from slt.dynamics._simulate import simulate, uniform_in_box

DYNAMICS = ("brownian", "sgd", "heavy_ball", "nesterov")


class DynamicsResult(NamedTuple):
    """One dynamics in a comparison; fractions are [value, std_error] `Estimate`s.

    near_singular : fraction of time within ε of the singular set over the second half.
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
        "brownian": (brownian(potential, temperature, effective_learning_rate * temperature), effective_learning_rate, 0.0),
        "sgd": (sgd(potential, effective_learning_rate, batch_size, data), effective_learning_rate, 0.0),
        "heavy_ball": (momentum_sgd(potential, slow, momentum, batch_size, data), slow, momentum),
        "nesterov": (nesterov_sgd(potential, slow, momentum, batch_size, data), slow, momentum),
    }


def compare_dynamics(potential: Potential, key: PRNGKeyArray, *, effective_learning_rate: float = 0.05,
                     batch_size: int = 5, momentum: float = 0.9, num_particles: int = 2000, num_steps: int = 20000,
                     num_data: int = 20000, num_records: int = 100, epsilon: float = 0.1,
                     crossing_radius: float = 0.2, num_bins: int = 40) -> Comparison:
    """Brownian motion, SGD, heavy-ball and Nesterov SGD from the same uniform start, at one T.

    T = η_eff σ²/(2b); the momentum runs use η = η_eff(1 − μ). Every particle starts uniform in
    the box (the prior of the Gibbs law). Keys: data, initial positions, runs, floors.
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
    for name, (algorithm, learning_rate, mu) in _algorithms(
        potential, data, effective_learning_rate, batch_size, momentum, temperature
    ).items():
        trajectories = simulate(algorithm, initial, key_run, num_steps, num_steps // num_records)
        steps = trajectories.steps
        final = trajectories.positions[:, -1]
        grid = grid_population if name == "brownian" else grid_data
        half = trajectories.positions.shape[1] // 2
        paths = jnp.asarray(trajectories.positions)
        curve = np.asarray(jax.jit(jax.vmap(jax.vmap(near)))(paths)).mean(axis=0)
        crossing_curve = np.asarray(jax.jit(jax.vmap(jax.vmap(in_crossing)))(paths)).mean(axis=0)
        results.append(DynamicsResult(
            name, learning_rate, mu, temperature,
            distance_to_gibbs(final, grid, key_floor),
            near_singular_fraction(trajectories.positions[:, half:], potential, epsilon),
            fraction_where(final, in_crossing),
            curve,
            crossing_curve,
            final,
            trajectories.positions[:, half:],
        ))
    return Comparison(
        potential.name, temperature, effective_learning_rate, batch_size, num_data, epsilon, crossing_radius,
        gibbs_near_singular(grid_population, potential, epsilon),
        gibbs_probability(grid_population, in_crossing),
        float((2 * crossing_radius) ** 2 / area),
        0.5 * float(np.abs(grid_population.probabilities - grid_data.probabilities).sum()),
        grid_population, grid_data, steps, tuple(results),
    )


class BasinPoint(NamedTuple):
    """Singular-basin fraction at the end of a run at one (η, μ), against Gibbs and Brownian."""

    learning_rate: float
    momentum: float
    temperature: float
    sgd: Estimate
    brownian: Estimate
    gibbs: float


def basin_sweep(potential: Potential, key: PRNGKeyArray, *, learning_rates=(0.02, 0.05, 0.1, 0.2),
                momenta=(0.0, 0.5, 0.9), batch_size: int = 1, num_particles: int = 1000, num_steps: int = 4000,
                num_data: int = 5000, num_bins: int = 40) -> tuple[BasinPoint, ...]:
    """Which basin particles end in, for (heavy-ball) SGD at each learning rate η and momentum μ.

    Each run: particles uniform in the box, `num_steps` steps; T = ησ²/(2b(1 − μ)); Brownian
    motion at that T with ε = T η/(1 − μ) (same gradient-flow time); Gibbs basin mass at T.
    The same data set, initial positions and run key serve every (η, μ).
    """
    box = potential.require_box("basin_sweep")
    key_data, key_init, key_run = jax.random.split(key, 3)
    data = potential.sample_data(key_data, num_data)
    initial = uniform_in_box(key_init, box, num_particles)
    points = []
    for learning_rate in learning_rates:
        for mu in momenta:
            temperature = sgd_temperature(learning_rate, batch_size, mu)
            effective = learning_rate / (1.0 - mu)
            runs = {
                "sgd": momentum_sgd(potential, learning_rate, mu, batch_size, data),
                "brownian": brownian(potential, temperature, effective * temperature),
            }
            ends = {name: simulate(algorithm, initial, key_run, num_steps, num_steps).positions[:, -1]
                    for name, algorithm in runs.items()}
            grid = gibbs_grid(potential, temperature, num_bins=num_bins)
            points.append(BasinPoint(
                learning_rate, mu, temperature,
                singular_basin_fraction(ends["sgd"], potential),
                singular_basin_fraction(ends["brownian"], potential),
                gibbs_singular_basin_mass(grid, potential),
            ))
    return tuple(points)


class EscapePoint(NamedTuple):
    name: str
    temperature: float
    fraction_escaped: Estimate
    median_steps: float


def escape_experiment(potential: Potential, key: PRNGKeyArray, *, learning_rates=(0.01, 0.02, 0.04), batch_size: int = 1,
                      momentum: float = 0.9, num_particles: int = 500, num_steps: int = 10000, num_data: int = 5000,
                      num_records: int = 200) -> tuple[EscapePoint, ...]:
    """Escape from the local minimum (basin 1) of `local_minimum`: every particle starts at its
    bottom c; Brownian motion, SGD and heavy-ball SGD at each η, all at matched T and η_eff."""
    key_data, key_run = jax.random.split(key)
    data = potential.sample_data(key_data, num_data)
    labels = jax.vmap(potential.basin)
    # the bottom of the local well: the lowest point of basin 1 on a fine grid
    grid = gibbs_grid(potential, 1.0, num_bins=50, refine=2)
    in_other = np.asarray(labels(jnp.asarray(grid.points))) == 1
    start = grid.points[np.argmin(np.where(in_other, grid.loss, np.inf))]
    initial = jnp.broadcast_to(jnp.asarray(start, jnp.float32), (num_particles, 2))
    points = []
    for learning_rate in learning_rates:
        temperature = sgd_temperature(learning_rate, batch_size)
        runs = {
            "brownian": brownian(potential, temperature, learning_rate * temperature),
            "sgd": sgd(potential, learning_rate, batch_size, data),
            "heavy_ball": momentum_sgd(potential, learning_rate * (1 - momentum), momentum, batch_size, data),
        }
        for name, algorithm in runs.items():
            trajectories = simulate(algorithm, initial, key_run, num_steps, num_steps // num_records)
            escapes = escape_times(trajectories.positions, potential, trajectories.steps)
            points.append(EscapePoint(name, temperature, escapes.fraction_escaped, escapes.median))
    return tuple(points)

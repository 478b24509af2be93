"""Brownian motion vs plain and momentum SGD near singular sets, against exact Gibbs laws.

Writes into --out (default figures/), PNG and PDF each:
- fig_dynamics_occupancy: Gibbs vs gradient descent, Brownian, SGD as an SDE, SGD, heavy-ball and Nesterov
  on K = (w1 w2)²/2;
- fig_dynamics_near_singular: crossing-box occupancy, mean log|w1² − w2²| (SGD's collapse) and the
  descent measure (near the singular set) over time;
- fig_dynamics_basins: singular vs regular basin at equal loss, against learning rate and momentum
  (Brownian reference in stable substeps).
Prints the numbers behind them. `--small` runs tiny settings (for tests).
Same as `slt dynamics compare` and `slt dynamics basins` with the settings below.
"""

import jax

from slt import dynamics
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__.splitlines()[0])
key_compare, key_basins = jax.random.split(jax.random.key(0))

if args.small:
    compare_settings = dict(num_particles=100, num_steps=400, num_data=500, num_records=20, num_bins=16)
    basin_settings = dict(learning_rates=(0.4,), momenta=(0.0, 0.9), num_particles=100, num_steps=200, num_data=500)
else:
    compare_settings = dict(num_particles=2000, num_steps=20000, num_data=20000, num_records=100, num_bins=40)
    basin_settings = dict(learning_rates=(0.05, 0.1, 0.2, 0.4), momenta=(0.0, 0.5, 0.9), num_particles=1000,
                          num_steps=4000, num_data=5000)

comparison = dynamics.compare_dynamics(dynamics.normal_crossing((1, 1)), key_compare, effective_learning_rate=0.05,
                                       batch_size=5, momentum=0.9, epsilon=0.1, crossing_radius=0.2,
                                       **compare_settings)
print(f"T = {comparison.temperature:g}; Gibbs near singular {comparison.gibbs_near_singular:.3f}, "
      f"near crossing {comparison.gibbs_near_crossing:.3f} (uniform {comparison.uniform_near_crossing:.3f})")
for result in comparison.results:
    print(f"{result.name:16s} η={result.learning_rate:<6g} μ={result.momentum:<4g} "
          f"crossing box (2nd half) {result.crossing_occupancy.value:.3f}±{result.crossing_occupancy.std_error:.3f} "
          f"slope log|w1²−w2²| {result.imbalance_slope.value:.3g}±{result.imbalance_slope.std_error:.2g} "
          f"(collapse law {-result.predicted_collapse_rate:.3g}) "
          f"TV={result.distance.total_variation:.3f} (floor {result.distance.floor_mean:.3f}/{result.distance.floor_upper:.3f}) "
          f"descent: near singular {result.near_singular.value:.3f}±{result.near_singular.std_error:.3f} "
          f"final crossing {result.near_crossing.value:.3f}±{result.near_crossing.std_error:.3f}")
save_figure(dynamics.occupancy_maps(comparison), args.out, "fig_dynamics_occupancy")
save_figure(dynamics.time_near_singularity(comparison), args.out, "fig_dynamics_near_singular")

points = dynamics.basin_sweep(dynamics.two_basin(), key_basins, batch_size=10, **basin_settings)
for point in points:
    print(f"basins η={point.learning_rate:<5g} μ={point.momentum:<4g} T={point.temperature:<8.4g} "
          f"SGD {point.sgd.value:.3f}±{point.sgd.std_error:.3f} Brownian {point.brownian.value:.3f}±"
          f"{point.brownian.std_error:.3f} ({point.brownian_substeps} substeps) Gibbs {point.gibbs:.3f} "
          f"SGD stability number {point.sgd_stability:.2f}")
save_figure(dynamics.basin_preference(points), args.out, "fig_dynamics_basins")

"""`slt dynamics {compare,basins,escape,landscape,temperature}`: Brownian motion vs (momentum) SGD.

    slt dynamics compare --learning-rate 0.05 --batch-size 5 --momentum 0.9
    slt dynamics basins --learning-rates 0.05,0.1,0.2 --momenta 0,0.5,0.9
    slt dynamics escape --learning-rates 0.01,0.02,0.04
    slt dynamics landscape two_basin --temperature 0.01
    slt dynamics temperature --learning-rate 0.05 --batch-size 5 --momentum 0.9
"""

import json

from slt import dynamics
from slt.cli._progress import add_progress_flag, wanted
from slt.dynamics import _experiments
from slt.dynamics._measures import barrier_height
from slt.run import SEED_RULE, prng_key, progress_bar


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def _positive(value, name: str, integer: bool = False):
    if integer and (not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def _add_run_options(parser, *, particles: int, steps: int, n: int) -> None:
    """--particles, --steps, --n, --seed and --json, shared by the simulation subcommands."""
    parser.add_argument("--particles", type=int, default=particles, help=f"particles per run (default {particles})")
    parser.add_argument("--steps", type=int, default=steps, help=f"steps per particle (default {steps})")
    parser.add_argument("--n", type=int, default=n, help=f"data set size for SGD's minibatches (default {n})")
    parser.add_argument("--seed", type=int, default=0, help=f"PRNG seed, {SEED_RULE} (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_progress_flag(parser)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dynamics",
        help="Brownian motion, SGD and momentum SGD near singular sets, against exact Gibbs laws",
        description="Compare dynamics on 2-D potentials with the Gibbs posterior computed by quadrature.",
    )
    commands = parser.add_subparsers(dest="dynamics_command", required=True, metavar="SUBCOMMAND")

    compare = commands.add_parser("compare", help="occupancy near K = (w1 w2)²/2 at one matched temperature")
    compare.add_argument("--learning-rate", type=float, default=0.05,
                         help="effective learning rate η/(1 − μ), shared by every dynamics (default 0.05)")
    compare.add_argument("--batch-size", type=int, default=5, help="minibatch size b (default 5)")
    compare.add_argument("--momentum", type=float, default=0.9, help="μ of heavy-ball and Nesterov (default 0.9)")
    _add_run_options(compare, particles=2000, steps=20000, n=20000)
    compare.add_argument("--epsilon", type=float, default=0.1, help="'near the singular set' radius (default 0.1)")
    compare.set_defaults(run=run_compare)

    basins = commands.add_parser("basins", help="singular vs regular basin at equal loss, over η and μ")
    basins.add_argument("--learning-rates", default="0.05,0.1,0.2,0.4", help="comma-separated η (raw, not effective)")
    basins.add_argument("--momenta", default="0,0.5,0.9", help="comma-separated μ")
    basins.add_argument("--batch-size", type=int, default=10, help="minibatch size b (default 10)")
    _add_run_options(basins, particles=1000, steps=4000, n=5000)
    basins.set_defaults(run=run_basins)

    escape = commands.add_parser("escape", help="escape from a local minimum with K > 0")
    escape.add_argument("--learning-rates", default="0.01,0.02,0.04", help="comma-separated η of plain SGD")
    escape.add_argument("--batch-size", type=int, default=1, help="minibatch size b (default 1)")
    escape.add_argument("--momentum", type=float, default=0.9, help="μ of the heavy-ball run (default 0.9)")
    _add_run_options(escape, particles=500, steps=10000, n=5000)
    escape.set_defaults(run=run_escape)

    landscape = commands.add_parser("landscape", help="a potential's Gibbs facts at one temperature")
    landscape.add_argument("potential", choices=sorted(dynamics.POTENTIALS), help="which 2-D potential")
    landscape.add_argument("--temperature", type=float, default=0.01, help="T (default 0.01)")
    landscape.add_argument("--epsilon", type=float, default=0.1, help="'near the singular set' radius")
    landscape.set_defaults(run=run_landscape)

    temperature = commands.add_parser("temperature", help="SGD's effective temperature ησ²/(2b(1 − μ))")
    temperature.add_argument("--learning-rate", type=float, required=True)
    temperature.add_argument("--batch-size", type=int, required=True)
    temperature.add_argument("--momentum", type=float, default=0.0)
    temperature.set_defaults(run=run_temperature)


def _bar(args):
    """A bar over the simulation's particle-steps, which the experiment plans when it starts."""
    return progress_bar(f"slt dynamics {args.dynamics_command}", 0, enabled=wanted(args))


def _estimate(e) -> str:
    return f"{e.value:.3f} ± {e.std_error:.3f}"


def run_compare(args) -> int:
    _positive(args.learning_rate, "--learning-rate")
    for name in ("batch_size", "particles", "steps", "n"):
        _positive(getattr(args, name), f"--{name.replace('_', '-')}", integer=True)
    _positive(args.epsilon, "--epsilon")
    if args.n < args.batch_size:
        raise ValueError(f"--n ({args.n}) must be >= --batch-size ({args.batch_size})")
    records = 100 if args.steps % 100 == 0 else 1
    with _bar(args):
        result = _experiments.compare_dynamics(
            dynamics.normal_crossing((1, 1)), prng_key(args.seed, "--seed"), effective_learning_rate=args.learning_rate,
            batch_size=args.batch_size, momentum=args.momentum, num_particles=args.particles, num_steps=args.steps,
            num_data=args.n, num_records=records, epsilon=args.epsilon,
        )
    if args.json:
        print(json.dumps({
            "potential": result.potential, "temperature": result.temperature,
            "effective_learning_rate": result.effective_learning_rate, "batch_size": result.batch_size,
            "num_data": result.num_data, "epsilon": result.epsilon, "crossing_radius": result.crossing_radius,
            "gibbs_near_singular": result.gibbs_near_singular, "gibbs_near_crossing": result.gibbs_near_crossing,
            "uniform_near_crossing": result.uniform_near_crossing,
            "gibbs_data_vs_population_tv": result.gibbs_loss_vs_population_tv,
            "dynamics": [{
                "name": r.name, "learning_rate": r.learning_rate, "momentum": r.momentum,
                "tv_to_gibbs": r.distance.total_variation, "tv_floor_mean": r.distance.floor_mean,
                "tv_floor_upper": r.distance.floor_upper, "near_singular": list(r.near_singular),
                "near_crossing": list(r.near_crossing), "crossing_occupancy": list(r.crossing_occupancy),
                "imbalance_slope": list(r.imbalance_slope), "predicted_collapse_rate": r.predicted_collapse_rate,
            } for r in result.results],
        }, indent=2))
        return 0
    print(f"{result.potential} on [−1, 1]², T = η_eff/(2b) = {result.temperature:g} "
          f"(η_eff = {result.effective_learning_rate:g}, b = {result.batch_size}, n = {result.num_data}), "
          f"{args.particles} particles × {args.steps} steps from a uniform start")
    print(f"Gibbs: near singular set (dist < {result.epsilon:g}) {result.gibbs_near_singular:.3f}; "
          f"near crossing (|w|∞ < {result.crossing_radius:g}) {result.gibbs_near_crossing:.3f} "
          f"(uniform {result.uniform_near_crossing:.3f}); TV(Gibbs of L_n, Gibbs of K) = "
          f"{result.gibbs_loss_vs_population_tv:.3f}")
    header = ("dynamics", "η", "μ", "crossing box (2nd half)", "slope log|w1²−w2²|", "collapse law", "TV to Gibbs",
              "floor (mean/99.9%)", "descent: near singular", "final crossing")
    rows = [(r.name, f"{r.learning_rate:g}", f"{r.momentum:g}", _estimate(r.crossing_occupancy),
             f"{r.imbalance_slope.value:.3g} ± {r.imbalance_slope.std_error:.2g}", f"{-r.predicted_collapse_rate:.3g}",
             f"{r.distance.total_variation:.3f}", f"{r.distance.floor_mean:.3f}/{r.distance.floor_upper:.3f}",
             _estimate(r.near_singular), _estimate(r.near_crossing)) for r in result.results]
    _table(header, rows)
    return 0


def _table(header, rows) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def run_basins(args) -> int:
    learning_rates = _floats(args.learning_rates, "--learning-rates")
    momenta = _floats(args.momenta, "--momenta")
    if any(not lr > 0 for lr in learning_rates) or any(not 0 <= mu < 1 for mu in momenta):
        raise ValueError("--learning-rates must be > 0 and --momenta in [0, 1)")
    for name in ("batch_size", "particles", "steps", "n"):
        _positive(getattr(args, name), f"--{name.replace('_', '-')}", integer=True)
    with _bar(args):
        points = _experiments.basin_sweep(
            dynamics.two_basin(), prng_key(args.seed, "--seed"), learning_rates=learning_rates, momenta=momenta,
            batch_size=args.batch_size, num_particles=args.particles, num_steps=args.steps, num_data=args.n,
        )
    if args.json:
        print(json.dumps([{"learning_rate": p.learning_rate, "momentum": p.momentum, "temperature": p.temperature,
                           "sgd": list(p.sgd), "brownian": list(p.brownian), "gibbs": p.gibbs} for p in points], indent=2))
        return 0
    print("two_basin: fraction of particles ending in the singular basin (uniform start, equal loss K = 0)")
    _table(("η", "μ", "T", "momentum SGD", "Brownian at T", "Gibbs at T"),
           [(f"{p.learning_rate:g}", f"{p.momentum:g}", f"{p.temperature:.4g}", _estimate(p.sgd),
             _estimate(p.brownian), f"{p.gibbs:.3f}") for p in points])
    return 0


def run_escape(args) -> int:
    learning_rates = _floats(args.learning_rates, "--learning-rates")
    if any(not lr > 0 for lr in learning_rates):
        raise ValueError("--learning-rates must be > 0")
    for name in ("batch_size", "particles", "steps", "n"):
        _positive(getattr(args, name), f"--{name.replace('_', '-')}", integer=True)
    if args.steps % 100:
        raise ValueError(f"--steps must be a multiple of 100, got {args.steps}")
    with _bar(args):
        points = _experiments.escape_experiment(
            dynamics.local_minimum(), prng_key(args.seed, "--seed"), learning_rates=learning_rates,
            batch_size=args.batch_size, momentum=args.momentum, num_particles=args.particles, num_steps=args.steps,
            num_data=args.n, num_records=100,
        )
    if args.json:
        print(json.dumps([{"dynamics": p.name, "temperature": p.temperature,
                           "fraction_escaped": list(p.fraction_escaped), "median_steps": p.median_steps}
                          for p in points], indent=2))
        return 0
    potential = dynamics.local_minimum()
    bottom, saddle = barrier_height(dynamics.gibbs_grid(potential, 0.05, num_bins=60, refine=2), potential)
    print(f"{potential.name}: escape from the well (K = {bottom:.3f}, barrier {saddle - bottom:.3f}) within "
          f"{args.steps} steps, every particle starting at its bottom; T = η/(2b), heavy ball at η(1 − μ)")
    _table(("dynamics", "T", "escaped", "median escape step"),
           [(p.name, f"{p.temperature:.4g}", _estimate(p.fraction_escaped), f"{p.median_steps:g}") for p in points])
    return 0


def run_landscape(args) -> int:
    _positive(args.temperature, "--temperature")
    potential = dynamics.POTENTIALS[args.potential]()
    grid = dynamics.gibbs_grid(potential, args.temperature, num_bins=60, refine=3)
    print(f"{potential.name}: {potential.description}")
    print(f"box {potential.bounds}; T = {args.temperature:g}")
    print(f"Gibbs probability within {args.epsilon:g} of the singular set: "
          f"{dynamics.gibbs_near_singular(grid, potential, args.epsilon):.4f}")
    if potential.basin is not None:
        bottom, saddle = barrier_height(grid, potential)
        print(f"Gibbs mass of the singular / global basin: {dynamics.gibbs_singular_basin_mass(grid, potential):.4f}")
        print(f"other basin's lowest K {bottom:.4f}; lowest saddle {saddle:.4f}; barrier {saddle - bottom:.4f} (grid)")
    return 0


def run_temperature(args) -> int:
    value = dynamics.sgd_temperature(args.learning_rate, args.batch_size, args.momentum)
    print(f"T = η σ² / (2 b (1 − μ)) = {args.learning_rate:g} · 1 / (2 · {args.batch_size} · {1 - args.momentum:g}) "
          f"= {value:g}   (σ² = 1; Brownian step matching one SGD step: ε = η T/(1 − μ) = "
          f"{args.learning_rate / (1 - args.momentum) * value:g})")
    return 0

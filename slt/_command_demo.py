"""`slt demo`: the main job shown in the README."""

import jax

import toy_models


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="a worked example on a toy model with known λ")
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed for the data (default 0)")
    parser.add_argument("--n", type=int, default=10_000, help="number of data points (default 10000)")
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.n < 2:
        raise ValueError(f"--n must be >= 2, got {args.n}")
    model = toy_models.get("normal_crossing", powers=(1, 1))
    print(f"Model {model.label}: d = {model.dimension}, known λ = {model.true_rlct}, m = {model.multiplicity}")
    print(f"  ({model.reference})")
    key_data, key_points = jax.random.split(jax.random.key(args.seed))
    data = model.sample_data(key_data, args.n)
    points = 0.5 * jax.random.normal(key_points, (5, model.dimension))
    loss_at_truth = model.loss(model.w_star, data)
    print(f"\nn = {args.n}: L_n(w*) = {float(loss_at_truth):.5f}")
    print("  L_n(w) − L_n(w*) against K(w) at random points (they agree up to O(1/√n)):")
    for point in points:
        gap = model.loss(point, data) - loss_at_truth
        print(f"    w = ({', '.join(f'{float(c):+.3f}' for c in point)})  L_n − L_n(w*) = {float(gap):+.5f}  K(w) = {float(model.population_loss(point)):.5f}")
    return 0

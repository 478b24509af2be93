"""`slt estimate FAMILY [--set KEY=VALUE ...] [--method llc|wbic|rlct|ti|waic] [--n N] [--chains C]
[--draws D] [--seed S] [--json]`: a thin layer over `slt.estimate`."""

import json

import toy_models
from slt.cli._progress import add_progress_flag, wanted
from slt.estimate import METHODS, EstimateSettings, estimate
from slt.run import SEED_RULE, prng_key

_DEFAULTS = EstimateSettings()


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "estimate",
        help="estimate λ (LLC, WBIC or a temperature sweep) of a registry model, with error bar and diagnostics",
        description=(
            "Sample the tempered posterior of a registry model with SGLD (step size calibrated automatically) "
            "and print the estimate, its Monte-Carlo standard error, the predicted SGLD step-size bias "
            "(systematic_error), the known λ and m, and diagnostics. The interval is estimate ± (1.96 se + "
            "systematic_error): Monte-Carlo error plus the predicted SGLD bias, at the reported nβ only (not the "
            "finite-temperature gap λ − λ(nβ)); for d <= 2 the exact finite-temperature value λ(nβ) is printed "
            "beside it."
        ),
    )
    parser.add_argument("family", help=f"one of: {', '.join(toy_models.names())}")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="a family parameter, e.g. --set powers=1,2 or --set M=5 --set H=3 --set N=5 --set r=0")
    parser.add_argument("--method", default="llc", help=f"one of: {', '.join(METHODS)} (default llc)")
    parser.add_argument("--n", type=int, default=_DEFAULTS.n, help=f"data size n (default {_DEFAULTS.n})")
    parser.add_argument("--chains", type=int, default=_DEFAULTS.num_chains,
                        help=f"chains per temperature (default {_DEFAULTS.num_chains})")
    parser.add_argument("--draws", type=int, default=_DEFAULTS.num_draws,
                        help=f"recorded draws per chain (default {_DEFAULTS.num_draws})")
    parser.add_argument("--thinning", type=int, default=_DEFAULTS.thinning,
                        help=f"SGLD steps per recorded draw (default {_DEFAULTS.thinning})")
    parser.add_argument("--seed", type=int, default=0, help=f"PRNG seed, {SEED_RULE} (default 0)")
    parser.add_argument("--population", action="store_true",
                        help="llc and rlct: sample the population posterior exp(−t K) with fresh minibatches "
                             "(no data-set fluctuation; t not bounded by n)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_progress_flag(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.family not in toy_models.names():
        raise ValueError(f"unknown model family {args.family!r}; known families: {', '.join(toy_models.names())}")
    key = prng_key(args.seed, "--seed")
    params = toy_models.parse_assignments(args.family, args.assignments)
    model = toy_models.get(args.family, **params)
    settings = EstimateSettings(method=args.method, n=args.n, num_chains=args.chains, num_draws=args.draws,
                                thinning=args.thinning, population=args.population)
    result = estimate(model, args.method, key=key, settings=settings, progress=wanted(args))
    if args.json:
        print(json.dumps({**result.to_json(), "seed": args.seed}, allow_nan=False))
    else:
        print(result.summary())
        diagnostics = result.diagnostics
        print(f"  interval (± (1.96 se + systematic_error)): [{result.interval[0]:.5g}, {result.interval[1]:.5g}]; "
              f"{diagnostics['interval_note']}")
        print(f"  R-hat {diagnostics['rhat']:.4f}, ESS bulk {diagnostics['ess_bulk']:.0f}, "
              f"MALA acceptance {diagnostics['mala_acceptance']:.3f}, step size {diagnostics['step_size']}, "
              f"seconds {result.seconds:.1f}")
        for warning in diagnostics["warnings"]:
            print(f"  warning: {warning}")
    return 0

"""`slt models [FAMILY --set KEY=VALUE ...] [--json]`: the registry with known λ and m."""

import json

import toy_models


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the toy-model registry (name, parameters, d, λ, m, reference)",
        description="Without FAMILY: every reference instance. With FAMILY and --set: that one model.",
    )
    parser.add_argument("family", nargs="?", help=f"one of: {', '.join(toy_models.names())}")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="a family parameter, e.g. --set powers=1,2 or --set widths=4,3,3,4 --set r=1")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def _format_rlct(model) -> str:
    if model.true_rlct is not None:
        return str(model.true_rlct)
    if model.rlct_bounds is not None:
        lower, upper = model.rlct_bounds
        return f"{'' if lower is None else lower}..{'' if upper is None else upper}"
    return "?"


def run(args) -> int:
    if args.family is None:
        if args.assignments:
            raise ValueError("--set needs a FAMILY")
        models = toy_models.catalogue()
    else:
        models = (toy_models.get(args.family, **toy_models.parse_assignments(args.family, args.assignments)),)
    if args.json:
        print(json.dumps([m.describe() for m in models], indent=2))
        return 0
    rows = [(m.label, str(m.dimension), _format_rlct(m), "?" if m.multiplicity is None else str(m.multiplicity),
             m.reference.split(",")[0]) for m in models]
    header = ("model", "d", "λ", "m", "reference")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0

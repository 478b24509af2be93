"""`slt trajectory MODEL CHECKPOINTS --out DIR [--restrict NAME=PATH[,PATH...]] ...`: the LLC at
every checkpoint of a training run (a thin layer over `slt.trajectory.llc_trajectory`).

MODEL is `file.py:function` or `package.module:function`: a function of no arguments returning
a `toy_models.from_loss` model (its loss, data and parameter structure). CHECKPOINTS is a
folder of .npz files or orbax checkpoints. DIR receives the resumable record, `llc.csv` and
`llc.png`; rerunning the same command resumes.
"""

import importlib
import importlib.util
from pathlib import Path

from slt.run import SEED_RULE, prng_key
from slt.trajectory._output import plot_trajectory, stage_boundaries, write_table
from slt.trajectory._run import DEFAULT_LOCALIZATION, llc_trajectory


def load_model(spec: str):
    """`file.py:function` or `module:function`, called with no arguments."""
    if ":" not in spec:
        raise ValueError(f"model {spec!r} must be FILE.py:FUNCTION or MODULE:FUNCTION")
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py"):
        path = Path(where)
        if not path.exists():
            raise ValueError(f"model file {where!r} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as error:
            raise ValueError(f"model {spec!r}: cannot import {where!r} ({error}); give FILE.py:FUNCTION or "
                             "MODULE:FUNCTION") from None
    if not callable(getattr(module, name, None)):
        raise ValueError(f"model {spec!r}: {where} has no function {name!r}")
    return getattr(module, name)()


def parse_restrictions(items: list[str]) -> dict[str, list[str]]:
    restrictions = {}
    for item in items:
        name, _, paths = item.partition("=")
        if not name or not paths:
            raise ValueError(f"--restrict {item!r} must be NAME=PATH[,PATH...]")
        restrictions[name] = paths.split(",")
    return restrictions


def build_parser(subparsers) -> None:
    """Add the `trajectory` subcommand to an argparse `subparsers` (`slt.cli` calls it `register`)."""
    parser = subparsers.add_parser(
        "trajectory", help="LLC (and weight-restricted LLCs) at every checkpoint of a training run",
        description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="FILE.py:FUNCTION or MODULE:FUNCTION returning a toy_models.from_loss model")
    parser.add_argument("checkpoints", help="folder of .npz files or orbax checkpoints")
    parser.add_argument("--out", required=True, type=Path, help="output folder (resumable record, llc.csv, llc.png)")
    parser.add_argument("--restrict", action="append", default=[], metavar="NAME=PATH[,PATH...]",
                        help="a weight-restricted LLC over these parameter paths (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help=f"PRNG seed, {SEED_RULE} (default 0)")
    parser.add_argument("--chains", type=int, default=4, help="chains per checkpoint (default 4)")
    parser.add_argument("--draws", type=int, default=1000, help="recorded draws per chain (default 1000)")
    parser.add_argument("--thinning", type=int, default=1, help="steps per recorded draw (default 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="SGLD minibatch (default: full batch)")
    parser.add_argument("--nbeta", type=float, default=None, help="nβ (default n / log n)")
    parser.add_argument("--localization", type=float, default=DEFAULT_LOCALIZATION,
                        help=f"γ (default {DEFAULT_LOCALIZATION:g}; see docs/trajectory.md)")
    parser.add_argument("--step-size", type=float, default=None, help="ε (default: calibrated once)")
    parser.add_argument("--calibrate-at", type=int, default=-1, help="checkpoint index to calibrate ε at (default -1)")
    parser.add_argument("--pack-size", type=int, default=16, help="checkpoints per compiled call (default 16)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar (default: checkpoints done / total on stderr when it is a terminal)")
    parser.set_defaults(run=run)


register = build_parser


def run(args) -> int:
    import slt.plotting  # noqa: F401  (selects the headless matplotlib backend)

    model = load_model(args.model)
    result = llc_trajectory(model, args.checkpoints, key=prng_key(args.seed, "--seed"),
                            restrict=parse_restrictions(args.restrict), nbeta=args.nbeta,
                            localization=args.localization, step_size=args.step_size, batch_size=args.batch_size,
                            num_chains=args.chains, num_draws=args.draws, thinning=args.thinning,
                            calibrate_at=args.calibrate_at, pack_size=args.pack_size, out_dir=args.out,
                            progress=args.progress)
    table = write_table(result, args.out / "llc.csv")
    figure = plot_trajectory(result)
    figure.savefig(args.out / "llc.png")
    print(f"step size ε = {result.calibration['step_size']:.4g}; {len(result.rows)} rows -> {table}")
    print(f"stage boundaries (training steps): {stage_boundaries(result)}")
    for row in result.rows:
        estimate = "failed" if row["estimate"] is None else f"{row['estimate']:.4g} ± {row['std_error']:.2g}"
        print(f"  {row['subset']:>12} step {row['step']:>8}: λ̂ = {estimate} ({row['reading']})")
    return 0

"""`slt` command line. Each subcommand lives in its own module with `register(subparsers)`."""

import argparse
import os
import sys

from slt.cli import _batch, _demo, _dynamics, _estimate, _experiment, _models
from slt.run._compilation_cache import enable_compilation_cache
from slt.trajectory import _command as _trajectory

_COMMANDS = (_models, _demo, _dynamics, _estimate, _batch, _experiment, _trajectory)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slt", description="Singular learning theory workbench.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `slt`; bad input prints `slt COMMAND: error: ...` and exits 2 (SLT_DEBUG=1 re-raises)."""
    args = build_parser().parse_args(argv)
    enable_compilation_cache()
    try:
        return args.run(args) or 0
    except ValueError as error:
        if os.environ.get("SLT_DEBUG"):
            raise
        print(f"slt {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

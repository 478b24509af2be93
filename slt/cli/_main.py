"""`slt` command line. Each subcommand lives in its own module with `register(subparsers)`."""

import argparse
import importlib.metadata
import os
import sys

from slt.cli import _batch, _demo, _dynamics, _estimate, _experiment, _models
from slt.run._compilation_cache import enable_compilation_cache
from slt.trajectory import _command as _trajectory

_COMMANDS = (_models, _demo, _dynamics, _estimate, _batch, _experiment, _trajectory)


class _OneLineParser(argparse.ArgumentParser):
    """A bad flag or value is one line `PROG: error: ...` and exit 2, like every other user error
    (argparse's default prints the whole usage first); subcommand parsers inherit the class."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="slt", description="Singular learning theory workbench.")
    parser.add_argument("--version", action="version", version=f"slt {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(subparsers)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("slt-workbench")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def main(argv: list[str] | None = None) -> int:
    """Run `slt`; a user error (bad input: ValueError; a file or folder that cannot be read or
    written: OSError) prints one line `slt COMMAND: error: ...` and exits 2 (SLT_DEBUG=1 re-raises)."""
    args = build_parser().parse_args(argv)
    enable_compilation_cache()
    try:
        return args.run(args) or 0
    except (ValueError, OSError) as error:
        if os.environ.get("SLT_DEBUG"):
            raise
        print(f"slt {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2


def _one_line(error: Exception) -> str:
    if isinstance(error, OSError) and not isinstance(error, ValueError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    return " ".join(str(error).split("\n"))


if __name__ == "__main__":
    sys.exit(main())

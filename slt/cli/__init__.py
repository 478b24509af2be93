"""The `slt` command line: one module per subcommand, each with `register(subparsers)`."""

from slt.cli._main import build_parser, main

__all__ = ["build_parser", "main"]

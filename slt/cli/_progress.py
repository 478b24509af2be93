"""The `--no-progress` flag every long command takes, and what it means for `slt.run.progress_bar`."""


def add_progress_flag(parser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                        help="no progress bar (default: a bar on stderr when it is a terminal, not under CI; "
                             "SLT_PROGRESS=1 forces it on)")


def wanted(args) -> bool | None:
    """False under --no-progress, else None: `slt.run.progress_wanted` decides."""
    return getattr(args, "progress", None)

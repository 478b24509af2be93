"""What every figure script shares: its command line, the house style, and saving PNG + PDF."""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

STYLE = Path(__file__).resolve().parent.parent / "figures" / "style.mplstyle"


def figure_arguments(description: str) -> argparse.Namespace:
    """`--out DIR` (default figures/) and `--small` (tiny settings for tests); applies the style."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=STYLE.parent, help="output folder")
    parser.add_argument("--small", action="store_true", help="tiny settings, for tests")
    args = parser.parse_args()
    if STYLE.exists():
        plt.style.use(STYLE)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


# No creation date and no software version in the files: regenerating an unchanged figure gives
# the same bytes, so it does not dirty the tree.
_DETERMINISTIC_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}


def save_figure(figure, out: Path, name: str) -> None:
    """Write `name.png` and `name.pdf` into `out` and close the figure. The files hold no date and
    no software version, so the same figure gives the same bytes."""
    for suffix in ("png", "pdf"):
        figure.savefig(Path(out) / f"{name}.{suffix}", metadata=_DETERMINISTIC_METADATA[suffix])
    plt.close(figure)

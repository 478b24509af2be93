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


def save_figure(figure, out: Path, name: str) -> None:
    """Write `name.png` and `name.pdf` into `out` and close the figure."""
    for suffix in ("png", "pdf"):
        figure.savefig(Path(out) / f"{name}.{suffix}")
    plt.close(figure)

"""Figure files are deterministic (issue 22): regenerating an unchanged figure must not dirty the tree."""

import time

import matplotlib.pyplot as plt

from slt import plotting


def _draw(out):
    figure, axes = plt.subplots()
    axes.plot([0.0, 1.0], [1.0, 0.0])
    axes.set_title("same figure")
    plotting.save_figure(figure, out, "figure")


def test_the_same_figure_gives_the_same_bytes(tmp_path):
    """The PDF used to carry its creation date (to the second) and both files matplotlib's version."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _draw(first)
    time.sleep(1.1)  # a creation date in seconds would differ now
    _draw(second)
    for suffix in ("png", "pdf"):
        written = (first / f"figure.{suffix}").read_bytes()
        assert written == (second / f"figure.{suffix}").read_bytes(), suffix
        assert b"CreationDate" not in written and b"Software" not in written and b"atplotlib v" not in written

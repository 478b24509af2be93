"""A fraction-done bar for long runs, fed by the compiled sampler loops (no Python loop per step).

One bar is open at a time per unit (`progress_bar`); whatever runs inside it reports work with
`advance_progress` (host code) or `compiled_progress` (inside `jax.jit`: a `jax.debug.callback`
with no arguments, so `vmap` over chains or jobs calls it once, not once per chain). The driver
(`slt.sample`, `slt.sample_jobs`) feeds an open bar whose unit is "chain-steps" after each
compiled chunk of its loop (`slt.run._engine.CHUNKS_PER_PHASE`), with no Python loop per step;
with no bar open it runs as before, one compiled call per phase.

Conventions
-----------
A bar counts units of one kind: "chain-steps" (chains × steps, summed over jobs and stages), "jobs"
(a batch), "checkpoints" (a trajectory) or "stages" (an experiment's parts). The owner states the
total in advance, or opens the bar at 0 and the work states its own size when it starts
(`plan_progress`); a stage that was not planned (the estimate's step-size refinement, a divergent
run retried) announces itself with `expect_progress`, which extends the total and says so on the
bar (`extension_note`).

Shown on stderr only where it is a terminal, or when forced (`enabled=True`); never under `CI`, or
with `SLT_PROGRESS=0`; `SLT_PROGRESS=1` forces it on. Never on stdout, so `--json` output stays
clean. Overhead: benchmarks/results/progress_overhead.md.

Why chunks, not compiled callbacks, in the driver: the callbacks themselves cost ~14 µs each, but
the nested scans that place them every k steps made the loop itself slower (8–11 % CPU on a small
SGLD run, in that file); chunks keep the compiled loop as it is.
"""

import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from functools import partial

import jax
from tqdm.auto import tqdm

CHAIN_STEPS = "chain-steps"
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]"


class ProgressBar:
    """Done / total of one kind of unit, drawn with tqdm. Thread-safe: `compiled_progress`
    callbacks arrive on XLA's host threads."""

    def __init__(self, description: str, total: float, unit: str, stream, extension_note: str | None,
                 initial: float = 0):
        if not total >= 0:
            raise ValueError(f"a progress bar's total must be >= 0, got {total!r}")
        if not 0 <= initial <= total:
            raise ValueError(f"a progress bar's initial count must be in [0, total = {total}], got {initial!r}")
        self.unit, self.total, self.done = unit, _count(total), _count(initial)
        self.extension_note = extension_note
        self.extensions = 0
        self.reports = 0  # advance() calls (benchmarks/progress_overhead.py counts them)
        self._lock = threading.Lock()
        sized = _terminal_sized(stream)  # tqdm draws nothing on a terminal of size 0 (some pseudo-terminals)
        self._bar = tqdm(total=self.total, initial=self.done, desc=description, unit=unit, unit_scale=False,
                         file=stream, leave=True, bar_format=_BAR_FORMAT, dynamic_ncols=sized,
                         ncols=None if sized else 100, nrows=None if sized else 24)

    def advance(self, units: float) -> None:
        units = _count(units)
        with self._lock:
            self.reports += 1
            self.done += units
            if self.done > self.total:  # more work than announced: never show more than 100 %
                self._extend(self.done - self.total)
            self._bar.update(units)

    def plan(self, units: float) -> None:
        """Add `units` to the planned total (work that states its own size when it starts)."""
        with self._lock:
            self.total += _count(units)
            self._bar.total = self.total
            self._bar.refresh()

    def expect(self, units: float) -> None:
        """Work about to start: extend the total by what the remaining budget does not cover."""
        with self._lock:
            shortfall = self.done + units - self.total
            if shortfall > 1e-9 * max(units, 1.0):
                self._extend(shortfall)

    def _extend(self, units: float) -> None:  # under the lock
        self.total += units
        self.extensions += 1
        self._bar.total = self.total
        note = self.extension_note or "more work than planned"
        self._bar.set_postfix_str(f"total extended ×{self.extensions}: {note}", refresh=False)

    def close(self) -> None:
        self._bar.close()


def _terminal_sized(stream) -> bool:
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
    return size.columns > 0 and size.lines > 0


def _count(units: float) -> float | int:
    """An int where the count is whole (so the bar prints 172, not 172.0)."""
    return int(units) if float(units).is_integer() else float(units)


_open_bars: list[ProgressBar] = []  # innermost last
_registry_lock = threading.Lock()


def progress_wanted(enabled: bool | None = None, stream=None) -> bool:
    """Whether a bar shows: `enabled` if given, else `SLT_PROGRESS` (1/0) if set, else off under
    `CI` and on where `stream` (default stderr) is a terminal."""
    if enabled is not None:
        return bool(enabled)
    forced = os.environ.get("SLT_PROGRESS")
    if forced is not None:
        return forced.strip() not in ("", "0", "false", "no")
    if os.environ.get("CI"):
        return False
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


@contextlib.contextmanager
def progress_bar(description: str, total: float, *, unit: str = CHAIN_STEPS, enabled: bool | None = None,
                 stream=None, extension_note: str | None = None, initial: float = 0) -> Iterator[ProgressBar | None]:
    """Open a bar of `total` units for the body (None when it does not show, see `progress_wanted`),
    `initial` of them done already (a resumed batch).

    Work reported inside the body (`advance_progress`, `compiled_progress`, the driver) with the
    same `unit` lands on it. `extension_note` says on the bar why the total grew, when it does.

    Raises
    ------
    ValueError : a negative or NaN `total`, or `initial` outside [0, total].
    """
    stream = sys.stderr if stream is None else stream
    if not progress_wanted(enabled, stream):
        yield None
        return
    bar = ProgressBar(description, total, unit, stream, extension_note, initial)
    with _registry_lock:
        _open_bars.append(bar)
    try:
        yield bar
    finally:
        with _registry_lock:
            _open_bars.remove(bar)
        bar.close()


def open_bar(unit: str = CHAIN_STEPS) -> ProgressBar | None:
    """The innermost open bar counting `unit`, or None."""
    with _registry_lock:
        return next((bar for bar in reversed(_open_bars) if bar.unit == unit), None)


def advance_progress(units: float, unit: str = CHAIN_STEPS) -> None:
    """Add `units` done to the innermost open bar of that unit (nothing if none is open)."""
    bar = open_bar(unit)
    if bar is not None:
        bar.advance(units)


def plan_progress(units: float, unit: str = CHAIN_STEPS) -> None:
    """Add `units` to the open bar's planned total: for work that knows its size when it starts,
    under a bar its caller opened with the total 0 (`slt dynamics`, `slt experiment`)."""
    bar = open_bar(unit)
    if bar is not None:
        bar.plan(units)


def expect_progress(units: float, unit: str = CHAIN_STEPS) -> None:
    """Announce `units` about to run; extends the open bar's total where its budget is spent."""
    bar = open_bar(unit)
    if bar is not None:
        bar.expect(units)


def compiled_progress(units: float, unit: str = CHAIN_STEPS) -> None:
    """Inside traced code: report `units` done when execution reaches this point. No arguments are
    passed, so under `vmap` it runs once per call, not once per batch element (count the chains
    and jobs into `units`); under `shard_map` once per device."""
    jax.debug.callback(partial(advance_progress, float(units), unit))

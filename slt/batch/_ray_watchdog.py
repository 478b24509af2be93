"""Takes a local Ray cluster down with the batch driver that started it, even after `kill -9`.

`ray.init()` starts gcs_server, raylet and Ray's other services as children of the driver, and
they die with it (Linux's parent-death signal); but the agents raylet starts (DashboardAgent,
RuntimeEnvAgent) only watch raylet, and were measured alive 60 s after a SIGKILL of the driver
(Ray 2.60). SIGKILL runs nothing in the driver, so the cleanup lives in this separate process, in
its own session (a Ctrl-C or a kill of the driver's process group does not reach it):

    python _ray_watchdog.py DRIVER_PID DRIVER_START_TIME

Every `POLL_SECONDS` it records the driver's descendants (pid and start time, from /proc); once the
driver is gone it sends SIGKILL to each recorded process that still runs with the same start time
(a reused pid is left alone), and exits. The driver stops it after `ray.shutdown()`. Standard
library only, run by path, so it starts in a fraction of a second without importing JAX.

Limitations
-----------
Linux only (/proc; elsewhere `start_watchdog` returns None). A process started less than
`POLL_SECONDS` before the driver dies may be missed. Measured cleanup time:
tests/test_batch_ray_kill.py.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks since boot) of a running process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # fields 3 onwards; the name may hold spaces
    return int(fields[1]), int(fields[19])


def start_time(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat[1]


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every process below `root`."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append((int(entry), stat[1]))
    found, frontier = {}, [root]
    while frontier:
        for pid, started in children.get(frontier.pop(), []):
            if pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def watch(driver: int, driver_start: int) -> None:
    known: dict[int, int] = {}
    while start_time(driver) == driver_start:
        known.update(descendants(driver))
        time.sleep(POLL_SECONDS)
    for pid, started in known.items():
        if pid != os.getpid() and start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_watchdog() -> subprocess.Popen | None:
    """Start the watchdog over this process (None where /proc is missing)."""
    driver_start = start_time(os.getpid())
    if driver_start is None:
        return None
    return subprocess.Popen([sys.executable, "-I", str(Path(__file__).resolve()), str(os.getpid()), str(driver_start)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def stop_watchdog(process: subprocess.Popen | None) -> None:
    """After a clean `ray.shutdown()`: the watchdog has nothing left to do."""
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))

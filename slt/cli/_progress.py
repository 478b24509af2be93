"""What a long command shows on a terminal while it runs."""

import contextlib
import sys
import threading

from tqdm.auto import tqdm


@contextlib.contextmanager
def activity(description: str, stream=None):
    """A tqdm status line on stderr, ticking once a second with the elapsed time, while the body
    runs; nothing when stderr is not a terminal (pipes, files, tests). It shows that a run of
    minutes is alive and how long it has taken, not a fraction done: the estimate's stages
    (calibration, main run, refinements) are not known in advance."""
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        yield
        return
    stop = threading.Event()
    with tqdm(desc=description, bar_format="{desc}: {elapsed} elapsed", file=stream, leave=False) as bar:
        def tick():
            while not stop.wait(1.0):
                bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()

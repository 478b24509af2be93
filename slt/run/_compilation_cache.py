"""JAX's persistent compilation cache for the workbench's command line, scripts and notebooks.

The samplers compile once per model structure (`slt.run._driver`); the persistent cache keeps those
executables on disk, so a second `slt estimate` (or `make bench`, `make figures`) of the same
kind of model on the same machine loads them instead of compiling (normal crossing `llc`:
about 5 s of its 8 s are compilation when cold). The cached executable is the one XLA would
compile again, so numbers do not change.

    slt.enable_compilation_cache()            # in a notebook; the `slt` command does it itself

Location: `SLT_COMPILATION_CACHE` if set ("off" disables it), else
`$XDG_CACHE_HOME/slt-workbench/jax` (default `~/.cache/slt-workbench/jax`). Delete the folder
to clear it.
"""

import os
from pathlib import Path

import jax

ENVIRONMENT_VARIABLE = "SLT_COMPILATION_CACHE"
MIN_COMPILE_SECONDS = 0.2  # cache what takes longer than this to compile (the samplers, the pilots)


def default_cache_dir() -> Path | None:
    """The folder to use, or None when `SLT_COMPILATION_CACHE=off`."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    if configured is not None:
        return None if configured.strip().lower() in ("off", "0", "no", "false", "") else Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "slt-workbench" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache at `path` (default `default_cache_dir()`).

    Returns the folder in use, or None when disabled or when the folder cannot be created (the
    run then compiles as usual: a cache must never stop a computation).
    """
    folder = Path(path).expanduser() if path is not None else default_cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder

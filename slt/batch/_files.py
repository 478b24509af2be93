"""A batch folder's files: atomic writes, the job files, the results table, the lock, the traces."""

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slt.batch._execute import RESULT_FORMAT
from slt.batch._spec import Job, config_hash
from slt.run import save_trace

JOBS_FOLDER = "jobs"
TRACES_FOLDER = "traces"
TABLE_NAME = "results.csv"
SPEC_COPY_NAME = "spec.toml"
TABLE_COLUMNS = (
    "id", "status", "model", "family", "user_model", "params", "method", "seed", "device", "n", "nbeta",
    "num_chains", "num_draws", "batch_size", "estimate", "std_error", "true_rlct", "multiplicity",
    "exact_at_nbeta", "reliable", "rhat", "ess_bulk", "step_size", "reasons", "error", "backend",
    "num_devices", "seconds",
)
TIMING_COLUMNS = ("seconds",)
"""Columns of `results.csv` that measure time and so differ between identical runs."""


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the whole new one, never part:
    a temporary `.<name>.<random>.tmp` in the same folder, flushed and fsync-ed, then `os.replace`
    (and the folder fsync-ed, so the rename survives a crash)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; a result file is an ordinary file
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the `.<name>.<random>.tmp` files a killed run left behind; return how many."""
    removed = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_file() and _is_temporary(entry.name):
                entry.unlink(missing_ok=True)
                removed += 1
    return removed


def result_files(out_dir: str | os.PathLike) -> list[Path]:
    """The finished job files of a batch folder (never temporaries)."""
    folder = Path(out_dir) / JOBS_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith("."))


def read_result(path: Path, job: Job | None = None) -> dict[str, Any] | None:
    """The record in `path` if it is a complete result (of `job`, when given), else None."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("batch_format") != RESULT_FORMAT:
        return None
    if record.get("status") not in ("ok", "failed") or not isinstance(record.get("config"), dict):
        return None
    digest = config_hash(record["config"])
    if record.get("config_hash") != digest or record.get("id") != digest[:16] or path.stem != digest[:16]:
        return None
    if job is not None and digest != job.config_hash:
        return None
    return record


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def table_row(record: Mapping[str, Any]) -> dict[str, str]:
    """One `results.csv` row from a job record."""
    config = record["config"]
    diagnostics = record.get("diagnostics") or {}
    values = {
        "id": record["id"],
        "status": record["status"],
        "model": record.get("model"),
        "family": config["model"],
        "user_model": config["user_model"],
        "params": config["params"],
        "method": config["method"],
        "seed": config["seed"],
        "device": config["device"],
        "n": config["sampler"]["n"],
        "nbeta": record.get("nbeta"),
        "num_chains": config["sampler"]["num_chains"],
        "num_draws": config["sampler"]["num_draws"],
        "batch_size": config["sampler"]["batch_size"],
        "estimate": record.get("estimate"),
        "std_error": record.get("std_error"),
        "true_rlct": record.get("true_rlct"),
        "multiplicity": record.get("multiplicity"),
        "exact_at_nbeta": diagnostics.get("exact_at_nbeta"),
        "reliable": record.get("reliable"),
        "rhat": diagnostics.get("rhat"),
        "ess_bulk": diagnostics.get("ess_bulk"),
        "step_size": diagnostics.get("step_size"),
        "reasons": "; ".join(diagnostics.get("reasons", [])) or None,
        "error": record.get("error"),
        "backend": record.get("backend"),
        "num_devices": record.get("num_devices"),
        "seconds": record.get("job_seconds"),
    }
    return {column: _cell(values[column]) for column in TABLE_COLUMNS}


def write_table(out_dir: str | os.PathLike, jobs: Sequence[Job]) -> Path:
    """Rebuild `results.csv` from the job files, one row per job of `jobs` that has a valid file."""
    out_dir = Path(out_dir)
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for job in jobs:
        record = read_result(out_dir / JOBS_FOLDER / f"{job.id}.json", job)
        if record is not None:
            writer.writerow(table_row(record))
    path = out_dir / TABLE_NAME
    atomic_write_text(path, stream.getvalue())
    return path


def git_revision(folder: str | os.PathLike | None = None) -> str | None:
    """`git rev-parse HEAD` of the source tree holding this package, or None (no git, not a checkout)."""
    folder = Path(__file__).resolve().parent if folder is None else Path(folder)
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                                   timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    revision = completed.stdout.strip()
    return revision if completed.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", revision) else None


@contextlib.contextmanager
def lock(out_dir: Path):
    """An exclusive lock on OUT/.lock: two batch runs on one folder would delete each other's
    temporaries and race on the table."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out_dir / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another batch run is using {out_dir} (it holds {out_dir / '.lock'})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_traces(out_dir: Path, record: dict[str, Any]) -> None:
    """Write the record's ``_traces`` as OUT/traces/<id>.<k>.nc (atomic each) and list them in
    ``trace_files``; each trace's config holds the job's config, hash, seed and git revision."""
    traces = record.pop("_traces", None)
    if not traces:
        return
    names = []
    for index, (label, trace) in enumerate(traces):
        name = f"{record['id']}.{index}.nc"
        provenance = {"job_id": record["id"], "config_hash": record["config_hash"], "config": record["config"],
                      "seed": record["seed"], "git_revision": record["git_revision"], "run": label,
                      "model": record.get("model"), "method": record.get("method")}
        save_trace(trace._replace(config={**trace.config, **provenance}), out_dir / TRACES_FOLDER / name)
        names.append(f"{TRACES_FOLDER}/{name}")
    record["trace_files"] = names

"""Running a batch: packs of jobs, the local and Ray executors, and `run_batch`."""

import contextlib
import dataclasses
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from slt.batch._execute import _without_seed, check_device, run_jobs
from slt.batch._files import (
    JOBS_FOLDER,
    SPEC_COPY_NAME,
    TABLE_NAME,
    TRACES_FOLDER,
    atomic_write_text,
    git_revision,
    lock,
    read_result,
    remove_stale_temporaries,
    result_files,
    write_table,
    write_traces,
)
from slt.batch._ray_watchdog import start_watchdog, stop_watchdog
from slt.batch._spec import Job, _integer, canonical_json, load_spec
from slt.estimate import packing_pays
from slt.run import advance_progress, enable_compilation_cache, progress_bar

EXECUTORS = ("local", "ray")
DEFAULT_RAY_CHUNK_SIZE = 4
DEFAULT_PACK_SIZE = 32  # jobs per packed call where packing pays (accelerators)


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    """What `run_batch` did: `ran` new jobs, `skipped` ones already done (`--resume`), `failed`
    ones (run now or before) and the path of the table."""

    num_jobs: int
    ran: int
    skipped: int
    failed: int
    table: Path


def _pack_results(configs: Sequence[Mapping[str, Any]], revision: str | None, keep_traces: bool,
                  pack: bool) -> Iterable[dict[str, Any]]:
    """One pack's records: one packed call, or, where packing is off, one call per job, so each
    record comes (and is written) as soon as its job ends, with the job's own time."""
    if pack:
        yield from run_jobs(configs, revision, keep_traces, True)
        return
    for config in configs:
        yield from run_jobs([config], revision, keep_traces, False)


def _local_results(packs: Sequence[Sequence[Job]], revision: str | None, keep_traces: bool,
                   packing: bool | None) -> Iterable[dict[str, Any]]:
    for jobs in packs:
        yield from _pack_results([job.config for job in jobs], revision, keep_traces, _packing(jobs, packing))


def _run_packs(packs: list[list[Mapping[str, Any]]], revision: str | None, keep_traces: bool = False,
               pack: bool = False) -> list[dict[str, Any]]:
    """Ray task body: the same runs, pack after pack, in one worker (its JAX caches shared, and the
    persistent compilation cache on, as in the `slt` command: `SLT_COMPILATION_CACHE=off` disables it)."""
    enable_compilation_cache()
    return [record for configs in packs for record in _pack_results(configs, revision, keep_traces, pack)]


def pack_jobs(jobs: Sequence[Job], chunk_size: int) -> list[list[Job]]:
    """Jobs grouped by everything but the seed (they share compiled functions), then cut into
    chunks of at most `chunk_size`."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(canonical_json(_without_seed(job.config)), []).append(job)
    return [group[i:i + chunk_size] for group in groups.values() for i in range(0, len(group), chunk_size)]


def ray_tasks(packs: Sequence[list[Job]], chunk_size: int) -> list[list[list[Job]]]:
    """Consecutive packs of one config (but the seed) joined into Ray tasks of about `chunk_size`
    jobs, at least one pack each: a task's device request and packing follow its first job."""
    tasks: list[list[list[Job]]] = []
    for jobs in packs:
        if (tasks and sum(map(len, tasks[-1])) + len(jobs) <= chunk_size
                and _without_seed(tasks[-1][0][0].config) == _without_seed(jobs[0].config)):
            tasks[-1].append(jobs)
        else:
            tasks.append([jobs])
    return tasks


def _packing(jobs: Sequence[Job], packing: bool | None = None) -> bool:
    """Whether these jobs will be packed: `packing` when given, else device "gpu" yes, "cpu" no,
    "any" as this machine's backend decides (`slt.estimate.packing_pays`)."""
    if packing is not None:
        return packing
    device = jobs[0].config["device"]
    return device == "gpu" or (device == "any" and packing_pays())


def _check_same_spec(out_dir: Path, jobs: Sequence[Job], spec_text: str | None) -> None:
    """Refuse to resume into a folder whose spec copy holds other jobs: resuming would overwrite the
    copy and rebuild the table for the new jobs only. The same jobs written differently (comments,
    order of keys) are the same spec; a copy that no longer parses is compared as text."""
    copy = out_dir / SPEC_COPY_NAME
    if not copy.is_file():
        return
    text = copy.read_text(encoding="utf-8")
    if spec_text is not None and text == spec_text:
        return
    try:
        same = [job.id for job in load_spec(copy)] == [job.id for job in jobs]
    except (ValueError, OSError):
        same = False
    if not same:
        raise ValueError(f"{copy} holds another spec than this one (other jobs); resume with the spec it holds, "
                         "choose a new --out, or pass --force-spec to replace it (the table then lists the new "
                         "spec's jobs; job files of the old one stay)")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError("the ray executor needs Ray: pip install 'slt-workbench[ray]' (or 'ray>=2.40')") from None
    return ray


@contextlib.contextmanager
def _ray_starts_processes():
    """Ray starts (and stops) its local services with `subprocess.Popen(preexec_fn=...)`, which
    runs the at-fork hooks, and JAX's warns that os.fork() with threads may deadlock. The child
    execs at once, so the warning does not apply; it is silenced here only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        yield


def _ray_results(packs: Sequence[list[Job]], revision: str | None, *, address: str | None,
                 chunk_size: int, keep_traces: bool = False, packing: bool | None = None) -> Iterable[dict[str, Any]]:
    ray = _import_ray()
    started_here = not ray.is_initialized()
    watchdog = None
    if started_here:
        with _ray_starts_processes():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
            # what ray.init started (our descendants only) goes down with this driver, even after kill -9
            watchdog = start_watchdog()
    with _shutdown_on_sigterm():
        yield from _ray_task_results(ray, packs, revision, chunk_size, keep_traces, packing, started_here, watchdog)


@contextlib.contextmanager
def _shutdown_on_sigterm():
    """SIGTERM (what `kill` and job schedulers send) raises SystemExit in the driver, so the
    `finally` below shuts the local Ray instance down instead of leaving its processes behind.
    SIGKILL cannot be caught: after `kill -9` the watchdog (`slt.batch._ray_watchdog`) kills them."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ray_task_results(ray, packs, revision, chunk_size, keep_traces, packing, started_here, watchdog=None):
    try:
        jobs = [job for jobs in packs for job in jobs]
        if any(job.config["device"] == "gpu" for job in jobs):
            gpus = ray.cluster_resources().get("GPU", 0)
            if gpus < 1:
                first = next(job for job in jobs if job.config["device"] == "gpu")
                raise ValueError(f"{first.source}: device = \"gpu\" but the Ray cluster has no GPU resources "
                                 f"(cluster resources: {sorted(ray.cluster_resources())}); not waiting for one")
        remote = ray.remote(_run_packs)
        pending = {}
        for task in ray_tasks(packs, chunk_size):
            gpu = task[0][0].config["device"] == "gpu"
            reference = remote.options(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=0).remote(
                [[job.config for job in jobs] for jobs in task], revision, keep_traces, _packing(task[0], packing))
            pending[reference] = task
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for reference in done:
                del pending[reference]
                yield from ray.get(reference)
    finally:
        if started_here:
            with _ray_starts_processes():
                ray.shutdown()
            stop_watchdog(watchdog)


def run_batch(
    jobs: Sequence[Job] | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    executor: str = "local",
    resume: bool = False,
    ray_address: str | None = None,
    ray_chunk_size: int = DEFAULT_RAY_CHUNK_SIZE,
    pack_size: int = DEFAULT_PACK_SIZE,
    packing: bool | None = None,
    progress: bool | None = None,
    spec_text: str | None = None,
    save_traces: bool = True,
    retry_failed: bool = False,
    force_spec: bool = False,
    report_failure=None,
) -> BatchSummary:
    """Run the jobs (or the spec file `jobs` names) into `out_dir`; see the module docstring.

    Parameters
    ----------
    jobs : from `load_spec`/`parse_spec`, or a path to a TOML spec.
    out_dir : created if missing. Without `resume` it must hold no results yet.
    executor : "local" (in this process) or "ray" (chunks of jobs as Ray tasks;
        `ray.init(address=ray_address)`, a local instance when None).
    pack_size : at most this many jobs that differ only in their seed run as one packed call
        (`slt.estimate_many`) where packing pays (GPU; on CPU they run one after another).
    packing : force packing on or off (None: by each job's device and this machine's backend).
    resume : skip jobs whose result file is complete and matches; rerun the rest. The folder's
        spec copy must hold the same jobs (the same ids) unless `force_spec`, which replaces it.
    retry_failed : with `resume`, rerun the jobs recorded as failed too (e.g. after fixing a
        user model: its id covers its import path and parameters, not its code).
    report_failure : called with (job, record) for each job that fails now (the CLI prints a line).
    progress : a bar over jobs done / total on stderr; None: only when it is a terminal, not under CI
        (`slt.run.progress_wanted`).
    spec_text : the spec's text, copied to OUT/spec.toml (read from the path when `jobs` is one).
    save_traces : write each job's SGLD traces to OUT/traces/<id>.<k>.nc (default True).

    Raises
    ------
    ValueError : an unknown executor, results already present without `resume`, a resume with
        another spec without `force_spec`, an output folder that cannot be created or written, a
        job asking for a GPU where there is none (before any job runs), Ray missing.
    """
    if isinstance(jobs, (str, os.PathLike)):
        spec_text = Path(jobs).read_text(encoding="utf-8") if spec_text is None else spec_text
        jobs = load_spec(jobs)
    jobs = tuple(jobs)
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    ray_chunk_size = _integer("ray_chunk_size", ray_chunk_size, 1)
    pack_size = _integer("pack_size", pack_size, 1)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} exists and is not a folder")
    existing = result_files(out_dir)
    if not resume and (existing or (out_dir / TABLE_NAME).exists()):
        raise ValueError(f"--out {out_dir} already holds results ({len(existing)} job files); pass --resume to "
                         "skip the finished jobs and run the rest, or choose a new folder")
    if retry_failed and not resume:
        raise ValueError("--retry-failed reruns the failed jobs of an earlier run: use it with --resume")
    if executor == "local":
        for job in jobs:  # fail fast: before anything runs
            check_device(job.config["device"], f"{job.source}: device")
    if resume and not force_spec:
        _check_same_spec(out_dir, jobs, spec_text)
    try:
        (out_dir / JOBS_FOLDER).mkdir(parents=True, exist_ok=True)
        if save_traces:
            (out_dir / TRACES_FOLDER).mkdir(exist_ok=True)
    except OSError as error:
        raise ValueError(f"--out {out_dir}: cannot create the output folder ({error.strerror or error})") from None
    if not os.access(out_dir / JOBS_FOLDER, os.W_OK):
        raise ValueError(f"--out {out_dir}: the folder is not writable")
    by_id = {job.id: job for job in jobs}
    with lock(out_dir):
        remove_stale_temporaries(out_dir / JOBS_FOLDER)
        if (out_dir / TRACES_FOLDER).is_dir():
            remove_stale_temporaries(out_dir / TRACES_FOLDER)
        remove_stale_temporaries(out_dir)
        if spec_text is not None:
            atomic_write_text(out_dir / SPEC_COPY_NAME, spec_text)
        done = {}
        if resume:
            for job in jobs:
                record = read_result(out_dir / JOBS_FOLDER / f"{job.id}.json", job)
                if record is not None and not (retry_failed and record["status"] == "failed"):
                    done[job.id] = record
        # Packs are cut from the whole job list, not from the unfinished jobs, so a resumed run
        # packs every job with the same mates as an uninterrupted one; a packed job's numbers
        # depend on its mates (last float32 bits), so a pack with any unfinished job runs whole.
        packs = []
        for jobs_of_pack in pack_jobs(jobs, pack_size):
            pending = [job for job in jobs_of_pack if job.id not in done]
            if pending:
                packs.append(jobs_of_pack if _packing(jobs_of_pack, packing) else pending)
        todo = [job for jobs_of_pack in packs for job in jobs_of_pack if job.id not in done]
        revision = git_revision()
        if executor == "local":
            results = _local_results(packs, revision, save_traces, packing)
        else:
            results = _ray_results(packs, revision, address=ray_address, chunk_size=ray_chunk_size,
                                   keep_traces=save_traces, packing=packing)
        failed = sum(record["status"] == "failed" for record in done.values())
        with progress_bar(f"slt batch {out_dir.name}", len(jobs), unit="jobs", enabled=progress,
                          initial=len(done)):
            for record in results:
                if record["id"] in done:  # a finished pack mate, rerun only to repeat the pack
                    continue
                write_traces(out_dir, record)
                atomic_write_text(out_dir / JOBS_FOLDER / f"{record['id']}.json",
                                  json.dumps(record, indent=1, allow_nan=False) + "\n")
                if record["status"] == "failed":
                    failed += 1
                    if report_failure is not None:
                        report_failure(by_id[record["id"]], record)
                advance_progress(1, "jobs")
        table = write_table(out_dir, jobs)
    return BatchSummary(num_jobs=len(jobs), ran=len(todo), skipped=len(done), failed=failed, table=table)

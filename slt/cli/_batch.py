"""`slt batch SPEC --out DIR [--executor local|ray] [--resume] [--ray-address ADDR] [--dry-run]`:
a sweep of `slt.estimate` jobs from a TOML spec (`slt.batch._batch`)."""

import sys

from slt.batch import DEFAULT_PACK_SIZE, DEFAULT_RAY_CHUNK_SIZE, EXECUTORS, TABLE_NAME, load_spec, run_batch


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="run a sweep of estimate jobs from a TOML spec (locally or on Ray), resumable",
        description=(
            "Expand a TOML sweep spec (models × methods × sampler settings × seeds, with grids) into jobs, "
            "run each as one slt.estimate call, and write OUT/jobs/<id>.json per job (id = hash of the resolved "
            f"config and seed) and OUT/{TABLE_NAME}. A job's result depends only on its config and seed, so a "
            "resumed run equals an uninterrupted one and the Ray executor equals the local one. The spec format "
            "is documented in slt/batch/."
        ),
    )
    parser.add_argument("spec", help="the TOML spec file")
    parser.add_argument("--out", metavar="DIR", help="output folder (must hold no results unless --resume); required unless --dry-run")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="local: in this process (default); ray: chunks of jobs as Ray tasks")
    parser.add_argument("--resume", action="store_true",
                        help="skip jobs whose result file is complete; run the rest (stale temporary files are deleted)")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="Ray cluster address for --executor ray (default: start a local instance)")
    parser.add_argument("--ray-chunk-size", type=int, default=DEFAULT_RAY_CHUNK_SIZE, metavar="K",
                        help=f"jobs per Ray task, same config but the seed (default {DEFAULT_RAY_CHUNK_SIZE})")
    parser.add_argument("--pack-size", type=int, default=DEFAULT_PACK_SIZE, metavar="J",
                        help=f"llc jobs differing only in the seed run as one packed (vmapped) call, at most J at a "
                             f"time, on a GPU (default {DEFAULT_PACK_SIZE}; 1: never; on CPU they run one by one)")
    parser.add_argument("--progress", action="store_true", default=None,
                        help="force the progress bar on (default: only when stderr is a terminal, not under CI)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.add_argument("--no-traces", action="store_true",
                        help="do not write each job's SGLD traces to OUT/traces/<id>.<k>.nc")
    parser.add_argument("--retry-failed", action="store_true",
                        help="with --resume: rerun the jobs recorded as failed too (e.g. after fixing a user model)")
    parser.add_argument("--force-spec", action="store_true",
                        help="with --resume: accept a spec other than the one OUT/spec.toml holds, and replace it")
    parser.add_argument("--dry-run", action="store_true", help="validate the spec and list the jobs; run nothing")
    parser.set_defaults(run=run)


def _report_failure(job, record) -> None:
    """One line per failed job on stderr: where it is in the spec, its model, the reason."""
    config = job.config
    model = config["model"] or config["user_model"]
    reason = " ".join(str(record.get("error")).split())
    print(f"slt batch: {job.source} [{job.id}] {model}({_arguments(config['params'])}) failed: {reason}",
          file=sys.stderr, flush=True)


def _arguments(params) -> str:
    return ", ".join(f"{name}={value}" for name, value in params.items())


def run(args) -> int:
    jobs = load_spec(args.spec)
    if args.dry_run:
        for job in jobs:
            print(f"{job.id}  {job.source}")
        print(f"{len(jobs)} jobs")
        return 0
    if args.out is None:
        raise ValueError("--out DIR is required (the folder for the job files and the table)")
    if args.ray_address is not None and args.executor != "ray":
        raise ValueError("--ray-address is only for --executor ray")
    with open(args.spec, encoding="utf-8") as handle:
        spec_text = handle.read()
    summary = run_batch(jobs, args.out, executor=args.executor, resume=args.resume, ray_address=args.ray_address,
                        ray_chunk_size=args.ray_chunk_size, pack_size=args.pack_size, progress=args.progress,
                        spec_text=spec_text, save_traces=not args.no_traces, retry_failed=args.retry_failed,
                        force_spec=args.force_spec, report_failure=_report_failure)
    print(f"{summary.num_jobs} jobs: {summary.ran} run, {summary.skipped} already done, {summary.failed} failed; "
          f"table: {summary.table}")
    return 1 if summary.failed else 0

"""Planted-bug (mutation) suite: every scientific mutant in tests/mutants.toml must be killed.

Each mutant names one file, an exact snippet of it (which must occur exactly once), its
replacement, the tests that must fail once it is planted, whether they are slow, and a one-line
scientific description. For each mutant the runner copies the working tree once to a temporary
folder (the working tree itself is never modified: other processes may import it), plants the
mutant in the copy, runs the named tests there with PYTHONPATH=<copy>, restores the file, and
records the outcome:

- killed   : pytest exited 1 (a test failed) — what we want;
- survived : pytest exited 0 (every named test passed with the bug in place);
- error    : any other exit (collection or usage error, no test collected, timeout), so a mutant
             that breaks the import, or a renamed test, never counts as killed.

    PYTHONPATH=$PWD .venv/bin/python tools/mutants.py            # every mutant; exit 1 unless all killed
    PYTHONPATH=$PWD .venv/bin/python tools/mutants.py --check    # only: every snippet occurs exactly once
    PYTHONPATH=$PWD .venv/bin/python tools/mutants.py --only llc-scale-1.02,brownian-2t
    PYTHONPATH=$PWD .venv/bin/python tools/mutants.py --fast     # skip mutants whose tests are slow
    PYTHONPATH=$PWD .venv/bin/python tools/mutants.py --list
    PYTHONPATH=$PWD .venv/bin/python tools/mutants.py --baseline # first: the named tests pass unmutated

`make mutants` runs it (MUTANTS_FLAGS passes flags). The check mode is fast and is itself a
test (tests/test_mutants_list.py), so a refactor that moves code makes the list fail loudly
instead of silently skipping mutants: edit the mutant's `file` (or snippet) in the list.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LIST = ROOT / "tests" / "mutants.toml"
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".devinterp-venv")
FIELDS = ("id", "file", "original", "replacement", "tests", "slow", "description")


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    slow: bool
    description: str


def load(path: Path = DEFAULT_LIST) -> list[Mutant]:
    """The mutants of a TOML list of [[mutant]] tables, each with exactly the fields in FIELDS."""
    with open(path, "rb") as handle:
        tables = tomllib.load(handle).get("mutant", [])
    mutants, seen = [], set()
    for index, table in enumerate(tables):
        missing, extra = set(FIELDS) - set(table), set(table) - set(FIELDS)
        if missing or extra:
            raise ValueError(f"{path}: mutant #{index + 1} ({table.get('id', '?')}): "
                             f"missing fields {sorted(missing)}, unknown fields {sorted(extra)}")
        if table["id"] in seen:
            raise ValueError(f"{path}: duplicate mutant id {table['id']!r}")
        seen.add(table["id"])
        if table["original"] == table["replacement"]:
            raise ValueError(f"{path}: mutant {table['id']!r} does not change its snippet")
        if not table["tests"]:
            raise ValueError(f"{path}: mutant {table['id']!r} names no test")
        mutants.append(Mutant(**{**table, "tests": tuple(table["tests"])}))
    if not mutants:
        raise ValueError(f"{path}: no [[mutant]] tables")
    return mutants


def check(mutants: list[Mutant], root: Path = ROOT) -> list[str]:
    """Problems with the list against the tree at `root`: a snippet that does not occur exactly
    once in its file, a missing file, a named test file that does not exist."""
    problems = []
    for mutant in mutants:
        source = root / mutant.file
        if not source.is_file():
            problems.append(f"{mutant.id}: file {mutant.file} does not exist (moved? edit its `file`)")
            continue
        count = source.read_text().count(mutant.original)
        if count != 1:
            problems.append(f"{mutant.id}: snippet occurs {count} times in {mutant.file}, must be exactly once: "
                            f"{mutant.original!r}")
        for test in mutant.tests:
            test_file = test.split("::")[0]
            if not (root / test_file).is_file():
                problems.append(f"{mutant.id}: test file {test_file} does not exist")
    return problems


def run_tests(tests: tuple[str, ...], copy: Path, python: str, timeout: float) -> tuple[int | None, float, str]:
    """pytest on `tests` in `copy` (slow tests included, stop at the first failure):
    (exit code or None on timeout, seconds, output)."""
    command = [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "", *tests]
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, check=False, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
        code, output = completed.returncode, completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as expired:
        code, output = None, f"timed out after {timeout:.0f} s\n{expired.stdout or ''}"
    return code, time.perf_counter() - start, str(output)


def last_lines(output: str, lines: int = 15) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def run_mutant(mutant: Mutant, copy: Path, python: str, timeout: float) -> tuple[str, float, str, str]:
    """Plant `mutant` in `copy`, run its tests there, restore the file;
    (outcome, seconds, the first failing test, tail of the output)."""
    source = copy / mutant.file
    pristine = source.read_text()
    source.write_text(pristine.replace(mutant.original, mutant.replacement, 1))
    try:
        code, seconds, output = run_tests(mutant.tests, copy, python, timeout)
    finally:
        source.write_text(pristine)
    outcome = {1: "killed", 0: "survived"}.get(code, "error")
    failed = [line.split()[1] for line in output.splitlines() if line.startswith("FAILED ")]
    return outcome, seconds, (failed[0] if failed else ""), last_lines(output)


def imported_from_copy(copy: Path, python: str) -> None:
    """Refuse to run when PYTHONPATH=<copy> does not make the copy's packages the ones imported
    (an installed package shadowing it would let every mutant survive, or none be planted)."""
    probe = "import estimators, slt, toy_models; print(*(m.__file__ for m in (estimators, slt, toy_models)))"
    env = {**os.environ, "PYTHONPATH": str(copy)}
    files = subprocess.run([python, "-c", probe], cwd=copy, env=env, capture_output=True, text=True, check=True).stdout
    if not all(Path(name).resolve().is_relative_to(copy.resolve()) for name in files.split()):
        raise RuntimeError(f"the copy's packages are shadowed: imported {files.strip()}, expected under {copy}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list-file", type=Path, default=DEFAULT_LIST, help="the TOML list (default tests/mutants.toml)")
    parser.add_argument("--check", action="store_true", help="only check that every snippet occurs exactly once")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--only", default="", help="comma-separated mutant ids to run")
    parser.add_argument("--fast", action="store_true", help="skip mutants whose killing tests are slow")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant (default 900)")
    parser.add_argument("--baseline", action="store_true",
                        help="first run every named test on the unmutated copy; stop unless all pass")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs pytest (default: this one)")
    args = parser.parse_args(argv)

    mutants = load(args.list_file)
    if args.list:
        for mutant in mutants:
            print(f"{mutant.id:32s} {'slow' if mutant.slow else 'fast'}  {mutant.file}: {mutant.description}")
        return 0
    problems = check(mutants)
    if problems:
        print("mutant list is stale:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if args.check:
        print(f"{len(mutants)} mutants: every snippet occurs exactly once")
        return 0
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {mutant.id for mutant in mutants})
        if unknown:
            print(f"unknown mutant ids: {unknown}", file=sys.stderr)
            return 2
        mutants = [mutant for mutant in mutants if mutant.id in wanted]
    if args.fast:
        mutants = [mutant for mutant in mutants if not mutant.slow]

    # SIGTERM (a CI timeout, `kill`) exits through the handlers: the running pytest is killed and
    # the temporary copy removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="slt-mutants-") as folder:
        copy = Path(folder) / "tree"
        shutil.copytree(ROOT, copy, ignore=COPY_IGNORE)
        imported_from_copy(copy, args.python)
        if args.baseline:
            tests = tuple(dict.fromkeys(test for mutant in mutants for test in mutant.tests))
            code, seconds, output = run_tests(tests, copy, args.python, args.timeout * len(mutants))
            print(f"baseline: {len(tests)} test selections on the unmutated tree, exit {code}, {seconds:.0f} s", flush=True)
            if code != 0:
                print("    " + last_lines(output).replace("\n", "\n    "), file=sys.stderr)
                print("the named tests must pass on the unmutated tree before a failure can count as a kill",
                      file=sys.stderr)
                return 2
        for mutant in mutants:
            outcome, seconds, failed, output_tail = run_mutant(mutant, copy, args.python, args.timeout)
            rows.append((mutant, outcome, seconds, failed))
            print(f"{outcome:8s} {seconds:7.1f} s  {mutant.id}  {failed}", flush=True)
            if outcome != "killed":
                print("    " + output_tail.replace("\n", "\n    "), flush=True)
    total = time.perf_counter() - start

    print(f"\n{'mutant':32s} {'outcome':8s} {'seconds':>8s}  description [first failing test]")
    for mutant, outcome, seconds, failed in rows:
        print(f"{mutant.id:32s} {outcome:8s} {seconds:8.1f}  {mutant.description}" + (f" [{failed}]" if failed else ""))
    bad = [mutant.id for mutant, outcome, _, _ in rows if outcome != "killed"]
    print(f"\n{len(rows) - len(bad)}/{len(rows)} killed in {total:.0f} s" + (f"; not killed: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""The planted-bug list (tests/mutants.toml) still matches the code: every mutant's snippet occurs
exactly once in its file and its tests exist. A refactor that moves or rewrites a mutated line
fails here, loudly, instead of silently dropping the mutant from `make mutants`."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_mutant_snippet_occurs_exactly_once():
    completed = subprocess.run([sys.executable, str(ROOT / "tools" / "mutants.py"), "--check"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "every snippet occurs exactly once" in completed.stdout


def test_the_suite_has_at_least_fifteen_mutants_across_many_files():
    completed = subprocess.run([sys.executable, str(ROOT / "tools" / "mutants.py"), "--list"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert len(lines) >= 15
    files = {line.split()[2].rstrip(":") for line in lines}  # id, fast|slow, file: description
    assert len(files) >= 8, files

"""Regenerate every figure: `make figures` (or `python figures/make_figures.py [--small] [--only NAME]`).

Each `figures/fig_*.py` is a standalone script that uses only the public API and writes
`<name>.png` and `<name>.pdf` (or several `<name>_*.png/pdf`) into the output folder. A figure is recomputed only when its
script, the style, or the library source changed since its outputs were made (a content hash
stored beside them in `.cache/`, with what the script printed in `.cache/<name>.log`);
`--force` recomputes everything.
"""

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path

FIGURES = Path(__file__).resolve().parent
ROOT = FIGURES.parent
LIBRARY = ("slt", "estimators", "toy_models")


def library_digest() -> str:
    digest = hashlib.sha256()
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    digest.update((FIGURES / "style.mplstyle").read_bytes())
    return digest.hexdigest()


def written(out: Path, stem: str, since: float = 0.0) -> bool:
    """True when the figure's PNG and PDF files exist, are non-empty and newer than `since`."""
    pngs, pdfs = sorted(out.glob(f"{stem}*.png")), sorted(out.glob(f"{stem}*.pdf"))
    fresh = [p for p in pngs + pdfs if p.stat().st_size > 0 and p.stat().st_mtime >= since - 1]
    return bool(pngs) and len(pngs) == len(pdfs) and len(fresh) == len(pngs) + len(pdfs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIGURES, help="output folder (default: figures/)")
    parser.add_argument("--small", action="store_true", help="tiny settings (tests)")
    parser.add_argument("--force", action="store_true", help="ignore the cache")
    parser.add_argument("--only", action="append", default=[], help="run only these figures (by name)")
    args = parser.parse_args(argv)
    scripts = sorted(FIGURES.glob("fig_*.py"))
    if args.only:
        unknown = set(args.only) - {s.stem for s in scripts}
        if unknown:
            parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
        scripts = [s for s in scripts if s.stem in args.only]
    cache = args.out / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    shared = library_digest()
    failures = 0
    for index, script in enumerate(scripts, 1):
        key = hashlib.sha256((shared + script.read_text() + str(args.small)).encode()).hexdigest()
        stamp = cache / f"{script.stem}.sha256"
        prefix = f"[{index}/{len(scripts)}] {script.stem}"
        if not args.force and stamp.exists() and stamp.read_text() == key and written(args.out, script.stem):
            print(f"{prefix}: unchanged, cached", flush=True)
            continue
        start, start_time = time.perf_counter(), time.time()
        command = [sys.executable, str(script), "--out", str(args.out)] + (["--small"] if args.small else [])
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0 or not written(args.out, script.stem, since=start_time):
            failures += 1
            print(f"{prefix}: FAILED after {seconds:.1f} s\n{result.stdout}{result.stderr}", flush=True)
            continue
        stamp.write_text(key)
        (cache / f"{script.stem}.log").write_text(result.stdout)
        print(f"{prefix}: done in {seconds:.1f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

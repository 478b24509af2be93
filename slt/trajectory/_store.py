"""Resumable output folder of a trajectory: its config, and one JSON file per finished row.

    out_dir/trajectory.json           settings, key, checkpoints (name, step, fingerprint),
                                      restrictions, step-size calibration, package versions
    out_dir/rows/<subset>/<step>.json one finished (checkpoint, restriction) row

Every file is written to a temporary file in the same folder and renamed (`os.replace`), so a
run killed at any moment leaves whole files only. A resumed run must have the same config (the
same settings, key, checkpoints and restrictions; versions are not compared); it reuses the
stored calibration and skips finished rows.
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

CONFIG_NAME = "trajectory.json"


def write_json_atomically(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(payload, handle, indent=1, sort_keys=True, allow_nan=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def fingerprint(params) -> str:
    """sha256 over the parameter leaves' shapes, dtypes and bytes (first 16 hex digits)."""
    digest = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(params):
        values = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{values.shape}{values.dtype}".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()[:16]


def row_path(out_dir: Path, subset: str, step: int) -> Path:
    return out_dir / "rows" / subset / f"{step:012d}.json"


def open_store(out_dir: Path, identity: dict) -> dict | None:
    """The stored config if `out_dir` holds a run with this `identity`, None for a new folder.

    Raises ValueError naming the first entry of the identity that differs."""
    path = out_dir / CONFIG_NAME
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    for name, value in identity.items():
        if json.loads(json.dumps(value)) != stored.get("identity", {}).get(name):
            raise ValueError(f"{str(out_dir)!r} holds a trajectory with another {name!r}; use a new out_dir "
                             "or the original settings to resume")
    return stored


def load_row(out_dir: Path, subset: str, step: int) -> dict | None:
    path = row_path(out_dir, subset, step)
    return json.loads(path.read_text()) if path.exists() else None

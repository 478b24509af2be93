"""Checkpoints of a training run: a list of pytrees, a folder of .npz files, or orbax directories.

Every checkpoint is matched against the model's parameters (`model.w_star`) by leaf path
("layers/0/weight", see `slt.trajectory.leaf_paths`) and shape; a checkpoint with a missing,
extra or reshaped parameter is refused with its name. Checkpoints are ordered by training step.

Formats
-------
list : pytrees shaped like the parameters (or the user's full object, e.g. an Equinox module:
    its floating-point leaves are taken, as `toy_models.from_loss` does). Steps are `steps` if
    given, else 0, 1, 2, ...
.npz folder : one file per checkpoint, one array per parameter leaf keyed by its path (what
    `save_npz_checkpoint` writes). The step is the last integer in the file name
    ("step_000120.npz" -> 120).
orbax folder : one sub-directory per checkpoint named by its step (the `orbax.checkpoint.
    CheckpointManager` layout, with one item inside, e.g. "default"), or plain
    `StandardCheckpointer` directories whose names end in the step. Needs the optional extra
    `checkpoints` (orbax-checkpoint).
"""

import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import toy_models
from slt.trajectory._restrict import leaf_paths


class Checkpoint(NamedTuple):
    """One checkpoint: its name (file or index), training step, and parameters (the model's
    parameter structure, float leaves only)."""

    name: str
    step: int
    params: Any


def _flat(params) -> dict[str, np.ndarray]:
    return dict(zip(leaf_paths(params), (np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(params))))


def match_template(name: str, arrays: dict[str, Any], template) -> Any:
    """The checkpoint's arrays in the template's structure; ValueError naming the checkpoint
    and the first missing, extra or reshaped parameter."""
    template_leaves, treedef = jax.tree_util.tree_flatten(template)
    paths = leaf_paths(template)
    missing = [path for path in paths if path not in arrays]
    extra = sorted(set(arrays) - set(paths))
    if missing or extra:
        what = f"missing parameter {missing[0]!r}" if missing else f"unexpected parameter {extra[0]!r}"
        raise ValueError(f"checkpoint {name!r} does not match the model's parameters: {what} "
                         f"(model parameters: {', '.join(paths)})")
    leaves = []
    for path, reference in zip(paths, template_leaves):
        value = np.asarray(arrays[path])
        if value.shape != np.shape(reference):
            raise ValueError(f"checkpoint {name!r} does not match the model's parameters: {path!r} has shape "
                             f"{value.shape}, the model's has {np.shape(reference)}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"checkpoint {name!r} has non-finite entries at {path!r}")
        leaves.append(jnp.asarray(value, dtype=jnp.result_type(reference)))
    return treedef.unflatten(leaves)


def _step_of(name: str) -> int:
    numbers = re.findall(r"\d+", name)
    if not numbers:
        raise ValueError(f"checkpoint {name!r}: no training step in its name (expected e.g. step_000120.npz)")
    return int(numbers[-1])


def save_npz_checkpoint(path: str | os.PathLike, params) -> Path:
    """Write `params` as a plain .npz checkpoint (one array per leaf path), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz.tmp", delete=False) as handle:
        np.savez(handle, **_flat(params))
    os.replace(handle.name, path)
    return path


def _orbax_restore(directory: Path) -> dict[str, np.ndarray]:
    try:
        import orbax.checkpoint as ocp
    except ImportError:  # pragma: no cover - the optional extra
        raise ImportError("orbax checkpoints need orbax-checkpoint: pip install 'slt-workbench[checkpoints]'") from None
    inner = [child for child in directory.iterdir() if child.is_dir() and not child.name.startswith(("_", "."))]
    target = inner[0] if len(inner) == 1 and not (directory / "_METADATA").exists() else directory
    with warnings.catch_warnings():  # single-host restore: the saved sharding is the one we want
        warnings.filterwarnings("ignore", message="Sharding info not provided when restoring")
        restored = ocp.PyTreeCheckpointer().restore(target.resolve())
    return _flat(restored)


def load_checkpoints(source: str | os.PathLike | Sequence[Any], template, *,
                     steps: Sequence[int] | None = None) -> list[Checkpoint]:
    """The checkpoints of `source`, checked against `template` and sorted by step.

    Raises ValueError for an empty source, a checkpoint that does not match (naming it), or
    duplicate steps.
    """
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise ValueError(f"checkpoint folder {str(folder)!r} does not exist")
        npz = sorted(folder.glob("*.npz"))
        if npz:
            checkpoints = []
            for path in npz:
                with np.load(path) as archive:
                    arrays = {name: archive[name] for name in archive.files}
                checkpoints.append(Checkpoint(path.name, _step_of(path.stem), match_template(path.name, arrays,
                                                                                                template)))
        else:
            directories = sorted(child for child in folder.iterdir() if child.is_dir() and re.search(r"\d", child.name))
            if not directories:
                raise ValueError(f"checkpoint folder {str(folder)!r} has no .npz files and no orbax step directories")
            checkpoints = [Checkpoint(d.name, _step_of(d.name), match_template(d.name, _orbax_restore(d), template))
                           for d in directories]
        if steps is not None:
            raise ValueError("steps is only for a list of checkpoints; a folder's steps come from the file names")
    else:
        items = list(source)
        if steps is not None and len(steps) != len(items):
            raise ValueError(f"got {len(steps)} steps for {len(items)} checkpoints")
        checkpoints = []
        for index, item in enumerate(items):
            parameters, _ = toy_models.partition_parameters(item)
            name = f"checkpoint[{index}]"
            checkpoints.append(Checkpoint(name, index if steps is None else int(steps[index]),
                                          match_template(name, _flat(parameters), template)))
    if not checkpoints:
        raise ValueError("no checkpoints given")
    checkpoints.sort(key=lambda checkpoint: checkpoint.step)
    seen = [checkpoint.step for checkpoint in checkpoints]
    if len(set(seen)) != len(seen):
        raise ValueError(f"two checkpoints share a training step: steps {seen}")
    return checkpoints

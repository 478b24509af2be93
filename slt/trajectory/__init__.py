"""LLC over a training run's checkpoints: packed, resumable, and restricted to blocks of weights.

    result = slt.trajectory.llc_trajectory(model, "checkpoints/", key=jax.random.key(0),
                                           restrict={"layer0": "layers/0"}, out_dir="llc_run")
    slt.trajectory.write_table(result, "llc_run/llc.csv")
    slt.trajectory.plot_trajectory(result).savefig("llc_run/llc.png")

See `llc_trajectory` for the equation, conventions, the recipe at non-minima and the errors, and
docs/trajectory.md for the guide.
"""

from slt.trajectory._checkpoints import Checkpoint, load_checkpoints, save_npz_checkpoint
from slt.trajectory._output import (
    COLUMNS,
    change_points,
    geometric_term,
    plot_trajectory,
    stage_boundaries,
    write_table,
)
from slt.trajectory._restrict import Restriction, leaf_paths, make_restriction
from slt.trajectory._run import (
    DEFAULT_LOCALIZATION,
    NON_MINIMUM_SHARE,
    TrajectoryResult,
    checkpoint_key,
    llc_trajectory,
)

__all__ = [
    "DEFAULT_LOCALIZATION",
    "NON_MINIMUM_SHARE",
    "COLUMNS",
    "Checkpoint",
    "Restriction",
    "TrajectoryResult",
    "change_points",
    "checkpoint_key",
    "geometric_term",
    "leaf_paths",
    "llc_trajectory",
    "load_checkpoints",
    "make_restriction",
    "plot_trajectory",
    "save_npz_checkpoint",
    "stage_boundaries",
    "write_table",
]

"""Running kernels: the one driver (`sample`, packed `sample_jobs`), traces and their diagnostics.

Depends on the kernel contract (`slt.samplers._kernel`) and the target density only, not on any
concrete kernel.
"""

from slt.run._compilation_cache import default_cache_dir, enable_compilation_cache
from slt.run._diagnostics import (
    DiagnosticCode,
    Diagnostics,
    batch_means_standard_error,
    diagnose,
    loss_gap_noise_scale,
)
from slt.run._driver import (
    CHAIN_AXIS,
    NonFiniteError,
    default_record,
    sample,
    sample_jobs,
    stack_jobs,
    vmap_over_jobs,
)
from slt.run._engine import check_integer
from slt.run._progress import (
    CHAIN_STEPS,
    ProgressBar,
    advance_progress,
    compiled_progress,
    expect_progress,
    open_bar,
    plan_progress,
    progress_bar,
    progress_wanted,
)
from slt.run._seed import MAX_SEED, SEED_RULE, check_seed, prng_key
from slt.run._trace import Trace, from_datatree, load_trace, package_versions, save_trace, to_datatree

__all__ = [
    "CHAIN_AXIS",
    "CHAIN_STEPS",
    "MAX_SEED",
    "SEED_RULE",
    "DiagnosticCode",
    "Diagnostics",
    "NonFiniteError",
    "ProgressBar",
    "Trace",
    "advance_progress",
    "batch_means_standard_error",
    "check_integer",
    "check_seed",
    "compiled_progress",
    "default_cache_dir",
    "default_record",
    "diagnose",
    "enable_compilation_cache",
    "expect_progress",
    "from_datatree",
    "load_trace",
    "loss_gap_noise_scale",
    "open_bar",
    "plan_progress",
    "package_versions",
    "prng_key",
    "progress_bar",
    "progress_wanted",
    "sample",
    "sample_jobs",
    "save_trace",
    "stack_jobs",
    "to_datatree",
    "vmap_over_jobs",
]

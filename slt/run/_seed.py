"""The one seed rule: which integers name a PRNG key without aliasing another.

`jax.random.key(seed)` keeps the low 32 bits of a Python integer when x64 is off (the default):
2³² gives the key of 0, −1 the key of 2³² − 1, and 2⁶³ overflows with a traceback. So a seed is an
integer in [0, 2³² − 1] and nothing else; the command line (`--seed`), batch specs (`seeds`) and
`slt.estimate(key=<int>)` all check it here.
"""

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

MAX_SEED = 2**32 - 1
SEED_RULE = f"an integer in [0, {MAX_SEED}] (jax.random.key keeps 32 bits, so a larger or negative seed would " \
            "alias another)"


def check_seed(seed, where: str = "seed") -> int:
    """`seed` as an int if it is an integer in [0, 2³² − 1]; else a ValueError naming `where`
    and the value (bools and floats are refused: 1.0 is not a seed)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{where}: must be {SEED_RULE}, got {seed!r}")
    return int(seed)


def prng_key(seed, where: str = "seed") -> PRNGKeyArray:
    """`jax.random.key(seed)` for a seed that obeys the rule (`check_seed`); the one way a seed
    becomes a key in the workbench, so no two seeds give one key."""
    return jax.random.key(check_seed(seed, where))

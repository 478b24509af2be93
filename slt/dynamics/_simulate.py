"""Many particles of one dynamics, through the workbench's driver (`slt.sample`)."""

from typing import NamedTuple

import jax
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from slt.run import sample
from slt.samplers import SamplingAlgorithm


class Trajectories(NamedTuple):
    """Recorded particle paths.

    positions : [particles, draws, d] (or a pytree of such leaves), the position after
        `steps[j]` steps at draw j.
    loss : [particles, draws], `info.loss` of the step leaving that position.
    steps : [draws], steps taken when each draw was recorded.
    """

    positions: np.ndarray
    loss: np.ndarray
    steps: np.ndarray


def _record_loss(state, info):
    return {"loss": info.loss}


def simulate(algorithm: SamplingAlgorithm, initial_positions: PyTree, key: PRNGKeyArray,
             num_steps: int, record_every: int = 1) -> Trajectories:
    """Run one particle per row of `initial_positions` ([particles, d], or a parameter pytree whose
    leaves have a leading particle axis) for `num_steps` steps; record every
    `record_every` steps (`num_steps` must be a multiple). Particle c uses chain key
    `jax.random.split(key, particles)[c]` (the driver's rule), so the same key gives the same paths.
    """
    if not (isinstance(record_every, int) and record_every >= 1 and isinstance(num_steps, int)
            and num_steps >= record_every and num_steps % record_every == 0):
        raise ValueError(f"num_steps ({num_steps!r}) must be a positive multiple of record_every ({record_every!r})")
    leaves = jax.tree_util.tree_leaves(initial_positions)
    if not leaves or any(jax.numpy.ndim(leaf) < 1 for leaf in leaves):
        raise ValueError("initial_positions must be [particles, d] or a pytree with a leading particle axis")
    trace = sample(algorithm, initial_positions, key, num_chains=jax.numpy.shape(leaves[0])[0], num_steps=num_steps,
                   thinning=record_every, record=_record_loss, record_positions=True,
                   initial_position_per_chain=True)
    num_draws = num_steps // record_every
    steps = (np.arange(num_draws) + 1) * record_every - 1  # the driver records the state entering step s_j
    positions = jax.tree_util.tree_map(np.asarray, trace.positions)
    return Trajectories(positions, np.asarray(trace.loss), steps)


def uniform_in_box(key: PRNGKeyArray, bounds, num_particles: int) -> Float[Array, "particles 2"]:
    """Initial positions drawn uniformly in the box (the uniform prior the Gibbs law uses)."""
    lower = jax.numpy.asarray([lo for lo, _ in bounds])
    upper = jax.numpy.asarray([hi for _, hi in bounds])
    return jax.random.uniform(key, (num_particles, len(bounds)), minval=lower, maxval=upper)

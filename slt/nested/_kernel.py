"""The constrained moves of `slt.nested_sampling`: coordinate slice sweeps on the prior inside {K < b}.

Per coordinate (random order) two univariate slice moves (Neal 2003, stepping out with a random
split of `_MAX_EXPANSIONS`, then shrinkage): a linear one scaled by the live points' spread, and
a log-radial one in log|w_i − w*_i| whose target carries the Jacobian |w_i − w*_i|. Both leave φ
restricted to {K < b} invariant. A slice whose shrinkage runs out (`_MAX_SHRINKAGE`) leaves the
coordinate where it was, which is still a valid (lazy) move.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array

_MAX_EXPANSIONS = 10
_MAX_SHRINKAGE = 60
_LOG_RADIAL_WIDTH = 2.0


class LiveSet(NamedTuple):
    """The live points: flat positions [N, d], their losses [N] and birth bounds [N]."""

    position: Array
    loss: Array
    birth: Array


def _slice_1d(key, log_target, max_expansions, max_shrinkage):
    """One univariate slice move from t = 0 on log_target(t) -> (log density, valid) (Neal 2003:
    stepping out with a random split of `max_expansions`, then shrinkage). Returns (t, found)."""
    key_level, key_place, key_split, key_shrink = jax.random.split(key, 4)
    level = log_target(0.0)[0] + jnp.log(jax.random.uniform(key_level))

    def inside(t):
        log_density, valid = log_target(t)
        return valid & (log_density > level)

    left = -jax.random.uniform(key_place)
    right = left + 1.0
    budget_left = jnp.floor(max_expansions * jax.random.uniform(key_split))
    budget_right = max_expansions - 1 - budget_left

    def step_out(carry, direction):
        edge, budget = carry
        return edge + direction, budget - 1

    left, _ = jax.lax.while_loop(lambda c: (c[1] > 0) & inside(c[0]), lambda c: step_out(c, -1.0), (left, budget_left))
    right, _ = jax.lax.while_loop(lambda c: (c[1] > 0) & inside(c[0]), lambda c: step_out(c, 1.0), (right, budget_right))

    def shrink(carry):
        key, left, right, _, _, count = carry
        key, key_draw = jax.random.split(key)
        t = jax.random.uniform(key_draw, minval=left, maxval=right)
        accepted = inside(t)
        left = jnp.where(~accepted & (t < 0), t, left)
        right = jnp.where(~accepted & (t >= 0), t, right)
        return key, left, right, t, accepted, count + 1

    init = (key_shrink, left, right, 0.0, False, 0)
    _, _, _, t, found, _ = jax.lax.while_loop(lambda c: (~c[4]) & (c[5] < max_shrinkage), shrink, init)
    return jnp.where(found, t, 0.0), found


def _constrained_sweeps(key, position, bound, widths, center, loss_fn, log_prior_fn, num_sweeps):
    """`num_sweeps` sweeps over the coordinates (random order), each coordinate moved by a linear
    slice (scale: the live points' spread) and then a log-radial slice in log|w_i − w*_i| (scale
    `_LOG_RADIAL_WIDTH` nats; target log φ + log|w_i − w*_i|, the Jacobian), both on the prior
    restricted to {K < bound}. Returns (position, loss, share of slices that moved)."""
    dimension = position.shape[0]

    def coordinate(carry, inputs):
        position, moved = carry
        key, index = inputs
        key_linear, key_radial = jax.random.split(key)
        width = widths[index]

        def linear(t):
            x = position.at[index].add(t * width)
            return log_prior_fn(x), loss_fn(x) < bound

        t, found_linear = _slice_1d(key_linear, linear, _MAX_EXPANSIONS, _MAX_SHRINKAGE)
        position = position.at[index].add(t * width)
        offset = position[index] - center[index]

        def radial(t):
            x = position.at[index].set(center[index] + offset * jnp.exp(t * _LOG_RADIAL_WIDTH))
            return log_prior_fn(x) + t * _LOG_RADIAL_WIDTH, (loss_fn(x) < bound) & (offset != 0)

        t, found_radial = _slice_1d(key_radial, radial, _MAX_EXPANSIONS, _MAX_SHRINKAGE)
        position = position.at[index].set(center[index] + offset * jnp.exp(t * _LOG_RADIAL_WIDTH))
        return (position, moved + found_linear + found_radial), None

    def sweep(carry, key):
        key_order, key_moves = jax.random.split(key)
        order = jax.random.permutation(key_order, dimension)
        carry, _ = jax.lax.scan(coordinate, carry, (jax.random.split(key_moves, dimension), order))
        return carry, None

    (position, moved), _ = jax.lax.scan(sweep, (position, 0), jax.random.split(key, num_sweeps))
    return position, loss_fn(position), moved / (2 * dimension * num_sweeps)


def _outer_step(key, live, center, loss_fn, log_prior_fn, num_delete, num_sweeps):
    """Delete the k largest losses; replace each by sweeps from a random survivor under the bound
    b = the smallest loss deleted (the replacements are born at b)."""
    key_start, key_move = jax.random.split(key)
    dead_loss, dead_index = jax.lax.top_k(live.loss, num_delete)
    bound = dead_loss[-1]
    survivor = (live.loss < bound).astype(live.loss.dtype)
    survivor = jnp.where(survivor.sum() > 0, survivor, jnp.ones_like(survivor))
    start = jax.random.choice(key_start, live.loss.shape[0], (num_delete,), p=survivor / survivor.sum())
    widths = jnp.std(live.position, axis=0) + 1e-300
    move = jax.vmap(_constrained_sweeps, in_axes=(0, 0, None, None, None, None, None, None))
    position, loss, moved = move(jax.random.split(key_move, num_delete), live.position[start], bound, widths, center,
                                 loss_fn, log_prior_fn, num_sweeps)
    dead_birth = live.birth[dead_index]
    live = LiveSet(live.position.at[dead_index].set(position), live.loss.at[dead_index].set(loss),
                   live.birth.at[dead_index].set(bound))
    return live, (dead_loss, dead_birth, jnp.mean(moved))




def compiled_chunk(center, loss_fn, log_prior_fn, num_delete, num_sweeps, steps_per_chunk):
    @jax.jit
    def chunk(key, live):
        def body(live, key_step):
            return _outer_step(key_step, live, center, loss_fn, log_prior_fn, num_delete, num_sweeps)

        live, (death, birth, moved) = jax.lax.scan(body, live, jax.random.split(key, steps_per_chunk))
        return live, (death, birth, jnp.min(moved))

    return chunk

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


def _uniform_from_counter(seed, counter):
    """U(0, 1) from a 64-bit seed and a counter by SplitMix64 (Steele, Lea & Flood 2014), for the
    draws inside a slice's `while_loop`: a threefry key split there is traced into every loop body
    and made the vmapped chunk take seconds to compile. The seeds themselves come from the run's
    key (`jax.random.bits`), so a run is still fixed by its key."""
    z = seed + (counter.astype(jnp.uint64) + jnp.uint64(1)) * jnp.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> jnp.uint64(30))) * jnp.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> jnp.uint64(27))) * jnp.uint64(0x94D049BB133111EB)
    z = z ^ (z >> jnp.uint64(31))
    return ((z >> jnp.uint64(11)).astype(jnp.float64) + 0.5) * 2.0**-53


def _slice_1d(place, split, seed, inside, max_expansions, max_shrinkage):
    """One univariate slice move from t = 0 (Neal 2003: an interval of width 1 placed by
    `place` ~ U(0, 1), stepping out with a split by `split` ~ U(0, 1) of `max_expansions` unit
    steps, then shrinkage towards 0 with draws from `seed`), where `inside(t)` says whether t is
    on the slice. One `while_loop` runs the three phases (step out left, step out right, shrink),
    evaluating `inside` once per iteration: under `vmap` the lanes wait for the longest total,
    not for the longest of each phase. Returns (t, found); t = 0 when the shrinkage ran out."""
    left = -place
    budget_left = jnp.floor(max_expansions * split)
    budget_right = max_expansions - 1 - budget_left
    step_left, step_right, shrinking, done = 0, 1, 2, 3

    def iteration(carry):
        phase, left, right, budget_left, budget_right, count, _, _ = carry
        draw = left + (right - left) * _uniform_from_counter(seed, count)
        t = jnp.where(phase == step_left, left, jnp.where(phase == step_right, right, draw))
        on_slice = inside(t)
        expand_left = (phase == step_left) & on_slice & (budget_left > 0)
        expand_right = (phase == step_right) & on_slice & (budget_right > 0)
        accepted = (phase == shrinking) & on_slice
        rejected = (phase == shrinking) & ~on_slice
        count = count + (phase == shrinking)
        next_phase = jnp.where(
            phase == step_left, jnp.where(expand_left, step_left, step_right),
            jnp.where(phase == step_right, jnp.where(expand_right, step_right, shrinking),
                      jnp.where(accepted | (count >= max_shrinkage), done, shrinking)),
        )
        return (
            next_phase,
            jnp.where(expand_left, left - 1.0, jnp.where(rejected & (t < 0), t, left)),
            jnp.where(expand_right, right + 1.0, jnp.where(rejected & (t >= 0), t, right)),
            budget_left - expand_left, budget_right - expand_right, count, t, accepted,
        )

    init = (jnp.asarray(step_left), left, left + 1.0, budget_left, budget_right, jnp.asarray(0), 0.0, False)
    *_, t, found = jax.lax.while_loop(lambda carry: carry[0] != done, iteration, init)
    return jnp.where(found, t, 0.0), found


def _constrained_sweeps(key, position, bound, widths, center, loss_fn, log_prior_fn, orders):
    """Sweeps over the coordinates in the orders given (`orders` [sweeps, d], shared by the
    replacements of one outer step: the order is random and independent of the state, so each
    move still leaves the constrained prior invariant, and an unbatched index keeps the vmapped
    code a select instead of a scatter), each coordinate moved by a linear slice (scale: the live
    points' spread) and then a log-radial slice in log|w_i − w*_i| (scale `_LOG_RADIAL_WIDTH`
    nats; target log φ + log|w_i − w*_i|, the Jacobian), both on the prior restricted to
    {K < bound}. The two kinds are one move x_i(t) with a flag (one traced slice); every draw
    of a move is made before the scan (one threefry call per replacement).
    Returns (position, loss, share of slices that moved)."""
    num_sweeps, dimension = orders.shape
    axes = jnp.arange(dimension)
    order = jnp.repeat(orders.ravel(), 2)  # each coordinate: linear, then radial
    radial = jnp.tile(jnp.array([False, True]), num_sweeps * dimension)
    key_uniform, key_seed = jax.random.split(key)
    uniforms = jax.random.uniform(key_uniform, (order.size, 3))  # level, interval placement, split
    seeds = jax.random.bits(key_seed, (order.size,), jnp.uint64)

    def move(carry, inputs):
        position, moved = carry
        index, is_radial, uniform, seed = inputs
        selected = axes == index
        current = jnp.sum(jnp.where(selected, position, 0.0))
        origin = jnp.sum(jnp.where(selected, center, 0.0))
        offset = current - origin
        level = log_prior_fn(position) + jnp.log(uniform[0])

        def coordinate_at(t):  # linear: x_i + t·width_i; log-radial: w*_i + (x_i − w*_i)·e^(t·W)
            return jnp.where(is_radial, origin + offset * jnp.exp(t * _LOG_RADIAL_WIDTH),
                             current + t * jnp.sum(jnp.where(selected, widths, 0.0)))

        def inside(t):
            x = jnp.where(selected, coordinate_at(t), position)
            log_jacobian = jnp.where(is_radial, t * _LOG_RADIAL_WIDTH, 0.0)
            return (log_prior_fn(x) + log_jacobian > level) & (loss_fn(x) < bound) & (~is_radial | (offset != 0))

        t, found = _slice_1d(uniform[1], uniform[2], seed, inside, _MAX_EXPANSIONS, _MAX_SHRINKAGE)
        position = jnp.where(selected & found, coordinate_at(t), position)
        return (position, moved + found), None

    (position, moved), _ = jax.lax.scan(move, (position, 0), (order, radial, uniforms, seeds))
    return position, loss_fn(position), moved / order.size


def _outer_step(key, live, center, loss_fn, log_prior_fn, num_delete, num_sweeps):
    """Delete the k largest losses; replace each by sweeps from a random survivor under the bound
    b = the smallest loss deleted (the replacements are born at b)."""
    key_start, key_order, key_move = jax.random.split(key, 3)
    dead_loss, dead_index = jax.lax.top_k(live.loss, num_delete)
    bound = dead_loss[-1]
    survivor = (live.loss < bound).astype(live.loss.dtype)
    survivor = jnp.where(survivor.sum() > 0, survivor, jnp.ones_like(survivor))
    start = jax.random.choice(key_start, live.loss.shape[0], (num_delete,), p=survivor / survivor.sum())
    widths = jnp.std(live.position, axis=0) + 1e-300
    dimension = live.position.shape[1]
    orders = jax.vmap(lambda k: jax.random.permutation(k, dimension))(jax.random.split(key_order, num_sweeps))
    move = jax.vmap(_constrained_sweeps, in_axes=(0, 0, None, None, None, None, None, None))
    position, loss, moved = move(jax.random.split(key_move, num_delete), live.position[start], bound, widths, center,
                                 loss_fn, log_prior_fn, orders)
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

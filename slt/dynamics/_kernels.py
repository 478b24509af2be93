"""Brownian motion, minibatch SGD and momentum SGD as kernels with the workbench's contract.

Each constructor returns a `SamplingAlgorithm(init, step)` (see `slt.samplers`):
`state = init(position)`, `state, info = step(key, state)`, `state.position`, and `info` with
`loss` (at the position entering the step, on the step's batch; K(w) for data-free steps),
`loss_at_center` (the same at w*) and `is_finite`. `slt.sample` runs many particles at once.

Units. Every dynamics moves in the units of the loss: one SGD step with learning rate η covers
gradient-flow time η. Brownian motion at temperature T with step ε is the module convention
(`slt.langevin_step`) on the density exp(−K/T):

    w ← w − (ε/T) ∇K(w) + √(2ε) ξ,

i.e. gradient descent with learning rate η = ε/T plus Gaussian noise of covariance 2ε I = 2ηT I.
Choosing ε = ηT makes one Brownian step cover the same gradient-flow time as one SGD step.

In a box (`potential.bounds`), positions are reflected at the faces after every step (and a
momentum's component is mirrored with them); the reflected Langevin diffusion has exp(−K/T) on
the box as its stationary law.

Limitations: reflection is applied after the Euler step (first order at the faces).
`brownian` always uses the exact gradient of `population_loss` (K), never the data; with a data
set, SGD's target is the Gibbs law of L_n − L_n(w*), which differs from that of K by O(1/√n)
(`gibbs_grid(..., data=data)` computes it). `batch_size` equal to the data size means the whole
data set every step (no resampling), as in `slt.sgld`.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

import toy_models

from slt.samplers import Params, SamplingAlgorithm, all_finite, check_batch_size, check_step_size, langevin_step
from slt.dynamics._potentials import Potential, reflect_into_box
from slt.dynamics._stability import check_stable


class DynamicsInfo(NamedTuple):
    """Per-step diagnostics: the loss at the entering position (on the step's batch), at w*, and
    whether the loss and the gradient were finite."""

    loss: Float[Array, ""]
    loss_at_center: Float[Array, ""]
    is_finite: Bool[Array, ""]


class PositionState(NamedTuple):
    position: Params


class MomentumState(NamedTuple):
    """`momentum` is the PyTorch buffer v (w ← w − η v), not a velocity in w's units."""

    position: Params
    momentum: Params


def _reflect(potential: Potential, position, momentum=None):
    if potential.bounds is None:
        return position, momentum
    reflected, sign = reflect_into_box(position, potential.bounds)
    return reflected, (None if momentum is None else momentum * sign)


def _check_temperature(temperature) -> float:
    if not (isinstance(temperature, (int, float)) and 0 < temperature < float("inf")):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)


def _check_momentum(momentum) -> float:
    if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be a number in [0, 1), got {momentum!r}")
    return float(momentum)


def brownian(potential: Potential, temperature: float, step_size: float) -> SamplingAlgorithm:
    """Overdamped Langevin dynamics (Brownian motion in the potential) at temperature T.

    w ← w + ε ∇log p(w) + √(2ε) ξ with log p = −K/T, i.e. w ← w − (ε/T)∇K(w) + √(2ε) ξ,
    the workbench's step convention (`langevin_step`) with the exact gradient of
    `potential.population_loss`; reflected into `potential.bounds`. As ε → 0 its stationary law
    is the Gibbs density exp(−K/T)/Z on the box; at finite ε it is biased by O(ε) (on a
    quadratic of curvature h the variance is T/h · 2/(2 − εh/T)).

    Stability: the drift step is gradient descent with η = ε/T, stable iff (ε/T) h_max < 2 on the
    box (`slt.dynamics.stability_limit`); a step at or past it is refused with a ValueError.
    """
    temperature = _check_temperature(temperature)
    step_size = check_step_size(step_size)
    check_stable(potential, "brownian", step_size / temperature, refuse=True)
    value_and_grad = jax.value_and_grad(potential.population_loss)
    loss_at_center = potential.population_loss(potential.center)

    def init(position: Params) -> PositionState:
        return PositionState(position)

    def step(key: PRNGKeyArray, state: PositionState) -> tuple[PositionState, DynamicsInfo]:
        loss, grad = value_and_grad(state.position)
        grad_log_density = jax.tree_util.tree_map(lambda g: -g / temperature, grad)
        position = langevin_step(state.position, grad_log_density, step_size, key)
        position, _ = _reflect(potential, position)
        info = DynamicsInfo(loss, loss_at_center, jnp.isfinite(loss) & all_finite(grad))
        return PositionState(position), info

    return SamplingAlgorithm(init, step)


def _minibatch_loss(potential: Potential, data: PyTree | None, batch_size: int | None):
    """(loss_and_grad(key, w), loss_at_center(key)) for SGD on `data` or on K; the same key
    draws the same batch for both."""
    if data is None:
        if batch_size is not None:
            raise ValueError("batch_size needs data: pass data=potential.sample_data(key, n)")
        value_and_grad = jax.value_and_grad(potential.population_loss)
        center_loss = potential.population_loss(potential.center)
        return (lambda key, w: value_and_grad(w)), (lambda key: center_loss)
    if potential.loss_fn is None:
        raise ValueError(f"{potential.name} has no per-example loss for minibatch SGD")
    num_data = toy_models.num_data(data)
    batch_size = check_batch_size(batch_size, num_data)
    full_batch = batch_size == num_data
    value_and_grad = jax.value_and_grad(potential.loss_fn)

    def batch(key):
        if full_batch:
            return data
        indices = jax.random.randint(key, (batch_size,), 0, num_data)
        return jax.tree_util.tree_map(lambda leaf: leaf[indices], data)

    return (
        lambda key, w: value_and_grad(w, batch(key)),
        lambda key: potential.loss_fn(potential.center, batch(key)),
    )


def _check_learning_rate(learning_rate) -> float:
    return check_step_size(learning_rate, "learning_rate")


def sgd(potential: Potential, learning_rate: float, batch_size: int | None = None,
        data: PyTree | None = None) -> SamplingAlgorithm:
    """Plain minibatch SGD: w ← w − η ∇L_b(w), reflected into `potential.bounds`.

    L_b is the mean of `potential.loss_fn` over `batch_size` indices drawn uniformly with
    replacement from `data` (the only noise; None: the full data set, i.e. gradient descent on
    L_n). With `data=None` the step is gradient descent on K = `population_loss` (no noise).
    Minibatch noise has covariance η² C(w)/b per step, C the covariance of the per-example
    gradients; see `sgd_temperature` for the temperature that matches.

    Stability: η h_max < 2 on the box; at or past it an `UnstableStepWarning` (SGD is the object
    studied here, so it runs; it diverges from regions that curve more than 2/η).
    """
    learning_rate = _check_learning_rate(learning_rate)
    check_stable(potential, "sgd", learning_rate, refuse=False)
    loss_and_grad, center_loss = _minibatch_loss(potential, data, batch_size)

    def init(position: Params) -> PositionState:
        return PositionState(position)

    def step(key: PRNGKeyArray, state: PositionState) -> tuple[PositionState, DynamicsInfo]:
        loss, grad = loss_and_grad(key, state.position)
        position = jax.tree_util.tree_map(lambda w, g: w - learning_rate * g, state.position, grad)
        position, _ = _reflect(potential, position)
        info = DynamicsInfo(loss, center_loss(key), jnp.isfinite(loss) & all_finite(grad))
        return PositionState(position), info

    return SamplingAlgorithm(init, step)


def momentum_sgd(potential: Potential, learning_rate: float, momentum: float, batch_size: int | None = None,
                 data: PyTree | None = None, *, nesterov: bool = False) -> SamplingAlgorithm:
    """Heavy-ball (Polyak) or Nesterov momentum SGD, in PyTorch's convention.

    Heavy ball:  v ← μ v + g,  w ← w − η v;
    Nesterov:    v ← μ v + g,  w ← w − η (g + μ v);

    with g = ∇L_b(w) on a fresh minibatch (as in `sgd`), momentum μ ∈ [0, 1), v_0 = 0. In the
    small-η limit both move like SGD with learning rate η/(1 − μ). μ = 0 is exactly `sgd`.
    At a face of the box the position is reflected and v's component mirrored.

    Stability: η h_max < 2(1 + μ) (heavy ball) or 2(1 + μ)/(1 + 2μ) (Nesterov) on the box; at or
    past it an `UnstableStepWarning`, as for `sgd`.
    """
    learning_rate = _check_learning_rate(learning_rate)
    momentum = _check_momentum(momentum)
    check_stable(potential, "nesterov" if nesterov else "heavy_ball", learning_rate, momentum, refuse=False)
    loss_and_grad, center_loss = _minibatch_loss(potential, data, batch_size)

    def init(position: Params) -> MomentumState:
        return MomentumState(position, jax.tree_util.tree_map(jnp.zeros_like, position))

    def step(key: PRNGKeyArray, state: MomentumState) -> tuple[MomentumState, DynamicsInfo]:
        loss, grad = loss_and_grad(key, state.position)
        buffer = jax.tree_util.tree_map(lambda v, g: momentum * v + g, state.momentum, grad)
        if nesterov:
            direction = jax.tree_util.tree_map(lambda g, v: g + momentum * v, grad, buffer)
        else:
            direction = buffer
        position = jax.tree_util.tree_map(lambda w, d: w - learning_rate * d, state.position, direction)
        position, buffer = _reflect(potential, position, buffer)
        info = DynamicsInfo(loss, center_loss(key), jnp.isfinite(loss) & all_finite(grad))
        return MomentumState(position, buffer), info

    return SamplingAlgorithm(init, step)


def nesterov_sgd(potential: Potential, learning_rate: float, momentum: float, batch_size: int | None = None,
                 data: PyTree | None = None) -> SamplingAlgorithm:
    """`momentum_sgd(..., nesterov=True)`."""
    return momentum_sgd(potential, learning_rate, momentum, batch_size, data, nesterov=True)

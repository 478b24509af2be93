"""The shape every sampler and dynamics kernel shares, and SGLD as its reference implementation.

A kernel is a `SamplingAlgorithm(init, step)` built from a `TemperedPosterior` and its own
hyperparameters (blackjax's shape, with `step` returning `(state, info)` always):

    algorithm = sgld(posterior, step_size=1e-4, batch_size=100)
    state = algorithm.init(position)
    state, info = algorithm.step(key, state)

- `state.position` is the current parameter pytree; the state holds only what the next step
  needs.
- `info` is a NamedTuple of per-step diagnostics with at least
  `loss` (the loss at the position that entered the step, on that step's batch; the full data
  set for full-batch kernels), `loss_at_center` (the loss at w* on the same batch), and
  `is_finite` (False when the loss or the gradient was not finite).
One driver runs any such kernel: `lax.scan` over steps, `vmap` over chains.
"""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from slt._posterior import Params, TemperedPosterior, langevin_step, squared_distance


class SamplingAlgorithm(NamedTuple):
    """`init(position) -> state`, `step(key, state) -> (state, info)`, and optionally
    `unrecorded_step`: the same transition (the same next state for the same key and state)
    without the diagnostics that only recorded steps need; its info must still carry
    `is_finite`. The driver uses it for burn-in and for the steps inside a thinning block."""

    init: Callable[[Params], Any]
    step: Callable[[PRNGKeyArray, Any], tuple[Any, Any]]
    unrecorded_step: Callable[[PRNGKeyArray, Any], tuple[Any, Any]] | None = None


def all_finite(tree) -> Bool[Array, ""]:
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)]))


def check_step_size(step_size: float, name: str = "step_size") -> float:
    if isinstance(step_size, jax.core.Tracer):  # checked concretely when the sampler was made
        return step_size
    if not (isinstance(step_size, (int, float)) and step_size > 0 and step_size < float("inf")):
        raise ValueError(f"{name} must be a finite number > 0, got {step_size!r}")
    return float(step_size)


def check_batch_size(batch_size: int | None, num_data: int) -> int:
    """None means the full data set; otherwise 1 <= batch_size."""
    if batch_size is None:
        return num_data
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    return batch_size


class SGLDState(NamedTuple):
    position: Params


class SGLDInfo(NamedTuple):
    """Per step: `loss` L_b(w) at the entering position w, `loss_at_center` L_b(w*), `is_finite`,
    `mala_acceptance`, and `grad_squared_norm` |∇log p̂_b(w)|² (prior and localisation included),
    the quantity SGLD's predicted step-size bias needs (`slt._calibration.step_size_bias`).
    Recorded steps only: `unrecorded_step` leaves the last three fields NaN."""

    loss: Float[Array, ""]
    loss_at_center: Float[Array, ""]
    is_finite: Bool[Array, ""]
    mala_acceptance: Float[Array, ""]
    grad_squared_norm: Float[Array, ""]


def mala_log_acceptance(
    posterior: TemperedPosterior, batch, position: Params, proposal: Params,
    grad_at_position: Params, step_size: float,
) -> Float[Array, ""]:
    """log of the MALA acceptance ratio for the Langevin proposal position → proposal on `batch`.

    With q(b | a) = N(b; a + ε ∇log p(a), 2ε I):
    log α = log p(b) − log p(a) + log q(a | b) − log q(b | a), capped at 0.
    """
    potential_position, _ = posterior.potential(position, batch)
    (potential_proposal, _), grad_potential_proposal = jax.value_and_grad(posterior.potential, has_aux=True)(
        proposal, batch
    )
    grad_at_proposal = jax.tree_util.tree_map(jnp.negative, grad_potential_proposal)

    def log_q(to, frm, grad_frm):
        mean = jax.tree_util.tree_map(lambda w, g: w + step_size * g, frm, grad_frm)
        return -squared_distance(to, mean) / (4.0 * step_size)

    log_ratio = (
        potential_position - potential_proposal
        + log_q(position, proposal, grad_at_proposal)
        - log_q(proposal, position, grad_at_position)
    )
    return jnp.minimum(log_ratio, 0.0)


def sgld(
    posterior: TemperedPosterior,
    step_size: float,
    batch_size: int | None = None,
    *,
    mala_diagnostic: bool = True,
) -> SamplingAlgorithm:
    """Stochastic gradient Langevin dynamics (Welling & Teh 2011) on the tempered posterior.

    w ← w + ε ∇log p̂(w) + √(2ε) ξ,  ∇log p̂(w) = −nβ ∇L_b(w) − γ (w − w*) + ∇log φ(w),

    with b a minibatch of `batch_size` indices drawn with replacement (None: full batch).
    In devinterp's convention this is lr = 2ε. With `mala_diagnostic`, `info.mala_acceptance`
    is the Metropolis–Hastings acceptance probability the same proposal would have under MALA on
    the same batch (Furman & Lau 2024's step-size health check; about 0.9 is healthy); it costs
    one more gradient per step, on recorded steps only (burn-in and the steps inside a thinning
    block use `unrecorded_step`, which skips it and the loss at w*). Without it, the field is NaN.
    """
    step_size = check_step_size(step_size)
    batch_size = check_batch_size(batch_size, posterior.num_data)

    def init(position: Params) -> SGLDState:
        return SGLDState(position)

    def transition(key: PRNGKeyArray, state: SGLDState):
        """The move itself, shared by `step` and `unrecorded_step` so both give the same chain."""
        key_batch, key_noise = jax.random.split(key)
        batch = posterior.minibatch(key_batch, batch_size)
        grad, loss = posterior.grad_log_density(state.position, batch)
        proposal = langevin_step(state.position, grad, step_size, key_noise)
        return batch, grad, loss, proposal, jnp.isfinite(loss) & all_finite(grad)

    def unrecorded_step(key: PRNGKeyArray, state: SGLDState) -> tuple[SGLDState, SGLDInfo]:
        _, _, loss, proposal, is_finite = transition(key, state)
        skipped = jnp.full((), jnp.nan, dtype=loss.dtype)  # loss at w* and acceptance: recorded steps only
        return SGLDState(proposal), SGLDInfo(loss, skipped, is_finite, skipped, skipped)

    def step(key: PRNGKeyArray, state: SGLDState) -> tuple[SGLDState, SGLDInfo]:
        batch, grad, loss, proposal, is_finite = transition(key, state)
        if mala_diagnostic:
            acceptance = jnp.exp(mala_log_acceptance(posterior, batch, state.position, proposal, grad, step_size))
        else:
            acceptance = jnp.full((), jnp.nan, dtype=loss.dtype)
        info = SGLDInfo(
            loss=loss,
            loss_at_center=posterior.loss_fn(posterior.center, batch),
            is_finite=is_finite,
            mala_acceptance=acceptance,
            grad_squared_norm=sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(grad)),
        )
        return SGLDState(proposal), info

    return SamplingAlgorithm(init, step, unrecorded_step)

"""Stochastic gradient Langevin dynamics, the reference implementation of the kernel contract."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from slt.samplers._kernel import SamplingAlgorithm, all_finite, check_batch_size, check_step_size, mala_log_acceptance
from slt.samplers._posterior import Params, TemperedPosterior, langevin_step


class SGLDState(NamedTuple):
    position: Params


class SGLDInfo(NamedTuple):
    """Per step: `loss` L_b(w) at the entering position w, `loss_at_center` L_b(w*), `is_finite`,
    `mala_acceptance`, and `grad_squared_norm` |∇log p̂_b(w)|² (prior and localisation included),
    the quantity SGLD's predicted step-size bias needs (`slt.estimate._calibration.step_size_bias`).
    Recorded steps only: `unrecorded_step` leaves the last three fields NaN."""

    loss: Float[Array, ""]
    loss_at_center: Float[Array, ""]
    is_finite: Bool[Array, ""]
    mala_acceptance: Float[Array, ""]
    grad_squared_norm: Float[Array, ""]


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

    Cost per step in loss evaluations (forward passes; a gradient is one forward and its
    backward, about 3 forwards on a dense network): `unrecorded_step` one gradient; `step` one
    gradient, the loss at w* on the same batch (the LLC's paired difference L_b(w) − L_b(w*)), and
    with the MALA check one gradient at the proposal (the potential at w reuses the loss of the
    step's own gradient). On a deep linear network with d parameters and batch B that is 6Bd
    FLOPs unrecorded, 8Bd recorded without and 14Bd with the check
    (`benchmarks/dln_scaling.py --flops-only`).
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
            acceptance = jnp.exp(mala_log_acceptance(posterior, batch, state.position, proposal, grad, step_size,
                                                         loss_at_position=loss))
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

    metadata = {"name": "sgld", "hyperparameters": {"step_size": step_size, "batch_size": batch_size,
                                                     "mala_diagnostic": mala_diagnostic},
                "nbeta": posterior.nbeta, "num_data": posterior.num_data}
    return SamplingAlgorithm(init, step, unrecorded_step, metadata)

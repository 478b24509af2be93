"""The shape every sampler and dynamics kernel shares (the init/step contract).

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from slt.samplers._posterior import Params, TemperedPosterior, squared_distance


class SamplingAlgorithm(NamedTuple):
    """`init(position) -> state`, `step(key, state) -> (state, info)`, and optionally
    `unrecorded_step`: the same transition (the same next state for the same key and state)
    without the diagnostics that only recorded steps need; its info must still carry
    `is_finite`. The driver uses it for burn-in and for the steps inside a thinning block.
    `metadata`, optional: what a trace of this kernel records about it (name, hyperparameters,
    nbeta, num_data), so a trace of `slt.sgld(...)` run directly says what made it."""

    init: Callable[[Params], Any]
    step: Callable[[PRNGKeyArray, Any], tuple[Any, Any]]
    unrecorded_step: Callable[[PRNGKeyArray, Any], tuple[Any, Any]] | None = None
    metadata: Mapping[str, Any] | None = None


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


def mala_log_acceptance(
    posterior: TemperedPosterior, batch, position: Params, proposal: Params,
    grad_at_position: Params, step_size: float, loss_at_position: Float[Array, ""] | None = None,
) -> Float[Array, ""]:
    """log of the MALA acceptance ratio for the Langevin proposal position → proposal on `batch`.

    With q(b | a) = N(b; a + ε ∇log p(a), 2ε I):
    log α = log p(b) − log p(a) + log q(a | b) − log q(b | a), capped at 0.
    `loss_at_position`, L_b(position) from the kernel's own gradient evaluation, saves the
    forward pass at the position; then the check costs one gradient (at the proposal).
    """
    if loss_at_position is None:
        potential_position, _ = posterior.potential(position, batch)
    else:
        potential_position = posterior.potential_given_loss(position, loss_at_position)
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


# --------------------------------------------------------------------------------------------
# What the driver runs: a kernel with its metadata, and the traced-operand form


class Sampler(NamedTuple):
    """A kernel with the metadata a trace records: `init` and `step` as in `SamplingAlgorithm`.

    `sample` uses only `init` and `step`; the other fields are copied into the `Trace`.
    """

    init: Callable[[Params], Any]
    step: Callable[[PRNGKeyArray, Any], tuple[Any, Any]]
    name: str
    hyperparameters: Mapping[str, Any]
    nbeta: float
    num_data: int
    traced: "TracedKernel | None" = None
    operands: Any = None  # (posterior, float hyperparameters): the traced arguments of `traced`
    unrecorded_step: Callable[[PRNGKeyArray, Any], tuple[Any, Any]] | None = None


@dataclass(frozen=True)
class TracedKernel:
    """A kernel rebuilt inside the compiled function from traced operands.

    Hashable and equal for equal (constructor, static hyperparameters), so `jax.jit` reuses
    one executable across posteriors and float hyperparameters of the same shapes.
    """

    constructor: Callable[..., SamplingAlgorithm]
    static: tuple[tuple[str, Any], ...]
    traced_names: tuple[str, ...]

    def build(self, operands) -> SamplingAlgorithm:
        posterior, values = operands
        return self.constructor(posterior, **dict(self.static), **dict(zip(self.traced_names, values)))

    def init(self, operands, position):
        return self.build(operands).init(position)

    def step(self, operands, key, state):
        return self.build(operands).step(key, state)

    def unrecorded_step(self, operands, key, state):
        algorithm = self.build(operands)
        return (getattr(algorithm, "unrecorded_step", None) or algorithm.step)(key, state)


@dataclass(frozen=True, eq=False)
class ClosureKernel:
    """A closure kernel in the `TracedKernel` calling shape (no operands); equal when its
    `step` and `init` are the same objects."""

    init_fn: Callable
    step_fn: Callable
    unrecorded_fn: Callable | None = None

    def __eq__(self, other):
        return (isinstance(other, ClosureKernel) and other.init_fn is self.init_fn and other.step_fn is self.step_fn
                and other.unrecorded_fn is self.unrecorded_fn)

    def __hash__(self):
        return hash((id(self.init_fn), id(self.step_fn), id(self.unrecorded_fn)))

    def init(self, operands, position):
        return self.init_fn(position)

    def step(self, operands, key, state):
        return self.step_fn(key, state)

    def unrecorded_step(self, operands, key, state):
        return (self.unrecorded_fn or self.step_fn)(key, state)

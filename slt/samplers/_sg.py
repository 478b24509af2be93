"""Stochastic-gradient samplers beyond plain SGLD: RMSProp-preconditioned SGLD, SGHMC, SGNHT.

Every kernel here has the contract of `slt.samplers._kernel` (`init(position) -> state`,
`step(key, state) -> (state, info)`, info with `loss`, `loss_at_center`, `is_finite`) and
targets the `TemperedPosterior`

    p(w) ∝ exp(−nβ L_n(w) − (γ/2)||w − w*||²) φ(w),

with the gradient estimate on a minibatch b of `batch_size` indices drawn with replacement
(None: the full data set, deterministic)

    ĝ(w) = ∇log p̂(w) = −nβ ∇L_b(w) − γ (w − w*) + ∇log φ(w).

Step-size convention. All three reuse the one Langevin increment of `slt.samplers._posterior`,

    Δ(g, ε) = ε g + √(2ε) ξ,  ξ ~ N(0, I)   (`langevin_step` from 0),

so that ε means the same thing as in `sgld`: RMSProp-SGLD with a constant preconditioner G = 1
is SGLD, and SGHMC / SGNHT with friction 1 (and, for SGNHT, a thermostat held at 1) are SGLD
step for step with the same keys (tested). Their momentum v is a velocity in parameter units,
the "learning-rate" parametrisation of Chen et al. (2014, eq. 15): with a physical time step h,
ε = h² and v = h p, so v is N(0, ε I) at equilibrium.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from slt.samplers._kernel import SamplingAlgorithm, all_finite, check_batch_size, check_step_size
from slt.samplers._posterior import Params, TemperedPosterior, langevin_step

tree_map = jax.tree_util.tree_map


def _check_unit_interval(value: float, name: str, *, closed_below: bool = False, closed_above: bool = False) -> float:
    """value in (0, 1), with the ends included on request; NaN, inf and non-numbers are refused."""
    if isinstance(value, jax.core.Tracer):  # checked concretely when the sampler was made
        return value
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value >= 0 if closed_below else value > 0) and (value <= 1 if closed_above else value < 1)
    if not ok:
        interval = f"{'[' if closed_below else '('}0, 1{']' if closed_above else ')'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def _check_positive(value: float, name: str) -> float:
    if isinstance(value, jax.core.Tracer):
        return value
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _recorded_and_unrecorded(posterior: TemperedPosterior, init, transition) -> SamplingAlgorithm:
    """The kernel from `transition(key, state) -> (state, info with loss_at_center NaN, batch)`:
    `step` adds L_b(w*) on the step's own batch (the paired difference the LLC needs);
    `unrecorded_step` (burn-in, the steps inside a thinning block) leaves it NaN, one gradient only."""

    def unrecorded_step(key: PRNGKeyArray, state):
        new_state, info, _ = transition(key, state)
        return new_state, info

    def step(key: PRNGKeyArray, state):
        new_state, info, batch = transition(key, state)
        return new_state, info._replace(loss_at_center=posterior.loss_fn(posterior.center, batch))

    return SamplingAlgorithm(init, step, unrecorded_step)


def _langevin_increment(grad: Params, step_size, key: PRNGKeyArray) -> Params:
    """Δ(g, ε) = ε g + √(2ε) ξ: the module-wide Langevin step taken from the origin."""
    return langevin_step(tree_map(jnp.zeros_like, grad), grad, step_size, key)


def _localization_gradient(posterior: TemperedPosterior, position: Params) -> Params:
    """−γ (w − w*), the localisation part of ∇log p (zero when γ = 0)."""
    return tree_map(lambda w, c: -posterior.localization * (w - c), position, posterior.center)


def _statistical_gradient(posterior: TemperedPosterior, position: Params, batch) -> tuple[Params, Float[Array, ""]]:
    """(−nβ ∇L_b(w) + ∇log φ(w), L_b(w)): ∇log p̂ without the localisation term."""
    def potential_without_localization(w):
        loss = posterior.loss_fn(w, batch)
        value = posterior.nbeta * loss
        if posterior.prior is not None:
            value = value - posterior.prior.log_density(w)
        return value, loss

    (_, loss), grad_potential = jax.value_and_grad(potential_without_localization, has_aux=True)(position)
    return tree_map(jnp.negative, grad_potential), loss


# --------------------------------------------------------------------------------------------
# RMSProp-preconditioned SGLD


class RMSPropSGLDState(NamedTuple):
    position: Params
    square_average: Params  # V, the running average of the squared statistical gradient
    count: Int[Array, ""]  # steps taken, for the bias correction of V


class RMSPropSGLDInfo(NamedTuple):
    loss: Float[Array, ""]
    loss_at_center: Float[Array, ""]
    is_finite: Bool[Array, ""]
    preconditioner_mean: Float[Array, ""]  # mean over coordinates of G after this step's update


def rmsprop_sgld(
    posterior: TemperedPosterior,
    step_size: float,
    batch_size: int | None = None,
    *,
    decay: float = 0.99,
    damping: float = 1.0,
) -> SamplingAlgorithm:
    """RMSProp-preconditioned SGLD (pSGLD; Li, Chen, Carlson & Carin 2016, Algorithm 1).

    With s = −nβ ∇L_b(w) + ∇log φ(w) the statistical gradient (no localisation term) and
    ĝ = s − γ (w − w*) the full gradient estimate, one step is

        V ← α V + (1 − α) s ⊙ s,          V̂ = V / (1 − α^t)   (t = steps so far, V₀ = 0)
        G = 1 / (λ + √V̂)                  (elementwise, diagonal)
        w ← w + ε G ⊙ ĝ + √(2ε G) ⊙ ξ,    ξ ~ N(0, I)

    with α = `decay`, λ = `damping`, ε = `step_size` in the module's Langevin convention
    (written as w + √G ⊙ Δ(√G ⊙ ĝ, ε), the same increment `sgld` uses; Li et al.'s ε is 2ε).
    As in Hitchcock & Hoogland (2025, arXiv 2507.21449), the preconditioner statistics V use s
    only: the localisation pull −γ(w − w*) is part of the drift but not of V, so a strong γ does
    not shrink the step along directions the data leave flat. V̂ is Adam's bias correction, so
    the first step uses V̂ = s₁ ⊙ s₁ rather than V = 0 (which would make G = 1/λ).

    The Γ term is dropped. The exact drift of the preconditioned diffusion has an extra
    Γ_i = Σ_j ∂G_ij/∂w_j. Here G is a function of the past gradients (the running average), not
    of the current w, so the term has no closed form; Li et al. drop it and bound the resulting
    bias by a term that vanishes as (1 − α) → 0 with the preconditioner frozen. We do the same:
    for α → 1 the preconditioner is nearly constant over the chain's correlation time and a
    constant G leaves p invariant (Γ = 0). The stationary test on a Gaussian target
    (tests/test_kernels_sg.py) measures the remaining bias below its Monte Carlo error at
    α = 0.999.

    The default λ = 1 caps G at 1: where every per-datum gradient vanishes (w* on a singular set,
    the usual LLC start: the normal crossing at 0 has s = 0 exactly, minibatch or not) the step is
    never larger than plain SGLD's. With λ = 1e-5 such a start gives G = 1e5 and the chain
    explodes (measured: λ̂ ≈ 1.4e4 on w₁w₂ at nβ = n/log n). Lower λ only when gradients are
    bounded away from 0 along the chain.

    Cost: one gradient per step; recorded steps (`step`) also evaluate the loss at w* on the
    same batch, burn-in and the steps inside a thinning block (`unrecorded_step`) do not.
    """
    step_size = check_step_size(step_size)
    batch_size = check_batch_size(batch_size, posterior.num_data)
    decay = _check_unit_interval(decay, "decay")
    damping = _check_positive(damping, "damping")

    def init(position: Params) -> RMSPropSGLDState:
        return RMSPropSGLDState(position, tree_map(jnp.zeros_like, position), jnp.zeros((), jnp.int32))

    def transition(key: PRNGKeyArray, state: RMSPropSGLDState):
        """The move, shared by `step` and `unrecorded_step` so both give the same chain."""
        key_batch, key_noise = jax.random.split(key)
        batch = posterior.minibatch(key_batch, batch_size)
        statistical, loss = _statistical_gradient(posterior, state.position, batch)
        grad = tree_map(jnp.add, statistical, _localization_gradient(posterior, state.position))
        count = state.count + 1
        square_average = tree_map(lambda v, s: decay * v + (1 - decay) * jnp.square(s), state.square_average, statistical)
        correction = 1 - decay ** count.astype(loss.dtype)
        sqrt_preconditioner = tree_map(lambda v: jax.lax.rsqrt(damping + jnp.sqrt(v / correction)), square_average)
        increment = _langevin_increment(tree_map(jnp.multiply, sqrt_preconditioner, grad), step_size, key_noise)
        position = tree_map(lambda w, r, d: w + r * d, state.position, sqrt_preconditioner, increment)
        leaves = jax.tree_util.tree_leaves(sqrt_preconditioner)
        info = RMSPropSGLDInfo(
            loss=loss,
            loss_at_center=jnp.full((), jnp.nan, dtype=loss.dtype),
            is_finite=jnp.isfinite(loss) & all_finite(grad),
            preconditioner_mean=sum(jnp.sum(jnp.square(r)) for r in leaves) / sum(r.size for r in leaves),
        )
        return RMSPropSGLDState(position, square_average, count), info, batch

    return _recorded_and_unrecorded(posterior, init, transition)


# --------------------------------------------------------------------------------------------
# SGHMC


class SGHMCState(NamedTuple):
    position: Params
    momentum: Params  # v, a velocity in parameter units; N(0, ε I) at equilibrium


class SGHMCInfo(NamedTuple):
    loss: Float[Array, ""]
    loss_at_center: Float[Array, ""]
    is_finite: Bool[Array, ""]
    kinetic_temperature: Float[Array, ""]  # v·v / (d ε), about 1 at equilibrium


def _kinetic_temperature(momentum: Params, step_size: float) -> Float[Array, ""]:
    leaves = jax.tree_util.tree_leaves(momentum)
    return sum(jnp.sum(jnp.square(v)) for v in leaves) / (sum(v.size for v in leaves) * step_size)


def sghmc(
    posterior: TemperedPosterior,
    step_size: float,
    batch_size: int | None = None,
    *,
    friction: float = 0.1,
) -> SamplingAlgorithm:
    """Stochastic gradient Hamiltonian Monte Carlo / momentum Langevin (Chen, Fox & Guestrin 2014).

    In Chen et al.'s eq. (15) parametrisation (learning rate ε = h², friction α = h C,
    velocity v = h p, gradient-noise estimate β̂ = 0):

        v ← (1 − α) v + ε ĝ(w) + √(2αε) ξ,   ξ ~ N(0, I)
        w ← w + v

    with ε = `step_size`, α = `friction` in (0, 1]. The velocity increment ε ĝ + √(2αε) ξ is
    the module's Langevin increment Δ(ĝ/α, αε), so at α = 1 the update is exactly SGLD with
    step size ε (same keys, same draws). The invariant law is p(w) ⊗ N(v; 0, ε I) as ε → 0;
    minibatch noise adds ε² Cov(ĝ) to the velocity noise, which β̂ = 0 ignores (its effect is
    O(ε) relative to the injected 2αε, as in SGLD).

    The velocity starts at 0 (`init` takes no key); burn-in thermalises it within ~1/α steps.
    Every step splits its key into named batch and noise keys: no key is used twice (blackjax's
    `sghmc` reuses one).

    Cost: one gradient per step; recorded steps (`step`) also evaluate the loss at w* on the
    same batch, burn-in and the steps inside a thinning block (`unrecorded_step`) do not.
    """
    step_size = check_step_size(step_size)
    batch_size = check_batch_size(batch_size, posterior.num_data)
    friction = _check_unit_interval(friction, "friction", closed_above=True)

    def init(position: Params) -> SGHMCState:
        return SGHMCState(position, tree_map(jnp.zeros_like, position))

    def transition(key: PRNGKeyArray, state: SGHMCState):
        """The move, shared by `step` and `unrecorded_step` so both give the same chain."""
        key_batch, key_noise = jax.random.split(key)
        batch = posterior.minibatch(key_batch, batch_size)
        grad, loss = posterior.grad_log_density(state.position, batch)
        increment = _langevin_increment(tree_map(lambda g: g / friction, grad), friction * step_size, key_noise)
        momentum = tree_map(lambda v, d: (1 - friction) * v + d, state.momentum, increment)
        position = tree_map(jnp.add, state.position, momentum)
        info = SGHMCInfo(
            loss=loss,
            loss_at_center=jnp.full((), jnp.nan, dtype=loss.dtype),
            is_finite=jnp.isfinite(loss) & all_finite(grad),
            kinetic_temperature=_kinetic_temperature(momentum, step_size),
        )
        return SGHMCState(position, momentum), info, batch

    return _recorded_and_unrecorded(posterior, init, transition)


# --------------------------------------------------------------------------------------------
# SGNHT


class SGNHTState(NamedTuple):
    position: Params
    momentum: Params  # v, velocity in parameter units
    thermostat: Float[Array, ""]  # ξ, the friction the thermostat currently applies


class SGNHTInfo(NamedTuple):
    loss: Float[Array, ""]
    loss_at_center: Float[Array, ""]
    is_finite: Bool[Array, ""]
    thermostat: Float[Array, ""]  # ξ after this step
    kinetic_temperature: Float[Array, ""]  # v·v / (d ε) after this step


def sgnht(
    posterior: TemperedPosterior,
    step_size: float,
    batch_size: int | None = None,
    *,
    diffusion: float = 0.1,
) -> SamplingAlgorithm:
    """Stochastic gradient Nosé–Hoover thermostat (Ding, Fang, Babbush, Chen, Skeel & Neven 2014).

    Ding et al.'s Algorithm 1 with time step h, momentum p, diffusion A and a scalar thermostat
    ξ_h, rewritten in the velocity / learning-rate variables of `sghmc` (ε = h², v = h p,
    ξ = h ξ_h, a = h A), with d the number of parameters:

        v ← v − ξ v + ε ĝ(w) + √(2aε) ζ,   ζ ~ N(0, I)
        w ← w + v
        ξ ← ξ + (v·v / d − ε)              (= ε (p·p/d − 1), p = v/√ε: Ding's ξ_h ← ξ_h + h(p·p/d − 1))

    with ε = `step_size`, a = `diffusion` in (0, 1], and ξ starting at a. The thermostat raises
    the friction while the kinetic temperature v·v/(dε) is above 1 and lowers it below, so it
    absorbs unknown gradient noise: at equilibrium with exact gradients ξ ≈ a, with minibatch
    noise ξ ≈ a + (noise variance)/2. The velocity increment ε ĝ + √(2aε) ζ is the module's
    Langevin increment Δ(ĝ/a, aε); at a = 1 with ξ held at 1 this is SGLD step for step.

    Velocity starts at 0, so ξ first falls (the kinetic temperature is 0) and recovers once the
    velocity thermalises.

    Cost: as `sghmc`, one gradient per step, plus the loss at w* on recorded steps only.
    """
    step_size = check_step_size(step_size)
    batch_size = check_batch_size(batch_size, posterior.num_data)
    diffusion = _check_unit_interval(diffusion, "diffusion", closed_above=True)

    def init(position: Params) -> SGNHTState:
        dtype = jnp.result_type(*jax.tree_util.tree_leaves(position))
        return SGNHTState(position, tree_map(jnp.zeros_like, position), jnp.asarray(diffusion, dtype))

    def transition(key: PRNGKeyArray, state: SGNHTState):
        """The move, shared by `step` and `unrecorded_step` so both give the same chain."""
        key_batch, key_noise = jax.random.split(key)
        batch = posterior.minibatch(key_batch, batch_size)
        grad, loss = posterior.grad_log_density(state.position, batch)
        increment = _langevin_increment(tree_map(lambda g: g / diffusion, grad), diffusion * step_size, key_noise)
        momentum = tree_map(lambda v, d: v - state.thermostat * v + d, state.momentum, increment)
        position = tree_map(jnp.add, state.position, momentum)
        kinetic_temperature = _kinetic_temperature(momentum, step_size)
        thermostat = state.thermostat + step_size * (kinetic_temperature - 1)
        info = SGNHTInfo(
            loss=loss,
            loss_at_center=jnp.full((), jnp.nan, dtype=loss.dtype),
            is_finite=jnp.isfinite(loss) & all_finite(grad),
            thermostat=thermostat,
            kinetic_temperature=kinetic_temperature,
        )
        return SGNHTState(position, momentum, thermostat), info, batch

    return _recorded_and_unrecorded(posterior, init, transition)

"""Exact (full-batch, Metropolis-corrected) samplers: MALA, blackjax HMC and NUTS, and references.

All kernels target the `TemperedPosterior` on the whole data set,

    log p(w) = −U(w) + const,   U(w) = nβ L_n(w) + (γ/2)||w − w*||² − log φ(w),

and follow the contract of `slt.samplers._kernel`: `init(position) -> state`,
`step(key, state) -> (state, info)`, with `info.loss` = L_n at the position that entered the
step (cached in the state, so no extra pass), `info.loss_at_center` = L_n(w*), `info.is_finite`,
and `info.acceptance_rate`.

Tempering goes through `TemperedPosterior.nbeta` only. blackjax's own `temperature` argument is
not used: it divides the whole log density, the localisation and the prior included.
"""

import math
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from slt.samplers._kernel import SamplingAlgorithm, all_finite, check_step_size
from slt.samplers._posterior import Params, TemperedPosterior, langevin_step, squared_distance

tree_map = jax.tree_util.tree_map


def _require_data_set(posterior: TemperedPosterior) -> None:
    """Exact (full-batch) kernels target exp(−nβ L_n) on `data`; a population posterior has no L_n."""
    if posterior.population:
        raise ValueError("full-batch kernels (mala, hmc, nuts) need a data set; this posterior draws fresh "
                         "population data (data_source): use sgld or another minibatch kernel")


def _full_batch_log_density(posterior: TemperedPosterior):
    _require_data_set(posterior)
    """w ↦ (log p(w) up to a constant, L_n(w)) on the whole data set."""
    def log_density_and_loss(w):
        potential, loss = posterior.potential(w, posterior.data)
        return -potential, loss

    return log_density_and_loss


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _flat_size(posterior: TemperedPosterior) -> int:
    return sum(int(jnp.size(leaf)) for leaf in jax.tree_util.tree_leaves(posterior.center))


def _check_inverse_mass_matrix(inverse_mass_matrix, size: int) -> Array:
    """None → identity; a (d,) diagonal or a (d, d) matrix, finite, positive diagonal."""
    if inverse_mass_matrix is None:
        return jnp.ones(size)
    matrix = np.asarray(inverse_mass_matrix, dtype=float)
    if matrix.shape not in ((size,), (size, size)):
        raise ValueError(
            f"inverse_mass_matrix must have shape ({size},) or ({size}, {size}) for a posterior with "
            f"{size} parameters, got {matrix.shape}"
        )
    diagonal = matrix if matrix.ndim == 1 else np.diag(matrix)
    if not np.all(np.isfinite(matrix)) or not np.all(diagonal > 0):
        raise ValueError("inverse_mass_matrix must be finite with a positive diagonal")
    return jnp.asarray(inverse_mass_matrix)


# --------------------------------------------------------------------------------------------
# MALA


class MALAState(NamedTuple):
    position: Params
    potential: Float[Array, ""]  # U(w)
    grad_log_density: Params  # ∇log p(w) = −∇U(w)
    loss: Float[Array, ""]  # L_n(w)


class MALAInfo(NamedTuple):
    loss: Float[Array, ""]
    loss_at_center: Float[Array, ""]
    is_finite: Bool[Array, ""]
    acceptance_rate: Float[Array, ""]  # min(1, α) for this step's proposal
    is_accepted: Bool[Array, ""]


def mala(posterior: TemperedPosterior, step_size: float) -> SamplingAlgorithm:
    """Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996) on the full data set.

    Proposal (the module's Langevin step, `langevin_step`):

        w' = w + ε ∇log p(w) + √(2ε) ξ,   i.e. q(w' | w) = N(w'; w + ε ∇log p(w), 2ε I),

    accepted with probability

        α = min(1, exp(U(w) − U(w') + log q(w | w') − log q(w' | w))),
        log q(b | a) = −||b − a − ε ∇log p(a)||² / (4ε) + const.

    A non-finite proposal (NaN α) is rejected. The state caches U, ∇log p and L_n at the current
    point, so each step costs one value-and-gradient pass.
    """
    step_size = check_step_size(step_size)
    log_density_and_loss = _full_batch_log_density(posterior)
    value_and_grad = jax.value_and_grad(log_density_and_loss, has_aux=True)

    def init(position: Params) -> MALAState:
        (log_density, loss), grad = value_and_grad(position)
        return MALAState(position, -log_density, grad, loss)

    def log_q(to: Params, frm: Params, grad_frm: Params) -> Float[Array, ""]:
        mean = tree_map(lambda w, g: w + step_size * g, frm, grad_frm)
        return -squared_distance(to, mean) / (4.0 * step_size)

    def step(key: PRNGKeyArray, state: MALAState) -> tuple[MALAState, MALAInfo]:
        key_proposal, key_accept = jax.random.split(key)
        proposal = langevin_step(state.position, state.grad_log_density, step_size, key_proposal)
        (log_density_proposal, loss_proposal), grad_proposal = value_and_grad(proposal)
        log_ratio = (
            state.potential + log_density_proposal
            + log_q(state.position, proposal, grad_proposal)
            - log_q(proposal, state.position, state.grad_log_density)
        )
        log_acceptance = jnp.where(jnp.isnan(log_ratio), -jnp.inf, jnp.minimum(log_ratio, 0.0))
        is_accepted = jnp.log(jax.random.uniform(key_accept, dtype=log_acceptance.dtype)) < log_acceptance
        proposed_state = MALAState(proposal, -log_density_proposal, grad_proposal, loss_proposal)
        new_state = tree_map(lambda new, old: jnp.where(is_accepted, new, old), proposed_state, state)
        info = MALAInfo(
            loss=state.loss,
            loss_at_center=posterior.loss_fn(posterior.center, posterior.data),
            is_finite=jnp.isfinite(state.loss) & jnp.isfinite(state.potential) & all_finite(state.grad_log_density),
            acceptance_rate=jnp.exp(log_acceptance),
            is_accepted=is_accepted,
        )
        return new_state, info

    return SamplingAlgorithm(init, step)


# --------------------------------------------------------------------------------------------
# blackjax HMC and NUTS


class ExactState(NamedTuple):
    """blackjax's `HMCState` fields plus L_n at the position."""

    position: Params
    logdensity: Float[Array, ""]
    logdensity_grad: Params
    loss: Float[Array, ""]


class HMCInfo(NamedTuple):
    loss: Float[Array, ""]
    loss_at_center: Float[Array, ""]
    is_finite: Bool[Array, ""]
    acceptance_rate: Float[Array, ""]
    is_accepted: Bool[Array, ""]
    is_divergent: Bool[Array, ""]
    num_integration_steps: Int[Array, ""]


class NUTSInfo(NamedTuple):
    loss: Float[Array, ""]
    loss_at_center: Float[Array, ""]
    is_finite: Bool[Array, ""]
    acceptance_rate: Float[Array, ""]  # mean Metropolis probability over the trajectory
    is_divergent: Bool[Array, ""]
    num_integration_steps: Int[Array, ""]


def _wrap_blackjax(posterior: TemperedPosterior, algorithm, make_info) -> SamplingAlgorithm:
    """Adapt a blackjax HMC-family `(init, step)` into the workbench contract."""

    def loss_at(position: Params) -> Float[Array, ""]:
        return posterior.loss_fn(position, posterior.data)

    def init(position: Params) -> ExactState:
        inner = algorithm.init(position)
        return ExactState(inner.position, inner.logdensity, inner.logdensity_grad, loss_at(position))

    def step(key: PRNGKeyArray, state: ExactState):
        inner = blackjax.mcmc.hmc.HMCState(state.position, state.logdensity, state.logdensity_grad)
        new_inner, inner_info = algorithm.step(key, inner)
        info = make_info(
            state.loss,
            loss_at(posterior.center),
            jnp.isfinite(state.loss) & jnp.isfinite(state.logdensity) & all_finite(state.logdensity_grad),
            inner_info,
        )
        new_state = ExactState(new_inner.position, new_inner.logdensity, new_inner.logdensity_grad,
                               loss_at(new_inner.position))
        return new_state, info

    return SamplingAlgorithm(init, step)


def _log_density_fn(posterior: TemperedPosterior):
    _require_data_set(posterior)
    return lambda w: -posterior.potential(w, posterior.data)[0]


def hmc(
    posterior: TemperedPosterior,
    step_size: float,
    num_integration_steps: int,
    inverse_mass_matrix=None,
) -> SamplingAlgorithm:
    """Hamiltonian Monte Carlo (blackjax.hmc, velocity Verlet, Metropolis-corrected) on log p = −U.

    H(w, p) = U(w) + ½ pᵀ M⁻¹ p; each step draws p ~ N(0, M), runs `num_integration_steps`
    leapfrog steps of size ε = `step_size` and accepts with min(1, exp(H − H')).
    `inverse_mass_matrix` is M⁻¹ on the flattened parameters: (d,) diagonal, (d, d) dense, or
    None for the identity. ε here is the leapfrog step, not the Langevin ε of the SG kernels
    (one leapfrog step with M = I is MALA with Langevin ε = ε²/2).
    """
    step_size = check_step_size(step_size)
    num_integration_steps = _check_positive_int(num_integration_steps, "num_integration_steps")
    inverse_mass_matrix = _check_inverse_mass_matrix(inverse_mass_matrix, _flat_size(posterior))
    algorithm = blackjax.hmc(_log_density_fn(posterior), step_size, inverse_mass_matrix, num_integration_steps)

    def make_info(loss, loss_at_center, is_finite, inner):
        return HMCInfo(loss, loss_at_center, is_finite, inner.acceptance_rate, inner.is_accepted,
                       inner.is_divergent, jnp.asarray(inner.num_integration_steps))

    return _wrap_blackjax(posterior, algorithm, make_info)


def nuts(
    posterior: TemperedPosterior,
    step_size: float,
    inverse_mass_matrix=None,
    *,
    max_num_doublings: int = 10,
) -> SamplingAlgorithm:
    """The No-U-Turn sampler (Hoffman & Gelman 2014; blackjax.nuts, multinomial) on log p = −U.

    Same Hamiltonian and `inverse_mass_matrix` convention as `hmc`; the trajectory doubles until
    it makes a U-turn or reaches 2^`max_num_doublings` leapfrog steps. `info.acceptance_rate` is
    blackjax's mean acceptance probability over the trajectory (what window adaptation targets).
    """
    step_size = check_step_size(step_size)
    max_num_doublings = _check_positive_int(max_num_doublings, "max_num_doublings")
    inverse_mass_matrix = _check_inverse_mass_matrix(inverse_mass_matrix, _flat_size(posterior))
    algorithm = blackjax.nuts(_log_density_fn(posterior), step_size, inverse_mass_matrix,
                              max_num_doublings=max_num_doublings)

    def make_info(loss, loss_at_center, is_finite, inner):
        return NUTSInfo(loss, loss_at_center, is_finite, inner.acceptance_rate, inner.is_divergent,
                        jnp.asarray(inner.num_integration_steps))

    return _wrap_blackjax(posterior, algorithm, make_info)


class WindowAdaptationResult(NamedTuple):
    position: Params  # the chain's position at the end of warm-up
    step_size: float
    inverse_mass_matrix: Float[Array, "..."]


def window_adaptation(
    posterior: TemperedPosterior,
    key: PRNGKeyArray,
    position: Params,
    num_steps: int = 1000,
    *,
    algorithm: str = "nuts",
    num_integration_steps: int | None = None,
    target_acceptance_rate: float = 0.8,
    is_mass_matrix_diagonal: bool = True,
) -> WindowAdaptationResult:
    """Stan-style window adaptation (blackjax.window_adaptation) of ε and M⁻¹ for `hmc` or `nuts`.

    Runs one warm-up chain of `num_steps` steps from `position` on the full-batch log p = −U
    (dual averaging of ε towards `target_acceptance_rate`, then mass-matrix estimation in
    doubling slow windows) and returns the tuned `step_size` (a float) and
    `inverse_mass_matrix`, ready for `hmc(posterior, step_size, L, inverse_mass_matrix)` or
    `nuts(posterior, step_size, inverse_mass_matrix)`. Call it eagerly (not under vmap/jit);
    for several chains, adapt once and share the result, or call it per chain.
    """
    num_steps = _check_positive_int(num_steps, "num_steps")
    if not (isinstance(target_acceptance_rate, (int, float)) and 0 < target_acceptance_rate < 1):
        raise ValueError(f"target_acceptance_rate must be in (0, 1), got {target_acceptance_rate!r}")
    if not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(position)):
        raise ValueError("position has non-finite entries")
    if algorithm == "nuts":
        extra = {}
        kernel = blackjax.nuts
    elif algorithm == "hmc":
        extra = {"num_integration_steps": _check_positive_int(num_integration_steps, "num_integration_steps")}
        kernel = blackjax.hmc
    else:
        raise ValueError(f"algorithm must be 'nuts' or 'hmc', got {algorithm!r}")
    warmup = blackjax.window_adaptation(
        kernel, _log_density_fn(posterior), is_mass_matrix_diagonal=is_mass_matrix_diagonal,
        target_acceptance_rate=target_acceptance_rate, **extra,
    )
    (state, parameters), _ = warmup.run(key, position, num_steps=num_steps)
    step_size = float(parameters["step_size"])
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"window adaptation produced step size {step_size}; check the start position")
    return WindowAdaptationResult(state.position, step_size, parameters["inverse_mass_matrix"])


# --------------------------------------------------------------------------------------------
# numpyro NUTS as an independent reference


class ReferenceDraws(NamedTuple):
    positions: Params  # leaves shaped (chains, draws, ...)
    loss: Float[Array, "chains draws"]  # L_n at every draw
    diverging: Bool[Array, "chains draws"]


def numpyro_nuts_reference(
    posterior: TemperedPosterior,
    key: PRNGKeyArray,
    initial_position: Params,
    *,
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 1,
    target_accept_prob: float = 0.8,
) -> ReferenceDraws:
    """Draws from numpyro's NUTS on the potential U (an implementation independent of blackjax).

    `numpyro.infer.MCMC(NUTS(potential_fn=U))` with numpyro's own warm-up (step size and a
    diagonal mass matrix), `num_chains` chains vectorised from the same `initial_position`.
    Returns the positions and L_n per draw, for cross-checking the workbench's samplers.
    """
    from numpyro.infer import MCMC, NUTS  # numpyro is an optional reference: import on use

    _require_data_set(posterior)
    num_warmup = _check_positive_int(num_warmup, "num_warmup")
    num_samples = _check_positive_int(num_samples, "num_samples")
    num_chains = _check_positive_int(num_chains, "num_chains")
    kernel = NUTS(potential_fn=lambda w: posterior.potential(w, posterior.data)[0],
                  target_accept_prob=target_accept_prob)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="vectorized", progress_bar=False)
    if num_chains == 1:
        init_params = initial_position
    else:
        init_params = tree_map(lambda leaf: jnp.broadcast_to(leaf, (num_chains, *jnp.shape(leaf))), initial_position)
    mcmc.run(key, init_params=init_params, extra_fields=("diverging",))
    positions = mcmc.get_samples(group_by_chain=True)
    diverging = mcmc.get_extra_fields(group_by_chain=True)["diverging"]
    loss = jax.vmap(jax.vmap(lambda w: posterior.loss_fn(w, posterior.data)))(positions)
    return ReferenceDraws(positions, loss, diverging)

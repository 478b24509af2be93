"""SGD as a stochastic differential equation: full-data drift plus Gaussian noise of SGD's covariance.

    w ← w − η ∇L_n(w) + η √(C(w)/b) ξ,    ξ ~ N(0, I),

with C(w) the covariance over the data of the per-example gradients ∇ℓ_i(w) (the empirical
Fisher's centred part). One step has exactly the mean and the covariance of a minibatch-SGD
step with b indices drawn with replacement (`slt.dynamics.sgd`); what differs is the noise's
law (Gaussian here, a sum of b heavy-tailed per-example terms there) and nothing else. Against
Brownian motion at SGD's temperature (noise 2ηT I, `brownian`) it isolates the noise's
*shape*: C(w) instead of σ² H(w) in every direction. The Euler–Maruyama step of
dw = −∇L_n dt + √(η C/b) dB in gradient-flow time, one step covering time η.

C(w) in closed form, for the potentials' regression y = x g(w) + ξ (x scalar, g ∈ R^k,
`Potential.residual_map`): ∇ℓ_i = −Jᵀ r_i/σ², r_i = x_i y_i − x_i² g(w), J = ∂g/∂w, so

    ∇L_n = −Jᵀ (m_xy − m_xx g)/σ²,   C = Jᵀ M J/σ⁴,   M = S_xy − c gᵀ − g cᵀ + v g gᵀ,

with the data's means m_xy = ⟨xy⟩, m_xx = ⟨x²⟩ and covariances S_xy = Cov(xy), c = Cov(x², xy),
v = Var(x²) (all over the n data, 1/n). The noise is Jᵀ M^{1/2} ξ_k η/(σ² √b), ξ_k ∈ R^k (M
is k × k and PSD; C has rank <= k: for the normal crossing k = 1 and the noise lies along
∇(w1 w2) only, exactly as SGD's). Cost per step is O(k³), independent of n.
"""

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray, PyTree

import toy_models
from slt import SamplingAlgorithm
from slt.dynamics._kernels import (
    DynamicsInfo,
    PositionState,
    _check_learning_rate,
    _reflect,
)
from slt.dynamics._potentials import Potential
from slt.dynamics._stability import check_stable
from toy_models import NOISE_STD


def gradient_moments(data) -> dict[str, jax.Array]:
    """The data moments C(w) needs: m_xy [k], m_xx, S_xy [k, k], c [k], v, mean ||y||² (1/n averages)."""
    inputs = jnp.asarray(data.inputs)
    targets = jnp.asarray(data.targets)
    if inputs.ndim != 2 or inputs.shape[1] != 1 or targets.ndim != 2 or targets.shape[0] != inputs.shape[0]:
        raise ValueError(f"sgd_sde needs regression data with scalar inputs [n, 1] and targets [n, k], got "
                         f"{inputs.shape} and {targets.shape}")
    x = inputs[:, 0]
    xy = x[:, None] * targets
    xx = x * x
    m_xy, m_xx = jnp.mean(xy, axis=0), jnp.mean(xx)
    centred_xy, centred_xx = xy - m_xy[None, :], xx - m_xx
    return {
        "m_xy": m_xy,
        "m_xx": m_xx,
        "s_xy": centred_xy.T @ centred_xy / x.shape[0],
        "c": jnp.mean(centred_xx[:, None] * centred_xy, axis=0),
        "v": jnp.mean(centred_xx * centred_xx),
        "m_yy": jnp.mean(jnp.sum(targets * targets, axis=1)),
    }


def moment_loss_and_gradient(residual_map, moments, w):
    """(L_n(w), ∇L_n(w), M(w), J(w)) from the moments; L_n includes the Gaussian constant k/2 log 2πσ²."""
    noise_variance = NOISE_STD**2
    g = residual_map(w)
    jacobian = jax.jacfwd(residual_map)(w)
    num_outputs = g.shape[0]
    loss = (0.5 * (moments["m_yy"] - 2.0 * jnp.dot(g, moments["m_xy"]) + moments["m_xx"] * jnp.dot(g, g))
            / noise_variance + 0.5 * num_outputs * jnp.log(2.0 * jnp.pi * noise_variance))
    gradient = -jacobian.T @ (moments["m_xy"] - moments["m_xx"] * g) / noise_variance
    c = moments["c"]
    residual_covariance = moments["s_xy"] - jnp.outer(c, g) - jnp.outer(g, c) + moments["v"] * jnp.outer(g, g)
    return loss, gradient, residual_covariance, jacobian


def gradient_covariance(potential: Potential, data, w) -> jax.Array:
    """C(w) = Jᵀ M J/σ⁴, the covariance over `data` of the per-example gradients at w (closed form)."""
    residual_map = _residual_map(potential)
    _, _, residual_covariance, jacobian = moment_loss_and_gradient(residual_map, gradient_moments(data), w)
    return jacobian.T @ residual_covariance @ jacobian / NOISE_STD**4


def _residual_map(potential: Potential):
    if potential.residual_map is None:
        raise ValueError(f"sgd_sde needs a regression potential with a residual_map; {potential.name} has none")
    return potential.residual_map


def _symmetric_root(matrix):
    eigenvalues, eigenvectors = jnp.linalg.eigh(0.5 * (matrix + matrix.T))
    return (eigenvectors * jnp.sqrt(jnp.clip(eigenvalues, 0.0, None))[None, :]) @ eigenvectors.T


def sgd_sde(potential: Potential, learning_rate: float, batch_size: int, data: PyTree) -> SamplingAlgorithm:
    """SGD's mean and covariance per step with Gaussian noise: w ← w − η∇L_n + η√(C(w)/b) ξ (module docstring).

    `potential.residual_map` gives C(w) in closed form; `data` is the data set SGD would draw its
    minibatches from (with replacement) and `batch_size` its b. Reflected into the box like
    every dynamics. `info.loss` is L_n at the entering position (full data).

    Limitations: only for the 2-D regression potentials (scalar input, `residual_map` set);
    refuses (ValueError) η at or past the stability limit η h_max < 2 (`slt.dynamics.stability_limit`).
    """
    learning_rate = _check_learning_rate(learning_rate)
    residual_map = _residual_map(potential)
    num_data = toy_models.num_data(data)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size > num_data:
        raise ValueError(f"batch_size ({batch_size}) must be <= the data size ({num_data})")
    check_stable(potential, "sgd_sde", learning_rate, refuse=True)
    moments = gradient_moments(data)
    loss_at_center = moment_loss_and_gradient(residual_map, moments, potential.center)[0]
    noise_scale = learning_rate / (NOISE_STD**2 * jnp.sqrt(float(batch_size)))

    def init(position) -> PositionState:
        return PositionState(position)

    def step(key: PRNGKeyArray, state: PositionState) -> tuple[PositionState, DynamicsInfo]:
        loss, gradient, residual_covariance, jacobian = moment_loss_and_gradient(residual_map, moments, state.position)
        standard = jax.random.normal(key, residual_covariance.shape[:1], dtype=state.position.dtype)
        noise = jacobian.T @ (_symmetric_root(residual_covariance) @ standard)
        position = state.position - learning_rate * gradient + noise_scale * noise
        position, _ = _reflect(potential, position)
        info = DynamicsInfo(loss, loss_at_center, jnp.isfinite(loss) & jnp.all(jnp.isfinite(gradient)))
        return PositionState(position), info

    return SamplingAlgorithm(init, step)

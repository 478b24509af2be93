"""What the three experiments share: a one-hidden-layer network on a flat parameter vector, its
prior, vmapped trainers (SGD, heavy-ball momentum, Adam, SGLD) and the LLC of many solutions at
once through `slt.sample` and `estimators.llc`.

Parameters are one flat vector w ∈ R^d so that millions of prior draws and thousands of training
runs are one `vmap`. Layout of w for `Network(input_dim=D, width=H, bias=True)`:
[W₁ (D·H, row-major [D, H]), b₁ (H), a (H), c (1)], and f(w, x) = aᵀ σ(W₁ᵀ x + b₁) + c.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

import estimators
from slt.run import sample
from slt.samplers import TemperedPosterior, make_sampler

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}


class Network(NamedTuple):
    """f(w, x) = Σ_h a_h σ(w_hᵀ x + b_h) + c, one hidden layer of `width` units, scalar output."""

    input_dim: int
    width: int
    activation: str = "tanh"
    bias: bool = True

    @property
    def dimension(self) -> int:
        return self.input_dim * self.width + self.width + self.bias * (self.width + 1)

    def unflatten(self, w: Float[Array, " d"]):
        """(W₁ [D, H], b₁ [H], a [H], c []) from the flat vector (biases zero when `bias` is False)."""
        D, H = self.input_dim, self.width
        first = w[: D * H].reshape(D, H)
        if self.bias:
            b1 = w[D * H: D * H + H]
            a = w[D * H + H: D * H + 2 * H]
            c = w[D * H + 2 * H]
        else:
            b1 = jnp.zeros((H,), w.dtype)
            a = w[D * H: D * H + H]
            c = jnp.zeros((), w.dtype)
        return first, b1, a, c

    def flatten(self, first, b1, a, c) -> Float[Array, " d"]:
        parts = [jnp.ravel(first)] + ([jnp.ravel(b1)] if self.bias else []) + [jnp.ravel(a)]
        parts += [jnp.reshape(c, (1,))] if self.bias else []
        return jnp.concatenate(parts)

    def apply(self, w: Float[Array, " d"], x: Float[Array, "n D"]) -> Float[Array, " n"]:
        first, b1, a, c = self.unflatten(w)
        hidden = ACTIVATIONS[self.activation](x @ first + b1[None, :])
        return hidden @ a + c

    def prior_scales(self, weight_scale: float = 1.0, bias_scale: float = 0.1) -> Float[Array, " d"]:
        """Standard deviations of the prior N(0, diag(s²)): s = σ_w/√fan_in for weights, σ_b for biases."""
        D, H = self.input_dim, self.width
        parts = [jnp.full((D * H,), weight_scale / np.sqrt(D))]
        if self.bias:
            parts.append(jnp.full((H,), bias_scale))
        parts.append(jnp.full((H,), weight_scale / np.sqrt(H)))
        if self.bias:
            parts.append(jnp.full((1,), bias_scale))
        return jnp.concatenate(parts)


def sample_prior(key: PRNGKeyArray, scales: Float[Array, " d"], num_draws: int) -> Float[Array, "draws d"]:
    """`num_draws` independent draws w ~ N(0, diag(scales²))."""
    return jax.random.normal(key, (num_draws, scales.shape[0])) * scales[None, :]


def squared_error(network: Network, w, x, y) -> Float[Array, ""]:
    """L(w) = (1/2n) Σ_i (f(w, x_i) − y_i)²: Gaussian regression on the targets (unit noise)."""
    return 0.5 * jnp.mean(jnp.square(network.apply(w, x) - y))


class Estimate(NamedTuple):
    value: float
    std_error: float


def mean_estimate(values) -> Estimate:
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return Estimate(float("nan"), float("nan"))
    if values.size == 1:
        return Estimate(float(values[0]), float("nan"))
    return Estimate(float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size)))


# --------------------------------------------------------------------------------------------
# Trainers: one pure step, scanned over steps and vmapped over runs


OPTIMIZERS = ("sgd", "momentum", "adam", "sgld")


class TrainResult(NamedTuple):
    """Endpoints [runs, d], whether each run met the stopping rule, and the step it stopped at."""

    positions: np.ndarray
    converged: np.ndarray
    stop_step: np.ndarray


def train(
    loss_fn: Callable[[Float[Array, " d"], PyTree], Float[Array, ""]],
    data: PyTree,
    initial: Float[Array, "runs d"],
    key: PRNGKeyArray,
    *,
    optimizer: str = "sgd",
    learning_rate: float,
    num_steps: int,
    batch_size: int | None = None,
    momentum: float = 0.9,
    temperature: float = 0.0,
    stop_fn: Callable[[Float[Array, " d"]], jax.Array] | None = None,
) -> TrainResult:
    """Run every row of `initial` for up to `num_steps` steps of `optimizer`, in one jitted call.

    sgd:      w ← w − η g
    momentum: v ← μ v + g,  w ← w − η v                      (heavy ball)
    adam:     Kingma & Ba with β₁ = 0.9, β₂ = 0.999, ε = 1e-8
    sgld:     w ← w − η g + √(2 η T) ξ                       (Langevin at temperature T)

    g is the gradient of `loss_fn(w, batch)` on a minibatch of `batch_size` points drawn with
    replacement (None: the full data). With `stop_fn(w) -> bool` a run freezes at the first step
    where it holds (Mingard et al. stop at zero training error); otherwise every run takes all
    steps and `converged` is True. Per-run keys are `split(key, runs)`; step s uses
    `fold_in(run_key, s)`.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    full_batch = batch_size is None or batch_size >= n
    grad_fn = jax.grad(loss_fn)
    stop = (lambda w: jnp.asarray(False)) if stop_fn is None else stop_fn
    adam_b1, adam_b2, adam_eps = 0.9, 0.999, 1e-8

    def run(w0, run_key):
        def step(carry, step_index):
            w, velocity, second, done, stop_step = carry
            key_batch, key_noise = jax.random.split(jax.random.fold_in(run_key, step_index))
            done_now = done | stop(w)
            stop_step = jnp.where(done_now & ~done, step_index, stop_step)
            if full_batch:
                batch = data
            else:
                indices = jax.random.randint(key_batch, (batch_size,), 0, n)
                batch = jax.tree_util.tree_map(lambda leaf: leaf[indices], data)
            g = grad_fn(w, batch)
            if optimizer == "sgd":
                new_w, new_velocity, new_second = w - learning_rate * g, velocity, second
            elif optimizer == "momentum":
                new_velocity = momentum * velocity + g
                new_w, new_second = w - learning_rate * new_velocity, second
            elif optimizer == "adam":
                t = (step_index + 1).astype(w.dtype)
                new_velocity = adam_b1 * velocity + (1 - adam_b1) * g
                new_second = adam_b2 * second + (1 - adam_b2) * jnp.square(g)
                corrected = (new_velocity / (1 - adam_b1 ** t)) / (jnp.sqrt(new_second / (1 - adam_b2 ** t)) + adam_eps)
                new_w = w - learning_rate * corrected
            else:
                noise = jax.random.normal(key_noise, w.shape, w.dtype)
                new_w = w - learning_rate * g + jnp.sqrt(2.0 * learning_rate * temperature) * noise
                new_velocity, new_second = velocity, second
            keep = lambda old, new: jnp.where(done_now, old, new)  # noqa: E731
            return (keep(w, new_w), keep(velocity, new_velocity), keep(second, new_second), done_now, stop_step), None

        zeros = jnp.zeros_like(w0)
        init = (w0, zeros, zeros, jnp.asarray(False), jnp.asarray(num_steps, jnp.int32))
        (w, _, _, done, stop_step), _ = jax.lax.scan(step, init, jnp.arange(num_steps, dtype=jnp.int32))
        done = done | stop(w)
        return w, done, stop_step

    keys = jax.random.split(key, initial.shape[0])
    positions, converged, stop_step = jax.jit(jax.vmap(run))(initial, keys)
    if stop_fn is None:
        converged = jnp.ones_like(converged)
    return TrainResult(np.asarray(positions), np.asarray(converged), np.asarray(stop_step))


# --------------------------------------------------------------------------------------------
# The LLC of many solutions in one run of the driver


class BatchedLLC(NamedTuple):
    """λ̂ at each solution with its MCSE; `results` are the `estimators.llc` results, one per solution.

    `hessian_eigenvalues` [K, d] are those of L at each solution (the preconditioner's input).
    """

    means: np.ndarray
    std_errors: np.ndarray
    results: tuple
    hessian_eigenvalues: np.ndarray


def hessians(loss_fn, solutions, data) -> jax.Array:
    """∇²L_k(w*_k) for every solution, [K, d, d] (d is small: the full Hessian)."""
    indices = jnp.arange(solutions.shape[0])
    return jax.jit(jax.vmap(jax.hessian(loss_fn), in_axes=(0, None, 0)))(jnp.asarray(solutions), data, indices)


def inverse_sqrt(matrices: jax.Array, shift) -> tuple[jax.Array, jax.Array]:
    """(M⁺ + shift I)^{-1/2} for symmetric M (negative eigenvalues clipped to 0), and M's eigenvalues."""
    eigenvalues, vectors = jnp.linalg.eigh(matrices)
    inverse_roots = 1.0 / jnp.sqrt(jnp.maximum(eigenvalues, 0.0) + shift)
    return jnp.einsum("kij,kj,klj->kil", vectors, inverse_roots, vectors), eigenvalues


def llc_at_solutions(
    loss_fn: Callable[[Float[Array, " d"], PyTree, jax.Array], Float[Array, ""]],
    data: PyTree,
    solutions: Float[Array, "solutions d"],
    key: PRNGKeyArray,
    *,
    nbeta: float,
    localization: float = 1.0,
    step_size: float = 0.02,
    curvature_floor: float = 1e-2,
    num_chains: int = 4,
    num_steps: int = 4000,
    num_burnin: int = 1000,
    thinning: int = 5,
) -> BatchedLLC:
    r"""λ̂(w*_k) = nβ (E[L_k(w)] − L_k(w*_k)) for every row w*_k of `solutions`, in one `slt.sample` run.

    `loss_fn(w, data, k)` is the loss L_k of solution k (k lets each solution have its own
    targets). The K localised posteriors p_k(w) ∝ exp(−nβ L_k(w) − (γ/2)||w − w*_k||²) (flat
    prior) are sampled as one product posterior on [K, d] by full-batch SGLD with the
    workbench's convention u ← u + ε ∇log p(u) + √(2ε) ξ. The blocks do not interact, so each is
    an exact chain of its own. Block k runs in the coordinates u_k defined by
    w_k = w*_k + P_k u_k, P_k = (nβ (H_k⁺ + δ_k I) + γ I)^{-1/2}, H_k⁺ the Hessian of L_k at w*_k
    with negative eigenvalues set to 0 and δ_k = `curvature_floor` × its largest eigenvalue: a
    constant linear change of variables, so the law of w_k and λ̂ are unchanged (any P_k would
    do; this one makes the potential's curvature at u = 0 at most 1 in every direction, so one
    `step_size` suits all solutions, and δ_k keeps the flat and singular directions, where
    higher-order terms take over, from being stretched so far that the step is unstable). It is
    preconditioned SGLD with the constant preconditioner P_k P_kᵀ. The localisation term therefore sits in the sampled potential, and the losses L_k
    are recorded separately (`info["solution_loss"]`) for `estimators.llc`.

    Limitations
    -----------
    The MALA diagnostic would test the joint proposal, so it is off. Where L_k is not quadratic
    (singular directions, where only γ sets the scale) the step may be stiffer than at u = 0.
    """
    solutions = jnp.asarray(solutions)
    num_solutions = solutions.shape[0]
    indices = jnp.arange(num_solutions)

    def losses(w_matrix, batch):
        return jax.vmap(loss_fn, in_axes=(0, None, 0))(w_matrix, batch, indices)

    centre_losses = np.asarray(losses(solutions, data))
    hessian = hessians(loss_fn, solutions, data)
    floor = curvature_floor * jnp.max(jnp.linalg.eigvalsh(hessian), axis=-1)
    shifted = nbeta * (hessian + floor[:, None, None] * jnp.eye(solutions.shape[1])[None])
    transforms, eigenvalues = inverse_sqrt(shifted, localization)
    eigenvalues = eigenvalues / nbeta - floor[:, None]

    def to_w(u):
        return solutions + jnp.einsum("kij,kj->ki", transforms, u)

    def potential_over_nbeta(u, batch):
        displacement = jnp.einsum("kij,kj->ki", transforms, u)
        localisation = 0.5 * localization * jnp.sum(jnp.square(displacement))
        return jnp.sum(losses(solutions + displacement, batch)) + localisation / nbeta

    posterior = TemperedPosterior(potential_over_nbeta, data, nbeta=nbeta, center=jnp.zeros_like(solutions))
    sampler = make_sampler("sgld", posterior, step_size=step_size, batch_size=None, mala_diagnostic=False)

    def record(state, info):
        return {"loss": info.loss, "loss_at_center": info.loss_at_center,
                "solution_loss": losses(to_w(state.position), data)}

    trace = sample(sampler, jnp.zeros_like(solutions), key, num_chains=num_chains, num_steps=num_steps,
                   num_burnin=num_burnin, thinning=thinning, record=record)
    solution_loss = np.asarray(trace.info["solution_loss"], np.float64)  # [chains, draws, K]
    results = tuple(estimators.llc(solution_loss[:, :, k], float(centre_losses[k]), nbeta)
                    for k in range(num_solutions))
    return BatchedLLC(np.array([r.mean for r in results]), np.array([r.std_error for r in results]), results,
                      np.asarray(eigenvalues))


_BACKTRACK = jnp.asarray([1.0, 0.5, 0.25, 0.1, 0.03, 0.01])


def polish(residual_fn, data, solutions, *, num_steps: int = 50, damping: float = 1e-6) -> np.ndarray:
    """Damped Gauss–Newton (minimum-norm) steps from each solution to the bottom of its basin.

    `residual_fn(w, data, k) -> r` [n] with L_k(w) = ½ mean(r²). Each step is
    w ← w − Jᵀ(J Jᵀ + μ I)⁻¹ r (J = ∂r/∂w, n × d, μ = `damping`): for an over-parameterised fit
    (n ≤ d) the smallest move that zeroes the linearised residuals, so the solution moves as little
    as possible; gradient descent is too slow along the nearly flat directions. The step length is
    the best of a few fractions (1, ½, ¼, …) of it; a step that lowers nothing is refused.
    """
    indices = jnp.arange(solutions.shape[0])
    jacobian = jax.jacfwd(residual_fn)

    def run(w, k):
        def step(w, _):
            residuals = residual_fn(w, data, k)
            matrix = jacobian(w, data, k)
            gram = matrix @ matrix.T + damping * jnp.eye(residuals.shape[0])
            direction = matrix.T @ jnp.linalg.solve(gram, residuals)
            proposals = w[None, :] - _BACKTRACK[:, None] * direction[None, :]
            values = jax.vmap(lambda v: jnp.sum(jnp.square(residual_fn(v, data, k))))(proposals)
            values = jnp.where(jnp.isfinite(values), values, jnp.inf)
            best = jnp.argmin(values)
            better = values[best] < jnp.sum(jnp.square(residuals))
            return jnp.where(better, proposals[best], w), None

        return jax.lax.scan(step, w, None, length=num_steps)[0]

    return np.asarray(jax.jit(jax.vmap(run))(jnp.asarray(solutions), indices))

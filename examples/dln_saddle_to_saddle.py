"""Deep linear network trained from small initialisation: saddle-to-saddle learning and its LLC.

The teacher W0 = U diag(s) Vᵀ has distinct singular values s_1 > s_2 > s_3; gradient descent on
L_n(W2, W1) = (1/2n) Σ |y_i − W2 W1 x_i|² / σ² from a small initialisation learns them one at a
time (Saxe et al. 2014; Jacot et al. 2021 "saddle-to-saddle"): the loss sits on a plateau near
a saddle of rank k, then drops while mode k + 1 is learned. `train` returns the checkpoints and
the step at which each mode reached half its final size (the "transition steps").
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import toy_models

NOISE_STD = 1.0


def teacher(key, widths, singular_values):
    """W0 = U diag(s) Vᵀ with random orthonormal U, V."""
    key_u, key_v = jax.random.split(key)
    output_dim, input_dim = widths[-1], widths[0]
    rank = len(singular_values)
    u, _ = jnp.linalg.qr(jax.random.normal(key_u, (output_dim, output_dim)))
    v, _ = jnp.linalg.qr(jax.random.normal(key_v, (input_dim, input_dim)))
    return (u[:, :rank] * jnp.asarray(singular_values)) @ v[:, :rank].T


def product(params):
    matrix = params[0]
    for layer in params[1:]:
        matrix = layer @ matrix
    return matrix


def loss(params, batch):
    """Mean negative log-likelihood of y ~ N(W x, σ² I) up to its constant."""
    residual = batch["y"] - batch["x"] @ product(params).T
    return 0.5 * jnp.mean(jnp.sum(jnp.square(residual), axis=-1)) / NOISE_STD**2


def make_data(key, target, num_data):
    key_x, key_noise = jax.random.split(key)
    x = jax.random.normal(key_x, (num_data, target.shape[1]))
    y = x @ target.T + NOISE_STD * jax.random.normal(key_noise, (num_data, target.shape[0]))
    return {"x": x, "y": y}


@partial(jax.jit, static_argnames=("num_steps",))
def _descend(params, data, learning_rate, num_steps):
    def body(params, _):
        gradient = jax.grad(loss)(params, data)
        params = jax.tree_util.tree_map(lambda w, g: w - learning_rate * g, params, gradient)
        return params, params

    return jax.lax.scan(body, params, None, length=num_steps)


def train(key, widths, data, *, init_scale, learning_rate, num_steps, num_checkpoints):
    """Full-batch gradient descent from N(0, init_scale²) weights; checkpoints at evenly spaced steps."""
    keys = jax.random.split(key, len(widths) - 1)
    params = tuple(init_scale * jax.random.normal(k, (out, inp))
                   for k, inp, out in zip(keys, widths[:-1], widths[1:]))
    _, path = _descend(params, data, learning_rate, num_steps)
    checkpoint_steps = np.linspace(0, num_steps, num_checkpoints + 1).astype(int)[1:]
    checkpoints = [tuple(np.asarray(layer[s - 1]) for layer in path) for s in checkpoint_steps]
    singular = np.stack([np.linalg.svd(np.asarray(product(c)), compute_uv=False) for c in checkpoints])
    return checkpoints, checkpoint_steps, singular


def transition_steps(steps, singular, rank):
    """The first checkpoint step at which mode j (j < rank) exceeds half its final value."""
    final = singular[-1]
    return [int(steps[np.argmax(singular[:, j] > 0.5 * final[j])]) for j in range(rank)]


def user_model(data, template):
    return toy_models.from_loss(loss, data, template, name="dln")

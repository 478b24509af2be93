"""A user's JAX loss of a parameter pytree, Equinox modules included, through the adapter."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toy_models


def linear_data(key, n=64):
    key_x, key_noise = jax.random.split(key)
    inputs = jax.random.normal(key_x, (n, 3))
    return {"x": inputs, "y": inputs @ jnp.asarray([1.0, -2.0, 0.5]) + 0.1 * jax.random.normal(key_noise, (n,))}


def test_dict_pytree_model_loss_and_gradient():
    data = linear_data(jax.random.key(0))

    def loss_fn(params, batch):
        prediction = batch["x"] @ params["weights"] + params["bias"]
        return 0.5 * jnp.mean(jnp.square(prediction - batch["y"]))

    w_star = {"weights": jnp.asarray([1.0, -2.0, 0.5]), "bias": jnp.asarray(0.0)}
    model = toy_models.from_loss(loss_fn, data, w_star, name="linear")
    assert (model.num_data, model.dimension, model.true_rlct) == (64, 4, None)
    assert float(model.loss(model.w_star, data)) == pytest.approx(float(loss_fn(w_star, data)))
    gradient = jax.grad(model.loss)(model.w_star, data)
    assert jax.tree_util.tree_structure(gradient) == jax.tree_util.tree_structure(w_star)


def test_equinox_module_static_parts_are_kept_out_of_the_parameters():
    mlp = eqx.nn.MLP(3, "scalar", width_size=5, depth=1, activation=jnp.tanh, key=jax.random.key(1))
    data = linear_data(jax.random.key(2))

    def loss_fn(module, batch):
        return 0.5 * jnp.mean(jnp.square(jax.vmap(module)(batch["x"]) - batch["y"]))

    model = toy_models.from_loss(loss_fn, data, mlp, name="mlp")
    assert model.dimension == 3 * 5 + 5 + 5 + 1
    assert float(model.loss(model.w_star, data)) == pytest.approx(float(loss_fn(mlp, data)), rel=1e-6)
    gradient = jax.jit(jax.grad(model.loss))(model.w_star, data)
    params, _ = eqx.partition(mlp, eqx.is_inexact_array)
    expected = jax.grad(lambda p: loss_fn(eqx.combine(p, eqx.partition(mlp, eqx.is_inexact_array)[1]), data))(params)
    for got, want in zip(jax.tree_util.tree_leaves(gradient), jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert isinstance(model.rebuild(model.w_star), eqx.nn.MLP)


def test_adapter_refuses_bad_input_with_clear_messages():
    data = linear_data(jax.random.key(0))
    w_star = jnp.zeros(3)
    with pytest.raises(ValueError, match="must return a scalar mean loss"):
        toy_models.from_loss(lambda w, b: b["x"] @ w, data, w_star)
    with pytest.raises(ValueError, match="not finite"):
        toy_models.from_loss(lambda w, b: jnp.log(jnp.sum(w)), data, w_star)
    with pytest.raises(ValueError, match=r"must take \(params, batch\)"):
        toy_models.from_loss(lambda w: jnp.sum(w), data, w_star)
    with pytest.raises(ValueError, match="share one leading"):
        toy_models.from_loss(lambda w, b: jnp.sum(w), {"x": jnp.zeros((4, 2)), "y": jnp.zeros(5)}, w_star)
    with pytest.raises(ValueError, match="no floating-point array leaves"):
        toy_models.from_loss(lambda w, b: 0.0, data, {"n": 3})

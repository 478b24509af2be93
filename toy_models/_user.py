"""Adapter for a user's own model: a JAX loss of a parameter pytree, its data and a point w*."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from toy_models._model import Params, Prior, num_data, parameter_count


def _is_parameter(leaf) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray)) and jnp.issubdtype(leaf.dtype, jnp.inexact)


def _is_none(leaf) -> bool:
    return leaf is None


def partition_parameters(tree: PyTree) -> tuple[PyTree, PyTree]:
    """Split a pytree (an Equinox module, a Flax state, a dict) into (parameters, static).

    Parameters are the floating-point array leaves; everything else (activation functions,
    integer buffers, Python scalars) goes to `static`. Both keep the tree's structure with None
    in the other's places, as `equinox.partition(tree, equinox.is_inexact_array)` does.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree, is_leaf=_is_none)
    mask = [_is_parameter(leaf) for leaf in leaves]
    parameters = treedef.unflatten([leaf if keep else None for leaf, keep in zip(leaves, mask)])
    static = treedef.unflatten([None if keep else leaf for leaf, keep in zip(leaves, mask)])
    return parameters, static


def combine_parameters(parameters: PyTree, static: PyTree) -> PyTree:
    """Inverse of `partition_parameters`."""
    parameter_leaves, treedef = jax.tree_util.tree_flatten(parameters, is_leaf=_is_none)
    static_leaves = jax.tree_util.tree_leaves(static, is_leaf=_is_none)
    return treedef.unflatten(
        [p if p is not None else s for p, s in zip(parameter_leaves, static_leaves, strict=True)]
    )


@dataclass(frozen=True, eq=False)
class UserModel:
    """A user's model in the registry's terms, with no known learning coefficient.

    `loss(w, batch)` is the user's mean loss over a batch, taken to be the empirical negative
    log-likelihood L_n(w) = −(1/n) Σ log p(x_i | w) when the batch is the whole data set;
    `w_star` holds only the floating-point leaves of the user's point (see
    `partition_parameters`), so samplers can differentiate it directly.
    """

    name: str
    w_star: Params = field(repr=False)
    data: PyTree = field(repr=False)
    num_data: int
    dimension: int
    prior: Prior | None
    _loss_fn: Callable[[Any, PyTree], Float[Array, ""]] = field(repr=False)
    _static: PyTree = field(repr=False)
    true_rlct: None = None
    multiplicity: None = None
    rlct_bounds: None = None
    reference: str = "user model"

    @property
    def label(self) -> str:
        return self.name

    def loss(self, w: Params, batch: PyTree) -> Float[Array, ""]:
        return self._loss_fn(combine_parameters(w, self._static), batch)

    def rebuild(self, w: Params) -> PyTree:
        """The user's own object (module, state) with parameters w."""
        return combine_parameters(w, self._static)


def from_loss(
    loss_fn: Callable[[Any, PyTree], Float[Array, ""]],
    data: PyTree,
    w_star: PyTree,
    *,
    name: str = "user",
    prior: Prior | None = None,
) -> UserModel:
    """Wrap `loss_fn(params, batch) -> scalar mean loss` for the samplers and estimators.

    `params` has the structure of `w_star` (an Equinox module, a Flax `nnx.State` with the
    graphdef closed over in `loss_fn`, a dict of arrays, an array). `data` is a pytree whose
    leaves share a leading data axis n. The loss is evaluated once on a few data points to
    fail early, with a clear message, if the signature or the output is wrong.
    """
    n = num_data(data)
    parameters, static = partition_parameters(w_star)
    dimension = parameter_count(parameters)
    if dimension == 0:
        raise ValueError("w_star has no floating-point array leaves: nothing to sample")
    probe_batch = jax.tree_util.tree_map(lambda leaf: leaf[: min(n, 4)], data)
    try:
        value = loss_fn(combine_parameters(parameters, static), probe_batch)
    except Exception as error:  # re-raised with the contract spelled out
        raise ValueError(
            f"loss_fn(w_star, batch) failed on a batch of {min(n, 4)} data points: {error!r}; "
            "it must take (params, batch) and return the mean loss over the batch"
        ) from error
    if jnp.shape(value) != ():
        raise ValueError(f"loss_fn must return a scalar mean loss, got shape {jnp.shape(value)}")
    if not bool(jnp.isfinite(value)):
        raise ValueError(f"loss_fn(w_star, batch) is not finite ({float(value)})")
    return UserModel(
        name=name,
        w_star=parameters,
        data=data,
        num_data=n,
        dimension=dimension,
        prior=prior,
        _loss_fn=loss_fn,
        _static=static,
    )

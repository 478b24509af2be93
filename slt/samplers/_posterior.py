"""The tempered, localised posterior and the conventions every sampler shares.

Conventions, written once:

- Inverse temperature: the likelihood enters as exp(−nβ L_n(w)); `nbeta` is the product nβ,
  always with n the size of the whole data set (never the batch size). Watanabe's β* = 1/log n
  is `watanabe_beta(n)`.
- Step size: every Langevin-type update in the workbench is

      w ← w + ε ∇ log p(w) + √(2ε) ξ,   ξ ~ N(0, I)

  (blackjax's convention: the Euler–Maruyama step of dw = ∇ log p dt + √2 dB over time ε).
  Welling & Teh and devinterp write w ← w + (ε'/2) ∇ log p + N(0, ε'); their ε' is 2ε here.
  Use `langevin_step` rather than writing the update again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from math import log

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from toy_models import Prior, num_data

Params = PyTree[Float[Array, "..."]]


def watanabe_beta(n: int) -> float:
    """Watanabe's inverse temperature β* = 1 / log n (WBIC, and the LLC's default)."""
    if n < 2:
        raise ValueError(f"watanabe_beta needs n >= 2, got {n}")
    return 1.0 / log(n)


def langevin_step(
    position: Params, grad_log_density: Params, step_size: float, key: PRNGKeyArray
) -> Params:
    """w + ε ∇log p(w) + √(2ε) ξ on a pytree, one normal draw per leaf (the module's convention)."""
    leaves, treedef = jax.tree_util.tree_flatten(position)
    keys = treedef.unflatten(list(jax.random.split(key, len(leaves))))
    return jax.tree_util.tree_map(
        lambda w, g, k: w + step_size * g + jnp.sqrt(2.0 * step_size) * jax.random.normal(k, w.shape, w.dtype),
        position,
        grad_log_density,
        keys,
    )


def squared_distance(a: Params, b: Params) -> Float[Array, ""]:
    return sum(jnp.sum(jnp.square(x - y)) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@dataclass(frozen=True, eq=False)
class TemperedPosterior:
    """p(w) ∝ exp(−nβ L_n(w) − (γ/2) ||w − w*||²) φ(w).

    Attributes
    ----------
    loss_fn : `loss_fn(w, batch)`, the mean negative log-likelihood over a batch, so that
        L_n(w) = loss_fn(w, data).
    data : pytree whose leaves share a leading axis of size n = `num_data`.
    nbeta : nβ > 0, with n the full data size.
    center : w*, the point the posterior is localised around (and the LLC is measured at).
    localization : γ >= 0; 0 removes the localisation term.
    prior : φ, or None for a flat prior (the usual choice for the LLC).
    data_source : `data_source(key, B)` draws B fresh data from the population (a registry
        model's `sample_expected_data`, or its noisy `sample_data`), or None (the default:
        minibatches are drawn from `data`).

    With a minibatch b of size B the potential uses L_b, the mean loss over the batch, so
    nβ L_b is an unbiased estimate of nβ L_n. With a `data_source` every minibatch is fresh data:
    nβ L_b is then an unbiased estimate of nβ L(w) = nβ (K(w) + S), the chain samples
    exp(−nβ K(w)) φ(w) (with the same SGLD bias as from any minibatch noise), and nβ is a free
    inverse temperature t, not bounded by the size of a data set. `data` is then only a reference
    sample that fixes the shapes; every step needs a batch size (`full_batch(None)` raises).

    A posterior is a JAX pytree: `data`, `nbeta`, `center` and `localization` are its leaves,
    and `loss_fn`, `prior` and whether γ is nonzero are static. Passed as an argument to a
    jitted function it is traced, so one compiled sampler serves every data set, temperature
    and centre of the same shapes (`slt.run._driver` relies on this to compile once per model).
    """

    loss_fn: Callable[[Params, PyTree], Float[Array, ""]] = field(repr=False)
    data: PyTree = field(repr=False)
    nbeta: float
    center: Params = field(repr=False)
    localization: float = 0.0
    prior: Prior | None = None
    data_source: Callable[[PRNGKeyArray, int], PyTree] | None = field(default=None, repr=False)
    num_data: int = field(init=False)
    localized: bool = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "num_data", num_data(self.data))
        if not _is_traced(self.nbeta) and not (self.nbeta > 0):
            raise ValueError(f"nbeta must be > 0, got {self.nbeta}")
        if not _is_traced(self.localization) and not (self.localization >= 0):
            raise ValueError(f"localization must be >= 0, got {self.localization}")
        object.__setattr__(self, "localized", _is_traced(self.localization) or bool(self.localization != 0))
        concrete = [leaf for leaf in jax.tree_util.tree_leaves(self.center) if not isinstance(leaf, jax.core.Tracer)]
        if not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in concrete):  # a traced centre is checked by the driver
            raise ValueError("center (w*) has non-finite entries")

    @classmethod
    def from_model(cls, model, data: PyTree | None = None, *, nbeta: float | None = None,
                   localization: float = 0.0, center: Params | None = None, use_prior: bool = False):
        """The posterior of a registry `ToyModel` or `UserModel`.

        `data` defaults to the user model's own data; `nbeta` to n β* = n / log n; `center` to
        the model's w*; the model's prior is included only with `use_prior=True`.
        """
        if data is None:
            data = getattr(model, "data", None)
            if data is None:
                raise ValueError("data is required for a registry model: pass model.sample_data(key, n)")
        n = num_data(data)
        return cls(
            loss_fn=model.loss,
            data=data,
            nbeta=n * watanabe_beta(n) if nbeta is None else nbeta,
            center=model.w_star if center is None else center,
            localization=localization,
            prior=model.prior if use_prior else None,
        )

    def batch(self, indices: Int[Array, " b"]) -> PyTree:
        return jax.tree_util.tree_map(lambda leaf: leaf[indices], self.data)

    @property
    def population(self) -> bool:
        """Whether minibatches are fresh population data (a `data_source`), not drawn from `data`."""
        return self.data_source is not None

    def full_batch(self, batch_size: int | None) -> bool:
        """Whether a step with this batch size uses the whole of `data` (no resampling)."""
        if self.population:
            if batch_size is None:
                raise ValueError("a population posterior (data_source) needs a batch size, not the full data")
            return False
        return batch_size is None or batch_size == self.num_data

    def minibatch(self, key: PRNGKeyArray, batch_size: int | None) -> PyTree:
        """What one step with this batch size sees: the whole of `data` (`full_batch`), else a
        fresh `sample_batch`. Every minibatch kernel and pilot draws its batches here."""
        return self.data if self.full_batch(batch_size) else self.sample_batch(key, batch_size)

    def sample_batch(self, key: PRNGKeyArray, batch_size: int) -> PyTree:
        """A minibatch of `batch_size` indices drawn uniformly with replacement (`randint`), or
        `batch_size` fresh data from the `data_source`."""
        if self.population:
            return self.data_source(key, batch_size)
        return self.batch(jax.random.randint(key, (batch_size,), 0, self.num_data))

    def potential(self, w: Params, batch: PyTree) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """(U(w), L_b(w)) with U = nβ L_b(w) + (γ/2)||w − w*||² − log φ(w) = −log p(w) + const."""
        loss = self.loss_fn(w, batch)
        return self.potential_given_loss(w, loss), loss

    def potential_given_loss(self, w: Params, loss: Float[Array, ""]) -> Float[Array, ""]:
        """U(w) from an already computed L_b(w): no forward pass (a kernel that has the loss from
        its gradient evaluation reuses it, e.g. the MALA check)."""
        value = self.nbeta * loss
        if self.localized:
            value = value + 0.5 * self.localization * squared_distance(w, self.center)
        if self.prior is not None:
            value = value - self.prior.log_density(w)
        return value

    def grad_log_density(self, w: Params, batch: PyTree) -> tuple[Params, Float[Array, ""]]:
        """(∇ log p(w) estimated on `batch`, L_b(w)) in one pass."""
        (_, loss), grad = jax.value_and_grad(self.potential, has_aux=True)(w, batch)
        return jax.tree_util.tree_map(jnp.negative, grad), loss


def _is_traced(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def _flatten_posterior(posterior: TemperedPosterior):
    children = (posterior.data, posterior.nbeta, posterior.center, posterior.localization)
    return children, (posterior.loss_fn, posterior.prior, posterior.localized, posterior.data_source)


def _unflatten_posterior(static, children) -> TemperedPosterior:
    # Bypasses __init__: leaves may be tracers or placeholders (vmap, tree_map) that the checks
    # would reject; they were checked when the concrete posterior was built.
    loss_fn, prior, localized, data_source = static
    posterior = object.__new__(TemperedPosterior)
    for name, value in zip(("data", "nbeta", "center", "localization"), children):
        object.__setattr__(posterior, name, value)
    object.__setattr__(posterior, "loss_fn", loss_fn)
    object.__setattr__(posterior, "prior", prior)
    object.__setattr__(posterior, "localized", localized)
    object.__setattr__(posterior, "data_source", data_source)
    leaves = jax.tree_util.tree_leaves(posterior.data)
    object.__setattr__(posterior, "num_data", int(leaves[0].shape[0]) if leaves and hasattr(leaves[0], "shape") else 0)
    return posterior


jax.tree_util.register_pytree_node(TemperedPosterior, _flatten_posterior, _unflatten_posterior)

"""The frozen `ToyModel`: a likelihood in JAX with its data sampler, prior, true point and known λ."""

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from math import lgamma, log, pi
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

Params = PyTree[Float[Array, "..."]]


class RegressionData(NamedTuple):
    """n input–target pairs; every leaf has the data index as its leading axis."""

    inputs: Float[Array, "n input_dim"]
    targets: Float[Array, "n output_dim"]


def num_data(data: PyTree) -> int:
    """The common leading dimension n of a data pytree; raises if the leaves disagree."""
    sizes = {leaf.shape[0] if jnp.ndim(leaf) else None for leaf in jax.tree_util.tree_leaves(data)}
    if not sizes or None in sizes or len(sizes) != 1:
        raise ValueError(
            "data must be a pytree of arrays that share one leading (data-index) axis; "
            f"got leading sizes {sorted(str(s) for s in sizes)}"
        )
    return sizes.pop()


def parameter_count(params: Params) -> int:
    return sum(int(jnp.size(leaf)) for leaf in jax.tree_util.tree_leaves(params))


@dataclass(frozen=True)
class GaussianPrior:
    """φ(w) = Π_i N(w_i; 0, scale²) over every leaf of the parameter pytree."""

    scale: float = 1.0

    def log_density(self, params: Params) -> Float[Array, ""]:
        leaves = jax.tree_util.tree_leaves(params)
        squares = sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)
        count = sum(leaf.size for leaf in leaves)
        return -0.5 * squares / self.scale**2 - 0.5 * count * log(2 * pi * self.scale**2)

    def sample(self, key: PRNGKeyArray, template: Params) -> Params:
        leaves, treedef = jax.tree_util.tree_flatten(template)
        keys = jax.random.split(key, len(leaves))
        return treedef.unflatten(
            [self.scale * jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)]
        )


@dataclass(frozen=True)
class PowerGaussianPrior:
    """φ(w) = Π_j c_j |w_j|^(h_j) exp(−w_j² / (2 s²)) on a parameter vector w.

    The normalising constant is c_j = 1 / ((2 s²)^((h_j+1)/2) Γ((h_j+1)/2)), so φ is a proper
    density; h_j = 0 gives N(0, s²). Near w_j = 0 the prior vanishes like |w_j|^(h_j), which
    changes the RLCT of a normal crossing to min_j (h_j + 1)/(2 k_j). Sampling uses
    w_j² / (2 s²) ~ Gamma((h_j + 1)/2) with a random sign.
    """

    powers: tuple[int, ...]
    scale: float = 1.0

    def log_density(self, params: Float[Array, " d"]) -> Float[Array, ""]:
        total = -0.5 * jnp.sum(jnp.square(params)) / self.scale**2
        for j, h in enumerate(self.powers):
            half = (h + 1) / 2
            total = total - half * log(2 * self.scale**2) - lgamma(half)
            if h:  # h = 0 contributes no log|w| term (and no 0·log 0 at the origin)
                total = total + h * jnp.log(jnp.abs(params[j]))
        return total

    def sample(self, key: PRNGKeyArray, template: Float[Array, " d"]) -> Float[Array, " d"]:
        key_radius, key_sign = jax.random.split(key)
        half = (jnp.asarray(self.powers, template.dtype) + 1) / 2
        radius_squared = 2 * self.scale**2 * jax.random.gamma(key_radius, half, dtype=template.dtype)
        sign = jax.random.rademacher(key_sign, template.shape, dtype=template.dtype)
        return sign * jnp.sqrt(radius_squared)

    def sampling_coordinates(self) -> "PowerPriorCoordinates | None":
        """The coordinates SGLD should run in (`PowerPriorCoordinates`), or None where w itself
        serves (no h_j in (0, 1])."""
        coordinates = PowerPriorCoordinates(self.powers, self.scale)
        return coordinates if coordinates.flattened else None


@dataclass(frozen=True)
class PowerPriorCoordinates:
    """Sampling coordinates for `PowerGaussianPrior`: u_j = sign(w_j) |w_j|^(h_j+1) where
    0 < h_j <= 1, u_j = w_j elsewhere; as a prior, the law of u.

    Why: the prior's score ∂_j log φ = h_j / w_j − w_j / s² has E_φ[(h_j / w_j)²] = ∞ for
    h_j <= 1 (∫ |w|^(h−2) dw diverges at 0), so SGLD's drift is unbounded where the posterior has
    mass and its step-size bias cannot be predicted (`slt.estimate` marks such a run
    unreliable: heavy-tailed gradient). Since |w|^h dw = du / (h + 1), the law of u_j is

        φ_u(u_j) = c_j / (h_j + 1) · exp(−|u_j|^(2/(h_j+1)) / (2 s²)),

    whose score −|u_j|^((1−h_j)/(1+h_j)) sign(u_j) / ((h_j + 1) s²) is bounded for h_j <= 1
    (for h_j = 1 a Laplace law of scale 2s²). A posterior expectation of a function of w, such as
    E_β[L_n(w)], is the same in either coordinates, so the LLC is unchanged; the localisation
    term (γ/2)||u − u*||² is not, so use these coordinates with γ = 0.

    Limitation: the likelihood's gradient picks up dw_j/du_j = |u_j|^(−h_j/(h_j+1)) / (h_j + 1),
    bounded only where ∂L/∂w_j vanishes at w_j = 0 at least like |w_j|^(h_j). For a normal
    crossing it does on the population; on a data set the cross term −f(w) S_xy / n leaves a
    pole of size ~ 1/√n.
    """

    powers: tuple[int, ...]
    scale: float = 1.0

    @property
    def flattened(self) -> tuple[int, ...]:
        """The coordinates j that are changed (0 < h_j <= 1)."""
        return tuple(j for j, h in enumerate(self.powers) if 0 < h <= 1)

    def _exponents(self, like: Array) -> Float[Array, "... d"]:
        """h_j + 1 on the changed coordinates, else 1, shaped to broadcast against `like` [..., d]."""
        exponents = jnp.asarray([h + 1 if j in self.flattened else 1 for j, h in enumerate(self.powers)], like.dtype)
        return exponents.reshape((1,) * (jnp.ndim(like) - 1) + (-1,))

    def to_model(self, u: Float[Array, "... d"]) -> Float[Array, "... d"]:
        """w(u) = sign(u) |u|^(1/(h+1)) on the changed coordinates (u's last axis is j)."""
        return jnp.sign(u) * jnp.abs(u) ** (1 / self._exponents(u))

    def from_model(self, w: Float[Array, "... d"]) -> Float[Array, "... d"]:
        """u(w) = sign(w) |w|^(h+1) on the changed coordinates (w's last axis is j)."""
        return jnp.sign(w) * jnp.abs(w) ** self._exponents(w)

    def log_density(self, u: Float[Array, " d"]) -> Float[Array, ""]:
        """log φ_u(u) = log φ(w(u)) + Σ_j log |dw_j/du_j|, in closed form (finite at u_j = 0)."""
        total = 0.0
        for j, h in enumerate(self.powers):
            half = (h + 1) / 2
            total = total - half * log(2 * self.scale**2) - lgamma(half)
            if j in self.flattened:
                total = total - log(h + 1) - 0.5 * jnp.abs(u[j]) ** (2 / (h + 1)) / self.scale**2
            else:
                total = total - 0.5 * jnp.square(u[j]) / self.scale**2
                if h:
                    total = total + h * jnp.log(jnp.abs(u[j]))
        return total

    def sample(self, key: PRNGKeyArray, template: Float[Array, " d"]) -> Float[Array, " d"]:
        return self.from_model(PowerGaussianPrior(self.powers, self.scale).sample(key, template))


Prior = GaussianPrior | PowerGaussianPrior | PowerPriorCoordinates


@dataclass(frozen=True, eq=False)
class ToyModel:
    """One instance of a model family with a known singularity.

    The model is p(datum | w) with per-datum log-likelihood `log_likelihood(w, datum)`; data
    come from `sample_data(key, n)` (truth at `w_star`). The empirical loss is
    L_n(w) = −(1/n) Σ_i log p(x_i | w) and the population loss, where analytic, is the
    KL divergence K(w) = L(w) − L(w_star) >= 0. `true_rlct` and `multiplicity` are λ and m of
    the global posterior under `prior`, exact, from `reference`; None where unknown, in which
    case `rlct_bounds` may hold (lower, upper) bounds (either may be None).

    `sample_expected_data(key, B)`, where given, draws B fresh inputs with the label noise
    integrated out (for Gaussian regression: targets f(w*, x)). Its mean loss L_B(w) satisfies
    E[L_B(w) − L_B(w*)] = K(w) and E[∇L_B(w)] = ∇K(w) with no label-noise variance, so SGLD on
    it samples exp(−t K(w)) φ(w) at any t (`slt.TemperedPosterior(data_source=...)`).
    """

    name: str
    params: Mapping[str, Any]
    dimension: int
    log_likelihood: Callable[[Params, PyTree], Float[Array, ""]] = field(repr=False)
    sample_data: Callable[[PRNGKeyArray, int], PyTree] = field(repr=False)
    prior: Prior
    w_star: Params = field(repr=False)
    population_loss: Callable[[Params], Float[Array, ""]] | None = field(repr=False)
    true_rlct: Fraction | None
    multiplicity: int | None
    reference: str
    rlct_bounds: tuple[Fraction | None, Fraction | None] | None = None
    notes: str = ""
    sample_expected_data: Callable[[PRNGKeyArray, int], PyTree] | None = field(default=None, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @property
    def label(self) -> str:
        """`family(k=v, ...)`, the registry's name for this instance."""
        def show(value):
            return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)

        return f"{self.name}({', '.join(f'{k}={show(v)}' for k, v in self.params.items())})"

    def pointwise_log_likelihood(self, w: Params, data: PyTree) -> Float[Array, " n"]:
        """log p(x_i | w) for every datum, shape (n,)."""
        return jax.vmap(self.log_likelihood, in_axes=(None, 0))(w, data)

    def loss(self, w: Params, data: PyTree) -> Float[Array, ""]:
        """Empirical loss L_n(w) = −(1/n) Σ_i log p(x_i | w) on a batch or the whole data set."""
        return -jnp.mean(self.pointwise_log_likelihood(w, data))

    def sample_prior(self, key: PRNGKeyArray) -> Params:
        return self.prior.sample(key, self.w_star)

    def in_sampling_coordinates(self) -> "ToyModel":
        """This model in its prior's sampling coordinates u (`PowerGaussianPrior.sampling_coordinates`),
        or itself where the prior has none. The likelihood and population loss are composed with
        w(u), the prior is the law of u, and w_star is u(w*); label, λ and data are the same.
        One model per instance (cached), so compiled samplers are reused across calls."""
        cached = _SAMPLING_MODELS.get(self)
        if cached is not None:
            return cached
        coordinates = getattr(self.prior, "sampling_coordinates", lambda: None)()
        if coordinates is None:
            return self
        log_likelihood, population_loss = self.log_likelihood, self.population_loss  # not self: see the cache
        to_model = coordinates.to_model
        sampled = replace(
            self,
            log_likelihood=lambda u, datum: log_likelihood(to_model(u), datum),
            prior=coordinates,
            w_star=coordinates.from_model(self.w_star),
            population_loss=None if population_loss is None else (lambda u: population_loss(to_model(u))),
        )
        _SAMPLING_MODELS[self] = sampled
        return sampled

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (λ as an exact string and as a float)."""
        def fraction(value):
            return None if value is None else str(value)

        return {
            "model": self.label,
            "name": self.name,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
            "dimension": self.dimension,
            "true_rlct": fraction(self.true_rlct),
            "true_rlct_float": None if self.true_rlct is None else float(self.true_rlct),
            "multiplicity": self.multiplicity,
            "rlct_bounds": None if self.rlct_bounds is None else [fraction(b) for b in self.rlct_bounds],
            "reference": self.reference,
            "notes": self.notes,
        }


# model -> the same model in its sampling coordinates; weak keys, and the values hold the model's
# functions, not the model, so an unused model is still freed.
_SAMPLING_MODELS: "weakref.WeakKeyDictionary[ToyModel, ToyModel]" = weakref.WeakKeyDictionary()

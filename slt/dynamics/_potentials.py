"""Loss landscapes for the dynamics comparison: 2-D potentials with exact structure, and any model.

A `Potential` bundles

- `population_loss(w)`: the exact loss K(w) >= 0 (Brownian motion and the Gibbs quadrature use it);
- `loss_fn(w, batch)` and `sample_data(key, n)`: a per-example loss with a real data set, so that
  minibatch SGD has the noise of real minibatches (mean over the batch, as in `toy_models`);
- `bounds`: a box ((lo_1, hi_1), (lo_2, hi_2)); every dynamics reflects into it, and the Gibbs
  posterior is exp(−K/T) on it (a uniform prior on the box);
- `singular_distance(w)`: the distance to the singular part of the zero set, and `basin(w)`: 0 for
  the singular (global) basin, 1 for the other basin (regular or local), where there is one.

Every 2-D potential here is Gaussian regression through a map g: R² → R^k,

    y = x g(w) + ξ,  x ~ N(0, 1),  ξ ~ N(0, σ² I_k),  truth g(w*) = 0,

so the per-example loss is ℓ(w; x, y) = ||y − x g(w)||² / (2σ²) (+ a constant) and
K(w) = ||g(w)||² / (2σ²) with σ = `toy_models.NOISE_STD` = 1. On the zero set of g the covariance of
the per-example gradients equals σ² times the Hessian of K (the Fisher information), which fixes the
effective temperature of SGD (see `slt.dynamics.sgd_temperature`).
"""

from dataclasses import dataclass, field
from math import log, pi
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

import toy_models
from toy_models import NOISE_STD, RegressionData

Params = PyTree[Float[Array, "..."]]
Bounds = tuple[tuple[float, float], ...]

SINGULAR_BASIN = 0
OTHER_BASIN = 1


@dataclass(frozen=True, eq=False)
class Potential:
    """A loss landscape with what the dynamics and the measures need; see the module docstring.

    Attributes
    ----------
    name : a label, e.g. ``normal_crossing(powers=1,1)``.
    population_loss : K(w), the exact (data-free) loss.
    loss_fn : `loss_fn(w, batch)`, the mean per-example loss over a batch, or None.
    sample_data : `sample_data(key, n)`, n data whose empirical loss estimates K, or None.
    center : w*, a point of the global minimum set (for `info.loss_at_center`).
    bounds : the box the dynamics reflect into, or None (no reflection; not 2-D quadrature).
    singular_distance : distance from w to the singular set, or None.
    basin : 0 (singular / global basin) or 1 (regular / local basin) at w, or None.
    residual_map : g(w) ∈ R^k of the regression y = x g(w) + ξ (x a scalar), or None; with it the
        per-example gradients' covariance has a closed form (`slt.dynamics.sgd_sde`).
    description : what the landscape is, in words, with its formula.
    """

    name: str
    population_loss: Callable[[Params], Float[Array, ""]] = field(repr=False)
    loss_fn: Callable[[Params, PyTree], Float[Array, ""]] | None = field(repr=False)
    sample_data: Callable[[PRNGKeyArray, int], PyTree] | None = field(repr=False)
    center: Params = field(repr=False)
    bounds: Bounds | None = None
    singular_distance: Callable[[Params], Float[Array, ""]] | None = field(default=None, repr=False)
    basin: Callable[[Params], Int[Array, ""]] | None = field(default=None, repr=False)
    description: str = ""
    residual_map: Callable[[Params], Float[Array, " k"]] | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.bounds is not None:
            bounds = tuple((float(lo), float(hi)) for lo, hi in self.bounds)
            if any(not (lo < hi) for lo, hi in bounds):
                raise ValueError(f"bounds must be (lo, hi) pairs with lo < hi, got {self.bounds}")
            object.__setattr__(self, "bounds", bounds)

    @property
    def dimension(self) -> int:
        return toy_models.parameter_count(self.center)

    def require_box(self, what: str) -> Bounds:
        """The 2-D box, or a ValueError saying that `what` needs one."""
        if self.bounds is None or len(self.bounds) != 2 or self.dimension != 2:
            raise ValueError(f"{what} needs a 2-D potential with bounds; {self.name} has none")
        return self.bounds


def reflect_into_box(position: Float[Array, " d"], bounds: Bounds) -> tuple[Float[Array, " d"], Float[Array, " d"]]:
    """Fold `position` into the box by mirror reflection at its faces.

    Returns (reflected position, sign) where sign is −1 on coordinates reflected an odd number of
    times (a velocity there changes sign) and +1 elsewhere.
    """
    lower = jnp.asarray([lo for lo, _ in bounds], position.dtype)
    width = jnp.asarray([hi - lo for lo, hi in bounds], position.dtype)
    folds = jnp.floor((position - lower) / width)
    offset = jnp.mod(position - lower, 2.0 * width)
    reflected = lower + jnp.where(offset > width, 2.0 * width - offset, offset)
    sign = jnp.where(jnp.mod(folds, 2.0) == 1.0, -1.0, 1.0).astype(position.dtype)
    return reflected, sign


def smootherstep(t: Float[Array, "..."]) -> Float[Array, "..."]:
    """S(t) = 6t⁵ − 15t⁴ + 10t³ on [0, 1], 0 below and 1 above: C², exactly flat outside (0, 1)."""
    t = jnp.clip(t, 0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


def root_smootherstep(t: Float[Array, "..."]) -> Float[Array, "..."]:
    """√S(t) = t^(3/2) √(6t² − 15t + 10), differentiable (C¹) with finite gradients at 0 and 1."""
    t = jnp.clip(t, 0.0, 1.0)
    return jnp.power(t, 1.5) * jnp.sqrt(t * (6.0 * t - 15.0) + 10.0)


def _regression_potential(name, residual_map, num_outputs, bounds, singular_distance, basin, description):
    """The Gaussian regression y = x g(w) + ξ through `residual_map` g (truth g(w*) = 0 at w* = 0)."""
    noise_variance = NOISE_STD**2

    def population_loss(w):
        return 0.5 * jnp.sum(jnp.square(residual_map(w))) / noise_variance

    def loss_fn(w, batch: RegressionData):
        predictions = batch.inputs * residual_map(w)[None, :]
        squared = jnp.sum(jnp.square(batch.targets - predictions), axis=-1)
        return jnp.mean(0.5 * squared / noise_variance) + 0.5 * num_outputs * log(2 * pi * noise_variance)

    def sample_data(key, n: int) -> RegressionData:
        key_inputs, key_noise = jax.random.split(key)
        inputs = jax.random.normal(key_inputs, (n, 1))
        return RegressionData(inputs, NOISE_STD * jax.random.normal(key_noise, (n, num_outputs)))

    return Potential(
        name=name,
        population_loss=population_loss,
        loss_fn=loss_fn,
        sample_data=sample_data,
        center=jnp.zeros(2),
        bounds=bounds,
        singular_distance=singular_distance,
        basin=basin,
        description=description,
        residual_map=residual_map,
    )


def _axes_distance(w):
    return jnp.minimum(jnp.abs(w[0]), jnp.abs(w[1]))


def normal_crossing(powers=(1, 1), half_width: float = 1.0) -> Potential:
    """K(w) = (w1^k1 w2^k2)² / 2 on the box [−a, a]², from the registry's `normal_crossing(powers)`.

    The loss, data and K are the registry model's own (regression y = x w1^k1 w2^k2 + ξ). The
    singular set is the cross w1 w2 = 0 (distance min(|w1|, |w2|)); its crossing point 0 is the
    most singular point (λ = 1/(2 max k), Gibbs mass concentrates there as T → 0). With the
    uniform prior on [−1, 1]² and powers (1, 1), the Gibbs marginal is
    p(w1) ∝ erf(c|w1|)/(c|w1|), c = 1/√(2T) (the seed discussion's formula with nβ = 1/(2T)).
    """
    model = toy_models.get("normal_crossing", powers=tuple(powers))
    if model.dimension != 2:
        raise ValueError(f"normal_crossing potential is 2-D: powers needs 2 entries, got {tuple(powers)}")
    if not half_width > 0:
        raise ValueError(f"half_width must be > 0, got {half_width}")
    return Potential(
        name=model.label,
        population_loss=model.population_loss,
        loss_fn=model.loss,
        sample_data=model.sample_data,
        center=model.w_star,
        bounds=((-half_width, half_width), (-half_width, half_width)),
        singular_distance=_axes_distance,
        basin=None,
        description=f"K = (w1^{powers[0]} w2^{powers[1]})²/2 on [−{half_width:g}, {half_width:g}]² (registry {model.label})",
        residual_map=lambda w: jnp.prod(w ** jnp.asarray(powers))[None],
    )


def two_basin(well_center: float = 1.4, well_curvature: float = 1.0, gate: tuple[float, float] = (0.5, 1.0)) -> Potential:
    """A singular basin and a regular basin at equal loss K = 0, joined smoothly.

    g(w) = ( w1 w2 s(w),  √κ (w1 − c)(1 − s(w)),  √κ w2 (1 − s(w)) ),  s(w) = 1 − S((w1 − a)/(b − a)),

    with S the C² smootherstep, gate (a, b), well centre (c, 0) and curvature κ; K = ||g||²/2.
    For w1 <= a, K = (w1 w2)²/2 exactly (the normal crossing: λ = 1/2, m = 2); for w1 >= b,
    K = κ||w − (c, 0)||²/2 exactly (a regular 2-D well: λ = 1, m = 1). Both minima have K = 0;
    the gate region a < w1 < b raises a ridge between them (lowest saddle about 0.11 above
    both minima for the defaults, on the grid: `barrier_height`). Box: w1 ∈ [−1, c + 1], w2 ∈ [−1, 1].
    Basin 0 (singular) is w1 < (a + b)/2, basin 1 (regular) the rest.
    """
    low, high = gate
    if not (low < high < well_center):
        raise ValueError(f"two_basin needs gate = (a, b) with a < b < well_center, got {gate}, {well_center}")
    if not well_curvature > 0:
        raise ValueError(f"well_curvature must be > 0, got {well_curvature}")
    root_curvature = float(np.sqrt(well_curvature))

    def residual_map(w):
        singular_weight = 1.0 - smootherstep((w[0] - low) / (high - low))
        regular_weight = 1.0 - singular_weight
        return jnp.stack([
            w[0] * w[1] * singular_weight,
            root_curvature * (w[0] - well_center) * regular_weight,
            root_curvature * w[1] * regular_weight,
        ])

    midline = 0.5 * (low + high)

    def singular_distance(w):
        return jnp.where(w[0] <= low, _axes_distance(w), jnp.abs(w[1]) + jnp.maximum(w[0] - low, 0.0))

    def basin(w):
        return jnp.where(w[0] < midline, SINGULAR_BASIN, OTHER_BASIN)

    return _regression_potential(
        f"two_basin(c={well_center:g}, kappa={well_curvature:g})",
        residual_map, 3, ((-1.0, well_center + 1.0), (-1.0, 1.0)), singular_distance, basin,
        f"singular cross K = (w1 w2)²/2 for w1 <= {low:g}, regular well K = {well_curvature:g}||w − ({well_center:g}, 0)||²/2 "
        f"for w1 >= {high:g}, C² gate between; both at K = 0",
    )


def local_minimum(well_center=(1.0, 1.0), well_depth: float = 0.15, radii: tuple[float, float] = (0.15, 0.5)) -> Potential:
    """A local minimum with K = K0 > 0 beside the global singular set K = 0.

    K(w) = s(w) (w1 w2)²/2 + (1 − s(w)) (K0 + ||w − c||²/2),   s(w) = S((||w − c|| − r1)/(r2 − r1)),

    written as ||g||²/2 with g = (w1 w2 √s, (w − c) √(1 − s), √(2 K0) √(1 − s)) (C¹: S ~ t³ at
    its ends). Outside ||w − c|| >= r2 it is the normal crossing (global minimum 0 on the axes);
    inside ||w − c|| <= r1 a regular local well at height K0 = `well_depth`; the annulus between
    is a rim (a linear blend, never below min of the two). With the defaults the lowest saddle
    between the well and the cross is about 0.195, a barrier of about 0.045 above K0 (the grid's
    value: `barrier_height`, or `slt dynamics landscape local_minimum`), and the largest Hessian
    eigenvalue on the box is about 50, so gradient steps need η < 0.04 to stay stable there. Box [−1, 1.6]². Basin 1 (local) is ||w − c|| < (r1 + r2)/2.
    """
    center = jnp.asarray(well_center, dtype=float)
    inner, outer = radii
    if center.shape != (2,):
        raise ValueError(f"well_center must have 2 entries, got {well_center}")
    if not (0 < inner < outer):
        raise ValueError(f"radii must satisfy 0 < r1 < r2, got {radii}")
    if not well_depth > 0:
        raise ValueError(f"well_depth must be > 0, got {well_depth}")
    depth_term = float(np.sqrt(2.0 * well_depth))

    def radius(w):
        return jnp.sqrt(jnp.sum(jnp.square(w - center)) + 1e-30)

    def residual_map(w):
        # Square roots of the weights blend the losses linearly: K = s K_cross + (1 − s) K_well,
        # so the rim never dips below min(K_cross, K_well). √S is C¹ (S ~ 10 t³ at the ends).
        t = (radius(w) - inner) / (outer - inner)
        root_singular = root_smootherstep(t)
        root_local = root_smootherstep(1.0 - t)  # 1 − S(t) = S(1 − t)
        return jnp.stack([
            w[0] * w[1] * root_singular,
            (w[0] - center[0]) * root_local,
            (w[1] - center[1]) * root_local,
            depth_term * root_local,
        ])

    midline = 0.5 * (inner + outer)

    def basin(w):
        return jnp.where(radius(w) < midline, OTHER_BASIN, SINGULAR_BASIN)

    return _regression_potential(
        f"local_minimum(K0={well_depth:g})",
        residual_map, 4, ((-1.0, 1.6), (-1.0, 1.6)), _axes_distance, basin,
        f"normal crossing K = (w1 w2)²/2 with a local well K = {well_depth:g} + ||w − c||²/2 at c = "
        f"({float(center[0]):g}, {float(center[1]):g}), radii {inner:g}..{outer:g}",
    )


def from_model(model, bounds: Bounds | None = None) -> Potential:
    """Any registry `ToyModel` (or a model with `loss`, `sample_data`, `w_star`) as a potential.

    K is the model's `population_loss` (the KL divergence; None-valued models cannot run Brownian
    motion or the quadrature). SGD uses `model.loss` on minibatches of `model.sample_data(key, n)`.
    """
    population_loss = getattr(model, "population_loss", None)
    if population_loss is None:
        def population_loss(w):
            raise ValueError(f"{getattr(model, 'label', model)} has no population_loss: use SGD on its data")
    return Potential(
        name=getattr(model, "label", str(model)),
        population_loss=population_loss,
        loss_fn=model.loss,
        sample_data=getattr(model, "sample_data", None),
        center=model.w_star,
        bounds=bounds,
        description=f"registry model {getattr(model, 'label', model)}",
    )


POTENTIALS: dict[str, Callable[..., Potential]] = {
    "normal_crossing": normal_crossing,
    "two_basin": two_basin,
    "local_minimum": local_minimum,
}

"""Exact tempered posteriors of low-dimensional models by quadrature, in the population limit.

With t = nβ and n → ∞ at fixed t, nβ (L_n(w) − L_n(w*)) → t K(w), so the tempered, localised
posterior tends to

    p_t(w) ∝ exp(−t K(w) − (γ/2) ||w − w*||²) φ(w),

and the finite-temperature learning coefficient (what an LLC estimator measures at nβ = t) is

    λ(t) = t E_{p_t}[K(w)] = −d log Z(t) / d log t,  Z(t) = ∫ exp(−t K − (γ/2)||w − w*||²) φ dw.

As t → ∞, λ(t) → λ, but slowly for singular models: λ(t) ≈ λ − (m − 1)/(log t + c) when
m > 1, and λ(t) ≈ λ − a t^(−g) with g the gap to the next pole when m = 1 (e.g. −12% at
t = 10³ for K = w1² w2⁴). This module gives the exact λ(t) that a sampler must reproduce.

Grids are tensor products of w_j = w*_j + c sinh(u_j) with u_j uniform, fine near w* and coarse
far away, integrated with the trapezoid rule in u (the Jacobian c cosh(u) is included).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from toy_models._model import ToyModel


def _ravel_float64(tree):
    """ravel_pytree on float64 copies, so that unravelling does not cast back to float32."""
    with jax.enable_x64(True):
        return ravel_pytree(jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf, jnp.float64), tree))


class GridDensity(NamedTuple):
    """A normalised density on a tensor grid: `weights` sum to 1 (they include cell volumes)."""

    axes: tuple[np.ndarray, ...]
    weights: np.ndarray
    log_partition: float


def _sinh_axis(center: float, half_width: float, finest: float, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes center + c sinh(u) on [center − half_width, center + half_width] and trapezoid weights."""
    u_max = np.arcsinh(half_width / finest)
    u = np.linspace(-u_max, u_max, resolution)
    du = u[1] - u[0]
    trapezoid = np.full(resolution, du)
    trapezoid[[0, -1]] = du / 2
    return center + finest * np.sinh(u), trapezoid * finest * np.cosh(u)


def tempered_density_grid(
    model: ToyModel,
    nbeta: float,
    *,
    localization: float = 0.0,
    use_prior: bool = True,
    half_width: float = 8.0,
    finest: float | None = None,
    resolution: int = 1201,
) -> GridDensity:
    """p_t(w) ∝ exp(−t K(w) − (γ/2)||w − w*||²) φ(w) on a grid, for models with d <= 2.

    `finest` is the grid spacing scale next to w* (default t^(−1/2) / 20: resolves the stiffest
    quadratic direction); `half_width` bounds the box (the prior or γ must make the mass outside
    negligible: with neither, the integral may not exist and this raises).
    """
    if model.population_loss is None:
        raise ValueError(f"{model.label} has no analytic population loss K(w)")
    if model.dimension > 2:
        raise ValueError(f"quadrature is for d <= 2; {model.label} has d = {model.dimension}")
    if not use_prior and localization <= 0:
        raise ValueError("with no prior and no localisation the tempered density need not be normalisable")
    if not nbeta > 0:
        raise ValueError(f"nbeta must be > 0, got {nbeta}")
    finest = finest if finest is not None else 0.05 / np.sqrt(nbeta)
    flat_center, unravel = _ravel_float64(model.w_star)
    center = np.asarray(flat_center, dtype=np.float64)
    nodes, node_weights = zip(*(_sinh_axis(c, half_width, finest, resolution) for c in center))
    mesh = np.stack(np.meshgrid(*nodes, indexing="ij"), axis=-1).reshape(-1, model.dimension)
    with jax.enable_x64(True):
        points = jnp.asarray(mesh)
        log_density = -nbeta * jax.vmap(lambda w: model.population_loss(unravel(w)))(points)
        if localization:
            log_density = log_density - 0.5 * localization * jnp.sum(jnp.square(points - center), axis=-1)
        if use_prior:
            log_density = log_density + jax.vmap(lambda w: model.prior.log_density(unravel(w)))(points)
        log_density = np.asarray(log_density, dtype=np.float64)
    cell = np.ones(())
    for w in node_weights:
        cell = np.multiply.outer(cell, w)
    log_weights = log_density + np.log(cell.ravel())
    finite = np.isfinite(log_weights)
    shift = log_weights[finite].max()
    weights = np.where(finite, np.exp(log_weights - shift), 0.0)
    total = weights.sum()
    edge = np.zeros(weights.shape, dtype=bool).reshape(cell.shape)
    for axis in range(model.dimension):
        index = [slice(None)] * model.dimension
        index[axis] = [0, -1]
        edge[tuple(index)] = True
    edge_mass = weights.reshape(cell.shape)[edge].sum() / total
    if edge_mass > 1e-9:
        raise ValueError(f"the box of half-width {half_width} truncates the density (edge mass {edge_mass:.1e}); widen it")
    return GridDensity(tuple(nodes), (weights / total).reshape(cell.shape), float(shift + np.log(total)))


def finite_temperature_rlct(model: ToyModel, nbeta: float, **grid_options) -> float:
    """λ(t) = t E_{p_t}[K(w)], the exact value of the population-limit LLC at nβ = t (d <= 2)."""
    density = tempered_density_grid(model, nbeta, **grid_options)
    mesh = np.stack(np.meshgrid(*density.axes, indexing="ij"), axis=-1).reshape(-1, model.dimension)
    with jax.enable_x64(True):
        unravel = _ravel_float64(model.w_star)[1]
        population = np.asarray(jax.vmap(lambda w: model.population_loss(unravel(w)))(jnp.asarray(mesh)))
    return float(nbeta * np.sum(density.weights.ravel() * population))


def empirical_finite_temperature_rlct(model: ToyModel, data, nbeta: float, **grid_options) -> float:
    """λ_n(t) = t E_t[L_n(w) − L_n(w*)] for a normal crossing and its own data set (d <= 2).

    The same quadrature as `finite_temperature_rlct` with K replaced by the exact empirical loss
    gap L_n(w) − L_n(0) = f² S_xx / 2n − f S_xy / n, f = Π_j w_j^k_j (sufficient statistics
    S_xx = Σ x², S_xy = Σ x y), so a sampler's error can be told apart from the data-set
    fluctuation λ_n(t) − λ(t).
    """
    if model.name != "normal_crossing":
        raise ValueError(f"the empirical λ_n(t) is implemented for normal_crossing models only, got {model.name!r}")
    x, y = np.asarray(data.inputs, np.float64)[:, 0], np.asarray(data.targets, np.float64)[:, 0]
    n, sxx, sxy = x.size, float(x @ x), float(x @ y)
    powers = jnp.asarray(model.params["powers"])

    def empirical_gap(w):
        f = jnp.prod(w**powers)
        return 0.5 * f**2 * sxx / n - f * sxy / n

    return finite_temperature_rlct(dataclasses.replace(model, population_loss=empirical_gap), nbeta, **grid_options)

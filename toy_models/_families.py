"""Model families with known learning coefficients.

Every family is Gaussian regression y = f(w, x) + N(0, σ² I) with σ = 1 and x ~ N(0, I), so the
population loss is K(w) = E_x ||f(w, x) − f(w*, x)||² / (2σ²).
"""

from collections.abc import Callable
from fractions import Fraction
from functools import reduce
from math import log, pi

import jax
import jax.numpy as jnp
import numpy as np

from toy_models._model import (
    GaussianPrior,
    Params,
    PowerGaussianPrior,
    Prior,
    RegressionData,
    ToyModel,
    parameter_count,
)
from toy_models._rlct import (
    deep_linear_rlct,
    normal_crossing_rlct,
    reduced_rank_rlct,
    regular_rlct,
    tanh_zero_rlct,
)

NOISE_STD = 1.0


class ModelParameterError(ValueError):
    """A family was asked for with a parameter it does not accept; the message names it."""


def _gaussian_regression(
    *,
    name: str,
    params: dict,
    mean_fn: Callable[[Params, jax.Array], jax.Array],
    w_star: Params,
    input_dim: int,
    prior: Prior,
    population_loss: Callable[[Params], jax.Array] | None,
    **known_truth,
) -> ToyModel:
    def log_likelihood(w, datum: RegressionData):
        residual = datum.targets - mean_fn(w, datum.inputs)
        return (
            -0.5 * jnp.sum(jnp.square(residual)) / NOISE_STD**2
            - 0.5 * residual.size * log(2 * pi * NOISE_STD**2)
        )

    def sample_data(key, n: int) -> RegressionData:
        key_inputs, key_noise = jax.random.split(key)
        inputs = jax.random.normal(key_inputs, (n, input_dim))
        means = jax.vmap(mean_fn, in_axes=(None, 0))(w_star, inputs)
        return RegressionData(inputs, means + NOISE_STD * jax.random.normal(key_noise, means.shape))

    def sample_expected_data(key, n: int) -> RegressionData:
        # E_y[(y − f(w, x))²] = (f(w*, x) − f(w, x))² + σ²: the label noise only adds a constant
        inputs = jax.random.normal(key, (n, input_dim))
        return RegressionData(inputs, jax.vmap(mean_fn, in_axes=(None, 0))(w_star, inputs))

    return ToyModel(
        name=name,
        params=params,
        dimension=parameter_count(w_star),
        log_likelihood=log_likelihood,
        sample_data=sample_data,
        sample_expected_data=sample_expected_data,
        prior=prior,
        w_star=w_star,
        population_loss=population_loss,
        **known_truth,
    )


def _check_int(family: str, name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ModelParameterError(f"{family}: parameter '{name}' must be an integer, got {value!r}")
    if value < minimum:
        raise ModelParameterError(f"{family}: parameter '{name}' must be >= {minimum}, got {value}")
    return int(value)


def _check_int_tuple(family: str, name: str, values, minimum: int) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ModelParameterError(f"{family}: parameter '{name}' must be a sequence of integers, got {values!r}")
    values = tuple(values)
    if not values:
        raise ModelParameterError(f"{family}: parameter '{name}' must not be empty")
    return tuple(_check_int(family, f"{name}[{i}]", v, minimum) for i, v in enumerate(values))


def _rectangular_identity(rows: int, cols: int, rank: int) -> jax.Array:
    diagonal = np.zeros((rows, cols))
    diagonal[np.arange(rank), np.arange(rank)] = 1.0
    return jnp.asarray(diagonal)


def regular(d: int) -> ToyModel:
    """Linear regression y = w·x + noise, d parameters: regular, λ = d/2, m = 1."""
    d = _check_int("regular", "d", d, 1)
    w_star = jnp.full((d,), 0.5)
    coefficient = regular_rlct(d)
    return _gaussian_regression(
        name="regular",
        params={"d": d},
        mean_fn=lambda w, x: jnp.dot(w, x)[None],
        w_star=w_star,
        input_dim=d,
        prior=GaussianPrior(1.0),
        population_loss=lambda w: 0.5 * jnp.sum(jnp.square(w - w_star)) / NOISE_STD**2,
        true_rlct=coefficient.rlct,
        multiplicity=coefficient.multiplicity,
        reference="Regular model: Watanabe (2009), Algebraic Geometry and Statistical Learning Theory, Sec. 1.4 (λ = d/2).",
    )


def normal_crossing(powers, prior_powers=None) -> ToyModel:
    """y = x Π_j w_j^(k_j) + noise with prior Π_j |w_j|^(h_j) e^(−w_j²/2); K = (Π w_j^k_j)²/2.

    λ = min_j (h_j + 1)/(2 k_j), m = number of j at the minimum. The true point is w* = 0.
    """
    family = "normal_crossing"
    powers = _check_int_tuple(family, "powers", powers, 1)
    if prior_powers is None:
        prior_powers = (0,) * len(powers)
    prior_powers = _check_int_tuple(family, "prior_powers", prior_powers, 0)
    if len(prior_powers) != len(powers):
        raise ModelParameterError(
            f"{family}: parameter 'prior_powers' has {len(prior_powers)} entries but 'powers' has {len(powers)}"
        )
    exponents = jnp.asarray(powers)

    def monomial(w):
        return jnp.prod(w**exponents)

    coefficient = normal_crossing_rlct(powers, prior_powers)
    return _gaussian_regression(
        name=family,
        params={"powers": powers, "prior_powers": prior_powers},
        mean_fn=lambda w, x: x * monomial(w),
        w_star=jnp.zeros(len(powers)),
        input_dim=1,
        prior=PowerGaussianPrior(prior_powers, 1.0),
        population_loss=lambda w: 0.5 * jnp.square(monomial(w)) / NOISE_STD**2,
        true_rlct=coefficient.rlct,
        multiplicity=coefficient.multiplicity,
        reference=(
            "Normal crossing: Watanabe (2009), Sec. 2.4 and Ch. 6; test set of Lau, Furman, Wang, "
            "Murfet & Wei (2023), arXiv 2308.12108."
        ),
    )


def rrr(M: int, H: int, N: int, r: int = 0) -> ToyModel:
    """Reduced-rank regression y = B A x + noise, A: H×M, B: N×H, true B*A* of rank r."""
    family = "rrr"
    M, H, N = (_check_int(family, k, v, 1) for k, v in (("M", M), ("H", H), ("N", N)))
    r = _check_int(family, "r", r, 0)
    if r > min(M, H, N):
        raise ModelParameterError(f"{family}: parameter 'r' = {r} exceeds min(M, H, N) = {min(M, H, N)}")
    w_star = {"A": _rectangular_identity(H, M, r), "B": _rectangular_identity(N, H, r)}
    true_map = w_star["B"] @ w_star["A"]
    coefficient = reduced_rank_rlct(M, H, N, r)
    return _gaussian_regression(
        name=family,
        params={"M": M, "H": H, "N": N, "r": r},
        mean_fn=lambda w, x: w["B"] @ (w["A"] @ x),
        w_star=w_star,
        input_dim=M,
        prior=GaussianPrior(1.0),
        population_loss=lambda w: 0.5 * jnp.sum(jnp.square(w["B"] @ w["A"] - true_map)) / NOISE_STD**2,
        true_rlct=coefficient.rlct,
        multiplicity=coefficient.multiplicity,
        reference=(
            "Aoyagi & Watanabe (2005), Stochastic complexities of reduced rank regression in "
            "Bayesian estimation, Neural Networks 18(7):924-933."
        ),
    )


def _product(matrices) -> jax.Array:
    return reduce(lambda acc, layer: layer @ acc, matrices[1:], matrices[0])


def dln(widths, r: int = 0) -> ToyModel:
    """Deep linear network y = W_L ⋯ W_1 x + noise, W_l: H_{l+1} × H_l, true product of rank r."""
    family = "dln"
    widths = _check_int_tuple(family, "widths", widths, 1)
    if len(widths) < 2:
        raise ModelParameterError(f"{family}: parameter 'widths' needs at least 2 entries (input, output), got {widths}")
    r = _check_int(family, "r", r, 0)
    if r > min(widths):
        raise ModelParameterError(f"{family}: parameter 'r' = {r} exceeds the smallest width {min(widths)}")
    w_star = tuple(_rectangular_identity(out, inp, r) for inp, out in zip(widths[:-1], widths[1:]))
    true_map = _product(w_star)
    coefficient = deep_linear_rlct(widths, r)

    def mean_fn(w, x):
        return reduce(lambda hidden, layer: layer @ hidden, w, x)

    return _gaussian_regression(
        name=family,
        params={"widths": widths, "r": r},
        mean_fn=mean_fn,
        w_star=w_star,
        input_dim=widths[0],
        prior=GaussianPrior(1.0),
        population_loss=lambda w: 0.5 * jnp.sum(jnp.square(_product(w) - true_map)) / NOISE_STD**2,
        true_rlct=coefficient.rlct,
        multiplicity=coefficient.multiplicity,
        reference=(
            "Aoyagi (2024), Consideration on the learning efficiency of multiple-layered neural "
            "networks with linear units, Neural Networks 172:106132."
        ),
    )


_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(96)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()  # expectations under N(0, 1)


def tanh(H: int, true_units: int = 0) -> ToyModel:
    """One-hidden-layer network y = Σ_{h<=H} a_h tanh(b_h x) + noise, x ~ N(0, 1).

    With true function 0 (true_units = 0, w* = 0): λ = (H + s² + s)/(4s + 2), s = ⌊√H⌋;
    m = 2 for H = 1 (K ≈ c a² b²) and not established for H > 1. With 0 < true_units < H the
    truth is Σ_{h<true_units} tanh((h+1) x); no exact λ is published for that case, so only the
    upper bound λ <= d/2 = H is stored. K(w) is computed by 96-point Gauss–Hermite quadrature.
    """
    family = "tanh"
    H = _check_int(family, "H", H, 1)
    true_units = _check_int(family, "true_units", true_units, 0)
    if true_units > H:
        raise ModelParameterError(f"{family}: parameter 'true_units' = {true_units} exceeds H = {H}")
    active = jnp.arange(H) < true_units
    w_star = {"a": active.astype(float), "b": jnp.where(active, jnp.arange(1.0, H + 1.0), 0.0)}

    def mean_fn(w, x):
        return jnp.sum(w["a"] * jnp.tanh(w["b"] * x), keepdims=True)

    nodes = jnp.asarray(_HERMITE_NODES)[:, None]
    weights = jnp.asarray(_HERMITE_WEIGHTS)

    def population_loss(w):
        gap = jax.vmap(mean_fn, in_axes=(None, 0))(w, nodes) - jax.vmap(mean_fn, in_axes=(None, 0))(w_star, nodes)
        return 0.5 * jnp.sum(weights * jnp.sum(jnp.square(gap), axis=-1)) / NOISE_STD**2

    if true_units == 0:
        truth = {
            "true_rlct": tanh_zero_rlct(H),
            "multiplicity": 2 if H == 1 else None,
            "notes": "" if H == 1 else "multiplicity not established in the literature for H > 1",
        }
    else:
        truth = {
            "true_rlct": None,
            "multiplicity": None,
            "rlct_bounds": (None, Fraction(H)),
            "notes": "exact λ unknown with true units; upper bound λ <= d/2 only",
        }
    return _gaussian_regression(
        name=family,
        params={"H": H, "true_units": true_units},
        mean_fn=mean_fn,
        w_star=w_star,
        input_dim=1,
        prior=GaussianPrior(1.0),
        population_loss=population_loss,
        reference=(
            "Aoyagi & Watanabe (2005); Watanabe (2009), Algebraic Geometry and Statistical "
            "Learning Theory, Sec. 7.8; as used by Lau et al. (2023), arXiv 2308.12108."
        ),
        **truth,
    )

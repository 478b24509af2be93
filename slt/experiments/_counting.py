"""Counting arguments: does an unnecessary internal computation cost volume (a higher λ)?

Two hand-built tanh networks f(w, x) = Σ_{h=1}^{3} a_h tanh(b_hᵀ x), x ∈ R², no biases (d = 9),
compute exactly the same function y = tanh(x₁) on every input:

- ``direct``: unit 1 computes the answer (b₁ = e₁, a₁ = 1); units 2 and 3 are switched off
  (a = 0, b = 0).
- ``idle``: as direct, but the unused units keep input weights (a = 0, b ≠ 0): nothing computed.
- ``extra``: unit 1 as before; units 2 and 3 both compute the unneeded feature z = tanh(x₂)
  (b₂ = b₃ = e₂) and the output adds it and subtracts it again (a₂ = 1, a₃ = −1).

All three sit on the zero set of K(w) = (1/2n) Σ_i (f(w, x_i) − tanh(x_{i1}))² (noise-free
targets, so L_n(w*) = 0). Counting directions: near ``extra`` the zero set is
{a₂ = −a₃, b₂ = b₃} (3-dimensional) and the other 6 directions change six linearly independent
functions (tanh(x₁), x_j sech²(x₁), tanh(x₂), x_j sech²(x₂)), so λ = 6/2 = 3 (regular in the
normal directions). Near ``idle`` (b₂, b₃ independent) only a₂, a₃ and unit 1's 3 weights are
constrained: λ = 5/2. Near ``direct`` unit 1 gives 3/2 and the switched-off pair is a singular
piece (a_h b_h products, as in reduced-rank regression / the tanh family), so λ ≤ 5/2.

Measured, per network: the LLC by SGLD at a localised posterior (several chains, MCSE), and the
local volume V(ε) = P(K(w) < ε) for w uniform in the box |w − w*|_∞ < r (Monte Carlo), its slope
in log ε (≈ λ, `estimators.rlct_from_loss_samples`, jackknife SE), and the prior mass
∫_{box, K<ε} φ(w) dw under the standard normal prior φ.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

import estimators
from slt.run import advance_progress, plan_progress
from slt.experiments._common import Network, inverse_sqrt, llc_at_solutions, squared_error

NETWORK = Network(input_dim=2, width=3, activation="tanh", bias=False)
DIRECTIONS_THEORY = {"direct": "≤ 5/2 (singular pair)", "idle": "5/2", "extra": "3"}


def construct_networks() -> dict[str, np.ndarray]:
    """The hand-built parameters (flat, `Network` layout [W₁ (2×3), a (3)]) of each network."""
    def build(first_columns, output):
        first = jnp.asarray(first_columns, jnp.float32).T  # columns are b_h
        return np.asarray(NETWORK.flatten(first, None, jnp.asarray(output, jnp.float32), None))

    return {
        "direct": build([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]], [1.0, 0.0, 0.0]),
        "idle": build([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [1.0, 0.0, 0.0]),
        "extra": build([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], [1.0, 1.0, -1.0]),
    }


def teacher_data(key: PRNGKeyArray, num_data: int) -> dict[str, jax.Array]:
    """x ~ N(0, I₂), y = tanh(x₁) exactly."""
    x = jax.random.normal(key, (num_data, 2))
    return {"x": x, "y": jnp.tanh(x[:, 0])}


class CountingRow(NamedTuple):
    name: str
    llc: float
    llc_std_error: float
    llc_per_chain: np.ndarray
    volume_slope: float
    volume_slope_std_error: float
    epsilons: np.ndarray
    volumes: np.ndarray                # fraction of the box with K < ε
    volume_std_errors: np.ndarray
    log_prior_mass: np.ndarray         # log ∫_{box, K<ε} φ(w) dw
    theory: str
    llc_warnings: tuple[str, ...]       # reasons (unreliable) first, then warnings


class CountingResult(NamedTuple):
    rows: tuple[CountingRow, ...]
    nbeta: float
    localization: float
    box_radius: float
    num_volume_draws: int
    num_data: int


def _loss(w, data, k):
    del k
    return squared_error(NETWORK, w, data["x"], data["y"])


def local_volume(key: PRNGKeyArray, center: np.ndarray, data, *, box_radius: float, shift: float, num_draws: int,
                 chunk_size: int = 1 << 18):
    """K(w), log φ(w) and log|det S| for `num_draws` points w = w* + S u, u uniform in [−1, 1]^d.

    S = r √δ (H + δ I)^{-1/2} with H the Hessian of K at w* (negative eigenvalues clipped):
    directions flat at w* get half-width r, a direction of curvature h ≫ δ gets r √(δ/h), the
    width of {K < δ r²/2} along it, so no direction saturates before the others for
    ε < ε_sat = δ r²/2. A constant linear map: the exponent of V(ε) is unchanged, and the w-space
    volume is the u-space fraction times 2^d |det S|. φ is the standard normal prior.
    """
    center = jnp.asarray(center)
    dimension = center.shape[0]
    hessian = jax.hessian(lambda w: _loss(w, data, 0))(center)
    transform, _ = inverse_sqrt(hessian[None], shift)
    transform = box_radius * np.sqrt(shift) * transform[0]

    chunk_size = min(chunk_size, num_draws)

    @jax.jit
    def chunk(chunk_key):
        u = jax.random.uniform(chunk_key, (chunk_size, dimension), minval=-1.0, maxval=1.0)
        w = center[None, :] + u @ transform.T
        losses = jax.vmap(lambda v: _loss(v, data, 0))(w)
        log_prior = -0.5 * jnp.sum(jnp.square(w), axis=1) - 0.5 * dimension * jnp.log(2 * jnp.pi)
        return losses, log_prior

    num_chunks = -(-num_draws // chunk_size)
    parts = [chunk(k) for k in jax.random.split(key, num_chunks)]
    losses = np.concatenate([np.asarray(p[0], np.float64) for p in parts])[:num_draws]
    log_prior = np.concatenate([np.asarray(p[1], np.float64) for p in parts])[:num_draws]
    log_det = float(np.linalg.slogdet(np.asarray(transform, np.float64))[1])
    return losses, log_prior, log_det


def counting_experiment(
    key: PRNGKeyArray,
    *,
    num_data: int = 100,
    nbeta: float = 1e5,
    step_size: float = 0.03,
    localization: float = 100.0,
    num_chains: int = 8,
    num_steps: int = 8000,
    num_burnin: int = 2000,
    box_radius: float = 0.3,
    shift: float = 0.01,
    num_volume_draws: int = 1 << 21,
    epsilon_fractions=(0.01, 0.02, 0.05, 0.1, 0.2),
) -> CountingResult:
    """LLC and local volume of the direct, idle and extra-computation networks (module docstring).

    Keys: data, LLC sampling, volume draws (one per network).
    """
    key_data, key_llc, key_volume = jax.random.split(key, 3)
    data = teacher_data(key_data, num_data)
    networks = construct_networks()
    names = list(networks)
    solutions = jnp.asarray(np.stack([networks[name] for name in names]))
    centre_losses = np.asarray(jax.vmap(lambda w: _loss(w, data, 0))(solutions))
    if np.max(centre_losses) > 1e-10:
        raise AssertionError(f"a constructed network does not fit the data exactly: {centre_losses}")
    plan_progress(1 + len(names), "stages")  # the LLCs, then each network's volume (for `slt experiment`'s bar)
    llcs = llc_at_solutions(_loss, data, solutions, key_llc, nbeta=nbeta, localization=localization, step_size=step_size,
                            num_chains=num_chains, num_steps=num_steps, num_burnin=num_burnin)
    advance_progress(1, "stages")
    epsilons = 0.5 * shift * box_radius**2 * np.asarray(epsilon_fractions, np.float64)
    rows = []
    for index, (name, volume_key) in enumerate(zip(names, jax.random.split(key_volume, len(names)))):
        losses, log_prior, log_det = local_volume(volume_key, networks[name], data, box_radius=box_radius,
                                                  shift=shift, num_draws=num_volume_draws)
        estimate = estimators.volume_from_losses(losses, epsilons)
        try:
            fit = estimators.rlct_from_loss_samples(losses, epsilons)
            slope, slope_se = fit.mean, fit.std_error
        except ValueError:
            slope, slope_se = float("nan"), float("nan")  # too few draws below the smallest ε
        log_box = solutions.shape[1] * np.log(2.0) + log_det
        log_mass = []
        for epsilon in epsilons:
            inside = log_prior[losses < epsilon]
            if inside.size == 0:
                log_mass.append(-np.inf)
            else:
                peak = inside.max()
                log_mass.append(peak + np.log(np.sum(np.exp(inside - peak)) / losses.size) + log_box)
        result = llcs.results[index]
        rows.append(CountingRow(name, result.mean, result.std_error, np.asarray(result.per_chain), slope, slope_se,
                                epsilons, estimate.volumes, estimate.std_errors, np.asarray(log_mass),
                                DIRECTIONS_THEORY[name], tuple(result.diagnostics.reasons) + tuple(result.diagnostics.warnings)))
        advance_progress(1, "stages")
    return CountingResult(tuple(rows), nbeta, localization, box_radius, num_volume_draws, num_data)

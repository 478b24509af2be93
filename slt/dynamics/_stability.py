"""Linear stability limits of the dynamics' integrators, and the largest curvature of a potential.

Every integrator here is explicit. On a quadratic with curvature h (a Hessian eigenvalue) the
noise-free iteration is linear, and it is stable (its error does not grow) iff

    gradient descent / SGD / SGD-as-SDE (`sgd`, `sgd_sde`):   η h < 2,
    Brownian motion (Euler–Maruyama, `brownian`):             (ε/T) h < 2   (its drift step is GD with η = ε/T),
    heavy ball (`momentum_sgd`):                              η h < 2 (1 + μ),
    Nesterov (`nesterov_sgd`):                                η h < 2 (1 + μ)/(1 + 2μ).

(Heavy ball: the roots of z² − (1 + μ − ηh) z + μ lie in the unit disc iff 0 < ηh < 2(1 + μ);
Nesterov: z² − (1 + μ)(1 − ηh) z + μ(1 − ηh), iff 0 < ηh < 2(1 + μ)/(1 + 2μ).)
`stability_number` is the step's h_max divided by that limit; past 1 the iteration diverges from
any region where the curvature reaches h_max, and well below 1 is needed for accuracy: the
Euler–Maruyama stationary variance on a quadratic is T/h · 2/(2 − εh/T), a bias of εh/(2T).

What each kernel does with it (constructors in `slt.dynamics`): `brownian` and `sgd_sde` are
discretisations of a diffusion, used as references, so they *refuse* (ValueError) a step at
or past the limit; `sgd`, `momentum_sgd` and `nesterov_sgd` are the objects under study (their
instability in sharp regions is part of what SGD does), so they *warn* (`UnstableStepWarning`).

h_max is the largest Hessian eigenvalue of K on the potential's box (`max_curvature`), from
central differences of the gradient on a 101 × 101 grid of cell midpoints, so it can miss a
sharper spike narrower than a grid cell. Potentials without a box are not checked. Minibatch
losses curve more than K in places; the check uses K.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from slt.dynamics._potentials import Potential

_GRID_POINTS = 101
_DIFFERENCE = 1e-3


class UnstableStepWarning(UserWarning):
    """A learning rate at or past the linear stability limit of the dynamics on the potential's box."""


@functools.lru_cache(maxsize=64)
def max_curvature(potential: Potential) -> float:
    """h_max = the largest Hessian eigenvalue of K on the box (101 × 101 midpoints, central differences).

    Central differences of the exact gradient (step 1e-3, error O(1e-6)) instead of forward-over-reverse
    Hessians, which are NaN where K contains |w|^p or w ** k at 0. Raises ValueError without a 2-D box.
    """
    box = potential.require_box("max_curvature")
    axes = [lo + (np.arange(_GRID_POINTS) + 0.5) * (hi - lo) / _GRID_POINTS for lo, hi in box]
    grid_1, grid_2 = np.meshgrid(*axes, indexing="ij")
    points = jnp.asarray(np.stack([grid_1.ravel(), grid_2.ravel()], axis=1))
    gradient = jax.grad(potential.population_loss)
    basis = jnp.eye(2, dtype=points.dtype) * _DIFFERENCE

    def largest_eigenvalue(w):
        columns = jax.vmap(lambda e: (gradient(w + e) - gradient(w - e)) / (2 * _DIFFERENCE))(basis)
        hessian = 0.5 * (columns + columns.T)
        return jnp.linalg.eigvalsh(hessian)[-1]

    values = np.asarray(jax.jit(jax.vmap(largest_eigenvalue))(points), dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{potential.name}: the Hessian of K is not finite everywhere on the box")
    return float(values.max())


def stability_limit(integrator: str, momentum: float = 0.0) -> float:
    """The bound on (step) × h for a stable step: 2, 2(1 + μ) (heavy ball) or 2(1 + μ)/(1 + 2μ) (Nesterov).

    `integrator` is one of "brownian", "sgd", "sgd_sde", "heavy_ball", "nesterov"; for "brownian"
    the step is ε/T. ValueError on another name.
    """
    if integrator in ("brownian", "sgd", "sgd_sde"):
        return 2.0
    if integrator == "heavy_ball":
        return 2.0 * (1.0 + momentum)
    if integrator == "nesterov":
        return 2.0 * (1.0 + momentum) / (1.0 + 2.0 * momentum)
    raise ValueError(f"integrator must be brownian, sgd, sgd_sde, heavy_ball or nesterov, got {integrator!r}")


def stability_number(potential: Potential, integrator: str, step: float, momentum: float = 0.0) -> float:
    """step × h_max / limit (step = η, or ε/T for "brownian"); NaN for a potential without a 2-D box."""
    if potential.bounds is None or len(potential.bounds) != 2 or potential.dimension != 2:
        return float("nan")
    return step * max_curvature(potential) / stability_limit(integrator, momentum)


def check_stable(potential: Potential, integrator: str, step: float, momentum: float = 0.0, *,
                 refuse: bool) -> None:
    """Raise ValueError (refuse=True) or warn `UnstableStepWarning` when `stability_number` >= 1."""
    number = stability_number(potential, integrator, step, momentum)
    if not number >= 1.0:  # NaN (no box) passes
        return
    step_name = "ε/T" if integrator == "brownian" else "learning rate η"
    message = (f"{integrator} on {potential.name}: {step_name} = {step:g} is unstable: step × h_max = "
               f"{step * max_curvature(potential):.3g} >= {stability_limit(integrator, momentum):.3g} "
               f"(h_max = {max_curvature(potential):.3g} on the box); take a step below "
               f"{stability_limit(integrator, momentum) / max_curvature(potential):.3g}")
    if refuse:
        raise ValueError(message)
    warnings.warn(message, UnstableStepWarning, stacklevel=3)

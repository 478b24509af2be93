"""Stochastic collapse of SGD on the normal crossing: the exact law of w1² − w2² and its rate.

On `normal_crossing((1, 1))`, y = x w1 w2 + ξ, the per-example gradient is

    ∇ℓ_i(w) = a_i (w2, w1) = a_i ∇(w1 w2),   a_i = x_i² w1 w2 − x_i y_i   (σ = 1),

so every minibatch gradient lies along ∇(w1 w2) and an SGD step with learning rate η and
batch mean a = ⟨a_i⟩_batch maps p = w1 + w2, q = w1 − w2 to p(1 − ηa), q(1 + ηa). Hence, exactly,

    D = w1² − w2² = p q  ←  (1 − η² a²) D   every step.

Noise-free gradient descent (a deterministic, a → 0 at the valley) conserves D up to O(η²);
gradient *flow* conserves it exactly. Minibatch noise makes a² > 0 on average:

    E log|D_t| − log|D_0| = t E log(1 − η² a²) ≈ −t η² E[a²],

and at the floor of the valley (w1 w2 = u_n*, where the full-data gradient vanishes)
E[a²] = σ_g²/b, σ_g² = Var_n(a_i) ≈ σ² E x² = 1: D shrinks like exp(−r t) with

    r = η² σ_g²/b = 2 T η   per step (T = ησ²/(2b), `sgd_temperature`),   i.e. 2T per unit time ηt.

The same rate follows from the Itô drift of dw = −∇L dt + √(ηC/b) dB (noise along ∇(w1 w2)
with variance ησ_g²/b): dD = −(η σ_g²/b) D dt + dM. Since w1 w2 also stays near u_n* ≈ 0,
|w1| and |w2| both shrink: SGD collapses onto the origin (the most singular point), and it has
no stationary law on the box, unlike Brownian motion (whose law is Gibbs). This is the
"stochastic collapse" of Chen, Kunin, Yamamura & Ganguli (2023), arXiv 2306.04251, for this model.

Limitations: exact for plain SGD on powers (1, 1) only. For momentum the first-order rate is
the same in η_eff = η/(1 − μ) but there is no exact per-step identity. The prediction
E[a²] = σ_g²/b neglects m_xx²(u − u_n*)² ≈ T(w1² + w2²) from the spread of w1 w2 along the
valley's floor, and −E log(1 − z) = E z + E z²/2 + … adds O(η² σ_g²/b) relatively.
"""

import numpy as np
from jaxtyping import Array, Float

from slt.dynamics._measures import Estimate, sgd_temperature


def collapse_rate(learning_rate: float, batch_size: int, noise_variance: float = 1.0) -> float:
    """r = η² σ_g²/b: the per-step decay rate of E log|w1² − w2²| for SGD on the normal crossing.

    Equal to 2Tη with T = `sgd_temperature(η, b, noise_variance=σ_g²)`; `noise_variance` is
    σ_g² = Var(x y) over the data (σ² E x² = 1 in the population). See the module docstring.
    """
    return 2.0 * sgd_temperature(learning_rate, batch_size, 0.0, noise_variance) * learning_rate


def log_imbalance(positions: Float[Array, "... 2"]) -> np.ndarray:
    """log|w1² − w2²| at every position (−inf where exactly balanced)."""
    positions = np.asarray(positions, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(np.abs(positions[..., 0] ** 2 - positions[..., 1] ** 2))


def imbalance_slope(positions: Float[Array, "particles draws 2"], steps: Float[Array, " draws"]) -> Estimate:
    """Least-squares slope of log|w1² − w2²| against step, averaged over particles, with its SE.

    The slope of the particle mean equals the mean of the per-particle slopes (least squares is
    linear in the data); the standard error is their spread / √particles (independent particles).
    ValueError when a position is exactly balanced (log 0) or fewer than 2 particles or draws.
    """
    values = log_imbalance(positions)
    steps = np.asarray(steps, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 2 or values.shape[1] < 2 or values.shape[1] != steps.shape[0]:
        raise ValueError(f"positions must be [particles >= 2, draws >= 2, 2] matching steps, got "
                         f"{np.shape(positions)} and {steps.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("some positions have w1² = w2² exactly (log 0): the slope is undefined")
    return mean_slope(values, steps)


def mean_slope(values: np.ndarray, steps: np.ndarray) -> Estimate:
    """Mean over rows (particles) of the least-squares slope of `values` [particles, draws] against
    `steps`, with SE = spread of the per-row slopes / √rows."""
    centred = steps - steps.mean()
    slopes = (values - values.mean(axis=1, keepdims=True)) @ centred / np.sum(centred**2)
    return Estimate(float(slopes.mean()), float(slopes.std(ddof=1) / np.sqrt(len(slopes))))

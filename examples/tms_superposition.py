"""Toy model of superposition (Elhage et al. 2022) in the high-sparsity limit of Chen, Lau, Mendel,
Wei & Murfet 2023 (arXiv 2310.06301): k-gon critical points, SGD transitions between them, and
their learning coefficients.

Model: c = 2 hidden dimensions, n = 6 features, parameters w = (W, b), W ∈ R^{c×n}, b ∈ R^n,

    f(x; W, b) = ReLU(WᵀW x + b),      loss ℓ(x; w) = ||x − f(x; w)||²,

data x = t e_i with i uniform on {1..n} and t ~ U[0, 1] (exactly one feature active: the
high-sparsity limit in which Chen et al. derive the population loss in closed form). The
population loss K(w) = E ℓ(x; w) is computed here exactly (`population_loss`): for input t e_i
each output coordinate m is ReLU(t a_m + b_m) with a = WᵀW_i, and ∫_0^1 (t δ_mi − ReLU(t a_m + b_m))² dt
is a polynomial integral over the interval where t a_m + b_m > 0.

Critical points (`kgon_critical_point`): k columns of W form a regular k-gon of norm r with the
same bias β < 0 on each; the other n − k columns are 0 ("dead features"), each with bias
1/(2n) (σ₊: the best constant output) or any b ≤ 0 (σ₋: output 0, a flat region). The symmetric
ansatz (r, β) is solved for a stationary point of K, then the Hessian of K there is computed
in float64 (`hessian_spectrum`).

Known truth used here (`kgon_learning_coefficient`): where the Hessian of K is positive
semi-definite and its null directions are exactly flat (the rotation W → RW, the dead
features' W_j and b_j for σ₋), K is minimally singular there and λ = rank(H)/2. The flatness of
the kernel is checked numerically (K along each null eigenvector stays at its value up to
float64 rounding) and the rank is the count of eigenvalues above 1e-8 × the largest. For
c = 2, n = 6 this gives λ = (3k − 1)/2 + (3/2)·σ₊ (3 parameters per live feature less the
one rotation, 3/2 per dead feature with positive bias, 0 per dead feature with negative bias).
Limitations: these are derived in this workbench from the population loss, not copied from the
paper's table (which could not be read from this machine); an estimate at a checkpoint sees
the empirical loss L_n of a finite data set, whose critical point is near, not at, the k-gon.
"""

from functools import partial

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

import toy_models

HIDDEN, FEATURES = 2, 6


def unpack(params):
    return params["W"], params["b"]


def forward(params, x):
    """ReLU(WᵀW x + b) for a batch x of shape (batch, n)."""
    weight, bias = unpack(params)
    return jax.nn.relu(x @ weight.T @ weight + bias[None, :])


def loss(params, batch):
    """Mean squared reconstruction error (1/B) Σ ||x − f(x)||² of a batch {"x": (B, n)}."""
    return jnp.mean(jnp.sum(jnp.square(batch["x"] - forward(params, batch["x"])), axis=-1))


def make_data(key, num_data, features=FEATURES):
    """x = t e_i, i uniform on the features, t ~ U[0, 1]."""
    key_index, key_value = jax.random.split(key)
    index = jax.random.randint(key_index, (num_data,), 0, features)
    value = jax.random.uniform(key_value, (num_data,))
    return {"x": jax.nn.one_hot(index, features) * value[:, None]}


def _segment_loss(target_slope, slope, offset):
    """∫_0^1 (c t − ReLU(a t + b))² dt for c = target_slope, a = slope, b = offset (elementwise)."""
    safe = jnp.where(slope == 0, 1.0, slope)
    root = jnp.clip(-offset / safe, 0.0, 1.0)
    start = jnp.where(slope > 0, root, 0.0)
    stop = jnp.where(slope < 0, root, 1.0)
    start = jnp.where(slope == 0, jnp.where(offset > 0, 0.0, 1.0), start)
    stop = jnp.where(slope == 0, 1.0, stop)
    quadratic = jnp.square(target_slope - slope) - jnp.square(target_slope)
    linear = -2.0 * offset * (target_slope - slope)
    active = (quadratic * (stop**3 - start**3) / 3 + linear * (stop**2 - start**2) / 2
              + offset**2 * (stop - start))
    return jnp.square(target_slope) / 3 + active


def population_loss(params):
    """K(W, b) = E ℓ(x; W, b) under the high-sparsity data distribution, exactly."""
    weight, bias = unpack(params)
    gram = weight.T @ weight  # column i: a = WᵀW_i, the slopes of the outputs for input t e_i
    features = bias.shape[0]
    per_input = _segment_loss(jnp.eye(features), gram, bias[:, None] * jnp.ones((1, features)))
    return jnp.sum(per_input) / features


def kgon_params(k, radius, live_bias, dead_bias, *, features=FEATURES, angle=0.0):
    """W with k columns on a regular k-gon of norm `radius` (the rest 0), biases live/dead."""
    angles = angle + 2 * np.pi * np.arange(k) / k
    weight = np.zeros((HIDDEN, features))
    weight[:, :k] = radius * np.stack([np.cos(angles), np.sin(angles)])
    bias = np.concatenate([np.full(k, live_bias), np.asarray(dead_bias, float) * np.ones(features - k)])
    return {"W": jnp.asarray(weight), "b": jnp.asarray(bias)}


def kgon_critical_point(k, dead_positive, *, features=FEATURES, dead_negative_bias=-1.0):
    """The k-gon stationary point of K: (radius, live bias) minimising K in the symmetric ansatz,
    dead biases 1/(2n) for the first `dead_positive` dead features and `dead_negative_bias` (any
    b < 0 is the same flat region; deep inside it, a chain has to move W_j by ~√|b| before the
    dead feature switches on) for the rest. Returns (params, gradient norm of K there)."""
    from scipy.optimize import minimize

    dead = np.array([1 / (2 * features)] * dead_positive + [dead_negative_bias] * (features - k - dead_positive))

    def objective(z):
        return float(population_loss(kgon_params(k, z[0], z[1], dead, features=features)))

    best = minimize(objective, x0=np.array([1.1, -0.2]), method="Nelder-Mead",
                    options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 4000})
    params = kgon_params(k, best.x[0], best.x[1], dead, features=features)
    gradient = jax.grad(population_loss)(params)
    norm = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(gradient))))
    return params, norm


def _flat(params_vector, unravel, direction, scale=1e-3):
    """Max |K(w + s v) − K(w)| over s in ±scale, ±scale/10 (an exactly flat direction gives ~0)."""
    base = population_loss(unravel(params_vector))
    return max(abs(float(population_loss(unravel(params_vector + s * direction)) - base))
               for s in (scale, -scale, scale / 10, -scale / 10))


def hessian_spectrum(params):
    """Eigenvalues of the Hessian of K at `params` (float64), the rank (eigenvalues above 1e-8 ×
    the largest), the most negative eigenvalue, and the largest change of K along the null
    eigenvectors at distance 1e-3 (flatness check)."""
    vector, unravel = jax.flatten_util.ravel_pytree(params)
    hessian = jax.hessian(lambda v: population_loss(unravel(v)))(vector)
    values, vectors = np.linalg.eigh(np.asarray(hessian))
    threshold = 1e-8 * np.max(np.abs(values))
    null = np.flatnonzero(np.abs(values) <= threshold)
    flatness = max((_flat(vector, unravel, jnp.asarray(vectors[:, j])) for j in null), default=0.0)
    return {"eigenvalues": values, "rank": int(np.sum(values > threshold)), "min_eigenvalue": float(values.min()),
            "null_flatness": flatness}


def kgon_learning_coefficient(k, dead_positive):
    """λ = (3k − 1)/2 + (3/2) σ₊ for c = 2 (see the module docstring; tests check it against
    rank(H)/2 for the 5- and 6-gons)."""
    return (3 * k - 1) / 2 + 1.5 * dead_positive


def localized_quadratic_llc(params, data, nbeta, localization):
    """Σ_i ½ nβh_i / (nβh_i + γ) over the positive eigenvalues h_i of the Hessian of L_n at
    `params`: what λ̂ at (nβ, γ) reads for a quadratic loss with that Hessian (→ rank/2 as γ/nβ → 0)."""
    vector, unravel = jax.flatten_util.ravel_pytree(params)
    values = np.linalg.eigvalsh(np.asarray(jax.hessian(lambda v: loss(unravel(v), data))(vector)))
    positive = values[values > 1e-8 * values.max()]
    return float(np.sum(0.5 * nbeta * positive / (nbeta * positive + localization)))


@partial(jax.jit, static_argnames=("num_steps", "batch_size"))
def _sgd(params, data, key, learning_rate, num_steps, batch_size):
    num_data = data["x"].shape[0]

    def body(params, key_step):
        index = jax.random.randint(key_step, (batch_size,), 0, num_data)
        batch = {"x": data["x"][index]}
        gradient = jax.grad(loss)(params, batch)
        params = jax.tree_util.tree_map(lambda w, g: w - learning_rate * g, params, gradient)
        return params, params

    return jax.lax.scan(body, params, jax.random.split(key, num_steps))


def train(key, data, *, init_scale, learning_rate, num_steps, batch_size, checkpoint_steps):
    """Minibatch SGD from W ~ N(0, init_scale²), b = 0; the parameters at `checkpoint_steps`."""
    key_init, key_sgd = jax.random.split(key)
    params = {"W": init_scale * jax.random.normal(key_init, (HIDDEN, data["x"].shape[1])),
              "b": jnp.zeros(data["x"].shape[1])}
    _, path = _sgd(params, data, key_sgd, learning_rate, num_steps, batch_size)
    return [jax.tree_util.tree_map(lambda leaf, s=s: np.asarray(leaf[s - 1]), path) for s in checkpoint_steps]


@partial(jax.jit, static_argnames=("num_steps",))
def polish(params, data, learning_rate, num_steps):
    """Full-batch gradient descent on L_n: a checkpoint moved to the nearby critical point of the
    empirical loss (the k-gon of this data set). Returns (params, |∇L_n| at the end)."""

    def body(params, _):
        gradient = jax.grad(loss)(params, data)
        return jax.tree_util.tree_map(lambda w, g: w - learning_rate * g, params, gradient), None

    params, _ = jax.lax.scan(body, params, None, length=num_steps)
    gradient = jax.grad(loss)(params, data)
    return params, jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(gradient)))


def describe(params, *, live_fraction=0.5):
    """(k, σ₊, σ₋): columns with norm above `live_fraction` × the largest are live; a dead
    feature counts in σ₊ when its bias is > 0."""
    weight, bias = (np.asarray(leaf) for leaf in unpack(params))
    norms = np.linalg.norm(weight, axis=0)
    live = norms > live_fraction * norms.max()
    return int(live.sum()), int(np.sum(~live & (bias > 0))), int(np.sum(~live & (bias <= 0)))


def user_model(data, template):
    return toy_models.from_loss(loss, data, template, name="tms_c2_n6")

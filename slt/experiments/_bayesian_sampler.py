"""Is SGD a Bayesian sampler? P_SGD(f|S) against P_B(f|S) on Boolean functions (Mingard et al., JMLR 2021).

Inputs: all 2^k points of {−1, +1}^k (k = `num_bits`); target t(x) = sign(x₁ + x₂ + x₃ + ½ Σ_{j>3} x_j)
(majority of the first three bits, the others as tie-breaking weights); a fixed training set S
of `num_train` inputs (chosen with a key). Network: one hidden layer of ReLU units,
f(w, x) = aᵀ relu(W₁ᵀ x + b₁) + c, prior N(0, diag(s²)) (s = 1/√fan_in for weights, σ_b for
biases). A function is the sign pattern of f on all 2^k inputs, coded as an integer.

- P_B(f|S): exact rejection sampling: draw w from the prior (vmapped, in jitted chunks), keep
  the draws with zero training error on S, histogram their functions.
- P_SGD(f|S): `num_runs` runs (vmapped) of SGD, heavy-ball momentum and Adam on the squared error
  to the ±1 targets of S, from the same prior, each stopped at the first step with zero training
  error (Mingard et al.'s rule); runs that never get there are dropped and counted.
- Pearson r of log P_SGD against log P_B over the functions both found (and how much SGD mass
  falls on functions P_B never produced).
- The LLC of the most probable functions: one SGD solution per function, polished by
  Gauss–Newton to output exactly ±f(x) on all 2^k inputs (so the sign pattern is f's), then
  λ̂ = nβ (E[L_f] − L_f(w*)) with L_f the squared error to f on all inputs, all in one run.
  Beside it, the rank r of the Jacobian of the 2^k outputs at that solution: where r = 2^k
  (full), {L_f = 0} is locally a smooth submanifold of codimension 2^k and λ = 2^k/2 for every
  such f, whatever its P_B. A ranking of functions by λ̂ is then a ranking of the fixed-step
  estimator's bias (`llc_at_solutions` has no step-size bias check), not of λ.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from slt.run import advance_progress, plan_progress
from slt.experiments._common import Network, llc_at_solutions, polish, sample_prior, squared_error, train

OPTIMIZER_SETTINGS = {"sgd": 0.05, "momentum": 0.01, "adam": 0.01}  # learning rates


def boolean_inputs(num_bits: int) -> jax.Array:
    """All 2^k inputs in {−1, +1}^k, row i the binary digits of i (most significant first)."""
    codes = np.arange(2**num_bits)[:, None] >> np.arange(num_bits - 1, -1, -1)[None, :]
    return jnp.asarray(2.0 * (codes & 1) - 1.0, jnp.float32)


def target_function(inputs: jax.Array) -> jax.Array:
    """t(x) = sign(x₁ + x₂ + x₃ + ½ Σ_{j>3} x_j) in {−1, +1} (a sum of 0 gives −1), for inputs [n, k ≥ 3]."""
    weights = jnp.asarray([1.0, 1.0, 1.0] + [0.5] * (inputs.shape[1] - 3))
    return jnp.where(inputs @ weights > 0, 1.0, -1.0)


def function_codes(signs_positive: jax.Array) -> jax.Array:
    """Integer code Σ_i 2^i 1[f(x_i) > 0] of sign patterns [..., 2^k] (k ≤ 5)."""
    powers = jnp.asarray(2 ** np.arange(signs_positive.shape[-1]), jnp.int64 if jax.config.x64_enabled else jnp.uint32)
    return jnp.sum(jnp.where(signs_positive, powers, 0), axis=-1)


class FunctionRow(NamedTuple):
    code: int
    test_pattern: str       # f on the test inputs, '+'/'-'
    p_bayes: float
    p_optimizers: dict      # optimizer -> P_opt(f|S)
    test_accuracy: float    # agreement with the target on the inputs outside S
    llc: float              # NaN unless measured
    llc_std_error: float
    jacobian_rank: int = -1  # rank of ∂f(w, x)/∂w over all 2^k inputs at the polished solution; −1 unless measured


class BayesianSamplerResult(NamedTuple):
    num_bits: int
    num_train: int
    width: int
    num_prior_draws: int
    num_prior_accepted: int
    num_runs: int
    converged: dict                  # optimizer -> runs that reached zero training error
    pearson: dict                    # optimizer -> r of log P_opt vs log P_B over common functions
    mass_outside_bayes: dict         # optimizer -> P_opt mass on functions P_B never produced
    functions: tuple[FunctionRow, ...]  # every function seen, by decreasing P_B
    nbeta: float


def bayesian_sampler_experiment(
    key: PRNGKeyArray,
    *,
    num_bits: int = 3,
    num_train: int = 4,
    width: int = 16,
    bias_scale: float = 0.1,
    num_prior_draws: int = 1 << 21,
    num_runs: int = 4096,
    num_steps: int = 2000,
    batch_size: int | None = None,
    optimizers: tuple[str, ...] = ("sgd", "momentum", "adam"),
    num_llc_functions: int = 5,
    nbeta: float = 1e3,
    localization: float = 10.0,
    num_llc_steps: int = 4000,
    chunk_size: int = 1 << 18,
) -> BayesianSamplerResult:
    """P_B(f|S) by rejection, P_SGD(f|S) by vmapped training, and λ̂ at the top functions.

    Keys: training set, prior draws, initialisations, one per optimizer, LLC.
    """
    if not 3 <= num_bits <= 5:
        raise ValueError(f"num_bits must be 3, 4 or 5, got {num_bits}")
    num_inputs = 2**num_bits
    if not 1 <= num_train < num_inputs:
        raise ValueError(f"num_train must be in [1, {num_inputs - 1}], got {num_train}")
    key_split, key_prior, key_init, key_optimizers, key_llc = jax.random.split(key, 5)
    network = Network(num_bits, width, "relu", bias=True)
    scales = network.prior_scales(1.0, bias_scale)
    inputs = boolean_inputs(num_bits)
    targets = target_function(inputs)
    train_index = np.sort(np.asarray(jax.random.permutation(key_split, num_inputs))[:num_train])
    test_index = np.setdiff1d(np.arange(num_inputs), train_index)
    data = {"x": inputs[train_index], "y": targets[train_index]}

    def fits_training_set(w):
        return jnp.all(jnp.sign(network.apply(w, data["x"])) == data["y"])

    def codes_of(w_matrix):
        return function_codes(jax.vmap(lambda v: network.apply(v, inputs) > 0)(w_matrix))

    chunk_size = min(chunk_size, num_prior_draws)

    @jax.jit
    def prior_chunk(chunk_key):
        w = sample_prior(chunk_key, scales, chunk_size)
        return codes_of(w), jax.vmap(fits_training_set)(w)

    plan_progress(2 + len(optimizers), "stages")  # prior draws, each optimizer, LLC (for `slt experiment`'s bar)
    bayes_codes = []
    for chunk_key in jax.random.split(key_prior, -(-num_prior_draws // chunk_size)):
        codes, fits = prior_chunk(chunk_key)
        bayes_codes.append(np.asarray(codes)[np.asarray(fits)])
    bayes_codes = np.concatenate(bayes_codes).astype(np.int64)
    bayes_values, bayes_counts = np.unique(bayes_codes, return_counts=True)
    p_bayes = dict(zip(bayes_values.tolist(), (bayes_counts / bayes_counts.sum()).tolist()))
    advance_progress(1, "stages")

    initial = sample_prior(key_init, scales, num_runs)
    loss_fn = lambda w, batch: squared_error(network, w, batch["x"], batch["y"])  # noqa: E731
    p_optimizers, converged, solutions_by_code = {}, {}, {}
    for optimizer, optimizer_key in zip(optimizers, jax.random.split(key_optimizers, len(optimizers))):
        if optimizer not in OPTIMIZER_SETTINGS:
            raise ValueError(f"optimizer must be one of {tuple(OPTIMIZER_SETTINGS)}, got {optimizer!r}")
        run = train(loss_fn, data, initial, optimizer_key, optimizer=optimizer,
                    learning_rate=OPTIMIZER_SETTINGS[optimizer], num_steps=num_steps, batch_size=batch_size,
                    stop_fn=fits_training_set)
        ends = run.positions[run.converged]
        codes = np.asarray(codes_of(jnp.asarray(ends))).astype(np.int64) if len(ends) else np.zeros(0, np.int64)
        values, counts = np.unique(codes, return_counts=True)
        p_optimizers[optimizer] = dict(zip(values.tolist(), (counts / max(counts.sum(), 1)).tolist()))
        converged[optimizer] = int(run.converged.sum())
        for code, w in zip(codes.tolist(), ends):
            solutions_by_code.setdefault(code, w)
        advance_progress(1, "stages")

    pearson, outside = {}, {}
    for optimizer, probabilities in p_optimizers.items():
        common = [code for code in probabilities if code in p_bayes]
        outside[optimizer] = float(sum(p for code, p in probabilities.items() if code not in p_bayes))
        if len(common) > 2:
            pearson[optimizer] = float(np.corrcoef(np.log([probabilities[c] for c in common]),
                                                   np.log([p_bayes[c] for c in common]))[0, 1])
        else:
            pearson[optimizer] = float("nan")

    # LLC at one polished solution for each of the most probable functions (under P_B).
    ranked = sorted(set(p_bayes) | {c for p in p_optimizers.values() for c in p}, key=lambda c: -p_bayes.get(c, 0.0))
    measured = [code for code in ranked if code in solutions_by_code][:num_llc_functions]
    llc_by_code, rank_by_code = {}, {}
    if measured:
        patterns = np.stack([((code >> np.arange(num_inputs)) & 1) * 2.0 - 1.0 for code in measured])
        full = {"x": inputs, "y": jnp.asarray(patterns.T, jnp.float32)}  # targets [2^k, functions]

        def residual(w, batch, k):
            return network.apply(w, batch["x"]) - batch["y"][:, k]

        def function_loss(w, batch, k):
            return 0.5 * jnp.mean(jnp.square(residual(w, batch, k)))

        polished = polish(residual, full, np.stack([solutions_by_code[c] for c in measured]))
        losses = np.asarray(jax.vmap(function_loss, in_axes=(0, None, 0))(jnp.asarray(polished), full,
                                                                           jnp.arange(len(measured))))
        minima = losses < 1e-6
        if np.any(minima):
            kept = [c for c, ok in zip(measured, minima) if ok]
            kept_full = {"x": inputs, "y": full["y"][:, np.flatnonzero(minima)]}
            llcs = llc_at_solutions(function_loss, kept_full, polished[minima], key_llc, nbeta=nbeta,
                                    localization=localization, num_steps=num_llc_steps,
                                    num_burnin=num_llc_steps // 4)
            llc_by_code = {c: (m, s) for c, m, s in zip(kept, llcs.means, llcs.std_errors)}
            jacobians = jax.vmap(jax.jacfwd(lambda w: network.apply(w, inputs)))(jnp.asarray(polished[minima]))
            ranks = np.linalg.matrix_rank(np.asarray(jacobians, np.float64), tol=1e-4)
            rank_by_code = dict(zip(kept, (int(r) for r in ranks)))
    advance_progress(1, "stages")

    rows = []
    target_test = np.asarray(targets)[test_index] > 0
    for code in ranked:
        bits = ((code >> np.arange(num_inputs)) & 1).astype(bool)
        llc, llc_se = llc_by_code.get(code, (float("nan"), float("nan")))
        rows.append(FunctionRow(
            int(code), "".join("+" if b else "-" for b in bits[test_index]), p_bayes.get(code, 0.0),
            {opt: p.get(code, 0.0) for opt, p in p_optimizers.items()},
            float(np.mean(bits[test_index] == target_test)), float(llc), float(llc_se), rank_by_code.get(code, -1),
        ))
    return BayesianSamplerResult(num_bits, num_train, width, num_prior_draws, int(bayes_codes.size), num_runs,
                                 converged, pearson, outside, tuple(rows), nbeta)

"""SGD as a Bayesian sampler at Mingard et al.'s scale: P_B(f|S) by nested sampling (JMLR 2021).

Inputs: all 2^k points of {−1, +1}^k (k = `num_bits`, Mingard's 7: 128 inputs); target
t(x) = sign(x₁ + x₂ + x₃ + ½ Σ_{j>3} x_j) (`target_function`); per training set, S is `num_train`
inputs drawn with that set's key and the test set T the rest (default |S| = 118, |T| = 10:
with |T| = 64 and 1024 Adam runs, 998 distinct test functions came out, too few repeats to
measure any P_SGD; with |T| = 10 and 4096 runs, 19). Network: a ReLU MLP
with hidden `widths` (Mingard's 7-40-40-1 is widths = (40, 40)), prior N(0, diag(s²)),
s = σ_w/√fan_in for weights and σ_b for biases. A function f is net's sign pattern on T for a
network with zero training error on S.

- P_SGD(f|S): the share of `num_runs` optimiser runs (vmapped, from prior draws, squared error to
  the ±1 labels, stopped at the first step with zero training error, Mingard's rule) that end on
  f; runs that never fit S are dropped and counted. Error: binomial, se(log P) = √((1 − p)/c).
- P_B(f|S) = P(f)/P(S), with P(A) the prior mass of {w : sign net(w, x) = label(x), x ∈ A}:
  nested sampling (`slt.nested.region_log_volume`) of the hinge K_A(w) = Σ_{x∈A} relu(−y_x net(w, x)),
  whose zero set is that region. P(S) from the prior; P_B(f|S) directly, as the mass of
  {K_{T,f} = 0} under the prior restricted to S (the run's moves never leave S, its live points
  start as draws in S from `region_draws`), so each function's depth is −log P_B(f|S), not
  −log P(f). log P(f) = log P(S) + log P_B(f|S). Each is the mean of `num_repeats` independent
  runs (each repeat a fresh P(S) run whose live points seed its P_B(f|S) runs), with standard
  error from their spread, sd/√R. The runs' own errors (`*_stated_std_error`, from Skilling's
  shrinkage and the binomial live share) are reported beside it: at d = 2001 they understate the
  spread (the live points descend from few ancestors; benchmarks/results/experiment_bayesian_sampler_7bit.md).
- Per training set, Pearson r of log P_SGD against log P_B over the `num_functions` functions SGD
  finds most often, with a 95 % percentile interval from `num_bootstrap` bootstrap resamples of
  those functions and, within each, of its R runs (`bootstrap_pearson`).
"""

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from slt.experiments._bayesian_sampler import boolean_inputs, target_function
from slt.experiments._common import train
from slt.nested import region_draws, region_log_volume


class MultilayerNetwork(NamedTuple):
    """A ReLU MLP on a flat parameter vector: hidden `widths`, scalar output.

    Layout of w: for each layer in turn its weights (row-major [fan_in, fan_out]) then its biases.
    """

    input_dim: int
    widths: tuple[int, ...]

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        sizes = (self.input_dim, *self.widths, 1)
        return tuple(zip(sizes[:-1], sizes[1:]))

    @property
    def dimension(self) -> int:
        return sum(fan_in * fan_out + fan_out for fan_in, fan_out in self.shapes)

    def apply(self, w: Float[Array, " d"], x: Float[Array, "n D"]) -> Float[Array, " n"]:
        start, hidden = 0, x
        for layer, (fan_in, fan_out) in enumerate(self.shapes):
            weights = w[start: start + fan_in * fan_out].reshape(fan_in, fan_out)
            biases = w[start + fan_in * fan_out: start + fan_in * fan_out + fan_out]
            start += fan_in * fan_out + fan_out
            hidden = hidden @ weights + biases[None, :]
            if layer < len(self.shapes) - 1:
                hidden = jax.nn.relu(hidden)
        return hidden[:, 0]

    def prior_scales(self, weight_scale: float = 1.0, bias_scale: float = 0.1) -> Float[Array, " d"]:
        """s = σ_w/√fan_in for weights, σ_b for biases, in the layout of w."""
        parts = []
        for fan_in, fan_out in self.shapes:
            parts += [jnp.full((fan_in * fan_out,), weight_scale / np.sqrt(fan_in)), jnp.full((fan_out,), bias_scale)]
        return jnp.concatenate(parts)


class NestedFunctionRow(NamedTuple):
    """One function f (its sign pattern on T), P_SGD(f|S) and P_B(f|S), natural logs with standard errors."""

    test_pattern: str
    count: int
    log_p_sgd: float
    log_p_sgd_std_error: float
    log_p_bayes: float              # mean over the independent runs
    log_p_bayes_std_error: float    # their spread sd/√R (the run's own error when R = 1)
    log_p_bayes_stated_std_error: float  # what the runs' own errors claim, √(mean se²/R)
    log_p_bayes_runs: tuple[float, ...]
    test_accuracy: float


class TrainingSetResult(NamedTuple):
    train_index: tuple[int, ...]
    converged: int
    num_distinct: int             # distinct test functions among the converged runs
    log_p_train: float            # log P(S), the prior mass fitting S: mean over the runs
    log_p_train_std_error: float  # their spread sd/√R
    log_p_train_stated_std_error: float
    log_p_train_runs: tuple[float, ...]
    pearson: float                # r of log P_SGD vs log P_B over `functions`
    pearson_interval: tuple[float, float]  # 95 % paired-bootstrap interval
    functions: tuple[NestedFunctionRow, ...]
    seconds: dict                 # 'train', 'nested'


class NestedBayesianSamplerResult(NamedTuple):
    num_bits: int
    num_train: int
    widths: tuple[int, ...]
    optimizer: str
    num_runs: int
    num_live: int
    num_ess_steps: int
    num_repeats: int
    training_sets: tuple[TrainingSetResult, ...]


class _Labelled(NamedTuple):
    inputs: Array
    labels: Array


def _hinge_factory(network: MultilayerNetwork):
    def hinge(w, labelled: _Labelled):
        """K_A(w) = Σ_{x∈A} relu(−y_x net(w, x)): zero exactly where w fits every label in A."""
        return jnp.sum(jax.nn.relu(-labelled.labels * network.apply(w, labelled.inputs)))
    return hinge


def bootstrap_pearson(x, y, key: PRNGKeyArray, num_bootstrap: int = 2000) -> tuple[float, tuple[float, float]]:
    """Pearson r of (x, y) and its 95 % percentile interval over paired bootstrap resamples.

    x is [n] or [n, R] (R independent estimates of each x_i: x_i is their mean, and each bootstrap
    resample also resamples the R estimates of every pair it draws, so the interval carries their
    noise). Resamples with a constant x or y are dropped. Needs ≥ 3 pairs (ValueError otherwise).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.size or y.size < 3:
        raise ValueError(f"need x [n] or [n, R] and y [n] with n >= 3 values, got shapes {x.shape} and {y.shape}")
    r = float(np.corrcoef(x.mean(1), y)[0, 1])
    key_pairs, key_repeats = jax.random.split(key)
    index = np.asarray(jax.random.randint(key_pairs, (num_bootstrap, y.size), 0, y.size))
    repeats = np.asarray(jax.random.randint(key_repeats, (num_bootstrap, y.size, x.shape[1]), 0, x.shape[1]))
    xs, ys = np.take_along_axis(x[index], repeats, axis=2).mean(2), y[index]
    xs, ys = xs - xs.mean(1, keepdims=True), ys - ys.mean(1, keepdims=True)
    denominator = np.sqrt(np.sum(xs**2, 1) * np.sum(ys**2, 1))
    valid = denominator > 0
    samples = np.sum(xs * ys, 1)[valid] / denominator[valid]
    return r, (float(np.quantile(samples, 0.025)), float(np.quantile(samples, 0.975)))


def _pattern_string(bits: np.ndarray) -> str:
    return "".join("+" if b else "-" for b in bits)


def bayesian_sampler_nested_experiment(
    key: PRNGKeyArray,
    *,
    num_bits: int = 7,
    num_train: int = 118,
    widths: tuple[int, ...] = (40, 40),
    bias_scale: float = 0.1,
    num_training_sets: int = 3,
    optimizer: str = "adam",
    learning_rate: float = 0.01,
    batch_size: int | None = None,
    num_runs: int = 8192,
    num_steps: int = 100,
    num_functions: int = 20,
    num_live: int = 100,
    num_ess_steps: int = 20,
    num_repeats: int = 3,
    num_bootstrap: int = 2000,
    max_seconds_per_function: float | None = None,
) -> NestedBayesianSamplerResult:
    """P_SGD(f|S) by vmapped training and P_B(f|S) by nested sampling on `num_training_sets` sets
    (module docstring for the equations).

    The defaults are the 7-bit experiment of benchmarks/results/experiment_bayesian_sampler_7bit.md
    (its cost is there). Keys: one per training set, each split into the training set, the
    optimiser's initialisations and steps, P(S), the draws in S, one per function and the
    bootstrap. `num_steps` caps each run (runs that have not fitted S by then are dropped and
    counted in `converged`); `max_seconds_per_function` caps a nested run (its log P_B is then
    −inf and it is left out of r). Raises ValueError on a bad size or optimizer.
    """
    if not 3 <= num_bits <= 10:
        raise ValueError(f"num_bits must be in [3, 10], got {num_bits}")
    num_inputs = 2**num_bits
    if not 1 <= num_train < num_inputs:
        raise ValueError(f"num_train must be in [1, {num_inputs - 1}], got {num_train}")
    if num_functions < 3 or num_training_sets < 1 or num_repeats < 1:
        raise ValueError(f"need num_functions >= 3, num_training_sets >= 1 and num_repeats >= 1, got {num_functions}, "
                         f"{num_training_sets}, {num_repeats}")
    network = MultilayerNetwork(num_bits, tuple(widths))
    scales = network.prior_scales(1.0, bias_scale)
    hinge = _hinge_factory(network)
    inputs = boolean_inputs(num_bits)
    targets = target_function(inputs)
    results = []
    for set_key in jax.random.split(key, num_training_sets):
        key_split, key_init, key_train, key_prior, key_functions, key_bootstrap = jax.random.split(set_key, 6)
        train_index = np.sort(np.asarray(jax.random.permutation(key_split, num_inputs))[:num_train])
        test_index = np.setdiff1d(np.arange(num_inputs), train_index)
        train_set = _Labelled(inputs[train_index], targets[train_index])

        def fits(w, train_set=train_set):
            return hinge(w, train_set) == 0

        def loss_fn(w, batch):
            return 0.5 * jnp.mean(jnp.square(network.apply(w, batch["x"]) - batch["y"]))

        started = time.perf_counter()
        initial = jax.random.normal(key_init, (num_runs, network.dimension)) * scales[None, :]
        run = train(loss_fn, {"x": train_set.inputs, "y": train_set.labels}, initial, key_train, optimizer=optimizer,
                    learning_rate=learning_rate, num_steps=num_steps, batch_size=batch_size, stop_fn=fits)
        ends = jnp.asarray(run.positions[run.converged])
        signs = np.asarray(jax.jit(jax.vmap(lambda w: network.apply(w, inputs[test_index]) > 0))(ends))
        patterns, counts = np.unique(signs, axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:num_functions]
        train_seconds = time.perf_counter() - started

        started = time.perf_counter()
        target_test = np.asarray(targets)[test_index] > 0
        test_sets = [_Labelled(inputs[test_index], jnp.asarray(np.where(patterns[i], 1.0, -1.0), jnp.float32))
                     for i in order]
        log_p_train, train_errors = np.zeros(num_repeats), np.zeros(num_repeats)
        log_p_bayes, bayes_errors = np.zeros((len(order), num_repeats)), np.zeros((len(order), num_repeats))
        for repeat, (key_s, key_repeat) in enumerate(zip(jax.random.split(key_prior, num_repeats),
                                                          jax.random.split(key_functions, num_repeats))):
            prior_of_s = region_log_volume(key_s, hinge, train_set, scales, num_live=num_live,
                                           num_ess_steps=num_ess_steps)
            log_p_train[repeat], train_errors[repeat] = prior_of_s.log_volume, prior_of_s.std_error
            for row, (function_key, test_set) in enumerate(zip(jax.random.split(key_repeat, len(order)), test_sets)):
                key_start, key_run = jax.random.split(function_key)
                start = region_draws(key_start, prior_of_s.inside, scales, hinge, train_set, num_draws=num_live,
                                     num_ess_steps=num_ess_steps)
                volume = region_log_volume(key_run, hinge, test_set, scales, initial=start, base_fn=hinge,
                                           base_args=train_set, num_live=num_live, num_ess_steps=num_ess_steps,
                                           max_seconds=max_seconds_per_function)
                log_p_bayes[row, repeat], bayes_errors[row, repeat] = volume.log_volume, volume.std_error
        nested_seconds = time.perf_counter() - started
        total = int(counts.sum())
        rows = []
        for row, index in enumerate(order):
            count = int(counts[index])
            p_sgd = count / total
            value, error = _combine(log_p_bayes[row], bayes_errors[row])
            rows.append(NestedFunctionRow(
                _pattern_string(patterns[index]), count, float(np.log(p_sgd)), float(np.sqrt((1 - p_sgd) / count)),
                value, error, float(np.sqrt(np.mean(bayes_errors[row] ** 2) / num_repeats)),
                tuple(float(v) for v in log_p_bayes[row]), float(np.mean(patterns[index] == target_test))))
        finite = np.all(np.isfinite(log_p_bayes), axis=1)
        if np.sum(finite) >= 3:
            pearson, interval = bootstrap_pearson(log_p_bayes[finite], [r.log_p_sgd for r, ok in zip(rows, finite) if ok],
                                                  key_bootstrap, num_bootstrap)
        else:
            pearson, interval = float("nan"), (float("nan"), float("nan"))
        train_value, train_error = _combine(log_p_train, train_errors)
        results.append(TrainingSetResult(
            tuple(int(i) for i in train_index), int(run.converged.sum()), int(len(counts)), train_value, train_error,
            float(np.sqrt(np.mean(train_errors**2) / num_repeats)), tuple(float(v) for v in log_p_train), pearson,
            interval, tuple(rows), {"train": train_seconds, "nested": nested_seconds}))
    return NestedBayesianSamplerResult(num_bits, num_train, tuple(widths), optimizer, num_runs, num_live, num_ess_steps,
                                       num_repeats, tuple(results))


def _combine(values: np.ndarray, std_errors: np.ndarray) -> tuple[float, float]:
    """Mean of independent runs' log estimates and its standard error: the runs' spread sd/√R
    (R ≥ 2), or the single run's own error (R = 1); −inf if any run was capped."""
    if not np.all(np.isfinite(values)):
        return float("-inf"), float("nan")
    if values.size == 1:
        return float(values[0]), float(std_errors[0])
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))

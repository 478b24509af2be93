"""`slt.nested.region_log_volume`: the prior mass of {w : net(w) implements f} (Mingard's P(f)) by
nested sampling, against exact rejection counts on a tiny network, and the experiment built on it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt import experiments
from slt.nested import region_draws, region_log_volume

NUM_BITS, WIDTH = 3, 6
NETWORK = experiments.MultilayerNetwork(NUM_BITS, (WIDTH,))
SCALES = NETWORK.prior_scales(1.0, 0.1)
INPUTS = experiments.boolean_inputs(NUM_BITS)
POWERS = 2 ** np.arange(2**NUM_BITS)


def hinge(w, labelled):
    """K(w) = Σ_x relu(−y_x net(w, x)) over the (inputs, labels) pair `labelled`."""
    inputs, labels = labelled
    return jnp.sum(jax.nn.relu(-labels * NETWORK.apply(w, inputs)))


@pytest.fixture(scope="module")
def exact_codes():
    """The function code of 2^19 prior draws: exact rejection counts (relative se ≤ 2 % at P ≥ 5e-3)."""
    draws = jax.random.normal(jax.random.key(11), (1 << 19, NETWORK.dimension)) * SCALES[None, :]
    signs = jax.jit(jax.vmap(lambda w: NETWORK.apply(w, INPUTS) > 0))(draws)
    return np.asarray(signs).astype(np.int64) @ POWERS


def labels_of(code):
    return jnp.asarray(((code >> np.arange(2**NUM_BITS)) & 1) * 2.0 - 1.0, jnp.float32)


def exact_log_mass(codes, selected):
    """log of the share of draws in `selected` (a boolean mask) and its binomial standard error."""
    count = int(np.sum(selected))
    share = count / codes.size
    return np.log(share), np.sqrt((1 - share) / count)


def test_prior_mass_matches_exact_counts(exact_codes):
    """log P(f) by nested sampling agrees with rejection counts within the runs' stated error bar,
    from P ≈ 0.1 down to P ≈ 5e-3 (about 50 nested-sampling steps deep)."""
    values, counts = np.unique(exact_codes, return_counts=True)
    order = np.argsort(-counts)
    chosen = [values[order[i]] for i in (0, 6, 20)] + [values[np.argmin(np.abs(counts - 5e-3 * exact_codes.size))]]
    num_runs = 4
    z_scores = []
    for code, key in zip(chosen, jax.random.split(jax.random.key(0), len(chosen))):
        runs = [region_log_volume(run_key, hinge, (INPUTS, labels_of(code)), SCALES, num_live=100)
                for run_key in jax.random.split(key, num_runs)]
        assert all(run.stop_reason == "live share reached" for run in runs)
        nested = np.mean([run.log_volume for run in runs])
        nested_se = np.sqrt(np.mean([run.std_error**2 for run in runs]) / num_runs)
        exact, exact_se = exact_log_mass(exact_codes, exact_codes == code)
        z_scores.append((nested - exact) / np.hypot(nested_se, exact_se))
    assert np.max(np.abs(z_scores)) < 3.5, z_scores


def test_conditional_mass_inside_a_base_region(exact_codes):
    """P(f|S) = P(f)/P(S) with the moves confined to S (initial live points from `region_draws`)
    agrees with the ratio of rejection counts; P(S) itself too. A label 0 drops an input from the
    hinge, so every labelled set has all 8 inputs (one shape: fewer compilations)."""
    train = np.array([0, 3, 5, 6])
    top = np.unique(exact_codes, return_counts=True)
    code = int(top[0][np.argsort(-top[1])[3]])
    labels = labels_of(code)
    in_train = np.isin(np.arange(2**NUM_BITS), train)
    train_set = (INPUTS, jnp.where(in_train, labels, 0.0))
    test_set = (INPUTS, jnp.where(in_train, 0.0, labels))
    train_mask = np.sum(1 << train)
    in_s = (exact_codes & train_mask) == (code & train_mask)
    key_s, key_draws, key_f = jax.random.split(jax.random.key(1), 3)
    prior_of_s = region_log_volume(key_s, hinge, train_set, SCALES, num_live=100)
    exact_s, exact_s_se = exact_log_mass(exact_codes, in_s)
    assert abs(prior_of_s.log_volume - exact_s) < 3.5 * np.hypot(prior_of_s.std_error, exact_s_se)

    num_runs = 4
    conditional = []
    for run_key in jax.random.split(key_f, num_runs):
        key_start, key_run = jax.random.split(run_key)
        start = region_draws(key_start, prior_of_s.inside, SCALES, hinge, train_set, num_draws=100)
        conditional.append(region_log_volume(key_run, hinge, test_set, SCALES, initial=start,
                                             base_fn=hinge, base_args=train_set, num_live=100))
    nested = np.mean([run.log_volume for run in conditional])
    nested_se = np.sqrt(np.mean([run.std_error**2 for run in conditional]) / num_runs)
    count_f, count_s = np.sum(exact_codes == code), np.sum(in_s)
    exact = np.log(count_f / count_s)
    exact_se = np.sqrt(1 / count_f - 1 / count_s)
    assert abs(nested - exact) < 3.5 * np.hypot(nested_se, exact_se), (nested, exact, nested_se, exact_se)


def test_region_volume_refuses_bad_input():
    labelled = (INPUTS, labels_of(5))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="num_live"):
        region_log_volume(key, hinge, labelled, SCALES, num_live=2)
    with pytest.raises(ValueError, match="stop_fraction"):
        region_log_volume(key, hinge, labelled, SCALES, num_live=100, stop_fraction=0.95)
    with pytest.raises(ValueError, match="base_fn needs"):
        region_log_volume(key, hinge, labelled, SCALES, base_fn=hinge, base_args=labelled)
    with pytest.raises(ValueError, match="initial must have shape"):
        region_log_volume(key, hinge, labelled, SCALES, num_live=10, initial=jnp.zeros((3, NETWORK.dimension)))
    with pytest.raises(ValueError, match="inside the base region"):
        region_log_volume(key, hinge, labelled, SCALES, num_live=10, initial=jnp.ones((10, NETWORK.dimension)),
                          base_fn=hinge, base_args=labelled)
    with pytest.raises(ValueError, match="finite and >= 0"):
        region_log_volume(key, lambda w, a: jnp.sum(w) * jnp.nan, None, SCALES, num_live=10)
    with pytest.raises(ValueError, match="inside the region"):
        region_draws(key, jnp.ones((2, NETWORK.dimension)), SCALES, hinge, labelled, num_draws=100)


def test_bootstrap_pearson():
    key = jax.random.key(3)
    x = np.arange(6.0)
    r, interval = experiments.bootstrap_pearson(x, 2 * x + 1, key)
    assert r == pytest.approx(1.0) and interval[0] == pytest.approx(1.0)
    noisy = x + np.array([0.5, -0.5, 0.5, -0.5, 0.5, -0.5])
    r, (low, high) = experiments.bootstrap_pearson(x, noisy, key)
    assert low < r < high <= 1.0
    with pytest.raises(ValueError, match=">= 3 values"):
        experiments.bootstrap_pearson([1.0, 2.0], [1.0, 2.0], key)


def test_bootstrap_pearson_carries_the_noise_of_repeated_estimates():
    """x given as R noisy repeats per pair: r is that of the means, and the interval widens with
    the repeats' spread (the same means, noisier repeats)."""
    key = jax.random.key(4)
    x = np.linspace(0.0, 5.0, 8)
    y = x + np.array([0.3, -0.2, 0.1, -0.3, 0.2, -0.1, 0.3, -0.2])
    offsets = np.array([-1.0, 0.0, 1.0])
    quiet = x[:, None] + 0.05 * offsets[None, :]
    noisy = x[:, None] + 2.0 * offsets[None, :]
    r_quiet, (low_quiet, _) = experiments.bootstrap_pearson(quiet, y, key)
    r_noisy, (low_noisy, _) = experiments.bootstrap_pearson(noisy, y, key)
    assert r_quiet == pytest.approx(r_noisy) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert low_noisy < low_quiet - 0.05


def test_nested_experiment_refuses_bad_sizes():
    with pytest.raises(ValueError, match="num_bits"):
        experiments.bayesian_sampler_nested_experiment(jax.random.key(0), num_bits=2)
    with pytest.raises(ValueError, match="num_train"):
        experiments.bayesian_sampler_nested_experiment(jax.random.key(0), num_bits=4, num_train=16)


@pytest.mark.slow
def test_nested_experiment_against_rejection_counts():
    """At 4 bits (|S| = 8) P_B(f|S) of the experiment's top functions agrees with exact rejection
    counts on the same network within the stated error bars, and the report is complete."""
    settings = dict(num_bits=4, num_train=8, widths=(8,))
    result = experiments.bayesian_sampler_nested_experiment(
        jax.random.key(2), num_training_sets=1, num_runs=512, num_steps=300, num_functions=5, num_live=100,
        num_repeats=1, **settings)  # one run: its own stated error bar is what is checked
    (training_set,) = result.training_sets
    network = experiments.MultilayerNetwork(4, (8,))
    scales = network.prior_scales(1.0, 0.1)
    inputs = experiments.boolean_inputs(4)
    train = np.asarray(training_set.train_index)
    test = np.setdiff1d(np.arange(16), train)

    @jax.jit
    def chunk_signs(key):
        draws = jax.random.normal(key, (1 << 19, network.dimension)) * scales[None, :]
        return jax.vmap(lambda w: network.apply(w, inputs) > 0)(draws)

    signs = np.concatenate([np.asarray(chunk_signs(k)) for k in jax.random.split(jax.random.key(5), 8)])
    labels = np.asarray(experiments.target_function(inputs)) > 0
    in_s = np.all(signs[:, train] == labels[train][None, :], axis=1)
    test_codes = signs[in_s][:, test].astype(np.int64) @ (2 ** np.arange(test.size))
    exact_s = np.log(in_s.mean())
    assert abs(training_set.log_p_train - exact_s) < 3.5 * np.hypot(training_set.log_p_train_std_error,
                                                                   np.sqrt(1 / in_s.sum()))
    z_scores = []
    for row in training_set.functions:
        code = int(np.sum(np.array([c == "+" for c in row.test_pattern]) * 2 ** np.arange(test.size)))
        count = int(np.sum(test_codes == code))
        exact = np.log(count / test_codes.size)
        z_scores.append((row.log_p_bayes - exact) / np.hypot(row.log_p_bayes_std_error, np.sqrt(1 / count)))
    assert np.max(np.abs(z_scores)) < 3.5, z_scores
    low, high = training_set.pearson_interval
    assert low <= training_set.pearson <= high

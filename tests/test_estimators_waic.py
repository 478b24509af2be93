"""WAIC and the singular fluctuation on a conjugate Gaussian model with exact posterior draws.

Model x ~ N(w, I_d), prior w ~ N(0, s² I_d), truth w0 = MU. The posterior is N(m, v I) with
v = 1/(n + 1/s²), m = v Σ x_i, and the predictive is N(m, (1 + v) I), so every quantity has a
closed form per data set:

- Var_w[log p(x_i|w)] = v |x_i − m|² + v² d/2, hence E[V_n] = v E Σ|x_i − m|² + n v² d/2 with
  E Σ|x_i − m|² = (n − 1) d + n (v/s²)² (|w0|² + d/n);
- G_n = KL(q || predictive) = (d/2)(log(1 + v) + 1/(1 + v) − 1) + |w0 − m|²/(2(1 + v)).

Watanabe (2010): E[V_n] → 2ν = d, E[n G_n] → λ = d/2, E[n(T_n − S_n)] → λ − 2ν = −d/2 and
E[n(WAIC − S_n)] = E[n G_n] + O(1/n), with S_n = −(1/n) Σ log q(x_i) the empirical entropy.
"""

import numpy as np
import pytest
from test_estimators_exact import Z_TOLERANCE

from estimators import waic

D = 2
N = 200
PRIOR_SCALE = 10.0
MU = np.array([0.5, -0.3])
DRAWS = 500
REPLICATES = 200


def one_data_set(rng):
    data = MU + rng.standard_normal((N, D))
    variance = 1 / (N + 1 / PRIOR_SCALE**2)
    mean = variance * data.sum(axis=0)
    draws = mean + np.sqrt(variance) * rng.standard_normal((DRAWS, D))
    squared = (np.sum(data**2, axis=1)[None, :] - 2 * draws @ data.T + np.sum(draws**2, axis=1)[:, None])
    log_likelihood = -0.5 * squared - 0.5 * D * np.log(2 * np.pi)
    entropy = np.mean(0.5 * np.sum((data - MU) ** 2, axis=1) + 0.5 * D * np.log(2 * np.pi))
    generalisation = 0.5 * D * (np.log1p(variance) + 1 / (1 + variance) - 1) + np.sum((MU - mean) ** 2) / (2 * (1 + variance))
    return log_likelihood, entropy, generalisation


@pytest.fixture(scope="module")
def replicates():
    rng = np.random.default_rng(40)
    rows = []
    for _ in range(REPLICATES):
        log_likelihood, entropy, generalisation = one_data_set(rng)
        result = waic(log_likelihood)
        rows.append((result.singular_fluctuation, result.singular_fluctuation_std_error,
                     N * (result.training_loss - entropy), N * (result.mean - entropy), N * generalisation))
    return np.array(rows)


def mean_and_error(values):
    return values.mean(), values.std(ddof=1) / np.sqrt(values.size)


def test_singular_fluctuation_matches_its_exact_expectation_and_d_over_2(replicates):
    variance = 1 / (N + 1 / PRIOR_SCALE**2)
    expected_sum = (N - 1) * D + N * (variance / PRIOR_SCALE**2) ** 2 * (MU @ MU + D / N)
    exact_nu = 0.5 * (variance * expected_sum + N * variance**2 * D / 2)
    assert abs(exact_nu - D / 2) < 0.01  # ν = λ = d/2 for a regular model
    mean, error = mean_and_error(replicates[:, 0])
    assert abs(mean - exact_nu) < Z_TOLERANCE * error
    # The per-data-set MCSE of ν̂ is about the Monte-Carlo part of the spread of ν̂ over data sets.
    assert np.median(replicates[:, 1]) < replicates[:, 0].std()


def test_training_and_waic_errors_follow_watanabes_equations(replicates):
    training, error_training = mean_and_error(replicates[:, 2])
    assert abs(training - (D / 2 - 2 * D / 2)) < Z_TOLERANCE * error_training + 2 * D / N
    generalisation, error_generalisation = mean_and_error(replicates[:, 4])
    assert abs(generalisation - D / 2) < Z_TOLERANCE * error_generalisation + 2 * D / N
    # Paired: WAIC − S_n estimates G_n per data set up to O(1/n²).
    difference, error_difference = mean_and_error(replicates[:, 3] - replicates[:, 4])
    assert abs(difference) < Z_TOLERANCE * error_difference + 2 * D / N


def test_waic_input_errors_and_shapes():
    rng = np.random.default_rng(41)
    log_likelihood, _, _ = one_data_set(rng)
    chains = waic(log_likelihood.reshape(4, DRAWS // 4, N))
    flat = waic(log_likelihood)
    assert chains.mean == pytest.approx(flat.mean, rel=1e-12)
    bad = log_likelihood.copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="draw 3, datum 7"):
        waic(bad)
    with pytest.raises(ValueError, match="empty"):
        waic(np.zeros((0, 5)))
    with pytest.raises(ValueError, match=r"\[draws, n\]"):
        waic(np.zeros(5))

"""Estimators against exact expectations, tight enough to catch the planted bugs of tests/mutants.toml
(waic-variance-ddof)."""

import numpy as np

import estimators


def test_functional_variance_is_unbiased_with_few_draws():
    """V_n = Σ_i Var_w[log p(X_i|w)] is estimated with the unbiased (ddof 1) variance over draws
    (estimators.waic), so E[V̂_n] = Σ_i σ_i² for any number of draws S. With S = 4 Gaussian draws
    per datum the ddof-0 variance is 25 % low. 200 replicates of n = 20 data: the standard error
    of the mean V̂_n (from the replicates' spread) is ≈ 1.6 % of Σσ², so the ddof-0 bug lies
    ≈ 16 standard errors off (observed 15.2–17.8). Observed z on the unmutated code, seeds 0–3:
    −0.25, −1.71, −0.09, −0.92; seed 0 is used."""
    rng = np.random.default_rng(0)
    num_replicates, num_draws, num_data = 200, 4, 20
    scales = rng.uniform(0.05, 0.3, size=num_data)  # σ_i of log p(X_i|w) across posterior draws
    centres = -1.0 - rng.uniform(size=num_data)
    values = []
    for _ in range(num_replicates):
        pointwise = centres + scales * rng.standard_normal((num_draws, num_data))
        values.append(estimators.waic(pointwise, min_ess=1.0).functional_variance)
    values = np.asarray(values)
    exact = float(np.sum(scales**2))
    std_error = values.std(ddof=1) / np.sqrt(num_replicates)
    assert std_error < 0.02 * exact
    assert abs(values.mean() - exact) < 4 * std_error, (values.mean(), std_error, exact)

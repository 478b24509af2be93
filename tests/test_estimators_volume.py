"""Volume scaling V(ε) = P_φ(K < ε) ≈ c ε^λ (−log ε)^(m−1) with a uniform prior on [−1, 1]^d.

Closed forms: K = w1² + w2² → V = πε/4 (ε <= 1; λ = 1, m = 1); K = w⁴ → V = ε^(1/4) (λ = 1/4);
K = w1² w2² → V = P(|w1 w2| < √ε) = √ε (1 + ½ log(1/ε)) (λ = 1/2, m = 2). The last one's
"+1" makes log V − log(−log ε) = ½ log ε + log(½ + 1/u), u = −log ε, whose slope in log ε is
2/(u(u + 2)): with m = 2 held fixed, the fitted λ is 1/2 plus a weighted mean of that.
"""

import numpy as np
import pytest
from test_estimators_exact import Z_TOLERANCE

from estimators import rlct_from_loss_samples, rlct_from_volume, volume_from_losses

CASES = {
    "regular": (lambda w: w[:, 0] ** 2 + w[:, 1] ** 2, 1.0, np.geomspace(1e-2, 0.5, 7)),
    "quartic": (lambda w: w[:, 0] ** 4, 0.25, np.geomspace(1e-6, 1e-1, 7)),
}


def uniform_draws(rng, num_samples):
    return rng.uniform(-1.0, 1.0, size=(num_samples, 2))


def test_binomial_volumes_cover_the_closed_form():
    rng = np.random.default_rng(50)
    losses = CASES["regular"][0](uniform_draws(rng, 200_000))
    epsilons = np.geomspace(1e-3, 1.0, 7)
    estimate = volume_from_losses(losses, epsilons)
    z = (estimate.volumes - np.pi * epsilons / 4) / estimate.std_errors
    assert np.all(np.abs(z) < Z_TOLERANCE)
    assert estimate.num_samples == 200_000 and np.all(np.diff(estimate.counts) >= 0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_exact_volumes_give_the_exact_slope(case):
    _, rlct, epsilons = CASES[case]
    volumes = np.pi * epsilons / 4 if case == "regular" else epsilons**0.25
    result = rlct_from_volume(epsilons, volumes, 0.01 * volumes)
    assert result.mean == pytest.approx(rlct, rel=1e-10)


@pytest.mark.parametrize("case", sorted(CASES))
def test_prior_samples_recover_lambda_with_a_calibrated_jackknife_error(case):
    # R = 100 replicate sets of 20 000 prior draws: mean λ̂ within Z·sd/√R of λ, and the spread of
    # λ̂ over replicates matches the jackknife SE (band [0.75, 1.33], about ±4 sampling errors of a
    # ratio of standard deviations at R = 100). The independent-points SE of `rlct_from_volume`
    # is about 1.5 times too small here (nested counts), which this band rejects.
    loss_fn, rlct, epsilons = CASES[case]
    rng = np.random.default_rng(51)
    estimates, std_errors = [], []
    for _ in range(100):
        result = rlct_from_loss_samples(loss_fn(uniform_draws(rng, 20_000)), epsilons)
        estimates.append(result.mean)
        std_errors.append(result.std_error)
    estimates = np.asarray(estimates)
    spread = estimates.std(ddof=1)
    assert abs(estimates.mean() - rlct) < Z_TOLERANCE * spread / np.sqrt(estimates.size)
    assert 0.75 < spread / np.sqrt(np.mean(np.square(std_errors))) < 1.33


def test_normal_crossing_volume_needs_the_multiplicity_term():
    epsilons = np.geomspace(1e-8, 1e-2, 7)
    u = -np.log(epsilons)
    volumes = np.sqrt(epsilons) * (1 + u / 2)
    bias = 2 / (u * (u + 2))  # local slope of the neglected term, see the module docstring
    fixed = rlct_from_volume(epsilons, volumes, 0.01 * volumes, multiplicity=2)
    assert 0.5 + bias.min() < fixed.mean < 0.5 + bias.max()
    ignored = rlct_from_volume(epsilons, volumes, 0.01 * volumes, multiplicity=1)
    assert ignored.mean < 0.5 - 0.05  # without (−log ε)^(m−1) the slope is far too small
    # From prior samples, m = 2 fixed: within Z·SE of the same fit (same binomial weights) of the
    # exact volumes.
    rng = np.random.default_rng(52)
    w = uniform_draws(rng, 400_000)
    losses = (w[:, 0] * w[:, 1]) ** 2
    sampled = rlct_from_loss_samples(losses, epsilons, multiplicity=2)
    weights = volume_from_losses(losses, epsilons).std_errors
    target = rlct_from_volume(epsilons, volumes, weights * volumes / volume_from_losses(losses, epsilons).volumes,
                              multiplicity=2)
    assert abs(sampled.mean - target.mean) < Z_TOLERANCE * sampled.std_error
    assert not sampled.unreliable


def test_volume_input_errors():
    with pytest.raises(ValueError, match="empty"):
        volume_from_losses([], [0.1])
    with pytest.raises(ValueError, match="non-finite"):
        volume_from_losses([0.1, np.nan], [0.1])
    with pytest.raises(ValueError, match="no draws"):
        rlct_from_loss_samples(np.ones(100), [1e-3, 1e-2])
    with pytest.raises(ValueError, match="< 1"):
        rlct_from_volume([0.1, 2.0], [0.1, 0.5], [0.01, 0.01])
    with pytest.raises(ValueError, match="volumes must be > 0"):
        rlct_from_volume([0.1, 0.2], [0.0, 0.5], [0.01, 0.01])

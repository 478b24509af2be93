"""Exact finite-temperature λ(t) by quadrature, against closed forms and 1-D reductions."""

import jax
import numpy as np
import pytest
from scipy import integrate

import toy_models


@pytest.mark.parametrize("t", [10.0, 1e3, 1e5])
def test_regular_model_matches_the_gaussian_closed_form(t):
    # K = (w − w0)²/2, prior N(0, 1): the tempered posterior is N(t w0/(t+1), 1/(t+1)), so
    # λ(t) = t E[K] = (t/2) (1/(t+1) + (w0/(t+1))²).
    model = toy_models.get("regular", d=1)
    w0 = 0.5
    expected = 0.5 * t * (1 / (t + 1) + (w0 / (t + 1)) ** 2)
    assert toy_models.finite_temperature_rlct(model, t) == pytest.approx(expected, rel=1e-9)


def reduced_rlct(t, k):
    """K = w1² w2^(2k)/2 with N(0,1)²: the w1 integral is Gaussian, leaving a 1-D integral in w2."""
    def inner(power):
        return lambda w: np.exp(-w * w / 2) * (w ** (2 * k) / 2) ** power * (1 + t * w ** (2 * k)) ** -(0.5 + power)
    scale = t ** (-1 / (2 * k))
    options = dict(points=[0.1 * scale, scale, 10 * scale], limit=1000, epsabs=0, epsrel=1e-11)
    partition = integrate.quad(inner(0), 0, 40, **options)[0]
    mean_k = integrate.quad(inner(1), 0, 40, **options)[0]
    return t * mean_k / partition


@pytest.mark.parametrize("powers", [(1, 1), (1, 2), (1, 3)])
@pytest.mark.parametrize("t", [1e2, 1e4])
def test_normal_crossings_match_the_one_dimensional_reduction(powers, t):
    model = toy_models.get("normal_crossing", powers=powers)
    assert toy_models.finite_temperature_rlct(model, t) == pytest.approx(reduced_rlct(t, powers[1]), rel=1e-7)


def test_finite_temperature_rlct_approaches_lambda_from_below_and_shows_the_multiplicity_gap():
    model = toy_models.get("normal_crossing", powers=(1, 1))  # λ = 1/2, m = 2
    values = [toy_models.finite_temperature_rlct(model, t) for t in (1e2, 1e3, 1e4)]
    assert values[0] < values[1] < values[2] < 0.5
    # λ(t) = λ − (m − 1)/(log t + c): solving for c at each t gives one constant.
    offsets = [1 / (0.5 - v) - np.log(t) for v, t in zip(values, (1e2, 1e3, 1e4))]
    assert np.ptp(offsets) < 0.1


def test_density_is_normalised_and_refuses_what_it_cannot_do():
    density = toy_models.tempered_density_grid(toy_models.get("tanh", H=1), 100.0, resolution=301)
    assert density.weights.sum() == pytest.approx(1.0) and density.weights.min() >= 0
    with pytest.raises(ValueError, match="d <= 2"):
        toy_models.tempered_density_grid(toy_models.get("regular", d=3), 10.0)
    with pytest.raises(ValueError, match="need not be normalisable"):
        toy_models.tempered_density_grid(toy_models.get("regular", d=1), 10.0, use_prior=False)
    with pytest.raises(ValueError, match="truncates the density"):
        toy_models.tempered_density_grid(toy_models.get("regular", d=1), 1.0, half_width=1.0)


def test_empirical_finite_temperature_rlct_is_only_for_normal_crossings():
    model = toy_models.get("regular", d=1)
    with pytest.raises(ValueError, match="normal_crossing models only"):
        toy_models.empirical_finite_temperature_rlct(model, model.sample_data(jax.random.key(0), 10), 10.0)

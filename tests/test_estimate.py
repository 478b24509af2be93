"""`slt estimate` and `slt.estimate`: the JSON contract, errors, determinism, and the
estimate against the exact finite-temperature value λ(t) of a 2-D model (with a planted bug)."""

import contextlib
import io
import json
from typing import NamedTuple

import jax
import numpy as np
import pytest

import estimators
import toy_models
from slt.cli import main
from slt.estimate import (
    DEFAULT_BIAS_TOLERANCE,
    DEFAULT_NUM_DRAWS,
    DEFAULT_THINNING,
    GRADIENT_SHARE_DRAWS_PER_CHAIN,
    LIGHT_TAILED_SHARE,
    MAX_GRADIENT_SHARE,
    MAX_REFINED_LENGTHENING,
    MIN_LANGEVIN_TIME,
    REFINE_BIAS_FACTOR,
    EstimateHooks,
    EstimateResult,
    GradientStatistics,
    drawn_gradient_statistics,
    estimate,
    estimate_many,
    in_model_coordinates,
    pilot_gradient_statistics_jobs,
    step_size_bias,
    tail_persisted,
)
from slt.estimate.methods import fit_systematic_error
from slt.run import Trace
from slt.samplers import TemperedPosterior

# A small, fast configuration shared by the contract tests (one sampling run for all of them).
SMALL = dict(n=2000, num_chains=2, num_draws=100)
SMALL_ARGS = ["--n", "2000", "--chains", "2", "--draws", "100", "--seed", "3"]


def run_cli(argv):
    """(exit code, stdout, stderr) of `slt` with argv."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_json():
    code, out, err = run_cli(["estimate", "normal_crossing", "--set", "powers=1,2", *SMALL_ARGS, "--json"])
    assert code == 0, err
    assert out.count("\n") == 1, "--json prints exactly one line: one JSON object"
    return json.loads(out)


def test_json_has_every_contract_key_with_its_type(cli_json):
    top = {
        "model": str, "params": dict, "method": str, "estimate": float, "std_error": float,
        "true_rlct": float, "multiplicity": int, "n": int, "nbeta": float, "diagnostics": dict,
        "seconds": float, "interval": list, "reliable": bool, "seed": int, "systematic_error": float,
    }
    for key, kind in top.items():
        assert isinstance(cli_json[key], kind), (key, cli_json[key])
    assert cli_json["model"] == "normal_crossing(powers=1,2, prior_powers=0,0)"
    assert cli_json["params"] == {"powers": [1, 2], "prior_powers": [0, 0]}
    assert cli_json["method"] == "llc"
    assert cli_json["true_rlct"] == 0.25 and cli_json["true_rlct_fraction"] == "1/4"
    assert cli_json["n"] == 2000
    assert cli_json["nbeta"] == pytest.approx(min(1000.0, 2000 / np.log(2000)))
    assert cli_json["std_error"] > 0 and cli_json["seconds"] > 0
    diagnostics = cli_json["diagnostics"]
    numbers = ("rhat", "ess_bulk", "ess_tail", "mala_acceptance", "step_size", "exact_at_nbeta",
               "predicted_step_size_bias", "localization", "beta")
    for key in numbers:
        assert isinstance(diagnostics[key], float), (key, diagnostics[key])
    assert isinstance(diagnostics["reliable"], bool) and diagnostics["reliable"] == cli_json["reliable"]
    assert diagnostics["unreliable"] == (not diagnostics["reliable"])
    assert isinstance(diagnostics["reasons"], list) and isinstance(diagnostics["warnings"], list)
    assert diagnostics["reliable"] == (not diagnostics["reasons"])
    calibration = diagnostics["step_size_calibration"]
    assert calibration["step_size"] == diagnostics["step_size"] <= calibration["mala_step_size"]
    assert len(calibration["candidates"]) == len(calibration["acceptance"])
    assert diagnostics["exact_at_nbeta"] == pytest.approx(
        toy_models.finite_temperature_rlct(toy_models.get("normal_crossing", powers=(1, 2)), cli_json["nbeta"]))
    assert "Monte-Carlo" in diagnostics["interval_note"]
    # systematic_error is the predicted SGLD bias in λ's units: ε E|ĝ|²/4 = predicted relative bias × λ̂
    # (the relative one divides by λ̂ floored at 0.05), and it widens the interval on both sides
    gap = max(cli_json["estimate"], 0.05)
    assert cli_json["systematic_error"] == pytest.approx(diagnostics["predicted_step_size_bias"] * gap, rel=1e-4)
    half_width = 1.96 * cli_json["std_error"] + cli_json["systematic_error"]
    assert cli_json["interval"] == pytest.approx([cli_json["estimate"] - half_width, cli_json["estimate"] + half_width])


def test_unknown_true_rlct_is_null_in_json():
    result = EstimateResult("tanh(H=2, true_units=1)", {"H": 2, "true_units": 1}, "llc", 1.0, 0.1, None, None,
                            1000, 100.0, {"reasons": [], "x": np.float64(np.nan)}, 1.0)
    text = json.dumps(result.to_json(), allow_nan=False)
    assert json.loads(text)["true_rlct"] is None and json.loads(text)["diagnostics"]["x"] is None


def test_the_interval_adds_the_systematic_error_to_the_monte_carlo_error():
    fields = ("normal_crossing(powers=1)", {"powers": (1,)}, "llc", 0.5, 0.01, None, None, 1000, 100.0,
              {"reasons": []}, 1.0)
    assert EstimateResult(*fields).interval == pytest.approx((0.5 - 0.0196, 0.5 + 0.0196))
    widened = EstimateResult(*fields, systematic_error=0.03)
    assert widened.interval == pytest.approx((0.5 - 0.0496, 0.5 + 0.0496))
    assert widened.to_json()["systematic_error"] == 0.03 and widened.to_json()["interval"] == pytest.approx(
        [0.4504, 0.5496])
    assert "± 0.03 (SGLD bias)" in widened.summary() and "SGLD bias" not in EstimateResult(*fields).summary()


def test_same_seed_gives_the_same_estimate_from_the_cli_and_the_library(cli_json):
    model = toy_models.get("normal_crossing", powers=(1, 2))
    result = estimate(model, "llc", key=jax.random.key(3), **SMALL)
    assert result.estimate == cli_json["estimate"]
    assert result.std_error == cli_json["std_error"]
    assert result.diagnostics["step_size"] == cli_json["diagnostics"]["step_size"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["estimate", "nope"], "unknown model family 'nope'"),
        (["estimate", "rrr", "--set", "M=x"], "must be integer-valued"),
        (["estimate", "rrr", "--set", "Q=1"], "unknown parameter 'Q'"),
        (["estimate", "rrr", "--set", "M=2", "--set", "H=2", "--set", "N=2", "--set", "r=5"], "exceeds"),
        (["estimate", "regular", "--method", "foo"], "unknown method 'foo'"),
        (["estimate", "regular", "--n", "1"], "n must be an integer >= 2"),
        (["estimate", "regular", "--chains", "0"], "num_chains must be an integer >= 1"),
        (["estimate", "regular", "--draws", "1"], "num_draws must be an integer >= 2"),
        (["estimate", "regular", "--thinning", "0"], "thinning must be an integer >= 1"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(argv, message):
    if argv[1] == "regular":
        argv = argv[:2] + ["--set", "d=1"] + argv[2:]
    code, out, err = run_cli(argv)
    assert code == 2 and out == ""
    assert err.startswith("slt estimate: error: ") and message in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="llc", nbeta=-1.0), "nbeta must be"),
        (dict(method="wbic", nbeta=10.0), "wbic runs at β*"),
        (dict(method="llc", localization=-1.0), "localization must be"),
        (dict(method="llc", batch_size=0), "batch_size must be"),
        (dict(method="llc", step_size=0.0), "step_size must be"),
        (dict(method="llc", nbetas=[10.0, 100.0]), "nbetas only for method 'rlct'"),
        (dict(method="rlct", nbetas=[10.0, 100.0]), "at least 4 distinct nbetas"),
        (dict(method="ti", nbeta=10.0), "ti integrates over a β ladder"),
        (dict(method="ti", localization=1.0), "ti integrates the global posterior"),
        (dict(method="waic", nbeta=10.0), "waic samples the posterior at β = 1"),
        (dict(method="waic", localization=1.0), "waic samples the global posterior"),
    ],
)
def test_library_refuses_bad_arguments_before_sampling(kwargs, message):
    with pytest.raises(ValueError, match=message):
        estimate(toy_models.get("regular", d=1), key=jax.random.key(0), **kwargs)


def test_library_needs_a_key_and_a_model():
    with pytest.raises(TypeError):
        estimate(toy_models.get("regular", d=1))  # no default seed anywhere
    with pytest.raises(ValueError, match="ToyModel"):
        estimate(object(), key=jax.random.key(0))
    with pytest.raises(ValueError, match="unknown model family"):
        estimate("nope", key=jax.random.key(0))


def test_step_size_bias_formula_is_the_gaussian_sgld_variance_inflation():
    # One regular direction of curvature h, no minibatch noise: λ = 1/2, E|∇U|² = h, and SGLD's
    # stationary variance is 1/(h(1 − εh/2)), so the relative bias of λ̂ is εh/2 to first order.
    h, epsilon = 1000.0, 2e-5
    predicted = step_size_bias(epsilon, GradientStatistics(mean_squared_gradient=h, mean_scaled_loss_gap=0.5))
    assert predicted == pytest.approx(epsilon * h / 2)
    assert predicted == pytest.approx(1 / (1 - epsilon * h / 2) - 1, rel=0.02)


@pytest.mark.slow
def test_the_systematic_error_is_the_bias_of_a_large_step_size():
    # regular(d=2) on the population at t = 1000: the exact λ(t) is known and the posterior is
    # Gaussian. SGLD at step ε inflates a direction of curvature h, with gradient noise of variance
    # c x² (fresh minibatches), to the variance v = 1/(h − εh²/2 − εc/2); ε E|ĝ|²/4 = ε (h² + c) v/4
    # on the run's own draws is then exactly the excess (hv − 1)/2 of its share of λ̂, not only to
    # first order. It counts the prior's share 1/(t + 1) of h as likelihood: a bound of
    # systematic_error / t. A given ε with εt = 0.3 plants a bias of about 18 %: the estimate minus
    # systematic_error must match λ(t) within 4 se plus that bound, while the estimate alone must not
    # (the planted bias is caught).
    model = toy_models.get("regular", d=2)
    t = 1000.0
    exact = toy_models.finite_temperature_rlct(model, t)
    result = estimate(model, "llc", key=jax.random.key(5), nbeta=t, population=True, step_size=0.3 / t,
                      num_chains=8, num_draws=4000)
    relative = result.systematic_error / result.estimate
    assert 0.1 < relative < 0.25, relative  # the planted bias is large ...
    tolerance = 4 * result.std_error + result.systematic_error / t
    assert tolerance < 0.5 * result.systematic_error  # ... against the tolerance
    assert abs(result.estimate - result.systematic_error - exact) < tolerance, (
        result.estimate, result.std_error, result.systematic_error, exact)
    assert abs(result.estimate - exact) > tolerance  # planted: without the systematic term it fails
    low, high = result.interval
    assert low <= exact <= high


# --------------------------------------------------------------------------------------------
# Statistical check against the exact population-limit λ(t) (toy_models.finite_temperature_rlct)

STAT_MODEL = dict(powers=(1, 2))  # K = w1² w2⁴ / 2, λ = 1/4, m = 1, d = 2
STAT_RUN = dict(n=100_000, nbeta=100.0, num_chains=4, num_draws=8000)  # 100 000 steps per chain at the default thinning
# Errors not covered by the standard error, bounded explicitly:
# - finite n at the true w*: the run sees L_n, not the population K. For this singular model the
#   first-order effect is a term −f(w) S_xy/n (f = w1 w2², S_xy = Σ x y ~ √n) in L_n(w) − L_n(0),
#   of relative size ~ √β, not β as for regular models. The bound used is the exact difference
#   |λ_n(t) − λ(t)| for the run's own data set (quadrature of the empirical tempered posterior,
#   `toy_models.empirical_finite_temperature_rlct`), plus 0.002;
# - SGLD step size and minibatch noise: the calibration aims at 2 % of λ̂ and the run reports its
#   own prediction (checked < 5 % below); bounded by 5 % of λ(t).
STEP_SIZE_BIAS = 0.05


def llc_error_in_tolerance(result: EstimateResult, exact: float, finite_n_bound: float) -> tuple[float, float]:
    tolerance = 4 * result.std_error + finite_n_bound + STEP_SIZE_BIAS * exact
    return abs(result.estimate - exact), tolerance


@pytest.fixture(scope="module")
def exact_lambda_t():
    return toy_models.finite_temperature_rlct(toy_models.get("normal_crossing", **STAT_MODEL), STAT_RUN["nbeta"])


def test_the_finite_n_term_vanishes_as_the_data_grow():
    # The empirical λ_n(t) tends to λ(t) as n grows at fixed t (here with exact sufficient statistics).
    model = toy_models.get("normal_crossing", **STAT_MODEL)
    exact = toy_models.finite_temperature_rlct(model, 100.0)
    gaps = [abs(toy_models.empirical_finite_temperature_rlct(model, model.sample_data(jax.random.key(0), n), 100.0) - exact)
            for n in (1_000, 1_000_000)]
    assert gaps[1] < 0.01 < gaps[0] or gaps[1] < 0.2 * gaps[0], gaps


@pytest.mark.slow
def test_llc_matches_the_exact_finite_temperature_value_and_a_planted_bug_fails(exact_lambda_t):
    model = toy_models.get("normal_crossing", **STAT_MODEL)
    key = jax.random.key(11)
    result = estimate(model, "llc", key=key, **STAT_RUN)
    assert not result.unreliable, result.diagnostics["reasons"]
    assert result.diagnostics["predicted_step_size_bias"] < STEP_SIZE_BIAS
    assert result.diagnostics["exact_at_nbeta"] == pytest.approx(exact_lambda_t)
    data = model.sample_data(jax.random.split(key)[0], STAT_RUN["n"])  # the data `estimate` drew
    finite_n_bound = abs(toy_models.empirical_finite_temperature_rlct(model, data, STAT_RUN["nbeta"]) - exact_lambda_t) + 0.002
    assert finite_n_bound < 0.1 * exact_lambda_t  # the bound is a small part of the tolerance
    error, tolerance = llc_error_in_tolerance(result, exact_lambda_t, finite_n_bound)
    assert error < tolerance, (result.estimate, result.std_error, exact_lambda_t)
    # The tolerance is tight enough to matter: it is well below the gap to the true λ = 1/4 ...
    assert tolerance < 0.5 * abs(float(model.true_rlct) - exact_lambda_t) + 4 * result.std_error

    # ... and it catches nβ off by 2. Planted bug 1: the LLC multiplies by 2t what was sampled at t.
    error, tolerance = llc_error_in_tolerance(result._replace(estimate=2 * result.estimate), exact_lambda_t,
                                              finite_n_bound)
    assert error > tolerance
    # Planted bug 2: the posterior samples at 2t while the LLC uses t (a real run through the code).
    def doubled(**kwargs):
        return TemperedPosterior(**{**kwargs, "nbeta": 2 * kwargs["nbeta"]})

    planted = estimate(model, "llc", key=jax.random.key(11), exact=False,
                       hooks=EstimateHooks(make_posterior=doubled), **STAT_RUN)
    error, tolerance = llc_error_in_tolerance(planted, exact_lambda_t, finite_n_bound)
    assert error > tolerance, (planted.estimate, planted.std_error, exact_lambda_t)


SPREAD_KEYS = tuple(200 + seed for seed in range(4))


@pytest.mark.slow
@pytest.mark.parametrize("num_draws, thinning, should_pass",
                         [(DEFAULT_NUM_DRAWS, DEFAULT_THINNING, True), (1000, 10, False)])
def test_the_default_run_lets_the_chains_spread_along_the_singular_set(num_draws, thinning, should_pass):
    # w1 w2⁴ at the defaults (n = 10⁶, t = 1000). The chains start at w* = 0 and must spread along
    # the axes, which only the prior confines (relaxation time 1 in Langevin time, ~1/ε steps);
    # the time spent near the crossing lowers t E[L − L(w*)]. Pooled over 4 data sets, the LLC
    # must match each data set's exact λ_n(t) within 3 pooled se + the 2 % SGLD bias target. The
    # planted bug is the old default, 1000 draws at thinning 10, a quarter of the steps (measured
    # before the step-size refinement: −23, −10, −17, −19 %).
    model = toy_models.get("normal_crossing", **STAT_MODEL)
    keys = [jax.random.key(seed) for seed in SPREAD_KEYS]
    results = estimate_many(model, "llc", keys=keys, num_draws=num_draws, thinning=thinning, exact=False)
    relative_errors, relative_variances = [], []
    for key, result in zip(keys, results):
        data = model.sample_data(jax.random.split(key)[0], result.n)  # the data `estimate` drew
        exact = toy_models.empirical_finite_temperature_rlct(model, data, result.nbeta)
        relative_errors.append(result.estimate / exact - 1)
        relative_variances.append((result.std_error / exact) ** 2)
    pooled = float(np.mean(relative_errors))
    pooled_std_error = float(np.sqrt(np.sum(relative_variances))) / len(keys)
    tolerance = 3 * pooled_std_error + 0.02
    assert tolerance < 0.15  # tight enough to tell the two run lengths apart
    assert (abs(pooled) < tolerance) == should_pass, (thinning, relative_errors, pooled_std_error)


def test_diagnostics_report_the_langevin_time_and_warn_when_it_is_short():
    model = toy_models.get("regular", d=1)
    settings = dict(n=2000, num_chains=2, num_draws=50, pilot_steps=20, exact=False)
    short = estimate(model, "llc", key=jax.random.key(0), thinning=1, step_size=1e-4, **settings)
    long = estimate(model, "llc", key=jax.random.key(0), thinning=20, step_size=2e-3, **settings)
    for result, step_size in ((short, 1e-4), (long, 2e-3)):
        diagnostics = result.diagnostics
        assert diagnostics["langevin_time"] == pytest.approx(diagnostics["num_steps"] * step_size)
    assert short.diagnostics["langevin_time"] < MIN_LANGEVIN_TIME <= long.diagnostics["langevin_time"]
    assert any("Langevin time" in warning for warning in short.diagnostics["warnings"])
    assert not any("Langevin time" in warning for warning in long.diagnostics["warnings"])


def test_a_run_whose_own_draws_predict_too_much_bias_is_continued_at_a_smaller_step_size():
    # The pilot measures E|ĝ|² near w*; where the chains go the gradient can be larger (rrr). The
    # planted miscalibration: a pilot that sees a tenth of E|ĝ|², so ε comes out ~10× too large
    # (measured: predicted bias 20 %, λ̂ 24 % high). The run's own draws must catch it and the
    # continued run must match the exact λ(t) of the sampled posterior (population: exp(−tK) φ,
    # no data-set fluctuation) within 3 se + the refinement's bias bound 1.5 × 2 %.
    def underestimating_pilot(*args, **kwargs):
        return [s._replace(mean_squared_gradient=s.mean_squared_gradient / 10)
                for s in pilot_gradient_statistics_jobs(*args, **kwargs)]

    model = toy_models.get("regular", d=1)
    exact = toy_models.finite_temperature_rlct(model, 1000.0)
    run = dict(key=jax.random.key(3), population=True, num_chains=8, num_draws=1000, thinning=10, exact=False,
               hooks=EstimateHooks(pilot_gradient_statistics=underestimating_pilot))
    bias_bound = REFINE_BIAS_FACTOR * DEFAULT_BIAS_TOLERANCE

    refined = estimate(model, **run)
    diagnostics = refined.diagnostics
    [earlier] = diagnostics["step_size_refinements"]
    assert earlier["predicted_step_size_bias"] > 2 * bias_bound  # the planted error was large ...
    assert diagnostics["predicted_step_size_bias"] < bias_bound  # ... and is gone
    assert diagnostics["step_size"] < earlier["step_size"] / 5
    assert diagnostics["langevin_time"] == pytest.approx(diagnostics["num_steps"] * diagnostics["step_size"]
                                                         + earlier["num_steps"] * earlier["step_size"])
    assert abs(refined.estimate - exact) < 3 * refined.std_error + bias_bound * exact, (refined.estimate, exact)

    unrefined = estimate(model, **run, max_step_size_refinements=0)  # the planted bug: no refinement
    assert unrefined.estimate == pytest.approx(earlier["llc"], rel=1e-6)  # the refined run continued this one
    assert abs(unrefined.estimate - exact) > 3 * unrefined.std_error + bias_bound * exact
    assert "lower the step size" in " ".join(unrefined.diagnostics["reasons"])

    # A step size the caller gives is theirs: never refined.
    given = estimate(model, **run, step_size=earlier["step_size"])
    assert given.diagnostics["step_size_refinements"] == [] and given.diagnostics["step_size"] == earlier["step_size"]


@pytest.mark.slow
def test_wbic_reports_wbic_and_the_implied_lambda_at_watanabe_beta():
    n = 2000
    result = estimate(toy_models.get("regular", d=1), "wbic", key=jax.random.key(5), n=n, num_chains=2, num_draws=200)
    assert result.method == "wbic" and result.nbeta == pytest.approx(n / np.log(n))
    diagnostics = result.diagnostics
    assert diagnostics["beta"] == pytest.approx(1 / np.log(n))
    # WBIC = n L_n(w*) + λ̂ log n by construction of the control variate.
    assert result.estimate == pytest.approx(diagnostics["n_loss_at_truth"] + diagnostics["implied_rlct"] * np.log(n))
    assert diagnostics["implied_rlct_std_error"] == pytest.approx(result.std_error / np.log(n))
    # The implied λ is the LLC at β*, so its predicted SGLD bias is in λ's units, and WBIC's is log n times it.
    assert diagnostics["implied_rlct_systematic_error"] == pytest.approx(
        diagnostics["predicted_step_size_bias"] * max(diagnostics["implied_rlct"], 0.05), rel=1e-3)
    assert result.systematic_error == pytest.approx(diagnostics["implied_rlct_systematic_error"] * np.log(n))
    json.dumps(result.to_json(), allow_nan=False)


@pytest.mark.slow
def test_rlct_reports_the_sweep_and_the_fitted_multiplicity():
    result = estimate(toy_models.get("normal_crossing", powers=(1, 1)), "rlct", key=jax.random.key(6),
                      n=100_000, num_chains=2, num_draws=200)
    diagnostics = result.diagnostics
    assert len(diagnostics["nbetas"]) == 5 == len(diagnostics["per_temperature"]) == len(diagnostics["exact_per_temperature"])
    assert result.nbeta == pytest.approx(max(diagnostics["nbetas"]))
    for key in ("multiplicity_estimate", "multiplicity_std_error", "integer_multiplicity", "rlct_continuous_m",
                "rlct_at_integer_multiplicity"):
        assert np.isfinite(diagnostics[key])
    weights = np.array([item["weight"] for item in diagnostics["model_weights"]])
    values = np.array([item["rlct"] for item in diagnostics["model_weights"]])
    assert np.sum(weights) == pytest.approx(1.0) and result.estimate == pytest.approx(np.sum(weights * values))
    # The model-averaged error bar counts the spread between shapes, so it is never below the chosen shape's.
    assert result.std_error >= min(abs(v - result.estimate) for v in values)
    # Each temperature's predicted SGLD bias, carried through the same fit, is the systematic error.
    per_temperature = diagnostics["per_temperature"]
    biases = [p["systematic_error"] for p in per_temperature]
    assert all(b > 0 for b in biases)
    errors = [p["std_error"] for p in per_temperature]
    refit = lambda values: estimators.fit_rlct_multiplicity(diagnostics["nbetas"], values, errors,
                                                            second_order=True).averaged_rlct
    assert result.systematic_error == pytest.approx(
        fit_systematic_error(refit, [p["llc"] for p in per_temperature], biases))
    assert result.interval[1] - result.estimate == pytest.approx(1.96 * result.std_error + result.systematic_error)
    json.dumps(result.to_json(), allow_nan=False)


def test_a_fit_carries_each_temperatures_bias_through_in_absolute_value():
    # λ̂ = 2 λ̂(t₁) − λ̂(t₂) (a two-point linear extrapolation): shifts 2 s₁ and s₂, added.
    extrapolate = lambda values: 2 * values[0] - values[1]
    assert fit_systematic_error(extrapolate, [0.4, 0.3], [0.01, 0.02]) == pytest.approx(0.04)
    assert fit_systematic_error(extrapolate, [0.4, 0.3], [0.0, 0.0]) == 0.0


# --------------------------------------------------------------------------------------------
# Free energy by thermodynamic integration against the closed-form evidence of linear regression


def exact_regular_free_energy_gap(model, data) -> float:
    """F_n − n L_n(w*) for y = X w + N(0, 1) noise and prior N(0, I), in closed form:

        F_n = (n/2) log 2π + ½ yᵀy − ½ bᵀA⁻¹b + ½ log det A,   A = I + XᵀX,  b = Xᵀy.
    """
    x, y = np.asarray(data.inputs, np.float64), np.asarray(data.targets, np.float64)[:, 0]
    precision, projection = np.eye(x.shape[1]) + x.T @ x, x.T @ y
    sign, log_det = np.linalg.slogdet(precision)
    residual = y - x @ np.asarray(model.w_star, np.float64)
    return float(0.5 * y @ y - 0.5 * projection @ np.linalg.solve(precision, projection) + 0.5 * log_det
                 - 0.5 * residual @ residual)


TI_RUN = dict(n=2000, num_chains=4, num_draws=400)
TI_STEP_SIZE_BIAS = 0.05  # each rung's SGLD bias is calibrated to 2 %; budget 5 % of F_n − n L_n(w*)


def ti_error_in_tolerance(result: EstimateResult, exact_gap: float) -> tuple[float, float]:
    gap = result.diagnostics["free_energy_minus_n_loss"]
    tolerance = 4 * result.std_error + 3 * result.diagnostics["discretisation_error"] + TI_STEP_SIZE_BIAS * exact_gap
    return abs(gap - exact_gap), tolerance


@pytest.mark.slow
def test_ti_matches_the_closed_form_evidence_and_a_planted_bug_fails():
    model = toy_models.get("regular", d=1)
    key = jax.random.key(21)
    result = estimate(model, "ti", key=key, **TI_RUN)
    data = model.sample_data(jax.random.split(key)[0], TI_RUN["n"])
    exact_gap = exact_regular_free_energy_gap(model, data)
    diagnostics = result.diagnostics
    assert result.estimate == pytest.approx(diagnostics["n_loss_at_truth"] + diagnostics["free_energy_minus_n_loss"])
    error, tolerance = ti_error_in_tolerance(result, exact_gap)
    assert error < tolerance, (diagnostics["free_energy_minus_n_loss"], result.std_error, exact_gap)
    assert tolerance < 0.25 * exact_gap  # tight enough to mean something
    # Planted bug: every rung samples at 2nβ while the integral uses nβ.
    doubled = EstimateHooks(make_posterior=lambda **kwargs: TemperedPosterior(**{**kwargs, "nbeta": 2 * kwargs["nbeta"]}))
    planted = estimate(model, "ti", key=key, exact=False, hooks=doubled, **TI_RUN)
    error, tolerance = ti_error_in_tolerance(planted, exact_gap)
    assert error > tolerance, (planted.diagnostics["free_energy_minus_n_loss"], exact_gap)


def fluctuation_within_tolerance(result: EstimateResult, truth: float) -> bool:
    # Tolerance: 4 MCSE of ν̂ plus the calibrated SGLD bias budget (5 %) plus the O(1/√n) finite-n
    # term (n = 5000: 3 %).
    diagnostics = result.diagnostics
    fluctuation, fluctuation_se = diagnostics["singular_fluctuation"], diagnostics["singular_fluctuation_std_error"]
    return abs(fluctuation - truth) < 4 * fluctuation_se + 0.08 * truth


@pytest.mark.slow
def test_waic_singular_fluctuation_of_a_regular_model_is_half_the_dimension():
    # For a regular model at β = 1, ν = d/2 (Watanabe 2010).
    d, n = 2, 5000
    model, key = toy_models.get("regular", d=d), jax.random.key(8)
    result = estimate(model, "waic", key=key, n=n, num_chains=4, num_draws=800)
    diagnostics = result.diagnostics
    assert fluctuation_within_tolerance(result, d / 2), (diagnostics["singular_fluctuation"],
                                                         diagnostics["singular_fluctuation_std_error"])
    assert diagnostics["singular_fluctuation_std_error"] < 0.15 * d / 2
    assert result.estimate == pytest.approx(diagnostics["training_loss"] + diagnostics["functional_variance"] / n)
    json.dumps(result.to_json(), allow_nan=False)
    # Planted bug: the posterior sampled at 2nβ (half the spread) must fail the same check.
    doubled = EstimateHooks(make_posterior=lambda **kwargs: TemperedPosterior(**{**kwargs, "nbeta": 2 * kwargs["nbeta"]}))
    planted = estimate(model, "waic", key=key, n=n, num_chains=4, num_draws=800, exact=False, hooks=doubled)
    assert not fluctuation_within_tolerance(planted, d / 2), planted.diagnostics["singular_fluctuation"]


def test_a_refined_run_is_lengthened_to_keep_the_first_runs_langevin_time():
    # A run continued at ε' = ε_0 / k covers k times less Langevin time in as many steps (the
    # README example's seed 0: refined 6.8×, T = 0.75, R-hat 1.033). The refined run must record
    # its draws min(⌈k⌉, cap) times as far apart. Planted: the pilot sees a tenth of E|ĝ|², so
    # k is about 10 and the cap applies; at a third, k is about 3, under the cap.
    for scale in (10, 3):
        def underestimating_pilot(*args, scale=scale, **kwargs):
            return [s._replace(mean_squared_gradient=s.mean_squared_gradient / scale)
                    for s in pilot_gradient_statistics_jobs(*args, **kwargs)]

        result = estimate(toy_models.get("regular", d=1), key=jax.random.key(3), population=True, num_chains=2,
                          num_draws=200, thinning=5, exact=False,
                          hooks=EstimateHooks(pilot_gradient_statistics=underestimating_pilot))
        diagnostics = result.diagnostics
        first = diagnostics["step_size_refinements"][0]
        ratio = first["step_size"] / diagnostics["step_size"]
        assert ratio > 2, ratio  # the planted miscalibration was caught and refined
        factor = min(int(np.ceil(ratio)), MAX_REFINED_LENGTHENING)
        assert diagnostics["thinning"] == 5 * factor > 5 and diagnostics["num_draws"] == 200
        assert diagnostics["num_steps"] == 250 + 1000 * factor and first["num_steps"] == 1250
        recorded_time, first_recorded_time = 1000 * factor * diagnostics["step_size"], 1000 * first["step_size"]
        if scale == 3:  # under the cap the first run's Langevin time is kept in full
            assert ratio < MAX_REFINED_LENGTHENING and recorded_time >= first_recorded_time * (1 - 1e-9), ratio


def test_a_tail_that_does_not_shrink_with_the_step_size_keeps_the_flag():
    """A heavy-tailed run (share > `MAX_GRADIENT_SHARE`) is refined at a smaller ε where the prior
    is not known to cause the tail; the refined run clears the screen only if its largest share
    came down to `LIGHT_TAILED_SHARE` (README example, seed 3: 0.72 → 0.013)."""
    class Stage(NamedTuple):
        earlier_runs: tuple
        gradient_statistics: GradientStatistics

    def stage(before, after):
        return Stage(({"largest_gradient_share": before},), GradientStatistics(1.0, 1.0, after, 4000))

    assert tail_persisted(stage(0.72, 0.9 * MAX_GRADIENT_SHARE))  # below the screen, but not light: the target's
    assert not tail_persisted(stage(0.72, 0.013))  # the step's tail, gone at the smaller ε
    assert not tail_persisted(stage(0.9 * MAX_GRADIENT_SHARE, 0.9 * MAX_GRADIENT_SHARE))  # never heavy-tailed
    assert LIGHT_TAILED_SHARE < MAX_GRADIENT_SHARE


def test_a_heavy_tailed_gradient_marks_the_result_unreliable():
    """Prior |w1 w2| e^{−|w|²/2} on w1²w2², sampled in w (not in the prior's sampling coordinates):
    E|∇log φ|² = ∫ 1/w² |w| dw is infinite, so the predicted SGLD bias is meaningless (this run's
    λ̂ is far above the exact λ(t) = 0.858); a Gaussian-prior regular model with the same settings
    is not flagged. The check is a screen, not a test with a rate: over all draws it measured 0.32,
    0.04 and 0.48 on seeds 0–2 of the heavy model (seed 1 missed) against at most 0.05 on 7 runs of
    two light-tailed models (`MAX_GRADIENT_SHARE`)."""
    heavy = estimate(toy_models.get("normal_crossing", powers=(1, 1), prior_powers=(1, 1)), "llc",
                     key=jax.random.key(0), exact=False, sampling_coordinates=False)
    assert heavy.diagnostics["largest_gradient_share"] > 0.25
    assert any("heavy-tailed gradient" in reason for reason in heavy.diagnostics["reasons"])
    assert heavy.diagnostics["step_size_refinements"] == []  # a prediction it cannot trust is not acted on
    light = estimate(toy_models.get("regular", d=2), "llc", key=jax.random.key(0), exact=False)
    assert light.diagnostics["largest_gradient_share"] < 0.05
    assert not any("heavy-tailed" in reason for reason in light.diagnostics["reasons"])


def test_a_power_prior_with_h_1_is_sampled_where_its_score_is_bounded():
    """w1³w2 with prior |w1 w2| e^{−|w|²/2} (λ = 1/3). In w the prior's score h/w has E|h/w|² = ∞:
    the run is marked unreliable (heavy-tailed gradient; before the coordinates `make accuracy`
    read 0.281 against λ_n(1000) = 0.318 there, unflagged). In u = sign(w) w²
    (`toy_models.PowerPriorCoordinates`) the run must be reliable and match its data set's exact
    λ_n(t) within 3 se plus the 3 % SGLD bias above which a run is refined."""
    model = toy_models.get("normal_crossing", powers=(3, 1), prior_powers=(1, 1))
    key = jax.random.key(0)
    result = estimate(model, "llc", key=key, exact=False)
    assert result.diagnostics["sampling_coordinates"] is not None
    assert not result.unreliable, result.diagnostics["reasons"]
    data = model.sample_data(jax.random.split(key)[0], result.n)  # the data `estimate` drew
    exact = toy_models.empirical_finite_temperature_rlct(model, data, result.nbeta)
    tolerance = 3 * result.std_error + REFINE_BIAS_FACTOR * DEFAULT_BIAS_TOLERANCE * exact
    assert abs(result.estimate - exact) < tolerance, (result.estimate, result.std_error, exact)
    planted = estimate(model, "llc", key=key, exact=False, sampling_coordinates=False)
    assert planted.diagnostics["sampling_coordinates"] is None
    assert any("heavy-tailed gradient" in reason for reason in planted.diagnostics["reasons"])


def test_kept_traces_come_back_in_model_coordinates():
    model = toy_models.get("normal_crossing", powers=(3, 1), prior_powers=(1, 1))
    sampled = model.in_sampling_coordinates()
    u = np.asarray([[0.25, -0.04], [-1.0, 0.0]], np.float32)
    trace = Trace(*([None] * len(Trace._fields)))._replace(final_positions=u)
    (label, mapped), = in_model_coordinates(model, sampled, [("nbeta=1000", trace)])
    assert label == "nbeta=1000" and mapped.positions is None
    np.testing.assert_allclose(mapped.final_positions, [[0.5, -0.2], [-1.0, 0.0]], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# estimate_many: one estimate per key, packed into one compiled call per stage


MANY = dict(n=2000, num_chains=2, num_draws=40, pilot_steps=40, exact=False)


@pytest.fixture(scope="module")
def many_keys():
    return list(jax.random.split(jax.random.key(5), 3))


def test_estimate_many_unpacked_is_estimate_per_key(many_keys):
    model = toy_models.get("normal_crossing", powers=(1, 2))
    many = estimate_many(model, keys=many_keys, pack=False, **MANY)
    for key, result in zip(many_keys, many):
        alone = estimate(model, key=key, **MANY)
        assert (result.estimate, result.std_error) == (alone.estimate, alone.std_error)
        assert result.diagnostics["step_size"] == alone.diagnostics["step_size"]
        assert "packed_jobs" not in result.diagnostics


def test_estimate_many_packed_is_estimate_per_key_up_to_rounding(many_keys):
    """Packed (vmap over jobs of every stage): the same noise, data and calibration as one
    estimate per key. Batching changes float32 rounding, which the chains carry along, so the
    bound is 0.01 se, not equality; a bug mixing up the jobs' data or keys gives independent
    estimates, about 1 se apart (planted: the jobs' sampling keys reversed fails this test)."""
    model = toy_models.get("normal_crossing", powers=(1, 2))
    packed = estimate_many(model, keys=many_keys, pack=True, **MANY)
    for key, result in zip(many_keys, packed):
        alone = estimate(model, key=key, **MANY)
        assert result.diagnostics["packed_jobs"] == 3
        assert result.diagnostics["step_size"] == pytest.approx(alone.diagnostics["step_size"], rel=1e-3)
        assert abs(result.estimate - alone.estimate) < 1e-2 * alone.std_error
    assert len({result.estimate for result in packed}) == 3


def test_estimate_many_refuses_bad_keys_and_settings(many_keys):
    model = toy_models.get("normal_crossing", powers=(1, 2))
    with pytest.raises(ValueError, match="keys is empty"):
        estimate_many(model, keys=[])
    with pytest.raises(ValueError, match="sequence of PRNG keys"):
        estimate_many(model, keys=jax.random.key(0))
    with pytest.raises(ValueError, match=r"keys\[1\] must be a PRNG key"):
        estimate_many(model, keys=[many_keys[0], "3"])  # an int is a seed (the seed rule), a string is nothing
    with pytest.raises(ValueError, match="num_chains must be an integer"):
        estimate_many(model, keys=many_keys, num_chains=0)
    with pytest.raises(TypeError, match="num_chain"):
        estimate_many(model, keys=many_keys, num_chain=2)


def test_the_heavy_tail_screen_counts_a_fixed_number_of_draws_per_chain():
    # max |ĝ|² / Σ|ĝ|² falls as draws are added, so MAX_GRADIENT_SHARE holds for a fixed count: at
    # 4000 draws per chain the screen sees every 4th (the steps 1000 draws at thinning 40 recorded).
    # Measured: over all 4000 draws it missed both heavy-tailed cases of the tests above.
    draws = 4 * GRADIENT_SHARE_DRAWS_PER_CHAIN
    squared = np.ones((4, draws))
    squared[0, 3] = 3000.0  # a screened draw
    trace = Trace(*([None] * len(Trace._fields)))._replace(
        info={"grad_squared_norm": squared}, loss=np.zeros((4, draws)), loss_at_center=np.zeros((4, draws)), nbeta=1.0)
    statistics = drawn_gradient_statistics(trace)
    assert statistics.num_points == 4 * GRADIENT_SHARE_DRAWS_PER_CHAIN
    assert statistics.largest_share == pytest.approx(3000.0 / (3000.0 + 3999.0))
    assert statistics.mean_squared_gradient == pytest.approx((3000.0 + 4 * draws - 1) / (4 * draws))  # every draw
    squared[0, 3], squared[0, 2] = 1.0, 3000.0  # the same spike on a draw the screen skips
    assert drawn_gradient_statistics(trace).largest_share == pytest.approx(1.0 / 4000.0)

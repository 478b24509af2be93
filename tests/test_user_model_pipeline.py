"""A researcher's own model (`toy_models.from_loss`) through `slt.estimate` and `slt batch`
(issue 22): no known λ, so no `true_rlct`, but every diagnostic; methods that need what a user
model does not have (a known λ, a prior to draw from, per-datum likelihoods) refuse in one line.

The statistical check: linear regression y = a·x + b + N(0, 1) written as a user loss is a regular
model with d = 2, so the LLC at t = nβ on its own data set is λ̂ ≈ d/2 (1 − β) (measured at the
true w*, not at the MLE: E[nβ(L_n(ŵ) − L_n(w*))] = −β d/2), with a data-set fluctuation of
standard deviation β √(2d)/2 (β χ²_d / 2). The tolerance adds 4 of those to 4 Monte-Carlo
standard errors and the predicted SGLD bias.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import slt

REPOSITORY = Path(__file__).resolve().parents[1]
NUM_DATA = 20_000

USER_MODELS = """\
import equinox as eqx
import jax
import jax.numpy as jnp
import toy_models


def line(n):
    key_x, key_noise = jax.random.split(jax.random.key(3))
    x = jax.random.normal(key_x, (n,))
    data = {"x": x, "y": 2.0 * x - 1.0 + jax.random.normal(key_noise, (n,))}

    def loss(w, batch):
        return 0.5 * jnp.mean(jnp.square(batch["y"] - w["a"] * batch["x"] - w["b"]))

    return toy_models.from_loss(loss, data, {"a": jnp.asarray(2.0), "b": jnp.asarray(-1.0)}, name="line")


def mlp(n, width):
    key_model, key_x, key_noise = jax.random.split(jax.random.key(4), 3)
    network = eqx.nn.MLP(2, "scalar", width_size=width, depth=1, activation=jnp.tanh, key=key_model)
    x = jax.random.normal(key_x, (n, 2))
    data = {"x": x, "y": jax.vmap(network)(x) + jax.random.normal(key_noise, (n,))}

    def loss(module, batch):
        return 0.5 * jnp.mean(jnp.square(batch["y"] - jax.vmap(module)(batch["x"])))

    return toy_models.from_loss(loss, data, network, name=f"mlp(width={width})")
"""


# the same source serves the in-process tests and the batch's `user_model = "my_models:..."`
_USER_NAMESPACE: dict = {}
exec(USER_MODELS, _USER_NAMESPACE)


def line_model(n=NUM_DATA):
    return _USER_NAMESPACE["line"](n)


def mlp_model(n=2000, width=3):
    return _USER_NAMESPACE["mlp"](n, width)


def test_a_user_regression_model_through_slt_estimate_reads_d_over_2():
    model = line_model()
    result = slt.estimate(model, "llc", key=jax.random.key(0), num_chains=4, num_draws=1000)
    assert result.true_rlct is None and result.multiplicity is None
    assert result.n == NUM_DATA and result.model == "line"
    beta = result.nbeta / NUM_DATA
    expected = (model.dimension / 2) * (1 - beta)
    tolerance = 4 * result.std_error + result.systematic_error + 4 * beta * math.sqrt(2 * model.dimension) / 2
    assert abs(result.estimate - expected) < tolerance, (result.estimate, expected, tolerance)
    record = result.to_json()
    assert record["true_rlct"] is None and record["reliable"] in (True, False)
    for name in ("rhat", "ess_bulk", "mala_acceptance", "step_size", "predicted_step_size_bias"):
        assert np.isfinite(record["diagnostics"][name]), name
    assert result.diagnostics["exact_at_nbeta"] is None
    json.dumps(record, allow_nan=False)


def test_an_equinox_mlp_through_slt_estimate():
    model = mlp_model()
    result = slt.estimate(model, "llc", key=jax.random.key(1), num_chains=2, num_draws=200)
    assert result.true_rlct is None and np.isfinite(result.estimate) and np.isfinite(result.std_error)
    assert 0 < result.estimate < model.dimension  # λ <= d/2 for any model; 0 < λ̂ for a minimum
    assert np.isfinite(result.diagnostics["rhat"])


def test_methods_a_user_model_cannot_take_refuse_in_one_line():
    model = line_model(n=200)
    with pytest.raises(ValueError, match="waic.*user model"):
        slt.estimate(model, "waic", key=jax.random.key(0))
    with pytest.raises(ValueError, match="population.*user model"):
        slt.estimate(model, "llc", key=jax.random.key(0), population=True)
    with pytest.raises(ValueError, match="n = 100.*200 data points"):
        slt.estimate(model, "llc", key=jax.random.key(0), n=100)


def test_user_models_through_slt_batch(tmp_path):
    (tmp_path / "my_models.py").write_text(USER_MODELS)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        "[defaults]\nseeds = [0]\n"
        "sampler = { num_chains = 2, num_draws = 100, pilot_steps = 20, batch_size = 100, exact = false }\n"
        "[[jobs]]\nuser_model = \"my_models:line\"\nparams = { n = 1000 }\n"
        "[[jobs]]\nuser_model = \"my_models:mlp\"\nparams = { n = 500, width = 2 }\n"
        "[[jobs]]\nuser_model = \"my_models:line\"\nparams = { n = 1000 }\nmethod = \"rlct\"\n"
        "sampler = { num_draws = 50 }\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS", "SLT_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPOSITORY), str(tmp_path), env.get("PYTHONPATH")) if p)
    result = subprocess.run([sys.executable, "-m", "slt", "batch", str(spec), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "out" / "jobs").glob("*.json"))]
    assert len(records) == 3
    for record in records:
        assert record["status"] == "ok", record.get("error")
        assert record["true_rlct"] is None and math.isfinite(record["estimate"])
        assert record["config"]["user_model"].startswith("my_models:")
    assert {record["method"] for record in records} == {"llc", "rlct"}
    assert {record["n"] for record in records} == {1000, 500}

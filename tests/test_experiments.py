"""slt.experiments: the three seed experiments on micro settings, their exact pieces, the CLI and figures."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt import experiments
from slt.cli import main
from slt.experiments import boolean_inputs, function_codes

ROOT = Path(__file__).resolve().parent.parent


def test_constructed_networks_compute_the_same_function():
    """direct, idle and extra all output tanh(x1) exactly, with Hessian ranks 3, 5 and 6 (λ = rank/2 where regular)."""
    data = experiments._counting.teacher_data(jax.random.key(0), 50)
    ranks = {}
    for name, w in experiments.construct_networks().items():
        outputs = experiments._counting.NETWORK.apply(jnp.asarray(w), data["x"])
        np.testing.assert_allclose(outputs, jnp.tanh(data["x"][:, 0]), atol=1e-6)
        hessian = jax.hessian(lambda v: experiments._counting._loss(v, data, 0))(jnp.asarray(w))
        eigenvalues = np.linalg.eigvalsh(np.asarray(hessian, np.float64))
        ranks[name] = int(np.sum(eigenvalues > 1e-4 * eigenvalues.max()))
    assert ranks == {"direct": 3, "idle": 5, "extra": 6}


def test_function_codes_and_inputs():
    inputs = boolean_inputs(3)
    assert inputs.shape == (8, 3) and set(np.unique(np.asarray(inputs)).tolist()) == {-1.0, 1.0}
    assert int(function_codes(jnp.asarray([True, False, True, False, False, False, False, False]))) == 5


def test_train_stops_at_the_rule_and_is_one_compiled_call():
    network = experiments.Network(2, 3)
    data = experiments.kink_data(jax.random.key(1), 6)
    initial = jax.random.normal(jax.random.key(2), (32, network.dimension))
    loss = lambda w, b: experiments._common.squared_error(network, w, b["x"], b["y"])  # noqa: E731
    stop = lambda w: loss(w, data) < 0.3  # noqa: E731
    result = experiments.train(loss, data, initial, jax.random.key(3), optimizer="adam", learning_rate=0.05,
                               num_steps=300, stop_fn=stop)
    assert result.positions.shape == (32, network.dimension)
    final = np.asarray(jax.vmap(lambda w: loss(w, data))(jnp.asarray(result.positions)))
    assert np.all(final[result.converged] < 0.3) and result.converged.mean() > 0.5


def test_llc_at_solutions_regular_quadratic():
    """On L = ½ Σ_j h_j w_j² (regular, d = 3) λ̂ at nβ → d/2 = 3/2 for every solution."""
    curvatures = jnp.asarray([[1.0, 2.0, 5.0], [0.5, 1.0, 10.0]])

    def loss(w, data, k):
        return 0.5 * jnp.sum(curvatures[k] * jnp.square(w - data["shift"][0]))

    data = {"shift": jnp.zeros((1, 3))}
    result = experiments.llc_at_solutions(loss, data, jnp.zeros((2, 3)), jax.random.key(4), nbeta=1e4,
                                          localization=1e-3, num_chains=4, num_steps=3000, num_burnin=500)
    z = (result.means - 1.5) / result.std_errors
    assert np.all(np.abs(z) < 4), (result.means, result.std_errors)


@pytest.mark.slow
def test_counting_micro_run_orders_the_networks():
    result = experiments.counting_experiment(jax.random.key(0), num_data=50, num_volume_draws=1 << 14,
                                             num_chains=4, num_steps=1500, num_burnin=500)
    llc = {row.name: row.llc for row in result.rows}
    assert llc["direct"] < llc["extra"]
    assert all(np.all(np.diff(row.volumes) >= 0) for row in result.rows)


@pytest.mark.slow
def test_bayesian_sampler_micro_run():
    result = experiments.bayesian_sampler_experiment(jax.random.key(0), num_prior_draws=1 << 14, num_runs=128,
                                                     num_steps=300, width=8, num_llc_functions=1,
                                                     num_llc_steps=400, optimizers=("sgd", "adam"))
    total = sum(row.p_bayes for row in result.functions)
    assert total == pytest.approx(1.0)
    assert set(result.pearson) == {"sgd", "adam"}
    assert result.functions[0].p_bayes >= result.functions[-1].p_bayes
    measured = [row for row in result.functions if np.isfinite(row.llc)]
    # a polished solution outputs ±f on all 8 inputs; its Jacobian rank is reported beside λ̂
    assert measured and all(1 <= row.jacobian_rank <= 8 for row in measured)
    assert all(row.jacobian_rank == -1 for row in result.functions if not np.isfinite(row.llc))


@pytest.mark.slow
def test_volume_micro_run():
    result = experiments.volume_hypothesis_experiment(jax.random.key(0), num_draws=1 << 14, num_runs=32,
                                                      num_train_steps=300, num_llc=2, num_llc_steps=400)
    assert [m.name for m in result.methods] == ["guess_and_check", "sgd", "sgld"]
    assert np.all(np.diff(result.volumes) >= 0)
    guess = result.methods[0]
    assert guess.num_tried == 1 << 14 and guess.num_accepted <= guess.num_tried


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_cli_json_small(capsys, name):
    assert main(["experiment", name, "--small", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), dict)


def test_cli_rejects_unknown_experiment(capsys):
    with pytest.raises(SystemExit):
        main(["experiment", "nope"])


@pytest.mark.slow
@pytest.mark.parametrize("script, stem", [("fig_experiment_volume.py", "fig_experiment_volume"),
                                          ("fig_experiment_bayesian_sampler.py", "fig_experiment_bayesian_sampler"),
                                          ("fig_experiment_bayesian_sampler_7bit.py",
                                           "fig_experiment_bayesian_sampler_7bit"),
                                          ("fig_experiment_counting.py", "fig_experiment_counting")])
def test_figure_scripts_small(tmp_path, script, stem):
    result = subprocess.run([sys.executable, "-W", "error", str(ROOT / "figures" / script), "--small", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    for suffix in ("png", "pdf"):
        assert (tmp_path / f"{stem}.{suffix}").stat().st_size > 1000

"""slt.trajectory: LLC over checkpoints, packed, restricted, resumable."""

import csv
from math import log

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import estimators
import slt
import slt.trajectory as trajectory
import toy_models

NUM_DATA = 200


def _product_loss(params, batch):
    """y = Σ_j a_j b_j x_j: elementwise, so packed and separate runs agree bitwise."""
    prediction = jnp.sum((params["a"] * params["b"])[None, :] * batch["x"], axis=-1)
    return 0.5 * jnp.mean(jnp.square(batch["y"] - prediction))


@pytest.fixture(scope="module")
def product_model():
    key_x, key_noise = jax.random.split(jax.random.key(11))
    x = jax.random.normal(key_x, (NUM_DATA, 3))
    y = x @ jnp.array([1.0, 0.5, 0.0]) + 0.3 * jax.random.normal(key_noise, (NUM_DATA,))
    w_star = {"a": jnp.array([1.0, 1.0, 0.0]), "b": jnp.array([1.0, 0.5, 0.0])}
    return toy_models.from_loss(_product_loss, {"x": x, "y": y}, w_star)


def _checkpoints(model):
    return [model.w_star, jax.tree_util.tree_map(lambda w: 0.9 * w + 0.05, model.w_star)]


SETTINGS = dict(step_size=1e-3, batch_size=50, num_chains=2, num_draws=60, thinning=2, localization=10.0)


def _separate_run(model, params, key, *, nbeta):
    """One checkpoint through the public driver, as a user would run it alone."""
    posterior = slt.TemperedPosterior(model.loss, model.data, nbeta, params, SETTINGS["localization"])
    sampler = slt.make_sampler("sgld", posterior, step_size=SETTINGS["step_size"], batch_size=SETTINGS["batch_size"])
    num_burnin = SETTINGS["num_draws"] * SETTINGS["thinning"] // 4
    trace = slt.sample(sampler, params, key, num_chains=SETTINGS["num_chains"],
                       num_steps=num_burnin + SETTINGS["num_draws"] * SETTINGS["thinning"], num_burnin=num_burnin,
                       thinning=SETTINGS["thinning"])
    return estimators.llc(trace.loss, trace.loss_at_center, nbeta)


def test_two_checkpoints_equal_two_separate_estimates_with_the_same_keys(product_model):
    key = jax.random.key(3)
    result = trajectory.llc_trajectory(product_model, _checkpoints(product_model), key=key, **SETTINGS)
    nbeta = NUM_DATA / log(NUM_DATA)
    assert result.settings["nbeta"] == pytest.approx(nbeta)
    for index, params in enumerate(_checkpoints(product_model)):
        alone = _separate_run(product_model, params, trajectory.checkpoint_key(key, index), nbeta=nbeta)
        row = result.rows[index]
        assert row["estimate"] == alone.mean and row["std_error"] == alone.std_error
        np.testing.assert_array_equal(row["per_chain"], alone.per_chain)
    assert result.rows[0]["estimate"] != result.rows[1]["estimate"]


def test_the_trajectory_bar_counts_checkpoints_to_the_total(product_model, capsys):
    trajectory.llc_trajectory(product_model, _checkpoints(product_model), key=jax.random.key(3), progress=True,
                              restrict={"a": "a"}, **SETTINGS)
    out, err = capsys.readouterr()
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert out == "" and "100%" in last and "4/4 checkpoints" in last, last  # 2 checkpoints × (all, "a")


def test_restriction_over_all_parameters_equals_the_full_llc(product_model):
    key = jax.random.key(4)
    result = trajectory.llc_trajectory(product_model, _checkpoints(product_model), key=key,
                                       restrict={"by_path": ["a", "b"],
                                                 "by_mask": {"a": np.ones(3, bool), "b": True}}, **SETTINGS)
    nbeta = result.settings["nbeta"]
    for subset_index, subset in ((1, "by_path"), (2, "by_mask")):
        rows = [row for row in result.rows if row["subset"] == subset]
        assert [row["num_parameters"] for row in rows] == [6, 6]
        for index, params in enumerate(_checkpoints(product_model)):
            alone = _separate_run(product_model, params, trajectory.checkpoint_key(key, index, subset_index),
                                  nbeta=nbeta)
            np.testing.assert_allclose(rows[index]["estimate"], alone.mean, rtol=1e-6)
            np.testing.assert_allclose(rows[index]["per_chain"], alone.per_chain, rtol=1e-6)


def test_a_missing_restriction_path_is_refused_naming_it(product_model):
    with pytest.raises(ValueError, match="no parameter at path 'layers/0/weight'"):
        trajectory.llc_trajectory(product_model, _checkpoints(product_model), key=jax.random.key(0),
                                  restrict={"first": "layers/0/weight"}, **SETTINGS)


def test_a_mismatched_checkpoint_is_refused_naming_it(product_model, tmp_path):
    good = _checkpoints(product_model)
    bad = {"a": jnp.zeros(4), "b": jnp.zeros(3)}
    with pytest.raises(ValueError, match=r"checkpoint 'checkpoint\[1\]'.*'a' has shape \(4,\)"):
        trajectory.llc_trajectory(product_model, [good[0], bad], key=jax.random.key(0), **SETTINGS)
    trajectory.save_npz_checkpoint(tmp_path / "step_000010.npz", good[0])
    trajectory.save_npz_checkpoint(tmp_path / "step_000020.npz", {"a": good[1]["a"], "c": good[1]["b"]})
    with pytest.raises(ValueError, match="checkpoint 'step_000020.npz'.*missing parameter 'b'"):
        trajectory.llc_trajectory(product_model, tmp_path, key=jax.random.key(0), **SETTINGS)


def test_npz_folder_gives_the_list_result_and_the_table_has_a_row_per_checkpoint_and_subset(product_model, tmp_path):
    checkpoints = _checkpoints(product_model)
    for step, params in zip((500, 100), checkpoints[::-1]):  # written out of order: sorted by step
        trajectory.save_npz_checkpoint(tmp_path / "ckpt" / f"step_{step:06d}.npz", params)
    key = jax.random.key(5)
    from_folder = trajectory.llc_trajectory(product_model, tmp_path / "ckpt", key=key, restrict={"a": "a"},
                                            **SETTINGS)
    from_list = trajectory.llc_trajectory(product_model, checkpoints, key=key, steps=[100, 500], restrict={"a": "a"},
                                          **SETTINGS)
    assert [row["step"] for row in from_folder.rows] == [100, 500, 100, 500]
    assert [row["estimate"] for row in from_folder.rows] == [row["estimate"] for row in from_list.rows]
    path = trajectory.write_table(from_folder, tmp_path / "llc.csv")
    with open(path) as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4 and {row["subset"] for row in table} == {"all", "a"}
    assert float(table[0]["interval_low"]) < float(table[0]["estimate"]) < float(table[0]["interval_high"])


def test_orbax_checkpoints_are_read(product_model, tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    checkpoints = _checkpoints(product_model)
    with ocp.CheckpointManager(tmp_path / "orbax") as manager:
        for step, params in zip((10, 20), checkpoints):
            manager.save(step, args=ocp.args.StandardSave(params))
        manager.wait_until_finished()
    loaded = trajectory.load_checkpoints(tmp_path / "orbax", product_model.w_star)
    assert [c.step for c in loaded] == [10, 20]
    for checkpoint, params in zip(loaded, checkpoints):
        for got, want in zip(jax.tree_util.tree_leaves(checkpoint.params), jax.tree_util.tree_leaves(params)):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


class _Killed(RuntimeError):
    pass


def test_a_killed_and_resumed_run_gives_identical_rows(product_model, tmp_path):
    checkpoints = _checkpoints(product_model) + [jax.tree_util.tree_map(lambda w: 0.8 * w, product_model.w_star)]
    key = jax.random.key(6)
    settings = dict(SETTINGS, step_size=None, pilot_steps=40, pack_size=2, restrict={"b": "b"})
    uninterrupted = trajectory.llc_trajectory(product_model, checkpoints, key=key, out_dir=tmp_path / "once",
                                              **settings)

    def kill_after_first_pack(pack_number):
        if pack_number == 0:
            raise _Killed

    with pytest.raises(_Killed):
        trajectory.llc_trajectory(product_model, checkpoints, key=key, out_dir=tmp_path / "twice",
                                  on_pack=kill_after_first_pack, **settings)
    assert len(list((tmp_path / "twice" / "rows").rglob("*.json"))) == 2
    resumed = trajectory.llc_trajectory(product_model, checkpoints, key=key, out_dir=tmp_path / "twice", **settings)
    assert resumed.calibration == uninterrupted.calibration
    assert resumed.rows == uninterrupted.rows
    with pytest.raises(ValueError, match="another 'settings'"):
        trajectory.llc_trajectory(product_model, checkpoints, key=key, out_dir=tmp_path / "twice",
                                  **dict(settings, num_draws=80))


CURVATURE = np.array([1.0, 0.5, 2.0, 0.0])


def _quadratic_model(gradient):
    """L(w) = g·w + ½ Σ h_i w_i² (+ 0 · data): a Gaussian localised posterior, exact in closed form."""
    g, h = jnp.asarray(gradient), jnp.asarray(CURVATURE)

    def loss(params, batch):
        w = params["w"]
        return jnp.dot(g, w) + 0.5 * jnp.sum(h * w * w) + 0.0 * jnp.mean(batch)

    return toy_models.from_loss(loss, jnp.zeros((1000, 1)), {"w": jnp.zeros(4)})


def _exact_localised_llc(nbeta, localization, gradient, curvature):
    """(nβ/2) tr(H A⁻¹) − nβ² gᵀA⁻¹(I − ½ nβ H A⁻¹) g with A = nβH + γI (diagonal here)."""
    precision = nbeta * curvature + localization
    return float(np.sum(0.5 * nbeta * curvature / precision
                        - nbeta**2 * gradient**2 / precision * (1 - 0.5 * nbeta * curvature / precision)))


def test_restricted_llc_of_a_block_is_the_exact_block_value():
    model = _quadratic_model(np.zeros(4))
    mask = {"w": np.array([True, False, True, False])}
    result = trajectory.llc_trajectory(model, [model.w_star], key=jax.random.key(7), restrict={"block": mask},
                                       nbeta=100.0, localization=20.0, step_size=2e-4, num_chains=4, num_draws=2000,
                                       thinning=5)
    for row, selected in zip(result.rows, (np.ones(4, bool), mask["w"])):
        exact = _exact_localised_llc(100.0, 20.0, np.zeros(selected.sum()), CURVATURE[selected])
        tolerance = 4 * row["std_error"] + row["systematic_error"]
        assert abs(row["estimate"] - exact) < tolerance, (row["subset"], row["estimate"], exact, tolerance)
        assert row["num_parameters"] == selected.sum()


def test_at_a_non_minimum_the_estimate_is_finite_and_the_diagnostics_read_descent():
    gradient = np.array([0.05, 0.0, 0.02, 0.05])
    model = _quadratic_model(gradient)
    nbeta, localization = 100.0, 50.0
    row = trajectory.llc_trajectory(model, [model.w_star], key=jax.random.key(8), nbeta=nbeta,
                                    localization=localization, step_size=2e-4, num_chains=4, num_draws=2000,
                                    thinning=5).rows[0]
    exact = _exact_localised_llc(nbeta, localization, gradient, CURVATURE)
    geometric = _exact_localised_llc(nbeta, localization, np.zeros(4), CURVATURE)
    assert np.isfinite(row["estimate"]) and 0 < exact < geometric - 0.5
    assert abs(row["estimate"] - exact) < 4 * row["std_error"] + row["systematic_error"]
    assert row["downhill_bound"] == pytest.approx(nbeta**2 * float(np.sum(gradient**2)) / localization, rel=1e-5)
    assert exact <= geometric <= exact + row["downhill_bound"]
    assert row["non_minimum"] and row["escape"] and row["reading"] == "descent"


def test_change_points_find_planted_steps_and_none_in_a_flat_series():
    errors = np.full(30, 0.1)
    flat = np.random.default_rng(0).normal(1.0, 0.1, 30)
    assert trajectory.change_points(flat, errors) == []
    steps = flat + np.repeat([0.0, 2.0, 5.0], 10)
    assert trajectory.change_points(steps, errors) == [10, 20]

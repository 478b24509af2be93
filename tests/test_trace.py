"""Traces: arviz DataTree layout and a netCDF round trip with config, key and versions attached."""

import json
import os

import jax
import numpy as np
import pytest
import xarray

import toy_models
from slt.run import from_datatree, load_trace, package_versions, sample, save_trace, to_datatree
from slt.samplers import TemperedPosterior, make_sampler


@pytest.fixture(scope="module")
def rrr_trace():
    model = toy_models.get("rrr", M=2, H=2, N=2, r=1)
    data = model.sample_data(jax.random.key(0), 100)
    posterior = TemperedPosterior.from_model(model, data, localization=10.0)
    sampler = make_sampler("sgld", posterior, step_size=1e-4, batch_size=10)
    config = {"model": model.label, "n": 100, "seed": 3, "widths": (2, 2, 2), "nested": {"gamma": 10.0}}
    # No burn-in: one compiled phase (XLA on CPU takes seconds per executable).
    trace = sample(sampler, model.w_star, jax.random.key(3), num_chains=3, num_steps=20, thinning=2,
                   record_positions=True, config=config)
    return model, trace


def assert_same_trace(loaded, trace, positions_as):
    for name in ("loss", "loss_at_center"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(trace, name))
        assert getattr(loaded, name).dtype == getattr(trace, name).dtype
    assert loaded.info.keys() == trace.info.keys()
    for name in trace.info:
        np.testing.assert_array_equal(loaded.info[name], trace.info[name])
    for got, want in zip(jax.tree_util.tree_leaves(loaded.positions), jax.tree_util.tree_leaves(positions_as),
                         strict=True):
        np.testing.assert_array_equal(got, want)
    for name in ("sampler", "hyperparameters", "nbeta", "num_data", "num_steps", "num_burnin", "thinning",
                 "key_impl", "num_devices", "versions"):
        assert getattr(loaded, name) == getattr(trace, name), name
    np.testing.assert_array_equal(loaded.key_data, trace.key_data)
    assert loaded.key_data.dtype == np.uint32
    assert loaded.diagnostics.warnings == trace.diagnostics.warnings


def test_datatree_has_posterior_and_sample_stats_groups(rrr_trace):
    _, trace = rrr_trace
    tree = to_datatree(trace)
    assert set(tree.children) == {"posterior", "sample_stats"}
    posterior, sample_stats = tree["posterior"], tree["sample_stats"]
    assert set(posterior.data_vars) == {"loss", "position.A", "position.B"}
    assert set(sample_stats.data_vars) == {"loss_at_center", "mala_acceptance", "grad_squared_norm"}
    assert posterior["loss"].dims == ("chain", "draw") and posterior["loss"].shape == (3, 10)
    assert posterior["position.A"].shape == (3, 10, 2, 2)
    assert json.loads(tree.attrs["config"])["model"] == "rrr(M=2, H=2, N=2, r=1)"


def test_netcdf_round_trip_keeps_arrays_metadata_and_attributes(rrr_trace, tmp_path):
    model, trace = rrr_trace
    path = tmp_path / "run.nc"
    save_trace(trace, path)
    assert os.listdir(tmp_path) == ["run.nc"]  # the temporary file was renamed, nothing left over

    loaded = load_trace(path, position_template=model.w_star)
    assert_same_trace(loaded, trace, trace.positions)
    assert loaded.config == {"model": "rrr(M=2, H=2, N=2, r=1)", "n": 100, "seed": 3, "widths": [2, 2, 2],
                             "nested": {"gamma": 10.0}}  # JSON: tuples come back as lists
    rebuilt_key = jax.random.wrap_key_data(loaded.key_data, impl=loaded.key_impl)
    assert jax.random.key_data(rebuilt_key).tolist() == jax.random.key_data(jax.random.key(3)).tolist()

    without_template = load_trace(path)
    assert set(without_template.positions) == {"position.A", "position.B"}

    with xarray.open_datatree(path, engine="h5netcdf") as tree:
        versions = json.loads(tree.attrs["versions"])
        assert versions == package_versions()
        assert set(versions) >= {"python", "jax", "jaxlib", "numpyro", "blackjax", "arviz", "slt-workbench"}
        assert versions["jax"] == jax.__version__
        assert json.loads(tree.attrs["sampler"]) == "sgld"
        assert json.loads(tree.attrs["key_data"]) == [0, 3]


def test_bare_array_positions_and_a_bare_kernel_round_trip(tmp_path):
    from slt.samplers import sgld

    model = toy_models.get("normal_crossing", powers=(1, 2))
    data = model.sample_data(jax.random.key(1), 50)
    posterior = TemperedPosterior.from_model(model, data)
    kernel = sgld(posterior, step_size=1e-4, batch_size=None, mala_diagnostic=False)
    trace = sample(kernel, model.w_star, jax.random.key(0), num_chains=2, num_steps=5, record_positions=True)
    assert trace.sampler is None and trace.hyperparameters == {} and trace.nbeta is None
    save_trace(trace, tmp_path / "bare.nc")
    loaded = load_trace(tmp_path / "bare.nc")
    assert_same_trace(loaded, trace, trace.positions)
    assert isinstance(loaded.positions, np.ndarray) and loaded.positions.shape == (2, 5, 2)
    assert np.all(np.isnan(loaded.info["mala_acceptance"]))


def test_failed_save_leaves_the_old_file_and_no_temporary(rrr_trace, tmp_path):
    _, trace = rrr_trace
    path = tmp_path / "run.nc"
    save_trace(trace, path)
    before = path.read_bytes()
    bad = trace._replace(config={"model": object()})
    with pytest.raises(TypeError, match=r"config\['model'\] = .* is not JSON-serialisable"):
        save_trace(bad, path)
    assert os.listdir(tmp_path) == ["run.nc"] and path.read_bytes() == before
    save_trace(trace._replace(config={"replaced": True}), path)
    assert load_trace(path).config == {"replaced": True}
    assert os.listdir(tmp_path) == ["run.nc"]


def test_from_datatree_refuses_a_foreign_tree(rrr_trace):
    _, trace = rrr_trace
    tree = to_datatree(trace)
    tree.attrs = {}
    with pytest.raises(ValueError, match="not an slt trace"):
        from_datatree(tree)

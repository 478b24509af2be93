"""The λ(nβ) column of benchmarks/accuracy.py (`make accuracy`): quadrature for d <= 2, nested
sampling otherwise, cached by model and nβ; row and summary arithmetic on synthetic rows and a
cache pre-filled by hand (no sampling)."""

import json
import sys

import pytest


def llc_row(model, d, truth, estimate, quadrature=None):
    """A stored row of accuracy_llc.json, as `row_for` writes it (the fields the column reads)."""
    return {"model": model, "d": d, "lambda": truth, "lambda_fraction": str(truth), "m": 1, "estimate": estimate,
            "std_error": 0.01, "systematic_error": 0.02, "relative_error": abs(estimate - truth) / truth,
            "truth_in_interval": True, "truth_in_mc_interval": True, "nbeta": 1000.0, "exact_at_nbeta": quadrature,
            "relative_error_vs_exact": None, "exact_in_interval": None, "exact_in_mc_interval": None,
            "empirical_exact_at_nbeta": None, "empirical_exact_in_interval": None,
            "empirical_exact_in_mc_interval": None, "reliable": True, "reasons": "", "seconds": 1.0}


def nested_entry(value, low, high, converged=True):
    return {"nested": value, "nested_low": low, "nested_high": high, "stop_reason": "depth reached" if converged
            else "max_seconds", "converged": converged, "log_volume_reached": -20.0, "seconds": 3.0,
            "origin": "accuracy.py"}


def test_row_splits_the_llc_error_into_sampler_error_and_finite_temperature_bias(load_script):
    module = load_script("benchmarks/accuracy.py", "accuracy_under_test")
    row = module.with_finite_temperature(llc_row("x", 5, 2.5, 2.60), 2.40, "nested", 2.30, 2.49)
    assert row["relative_error_vs_exact"] == pytest.approx(0.20 / 2.40)
    assert row["finite_temperature_bias"] == pytest.approx((2.40 - 2.5) / 2.5)
    # sampler error + bias = the llc's error against λ
    assert (row["estimate"] - row["exact_at_nbeta"]) + row["finite_temperature_bias"] * row["lambda"] == pytest.approx(0.10)
    half_width = 1.96 * 0.01 + 0.02  # 0.0396 < 0.20: not covered by the llc's interval
    assert row["exact_in_interval"] is False and row["exact_in_mc_interval"] is False
    # the nested band (sd = 0.19 / 3.92 ≈ 0.048) added in quadrature: √(0.0396² + (1.96 · 0.048)²) ≈ 0.10 < 0.20
    assert row["exact_in_interval_with_band"] is False
    wide = module.with_finite_temperature(llc_row("x", 5, 2.5, 2.60), 2.40, "nested", 2.00, 2.80)
    assert abs(0.20) <= ((1.96 * 0.01 + 0.02) ** 2 + 0.4**2) ** 0.5 and wide["exact_in_interval_with_band"] is True
    covered = module.with_finite_temperature(llc_row("x", 2, 1.0, 1.03), 1.0, "quadrature")
    assert covered["exact_in_interval"] is True and 0.03 <= half_width
    missing = module.with_finite_temperature(llc_row("y", 100, 37.5, 38.0), None, "nested: not converged")
    assert missing["relative_error_vs_exact"] is None and missing["finite_temperature_bias"] is None


def test_from_json_fills_every_row_from_quadrature_or_the_nested_cache(tmp_path, monkeypatch, load_script):
    module = load_script("benchmarks/accuracy.py", "accuracy_under_test")
    stored = {"command": "python benchmarks/accuracy.py", "rows": [
        llc_row("regular(d=2)", 2, 1.0, 1.02, quadrature=0.999),
        llc_row("regular(d=5)", 5, 2.5, 2.56),
        llc_row("dln(widths=10,5,10, r=5)", 100, 37.5, 38.19)]}
    results = tmp_path / "accuracy_llc.json"
    results.write_text(json.dumps(stored))
    cache = tmp_path / "cache.json"
    cache.write_text(json.dumps({"entries": {
        module.cache_key("regular(d=5)", 1000.0): nested_entry(2.55, 2.42, 2.66),
        module.cache_key("dln(widths=10,5,10, r=5)", 1000.0): nested_entry(30.0, 20.0, 40.0, converged=False)}}))

    def no_sampling(*args, **kwargs):
        raise AssertionError("a cached λ(nβ) was sampled again")
    monkeypatch.setattr(module, "nested_entry", no_sampling)
    assert module.main(["--from-json", str(results), "--nested-cache", str(cache)]) == 0
    written = json.loads(results.read_text())
    rows = {r["model"]: r for r in written["rows"]}
    assert rows["regular(d=2)"]["exact_source"] == "quadrature" and rows["regular(d=2)"]["exact_at_nbeta"] == 0.999
    assert rows["regular(d=5)"]["exact_source"] == "nested" and rows["regular(d=5)"]["exact_at_nbeta"] == 2.55
    assert rows["regular(d=5)"]["exact_low"] == 2.42 and rows["regular(d=5)"]["exact_in_interval"] is True
    assert rows["dln(widths=10,5,10, r=5)"]["exact_at_nbeta"] is None  # a run stopped by time gives no value
    assert "not converged" in rows["dln(widths=10,5,10, r=5)"]["exact_source"]
    summary = written["summary"]
    assert summary["with_exact_lambda_t"] == 2 and summary["with_nested_lambda_t"] == 1
    assert summary["without_lambda_t"] == ["dln(widths=10,5,10, r=5)"]
    assert summary["median_finite_temperature_bias"] == pytest.approx((0.001 + 0.05 / 2.5) / 2)
    assert summary["median_relative_error_vs_exact"] == pytest.approx((0.021 / 0.999 + 0.01 / 2.55) / 2)
    markdown = (tmp_path / "accuracy_llc.md").read_text()
    assert "| 2.55 [2.42, 2.66] | nested |" in markdown and "| 0.999 | quad |" in markdown
    # regenerating twice gives the same rows (the quadrature value survives a round trip)
    assert module.main(["--from-json", str(results), "--nested-cache", str(cache)]) == 0
    assert json.loads(results.read_text())["rows"] == written["rows"]


def test_a_cache_miss_samples_once_and_recompute_samples_again(tmp_path, monkeypatch, load_script):
    module = load_script("benchmarks/accuracy.py", "accuracy_under_test")
    results = tmp_path / "accuracy_llc.json"
    results.write_text(json.dumps({"command": "python benchmarks/accuracy.py",
                                   "rows": [llc_row("regular(d=5)", 5, 2.5, 2.56)]}))
    cache = tmp_path / "cache.json"
    calls = []

    def fake_entry(model, nbeta, key, rule):
        calls.append((model.label, nbeta, rule))
        return nested_entry(2.5 + 0.01 * len(calls), 2.4, 2.7)
    monkeypatch.setattr(module, "nested_entry", fake_entry)
    # not the committed llc_against_nested.json, which holds this row
    monkeypatch.setattr(sys.modules["lambda_t_column"], "LLC_AGAINST_NESTED", str(tmp_path / "absent.json"))
    arguments = ["--from-json", str(results), "--nested-cache", str(cache)]
    module.main(arguments)
    module.main(arguments)
    assert calls == [("regular(d=5)", 1000.0, "fold_in(key(0), 2)")]  # regular(d=5) is the catalogue's third model
    assert json.loads(cache.read_text())["entries"][module.cache_key("regular(d=5)", 1000.0)]["nested"] == 2.51
    module.main([*arguments, "--recompute-nested"])
    assert len(calls) == 2 and json.loads(results.read_text())["rows"][0]["exact_at_nbeta"] == 2.52


def test_cache_reads_llc_against_nested_rows_only_with_the_same_settings(tmp_path, monkeypatch, load_script):
    module = load_script("benchmarks/accuracy.py", "accuracy_under_test")
    column = sys.modules["lambda_t_column"]
    row = {"model": "regular(d=5)", "nbeta": 1000.0, "nested": 2.55, "nested_low": 2.42, "nested_high": 2.66,
           "stop_reason": "depth reached", "converged": True, "log_volume_reached": -30.0, "seconds": 16.0}
    table = tmp_path / "llc_against_nested.json"
    monkeypatch.setattr(column, "LLC_AGAINST_NESTED", str(table))
    table.write_text(json.dumps({"settings": column.NESTED_SETTINGS, "seed": 0, "rows": [row]}))
    name = module.cache_key("regular(d=5)", 1000.0)
    assert column.load_nested_cache(str(tmp_path / "none.json"))[name]["nested"] == 2.55
    assert column.load_nested_cache(str(tmp_path / "none.json"), reuse_llc_against_nested=False) == {}
    table.write_text(json.dumps({"settings": {**column.NESTED_SETTINGS, "num_live": 1000}, "seed": 0, "rows": [row]}))
    assert column.load_nested_cache(str(tmp_path / "none.json")) == {}
    own = tmp_path / "own.json"
    column.save_nested_cache(str(own), {name: {**nested_entry(2.6, 2.5, 2.7)},
                                        "x @ nbeta=1.0": {"origin": "llc_against_nested.json"}})
    assert list(json.loads(own.read_text())["entries"]) == [name]  # the table's rows are not copied

"""The λ(nβ) column of benchmarks/accuracy.py: exact by quadrature (d <= 2) or by nested sampling,
cached by model and nβ, and the row fields computed from it.

The nested value is λ(nβ) = t E_t[K] of the population K under the model's prior at t = nβ, by
`llc_against_nested.nested_lambda_t` (`slt.nested_sample_model`, then `estimators.lambda_curve`'s
median and 95 % band over Skilling's log-X paths) with `NESTED_SETTINGS`, the settings of
benchmarks/results/llc_against_nested.json, whose rows are read as cache entries.
"""

import json
import math
import os
import tempfile
import time

from llc_against_nested import nested_lambda_t

from slt.estimate import INTERVAL_Z

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# nested λ(nβ): the settings of benchmarks/results/llc_against_nested.json, so its rows serve as cache
# entries (N live points, sweeps per replacement, a time cap, no minimum depth: the run stops once the
# live points hold < 1e-4 of Z(nβ))
NESTED_SETTINGS = {"num_live": 500, "num_inner_steps": 3, "max_seconds": 120.0, "min_log_volume": 0.0,
                   "min_log_loss_span": 0.0}
LLC_AGAINST_NESTED = os.path.join(RESULTS, "llc_against_nested.json")
NESTED_FIELDS = ("nested", "nested_low", "nested_high", "stop_reason", "converged", "log_volume_reached", "seconds")


def cache_key(label: str, nbeta: float) -> str:
    return f"{label} @ nbeta={float(nbeta)!r}"


def load_nested_cache(path: str, reuse_llc_against_nested: bool = True) -> dict:
    """Cached nested λ(nβ) entries by `cache_key`: rows of llc_against_nested.json made with
    `NESTED_SETTINGS` (and the same key rule), then the cache file's own entries, which win."""
    entries = {}
    if reuse_llc_against_nested and os.path.exists(LLC_AGAINST_NESTED):
        with open(LLC_AGAINST_NESTED) as handle:
            stored = json.load(handle)
        if stored.get("settings") == NESTED_SETTINGS:
            for r in stored["rows"]:
                entries[cache_key(r["model"], r["nbeta"])] = {
                    **{k: r[k] for k in NESTED_FIELDS}, "origin": "llc_against_nested.json",
                    "key": f"fold_in(key({stored['seed']}), row index)", "settings": NESTED_SETTINGS}
    if os.path.exists(path):
        with open(path) as handle:
            entries.update(json.load(handle)["entries"])
    return entries


def save_nested_cache(path: str, entries: dict) -> None:
    """Write the entries this script computed (not those read from llc_against_nested.json), atomically."""
    own = {k: v for k, v in sorted(entries.items()) if v.get("origin") != "llc_against_nested.json"}
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        json.dump({"note": "nested-sampling λ(nβ) of the population K by model and nβ (benchmarks/accuracy.py)",
                   "entries": own}, stream, indent=1)
    os.replace(temporary, path)


def nested_entry(model, nbeta: float, key, key_rule: str) -> dict:
    """Sample λ(nβ) (`llc_against_nested.nested_lambda_t`, `NESTED_SETTINGS`) into a cache entry."""
    started = time.perf_counter()
    nested = nested_lambda_t(key, model, nbeta, NESTED_SETTINGS)
    return {**{k: nested[k] for k in NESTED_FIELDS if k != "seconds"}, "seconds": time.perf_counter() - started,
            "origin": "accuracy.py", "key": key_rule, "settings": NESTED_SETTINGS,
            "load": " ".join(f"{v:.1f}" for v in os.getloadavg())}


def finite_temperature_value(model, nbeta, quadrature, cache_lookup) -> tuple:
    """(λ(nβ), source, band low, band high): the quadrature value where there is one (d <= 2),
    else the nested entry from `cache_lookup(model, nbeta)`; None where the run did not converge."""
    if quadrature is not None:
        return quadrature, "quadrature", None, None
    entry = cache_lookup(model, nbeta)
    if not entry["converged"]:
        return None, f"nested: not converged ({entry['stop_reason']} at log X {entry['log_volume_reached']:.0f})", None, None
    return entry["nested"], "nested", entry["nested_low"], entry["nested_high"]


def with_finite_temperature(row: dict, value, source: str | None, low=None, high=None) -> dict:
    """`row` with its λ(nβ) columns (re)computed from (value, source, band): the llc's error against
    λ(nβ), whether λ(nβ) lies in the llc's interval (alone, and with the nested band's sd, half-width
    / 1.96, added in quadrature) and the finite-temperature bias (λ(nβ) − λ)/λ."""
    estimate, error, systematic = row["estimate"], row["std_error"], row.get("systematic_error") or 0.0
    half_width = INTERVAL_Z * error + systematic
    band_sd = 0.0 if low is None else (high - low) / (2 * INTERVAL_Z)
    missing = value is None
    return {**row, "exact_at_nbeta": value, "exact_source": source, "exact_low": low, "exact_high": high,
            "relative_error_vs_exact": None if missing else abs(estimate - value) / value,
            "exact_in_interval": None if missing else bool(abs(value - estimate) <= half_width),
            "exact_in_mc_interval": None if missing else bool(abs(value - estimate) <= INTERVAL_Z * error),
            "exact_in_interval_with_band": None if missing else bool(
                abs(value - estimate) <= math.hypot(half_width, INTERVAL_Z * band_sd)),
            "finite_temperature_bias": None if missing or row["lambda"] is None else (value - row["lambda"]) / row["lambda"]}

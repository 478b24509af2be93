"""`estimate`, `estimate_many`, `estimate_jobs`: settings → data → method → `EstimateResult`.

Conventions (`slt.samplers._posterior`): t = nβ with n the FULL data size; every chain runs SGLD

    w ← w + ε ∇log p̂(w) + √(2ε) ξ,  ∇log p̂(w) = −nβ ∇L_b(w) − γ (w − w*) + ∇log φ(w),

on minibatches b of `batch_size` indices, with ε calibrated per run (`slt.estimate._runs`). The
methods are in `slt.estimate.methods`, one module each.

Sampling coordinates: a prior |w_j|^h_j with h_j <= 1 has the score h_j / w_j, with
E|h_j / w_j|² = ∞, so such coordinates are sampled in u_j = sign(w_j)|w_j|^(h_j+1)
(`ToyModel.in_sampling_coordinates`); E_β[L_n] and so the LLC are the same in either coordinates,
and kept traces are mapped back to w. Not with γ > 0 (a term in w).

Population sampling (`population=True`, llc and rlct, registry models): every minibatch is fresh
data with the label noise integrated out (`ToyModel.sample_expected_data`), so the chains sample
exp(−tK(w)) φ(w): the estimate is of the population λ(t) that `exact_at_nbeta` computes, with no
data-set fluctuation, and t not bounded by n (`benchmarks/population_sampling.py`).

Limitations
-----------
The reported standard error is Monte-Carlo error at the stated nβ. It does NOT cover
(1) the finite-temperature bias λ − λ(t), large for singular models at reachable t;
(2) the data-set fluctuation (none with `population=True`): the run sees L_n, not K, and measures at
the true w* (≈ −β d/2 for regular models, relative ~√β for singular ones);
(3) SGLD's step-size and minibatch bias is predicted per run on its own draws and held near the
tolerance, not corrected for: its absolute size is the result's `systematic_error`, which widens
the reported `interval`.
"""

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

import toy_models
from slt.estimate._defaults import is_user_model, packing_pays, resolve_model
from slt.estimate._progress import estimate_progress
from slt.estimate._result import INTERVAL_NOTE, EstimateResult
from slt.estimate._run_diagnostics import exact_at as exact_value_at
from slt.estimate._runs import DEFAULT_HOOKS, EstimateHooks
from slt.estimate._settings import EstimateSettings
from slt.estimate.methods import MethodContext, get_method
from slt.run import prng_key


def estimate(model: toy_models.ToyModel | str, method: str | None = None, *, key: PRNGKeyArray,
             params: Mapping[str, Any] | None = None, settings: EstimateSettings | None = None,
             hooks: EstimateHooks = DEFAULT_HOOKS, progress: bool | None = None, **overrides) -> EstimateResult:
    """Estimate the learning coefficient of a model with `method` (see `slt.estimate.methods`).

    Parameters
    ----------
    model : a `toy_models.ToyModel`, a family name with `params` (e.g. "rrr", {"M": 5, ...}), or a
        user's model from `toy_models.from_loss` (an Equinox or Flax network, any JAX loss). A user
        model brings its own data set, so n is its data size (`n` may only repeat it); it has no
        known λ (`true_rlct` None), no exact λ(nβ), and takes the methods that need only the
        loss: llc and rlct (wbic and ti draw chains from the prior, waic needs per-datum
        likelihoods; population sampling needs fresh data).
    method : "llc", "wbic", "rlct", "ti", "waic" or "nested" (default: `settings.method`, else "llc").
    key : PRNG key (data, chain starts, pilot and main run are split from it; no default seed), or
        an integer seed in [0, 2³² − 1] (`slt.prng_key`; others would alias, and are refused).
    settings : an `EstimateSettings` (default: its defaults); `overrides` are its fields by name
        (`estimate(model, key=k, n=10_000, num_chains=8)`), checked together with it.
    hooks : replaceable pieces for planted-bug tests (`EstimateHooks`).
    progress : a fraction-done bar on stderr (`estimate_progress`); None: only on a terminal, not
        under CI, and not inside another bar; False: none.

    Raises
    ------
    ValueError : unknown family, method or setting value (`SettingsError` names the field), before
        sampling; TypeError for an unknown setting name. A run that diverges repeatedly: ValueError.
    """
    start_time = time.perf_counter()
    key = _as_key(key, "key")
    model, checked = _checked(model, method, params, settings, overrides)
    outcomes = _run(model, checked, [key], hooks=hooks, pack=None, start_time=start_time, progress=progress)
    return _finished_or_raise(outcomes)[0]


def estimate_many(model: toy_models.ToyModel | str, method: str | None = None, *, keys: Sequence[PRNGKeyArray],
                  params: Mapping[str, Any] | None = None, pack: bool | None = None,
                  settings: EstimateSettings | None = None, hooks: EstimateHooks = DEFAULT_HOOKS,
                  progress: bool | None = None, **overrides) -> list[EstimateResult]:
    """`estimate` once per key: `estimate_many(model, keys=[k0, k1, ...])[j]` is
    `estimate(model, key=k_j)` with the same settings, up to float32 rounding where the model's
    matrix products are batched over jobs (bitwise for elementwise models).

    With `pack` (default `packing_pays()`: on accelerators, not on CPU) every llc stage of all
    the jobs is one compiled call, `vmap` over jobs of `vmap` over chains; otherwise the jobs run
    one after another, sharing compiled code. Other methods run one estimate per key (rlct packs
    its own temperatures under the same rule). Memory when packed: J data sets and J runs.

    `progress` as in `estimate` (one bar over all the jobs). Raises a ValueError for bad settings
    before anything runs, else the first failed job's error.
    """
    return _finished_or_raise(estimate_jobs(model, method, keys=keys, params=params, pack=pack, settings=settings,
                                            hooks=hooks, progress=progress, **overrides))


def estimate_jobs(model, method: str | None = None, *, keys, params=None, pack: bool | None = None,
                  settings: EstimateSettings | None = None, hooks: EstimateHooks = DEFAULT_HOOKS,
                  progress: bool | None = False, **overrides) -> list["EstimateResult | Exception"]:
    """`estimate_many`, but a job that fails after the settings were checked (divergence, a
    non-finite loss: ValueError or FloatingPointError) gives its exception in its place
    instead of stopping the others (what a batch needs). No bar unless `progress` asks for one."""
    start_time = time.perf_counter()
    if isinstance(keys, jax.Array) and keys.ndim == 0:
        raise ValueError("keys must be a sequence of PRNG keys, e.g. list(jax.random.split(key, 8))")
    keys = list(keys)
    if not keys:
        raise ValueError("keys is empty: pass at least one PRNG key")
    keys = [_as_key(key, f"keys[{index}]") for index, key in enumerate(keys)]
    model, checked = _checked(model, method, params, settings, overrides)
    return _run(model, checked, keys, hooks=hooks, pack=pack, start_time=start_time, progress=progress)


def _as_key(key, where: str):
    """A PRNG key as given, or an integer seed through the one seed rule (`slt.prng_key`)."""
    if isinstance(key, jax.Array):
        return key
    if isinstance(key, (int, np.integer)) or isinstance(key, (bool, float, np.floating)):
        return prng_key(key, f"{where} (a seed)")
    raise ValueError(f"{where} must be a PRNG key, e.g. jax.random.key(0), or an integer seed, got "
                     f"{type(key).__name__}")


def _checked(model, method, params, settings, overrides) -> tuple[toy_models.ToyModel, EstimateSettings]:
    """The model and the settings (the method and `overrides` folded in, checked once), plus the
    checks that need the model: population sampling needs `sample_expected_data`; a user model
    fixes n to its data size and takes only the methods that need nothing but its loss."""
    model = resolve_model(model, params)
    if is_user_model(model):
        given_n = overrides.get("n", settings.n if settings is not None and settings.n != EstimateSettings.n else None)
        if given_n is not None and given_n != model.num_data:
            raise ValueError(f"n = {given_n!r}, but the user model {model.label!r} has {model.num_data} data points "
                             "(its own data set); leave n out")
        overrides = {**overrides, "n": model.num_data}
    if settings is None:
        settings = EstimateSettings(method=method or "llc", **overrides)
    elif (method is not None and method != settings.method) or overrides:
        settings = settings.replace(method=method or settings.method, **overrides)
    if is_user_model(model):
        reason = get_method(settings.method).user_model_refusal
        if reason:
            raise ValueError(f"method {settings.method!r} does not take a user model: {reason}")
        if settings.population:
            raise ValueError("population sampling needs fresh data with the label noise integrated out, which a user "
                             "model (one fixed data set) cannot draw")
        if not bool(jnp.isfinite(model.loss(model.w_star, model.data))):
            raise ValueError(f"the user model {model.label!r} has a loss at w* that is not finite on its data set "
                             f"({float(model.loss(model.w_star, model.data))}); check the loss and the data")
    if settings.population and model.sample_expected_data is None:
        raise ValueError(f"population sampling needs a model that draws fresh data with the label noise "
                         f"integrated out (sample_expected_data); {model.label} has none")
    return model, settings


def _finished_or_raise(outcomes):
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    return outcomes


def _run(model, settings: EstimateSettings, keys, *, hooks, pack, start_time,
         progress=False) -> list["EstimateResult | Exception"]:
    method = get_method(settings.method)
    with estimate_progress(f"{model.label} [{settings.method}]", method, settings, len(keys), hooks,
                           enabled=progress) as hooks:
        return _run_with(model, method, settings, keys, hooks=hooks, pack=pack, start_time=start_time,
                         progress=progress)


def _run_with(model, method, settings: EstimateSettings, keys, *, hooks, pack, start_time,
              progress) -> list["EstimateResult | Exception"]:
    pack = packing_pays() if pack is None else bool(pack)
    exact_at = functools.cache(lambda t: exact_value_at(model, t, settings.localization))  # one quadrature per t
    sampled = sampled_model(model, settings)
    population = settings.population

    def data_for(key_data):  # on the population: a reference batch that fixes the shapes
        if is_user_model(model):  # its own data set, the same for every key
            return model.data
        if population:
            return model.sample_expected_data(key_data, settings.minibatch_size)
        return model.sample_data(key_data, settings.n)

    split = [jax.random.split(key) for key in keys]
    datas = [data_for(key_data) for key_data, _ in split]
    sinks = [[] for _ in keys] if settings.keep_traces else None
    context = MethodContext(hooks=hooks, data_source=model.sample_expected_data if population else None, pack=pack,
                            trace_sinks=sinks, progress=progress)
    outcomes = method.run_jobs(sampled, datas, [key_method for _, key_method in split], settings, context)
    seconds = (time.perf_counter() - start_time) / len(keys)
    packed_jobs = len(keys) if pack and getattr(method, "packs_jobs", False) else 1
    return [outcome if isinstance(outcome, Exception)
            else _result(model, method, outcome, settings, exact_at=exact_at, seconds=seconds,
                         traces=in_model_coordinates(model, sampled, () if sinks is None else sinks[job]),
                         packed_jobs=packed_jobs, sampled=sampled)
            for job, outcome in enumerate(outcomes)]


def sampled_model(model, settings: EstimateSettings):
    """The model the samplers run on: `model.in_sampling_coordinates()` (a |w|^h prior with
    h <= 1 has an unbounded score in w), except under localisation, which is a term in w, or
    with `settings.sampling_coordinates` False, or for a user model (sampled as given)."""
    if settings.localization or not settings.sampling_coordinates or is_user_model(model):
        return model
    return model.in_sampling_coordinates()


def in_model_coordinates(model, sampled, labelled_traces) -> tuple:
    """The (label, trace) pairs with positions mapped back from `sampled`'s coordinates to `model`'s w."""
    if sampled is model:
        return tuple(labelled_traces)
    to_model = sampled.prior.to_model

    def mapped(tree):
        return None if tree is None else jax.tree_util.tree_map(lambda leaf: np.asarray(to_model(jnp.asarray(leaf))), tree)

    return tuple((label, trace._replace(positions=mapped(trace.positions), final_positions=mapped(trace.final_positions)))
                 for label, trace in labelled_traces)


def _result(model, method, outcome, settings: EstimateSettings, *, exact_at, seconds, traces, sampled,
            packed_jobs=1) -> EstimateResult:
    n, diagnostics, reported_nbeta = settings.n, outcome.diagnostics, outcome.nbeta
    diagnostics["localization"] = float(settings.localization)
    diagnostics["prior"] = None if model.prior is None else type(model.prior).__name__
    coordinates = None if sampled is model else sampled.prior
    diagnostics["sampling_coordinates"] = None if coordinates is None else (
        f"sampled in u_j = sign(w_j) |w_j|^(h_j+1) for j in {list(coordinates.flattened)} (prior |w_j|^h_j, h_j <= 1)")
    diagnostics["batch_size"] = n if settings.minibatch_size is None else settings.minibatch_size
    diagnostics["data"] = "population" if settings.population else "data set"
    diagnostics["beta"] = None if settings.population else reported_nbeta / n
    diagnostics["interval_note"] = INTERVAL_NOTE
    if packed_jobs > 1:
        diagnostics["packed_jobs"] = packed_jobs
    exact_value = exact_reason = None
    if settings.exact and is_user_model(model):
        exact_reason = "a user model has no known population loss K(w)"
    elif settings.exact:
        exact_value, exact_reason = method.exact(model, outcome, settings, exact_at)
    diagnostics["exact_at_nbeta"] = exact_value
    if exact_reason is not None:
        diagnostics["exact_unavailable"] = exact_reason
    if exact_value is not None and model.true_rlct is not None:
        diagnostics["finite_temperature_bias"] = exact_value - float(model.true_rlct)
    return EstimateResult(
        model=model.label,
        params=dict(getattr(model, "params", {})),
        method=settings.method,
        estimate=float(outcome.estimate),
        std_error=float(outcome.std_error),
        true_rlct=model.true_rlct,
        multiplicity=model.multiplicity,
        n=n,
        nbeta=float(reported_nbeta),
        diagnostics=diagnostics,
        seconds=seconds,
        traces=traces,
        systematic_error=float(diagnostics.get("systematic_error", 0.0)),
    )

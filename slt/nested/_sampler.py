"""Nested sampling of the density of states V(ε) = ∫_{K(w)<ε} φ(w) dw (Skilling 2006).

N live points are drawn from the prior φ; each outer step deletes the k = `num_delete` points of
largest loss K and replaces them by points drawn from φ restricted to {K < b}, b the smallest loss
deleted, by `num_inner_steps` coordinate sweeps started from a random surviving live point. Each
sweep moves every coordinate (random order) by two univariate slice moves (Neal 2003) on the
constrained prior: a linear one scaled by the live points' spread, and a log-radial one in
log|w_i − w*_i| (target log φ + log|w_i − w*_i|, the Jacobian). The second is why this is not
blackjax's `nsswig`: deep in a crossing the region {K < ε} is a cross of arms of width ~ε/|w_j|,
and a slice scaled by the live spread (~1) needs ~log(1/ε) shrinkages to land on an arm; at
K ≈ 2e-58 on w₁w₂ blackjax 1.7's `nsswig` failed 71 % of its slices (max_shrinkage = 100). In
log-radial coordinates the arm is a half-line, the same at every depth.

The deaths form, in u = −log V, a Poisson process whose rate is the number of live points n_i
at each death (Fowlie, Handley & Su 2021 for k > 1: n_i runs N, N−1, ..., N−k+1 within a
batch), which is what `estimators.rlct_from_dead_points` and `estimators.lambda_curve` read.

Everything runs in float64 (`jax.enable_x64`): a run reaches K ≈ e^(−100) and beyond, below
float32's range. Only losses are kept (no positions), so a run of 10⁵ deaths is a few MB.
"""

import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray, PyTree
from tqdm.auto import tqdm

import estimators
from slt.nested._kernel import LiveSet, compiled_chunk
from slt.nested._noise_floor import above_noise_floor, data_loss_minimum, data_window_end
from slt.run import package_versions, progress_wanted

NESTED_FORMAT = 1


class NestedRun(NamedTuple):
    """The dead points of one nested-sampling run, in order of death, and its config.

    Attributes
    ----------
    death_loss : K at each death (non-increasing), float64 [num_dead].
    birth_loss : the loss bound each dead point was born under (+inf for the initial live
        points), float64 [num_dead].
    num_live : live points when each died (N, ..., N − k + 1 within a batch), int [num_dead].
    live_loss : the final live points' losses, [N]; they close the run (the volume X_end left).
    seconds : wall-clock time of the sampling.
    stop_reason : which rule stopped the run (see `nested_sampling`).
    min_acceptance : the smallest share, over chunks, of replacements whose every coordinate slice
        found a point inside the bound (a failed slice leaves that coordinate unchanged).
    config : the caller's settings and the run's provenance (JSON-serialisable), with package
        versions.
    """

    death_loss: np.ndarray
    birth_loss: np.ndarray
    num_live: np.ndarray
    live_loss: np.ndarray
    seconds: float
    stop_reason: str
    min_acceptance: float
    config: dict


class NestedSamplingError(ValueError):
    """Bad input or a run that cannot continue (a non-finite loss, an empty region)."""


def live_point_counts(death_loss: np.ndarray, birth_loss: np.ndarray, num_initial: int) -> np.ndarray:
    """Live points present at each death: n_i = N − #(deaths before i) + #(births before i).

    Deaths are taken in the order given (non-increasing loss); `birth_loss` holds the bound of
    every particle ever alive (+inf for the N initial ones). The k replacements of one outer step
    are born under b = the smallest loss deleted in that step, after all k deaths, so a birth at b
    precedes exactly the deaths with loss < b (Fowlie, Handley & Su 2021): inside a batch the
    counts run N, N − 1, ..., N − k + 1.
    """
    death_loss = np.asarray(death_loss, dtype=np.float64)
    finite_births = np.sort(np.asarray(birth_loss, dtype=np.float64)[np.isfinite(birth_loss)])[::-1]
    # births with bound > loss_i happened before death i (strictly: the dead point at the bound
    # itself died before its replacements were born)
    births_before = np.searchsorted(-finite_births, -death_loss, side="left")
    return (num_initial - np.arange(death_loss.size) + births_before).astype(np.int64)


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise NestedSamplingError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def nested_sampling(
    key: PRNGKeyArray,
    loss_fn: Callable[[PyTree], Float[Array, ""]],
    log_prior_fn: Callable[[PyTree], Float[Array, ""]],
    sample_prior_fn: Callable[[PRNGKeyArray], PyTree],
    *,
    center: PyTree | None = None,
    num_live: int = 1000,
    num_delete: int | None = None,
    num_inner_steps: int = 5,
    min_log_volume: float = 60.0,
    min_log_loss_span: float = 25.0,
    max_log_volume: float = 400.0,
    max_temperature: float | None = None,
    evidence_tolerance: float = 1e-4,
    loss_floor: float = 1e-280,
    steps_per_chunk: int = 10,
    max_seconds: float | None = None,
    progress: bool | None = None,
    config: dict | None = None,
) -> NestedRun:
    """Nested sampling of the loss K under the prior φ, by coordinate-wise slice moves.

    Parameters
    ----------
    key : PRNG key; split into `key_init` (prior draws) and `key_run` (one key per chunk).
    loss_fn : K(w) >= 0, the population loss or L_n(w) − L_n(w*); a scalar per parameter pytree.
    log_prior_fn, sample_prior_fn : log φ(w) and one exact prior draw from a key (the model's own
        prior, |w|^h power priors included).
    num_live : N, the live points. log X shrinks by Exp(1)/N per death: after i deaths
        log X ≈ −i/N ± √i/N.
    num_delete : k, deaths per outer step (vectorised replacements); default N // 2.
    num_inner_steps : coordinate sweeps per replacement (each sweep slices every axis twice:
        linearly and log-radially about `center`).
    center : the point the log-radial moves are centred on, a pytree like the prior draws
        (the model's w*; default 0).
    min_log_volume, min_log_loss_span, max_log_volume, max_temperature, evidence_tolerance,
    loss_floor, steps_per_chunk, max_seconds : the stopping rule's settings (Notes).
    progress : a progress bar in nats of log-volume (None: on a terminal, not under CI; `slt.run.progress_wanted`).
    config : the caller's settings, stored with the run.

    Notes
    -----
    Stopping rule (checked after every chunk of `steps_per_chunk` outer steps; all depths in
    nats): the run goes on until BOTH the log-volume depth −log X ≥ `min_log_volume` AND the
    losses at death span `min_log_loss_span` nats of log K beyond the depth −log X = 10 (so a
    model with a large λ, whose K falls only as X^(1/λ), is sampled deeper: the depth is chosen
    from the run itself) AND, when `max_temperature` t_max is given, the live points' share of
    Z(t_max) = ∫ e^(−t_max K) dV is below `evidence_tolerance`. It stops earlier, with a
    `stop_reason`, at −log X ≥ `max_log_volume`, when every live loss is below `loss_floor`
    (K has reached 0 to float64 precision: a region of positive volume with K = 0, as on a
    data set's floor), when log K stops falling (`estimators.loss_floor_start`: a floor above 0),
    after `max_seconds`, or when over half the constrained moves of a chunk
    fail after the first chunk (w − w* below float64's resolution, |w − w*| ~ 1e-16 |w*|: that
    chunk is dropped).

    Returns
    -------
    `NestedRun` (dead points in order of death, the final live losses, the config).

    Raises
    ------
    NestedSamplingError : a bad setting, a non-finite or negative loss at a prior draw, or a
        constrained move that found no point (an empty region), each in one line.
    """
    num_live = _check_positive_int("num_live", num_live, 2)
    num_delete = num_live // 2 if num_delete is None else _check_positive_int("num_delete", num_delete)
    if num_delete >= num_live:
        raise NestedSamplingError(f"num_delete must be < num_live = {num_live}, got {num_delete}")
    num_inner_steps = _check_positive_int("num_inner_steps", num_inner_steps)
    steps_per_chunk = _check_positive_int("steps_per_chunk", steps_per_chunk)
    settings = {
        "num_live": num_live, "num_delete": num_delete, "num_inner_steps": num_inner_steps,
        "min_log_volume": min_log_volume, "min_log_loss_span": min_log_loss_span,
        "max_log_volume": max_log_volume, "max_temperature": max_temperature,
        "evidence_tolerance": evidence_tolerance, "loss_floor": loss_floor,
        "steps_per_chunk": steps_per_chunk, "max_seconds": max_seconds,
    }
    key_init, key_run = jax.random.split(key)
    started = time.perf_counter()
    with jax.enable_x64(True):
        template = sample_prior_fn(key_init)
        flat_template, unravel = ravel_pytree(template)
        flat_template = flat_template.astype(jnp.float64)

        def flat_loss(flat):
            return jnp.asarray(loss_fn(unravel(flat)), jnp.float64)

        def flat_log_prior(flat):
            return jnp.asarray(log_prior_fn(unravel(flat)), jnp.float64)

        initial = jax.vmap(lambda k: ravel_pytree(sample_prior_fn(k))[0].astype(jnp.float64))(
            jax.random.split(key_init, num_live)
        )
        initial_loss = np.asarray(jax.vmap(flat_loss)(initial))
        if not np.all(np.isfinite(initial_loss)):
            bad = initial_loss[~np.isfinite(initial_loss)][0]
            raise NestedSamplingError(f"the loss is not finite at a prior draw (K = {bad}); nested sampling needs a finite K(w)")
        if np.any(initial_loss < 0):
            raise NestedSamplingError(
                f"the loss is negative at a prior draw (K = {initial_loss.min():.3g}); pass K(w) = L(w) − L(w*) >= 0"
            )
        live = LiveSet(initial, jnp.asarray(initial_loss), jnp.full(num_live, jnp.inf))
        center = ravel_pytree(center)[0].astype(jnp.float64) if center is not None else jnp.zeros_like(flat_template)
        step = compiled_chunk(center, flat_loss, flat_log_prior, num_delete, num_inner_steps, steps_per_chunk)
        deaths, births, acceptance = [], [], []
        chunk_keys = iter(jax.random.split(key_run, int(max_log_volume * num_live / num_delete / steps_per_chunk) + 2))
        show = progress_wanted(progress)
        bar = tqdm(total=round(max_log_volume), unit="nat", desc="nested", disable=not show)
        stop_reason = ""
        while not stop_reason:
            live, (death, birth, accepted) = step(next(chunk_keys), live)
            death, birth = np.asarray(death).ravel(), np.asarray(birth).ravel()
            if not np.all(np.isfinite(death)) or not np.all(np.isfinite(np.asarray(live.loss))):
                raise NestedSamplingError("the loss became non-finite inside the constrained region; check K(w) for NaN")
            acceptance.append(float(accepted))
            if acceptance[-1] < 0.5 and not deaths:
                raise NestedSamplingError(
                    f"{1 - acceptance[-1]:.0%} of constrained moves found no point with K < {death.min():.3g}: "
                    "the region is empty or too thin for slice moves (a constant or discontinuous loss?)"
                )
            if acceptance[-1] < 0.5:  # deep: w near w* no longer resolved in float64; drop this chunk
                stop_reason = f"moves failed at K < {death.min():.3g} (float64 resolution of w near w*)"
                break
            deaths.append(death)
            births.append(birth)
            stop_reason = _stop_reason(
                np.concatenate(deaths), np.asarray(live.loss), num_live, settings,
                time.perf_counter() - started,
            )
            bar.update(max(0, min(round(len(deaths) * steps_per_chunk * num_delete / num_live), bar.total) - bar.n))
        bar.close()
    death_loss, birth_loss = np.concatenate(deaths), np.concatenate(births)
    order = np.argsort(-death_loss, kind="stable")  # already non-increasing; made certain
    death_loss, birth_loss = death_loss[order], birth_loss[order]
    all_births = np.concatenate([birth_loss, np.asarray(live.birth)])
    return NestedRun(
        death_loss=death_loss,
        birth_loss=birth_loss,
        num_live=live_point_counts(death_loss, all_births, num_live),
        live_loss=np.sort(np.asarray(live.loss))[::-1],
        seconds=time.perf_counter() - started,
        stop_reason=stop_reason,
        min_acceptance=min(acceptance),
        config={**(config or {}), "sampler": "nested coordinate slice (linear + log-radial)", "settings": settings,
                "key_data": np.asarray(jax.random.key_data(key)).tolist(), "versions": package_versions()},
    )


def _stop_reason(death_loss, live_loss, num_live, settings, seconds) -> str:
    """The first stopping rule that holds (see `nested_sampling`), or ''."""
    log_volume = -death_loss.size / num_live  # the expected log X, enough for a stopping rule
    if np.all(live_loss < settings["loss_floor"]):
        return "loss floor"
    if np.unique(live_loss).size < 0.9 * live_loss.size:  # ties: K is quantised (w − w* at float64 resolution)
        return "float64 resolution (tied live losses)"
    if -log_volume >= settings["max_log_volume"]:
        return "max_log_volume"
    if estimators.loss_floor_start(death_loss, np.full(death_loss.size, num_live)) is not None:
        return "loss floor (log K stopped falling; see estimators.loss_floor_start)"
    if settings["max_seconds"] is not None and seconds >= settings["max_seconds"]:
        return "max_seconds"
    reference = min(int(10 * num_live), death_loss.size - 1)
    span = np.log(death_loss[reference]) - np.log(max(death_loss[-1], 1e-300))
    if -log_volume < settings["min_log_volume"] or span < settings["min_log_loss_span"]:
        return ""
    t_max = settings["max_temperature"]
    if t_max is not None:
        log_z_dead = np.logaddexp.reduce(-t_max * death_loss - np.arange(1, death_loss.size + 1) / num_live) - np.log(num_live)
        log_z_live = log_volume + np.log(np.mean(np.exp(-t_max * (live_loss - live_loss.min())))) - t_max * live_loss.min()
        if log_z_live - np.logaddexp(log_z_dead, log_z_live) > np.log(settings["evidence_tolerance"]):
            return ""
    return "depth reached"


def nested_sample_model(
    key: PRNGKeyArray,
    model,
    *,
    data: PyTree | None = None,
    **settings: Any,
) -> NestedRun:
    """`nested_sampling` of a registry `ToyModel` or a `toy_models.from_loss` user model.

    The loss is the population K(w) (`model.population_loss`) when `data` is None, else
    K_n(w) = max(L_n(w) − min L_n, 0) on `data`, the minimum by `slt.nested.data_loss_minimum` (key
    split off first): from w* itself K_n < 0 on a region of volume ~ n^(−λ), below the noise floor
    ~1/n (`nested_rlct` fits only above it). The prior is the model's own
    (`model.prior`, |w|^h power priors included); a user model without a prior gets an error.
    `settings` go to `nested_sampling`.
    """
    prior = getattr(model, "prior", None)
    if prior is None:
        raise NestedSamplingError(f"model {getattr(model, 'name', model)!r} has no prior; nested sampling needs a proper prior")
    if data is None:
        loss = getattr(model, "population_loss", None)
        if loss is None:
            raise NestedSamplingError(f"model {getattr(model, 'name', model)!r} has no population loss; pass data=")
        source = "population"
    else:
        model_loss = model.loss
        key_minimum, key = jax.random.split(key)
        minimum = data_loss_minimum(lambda w: model_loss(w, data), model.w_star, prior, key_minimum)

        def loss(w):
            return jnp.maximum(model_loss(w, data) - minimum, 0.0)
        source = "data"
    template = model.w_star
    description = model.describe() if hasattr(model, "describe") else {"model": getattr(model, "name", "user")}
    return nested_sampling(
        key, loss, prior.log_density, lambda k: prior.sample(k, template), center=model.w_star,
        config={"model": description, "loss": source, **({"num_data": int(jax.tree_util.tree_leaves(data)[0].shape[0])} if data is not None else {})},
        **settings,
    )


def save_nested_run(path: str, run: NestedRun) -> None:
    """Write a run to `path` (.npz: the arrays, and the config, stop reason and timing as JSON),
    atomically (a temporary file in the same folder, then `os.replace`)."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            metadata = {"format": NESTED_FORMAT, "seconds": run.seconds, "stop_reason": run.stop_reason,
                        "min_acceptance": run.min_acceptance, "config": run.config}
            np.savez(stream, death_loss=run.death_loss, birth_loss=run.birth_loss, num_live=run.num_live,
                     live_loss=run.live_loss, metadata=np.asarray(json.dumps(metadata, default=str)))
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load_nested_run(path: str) -> NestedRun:
    """Read a run written by `save_nested_run`."""
    with np.load(path) as stored:
        metadata = json.loads(str(stored["metadata"]))
        if metadata.get("format") != NESTED_FORMAT:
            raise NestedSamplingError(f"{path}: nested-run format {metadata.get('format')!r}, expected {NESTED_FORMAT}")
        return NestedRun(
            death_loss=stored["death_loss"], birth_loss=stored["birth_loss"], num_live=stored["num_live"],
            live_loss=stored["live_loss"], seconds=metadata["seconds"], stop_reason=metadata["stop_reason"],
            min_acceptance=metadata["min_acceptance"], config=metadata["config"],
        )


class NestedEstimate(NamedTuple):
    """`nested_rlct`'s answer: the run, λ̂/m̂ from its dead points, λ(t) on `temperatures`, and on a
    data set the deepest s = −log K_n the fit used (`data_window_end`; None on the population)."""

    run: NestedRun
    result: "estimators.DensityOfStatesResult"
    curve: "estimators.LambdaCurve | None"
    window_end: float | None = None


def nested_rlct(
    key: PRNGKeyArray,
    model,
    *,
    data: PyTree | None = None,
    temperatures=None,
    max_multiplicity: int = 4,
    num_paths: int = 64,
    **settings: Any,
) -> NestedEstimate:
    """λ̂ ± se, m̂ with P(m) and (if `temperatures` is given) λ(t) and F(t) of a model, by nested
    sampling of its population K (or K_n on `data`): `nested_sample_model` then
    `estimators.rlct_from_dead_points` and `estimators.lambda_curve`. `key` is split into
    `key_run` and `key_paths` (the latter seeds the log-X paths). When temperatures are given the
    run also goes deep enough that the live points hold < 1e-4 of Z(max t). On `data` of size n the
    fit uses only the deaths above the noise floor, s = −log K_n <= log n + `NOISE_FLOOR_MARGIN`
    (`slt.nested.data_window_end`); λ(t) there is meaningful for t ≲ n."""
    key_run, key_paths = jax.random.split(key)
    if temperatures is not None:
        temperatures = np.asarray(temperatures, dtype=np.float64)
        settings.setdefault("max_temperature", float(np.max(temperatures)))
    window_end = None if data is None else data_window_end(int(jax.tree_util.tree_leaves(data)[0].shape[0]))
    if window_end is not None:  # stop 5 nats of log K past the floor: deeper deaths are not fitted
        settings.setdefault("loss_floor", float(np.exp(-window_end - 5.0)))
    run = nested_sample_model(key_run, model, data=data, **settings)
    death_loss, num_live = run.death_loss, run.num_live
    if window_end is not None:
        death_loss, num_live = above_noise_floor(death_loss, num_live, window_end)
    result = estimators.rlct_from_dead_points(death_loss, num_live, max_multiplicity=max_multiplicity)
    curve = None
    if temperatures is not None:
        seed = int(jax.random.randint(key_paths, (), 0, np.iinfo(np.int32).max))
        curve = estimators.lambda_curve(run.death_loss, run.num_live, run.live_loss, temperatures, seed=seed,
                                        num_paths=num_paths)
    return NestedEstimate(run, result, curve, window_end)


def nested_finite_temperature_rlct(key: PRNGKeyArray, model, nbeta: float, **settings: Any) -> tuple[float, float, float]:
    """λ(t) = t E_t[K] at t = `nbeta` on the population, by nested sampling (any d): (value, low,
    high) with the 95 % band over Skilling's log-X paths. The model-agnostic counterpart of
    `toy_models.finite_temperature_rlct` (quadrature, d <= 2)."""
    estimate = nested_rlct(key, model, temperatures=[float(nbeta)], **settings)
    curve = estimate.curve
    return float(curve.rlct[0]), float(curve.rlct_band[0, 0]), float(curve.rlct_band[1, 0])

"""`llc_trajectory`: the LLC at every checkpoint of a training run, packed, resumable, restricted."""

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import estimators
import slt
import toy_models
from slt.estimate import GradientStatistics, absolute_step_size_bias, calibrate_sgld_step_sizes
from slt.run import advance_progress, check_integer, progress_bar
from slt.trajectory._checkpoints import Checkpoint, load_checkpoints
from slt.trajectory._restrict import Restriction, restricted_posterior, restricted_sampler, restriction_table
from slt.trajectory._store import CONFIG_NAME, fingerprint, load_row, open_store, row_path, write_json_atomically

DEFAULT_LOCALIZATION = 100.0  # devinterp's default γ; see docs/trajectory.md for choosing it
NON_MINIMUM_SHARE = 0.1  # downhill bound above this share of |λ̂| marks a row non_minimum
ESCAPE_WARNING = "w* is not a minimum or the chain escaped"


class TrajectoryResult(NamedTuple):
    """Rows (dicts, one per checkpoint and restriction, in step order, "all" first), the
    step-size calibration, the settings, and the output folder (or None)."""

    rows: list[dict]
    calibration: dict
    settings: dict
    out_dir: Path | None

    def column(self, name: str, subset: str = "all") -> np.ndarray:
        """One column of the rows of `subset` as an array (None becomes NaN)."""
        return np.array([np.nan if row[name] is None else row[name] for row in self.rows if row["subset"] == subset],
                        dtype=float)

    @property
    def subsets(self) -> list[str]:
        return list(dict.fromkeys(row["subset"] for row in self.rows))


def checkpoint_key(key, checkpoint_index: int, subset_index: int = 0):
    """The chains' key of one row: `fold_in(fold_in(split(key)[1], checkpoint_index), subset_index)`
    (checkpoint_index counts the checkpoints in step order; subset 0 is the full parameter set)."""
    _, key_sampling = jax.random.split(key)
    return jax.random.fold_in(jax.random.fold_in(key_sampling, checkpoint_index), subset_index)


def _resolve_model(model, data, checkpoints):
    if hasattr(model, "loss") and hasattr(model, "w_star"):
        data = getattr(model, "data", None) if data is None else data
        if data is None:
            raise ValueError("data is required for a registry model (it has no data of its own)")
        return model.loss, model.w_star, data
    if not callable(model):
        raise ValueError(f"model must be a toy_models / from_loss model or a loss function, got {type(model).__name__}")
    if data is None or isinstance(checkpoints, (str, Path)):
        raise ValueError("a bare loss function needs data and a list of checkpoints; for a folder pass "
                         "toy_models.from_loss(loss_fn, data, template)")
    user = toy_models.from_loss(model, data, list(checkpoints)[0])
    return user.loss, user.w_star, data


def _calibrate(posterior, num_chains, key, *, batch_size, target_acceptance, bias_tolerance, pilot_steps) -> dict:
    """ε = min(ε_MALA, ε_bias) from `num_chains` chains at w*, by `slt.estimate`'s own two-stage
    calibration (`calibrate_sgld_step_sizes`), keys `split(key)`."""
    key_pilot, key_gradient = jax.random.split(key)
    positions = jax.tree_util.tree_map(lambda leaf: jnp.broadcast_to(leaf, (num_chains, *leaf.shape)),
                                       posterior.center)
    return calibrate_sgld_step_sizes([posterior], [positions], [key_pilot], [key_gradient], batch_size=batch_size,
                                     target_acceptance=target_acceptance, bias_tolerance=bias_tolerance,
                                     pilot_steps=pilot_steps)[0]


def _reading(estimate: float, half_width: float, downhill_bound: float) -> str:
    """"saddle_or_escape" when even λ̂ + downhill_bound is below 0 beyond the interval (the
    geometric term of a locally convex loss is >= 0, so negative curvature or chains that left
    the quadratic region must be at work); "descent" when the downhill bound exceeds
    `NON_MINIMUM_SHARE` |λ̂|; else "minimum"."""
    if estimate + downhill_bound + half_width < 0:
        return "saddle_or_escape"
    return "descent" if downhill_bound > NON_MINIMUM_SHARE * abs(estimate) else "minimum"


def _row(checkpoint: Checkpoint, index: int, restriction: Restriction, trace_or_error, *, num_parameters, loss,
         gradient_norm, nbeta, localization, step_size) -> dict:
    row = {"checkpoint": checkpoint.name, "index": index, "step": checkpoint.step, "subset": restriction.name,
           "num_parameters": num_parameters, "loss": loss, "gradient_norm": gradient_norm,
           "downhill_bound": (nbeta * gradient_norm) ** 2 / localization if localization > 0 else float("inf")}
    if isinstance(trace_or_error, Exception):
        return {**row, "estimate": None, "std_error": None, "systematic_error": None, "interval_low": None,
                "interval_high": None, "mala_acceptance": None, "fraction_below_center": None, "rhat": None,
                "ess_bulk": None, "escape": None, "non_minimum": None, "reading": "failed", "per_chain": None,
                "warnings": f"{type(trace_or_error).__name__}: {trace_or_error}"}
    trace = trace_or_error
    result = estimators.llc(trace.loss, trace.loss_at_center, nbeta)
    statistics = GradientStatistics(float(np.mean(trace.info["grad_squared_norm"])), result.mean)
    systematic = absolute_step_size_bias(step_size, statistics)
    half_width = 1.96 * result.std_error + systematic
    diagnostics = trace.diagnostics
    warnings = tuple(dict.fromkeys(tuple(diagnostics.warnings) + tuple(result.diagnostics.warnings)
                                   + tuple(getattr(result.diagnostics, "reasons", ()))))
    return {**row, "estimate": result.mean, "std_error": result.std_error, "systematic_error": systematic,
            "interval_low": result.mean - half_width, "interval_high": result.mean + half_width,
            "mala_acceptance": diagnostics.mala_acceptance, "fraction_below_center": diagnostics.fraction_below_center,
            "rhat": diagnostics.rhat, "ess_bulk": diagnostics.ess_bulk,
            "escape": any(ESCAPE_WARNING in message for message in warnings),
            "non_minimum": bool(row["downhill_bound"] > NON_MINIMUM_SHARE * abs(result.mean)),
            "reading": _reading(result.mean, half_width, row["downhill_bound"]),
            "per_chain": [float(value) for value in result.per_chain], "warnings": " | ".join(warnings)}


def llc_trajectory(
    model: Any,
    checkpoints: str | Path | Sequence[Any],
    *,
    key: jax.Array,
    data: Any = None,
    steps: Sequence[int] | None = None,
    restrict: Mapping[str, Any] | None = None,
    nbeta: float | None = None,
    localization: float = DEFAULT_LOCALIZATION,
    sampler: str = "sgld",
    step_size: float | None = None,
    batch_size: int | None = None,
    num_chains: int = 4,
    num_draws: int = 1000,
    num_burnin: int | None = None,
    thinning: int = 1,
    calibrate_at: int = -1,
    target_acceptance: float = 0.9,
    bias_tolerance: float = 0.02,
    pilot_steps: int = 200,
    pack_size: int = 16,
    out_dir: str | Path | None = None,
    progress: bool | None = False,
    on_pack: Callable[[int], None] | None = None,
) -> TrajectoryResult:
    """The local learning coefficient at every checkpoint w*_k of a training run,

        λ̂(w*_k) = nβ (E_{p_k}[L_n(w)] − L_n(w*_k)),
        p_k(w) ∝ exp(−nβ L_n(w) − (γ/2) ||w − w*_k||²)   (no model prior),

    and the weight-restricted λ̂_S(w*_k) for each named block S of `restrict` (only S sampled,
    the rest frozen at w*_k; see `slt.trajectory._restrict`), all with ONE set of settings.

    Parameters
    ----------
    model : a `toy_models.from_loss` user model (its data are used), a registry `ToyModel`
        (pass `data`), or a bare `loss_fn(params, batch)` (pass `data`; checkpoints as a list).
    checkpoints : a list of parameter pytrees (or of the user's objects, e.g. Equinox modules),
        a folder of .npz files, or a folder of orbax checkpoints (`slt.trajectory.load_checkpoints`).
        Each must match the model's parameters; a mismatch is refused naming the checkpoint.
    key : PRNG key. `split(key)` gives the calibration key and the sampling key; the row of
        checkpoint k (in step order) and restriction s (0 = all parameters) samples with
        `checkpoint_key(key, k, s)`, whatever is packed beside it or resumed.
    steps : training steps of a list of checkpoints (default 0, 1, ...).
    restrict : {name: path | [paths] | boolean mask pytree}; a path "layers/0" selects every
        leaf under it. A path that matches no parameter is refused naming it.
    nbeta : nβ (default n / log n, Watanabe's β*), the same at every checkpoint.
    localization : γ >= 0 (default `DEFAULT_LOCALIZATION` = 100). Needed at non-minima: see
        "Checkpoints that are not minima" below and docs/trajectory.md.
    sampler : "sgld" (default) or "rmsprop_sgld" (any traced `slt` sampler).
    step_size : ε; None calibrates it once, at checkpoint `calibrate_at` (index in step order,
        default −1: the last), as `slt.estimate` does: the largest ε on a ratio-2 grid with pilot
        MALA acceptance >= `target_acceptance`, then the ε whose predicted SGLD bias is
        `bias_tolerance` of λ̂. The chosen ε and the calibration are in `result.calibration`.
    batch_size : SGLD minibatch (None: full batch).
    num_chains, num_draws, thinning : chains per row and recorded draws per chain; each chain
        starts at w*_k and runs `num_burnin` (default num_draws · thinning / 4) + num_draws ·
        thinning steps.
    pack_size : checkpoints per compiled call (`slt.sample_jobs`: vmap over checkpoints of vmap
        over chains); packs are fixed by checkpoint index, so resuming repeats the same calls.
    out_dir : folder for the resumable record (`slt.trajectory._store`): each pack's rows are
        written atomically when it finishes; a rerun with the same arguments skips them and
        gives identical rows. None: nothing written.
    on_pack : called with the pack number after each pack is stored (tests use it to stop a run).
    progress : a bar of checkpoints done / total (× weight subsets) on stderr; None: only on a
        terminal, not under CI (`slt.run.progress_wanted`); False (default): none.

    Returns
    -------
    TrajectoryResult : rows with checkpoint, step, subset, num_parameters, loss L_n(w*_k),
        gradient_norm |∇_S L_n(w*_k)|, downhill_bound, estimate, std_error (MCSE),
        systematic_error (predicted SGLD bias ε E|ĝ|²/4), interval = estimate ± (1.96 std_error +
        systematic_error), mala_acceptance, fraction_below_center, rhat, ess_bulk, escape,
        non_minimum, per_chain and warnings. `write_table` writes them as CSV.

    Checkpoints that are not minima
    -------------------------------
    With g = ∇L_n(w*) ≠ 0 the chains drift downhill and the escape check (loss below L_n(w*))
    fires: that is expected there, not a failure. In a quadratic model L ≈ L* + g·δ + ½ δᵀHδ
    with H ⪰ 0 and A = nβH + γI the estimate is exactly

        λ̂ = (nβ/2) tr(H A⁻¹) − nβ² gᵀA⁻¹(I − ½ nβ H A⁻¹) g,

    the localised geometric term minus a downhill term in [0, nβ²|g|²/γ] (`downhill_bound`).
    So the geometric term lies in [λ̂, λ̂ + downhill_bound]; a row is `non_minimum` when the
    bound exceeds 10 % of |λ̂|, and then an escape warning is read as descent, not as a
    failure, and λ̂ as a lower bound on the localised LLC. Larger γ shrinks the bound (∝ 1/γ)
    but also the geometric term of directions with nβh ≲ γ: keep γ fixed over the trajectory.
    At a saddle (H with a direction of curvature −h < 0) the localised posterior exists only
    for γ > nβh; below that the chains run down the saddle and λ̂ is large and negative even
    where the gradient (and so the bound) is tiny: `reading` = "saddle_or_escape" marks rows
    with λ̂ + downhill_bound below 0 beyond the interval. The rows' `reading` is "minimum",
    "descent" or "saddle_or_escape" (see docs/trajectory.md for choosing γ from it).

    Raises
    ------
    ValueError : bad arguments, a restriction path that matches no parameter, a checkpoint that
        does not match the model, or an `out_dir` holding another run's record.
    """
    start_time = time.perf_counter()
    loss_fn, template, data = _resolve_model(model, data, checkpoints)
    checkpoint_list = load_checkpoints(checkpoints, template, steps=steps)
    restrictions = restriction_table(restrict, template)
    n = toy_models.num_data(data)
    nbeta = float(n * slt.watanabe_beta(n) if nbeta is None else nbeta)
    if not (localization >= 0):
        raise ValueError(f"localization must be >= 0, got {localization}")
    for name, value, minimum in (("pack_size", pack_size, 1), ("num_chains", num_chains, 1), ("num_draws", num_draws, 1),
                                 ("thinning", thinning, 1), ("pilot_steps", pilot_steps, 2),
                                 ("num_burnin", 0 if num_burnin is None else num_burnin, 0),
                                 ("batch_size", 1 if batch_size is None else batch_size, 1)):
        check_integer(name, value, minimum)  # before anything is compiled or written: no record left behind
    if not nbeta > 0:
        raise ValueError(f"nbeta must be > 0, got {nbeta!r}")
    if step_size is not None and not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size!r}")
    if not -len(checkpoint_list) <= calibrate_at < len(checkpoint_list):
        raise ValueError(f"calibrate_at = {calibrate_at} is not a checkpoint index (there are {len(checkpoint_list)})")
    num_burnin = max(num_draws * thinning // 4, 1) if num_burnin is None else num_burnin
    num_steps = num_burnin + num_draws * thinning
    key_calibration, _ = jax.random.split(key)

    def posterior_at(params):
        return slt.TemperedPosterior(loss_fn, data, nbeta, params, float(localization))

    settings = {"nbeta": nbeta, "localization": float(localization), "sampler": sampler, "batch_size": batch_size,
                "num_chains": num_chains, "num_draws": num_draws, "num_burnin": num_burnin, "thinning": thinning,
                "num_steps": num_steps, "calibrate_at": calibrate_at % len(checkpoint_list),
                "target_acceptance": target_acceptance, "bias_tolerance": bias_tolerance, "pilot_steps": pilot_steps,
                "pack_size": pack_size, "num_data": n, "step_size": step_size}
    identity = {"settings": settings,
                "key": np.asarray(jax.random.key_data(key)).tolist(),
                "checkpoints": [[c.name, c.step, fingerprint(c.params)] for c in checkpoint_list],
                "restrictions": [[r.name, list(r.modes), [None if i is None else i.tolist() for i in r.indices]]
                                 for r in restrictions]}
    out_dir = None if out_dir is None else Path(out_dir)
    stored = None if out_dir is None else open_store(out_dir, identity)
    if stored is not None:
        calibration = stored["calibration"]
    elif step_size is None:
        calibration = _calibrate(posterior_at(checkpoint_list[calibrate_at].params), num_chains, key_calibration,
                                 batch_size=batch_size, target_acceptance=target_acceptance,
                                 bias_tolerance=bias_tolerance, pilot_steps=pilot_steps)
    else:
        calibration = {"step_size": float(step_size), "given": True}
    if out_dir is not None and stored is None:
        write_json_atomically(out_dir / CONFIG_NAME, {"identity": identity, "calibration": calibration,
                                                      "versions": slt.package_versions()})
    epsilon = float(calibration["step_size"])

    value_and_grad = jax.jit(jax.value_and_grad(loss_fn))
    at_checkpoint = [value_and_grad(c.params, data) for c in checkpoint_list]
    sizes = [int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(template)]

    def gradient_norm(gradient, restriction):
        leaves = jax.tree_util.tree_leaves(gradient)
        total = 0.0
        for leaf, mode, index in zip(leaves, restriction.modes, restriction.indices):
            flat = np.asarray(leaf, np.float64).reshape(-1)
            total += float(np.sum(np.square(flat if mode == "all" else flat[index] if mode == "some" else 0.0)))
        return float(np.sqrt(total))

    packs = [(s, list(range(start, min(start + pack_size, len(checkpoint_list)))))
             for s in range(len(restrictions)) for start in range(0, len(checkpoint_list), pack_size)]
    rows: dict[tuple[int, int], dict] = {}
    with progress_bar("slt trajectory", len(restrictions) * len(checkpoint_list), unit="checkpoints",
                      enabled=progress):
        for pack_number, (subset_index, indices) in enumerate(packs):
            restriction = restrictions[subset_index]
            if out_dir is not None:
                finished = [load_row(out_dir, restriction.name, checkpoint_list[i].step) for i in indices]
                if all(row is not None for row in finished):
                    rows.update({(subset_index, i): row for i, row in zip(indices, finished)})
                    advance_progress(len(indices), "checkpoints")
                    continue
            samplers, starts = [], []
            for i in indices:
                posterior = posterior_at(checkpoint_list[i].params)
                if subset_index == 0:
                    job = slt.make_sampler(sampler, posterior, step_size=epsilon, batch_size=batch_size)
                    start = posterior.center
                else:
                    job = restricted_sampler(sampler, posterior, restriction, step_size=epsilon, batch_size=batch_size)
                    start = _restricted_start(job)
                samplers.append(job)
                starts.append(jax.tree_util.tree_map(lambda leaf: jnp.broadcast_to(leaf, (num_chains, *leaf.shape)),
                                                     start))
            traces = slt.sample_jobs(samplers, starts, [checkpoint_key(key, i, subset_index) for i in indices],
                                     num_chains=num_chains, num_steps=num_steps, num_burnin=num_burnin, thinning=thinning)
            for i, trace in zip(indices, traces):
                loss, gradient = at_checkpoint[i]
                row = _row(checkpoint_list[i], i, restriction, trace, num_parameters=restriction.num_sampled(sizes),
                           loss=float(loss), gradient_norm=gradient_norm(gradient, restriction), nbeta=nbeta,
                           localization=float(localization), step_size=epsilon)
                rows[(subset_index, i)] = row
                if out_dir is not None:
                    write_json_atomically(row_path(out_dir, restriction.name, checkpoint_list[i].step), row)
            advance_progress(len(indices), "checkpoints")
            if on_pack is not None:
                on_pack(pack_number)
    ordered = [rows[(s, i)] for s in range(len(restrictions)) for i in range(len(checkpoint_list))]
    settings["seconds"] = time.perf_counter() - start_time
    return TrajectoryResult(ordered, calibration, settings, out_dir)


def _restricted_start(job: slt.Sampler):
    """u* = the sampled coordinates of the checkpoint (the restricted posterior's centre)."""
    operand = job.operands[0]
    modes = dict(job.traced.static)["modes"]
    return restricted_posterior(operand, modes).center

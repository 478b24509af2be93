"""Where a data set's density of states stops following ε^λ: the noise floor of K_n, measured.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/nested_noise_floor.py

For each model and data-set size n: nested sampling (`slt.nested_sample_model(..., data=...)`,
K_n(w) = max(L_n(w) − min L_n, 0), the model's prior) and, once per model, of the population K.
L_n is the registry model's, computed from the data set's sufficient statistics (the models are
Gaussian regressions linear in x), so n = 10⁵ costs what n = 10² does.
Two readings, written to benchmarks/results/nested_noise_floor.{md,json}:

The runs stop once every live point has s = −log K > log n + `--past-floor` (population: s > 20).

1. Local slope: λ at the model's true m (`estimators.fit_window` at fixed m) on consecutive
   windows of s = −log K of width `--window-width` nats, for the data-set runs and the population
   run. Where the data-set slope leaves the population's, the ε^λ scaling has stopped.
2. The rule: λ̂ ± se and m̂ of `estimators.rlct_from_dead_points` on the deaths with
   s <= log n + margin (`slt.nested.above_noise_floor`) for several margins, and z = (λ̂ − λ)/se
   against the population λ (at m̂, and at the true m). The margin in `slt.nested.NOISE_FLOOR_MARGIN`
   is the largest one whose z stays within ±2.5 on every run that can be fitted at all and whose
   mean z is within 2 standard errors of the mean of 0 (the summary table at the top of the .md).

Keys: `jax.random.key(seed)` folded with the model's index, then n, then the data-set repeat;
each split into `key_data` and `key_run`.
"""

import argparse
import json
import math
import os
import platform
import sys
import time
from types import SimpleNamespace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import estimators
import slt
import toy_models

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
MODELS = (("regular", {"d": 2}), ("normal_crossing", {"powers": (1, 1)}),
          ("normal_crossing", {"powers": (2, 1), "prior_powers": (2, 2)}))


def coefficients(model, w):
    """A(w) of the registry's Gaussian regressions that are linear in x, mean = A(w)·x: w for
    regular(d), Π w_j^(k_j) (one input) for normal_crossing."""
    if model.name == "regular":
        return w
    return jnp.prod(w ** jnp.asarray(model.params["powers"]))[None]


class SufficientStatistics(NamedTuple):
    """Σ x xᵀ, Σ x y, Σ y² of a data set; `count` has the data axis (n, 0) so that a data-set
    wrapper reads n from the first leaf, as from the data themselves."""

    count: jax.Array
    sxx: jax.Array
    sxy: jax.Array
    syy: jax.Array


def on_sufficient_statistics(model, data):
    """(the model with L_n from sufficient statistics, the statistics): L_n(w) =
    [Σ y² − 2 A·Σ x y + Aᵀ (Σ x xᵀ) A] / (2 σ² n) + log(2πσ²)/2, σ = 1, the registry's L_n exactly
    (up to float rounding) at a cost independent of n."""
    inputs, targets = data.inputs.astype(jnp.float64), data.targets[:, 0].astype(jnp.float64)
    stats = SufficientStatistics(jnp.zeros((inputs.shape[0], 0)), inputs.T @ inputs, inputs.T @ targets,
                                 jnp.sum(targets**2))

    def loss(w, statistics):
        a = coefficients(model, w)
        n = statistics.count.shape[0]
        return (statistics.syy - 2 * a @ statistics.sxy + a @ statistics.sxx @ a) / (2 * n) + 0.5 * math.log(2 * math.pi)
    return SimpleNamespace(name=model.name, loss=loss, prior=model.prior, w_star=model.w_star,
                           describe=model.describe), stats
MARGINS = (-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0)


def local_slopes(death_loss, num_live, multiplicity: int, width: float) -> list[dict]:
    """λ at fixed m on consecutive s-windows (s_lo, s_lo + width], from s = 1 to the deepest death."""
    positive = death_loss > 0
    death_loss, num_live = death_loss[positive], num_live[positive]
    s = -np.log(death_loss)
    rows = []
    for low in np.arange(1.0, s[-1] - 0.5 * width, width):
        keep = s <= low + width
        if np.sum((s > low) & keep) < 30:
            continue
        rlct, std_error, _ = estimators.fit_window(death_loss[keep], num_live[keep], float(low),
                                                   max_multiplicity=multiplicity)
        rows.append({"s_low": float(low), "s_high": float(low + width), "rlct": float(rlct[-1]),
                     "std_error": float(std_error[-1]), "num": int(np.sum((s > low) & keep))})
    return rows


def rule_readings(death_loss, num_live, num_data: int | None, truth: float, multiplicity: int) -> list[dict]:
    """The estimator on the deaths above log n + margin, for each margin (population: one row, no cut)."""
    rows = []
    for margin in (MARGINS if num_data else (None,)):
        if num_data:
            window_end = slt.nested.data_window_end(num_data, margin)
            losses, counts = slt.nested.above_noise_floor(death_loss, num_live, window_end)
        else:
            window_end, losses, counts = None, death_loss, num_live
        try:
            result = estimators.rlct_from_dead_points(losses, counts)
        except ValueError as error:
            rows.append({"margin": margin, "window_end": window_end, "error": str(error)})
            continue
        at_true_m = float(result.rlct_by_multiplicity[multiplicity - 1])
        se_true_m = float(result.std_error_by_multiplicity[multiplicity - 1])
        rows.append({"margin": margin, "window_end": window_end, "estimate": result.estimate,
                     "std_error": result.std_error, "m_hat": result.multiplicity,
                     "z": (result.estimate - truth) / result.std_error,
                     "estimate_at_true_m": at_true_m, "z_at_true_m": (at_true_m - truth) / se_true_m,
                     "window": list(result.diagnostics.window), "num_in_window": result.diagnostics.num_in_window,
                     "reasons": list(result.diagnostics.reasons)})
    return rows


def one_run(key, model, num_data: int | None, settings: dict, width: float) -> dict:
    key_data, key_run = jax.random.split(key)
    target, data = model, None
    if num_data is not None:
        with jax.enable_x64(True):
            data = model.sample_data(key_data, num_data)
            target, data = on_sufficient_statistics(model, data)
    started = time.perf_counter()
    # stop once every live point is `--past-floor` nats of log K beyond log n (population: at s = 20)
    deepest = 20.0 if num_data is None else math.log(num_data) + settings["past_floor"]
    run_settings = {k: v for k, v in settings.items() if k != "past_floor"}
    run = slt.nested_sample_model(key_run, target, data=data, progress=False, loss_floor=math.exp(-deepest),
                                  min_log_volume=400.0, min_log_loss_span=0.0, max_log_volume=400.0, **run_settings)
    seconds = time.perf_counter() - started
    truth, multiplicity = float(model.true_rlct), int(model.multiplicity)
    positive = run.death_loss > 0
    return {"model": model.label, "n": num_data, "lambda": truth, "m": multiplicity, "seconds": seconds,
            "stop_reason": run.stop_reason, "num_dead": int(run.death_loss.size),
            "s_deepest_positive": float(-np.log(run.death_loss[positive][-1])),
            "log_volume_reached": float(-np.sum(1.0 / run.num_live)),
            "log_n": None if num_data is None else math.log(num_data),
            "slopes": local_slopes(run.death_loss, run.num_live, multiplicity, width),
            "rule": rule_readings(run.death_loss, run.num_live, num_data, truth, multiplicity)}


def markdown(output: dict) -> str:
    lines = ["# The noise floor of a data set's density of states (nested sampling)", "",
             f"Command: `{output['command']}`  ", f"Machine: {output['machine']}  ",
             f"Load average start / end: {output['load_start']} / {output.get('load_end', '?')}  ",
             f"Settings: {output['settings']}, seed {output['seed']}", "",
             "K_n(w) = max(L_n(w) − min L_n, 0) on a data set of size n (L_n from its sufficient statistics), the model's prior.",
             "Local slope: λ at the true m on s-windows of the run (s = −log K); 'pop' is the population run.",
             "Rule: `estimators.rlct_from_dead_points` on the deaths with s <= log n + margin; z = (λ̂ − λ)/se at",
             "m̂ (and at the true m).", ""]
    lines += ["## Summary: z = (λ̂ − λ)/se of the rule's fit by margin, over the data-set runs that can be fitted", "",
              "| model | margin | fitted runs | mean z ± se | max \\|z\\| | runs with \\|z\\| > 2.5 |", "|---|---|---|---|---|---|"]
    for label in dict.fromkeys(run["model"] for run in output["runs"]):
        for margin in MARGINS:
            z = [r["z"] for run in output["runs"] if run["model"] == label and run["n"]
                 for r in run["rule"] if r["margin"] == margin and "z" in r]
            if z:
                lines.append(f"| {label} | {margin:+.0f} | {len(z)} | {np.mean(z):+.2f} ± {1 / math.sqrt(len(z)):.2f} "
                             f"| {np.max(np.abs(z)):.2f} | {sum(abs(v) > 2.5 for v in z)} |")
    lines.append("")
    for run in output["runs"]:
        lines += [f"## {run['model']}, n = {run['n'] or 'population'}", "",
                  f"λ = {run['lambda']:.4g}, m = {run['m']}; log n = {run['log_n'] or float('nan'):.2f}; deepest s with "
                  f"K > 0: {run['s_deepest_positive']:.1f}; stop: {run['stop_reason']}; {run['seconds']:.0f} s", "",
                  "| s window | λ (true m) ± se | deaths |", "|---|---|---|"]
        lines += [f"| ({w['s_low']:.1f}, {w['s_high']:.1f}] | {w['rlct']:.3f} ± {w['std_error']:.3f} | {w['num']} |"
                  for w in run["slopes"]]
        lines += ["", "| margin | window end s | λ̂ ± se | m̂ | z | λ̂ at true m | z at true m | window |", "|---|---|---|---|---|---|---|---|"]
        for r in run["rule"]:
            margin = "–" if r["margin"] is None else f"{r['margin']:+.0f}"
            end = "–" if r["window_end"] is None else f"{r['window_end']:.2f}"
            if "error" in r:
                lines.append(f"| {margin} | {end} | no fit: {r['error']} | | | | | |")
                continue
            lines.append(f"| {margin} | {end} | {r['estimate']:.4f} ± {r['std_error']:.4f} | {r['m_hat']} | {r['z']:+.2f} "
                         f"| {r['estimate_at_true_m']:.4f} | {r['z_at_true_m']:+.2f} | [{r['window'][0]:.2f}, {r['window'][1]:.2f}] |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=2, help="data sets per n")
    parser.add_argument("--models", type=int, nargs="+", default=[2, 1, 0], help="indices into MODELS")
    parser.add_argument("--num-live", type=int, default=500)
    parser.add_argument("--num-inner-steps", type=int, default=3)
    parser.add_argument("--window-width", type=float, default=2.0)
    parser.add_argument("--past-floor", type=float, default=6.0, help="nats of log K sampled beyond log n")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stem", default=os.path.join(RESULTS, "nested_noise_floor"))
    args = parser.parse_args(argv)
    settings = {"num_live": args.num_live, "num_inner_steps": args.num_inner_steps, "max_seconds": 600.0,
                "past_floor": args.past_floor}
    output = {"command": "benchmarks/nested_noise_floor.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "settings": settings, "seed": args.seed,
              "load_start": " ".join(f"{v:.1f}" for v in os.getloadavg()), "versions": slt.package_versions(), "runs": []}
    key = jax.random.key(args.seed)
    for index in args.models:
        family, parameters = MODELS[index]
        model = toy_models.get(family, **parameters)
        key_model = jax.random.fold_in(key, index)
        jobs = [(None, 0)] + [(n, repeat) for n in args.sizes for repeat in range(args.repeats)]
        for num_data, repeat in jobs:
            key_job = jax.random.fold_in(jax.random.fold_in(key_model, num_data or 0), repeat)
            run = one_run(key_job, model, num_data, settings, args.window_width)
            run["repeat"] = repeat
            output["runs"].append(run)
            best = [r for r in run["rule"] if "error" not in r]
            print(f"{run['model']:45s} n={num_data} rep={repeat} deepest s={run['s_deepest_positive']:.1f} "
                  f"{run['stop_reason']} {run['seconds']:.0f} s | "
                  + " ".join(f"{r['margin']}:{r['estimate']:.3f}±{r['std_error']:.3f}(m{r['m_hat']},z{r['z']:+.1f})" for r in best),
                  flush=True)
            output["load_end"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
            with open(args.stem + ".json", "w") as handle:
                json.dump(output, handle, indent=1)
            with open(args.stem + ".md", "w") as handle:
                handle.write(markdown(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The same LLC estimates in the workbench and in devinterp: wall time, ratio, estimate ± error.

    .venv/bin/python benchmarks/devinterp_compare.py                  # full settings, 3 repeats
    .venv/bin/python benchmarks/devinterp_compare.py --small          # fewer draws, for a look
    .venv/bin/python benchmarks/devinterp_compare.py --smoke          # tiny; what the test runs
    .venv/bin/python benchmarks/devinterp_compare.py --cases nc11,nc12 --repeats 5
    .venv/bin/python benchmarks/devinterp_compare.py --no-devinterp   # workbench side only

One process tree: this script (workbench venv, JAX) generates each case's data set with numpy
from a seed, writes it to a temporary .npz, and for every repeat runs the workbench estimate
in-process and the devinterp estimate in a child process, `benchmarks/devinterp_worker.py`
under benchmarks/.devinterp-venv/bin/python (created by benchmarks/setup_devinterp.sh when
missing), exchanging JSON on stdin/stdout. The two runs of a repeat alternate in order.

The posterior is the same in both tools: exp(−nβ L_n(w)) φ(w) with L_n the Gaussian negative
log-likelihood (σ = 1) of the registry model on that one data set, φ the model's N(0, 1) prior
(devinterp: weight_decay = 1), no localisation (γ = 0), and nβ = n / log n in both (devinterp's
own default nβ = b / log b for a full batch b = n; passed explicitly). Both tools start every
chain at the true w*, run the same number of chains and of SGLD steps (burn-in D/4 + D draws),
on the same minibatch size.

Step sizes (each tool's recommendation; devinterp's lr is 2ε in the workbench's convention
w ← w + ε ∇log p + √(2ε) ξ):
- devinterp: the lr of its own accuracy tests (normal crossing 2e-4, reduced-rank regression
  6e-5), and the DLN lr of the workbench's speed benchmark for the 1M network. devinterp has
  no automatic calibration.
- workbench: `slt.estimate`'s calibrated ε (MALA acceptance >= 0.9, predicted SGLD bias 2 %),
  its default; `--workbench-step matched` runs ε = lr/2 instead (same dynamics as devinterp).
  The 1M-parameter network uses ε = lr/2 through `slt.sample` (speed only: see Limitations).

Timing: each tool's estimate call alone, median over `--repeats`. Workbench: the whole
`slt.estimate` call (JIT compilation and step-size calibration included, no quadrature). Repeat 0
compiles; later repeats (new data, new seeds, same shapes) reuse the compiled samplers in this
process, as a researcher's second estimate in a session does, so the median of 3 is a warm time
and `ratio_per_repeat[0]` the cold one. The persistent compilation cache is not used here;
devinterp: the whole `estimate_learning_coeff_with_summary` call (its DataLoader, its init
loss), not the child's Python and torch import. Each repeat uses fresh seeds.

Error bars: devinterp's reported std of the per-chain LLCs / √chains; the workbench's MCSE
(sd / √ESS over all draws, `estimators.llc`, from same-minibatch differences L_b(w) − L_b(w*)).
With minibatches, devinterp's single init_loss (L(w*) averaged over `num_chains` batches) moves
every chain's λ̂ by the same nβ (L_n(w*) − init_loss); that shift is printed and saved. "covers" asks whether estimate ± 1.96 se holds the
truth λ, and, for d = 2, the exact finite-temperature value λ(nβ) both tools actually estimate.

Results: benchmarks/results/devinterp_compare_<setting>.{csv,json} with the machine (CPU model,
cores, load average before and after) and the versions of both environments.

Settings (`full`): normal crossings n = 1000, full batch, 10 chains × 5000 draws; the
10k-parameter rrr and DLN n = 10,000, batch 500, 4 chains × 2000 draws; the 1M-parameter DLN
n = 1000, batch 100, 4 chains × 200 draws. `small` cuts draws (1000, 500, 40); `smoke` uses tiny
models. Timings: benchmarks/results/devinterp_compare_full.json.

Limitations
-----------
- devinterp 1.3.2 only (`devinterp.slt.sampler.estimate_learning_coeff_with_summary`);
  devinterp 2.x reorganised its sampling API and is not driven here.
- For d >= 1000 the workbench records every 10th step (`thinning` 10, the same number of steps;
  devinterp records every step), and the 1M-parameter case bypasses `slt.estimate`.
- With n = 1000 and nβ = n / log n ≈ 145 both tools estimate λ(nβ), not λ: for the normal
  crossings the exact λ(nβ) is printed beside λ; for the 10k-parameter models no exact λ(nβ) is
  known and the gap to λ is large at any reachable nβ.
- Timings on a shared machine are contended; both tools use every core they see by default
  (devinterp runs its chains one after another, `cores=1`, its default).
- devinterp's DataLoader shuffles without replacement per epoch; the workbench draws minibatch
  indices with replacement. Same batch size, same nβ, same posterior.
"""

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import estimators
import slt
import toy_models
from toy_models import RegressionData

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling report module, also when loaded by path
from devinterp_report import machine_description, print_table, save, summarise  # noqa: E402

HERE = Path(__file__).resolve().parent
DEVINTERP_VENV = Path(os.environ.get("DEVINTERP_VENV", HERE / ".devinterp-venv"))
DEVINTERP_PYTHON = DEVINTERP_VENV / "bin" / "python"
SETUP_SCRIPT = HERE / "setup_devinterp.sh"
WORKER = HERE / "devinterp_worker.py"
RESULTS = HERE / "results"


@dataclasses.dataclass(frozen=True)
class Case:
    """One comparison: a registry model, data size, SGLD settings shared by both tools."""

    name: str
    family: str
    params: dict
    n: int
    batch_size: int
    num_chains: int
    num_draws: int
    devinterp_lr: float  # devinterp's lr = 2ε in the workbench's convention
    workbench_thinning: int = 1
    speed_only: bool = False  # the workbench side runs slt.sample with ε = lr / 2, not slt.estimate
    note: str = ""

    @property
    def num_burnin(self) -> int:
        return max(self.num_draws // 4, 1)

    @property
    def nbeta(self) -> float:
        return self.n / math.log(self.n)


def cases_for(setting: str) -> list[Case]:
    """The cases of `full`, `small` (fewer draws) and `smoke` (tiny models, seconds)."""
    if setting == "smoke":
        return [
            Case("nc11", "normal_crossing", {"powers": (1, 1)}, 200, 200, 2, 100, 2e-4),
            Case("nc12", "normal_crossing", {"powers": (1, 2)}, 200, 200, 2, 100, 2e-4),
            Case("rrr", "rrr", {"M": 4, "H": 3, "N": 4, "r": 1}, 200, 100, 2, 100, 6e-5, workbench_thinning=2),
            Case("dln", "dln", {"widths": (4, 3, 3, 4), "r": 1}, 200, 100, 2, 100, 6e-5, workbench_thinning=2),
            Case("dln1m", "dln", {"widths": (20,) * 4, "r": 2}, 200, 50, 2, 20, 2e-6, speed_only=True),
        ]
    # The 10k-parameter cases run 4 chains × 2000 draws in `full` to keep a repeat within minutes
    # on a shared 2-core CPU, where devinterp's time per step there grows tenfold.
    draws_toy, draws_10k, chains_10k, draws_1m = {"full": (5000, 2000, 4, 200), "small": (1000, 500, 4, 40)}[setting]
    return [
        Case("nc11", "normal_crossing", {"powers": (1, 1)}, 1000, 1000, 10, draws_toy, 2e-4,
             note="y = x w1 w2, λ = 1/2, m = 2"),
        Case("nc12", "normal_crossing", {"powers": (1, 2)}, 1000, 1000, 10, draws_toy, 2e-4,
             note="y = x w1 w2², λ = 1/4, m = 1"),
        Case("rrr", "rrr", {"M": 100, "H": 50, "N": 100, "r": 10}, 10_000, 500, chains_10k, draws_10k, 6e-5,
             workbench_thinning=10, note="reduced-rank regression, d = 10,000"),
        Case("dln", "dln", {"widths": (50,) * 5, "r": 10}, 10_000, 500, chains_10k, draws_10k, 6e-5,
             workbench_thinning=10, note="deep linear network 50⁵, d = 10,000"),
        Case("dln1m", "dln", {"widths": (450,) * 6, "r": 5}, 1000, 100, 4, draws_1m, 2e-6, speed_only=True,
             note="deep linear network 450⁶, d = 1,012,500"),
    ]


# --------------------------------------------------------------------------------------------
# Data: numpy, from a seed, shared by both tools


def true_parameters(model) -> list[np.ndarray]:
    """w* as a list of float32 arrays (the monomial's vector, or the chain's matrices in order)."""
    if model.name == "normal_crossing":
        return [np.asarray(model.w_star, np.float32)]
    if model.name == "rrr":
        return [np.asarray(model.w_star["A"], np.float32), np.asarray(model.w_star["B"], np.float32)]
    if model.name == "dln":
        return [np.asarray(layer, np.float32) for layer in model.w_star]
    raise ValueError(f"no devinterp counterpart for family {model.name!r}")


def make_data(model, parameters: list[np.ndarray], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x ~ N(0, I), y = f(w*, x) + N(0, I), as the registry's `sample_data` but in numpy."""
    rng = np.random.default_rng(seed)
    if model.name == "normal_crossing":
        powers = np.asarray(model.params["powers"])
        inputs = rng.standard_normal((n, 1))
        means = inputs * np.prod(parameters[0].astype(np.float64) ** powers)
    else:
        inputs = rng.standard_normal((n, parameters[0].shape[1]))
        means = inputs
        for matrix in parameters:
            means = means @ matrix.astype(np.float64).T
    targets = means + rng.standard_normal(means.shape)
    return inputs.astype(np.float32), targets.astype(np.float32)


def with_fixed_data(model, data: RegressionData):
    """The registry model whose `sample_data` returns `data` (so `slt.estimate` runs on it)."""
    def sample_data(key, n):
        if n != data.inputs.shape[0]:
            raise ValueError(f"fixed data set has {data.inputs.shape[0]} points, asked for {n}")
        return data

    return dataclasses.replace(model, sample_data=sample_data)


# --------------------------------------------------------------------------------------------
# The two tools


def warm_sampling_seconds(case: Case, model, data: RegressionData, key, step_size: float) -> dict[str, float]:
    """The sampling alone, as a second `slt.sample` call with a cached executable: the same
    chains, steps, ε and batch as the `slt.estimate` run, without calibration, compilation or
    recorded positions. (`slt.estimate` builds a new kernel per call, so it always compiles.)"""
    posterior = slt.TemperedPosterior(model.loss, data, nbeta=case.nbeta, center=model.w_star, prior=model.prior)
    sampler = slt.make_sampler("sgld", posterior, step_size=step_size,
                               batch_size=case.batch_size if case.batch_size < case.n else None)
    run = dict(num_chains=case.num_chains, num_steps=case.num_burnin + case.num_draws, num_burnin=case.num_burnin,
               thinning=case.workbench_thinning)
    times = []
    for index in range(2):
        start = time.perf_counter()
        slt.sample(sampler, model.w_star, jax.random.fold_in(key, index), **run)
        times.append(time.perf_counter() - start)
    return {"first_sample_seconds": times[0], "warm_sample_seconds": times[1]}


def run_workbench(case: Case, model, data: RegressionData, seed: int, step_mode: str, warm: bool = False) -> dict[str, Any]:
    key = jax.random.key(seed)
    if case.speed_only:
        posterior = slt.TemperedPosterior(model.loss, data, nbeta=case.nbeta, center=model.w_star, prior=model.prior)
        start = time.perf_counter()
        sampler = slt.make_sampler("sgld", posterior, step_size=case.devinterp_lr / 2, batch_size=case.batch_size)
        trace = slt.sample(sampler, model.w_star, key, num_chains=case.num_chains,
                           num_steps=case.num_burnin + case.num_draws, num_burnin=case.num_burnin)
        result = estimators.llc(trace.loss, trace.loss_at_center, case.nbeta)
        seconds = time.perf_counter() - start
        record = {}
        if warm:  # one gradient per step, as devinterp: without SGLD's MALA diagnostic
            plain = slt.make_sampler("sgld", posterior, step_size=case.devinterp_lr / 2, batch_size=case.batch_size,
                                     mala_diagnostic=False)
            start = time.perf_counter()
            slt.sample(plain, model.w_star, jax.random.fold_in(key, 1), num_chains=case.num_chains,
                       num_steps=case.num_burnin + case.num_draws, num_burnin=case.num_burnin)
            record["no_mala_seconds"] = time.perf_counter() - start
        return {**record, "estimate": result.mean, "std_error": result.std_error, "seconds": seconds,
                "step_size": case.devinterp_lr / 2, "path": "slt.sample + estimators.llc",
                "reliable": not result.unreliable, "reasons": list(result.diagnostics.reasons),
                "mala_acceptance": trace.diagnostics.mala_acceptance}
    step_size = None if step_mode == "calibrated" else case.devinterp_lr / 2
    batch_size = case.batch_size if case.batch_size < case.n else None
    start = time.perf_counter()
    result = slt.estimate(with_fixed_data(model, data), "llc", key=key, n=case.n, num_chains=case.num_chains,
                          num_draws=case.num_draws // case.workbench_thinning, thinning=case.workbench_thinning,
                          nbeta=case.nbeta, batch_size=batch_size, step_size=step_size, exact=False)
    seconds = time.perf_counter() - start
    record = {}
    if warm:
        record = warm_sampling_seconds(case, model, data, jax.random.fold_in(key, 1), result.diagnostics["step_size"])
    return {**record, "estimate": result.estimate, "std_error": result.std_error, "seconds": seconds,
            "step_size": result.diagnostics["step_size"], "path": "slt.estimate",
            "reliable": not result.unreliable, "reasons": list(result.diagnostics["reasons"]),
            "mala_acceptance": result.diagnostics["mala_acceptance"], "rhat": result.diagnostics["rhat"],
            "ess_bulk": result.diagnostics["ess_bulk"],
            "predicted_step_size_bias": result.diagnostics["predicted_step_size_bias"]}


def worker_call(spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    completed = subprocess.run([str(DEVINTERP_PYTHON), str(WORKER)], input=json.dumps(spec), capture_output=True,
                               text=True, timeout=timeout)
    if completed.returncode != 0:
        raise RuntimeError(f"devinterp worker failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_devinterp(case: Case, model, data_path: Path, seed: int) -> dict[str, Any]:
    spec = {
        "data": str(data_path),
        "model": "monomial" if model.name == "normal_crossing" else "linear_chain",
        "powers": list(model.params.get("powers", ())),
        "nbeta": case.nbeta,
        "lr": case.devinterp_lr,
        "weight_decay": 1.0,  # the model's N(0, 1) prior
        "localization": 0.0,
        "batch_size": case.batch_size,
        "num_chains": case.num_chains,
        "num_draws": case.num_draws,
        "num_burnin": case.num_burnin,
        "seed": seed,
    }
    start = time.perf_counter()
    result = worker_call(spec)
    result["process_seconds"] = time.perf_counter() - start
    return {"estimate": result["llc_mean"], "std_error": result["llc_std_error"], "seconds": result["seconds"],
            "std_across_chains": result["llc_std"], "per_chain": result["llc_per_chain"],
            "process_seconds": result["process_seconds"], "versions": result["versions"],
            "init_loss": result["init_loss"], "full_data_loss_at_w_star": result["full_data_loss_at_w_star"],
            # devinterp's λ̂ = nβ (mean loss − init_loss) with one init_loss for all chains, taken on
            # num_chains minibatches: against L_n(w*) it moves every chain's λ̂ by
            # nβ (L_n(w*) − init_loss), which the std across chains does not see.
            "init_loss_shift": case.nbeta * (result["full_data_loss_at_w_star"] - result["init_loss"])}


def ensure_devinterp() -> None:
    if not (DEVINTERP_PYTHON.exists() and any(DEVINTERP_VENV.glob(".installed-devinterp-*"))):
        print(f"devinterp venv missing: running {SETUP_SCRIPT}", flush=True)
        start = time.perf_counter()
        subprocess.run(["bash", str(SETUP_SCRIPT)], check=True)
        print(f"devinterp setup took {time.perf_counter() - start:.0f} s", flush=True)


# --------------------------------------------------------------------------------------------
# Machine, summary, table


# --------------------------------------------------------------------------------------------


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--small", action="store_const", dest="setting", const="small", help="fewer draws")
    size.add_argument("--smoke", action="store_const", dest="setting", const="smoke", help="tiny models, seconds")
    parser.set_defaults(setting="full")
    parser.add_argument("--cases", default=None, help="comma-separated subset of nc11,nc12,rrr,dln,dln1m")
    parser.add_argument("--repeats", type=int, default=None, help="repetitions per case (default 3; smoke 1)")
    parser.add_argument("--seed", type=int, default=0, help="data seed; repeat r uses sampler seed seed + 1000 + r")
    parser.add_argument("--workbench-step", choices=("calibrated", "matched"), default="calibrated",
                        help="slt.estimate's calibrated ε (default) or ε = devinterp lr / 2")
    parser.add_argument("--no-devinterp", action="store_true", help="workbench side only")
    parser.add_argument("--no-warm", action="store_true",
                        help="skip the extra warm slt.sample timing (sampling alone, cached executable)")
    parser.add_argument("--no-setup", action="store_true", help="do not create the devinterp venv when missing")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    repeats = arguments.repeats or (1 if arguments.setting == "smoke" else 3)
    cases = cases_for(arguments.setting)
    if arguments.cases:
        wanted = arguments.cases.split(",")
        unknown = sorted(set(wanted) - {c.name for c in cases})
        if unknown:
            parser.error(f"unknown case(s) {unknown}; known: {', '.join(c.name for c in cases)}")
        cases = [c for c in cases if c.name in wanted]

    use_devinterp = not arguments.no_devinterp
    if use_devinterp and not arguments.no_setup:
        ensure_devinterp()
    if use_devinterp and not DEVINTERP_PYTHON.exists():
        parser.error(f"no devinterp venv at {DEVINTERP_VENV}: run {SETUP_SCRIPT} or pass --no-devinterp")
    meta = {"machine": machine_description(), "setting": arguments.setting, "repeats": repeats,
            "seed": arguments.seed, "workbench_step": arguments.workbench_step,
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
            "workbench_versions": slt.package_versions()}
    if use_devinterp:
        meta["devinterp_versions"] = worker_call({"versions_only": True})["versions"]
    machine = meta["machine"]
    print(f"{machine['cpu_model']}, {machine['cpu_count']} cores, load {machine['load_average_start'][0]:.2f}; "
          f"jax {jax.__version__} ({jax.default_backend()})"
          + (f"; devinterp {meta['devinterp_versions']['devinterp']}, torch {meta['devinterp_versions']['torch']}"
             if use_devinterp else "; devinterp side skipped"), flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="devinterp_compare_") as scratch:
        for index, case in enumerate(cases):
            model = toy_models.get(case.family, **case.params)
            parameters = true_parameters(model)
            inputs, targets = make_data(model, parameters, case.n, arguments.seed + index)
            data_path = Path(scratch) / f"{case.name}.npz"
            np.savez(data_path, inputs=inputs, targets=targets, **{f"w_star_{i}": p for i, p in enumerate(parameters)})
            data = RegressionData(jnp.asarray(inputs), jnp.asarray(targets))
            exact = toy_models.finite_temperature_rlct(model, case.nbeta) if model.dimension <= 2 else None
            print(f"\n{case.name}: {model.label}, d = {model.dimension:,}, n = {case.n}, nβ = {case.nbeta:.1f}, "
                  f"batch {case.batch_size}, {case.num_chains} chains × ({case.num_burnin} burn-in + "
                  f"{case.num_draws} draws), devinterp lr = {case.devinterp_lr:g}", flush=True)
            runs = []
            for repeat in range(repeats):
                seed = arguments.seed + 1000 + repeat
                record: dict[str, Any] = {"seed": seed}
                order = ("workbench", "devinterp") if repeat % 2 == 0 else ("devinterp", "workbench")
                for tool in order:
                    if tool == "workbench":
                        record[tool] = run_workbench(case, model, data, seed, arguments.workbench_step,
                                                     warm=repeat == 0 and not arguments.no_warm)
                    elif use_devinterp:
                        record[tool] = run_devinterp(case, model, data_path, seed)
                    else:
                        continue
                    print(f"  repeat {repeat}: {tool:9s} {record[tool]['seconds']:8.2f} s  "
                          f"λ̂ = {record[tool]['estimate']:.4g} ± {record[tool]['std_error']:.2g}", flush=True)
                runs.append(record)
            rows.append(summarise(case, model, exact, runs))
    meta["machine"]["load_average_end"] = os.getloadavg()

    print(f"\nλ̂ ± se: devinterp std across chains / √chains; workbench MCSE. Times: median of {repeats}; "
          f"ratio = devinterp / workbench. covers: |λ̂ − truth| <= 1.96 se.")
    print_table(rows)
    stem = f"devinterp_compare_{arguments.setting}"
    if arguments.no_devinterp:
        stem += "_workbench_only"
    json_path, csv_path = save(rows, meta, stem, arguments.output_dir)
    print(f"\nsaved {csv_path} and {json_path}")
    return rows


if __name__ == "__main__":
    main()

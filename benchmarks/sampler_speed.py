"""SGLD chain-steps per second through `slt.sample`, compile time and steady state apart.

    .venv/bin/python benchmarks/sampler_speed.py            # both cases, CPU
    .venv/bin/python benchmarks/sampler_speed.py --case toy --repetitions 7

Cases (issue 2):
- toy: 2-parameter normal crossing K = w1² w2², n = 1000, 10 chains × 5000 draws, batch 100.
- dln: deep linear network with about 1M parameters (widths 450 × 6: five 450 × 450 layers,
  1,012,500 parameters), n = 1000, batch 100, fewer steps and chains.

For each case and each setting of SGLD's MALA diagnostic (one more gradient per step), the
first call is timed (trace + compile + run), then `--repetitions` more calls with fresh keys
(cached executable): the steady-state time is their median, and compile ≈ first − steady.
Steady times include the driver's host work (key splitting, copying the trace to numpy, and
the diagnostics, which `sample` computes on every run); the diagnostics' own time (median of
`diagnose(trace)` on the last trace) is printed and also taken out in a second rate.
"""

import argparse
import os
import platform
import statistics
import time

import jax

import toy_models
from slt.run import diagnose, sample
from slt.samplers import TemperedPosterior, make_sampler


def case_toy():
    model = toy_models.get("normal_crossing", powers=(1, 1))
    data = model.sample_data(jax.random.key(0), 1000)
    posterior = TemperedPosterior.from_model(model, data, localization=1.0)
    return model, posterior, dict(num_chains=10, num_steps=5000), 1e-4


def case_dln(num_steps, num_chains):
    model = toy_models.get("dln", widths=(450,) * 6, r=5)
    data = model.sample_data(jax.random.key(0), 1000)
    posterior = TemperedPosterior.from_model(model, data, localization=1.0)
    return model, posterior, dict(num_chains=num_chains, num_steps=num_steps), 1e-6


def measure(name, model, posterior, run, step_size, mala_diagnostic, repetitions):
    sampler = make_sampler("sgld", posterior, step_size=step_size, batch_size=100, mala_diagnostic=mala_diagnostic)

    def once(seed):
        start = time.perf_counter()
        trace = sample(sampler, model.w_star, jax.random.key(seed), **run)
        return time.perf_counter() - start, trace

    first, trace = once(0)
    steady = [once(seed)[0] for seed in range(1, repetitions + 1)]
    median = statistics.median(steady)
    diagnose_times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        diagnose(trace)
        diagnose_times.append(time.perf_counter() - start)
    diagnose_median = statistics.median(diagnose_times)
    chain_steps = run["num_chains"] * run["num_steps"]
    llc = posterior.nbeta * float((trace.loss - trace.loss_at_center).mean())
    print(
        f"{name:4s} d={model.dimension:>9,d} chains={run['num_chains']:>2d} steps={run['num_steps']:>5d} "
        f"mala={'on ' if mala_diagnostic else 'off'} | first call {first:7.2f} s, compile ≈ {first - median:6.2f} s | "
        f"steady median {median:8.4f} s (min {min(steady):.4f}, max {max(steady):.4f}, {repetitions} runs) | "
        f"{chain_steps / median:12,.0f} chain-steps/s end to end, "
        f"{chain_steps / (median - diagnose_median):12,.0f} without the {diagnose_median:.3f} s of diagnostics | LLC ≈ {llc:.3g}"
        + (f", MALA acceptance {trace.diagnostics.mala_acceptance:.3f}" if mala_diagnostic else ""),
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=("toy", "dln", "all"), default="all")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--dln-steps", type=int, default=200)
    parser.add_argument("--dln-chains", type=int, default=1)
    arguments = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({len(jax.devices())} device(s)), "
          f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}")
    if arguments.case in ("toy", "all"):
        for mala in (True, False):
            measure("toy", *case_toy(), mala, arguments.repetitions)
    if arguments.case in ("dln", "all"):
        for mala in (True, False):
            measure("dln", *case_dln(arguments.dln_steps, arguments.dln_chains), mala,
                    max(3, arguments.repetitions // 2))


if __name__ == "__main__":
    main()

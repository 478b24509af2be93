"""`slt experiment {volume,bayesian-sampler,bayesian-sampler-nested,counting} [--small] [--seed S] [--json]`.

    slt experiment volume             # guess-and-check vs SGD/SGLD (Chiang et al. 2023)
    slt experiment bayesian-sampler   # P_SGD(f|S) vs P_B(f|S) on Boolean functions (Mingard et al. 2021)
    slt experiment bayesian-sampler-nested  # the same at 7 bits, P_B(f|S) by nested sampling
    slt experiment counting           # direct vs extra-computation network: LLC and local volume
"""

import json
import math

import numpy as np

from slt import experiments
from slt.cli._progress import add_progress_flag, wanted
from slt.run import SEED_RULE, prng_key, progress_bar


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment", help="small exact experiments: volume hypothesis, SGD as a Bayesian sampler, counting",
        description="Run one of the seed-discussion experiments (slt.experiments) and print its numbers.",
    )
    parser.add_argument("name", choices=sorted(experiments.EXPERIMENTS), help="which experiment")
    parser.add_argument("--small", action="store_true", help="tiny settings (seconds; for tests)")
    parser.add_argument("--seed", type=int, default=0, help=f"PRNG seed, {SEED_RULE} (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_progress_flag(parser)
    parser.set_defaults(run=run_experiment)


def _clean(value):
    """JSON-ready: numpy to lists/floats, NaN/inf to None, NamedTuples to dicts."""
    if hasattr(value, "_asdict"):
        return {k: _clean(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _pm(estimate, digits=3) -> str:
    return f"{estimate[0]:.{digits}f} ± {estimate[1]:.{digits}f}"


def run_experiment(args) -> int:
    settings = experiments.SMALL_SETTINGS[args.name] if args.small else {}
    with progress_bar(f"slt experiment {args.name}", 0, unit="stages", enabled=wanted(args)):  # planned by it
        result = experiments.EXPERIMENTS[args.name](prng_key(args.seed, "--seed"), **settings)
    if args.json:
        print(json.dumps(_clean(result), indent=2, ensure_ascii=False))
        return 0
    printers = {"volume": _print_volume, "bayesian-sampler": _print_bayes, "bayesian-sampler-nested": _print_nested,
                "counting": _print_counting}
    printers[args.name](result)
    return 0


def _print_volume(result) -> None:
    print(f"kink task: n = {result.num_train} training points, tanh width {result.width} (d = {result.dimension}); "
          f"accept when train acc = 100 % and L < {result.epsilon_accept:g}")
    print(f"V(ε) = P_prior(L < ε) at ε = {', '.join(f'{e:g}' for e in result.epsilons)}: "
          f"{', '.join(f'{v:.2e}' for v in result.volumes)}")
    print(f"slope of log V in log ε: {_pm(result.volume_slope, 2)}   (generic interpolant: λ = n/2 = "
          f"{result.generic_rlct:g})")
    print(f"LLC at nβ = {result.nbeta:g} after polishing to L ≈ 0; mean ± SE over solutions")
    print(f"{'method':16s} {'accepted/tried':>16s} {'test accuracy':>16s} {'LLC':>14s}  measured")
    for m in result.methods:
        print(f"{m.name:16s} {m.num_accepted:>7d}/{m.num_tried:<8d} {_pm(m.test_accuracy):>16s} "
              f"{_pm(m.llc, 2):>14s}  {int(np.isfinite(m.llcs).sum())}")
    print(f"Pearson r(LLC, test accuracy) over all measured solutions: {result.llc_accuracy_correlation:.3f}")


def _print_bayes(result) -> None:
    print(f"{result.num_bits}-bit Boolean functions, |S| = {result.num_train}, ReLU width {result.width}; "
          f"P_B from {result.num_prior_accepted} of {result.num_prior_draws} prior draws with zero training error")
    for optimizer, r in result.pearson.items():
        print(f"{optimizer:9s} converged {result.converged[optimizer]}/{result.num_runs}; Pearson r(log P_opt, "
              f"log P_B) = {r:.3f}; P_opt mass on functions P_B never drew: {result.mass_outside_bayes[optimizer]:.4f}")
    optimizers = list(result.pearson)
    print(f"{'f on test inputs':18s} {'P_B':>8s} " + " ".join(f"{o:>9s}" for o in optimizers)
          + f" {'test acc':>9s} {'LLC (nβ=' + format(result.nbeta, 'g') + ')':>16s}")
    for row in result.functions[:12]:
        llc = "" if not math.isfinite(row.llc) else f"{row.llc:.2f} ± {row.llc_std_error:.2f}"
        print(f"{row.test_pattern:18s} {row.p_bayes:8.4f} " + " ".join(f"{row.p_optimizers[o]:9.4f}" for o in optimizers)
              + f" {row.test_accuracy:9.3f} {llc:>16s}")


def _print_nested(result) -> None:
    print(f"{result.num_bits}-bit Boolean functions, |S| = {result.num_train}, ReLU MLP "
          f"{result.num_bits}-{'-'.join(map(str, result.widths))}-1, {result.optimizer} x {result.num_runs} runs; "
          f"P_B(f|S) by nested sampling ({result.num_live} live points); natural logs ± se")
    for index, training_set in enumerate(result.training_sets):
        low, high = training_set.pearson_interval
        print(f"set {index}: converged {training_set.converged}/{result.num_runs}, {training_set.num_distinct} distinct "
              f"f; log P(S) = {training_set.log_p_train:.2f} ± {training_set.log_p_train_std_error:.2f}; "
              f"r(log P_SGD, log P_B) = {training_set.pearson:.3f} [{low:.3f}, {high:.3f}]")
        for row in training_set.functions:
            print(f"  {row.test_pattern:18s} log P_SGD {row.log_p_sgd:7.2f} ± {row.log_p_sgd_std_error:.2f}   "
                  f"log P_B {row.log_p_bayes:7.2f} ± {row.log_p_bayes_std_error:.2f}   test acc {row.test_accuracy:.2f}")


def _print_counting(result) -> None:
    print(f"y = tanh(x1) by 3 tanh units (d = 9), n = {result.num_data}; LLC at nβ = {result.nbeta:g}, "
          f"γ = {result.localization:g}; local volume from {result.num_volume_draws} draws in a Hessian-shaped box")
    print(f"{'network':8s} {'LLC ± MCSE':>16s} {'volume slope':>16s} {'theory':>22s}  log prior mass of "
          f"{{K < ε}} at ε = {result.rows[0].epsilons[-1]:.2g}")
    for row in result.rows:
        print(f"{row.name:8s} {row.llc:7.3f} ± {row.llc_std_error:.3f}  {row.volume_slope:6.2f} ± "
              f"{row.volume_slope_std_error:.2f}  {row.theory:>22s}  {row.log_prior_mass[-1]:.2f}"
              + (f"   ({'; '.join(row.llc_warnings)})" if row.llc_warnings else ""))

"""The density of states by nested sampling: log V(ε) against log ε, and λ(t) beside SGLD's llc.

Writes fig_density_of_states.png/pdf into --out. Left: log V(ε) (the expected log X at each
death of one `slt.nested_rlct` run on the population K) against log ε for a few registry models,
over every decade the run crossed, with the fitted c ε^λ (−log ε)^(m−1) (λ̂, m̂ from
`estimators.rlct_from_dead_points`; c matched on the fit window, drawn over the window). Right:
λ(t) = t E_t[K] from the same runs with its 95 % band over Skilling's log-X paths, the true λ, and
the SGLD llc at its temperature nβ from benchmarks/results/accuracy_llc.csv.
"""

import csv
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import estimators
import slt
import toy_models
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__.splitlines()[0])
MODELS = [("normal_crossing", {"powers": (1, 1)}), ("normal_crossing", {"powers": (2, 2)}),
          ("rrr", {"M": 3, "H": 2, "N": 4, "r": 0})]
if args.small:
    MODELS, settings = MODELS[:1], {"num_live": 100, "num_inner_steps": 2, "min_log_volume": 30, "min_log_loss_span": 10}
else:
    settings = {"num_live": 1000, "num_inner_steps": 5}
temperatures = np.logspace(0, 12, 49)
llc_table = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "accuracy_llc.csv"
sgld = {row["model"]: row for row in csv.DictReader(llc_table.open())} if llc_table.exists() else {}

figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
keys = jax.random.split(jax.random.key(0), len(MODELS))
for key, (family, params), colour in zip(keys, MODELS, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
    model = toy_models.get(family, **params)
    estimate = slt.nested_rlct(key, model, temperatures=temperatures, progress=False, **settings)
    run, result, curve = estimate.run, estimate.result, estimate.curve
    log_epsilon, log_volume = np.log(run.death_loss), estimators.expected_log_volume(run.num_live)
    s_lo, s_hi = result.diagnostics.window
    inside = (-log_epsilon > s_lo) & (-log_epsilon <= s_hi)
    rlct, m = result.estimate, result.multiplicity

    def law(le, rlct=rlct, m=m):  # log V up to log c
        return rlct * le + (m - 1) * np.log(-le)

    log_c = np.mean(log_volume[inside] - law(log_epsilon[inside]))
    left.plot(log_epsilon, log_volume, color=colour, lw=1.2, label=f"{model.label}: λ = {model.true_rlct}, m = {model.multiplicity}")
    fitted = np.linspace(-s_hi, -s_lo, 200)
    left.plot(fitted, log_c + law(fitted), "--", color="k", lw=0.8)
    print(f"{model.label}: nested λ̂ = {rlct:.4f} ± {result.std_error:.4f}, m̂ = {m} (P = "
          f"{np.round(result.multiplicity_probabilities, 3).tolist()}), window s in [{s_lo:.1f}, {s_hi:.1f}], "
          f"{run.death_loss.size} deaths, {run.seconds:.0f} s")
    valid = temperatures * run.death_loss[-1] < 1e-3  # t where the run was deep enough for Z(t)
    right.plot(temperatures[valid], curve.rlct[valid], color=colour, label=f"{model.label}: nested λ(t)")
    right.fill_between(temperatures[valid], *curve.rlct_band[:, valid], color=colour, alpha=0.25)
    right.axhline(float(model.true_rlct), color=colour, ls=":", lw=1)
    row = sgld.get(model.label)
    if row:
        nbeta, llc, se = float(row["nbeta"]), float(row["estimate"]), float(row["std_error"])
        right.errorbar([nbeta], [llc], [1.96 * se], fmt="s", color=colour, ms=6, capsize=3)
        at = int(np.argmin(np.abs(np.log(temperatures / nbeta))))
        print(f"  nested λ(t) at t = {temperatures[at]:.3g}: {curve.rlct[at]:.4f} "
              f"[{curve.rlct_band[0, at]:.4f}, {curve.rlct_band[1, at]:.4f}]; SGLD llc at nβ = {nbeta:g}: {llc:.4f} ± {se:.4f}")
left.set(xlabel="log ε", ylabel="log V(ε)  (expected log X at death)",
         title="log V(ε); dashes: fitted c ε^λ (−log ε)^(m−1)")
left.legend(fontsize=8)
right.set(xscale="log", xlabel="t = nβ", ylabel="λ(t) = t E_t[K]",
          title="λ(t), 95 % band; squares: SGLD llc (accuracy_llc.csv)")
right.legend(fontsize=8)
save_figure(figure, args.out, "fig_density_of_states")

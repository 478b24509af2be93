"""SGLD health checks with arviz: trace and rank plots of a healthy run and two unhealthy ones, same model.

The model is the normal crossing y = w₁w₂x + N(0, 1) (K = (w₁w₂)²/2, λ = 1/2, m = 2) at nβ = 1000, SGLD
minibatch 100, 4 chains. The traced quantity is the LLC integrand nβ (L_b(w) − L_b(w*)) per draw
(its mean is λ̂); `slt.to_datatree` turns each trace into an arviz DataTree and
`arviz_plots.combine_plots` draws the trace and rank (fractional-rank ECDF difference, with its
simultaneous envelope) panels. Rows:

- healthy: ε nβ = 0.02 (about what `slt.estimate`'s calibration picks here), long burn-in and run;
- step size far too large: ε nβ = 1. R-hat, ESS and MALA acceptance (0.98) all pass, yet λ̂ is far
  above the exact λ(nβ): acceptance is a weak proxy for SGLD's bias in low dimension;
- too short: 1000 steps, no burn-in, chains started from prior draws. R-hat and ESS fail.

Insets: each chain's running mean of the integrand against the exact λ(nβ) by quadrature (dashed).
`--small` runs tiny settings (tests).
"""

import arviz_plots
import arviz_stats
import jax
import numpy as np
import xarray

import estimators
import slt
import toy_models
from slt.plotting import figure_arguments, save_figure

args = figure_arguments(__doc__.splitlines()[0])
key_data, key_start, key_runs = jax.random.split(jax.random.key(0), 3)
model = toy_models.get("normal_crossing", powers=(1, 1))
nbeta, num_chains, batch_size = 1000.0, 4, 100
plot_draws = 200 if args.small else 1000  # draws per chain shown in every row
dense = 1 if args.small else 10  # the long runs record dense × plot_draws draws; the plots show every dense-th
long_thinning = 10
data = model.sample_data(key_data, 100_000)
posterior = slt.TemperedPosterior(model.loss, data, nbeta=nbeta, center=model.w_star, prior=model.prior)
exact = toy_models.finite_temperature_rlct(model, nbeta)

jittered = model.w_star + 0.1 / np.sqrt(nbeta) * jax.random.normal(key_start, (num_chains, model.dimension))
prior_draws = jax.vmap(model.sample_prior)(jax.random.split(key_start, num_chains))
long_draws = dense * plot_draws
RUNS = [  # (label, ε nβ, draws, burn-in steps, thinning, starts)
    ("healthy", 0.02, long_draws, long_draws * long_thinning // 4, long_thinning, jittered),
    ("step size far too large", 1.0, long_draws, long_draws * long_thinning // 4, long_thinning, jittered),
    ("too short, no burn-in", 0.02, plot_draws, 0, 1, prior_draws),
]

integrands, full_integrands, titles = {}, {}, {}
strides = {}
for (label, scaled_step, num_draws, num_burnin, thinning, starts), key in zip(RUNS, jax.random.split(key_runs, len(RUNS))):
    sampler = slt.make_sampler("sgld", posterior, step_size=scaled_step / nbeta, batch_size=batch_size)
    trace = slt.sample(sampler, starts, key, num_chains=num_chains, num_steps=num_burnin + num_draws * thinning,
                       num_burnin=num_burnin, thinning=thinning, initial_position_per_chain=True)
    tree = slt.to_datatree(trace)
    integrand = nbeta * (tree["posterior"]["loss"] - tree["sample_stats"]["loss_at_center"])
    tree["posterior"]["llc_integrand"] = integrand
    rhat = float(arviz_stats.rhat(tree, var_names=["llc_integrand"])["llc_integrand"])
    ess_bulk = float(arviz_stats.ess(tree, var_names=["llc_integrand"], method="bulk")["llc_integrand"])
    ess_tail = float(arviz_stats.ess(tree, var_names=["llc_integrand"], method="tail")["llc_integrand"])
    acceptance = float(tree["sample_stats"]["mala_acceptance"].mean())
    result = estimators.llc(trace.loss, trace.loss_at_center, nbeta)
    verdict = "UNRELIABLE" if result.unreliable else "passes its checks"
    titles[label] = (f"{label} (ε nβ = {scaled_step:g}): λ̂ = {result.mean:.3f} ± {result.std_error:.3f} "
                     f"vs exact λ(nβ) = {exact:.3f}\nR-hat {rhat:.3f}, ESS bulk {ess_bulk:.0f} / tail {ess_tail:.0f}, "
                     f"MALA acceptance {acceptance:.3f}: {verdict}")
    full_integrands[label] = integrand.values
    strides[label] = num_draws // plot_draws
    shown = integrand.isel(draw=slice(None, None, strides[label]))
    integrands[label] = shown.assign_coords(draw=np.arange(plot_draws))
    print(titles[label].replace("\n", "; "), "|", "; ".join(result.diagnostics.reasons) or "no reasons", flush=True)

combined = xarray.Dataset({"llc_integrand": xarray.concat(list(integrands.values()), dim="run")})
combined = combined.assign_coords(run=list(integrands))
plots = arviz_plots.combine_plots(
    xarray.DataTree.from_dict({"posterior": combined}),
    [(arviz_plots.plot_trace, {"visuals": {"title": False}}), (arviz_plots.plot_rank, {"visuals": {"title": False}})],
    var_names=["llc_integrand"],
    backend="matplotlib",
    figure_kwargs={"figsize": (13, 12.5), "width_ratios": [1.6, 1]},
)
axes = plots.viz["plot"]["llc_integrand"]
figure = np.ravel(plots.viz["figure"].values)[0] if hasattr(plots.viz["figure"], "values") else plots.viz["figure"]
for label in integrands:
    trace_axes, rank_axes = (axes.sel(run=label, column=column).item() for column in axes["column"].values)
    values = integrands[label].values
    full = full_integrands[label]
    running_mean = np.cumsum(full, axis=1) / np.arange(1, full.shape[1] + 1)  # over every recorded draw
    draws = np.arange(full.shape[1]) / strides[label]  # in the units of the draws shown
    for line in trace_axes.get_lines():
        line.set_alpha(0.45)
        line.set_linewidth(0.8)
    low, high = np.quantile(values, [0.01, 0.99])
    trace_axes.set_ylim(low, high)
    trace_axes.set_ylabel("nβ (L_b(w) − L_b(w*))")
    total = strides[label] * plot_draws
    trace_axes.set_xlabel(f"draw (every {strides[label]}th of {total:,} shown)" if strides[label] > 1 else "draw")
    trace_axes.set_title(titles[label], fontsize=9, loc="left")
    inset = trace_axes.inset_axes([0.6, 0.5, 0.38, 0.36])
    for chain, chain_mean in enumerate(running_mean):
        inset.plot(draws, chain_mean, color=f"C{chain}", linewidth=1.5)
    inset.axhline(exact, color="black", linestyle="--", linewidth=1.2)
    if running_mean[:, full.shape[1] // 10:].max() > 20 * exact:  # a long initial transient: log scale
        inset.set_yscale("symlog", linthresh=1.0)
        inset.set_ylim(bottom=0)
    else:
        inset.set_ylim(0, max(2.5 * exact, 1.2 * running_mean[:, draws.size // 10:].max()))
    inset.text(0.02, 0.96, "running mean per chain; dashed: exact λ(nβ)", transform=inset.transAxes, fontsize=7,
               va="top", bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    inset.tick_params(labelsize=7)
    inset.set_facecolor("white")
    for text in list(rank_axes.texts):  # arviz's p-value labels land in the wrong rows of a combined grid
        text.remove()
    rank_axes.set_title("rank ECDF − uniform, per chain\n(black dots: outside the simultaneous envelope)",
                        fontsize=9)
figure.subplots_adjust(hspace=0.55, top=0.9)
figure.suptitle("Which SGLD runs to trust: R-hat, ESS and rank plots catch a short run, not a biased step size",
                fontsize=12)
save_figure(figure, args.out, "fig_sgld_diagnostics")

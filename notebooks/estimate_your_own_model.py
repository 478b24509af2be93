# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Estimate λ for your own JAX model
#
# The local learning coefficient (LLC) of a model at a parameter w* measures how degenerate the
# loss is around w*: near w*, the volume of {w : K(w) − K(w*) < ε} scales like ε^λ (log 1/ε)^(m−1).
# A regular model with d parameters has λ = d/2; a singular one (a neural network, a factorised
# matrix) has λ < d/2, and λ replaces d/2 in the Bayesian free energy F_n ≈ n L_n(w*) + λ log n.
#
# The estimator (Lau, Furman, Wang, Murfet & Wei 2023) samples the tempered, localised posterior
#
# $$ p(w) \propto \exp\bigl(-n\beta\, L_n(w)\bigr)\, \varphi(w), \qquad
#    \hat\lambda(n\beta) = n\beta\,\bigl(\mathbb{E}_p[L_n(w)] - L_n(w^*)\bigr), $$
#
# with stochastic-gradient Langevin dynamics (SGLD) on minibatches b,
#
# $$ w \leftarrow w + \varepsilon\, \nabla \log \hat p(w) + \sqrt{2\varepsilon}\,\xi,\qquad
#    \nabla\log\hat p(w) = -n\beta\,\nabla L_b(w) + \nabla\log\varphi(w), $$
#
# (the workbench's one step-size convention; devinterp's `lr` is 2ε). The estimate is the mean of
# the per-draw integrand nβ (L_b(w) − L_b(w*)), taken on the same minibatch so that the batch
# noise of L_b(w*) cancels. At finite nβ it estimates λ(nβ), which for singular models sits below λ.
#
# This notebook wraps a model written as a plain JAX loss of a parameter pytree, estimates its
# LLC, checks the diagnostics, and compares it with a registry model whose λ is known exactly.
# Set `SLT_NOTEBOOK_SMALL=1` for a quick run (about 30 s on a laptop CPU).

# %%
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure  # not pyplot: Jupyter draws it once, a script needs no display

import estimators
import slt
import toy_models

SMALL = os.environ.get("SLT_NOTEBOOK_SMALL", "0") == "1"
start_time = time.perf_counter()

# %% [markdown]
# ## 1. Your model: a loss of a parameter pytree
#
# Here the "user" model is a two-layer linear network y = B A x with A: 2×2, B: 2×2 (d = 8), fitted
# to data whose true map is zero. Any `loss_fn(params, batch) -> mean loss` works: an Equinox
# module, a Flax state, a dict of arrays. The loss must be the mean negative log-likelihood over
# the batch (constants do not matter: they cancel in L(w) − L(w*)). With Gaussian noise of
# variance 1 that is ½‖y − BAx‖².

# %%
input_dim, hidden_dim, output_dim, num_data = 2, 2, 2, 100_000


def loss_fn(params, batch):
    inputs, targets = batch
    predictions = inputs @ params["A"].T @ params["B"].T
    return 0.5 * jnp.mean(jnp.sum(jnp.square(targets - predictions), axis=-1))


key_inputs, key_noise, key_user, key_registry = jax.random.split(jax.random.key(0), 4)
inputs = jax.random.normal(key_inputs, (num_data, input_dim))
targets = jax.random.normal(key_noise, (num_data, output_dim))  # the true map B*A* is 0
w_star = {"A": jnp.zeros((hidden_dim, input_dim)), "B": jnp.zeros((output_dim, hidden_dim))}

user_model = toy_models.from_loss(loss_fn, (inputs, targets), w_star, name="two-layer linear net",
                                  prior=toy_models.GaussianPrior(1.0))
print(user_model, "parameters:", user_model.dimension)

# %% [markdown]
# ## 2. Sample the tempered posterior with SGLD
#
# `slt.TemperedPosterior.from_model` builds p(w) from the wrapped model (`use_prior=True` keeps the
# N(0, 1) prior, which makes the posterior proper along the flat directions of BA = 0). One driver,
# `slt.sample`, runs any kernel: a jitted `lax.scan` over steps, `vmap` over chains. Step size:
# ε nβ ≈ 0.02 is about what `slt.estimate`'s automatic calibration picks for models of this size at
# minibatch 100 (see `figures/fig_calibration_sweep.png` for how the bias grows with ε).

# %%
nbeta = 1000.0
step_size = 0.02 / nbeta
batch_size = 100
num_chains = 4
num_burnin, num_draws, thinning = (2_000, 2_000, 4) if SMALL else (10_000, 10_000, 4)


def estimate_llc(model, data, key):
    """SGLD on the tempered posterior of `model` at nβ, then the LLC with its diagnostics."""
    posterior = slt.TemperedPosterior.from_model(model, data, nbeta=nbeta, use_prior=True)
    sampler = slt.make_sampler("sgld", posterior, step_size=step_size, batch_size=batch_size)
    trace = slt.sample(sampler, model.w_star, key, num_chains=num_chains,
                       num_steps=num_burnin + num_draws * thinning, num_burnin=num_burnin, thinning=thinning)
    return trace, estimators.llc(trace.loss, trace.loss_at_center, nbeta)


user_trace, user_llc = estimate_llc(user_model, None, key_user)
print(user_llc)

# %% [markdown]
# ## 3. Diagnostics
#
# `estimators.llc` reports R-hat and bulk/tail ESS of the integrand (Vehtari et al. 2021) and the
# reasons it is unreliable, if any; the trace's own `diagnostics` add the mean MALA acceptance of the
# SGLD proposals (about 0.9 or above is healthy; a low value means ε is too large) and the fraction
# of draws whose loss sits below L(w*) beyond minibatch noise (w* is not a local minimum, or the
# chains left its basin). `slt.to_datatree` gives the same trace as an arviz DataTree.

# %%
diagnostics = user_trace.diagnostics
print(f"R-hat {user_llc.diagnostics.rhat:.4f}, ESS bulk {user_llc.diagnostics.ess_bulk:.0f}, "
      f"tail {user_llc.diagnostics.ess_tail:.0f}")
print(f"MALA acceptance {diagnostics.mala_acceptance:.3f}, "
      f"fraction of draws below L(w*) {diagnostics.fraction_below_center:.3f}")
print("sampler warnings:", diagnostics.warnings or "none")
tree = slt.to_datatree(user_trace)
print(tree["sample_stats"])

# %% [markdown]
# What to look at: the per-draw LLC integrand nβ (L_b(w) − L_b(w*)) of every chain should wander
# around one level with no drift (left), and the chains' histograms should overlap (right). A chain
# that sits apart, or a level that still climbs, is what a large R-hat is telling you.

# %%
integrand = nbeta * (np.asarray(user_trace.loss) - np.asarray(user_trace.loss_at_center))
trace_figure = Figure(figsize=(9, 3), layout="constrained")
trace_axes, histogram_axes = trace_figure.subplots(1, 2)
for chain, values in enumerate(integrand):
    trace_axes.plot(values, lw=0.4, label=f"chain {chain}")
    histogram_axes.hist(values, bins=40, histtype="step", density=True)
trace_axes.axhline(user_llc.mean, color="k", lw=1, label=f"λ̂ = {user_llc.mean:.2f}")
trace_axes.set(xlabel="draw", ylabel="nβ (L_b(w) − L_b(w*))", title="per-draw LLC integrand")
trace_axes.legend(fontsize="small", ncol=2)
histogram_axes.set(xlabel="nβ (L_b(w) − L_b(w*))", ylabel="density", title="per chain")
trace_figure

# %% [markdown]
# ## 4. Compare with a registry model of known λ
#
# The two-layer linear network with true map 0 is reduced-rank regression with M = 2 inputs, H = 2
# hidden units, N = 2 outputs and true rank r = 0, whose learning coefficient Aoyagi & Watanabe (2005)
# computed exactly: λ = 3/2, m = 1 (here d/2 = 4, so the model is far from regular). The registry
# model `rrr(M=2, H=2, N=2, r=0)` is the same model with its own data; the same estimator on it must
# agree with the user-model estimate within their Monte-Carlo errors. Both estimate λ(nβ), which for
# a singular model at nβ = 1000 may sit a little below λ = 3/2 (no quadrature for d = 8).

# %%
registry_model = toy_models.get("rrr", M=input_dim, H=hidden_dim, N=output_dim, r=0)
key_data, key_run = jax.random.split(key_registry)
registry_data = registry_model.sample_data(key_data, num_data)
registry_trace, registry_llc = estimate_llc(registry_model, registry_data, key_run)
true_rlct = toy_models.reduced_rank_rlct(input_dim, hidden_dim, output_dim, 0).rlct
assert registry_model.true_rlct == true_rlct

difference = user_llc.mean - registry_llc.mean
combined_std_error = float(np.hypot(user_llc.std_error, registry_llc.std_error))
print(f"user model:     λ̂ = {user_llc.mean:.3f} ± {user_llc.std_error:.3f}")
print(f"registry model: λ̂ = {registry_llc.mean:.3f} ± {registry_llc.std_error:.3f}   (known λ = {true_rlct}, "
      f"m = {registry_model.multiplicity})")
print(f"difference {difference:+.3f} = {difference / combined_std_error:+.2f} combined standard errors")
print(f"relative gap of the user estimate to λ: {(user_llc.mean - float(true_rlct)) / float(true_rlct):+.1%}")

comparison_figure = Figure(figsize=(5, 3), layout="constrained")
comparison_axes = comparison_figure.subplots()
comparison_axes.errorbar([0, 1], [user_llc.mean, registry_llc.mean],
                         yerr=[1.96 * user_llc.std_error, 1.96 * registry_llc.std_error], fmt="o", capsize=4)
comparison_axes.axhline(float(true_rlct), color="k", ls="--", lw=1, label=f"λ = {true_rlct} (Aoyagi–Watanabe)")
comparison_axes.set(xticks=[0, 1], xticklabels=["your loss", "registry rrr(2,2,2,0)"], xlim=(-0.5, 1.5),
                    ylabel="λ̂(nβ) ± 1.96 se", title=f"the same model twice, nβ = {nbeta:g}")
comparison_axes.legend(fontsize="small")
print(f"notebook ran in {time.perf_counter() - start_time:.1f} s")
comparison_figure

# %% [markdown]
# ## 5. One call for registry models
#
# For a registry model, `slt.estimate(model, "llc", key=...)` does all of the above and also
# calibrates ε automatically, retries with a smaller ε when a chain diverges, and reports the exact
# λ(nβ) by quadrature for d <= 2. For your own model the steps above are the recipe: choose nβ,
# choose ε so that MALA acceptance is high *and* the estimate is stable when ε halves, run several
# chains, and trust the number only when R-hat and ESS pass.

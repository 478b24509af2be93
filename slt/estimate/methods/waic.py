"""waic: WAIC per datum at β = 1 (Watanabe 2010; `estimators.waic_from_summaries`): T_n + V_n / n
from the posterior draws (thinned to at most 100 per chain) over all n data, in chunks.

Its error bar is WAIC's data-sampling standard error; the singular fluctuation ν̂ = V_n / 2 comes
with its MCSE, and n (WAIC − S_n), with S_n = L_n(w*) the empirical entropy, whose expectation is
λ + o(1) (E[WAIC] = E[G_n] + S and E[G_n] = λ / n).
"""

import jax
import jax.numpy as jnp
import numpy as np

import estimators
from slt.estimate._run_diagnostics import run_diagnostics
from slt.estimate._runs import jitter_start, sgld_run
from slt.estimate.methods._method import JobsOneByOne, MethodOutcome, global_posterior_only

WAIC_MAX_DRAWS_PER_CHAIN = 100  # draws per chain the n-sized WAIC sums run over
WAIC_CHUNK_SIZE = 20_000


def waic_summaries(model, positions, data, n: int, num_chains: int, chunk_size: int):
    """(log E_w p(X_i|w), Var_w log p(X_i|w), per-draw influence ψ_s) over data chunks of
    `chunk_size`, so that the [draws, n] array of ℓ_{s,i} is never held at once. The last chunk is
    padded to the compiled shape and its padding masked out of ψ and dropped."""

    @jax.jit
    def chunk_summaries(chunk, mask):
        values = jax.vmap(lambda w: model.pointwise_log_likelihood(w, chunk))(positions)  # [draws, chunk]
        num_draws = values.shape[0]
        log_predictive = jax.nn.logsumexp(values, axis=0) - jnp.log(num_draws)
        centred = values - values.mean(axis=0, keepdims=True)
        variance = jnp.sum(centred**2, axis=0) / (num_draws - 1)
        return log_predictive, variance, 0.5 * jnp.sum(mask[None] * (centred**2 - variance[None]), axis=1)

    log_predictive, variance, influence = [], [], 0.0
    for start in range(0, n, chunk_size):
        size = min(chunk_size, n - start)
        indices = np.minimum(np.arange(start, start + chunk_size), n - 1)
        chunk = jax.tree_util.tree_map(lambda leaf: leaf[indices], data)
        lp, v, psi = chunk_summaries(chunk, jnp.asarray(np.arange(chunk_size) < size, jnp.float32))
        log_predictive.append(np.asarray(lp, np.float64)[:size])
        variance.append(np.asarray(v, np.float64)[:size])
        influence = influence + np.asarray(psi, np.float64)
    return np.concatenate(log_predictive), np.concatenate(variance), np.reshape(influence, (num_chains, -1))


class WAIC(JobsOneByOne):
    name = "waic"

    def validate(self, settings):
        global_posterior_only(settings, "waic samples the posterior at β = 1 (nβ = n)",
                              "waic samples the global posterior (γ = 0)")

    def run(self, model, data, key, settings, context, trace_sink):
        n = settings.n
        nbeta = float(n)
        posterior = context.hooks.make_posterior(loss_fn=model.loss, data=data, nbeta=nbeta, center=model.w_star,
                                      localization=0.0, prior=model.prior)
        key_start, key_run = jax.random.split(key)
        start = jitter_start(model, key_start, settings.num_chains, nbeta)
        # At β = 1 the centre w* is not the posterior's mode (E[n(L_n − L_n(w*))] ≈ λ − χ²/2 can be near
        # 0), so the bias prediction's λ̂ is floored at 1/2, the scale of one regular direction.
        run = sgld_run(posterior, start, key_run, settings, hooks=context.hooks, trace_sink=trace_sink,
                       keep_positions=True, bias_floor=0.5)
        num_chains, num_draws = run.trace.num_chains, run.trace.num_draws
        every = max(1, num_draws // WAIC_MAX_DRAWS_PER_CHAIN)  # thin the draws the n-sized sums run over
        positions = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf[:, ::every].reshape(-1, *leaf.shape[2:])),
                                           run.trace.positions)
        log_predictive, variance, influence = waic_summaries(model, positions, data, n, num_chains, WAIC_CHUNK_SIZE)
        result = estimators.waic_from_summaries(log_predictive, variance, influence)
        diagnostics = run_diagnostics(run._replace(trace=run.trace._replace(positions=None)), result.diagnostics,
                                       treat_escape_as_reason=False)
        empirical_entropy = float(-np.mean(np.asarray(model.pointwise_log_likelihood(model.w_star, data), np.float64)))
        diagnostics.update({
            "training_loss": result.training_loss,
            "functional_variance": result.functional_variance,
            "singular_fluctuation": result.singular_fluctuation,
            "singular_fluctuation_std_error": result.singular_fluctuation_std_error,
            "empirical_entropy": empirical_entropy,
            "n_waic_minus_empirical_entropy": n * (result.mean - empirical_entropy),
            "waic_draws_used": int(influence.size),
            "std_error_kind": "data-sampling standard error of WAIC as an estimate of the generalisation loss",
        })
        return MethodOutcome(result.mean, result.std_error, nbeta, diagnostics, nbeta)

"""The volume hypothesis: guess-and-check against SGD and SGLD (Chiang et al., ICLR 2023).

Task: a 2-D "kink" classification set, x uniform on [−1, 1]², label y = +1 above the kinked
line x₂ = |x₁| − 1/2 and −1 below (balanced in expectation), a few training points and a large
test set. Model: f(w, x) = Σ_h a_h tanh(w_hᵀ x + b_h) + c, loss the squared error on the ±1
labels, L(w) = (1/2n) Σ_i (f(w, x_i) − y_i)² (Gaussian regression, so min L = 0 when d ≥ n),
prior N(0, diag(s²)) with s = σ_w/√fan_in for weights and σ_b for biases.

- Guess-and-check: draw w from the prior (vmapped, millions), accept when the training accuracy is
  100 % and L(w) < ε_accept. Its accepted set is exactly {L < ε} ∩ {train acc = 1}; every prior
  draw's L gives V(ε) = P_φ(L(w) < ε) and the slope of log V against log ε, which tends to λ as
  ε → 0 (`estimators.rlct_from_loss_samples`).
- SGD and SGLD: the same prior initialisations, trained (vmapped) until the same acceptance rule
  holds.
- Test accuracy of every accepted solution, and the LLC at a subset of each method's solutions:
  each is first polished by Gauss–Newton steps (`polish`) to the bottom of its basin (L ≈ 0), then
  λ̂ = nβ (E[L] − L(w*)) under a localised posterior, all solutions in one `slt.sample` run
  (`llc_at_solutions`).

Reference point: at an interpolating solution where the n × d Jacobian of the training outputs
has full rank n, L is regular in n directions and flat in d − n: λ = n/2 (m = 1). Solutions with
a lower λ are ones where that Jacobian is rank-deficient, which have prior measure zero among
interpolants; at a finite nβ the LLC λ̂(nβ) also drops where some of the n directions are nearly
flat (nβ h ≲ 1).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

import estimators
from slt.run import advance_progress, plan_progress
from slt.experiments._common import (
    Estimate,
    Network,
    llc_at_solutions,
    mean_estimate,
    polish,
    sample_prior,
    squared_error,
    train,
)

METHODS = ("guess_and_check", "sgd", "sgld")


def kink_data(key: PRNGKeyArray, num_data: int) -> dict[str, jax.Array]:
    """x uniform on [−1, 1]², y = +1 if x₂ > |x₁| − 1/2 else −1."""
    x = jax.random.uniform(key, (num_data, 2), minval=-1.0, maxval=1.0)
    return {"x": x, "y": jnp.where(x[:, 1] > jnp.abs(x[:, 0]) - 0.5, 1.0, -1.0)}


class MethodResult(NamedTuple):
    name: str
    num_tried: int                 # prior draws (guess-and-check) or training runs
    num_accepted: int
    test_accuracy: Estimate        # mean ± SE over accepted solutions
    test_accuracies: np.ndarray
    llc: Estimate                  # mean ± SE over the solutions measured
    llcs: np.ndarray               # NaN where polishing did not reach a minimum (L > 1e-6)
    llc_std_errors: np.ndarray     # MCSE of each λ̂
    llc_test_accuracies: np.ndarray  # test accuracy of the (unpolished) solutions whose LLC was measured
    polished_losses: np.ndarray


class VolumeHypothesisResult(NamedTuple):
    width: int
    num_train: int
    dimension: int
    epsilon_accept: float
    epsilons: np.ndarray
    volumes: np.ndarray
    volume_std_errors: np.ndarray
    volume_slope: Estimate         # slope of log V(ε) in log ε
    generic_rlct: float            # n/2
    methods: tuple[MethodResult, ...]
    llc_accuracy_correlation: float  # Pearson r of λ̂ with test accuracy, all measured solutions
    nbeta: float


def _accept_fn(network, data, epsilon_accept):
    def accept(w):
        outputs = network.apply(w, data["x"])
        return (jnp.all(jnp.sign(outputs) == data["y"])
                & (0.5 * jnp.mean(jnp.square(outputs - data["y"])) < epsilon_accept))

    return accept


def guess_and_check(key: PRNGKeyArray, network: Network, scales, data, *, num_draws: int, epsilon_accept: float,
                    max_keep: int, chunk_size: int = 1 << 18):
    """Prior draws in jitted chunks: every draw's training loss, and up to `max_keep` accepted w."""
    accept = _accept_fn(network, data, epsilon_accept)

    chunk_size = min(chunk_size, num_draws)

    @jax.jit
    def chunk(chunk_key):
        w = sample_prior(chunk_key, scales, chunk_size)
        losses = jax.vmap(lambda v: squared_error(network, v, data["x"], data["y"]))(w)
        return w, losses, jax.vmap(accept)(w)

    losses, kept = [], []
    num_chunks = -(-num_draws // chunk_size)
    for chunk_key in jax.random.split(key, num_chunks):
        w, chunk_losses, accepted = chunk(chunk_key)
        losses.append(np.asarray(chunk_losses, np.float64))
        if sum(len(k) for k in kept) < max_keep:
            kept.append(np.asarray(w)[np.asarray(accepted)])
    losses = np.concatenate(losses)[:num_draws]
    accepted = np.concatenate(kept)[:max_keep] if kept else np.zeros((0, scales.shape[0]))
    return losses, accepted


def volume_hypothesis_experiment(
    key: PRNGKeyArray,
    *,
    num_train: int = 8,
    num_test: int = 2000,
    width: int = 4,
    weight_scale: float = 3.0,
    bias_scale: float = 1.5,
    num_draws: int = 1 << 21,
    epsilon_accept: float = 0.3,
    epsilons=(0.15, 0.2, 0.3, 0.4, 0.5),
    num_runs: int = 512,
    learning_rate: float = 0.05,
    batch_size: int = 4,
    num_train_steps: int = 4000,
    sgld_temperature: float = 1e-3,
    num_llc: int = 16,
    nbeta: float = 1e4,
    localization: float = 10.0,
    num_chains: int = 4,
    num_llc_steps: int = 3000,
    max_keep: int = 4096,
) -> VolumeHypothesisResult:
    """Guess-and-check, SGD and SGLD on the kink task (module docstring). Keys: data (train,
    test), prior draws, initialisations, SGD, SGLD, LLC."""
    key_train, key_test, key_guess, key_init, key_sgd, key_sgld, key_llc = jax.random.split(key, 7)
    network = Network(2, width, "tanh", bias=True)
    scales = network.prior_scales(weight_scale, bias_scale)
    data, test = kink_data(key_train, num_train), kink_data(key_test, num_test)

    def test_accuracy(solutions):
        if len(solutions) == 0:
            return np.zeros(0)
        outputs = jax.vmap(lambda v: network.apply(v, test["x"]))(jnp.asarray(solutions))
        return np.asarray(jnp.mean(jnp.sign(outputs) == test["y"][None, :], axis=1))

    plan_progress(4, "stages")  # guess-and-check, SGD, SGLD, LLC (for an open bar: `slt experiment`)
    losses, guessed = guess_and_check(key_guess, network, scales, data, num_draws=num_draws,
                                      epsilon_accept=epsilon_accept, max_keep=max_keep)
    advance_progress(1, "stages")
    epsilons = np.asarray(epsilons, np.float64)
    volume = estimators.volume_from_losses(losses, epsilons)
    try:
        fit = estimators.rlct_from_loss_samples(losses, epsilons)
        slope = Estimate(fit.mean, fit.std_error)
    except ValueError:  # too few draws below the smallest ε
        slope = Estimate(float("nan"), float("nan"))

    initial = sample_prior(key_init, scales, num_runs)
    loss_fn = lambda w, batch: squared_error(network, w, batch["x"], batch["y"])  # noqa: E731
    accept = _accept_fn(network, data, epsilon_accept)
    runs = {"sgd": train(loss_fn, data, initial, key_sgd, optimizer="sgd", learning_rate=learning_rate,
                         num_steps=num_train_steps, batch_size=batch_size, stop_fn=accept)}
    advance_progress(1, "stages")
    runs["sgld"] = train(loss_fn, data, initial, key_sgld, optimizer="sgld", learning_rate=learning_rate,
                         num_steps=num_train_steps, batch_size=batch_size, temperature=sgld_temperature, stop_fn=accept)
    advance_progress(1, "stages")
    solutions = {"guess_and_check": guessed}
    tried = {"guess_and_check": num_draws}
    for name, run in runs.items():
        solutions[name] = run.positions[run.converged]
        tried[name] = num_runs

    # LLC at the first num_llc solutions of each method, polished to the bottom of their basins.
    chosen = {name: solutions[name][:num_llc] for name in METHODS}
    stacked = np.concatenate([chosen[name] for name in METHODS])

    def indexed_loss(w, batch, k):
        del k
        return squared_error(network, w, batch["x"], batch["y"])

    llc_values = np.zeros(0)
    llc_errors = np.zeros(0)
    polished_losses = np.zeros(0)
    if len(stacked):
        polished = polish(lambda w, batch, k: network.apply(w, batch["x"]) - batch["y"], data, stacked)
        polished_losses = np.asarray(jax.vmap(lambda v: indexed_loss(v, data, 0))(jnp.asarray(polished)))
        minima = polished_losses < 1e-6  # the LLC needs a local minimum: skip fits Gauss–Newton could not finish
        llc_values = np.full(len(stacked), np.nan)
        llc_errors = np.full(len(stacked), np.nan)
        if np.any(minima):
            llcs = llc_at_solutions(indexed_loss, data, polished[minima], key_llc, nbeta=nbeta,
                                    localization=localization, num_chains=num_chains, num_steps=num_llc_steps,
                                    num_burnin=num_llc_steps // 4)
            llc_values[minima], llc_errors[minima] = llcs.means, llcs.std_errors
    advance_progress(1, "stages")
    methods, offset = [], 0
    all_llcs, all_accuracies = [], []
    for name in METHODS:
        count = len(chosen[name])
        accuracies = test_accuracy(solutions[name])
        measured = slice(offset, offset + count)
        methods.append(MethodResult(
            name, tried[name], len(solutions[name]), mean_estimate(accuracies), accuracies,
            mean_estimate(llc_values[measured][np.isfinite(llc_values[measured])]), llc_values[measured], llc_errors[measured], accuracies[:count],
            polished_losses[measured],
        ))
        all_llcs.append(llc_values[measured])
        all_accuracies.append(accuracies[:count])
        offset += count
    all_llcs, all_accuracies = np.concatenate(all_llcs), np.concatenate(all_accuracies)
    finite = np.isfinite(all_llcs)
    all_llcs, all_accuracies = all_llcs[finite], all_accuracies[finite]
    correlation = (float(np.corrcoef(all_llcs, all_accuracies)[0, 1])
                   if all_llcs.size > 2 and np.std(all_accuracies) > 0 and np.std(all_llcs) > 0 else float("nan"))
    return VolumeHypothesisResult(width, num_train, network.dimension, epsilon_accept, epsilons, volume.volumes,
                                  volume.std_errors, slope, num_train / 2, tuple(methods), correlation, nbeta)

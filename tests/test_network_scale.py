"""Networks: what one compiled step computes, and a small deep linear network's LLC against Aoyagi's λ.

The loss-call counts are taken at trace time: the model's loss is wrapped in a Python function
that counts its calls while `jax.make_jaxpr` traces a step, so each count is the number of
forward passes (a gradient is one forward plus its backward) in the compiled step.
Planted bug, checked once: with `mala_log_acceptance` recomputing the potential at the position
(the code before `loss_at_position`), `test_sgld_step_forward_passes` fails with 4 calls instead
of 3; with `rmsprop_sgld` evaluating the loss at w* in `unrecorded_step`, the rmsprop case fails
with 2 instead of 1; likewise for `sghmc` and `sgnht`, which before their `unrecorded_step` had
only `step` (2 calls where 1 is expected).
"""

import jax
import pytest

import slt
import toy_models


def _counting_posterior(model, data, calls):
    def counted_loss(w, batch):
        calls.append(1)
        return model.loss(w, batch)

    return slt.TemperedPosterior(loss_fn=counted_loss, data=data, nbeta=1000.0, center=model.w_star,
                                 prior=model.prior)


def _forward_passes(algorithm_of, model, data, which: str) -> int:
    calls = []
    algorithm = algorithm_of(_counting_posterior(model, data, calls))
    state = algorithm.init(model.w_star)
    step = algorithm.step if which == "step" else algorithm.unrecorded_step
    jax.make_jaxpr(step)(jax.random.key(0), state)
    return len(calls)


@pytest.mark.parametrize("sampler, hyperparameters, which, expected", [
    (slt.sgld, {"mala_diagnostic": True}, "unrecorded", 1),  # the gradient only
    (slt.sgld, {"mala_diagnostic": False}, "step", 2),  # + L_b(w*) for the paired difference
    (slt.sgld, {"mala_diagnostic": True}, "step", 3),  # + the gradient at the proposal, nothing at w
    (slt.rmsprop_sgld, {}, "unrecorded", 1),
    (slt.rmsprop_sgld, {}, "step", 2),
    (slt.sghmc, {}, "unrecorded", 1),
    (slt.sghmc, {}, "step", 2),
    (slt.sgnht, {}, "unrecorded", 1),
    (slt.sgnht, {}, "step", 2),
])
def test_sgld_step_forward_passes(sampler, hyperparameters, which, expected):
    model = toy_models.get("dln", widths=(4, 3, 5), r=1)
    data = model.sample_data(jax.random.key(1), 200)
    passes = _forward_passes(lambda posterior: sampler(posterior, 1e-5, 50, **hyperparameters), model, data, which)
    assert passes == expected


def test_small_dln_recovers_aoyagi_lambda_within_its_interval():
    """dln(3, 2, 2, 3), r = 1: λ = 3, m = 1 (no (m − 1)/log t term at nβ = 1000). The library's
    defaults for the run length (4 chains × 4000 draws, thinning 10) on a minibatch of 100; the
    reported interval λ̂ ± (1.96 se + predicted SGLD bias) must hold λ. Shorter runs read low
    (1000 draws: 2.37, 2.61, 2.59 on seeds 0–2, intervals missing 3), the failure this guards."""
    model = toy_models.get("dln", widths=(3, 2, 2, 3), r=1)
    assert model.true_rlct == 3 and model.multiplicity == 1
    result = slt.estimate(model, key=jax.random.key(0), n=100_000, batch_size=100)
    low, high = result.interval
    assert low <= float(model.true_rlct) <= high, result.summary()
    assert not result.unreliable, result.summary()

"""Seed experiments against exact values (planted-bug suite, tests/mutants.toml:
llc-at-solutions-localization)."""

import jax
import jax.numpy as jnp
import numpy as np

from slt import experiments


def test_llc_at_solutions_with_strong_localization_matches_the_exact_gaussian_value():
    """L_k = ½ Σ_j h_kj w_j² with a flat prior and γ comparable to nβ h: the localised posterior is
    N(0, diag(1/(nβ h_j + γ))), so λ̂ = nβ E[L] = ½ Σ_j nβ h_j / (nβ h_j + γ) exactly (1.0 and 0.79
    for the two solutions here, against the unlocalised 3/2). Tolerance: 4 MCSE plus the SGLD
    step-size bias bound ε/2 = 1 % of λ̂ (the Gaussian variance inflation 1/(1 − ε c/2) at the
    largest curvature c = 1 of the sampling coordinates). γ applied as nβ γ gives λ̂ ≈ 0.
    16 chains × 600 draws: MCSE ≈ 2.5–3 % of λ̂. Observed z on the unmutated code (solution 0, 1),
    keys 0–3: (0.20, −0.14), (−1.88, 0.05), (−0.39, 0.18), (2.73, 0.55); key 2 is used.
    """
    nbeta, localization, step_size = 1e4, 1e4, 0.02
    curvatures = jnp.asarray([[1.0, 2.0, 5.0], [0.5, 1.0, 2.0]])

    def loss(w, data, k):
        return 0.5 * jnp.sum(curvatures[k] * jnp.square(w - data["shift"][0]))

    data = {"shift": jnp.zeros((1, 3))}
    result = experiments.llc_at_solutions(loss, data, jnp.zeros((2, 3)), jax.random.key(2), nbeta=nbeta,
                                          localization=localization, step_size=step_size, num_chains=16,
                                          num_steps=3000, num_burnin=500)
    scaled = nbeta * np.asarray(curvatures, np.float64)
    exact = 0.5 * np.sum(scaled / (scaled + localization), axis=1)
    tolerance = 4 * result.std_errors + 0.5 * step_size * exact
    assert np.all(np.abs(result.means - exact) < tolerance), (result.means, result.std_errors, exact)
    assert np.all(tolerance < 0.2 * exact)  # tight enough to tell γ from nβγ (λ̂ ≈ 0) or from γ = 0 (+50 %)

"""The heavy-tailed-gradient screen of `slt.estimate` (`MAX_GRADIENT_SHARE`), measured.

    .venv/bin/python benchmarks/heavy_tail_screen.py

For a model whose prior gradient is unbounded (w1²w2² with prior |w1 w2|: E|∇log φ|² infinite)
and two light-tailed ones, runs `slt.estimate(..., "llc")` over a few seeds and prints the
screen's statistic max|ĝ|² / Σ|ĝ|² from SGLD's recorded `grad_squared_norm`: over every recorded
draw (what the screen uses) and over 512 evenly spaced draws (its first version). The numbers
quoted beside `MAX_GRADIENT_SHARE` in `slt/estimate/` come from this script.
"""

import jax
import numpy as np

import toy_models
from slt.estimate import MAX_GRADIENT_SHARE, estimate

CASES = (
    ("w1²w2², prior |w1 w2|", toy_models.get("normal_crossing", powers=(1, 1), prior_powers=(1, 1)), {}, (0, 1, 2)),
    ("w1²w2⁴ at nβ = 100", toy_models.get("normal_crossing", powers=(1, 2)),
     dict(n=100_000, nbeta=100.0, num_chains=4, num_draws=2000), (11, 0, 1, 2, 3)),
    ("regular(d=2)", toy_models.get("regular", d=2), {}, (0, 1)),
)


def shares(trace) -> tuple[float, float, int]:
    squared = np.asarray(trace.info["grad_squared_norm"], np.float64).ravel()
    subsample = squared[np.linspace(0, squared.size - 1, min(squared.size, 512)).astype(int)]
    return squared.max() / squared.sum(), subsample.max() / subsample.sum(), squared.size


def main() -> None:
    print(f"threshold MAX_GRADIENT_SHARE = {MAX_GRADIENT_SHARE}")
    for label, model, settings, seeds in CASES:
        for seed in seeds:
            result = estimate(model, "llc", key=jax.random.key(seed), exact=False, keep_traces=True, **settings)
            every, subsample, num_draws = shares(result.traces[0][1])
            print(f"{label:24s} seed {seed:2d}: share over all {num_draws} draws {every:.3f}, "
                  f"over 512 of them {subsample:.3f}; flagged: {every > MAX_GRADIENT_SHARE}")


if __name__ == "__main__":
    main()

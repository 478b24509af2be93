"""Wall time of one `slt.estimate` call, cold (compiling) and warm (the next seed, same shapes).

    .venv/bin/python benchmarks/estimate_speed.py          # normal crossing w1²w2⁴, llc, n = 10⁶

The first call compiles the samplers and the calibration pilots; the second, with a new seed
(new data set, same shapes), reuses every executable (the posterior and the step size are
traced arguments). Printed: both times and both estimates. The persistent compilation cache
is not used (this script does not turn it on), so the first call is always cold.
"""

import time

import jax

import toy_models
from slt.estimate import estimate


def main() -> None:
    model = toy_models.get("normal_crossing", powers=(1, 2))
    for seed, label in ((0, "cold (compiles)"), (1, "warm (next seed)")):
        start = time.perf_counter()
        result = estimate(model, "llc", key=jax.random.key(seed))
        print(f"{label:18s} {time.perf_counter() - start:6.2f} s   λ̂ = {result.estimate:.6f} ± {result.std_error:.3f}")


if __name__ == "__main__":
    main()

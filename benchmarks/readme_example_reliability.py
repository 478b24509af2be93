"""How often the README's first example comes out reliable: `slt.estimate` on normal_crossing
powers=(1, 2) (λ = 1/4, exact λ(1000) = 0.220), llc, at seeds 0-9, under the default settings or
the overrides given as JSON. Appends one JSON line per seed to the output file.

    python benchmarks/readme_example_reliability.py default '{}' --out benchmarks/results/readme_example_reliability.jsonl
    python benchmarks/readme_example_reliability.py thinning40 '{"thinning": 40}' --out ...
    python benchmarks/readme_example_reliability.py chains8 '{"num_chains": 8}' --out ...

`slt estimate normal_crossing --set powers=1,2 --json --seed S` is the same call with the defaults.
"""

import argparse
import json

import slt
import toy_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a label for the settings")
    parser.add_argument("settings", help="slt.estimate overrides as a JSON object, e.g. '{\"thinning\": 40}'")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    model = toy_models.get("normal_crossing", powers=(1, 2))
    with open(args.out, "a", encoding="utf-8") as out:
        for seed in range(args.seeds):
            result = slt.estimate(model, "llc", key=slt.prng_key(seed), **json.loads(args.settings))
            diagnostics = result.diagnostics
            row = {"settings": args.name, "seed": seed, "estimate": result.estimate, "std_error": result.std_error,
                   "reliable": not result.unreliable, "rhat": diagnostics["rhat"], "ess_bulk": diagnostics["ess_bulk"],
                   "reasons": diagnostics["reasons"], "step_size": diagnostics["step_size"],
                   "langevin_time": diagnostics["langevin_time"],
                   "refinements": [r["step_size"] for r in diagnostics["step_size_refinements"]],
                   "refinement_shares": [r["largest_gradient_share"] for r in diagnostics["step_size_refinements"]],
                   "largest_gradient_share": diagnostics["largest_gradient_share"], "num_steps": diagnostics["num_steps"],
                   "exact_at_nbeta": diagnostics["exact_at_nbeta"], "interval": list(result.interval),
                   "per_chain": [float(v) for v in diagnostics["per_chain"]], "seconds": result.seconds}
            out.write(json.dumps(row) + "\n")
            out.flush()


if __name__ == "__main__":
    main()

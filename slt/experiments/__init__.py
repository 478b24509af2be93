"""The seed discussion's experiments (`slt experiment NAME`).

- `volume_hypothesis_experiment`: guess-and-check vs SGD and SGLD on a 2-D kink task
  (Chiang et al., ICLR 2023): test accuracy, the LLC at the solutions each finds, and V(ε).
- `bayesian_sampler_experiment`: P_SGD(f|S) vs P_B(f|S) on Boolean functions (Mingard et al.,
  JMLR 2021), with SGD, momentum and Adam, and the LLC of the most probable functions.
- `bayesian_sampler_nested_experiment`: the same question at Mingard's 7-bit scale, P_B(f|S) by
  nested sampling of the prior mass of each function (`slt.nested.region_log_volume`).
- `counting_experiment`: a network that computes the answer directly vs one with an extra,
  cancelled computation: LLC and local volume.

`SMALL_SETTINGS` holds the tiny settings `--small` uses (tests, figures).
"""

from slt.experiments._bayesian_sampler import (
    BayesianSamplerResult,
    FunctionRow,
    bayesian_sampler_experiment,
    boolean_inputs,
    function_codes,
    target_function,
)
from slt.experiments._bayesian_sampler_nested import (
    MultilayerNetwork,
    NestedBayesianSamplerResult,
    NestedFunctionRow,
    TrainingSetResult,
    bayesian_sampler_nested_experiment,
    bootstrap_pearson,
)
from slt.experiments._common import BatchedLLC, Estimate, Network, llc_at_solutions, polish, train
from slt.experiments._counting import CountingResult, CountingRow, construct_networks, counting_experiment
from slt.experiments._volume_hypothesis import (
    MethodResult,
    VolumeHypothesisResult,
    kink_data,
    volume_hypothesis_experiment,
)

SMALL_SETTINGS = {
    "volume": dict(num_draws=1 << 16, num_runs=64, num_llc=4, num_llc_steps=600, num_train_steps=1000),
    "bayesian-sampler": dict(num_prior_draws=1 << 16, num_runs=256, num_steps=1000, num_llc_functions=3,
                             num_llc_steps=600),
    "counting": dict(num_volume_draws=1 << 16, num_chains=4, num_steps=1500, num_burnin=500),
    "bayesian-sampler-nested": dict(num_bits=3, num_train=4, widths=(6,), num_training_sets=1, num_runs=128,
                                    num_steps=100, num_functions=3, num_live=40, num_ess_steps=10, num_repeats=2),
}

EXPERIMENTS = {
    "volume": volume_hypothesis_experiment,
    "bayesian-sampler": bayesian_sampler_experiment,
    "bayesian-sampler-nested": bayesian_sampler_nested_experiment,
    "counting": counting_experiment,
}

__all__ = [
    "boolean_inputs",
    "function_codes",
    "target_function",
    "MultilayerNetwork",
    "NestedBayesianSamplerResult",
    "NestedFunctionRow",
    "TrainingSetResult",
    "bayesian_sampler_nested_experiment",
    "bootstrap_pearson",
    "EXPERIMENTS",
    "SMALL_SETTINGS",
    "BatchedLLC",
    "BayesianSamplerResult",
    "CountingResult",
    "CountingRow",
    "Estimate",
    "FunctionRow",
    "MethodResult",
    "Network",
    "VolumeHypothesisResult",
    "bayesian_sampler_experiment",
    "construct_networks",
    "counting_experiment",
    "kink_data",
    "llc_at_solutions",
    "polish",
    "train",
    "volume_hypothesis_experiment",
]

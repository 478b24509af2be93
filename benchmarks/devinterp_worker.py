"""devinterp side of `benchmarks/devinterp_compare.py`; runs in benchmarks/.devinterp-venv.

    benchmarks/.devinterp-venv/bin/python benchmarks/devinterp_worker.py < spec.json

Reads one JSON object on stdin and writes one JSON object as the last line of stdout. Imports
only numpy, torch and devinterp (never the workbench or JAX).

Spec fields
-----------
data : path of an .npz with `inputs` [n, input_dim], `targets` [n, output_dim] and the true
    parameters `w_star_0`, `w_star_1`, ... (float32).
model : "monomial" (y = x Π_j w_j^{k_j}, w = `w_star_0`, `powers`) or "linear_chain"
    (y = W_L ⋯ W_1 x with W_l = `w_star_{l-1}`).
powers : the exponents k_j of a monomial.
nbeta, lr, weight_decay, localization : devinterp SGLD's nβ, learning rate ε', weight decay
    (a Gaussian prior N(0, 1/weight_decay)) and localisation γ. devinterp's update is
    w ← w − (ε'/2)(nβ ∇L_b + weight_decay·w + γ(w − w_0)) + N(0, ε').
batch_size, num_chains, num_draws, num_burnin, seed, threads (torch.set_num_threads; 0 keeps
    torch's default).

The loss handed to devinterp is the workbench's up to a constant: the Gaussian negative
log-likelihood with σ = 1, L_b(w) = (1/|b|) Σ_i ||y_i − f(w, x_i)||² / 2, so both tools sample
the same tempered posterior exp(−nβ L_n(w)) φ(w).

Result fields: llc_mean, llc_std (devinterp's std of the per-chain LLCs), llc_std_error
(llc_std / √chains), llc_per_chain, init_loss (devinterp's L(w*): the mean over num_chains
loader batches, shared by every chain), full_data_loss_at_w_star (L_n(w*), for comparison),
seconds (init loss plus the `estimate_learning_coeff_with_summary` call: no imports, no data
loading), versions.
"""

import json
import math
import platform
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Monomial(nn.Module):
    """y = x Π_j w_j^{k_j} (the normal crossing)."""

    def __init__(self, w_star: np.ndarray, powers):
        super().__init__()
        self.weights = nn.Parameter(torch.tensor(w_star, dtype=torch.float32))
        self.register_buffer("powers", torch.tensor(powers, dtype=torch.float32))

    def forward(self, inputs):
        return inputs * torch.prod(self.weights**self.powers)


class LinearChain(nn.Module):
    """y = W_L ⋯ W_1 x (reduced-rank regression for L = 2, a deep linear network otherwise)."""

    def __init__(self, matrices):
        super().__init__()
        self.matrices = nn.ParameterList([nn.Parameter(torch.tensor(m, dtype=torch.float32)) for m in matrices])

    def forward(self, inputs):
        hidden = inputs
        for matrix in self.matrices:
            hidden = hidden @ matrix.T
        return hidden


def gaussian_nll(model, batch):
    """Mean over the batch of ||y − f(w, x)||² / 2: the Gaussian NLL (σ = 1) without its constant."""
    inputs, targets = batch
    predictions = model(inputs)
    return 0.5 * torch.sum((predictions - targets) ** 2, dim=1).mean(), {"output": predictions}


def build_model(spec, arrays):
    parameters = [arrays[f"w_star_{i}"] for i in range(sum(k.startswith("w_star_") for k in arrays.files))]
    if spec["model"] == "monomial":
        return Monomial(parameters[0], spec["powers"])
    if spec["model"] == "linear_chain":
        return LinearChain(parameters)
    raise ValueError(f"unknown model kind {spec['model']!r}")


def versions():
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "devinterp": version("devinterp"),
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def run(spec):
    # devinterp 1.3.2's estimate_learning_coeff_with_summary lives in devinterp.slt.sampler
    # (2.x reorganised the package; see the compare script's Limitations).
    from devinterp.optim.sgld import SGLD
    from devinterp.slt.sampler import estimate_learning_coeff_with_summary
    from devinterp.utils import get_init_loss_multi_batch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    arrays = np.load(spec["data"])
    inputs = torch.tensor(arrays["inputs"], dtype=torch.float32)
    targets = torch.tensor(arrays["targets"], dtype=torch.float32)
    model = build_model(spec, arrays)
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=int(spec["batch_size"]), shuffle=True)
    optimizer_kwargs = dict(
        lr=float(spec["lr"]),
        nbeta=float(spec["nbeta"]),
        weight_decay=float(spec.get("weight_decay", 0.0)),
        localization=float(spec.get("localization", 0.0)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SGLD's deprecation notice and the seeding/burn-in advice
        start = time.perf_counter()
        # What estimate_learning_coeff_with_summary does itself when init_loss is None (and what
        # devinterp's own tests write out): L(w*) averaged over num_chains loader batches. Done here,
        # inside the timed region, so that its value can be reported.
        torch.manual_seed(int(spec["seed"]))
        init_loss = get_init_loss_multi_batch(loader, int(spec["num_chains"]), model, gaussian_nll, "cpu")
        results = estimate_learning_coeff_with_summary(
            model,
            init_loss=init_loss,
            loader=loader,
            evaluate=gaussian_nll,
            sampling_method=SGLD,
            optimizer_kwargs=optimizer_kwargs,
            num_chains=int(spec["num_chains"]),
            num_draws=int(spec["num_draws"]),
            num_burnin_steps=int(spec["num_burnin"]),
            num_steps_bw_draws=1,
            seed=int(spec["seed"]),
            device="cpu",
            verbose=False,
        )
        seconds = time.perf_counter() - start
    with torch.no_grad():
        full_data_loss = float(gaussian_nll(build_model(spec, arrays), (inputs, targets))[0])
    per_chain = [float(results[f"llc-chain/{c}"]) for c in range(int(spec["num_chains"]))]
    std = float(results["llc/std"])
    return {
        "llc_mean": float(results["llc/mean"]),
        "llc_std": std,
        "llc_std_error": std / math.sqrt(len(per_chain)) if len(per_chain) > 1 else float("nan"),
        "llc_per_chain": per_chain,
        "seconds": seconds,
        "init_loss": float(init_loss),
        "full_data_loss_at_w_star": full_data_loss,
        "versions": versions(),
    }


def main():
    spec = json.loads(sys.stdin.read())
    if spec.get("versions_only"):
        result = {"versions": versions()}
    else:
        result = run(spec)
    sys.stdout.write("\n" + json.dumps(result, allow_nan=True) + "\n")


if __name__ == "__main__":
    main()

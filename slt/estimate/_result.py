"""`EstimateResult`: one estimate, its error bar, its diagnostics, and its JSON form."""

from collections.abc import Mapping
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

INTERVAL_Z = 1.96  # the reported interval is estimate ± (1.96 standard errors + systematic_error)

INTERVAL_NOTE = (
    "estimate ± (1.96 std_error + systematic_error) covers Monte-Carlo error and the predicted SGLD "
    "step-size/minibatch bias ε E|ĝ|²/4 (systematic_error: llc, wbic (× log n), and rlct through its fit; "
    "0 for ti and waic) at the stated nbeta only: not the finite-temperature bias λ − λ(nβ) (see exact_at_nbeta), nor the data-set "
    "fluctuation at the true w* (≈ −β·d/2 for regular models, relative ~√β for singular ones)"
)


class EstimateResult(NamedTuple):
    """One estimate with everything needed to judge it.

    Attributes
    ----------
    model, params : the registry label (`family(k=v, ...)`) and the family parameters.
    method : the method's name (`slt.estimate.METHODS`).
    estimate for nested : λ itself (t → ∞, nbeta = inf); diagnostics `multiplicity_estimate` (m̂, None
        when P(m̂) < 0.9, also a top-level JSON key, null for the other methods) and `lambda_t` (the
        λ(t) curve with its 95 % band, also a top-level JSON key).
    estimate, std_error : λ̂ (llc, rlct), WBIC (wbic), F_n (ti) or WAIC (waic), and its standard error.
    systematic_error : llc: the SGLD step-size/minibatch bias predicted on the run's own draws,
        ε E|ĝ|²/4 (`slt.estimate.absolute_step_size_bias`), in the units of `estimate`; wbic: log n
        times that of the run at β* (diagnostics `implied_rlct_systematic_error` is the implied λ's);
        rlct: those of its temperatures carried through the fit (`slt.estimate.methods.fit_systematic_error`); 0 for ti
        and waic. `interval` is estimate ± (1.96 std_error + systematic_error): the bias is a
        first-order prediction whose sign is only known for a Gaussian posterior (upward), so it
        widens both sides.
    true_rlct, multiplicity : the registry's exact λ and m (None where unknown).
    n, nbeta : data size and the inverse temperature t = nβ (for rlct: the largest t of the sweep).
    diagnostics : JSON-ready mapping (reliable, reasons, warnings, R-hat, ESS, MALA acceptance,
        step size, nβ, γ, exact_at_nbeta, ...).
    seconds : wall-clock time of the whole call (compilation included).
    traces : with `estimate(..., keep_traces=True)`, every main SGLD run's `slt.Trace` (losses,
        per-step info, diagnostics; no positions), labelled by its nβ; empty otherwise.
    """

    model: str
    params: Mapping[str, Any]
    method: str
    estimate: float
    std_error: float
    true_rlct: Fraction | None
    multiplicity: int | None
    n: int
    nbeta: float
    diagnostics: Mapping[str, Any]
    seconds: float
    traces: tuple = ()  # with keep_traces=True: (label, slt.Trace) per SGLD run, e.g. ("nbeta=1000", trace)
    systematic_error: float = 0.0

    @property
    def unreliable(self) -> bool:
        return bool(self.diagnostics["reasons"])

    @property
    def interval(self) -> tuple[float, float]:
        half_width = INTERVAL_Z * self.std_error + self.systematic_error
        return (self.estimate - half_width, self.estimate + half_width)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (λ as a float; its exact fraction as `true_rlct_fraction`)."""
        return {
            "model": self.model,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
            "method": self.method,
            "estimate": _finite_or_none(self.estimate),
            "std_error": _finite_or_none(self.std_error),
            "systematic_error": _finite_or_none(self.systematic_error),
            "interval": [_finite_or_none(v) for v in self.interval],
            "true_rlct": None if self.true_rlct is None else float(self.true_rlct),
            "true_rlct_fraction": None if self.true_rlct is None else str(self.true_rlct),
            "multiplicity": self.multiplicity,
            "n": self.n,
            "nbeta": _finite_or_none(self.nbeta),
            "multiplicity_estimate": self.diagnostics.get("multiplicity_estimate"),
            **({"lambda_t": _jsonable(self.diagnostics["lambda_t"])} if "lambda_t" in self.diagnostics else {}),
            "reliable": not self.unreliable,
            "diagnostics": _jsonable(dict(self.diagnostics)),
            "seconds": self.seconds,
        }

    def summary(self) -> str:
        name = {"wbic": "WBIC", "waic": "WAIC", "ti": "F_n"}.get(self.method, "λ̂")
        systematic = f" ± {self.systematic_error:.2g} (SGLD bias)" if self.systematic_error else ""
        text = (f"{self.model} [{self.method}] {name} = {self.estimate:.5g} ± {self.std_error:.2g}{systematic} "
                f"(n = {self.n}, nβ = {self.nbeta:.4g})")
        if "multiplicity_estimate" in self.diagnostics:
            text += f", m̂ = {self.diagnostics['multiplicity_estimate']}"
        if self.true_rlct is not None:
            text += f"; true λ = {self.true_rlct} ({float(self.true_rlct):.4g}), m = {self.multiplicity}"
        exact = self.diagnostics.get("exact_at_nbeta")
        if exact is not None:
            text += f"; exact λ(nβ) = {exact:.4g}"
        if self.unreliable:
            text = "UNRELIABLE " + text + "\n" + "\n".join(f"  reason: {r}" for r in self.diagnostics["reasons"])
        return text

    def __str__(self) -> str:
        return self.summary()


def _finite_or_none(value):
    return float(value) if value is not None and np.isfinite(value) else None


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.floating, float)):
        return _finite_or_none(float(value))
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value

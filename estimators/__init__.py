"""Estimators: pure functions from sampler traces to numbers with standard errors and diagnostics.

A trace is an array shaped [chains, draws]. Every result is a small NamedTuple with a standard
error and `diagnostics` (R-hat, ESS, warnings and the `reasons` it is unreliable); `unreliable`
is True and `summary()` / `str()` begin with "UNRELIABLE" when a check failed.

- `llc`: local learning coefficient λ̂ = nβ (E_β[L_n] − L_n(w*)) (Lau et al. 2023).
- `wbic`: E_{β*}[n L_n] at β* = 1/log n (Watanabe 2013).
- `rlct_from_temperatures`, `rlct_from_reweighting`, `reweighted_mean`, `rlct_from_variance`:
  global λ from several temperatures, one chain reweighted, or β² Var_β[n L_n].
- `fit_rlct_multiplicity`: λ and m from LLCs at several nβ, λ̂(t) = λ − (m−1)/log t.
- `free_energy_ti`, `temperature_ladder`, `rlct_from_free_energies`: thermodynamic integration
  and the slope of F_n in log n (with the −(m−1) log log n term).
- `waic`: WAIC, training loss and the singular fluctuation ν̂ = V_n/2 (Watanabe 2010);
  `waic_from_summaries` for data too large for the [draws, n] array.
- `rlct_from_dead_points`, `lambda_curve`: λ, m (with P(m)), F(t) and λ(t) from the dead points
  of a nested-sampling run (`slt.nested_sampling`), the density of states V(ε) itself.
- `volume_from_losses`, `rlct_from_volume`, `rlct_from_loss_samples`: λ (and m) from the volume
  scaling V(ε) ≈ c ε^λ (−log ε)^(m−1).
"""

from estimators._dead_points import expected_log_volume, fit_window, gap_dispersion, loss_floor_start
from estimators._density_of_states import DensityOfStatesDiagnostics, DensityOfStatesResult, rlct_from_dead_points
from estimators._diagnostics import Diagnostics
from estimators._fit import RLCTResult
from estimators._free_energy import FreeEnergyResult, free_energy_ti, rlct_from_free_energies, temperature_ladder
from estimators._lambda_curve import LambdaCurve, lambda_curve
from estimators._llc import LLCResult, WBICResult, llc, wbic
from estimators._multiplicity import MultiplicityFit, fit_rlct_multiplicity
from estimators._temperature import (
    ReweightedMean,
    reweighted_mean,
    rlct_from_reweighting,
    rlct_from_temperatures,
    rlct_from_variance,
)
from estimators._volume import VolumeEstimate, rlct_from_loss_samples, rlct_from_volume, volume_from_losses
from estimators._waic import WAICResult, waic, waic_from_summaries

__all__ = [
    "DensityOfStatesDiagnostics",
    "DensityOfStatesResult",
    "LambdaCurve",
    "expected_log_volume",
    "fit_window",
    "gap_dispersion",
    "loss_floor_start",
    "lambda_curve",
    "rlct_from_dead_points",
    "Diagnostics",
    "FreeEnergyResult",
    "LLCResult",
    "MultiplicityFit",
    "RLCTResult",
    "ReweightedMean",
    "VolumeEstimate",
    "WAICResult",
    "WBICResult",
    "fit_rlct_multiplicity",
    "free_energy_ti",
    "llc",
    "reweighted_mean",
    "rlct_from_free_energies",
    "rlct_from_loss_samples",
    "rlct_from_reweighting",
    "rlct_from_temperatures",
    "rlct_from_variance",
    "rlct_from_volume",
    "temperature_ladder",
    "volume_from_losses",
    "waic",
    "waic_from_summaries",
    "wbic",
]

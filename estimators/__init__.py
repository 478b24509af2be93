"""Estimators: pure functions from sampler traces to numbers with standard errors and diagnostics.

Local learning coefficient, WBIC, RLCT from several temperatures, thermodynamic integration,
WAIC and singular fluctuation, volume scaling. (Built on the samplers in `slt`.)
"""

__all__: list[str] = []

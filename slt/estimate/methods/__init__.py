"""The estimate methods, one module each, registered in one table (`METHODS`).

A new method is one more module with a class implementing `Method` (name, validate, run_jobs,
exact; `JobsOneByOne` supplies run_jobs from a one-job `run`) and one more entry below.
"""

from slt.estimate.methods._method import JobsOneByOne, Method, MethodContext, MethodOutcome, global_posterior_only
from slt.estimate.methods.llc import LLC, llc_at_temperatures
from slt.estimate.methods.nested import Nested
from slt.estimate.methods.rlct import RLCT, fit_systematic_error
from slt.estimate.methods.ti import TI
from slt.estimate.methods.waic import WAIC
from slt.estimate.methods.wbic import WBIC

_TABLE: dict[str, Method] = {method.name: method for method in (LLC(), WBIC(), RLCT(), TI(), WAIC(), Nested())}
METHODS: tuple[str, ...] = tuple(_TABLE)


def get_method(name: str) -> Method:
    """The registered method `name` (ValueError listing the known ones)."""
    if name not in _TABLE:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(_TABLE)}")
    return _TABLE[name]


__all__ = ["METHODS", "JobsOneByOne", "Method", "MethodContext", "MethodOutcome", "fit_systematic_error",
           "get_method", "global_posterior_only", "llc_at_temperatures"]

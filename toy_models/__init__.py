"""Toy models with known singularities: known λ (RLCT) and multiplicity m are data, with citations.

    >>> import toy_models
    >>> model = toy_models.get("rrr", M=5, H=3, N=5, r=0)
    >>> model.true_rlct, model.multiplicity
    (Fraction(13, 2), 1)
"""

from toy_models._families import NOISE_STD, ModelParameterError
from toy_models._model import (
    GaussianPrior,
    PowerGaussianPrior,
    PowerPriorCoordinates,
    Prior,
    RegressionData,
    ToyModel,
    num_data,
    parameter_count,
)
from toy_models._quadrature import (
    GridDensity,
    empirical_finite_temperature_rlct,
    finite_temperature_rlct,
    tempered_density_grid,
)
from toy_models._registry import UnknownModelError, catalogue, get, names, parameters, parse_assignments
from toy_models._rlct import (
    LearningCoefficient,
    deep_linear_rlct,
    normal_crossing_rlct,
    reduced_rank_rlct,
    regular_rlct,
    tanh_zero_rlct,
)
from toy_models._user import UserModel, combine_parameters, from_loss, partition_parameters

__all__ = [
    "NOISE_STD",
    "GaussianPrior",
    "GridDensity",
    "LearningCoefficient",
    "ModelParameterError",
    "PowerGaussianPrior",
    "PowerPriorCoordinates",
    "Prior",
    "RegressionData",
    "ToyModel",
    "UnknownModelError",
    "UserModel",
    "catalogue",
    "combine_parameters",
    "deep_linear_rlct",
    "empirical_finite_temperature_rlct",
    "finite_temperature_rlct",
    "from_loss",
    "get",
    "names",
    "normal_crossing_rlct",
    "num_data",
    "parameter_count",
    "parameters",
    "parse_assignments",
    "partition_parameters",
    "reduced_rank_rlct",
    "regular_rlct",
    "tanh_zero_rlct",
    "tempered_density_grid",
]

"""What the query gradient measures: loss (utility), fairness, robustness."""

from ._base import BaseObjective, LossObjective
from ._callable import CallableObjective
from ._fairness import DemographicParity, EqualOpportunity, check_sensitive_features
from ._registry import OBJECTIVES, get_objective, register_objective
from ._robustness import RobustnessObjective

__all__ = [
    "BaseObjective",
    "CallableObjective",
    "DemographicParity",
    "EqualOpportunity",
    "LossObjective",
    "OBJECTIVES",
    "RobustnessObjective",
    "check_sensitive_features",
    "get_objective",
    "register_objective",
]

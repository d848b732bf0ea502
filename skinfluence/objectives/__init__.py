"""What the query gradient measures: loss (utility), fairness, robustness."""

from ._base import BaseObjective, LossObjective, get_objective
from ._callable import CallableObjective
from ._fairness import DemographicParity, EqualOpportunity, check_sensitive_features
from ._robustness import RobustnessObjective

OBJECTIVES = {
    "loss": LossObjective,
    "demographic_parity": DemographicParity,
    "equal_opportunity": EqualOpportunity,
    "robustness": RobustnessObjective,
    "CallableObjective": CallableObjective,
}

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
]

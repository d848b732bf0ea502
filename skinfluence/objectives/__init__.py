"""What the query gradient measures: loss (utility), fairness, robustness."""

from ._base import BaseObjective, LossObjective, get_objective

OBJECTIVES = {"loss": LossObjective}

__all__ = ["BaseObjective", "LossObjective", "OBJECTIVES", "get_objective"]

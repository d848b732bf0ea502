"""Objective lookup by name."""

from sklearn.base import clone

from ._base import BaseObjective, LossObjective
from ._callable import CallableObjective
from ._fairness import DemographicParity, EqualOpportunity
from ._robustness import RobustnessObjective

__all__ = ["OBJECTIVES", "get_objective", "register_objective"]

OBJECTIVES = {
    "loss": LossObjective,
    "demographic_parity": DemographicParity,
    "equal_opportunity": EqualOpportunity,
    "robustness": RobustnessObjective,
}


def register_objective(name, cls):
    """Make ``cls`` (a :class:`BaseObjective` subclass) selectable as
    ``objective=name``."""
    if not (isinstance(cls, type) and issubclass(cls, BaseObjective)):
        raise TypeError(
            f"register_objective needs a BaseObjective subclass; got {cls!r}."
        )
    OBJECTIVES[name] = cls


def get_objective(objective):
    """A fresh (unfitted) objective from a name, an objective object or a
    callable ``f(model_output, y, **kwargs)`` (a :class:`CallableObjective`)."""
    if isinstance(objective, str):
        try:
            return OBJECTIVES[objective]()
        except KeyError:
            raise ValueError(
                f"objective={objective!r} is not known; choose one of "
                f"{sorted(OBJECTIVES)}, pass an objective object or a callable."
            ) from None
    if isinstance(objective, BaseObjective):
        return clone(objective)
    if callable(objective):
        return CallableObjective(objective)
    raise TypeError(
        f"objective must be one of {sorted(OBJECTIVES)}, an objective object or a "
        f"callable; got {objective!r}."
    )

"""Objective interface and the default loss objective."""

from sklearn.base import BaseEstimator, clone

from ..methods._base import Query

__all__ = ["BaseObjective", "LossObjective", "get_objective"]


class BaseObjective(BaseEstimator):
    """A measurement on query rows whose gradient is ``g_q``.

    ``per_row`` objectives give one query vector per row (shape
    ``(n_query, n_train)``); set-level ones (fairness gaps) one vector for
    the whole query set (shape ``(n_train,)``).
    """

    per_row = True

    def make_query(self, view, X, T, **params):
        """The :class:`~skinfluence.methods.Query` for rows ``X``, targets ``T``."""
        raise NotImplementedError


class LossObjective(BaseObjective):
    """The query's training loss (utility): positive influence = removing the
    training row would raise the query's loss."""

    def make_query(self, view, X, T, **params):
        if params:
            raise TypeError(
                f"objective='loss' takes no extra parameters; got {sorted(params)}."
            )
        return Query(X, T, measure=view.loss)


def get_objective(objective):
    """An objective object from a name, an object or a callable."""
    from . import OBJECTIVES

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
    if callable(objective) and "CallableObjective" in OBJECTIVES:
        return OBJECTIVES["CallableObjective"](objective)
    raise TypeError(
        f"objective must be one of {sorted(OBJECTIVES)} or an objective object; "
        f"got {objective!r}."
    )

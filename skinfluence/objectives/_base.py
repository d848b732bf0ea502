"""Objective interface and the default loss objective."""

import torch
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

    def value(self, view, X, T, params=None, **kwargs):
        """The measured value at ``params`` (default: the fitted parameters):
        per row for per-row objectives, a float for set-level ones.

        Removing training row ``j`` changes it by about ``influence[..., j]``
        (on the leave-one-out scale of influence functions).
        """
        query = self.make_query(view, X, T, **kwargs)
        Xq = X if query.transform is None else query.transform(view, params, X, T)
        with torch.no_grad():
            values = query.measure(view.forward(Xq, params), T)
            if query.weights is not None:
                values = values * query.weights
        if query.aggregate:
            return float(values.sum())
        return values.detach().cpu().double().numpy()


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

"""A user's measurement as an objective."""

import torch

from ..gradients import Query
from ._base import BaseObjective

__all__ = ["CallableObjective"]


class CallableObjective(BaseObjective):
    """Influence on any differentiable measurement ``func``.

    ``func(model_output, y, **kwargs)`` receives the model's raw output for
    the query rows (logits for classifiers, before any softmax) and ``y``,
    the encoded targets (class indices ``0..K-1`` in ``classes_`` order for
    classifiers), as torch tensors, and returns

    - a scalar for the whole query set (``per_row=False``, the default): a
      set-level objective, influence has shape (n_train,); the measurement
      is taken on all query rows at once, so it need not be a sum over rows;
    - a tensor of shape (n_query,) (``per_row=True``): influence has shape
      (n_query, n_train).

    ``kwargs`` are the extra keyword arguments given to
    ``InfluenceScorer.influence`` (passed as they are, not sliced per row).
    ``func`` must use torch operations so it can be differentiated.
    Positive influence = removing the training row *raises* ``func``'s
    value (for a loss that reads "the row is helpful").

    Parameters
    ----------
    func : callable
        ``func(model_output, y, **kwargs) -> Tensor``.
    per_row : bool, default=False
        Whether ``func`` returns one value per query row.

    Attributes
    ----------
    value_ : float
        ``func``'s value on the last query set at the fitted parameters
        (set-level objectives; set by ``make_query``).

    See Also
    --------
    LossObjective : the query's training loss.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import InfluenceScorer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> def mean_logit(output, y):
    ...     return output.mean()
    >>> scorer = InfluenceScorer(LogisticRegression(), objective=mean_logit)
    >>> scorer.fit(X[:400], y[:400]).influence(X[400:], y[400:]).shape
    (400,)
    """

    def __init__(self, func=None, *, per_row=False):
        self.func = func
        self.per_row = per_row

    def _check_output(self, value, n_rows):
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"The objective callable returned {type(value).__name__}; it must "
                "return a torch.Tensor computed from model_output with torch "
                "operations, so that it can be differentiated."
            )
        if self.per_row:
            if value.shape != (n_rows,):
                raise ValueError(
                    f"The objective callable returned shape {tuple(value.shape)} "
                    f"with per_row=True; return one value per query row, shape "
                    f"({n_rows},), or use per_row=False for a scalar."
                )
            return value
        if value.numel() != 1:
            raise ValueError(
                f"The objective callable returned shape {tuple(value.shape)}; a "
                "set-level objective returns a scalar. Reduce it (e.g. .sum()) or "
                "use CallableObjective(func, per_row=True) for per-row values."
            )
        return value.reshape(1)

    def make_query(self, view, X, T, **kwargs):
        if not callable(self.func):
            raise TypeError(
                f"func must be a callable f(model_output, y, **kwargs); got "
                f"{self.func!r}."
            )
        if not isinstance(self.per_row, bool):
            raise TypeError(f"per_row must be True or False; got {self.per_row!r}.")
        func = self.func

        def measure(output, target):
            return self._check_output(func(output, target, **kwargs), output.shape[0])

        if self.per_row:
            return Query(X, T, measure=measure)
        with torch.no_grad():
            self.value_ = float(measure(view.forward(X), T).sum())
        return Query(X, T, measure=measure, aggregate=True, chunk=max(1, X.shape[0]))

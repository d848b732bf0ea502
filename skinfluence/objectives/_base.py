"""Objective interface and the default loss objective."""

import numbers

import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

from ..gradients import Query

__all__ = ["BaseObjective", "LossObjective"]


class BaseObjective(BaseEstimator):
    """A measurement on query rows whose gradient is ``g_q``.

    ``per_row`` objectives give one query vector per row (shape
    ``(n_query, n_train)``); set-level ones (fairness gaps) one vector for
    the whole query set (shape ``(n_train,)``), and ``make_query`` keeps the
    value it measured at the fitted parameters as ``value_``.
    """

    per_row = True

    def make_query(self, view, X, T, **params):
        """The :class:`~skinfluence.gradients.Query` for rows ``X``, targets ``T``."""
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
    """The query's training loss (utility), optionally trimmed.

    The measurement is the per-row training loss ``l(x_q, y_q; theta)``.
    Positive influence = removing the training row would raise the query's
    loss (the row is helpful).

    With ``trim > 0`` the ``floor(trim * n_query)`` query rows with the
    highest loss at the fitted parameters are left out of the measurement,
    the *trimmed loss* of robust statistics [1]_ [2]_::

        f(theta) = sum_{q in S} l(x_q, y_q; theta),
        S = the n_query - floor(trim * n_query) rows of lowest loss at theta_hat.

    ``S`` is fixed at the fitted parameters ``theta_hat`` and held fixed
    while differentiating (away from ties in the loss ``S`` is locally
    constant, so this is the exact gradient of the trimmed loss). Trimmed
    rows get zero influence; summed over the query rows (``aggregate=True``,
    or a validation objective of :class:`InfluentialSubsetSelector`) the
    influence is that on the trimmed sum. Use it when the query labels are
    themselves noisy: a validation row whose label is wrong has a large
    loss, and without trimming its gradient dominates the summed validation
    gradient, so the training rows that "help" it are other mislabeled rows.
    Setting ``trim`` near the expected fraction of wrong labels removes them.

    Parameters
    ----------
    trim : float in [0, 1), default=0.0
        Fraction of query rows, those of highest loss, left out of the
        measurement; 0 measures every row.

    See Also
    --------
    InfluentialSubsetSelector : selects training rows by influence on a
        validation objective.

    References
    ----------
    .. [1] Rousseeuw. "Least Median of Squares Regression." Journal of the
       American Statistical Association 79 (1984).
    .. [2] Shen, Sanghavi. "Learning with Bad Training Data via Iterative
       Trimmed Loss Minimization." ICML 2019.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import InfluenceScorer, LossObjective
    >>> from skinfluence.datasets import load_noisy
    >>> data = load_noisy("breast_cancer", rate=0.2, random_state=0)
    >>> X, y = data.data, data.target
    >>> scorer = InfluenceScorer(LogisticRegression(), objective=LossObjective(trim=0.2))
    >>> scorer = scorer.fit(X[:300], y[:300])
    >>> scores = scorer.influence(X[300:400], y[300:400])
    >>> scores.shape
    (100, 300)
    >>> int((scores == 0).all(axis=1).sum())  # the 20 trimmed query rows
    20
    """

    _parameter_constraints = {
        "trim": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(self, trim=0.0):
        self.trim = trim

    def make_query(self, view, X, T, **params):
        if params:
            raise TypeError(
                f"objective='loss' takes no extra parameters; got {sorted(params)}."
            )
        self._validate_params()
        n_trim = int(self.trim * X.shape[0])
        if n_trim == 0:
            return Query(X, T, measure=view.loss)
        with torch.no_grad():
            loss = view.loss(view.forward(X), T).reshape(-1)
        # Highest losses first; stable, so ties go to the earlier row.
        trimmed = torch.argsort(loss, descending=True, stable=True)[:n_trim]
        weights = torch.ones_like(loss)
        weights[trimmed] = 0
        return Query(X, T, measure=view.loss, weights=weights)

"""Group-fairness gaps as set-level objectives (one query vector per set)."""

import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ..gradients import Query
from ._base import BaseObjective

__all__ = ["DemographicParity", "EqualOpportunity", "check_sensitive_features"]


def check_sensitive_features(sensitive_features, n_rows, objective):
    """Group labels and per-row group codes, validated.

    Parameters
    ----------
    sensitive_features : array-like of shape (n_rows,) or (n_rows, 1)
    n_rows : int
        Number of query rows.
    objective : str
        Name of the objective, for error messages.

    Returns
    -------
    groups : ndarray
        The distinct groups in ``np.unique`` order.
    codes : ndarray of int, shape (n_rows,)
        Index into ``groups`` of every row.
    """
    if sensitive_features is None:
        raise ValueError(
            f"objective={objective!r} needs sensitive_features: one group label per "
            "query row, e.g. scorer.influence(X_val, y_val, "
            "sensitive_features=groups_val)."
        )
    s = np.asarray(sensitive_features)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim != 1:
        raise ValueError(
            f"sensitive_features must be one column of group labels; got shape "
            f"{s.shape}. Combine several attributes into one label per row first."
        )
    if len(s) != n_rows:
        raise ValueError(
            f"sensitive_features has {len(s)} rows but the query X has {n_rows}; "
            "pass one group label per query row."
        )
    try:
        groups, codes = np.unique(s, return_inverse=True)
    except TypeError as exc:
        raise ValueError(
            "sensitive_features mixes label types or contains missing values; pass "
            "labels of one type (e.g. all strings or all integers)."
        ) from exc
    if len(groups) < 2:
        raise ValueError(
            f"sensitive_features has a single group ({groups[0].tolist()!r}); a fairness gap "
            "needs at least two groups."
        )
    return groups, codes.reshape(-1)


class _GroupGap(BaseObjective):
    """``value(b) - value(a)`` for the pair of groups with the largest gap."""

    per_row = False

    _parameter_constraints = {
        "positive_class": [Interval(numbers.Integral, None, None, closed="neither")],
    }

    def __init__(self, positive_class=-1):
        self.positive_class = positive_class

    def _positive_index(self, view):
        k = view.n_classes
        if k is None:
            raise ValueError(
                f"{type(self).__name__} cannot tell how many classes the model has; "
                "fit it on class labels."
            )
        if not -k <= self.positive_class < k:
            raise ValueError(
                f"positive_class={self.positive_class} is out of range for a model "
                f"with {k} classes; use an index in [{-k}, {k - 1}] (default -1, the "
                "last class)."
            )
        return self.positive_class % k

    def _masks(self, view, T, codes, groups):
        """Rows that enter the mean of every group."""
        return [codes == g for g in range(len(groups))]

    def make_query(self, view, X, T, *, sensitive_features=None):
        self._validate_params()
        groups, codes = check_sensitive_features(
            sensitive_features, X.shape[0], self._name
        )
        measure = self._measure(view)
        masks = self._masks(view, T, codes, groups)
        with torch.no_grad():
            per_row = measure(view.forward(X), T).detach().cpu().numpy()
        means = np.array([per_row[m].mean() for m in masks])
        # Largest absolute pairwise gap; with two groups the only pair.
        diff = means[None, :] - means[:, None]
        a, b = np.unravel_index(np.argmax(np.abs(np.triu(diff, 1))), diff.shape)
        weights = np.zeros(X.shape[0])
        weights[masks[b]] = 1.0 / masks[b].sum()
        weights[masks[a]] = -1.0 / masks[a].sum()
        self.groups_ = groups
        self.pair_ = (groups[a], groups[b])
        self.gap_ = float(means[b] - means[a])
        self.value_ = self.gap_
        return Query(
            X,
            T,
            measure=measure,
            weights=torch.as_tensor(weights, dtype=X.dtype, device=X.device),
            aggregate=True,
        )


class DemographicParity(_GroupGap):
    """Demographic-parity gap: difference of mean positive-class probability
    between two groups.

    ``gap = mean_{s = b} p(x) - mean_{s = a} p(x)`` with ``a < b`` the groups
    in ``np.unique`` order and ``p`` the model's probability of the positive
    class (a soft, differentiable surrogate of the positive rate; the mean
    prediction for regressors). With more than two groups the gap is the
    signed difference of the pair whose absolute gap is largest (at the
    fitted parameters). Set-level: the query is one vector, so scoring every
    training row costs O(n_train), and influence has shape (n_train,).

    **Sign**: positive influence = removing the training row *raises* the
    gap (for the loss objective the same rule reads "the row is helpful").
    To shrink a positive gap drop rows with the most negative influence,
    i.e. rank by ``sign(gap_) * influence`` (lowest = most harmful to
    fairness).

    Parameters
    ----------
    positive_class : int, default=-1
        Index, in ``classes_`` order, of the class whose probability is
        compared; -1 is the last class (``classes_[1]`` for binary problems).

    Attributes
    ----------
    groups_ : ndarray
        Groups found in ``sensitive_features`` (set by ``make_query``).
    pair_ : tuple
        ``(a, b)``, the two groups the gap compares.
    gap_ : float
        ``value(b) - value(a)`` at the fitted parameters.
    value_ : float
        The same as ``gap_``: the measured value of the objective.

    See Also
    --------
    EqualOpportunity : gap in the loss on positive rows.

    References
    ----------
    .. [1] Yang, Yue, Chen, Liu. "Revisit, Extend, and Enhance Hessian-Free
       Influence Functions." arXiv:2405.17490.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import InfluenceScorer
    >>> from skinfluence.datasets import make_fairness_problem
    >>> X, y, s = make_fairness_problem(n_samples=300, random_state=0)
    >>> scorer = InfluenceScorer(LogisticRegression(), objective="demographic_parity")
    >>> scorer = scorer.fit(X[:200], y[:200])
    >>> scorer.influence(X[200:], y[200:], sensitive_features=s[200:]).shape
    (200,)
    """

    _name = "demographic_parity"

    def _measure(self, view):
        if view.task == "regression":

            def mean_prediction(output, target):
                return output.reshape(output.shape[0], -1).mean(1)

            return mean_prediction
        k = self._positive_index(view)
        proba = view.proba

        def positive_probability(output, target):
            return proba(output)[:, k]

        return positive_probability


class EqualOpportunity(_GroupGap):
    """Equal-opportunity gap: difference between two groups of the
    favourable outcome on the positive rows, minus their mean loss.

    ``gap = mean loss over {s = a, y = positive} - mean loss over {s = b,
    y = positive}``, ``a < b`` in ``np.unique`` order: the value of a group
    is minus its mean training loss on its positive rows (a surrogate of
    the true-positive rate, higher is more favourable), and the gap is
    ``value(b) - value(a)``, oriented like :class:`DemographicParity`'s. It
    is the Hessian-free influence paper's ``f_EOp`` with ``a = 0``,
    ``b = 1``. With more than two groups, the pair with the largest
    absolute gap. Every group needs at least one positive row. Set-level:
    influence has shape (n_train,), computed in O(n_train).

    **Sign**: positive influence = removing the training row *raises* the
    gap (for the loss objective the same rule reads "the row is helpful");
    rank by ``sign(gap_) * influence`` to find rows most harmful to
    fairness (lowest first).

    Parameters
    ----------
    positive_class : int, default=-1
        Index, in ``classes_`` order, of the positive class; -1 is the last
        class (``classes_[1]`` for binary problems).

    Attributes
    ----------
    groups_ : ndarray
    pair_ : tuple
    gap_ : float
        As in :class:`DemographicParity`.

    See Also
    --------
    DemographicParity : gap in the positive-class probability.

    References
    ----------
    .. [1] Yang, Yue, Chen, Liu. "Revisit, Extend, and Enhance Hessian-Free
       Influence Functions." arXiv:2405.17490.
    .. [2] Hardt, Price, Srebro. "Equality of Opportunity in Supervised
       Learning." NeurIPS 2016.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import InfluenceScorer
    >>> from skinfluence.datasets import make_fairness_problem
    >>> X, y, s = make_fairness_problem(n_samples=300, random_state=0)
    >>> scorer = InfluenceScorer(LogisticRegression(), objective="equal_opportunity")
    >>> scorer = scorer.fit(X[:200], y[:200])
    >>> scorer.influence(X[200:], y[200:], sensitive_features=s[200:]).shape
    (200,)
    """

    _name = "equal_opportunity"

    def _measure(self, view):
        if view.task != "classification":
            raise ValueError(
                "objective='equal_opportunity' needs a classifier (it compares the "
                "loss on positive rows); use 'demographic_parity' for regressors."
            )
        loss = view.loss

        def minus_loss(output, target):
            return -loss(output, target)

        return minus_loss

    def _masks(self, view, T, codes, groups):
        positive = (T.detach().cpu().numpy() == self._positive_index(view)).reshape(-1)
        masks = []
        for g in range(len(groups)):
            mask = (codes == g) & positive
            if not mask.any():
                raise ValueError(
                    f"objective='equal_opportunity': group {groups[g].tolist()!r} of "
                    "sensitive_features has no positive rows among the query rows, "
                    "so its loss on positives is undefined. Pass query rows with "
                    "positives in every group."
                )
            masks.append(mask)
        return masks

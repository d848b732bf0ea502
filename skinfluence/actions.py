"""What to do with influence scores: drop, relabel or reweight rows.

Every function takes ``scores`` with **positive = helpful** (the sign of
:meth:`~skinfluence.InfluenceScorer.influence` with ``aggregate=True`` or a
set-level objective): the *most harmful* rows are those with the *lowest*
scores. For a score where higher means worse (self-influence as a noise
signal, the size of a fairness gap) pass its negation. These are the
actions of the Hessian-free influence paper: drop the lowest-scored rows
and retrain, relabel them, or reweight every row by
``exp(2 * zscore(score))``.
"""

import numbers

import numpy as np
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["drop_harmful", "most_harmful", "relabel_harmful", "reweight"]


def _check_scores(scores):
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(
            f"scores must be 1-D, one value per training row; got shape {s.shape}. "
            "Use influence(..., aggregate=True) or a set-level objective."
        )
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contains NaN or infinity; pass finite scores.")
    return s


def _count(n_rows, n, fraction):
    if (n is None) == (fraction is None):
        raise ValueError(
            f"Pass exactly one of n (a number of rows) and fraction (a share of the "
            f"rows); got n={n!r}, fraction={fraction!r}."
        )
    if n is not None:
        if n > n_rows:
            raise ValueError(
                f"n={n} is larger than the number of rows ({n_rows}); pass n <= "
                f"{n_rows}."
            )
        return int(n)
    return int(round(fraction * n_rows))


@validate_params(
    {
        "scores": ["array-like"],
        "n": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "fraction": [Interval(numbers.Real, 0, 1, closed="both"), None],
    },
    prefer_skip_nested_validation=True,
)
def most_harmful(scores, n=None, *, fraction=None):
    """Indices of the ``n`` (or ``fraction`` of) rows with the lowest scores,
    most harmful first (ties broken by row order).

    Parameters
    ----------
    scores : array-like of shape (n_rows,)
        Positive = helpful.
    n : int >= 0, default=None
    fraction : float in [0, 1], default=None
        Exactly one of ``n`` and ``fraction``.

    Returns
    -------
    indices : ndarray of int

    Examples
    --------
    >>> from skinfluence.actions import most_harmful
    >>> most_harmful([0.5, -2.0, 0.1, -0.3], n=2)
    array([1, 3])
    """
    s = _check_scores(scores)
    k = _count(len(s), n, fraction)
    return np.argsort(s, kind="stable")[:k]


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like", None],
        "scores": ["array-like"],
        "n": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "fraction": [Interval(numbers.Real, 0, 1, closed="both"), None],
    },
    prefer_skip_nested_validation=True,
)
def drop_harmful(X, y, scores, n=None, *, fraction=None):
    """Drop the most harmful rows (lowest scores).

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_rows, n_features)
    y : array-like of shape (n_rows,) or None
    scores : array-like of shape (n_rows,)
        Positive = helpful.
    n : int >= 0, default=None
        Number of rows to drop.
    fraction : float in [0, 1], default=None
        Share of the rows to drop. Exactly one of ``n`` and ``fraction``.

    Returns
    -------
    X_kept, y_kept : the remaining rows, in their original order (``y_kept``
        is None when ``y`` is).
    kept : ndarray of int
        Indices of the kept rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.actions import drop_harmful
    >>> X = np.arange(8).reshape(4, 2)
    >>> X_kept, y_kept, kept = drop_harmful(X, [0, 1, 0, 1], [0.5, -2.0, 0.1, -0.3], n=1)
    >>> kept
    array([0, 2, 3])
    """
    s = _check_scores(scores)
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    if len(s) != n_rows or (y is not None and len(y) != n_rows):
        raise ValueError(
            f"X has {n_rows} rows, y {None if y is None else len(y)} and scores "
            f"{len(s)}; pass one score (and label) per row of X."
        )
    drop = most_harmful(s, n, fraction=fraction)
    kept = np.setdiff1d(np.arange(n_rows), drop)
    y_kept = None if y is None else _safe_indexing(y, kept)
    return _safe_indexing(X, kept), y_kept, kept


@validate_params(
    {
        "y": ["array-like"],
        "scores": ["array-like"],
        "n": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "fraction": [Interval(numbers.Real, 0, 1, closed="both"), None],
        "labels": ["array-like", None],
    },
    prefer_skip_nested_validation=True,
)
def relabel_harmful(y, scores, n=None, *, fraction=None, labels=None):
    """Relabel the most harmful rows (lowest scores); ``y`` is not modified.

    Parameters
    ----------
    y : array-like of shape (n_rows,)
    scores : array-like of shape (n_rows,)
        Positive = helpful.
    n : int >= 0, default=None
    fraction : float in [0, 1], default=None
        Exactly one of ``n`` and ``fraction``: how many rows to relabel.
    labels : array-like of shape (n_rows,), default=None
        The new label of every row (only the relabelled rows' are used),
        e.g. the model's predictions. ``None`` flips binary labels to the
        other class.

    Returns
    -------
    y_new : ndarray of shape (n_rows,)
        A copy of ``y`` with the harmful rows relabelled.
    changed : ndarray of int
        Indices of the relabelled rows, most harmful first.

    Examples
    --------
    >>> from skinfluence.actions import relabel_harmful
    >>> relabel_harmful(["a", "b", "a"], [1.0, -1.0, 0.5], n=1)
    (array(['a', 'a', 'a'], dtype='<U1'), array([1]))
    """
    y_new = np.array(y, copy=True)
    s = _check_scores(scores)
    if y_new.ndim != 1 or len(y_new) != len(s):
        raise ValueError(
            f"y has shape {y_new.shape} and scores {len(s)} values; pass a 1-D y with "
            "one score per row."
        )
    changed = most_harmful(s, n, fraction=fraction)
    if labels is None:
        classes = np.unique(y_new)
        if len(classes) != 2:
            raise ValueError(
                f"labels=None flips binary labels, but y has {len(classes)} classes; "
                "pass labels= with the new label of every row (e.g. the model's "
                "predictions)."
            )
        y_new[changed] = np.where(y_new[changed] == classes[0], classes[1], classes[0])
        return y_new, changed
    labels = np.asarray(labels)
    if labels.shape != y_new.shape:
        raise ValueError(
            f"labels has shape {labels.shape} but y has {y_new.shape}; pass one new "
            "label per row."
        )
    y_new[changed] = labels[changed]
    return y_new, changed


@validate_params(
    {
        "scores": ["array-like"],
        "strength": [Interval(numbers.Real, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def reweight(scores, *, strength=2.0):
    """Sample weights ``exp(strength * zscore(scores))``: helpful rows count
    more, harmful rows less (the paper uses ``strength=2``).

    Parameters
    ----------
    scores : array-like of shape (n_rows,)
        Positive = helpful.
    strength : float >= 0, default=2.0

    Returns
    -------
    sample_weight : ndarray of shape (n_rows,)
        All ones when the scores are constant. Pass it as ``sample_weight``
        to the estimator's ``fit``.

    Examples
    --------
    >>> from skinfluence.actions import reweight
    >>> reweight([1.0, -1.0]).round(3)
    array([7.389, 0.135])
    """
    s = _check_scores(scores)
    std = s.std()
    z = np.zeros_like(s) if std == 0 else (s - s.mean()) / std
    return np.exp(strength * z)

"""A synthetic binary problem with a sensitive attribute and a known label bias."""

import numbers

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["make_fairness_problem"]


@validate_params(
    {
        "n_samples": [Interval(numbers.Integral, 4, None, closed="left")],
        "n_features": [Interval(numbers.Integral, 2, None, closed="left")],
        "bias": [Interval(numbers.Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
        "return_biased": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_fairness_problem(
    n_samples=1000, n_features=5, *, bias=0.3, random_state=None, return_biased=False
):
    """Binary classification with a sensitive attribute and biased labels.

    The construction, so that the bias is known exactly:

    1. the sensitive attribute ``s`` is 0 or 1 with equal probability;
    2. feature 0 is a *proxy* of ``s``: ``2 s - 1`` plus standard normal
       noise; the other ``n_features - 1`` features are standard normal;
    3. the fair label is ``1[x_{1:} . w + noise > 0]``, independent of ``s``
       (``w`` drawn once, noise of standard deviation 0.5), so both groups
       have the same positive rate;
    4. label bias: every positive row of group ``s = 0`` is recorded as
       negative with probability ``bias``.

    A model fitted on the recorded labels learns, through the proxy, to
    give group 0 fewer positive predictions: its demographic-parity gap
    ``mean p(s=1) - mean p(s=0)`` is positive, and the flipped rows are the
    ones that cause it.

    Parameters
    ----------
    n_samples : int >= 4, default=1000
    n_features : int >= 2, default=5
        Feature 0 is the proxy of ``s``.
    bias : float in [0, 1], default=0.3
        Probability that a positive row of group 0 is recorded as negative.
    random_state : int, RandomState or None, default=None
    return_biased : bool, default=False
        Also return the mask of rows whose label the bias flipped.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of int, shape (n_samples,)
        Recorded (biased) labels, 0 or 1.
    sensitive_features : ndarray of int, shape (n_samples,)
        The group ``s`` of every row, 0 or 1.
    biased : ndarray of bool, shape (n_samples,)
        Rows whose label was flipped from 1 to 0 (only when
        ``return_biased=True``); ``y[biased]`` restored to 1 gives the fair
        labels.

    Examples
    --------
    >>> from skinfluence.datasets import make_fairness_problem
    >>> X, y, s, biased = make_fairness_problem(
    ...     n_samples=200, random_state=0, return_biased=True
    ... )
    >>> X.shape, y.shape, s.shape
    ((200, 5), (200,), (200,))
    >>> bool((s[biased] == 0).all() and (y[biased] == 0).all())
    True
    """
    rng = check_random_state(random_state)
    s = rng.randint(0, 2, size=n_samples)
    X = rng.standard_normal((n_samples, n_features))
    X[:, 0] += 2.0 * s - 1.0
    w = rng.standard_normal(n_features - 1)
    w /= np.linalg.norm(w)
    y_fair = (X[:, 1:] @ w + 0.5 * rng.standard_normal(n_samples) > 0).astype(int)
    biased = (s == 0) & (y_fair == 1) & (rng.uniform(size=n_samples) < bias)
    y = np.where(biased, 0, y_fair)
    if return_biased:
        return X, y, s, biased
    return X, y, s

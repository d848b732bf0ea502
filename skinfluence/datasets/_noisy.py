"""Label noise with a known truth mask, and scikit-learn datasets with it."""

import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["load_noisy", "make_noisy_labels"]


@validate_params(
    {
        "X": ["array-like", None],
        "y": ["array-like"],
        "rate": [Interval(numbers.Real, 0, 1, closed="both")],
        "kind": [StrOptions({"symmetric", "asymmetric"})],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_noisy_labels(X, y, rate=0.1, *, kind="symmetric", random_state=None):
    """Flip a fraction of class labels, returning the noisy labels and the truth.

    Exactly ``round(rate * n_samples)`` rows, drawn uniformly without
    replacement, get a label different from their own: with
    ``kind="symmetric"`` drawn uniformly from the other classes, with
    ``kind="asymmetric"`` the next class in sorted order (the last class
    goes to the first), a systematic confusion between neighbouring classes.
    ``X`` and ``y`` are not modified.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or None
        Only checked for its length (kept for the ``(X, y)`` calling shape).
    y : array-like of shape (n_samples,)
        Class labels; at least two classes.
    rate : float in [0, 1], default=0.1
        Fraction of rows whose label is flipped.
    kind : {"symmetric", "asymmetric"}, default="symmetric"
        How a flipped label is chosen (see above).
    random_state : int, RandomState instance or None, default=None
        Seed of the row and label draws.

    Returns
    -------
    y_noisy : ndarray of shape (n_samples,)
        The labels with flips, same dtype as ``y``.
    is_noisy : ndarray of bool, shape (n_samples,)
        ``True`` where the label was flipped.

    See Also
    --------
    load_noisy : a scikit-learn dataset with flipped training labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.datasets import make_noisy_labels
    >>> y = np.repeat([0, 1, 2], 10)
    >>> y_noisy, is_noisy = make_noisy_labels(None, y, 0.2, random_state=0)
    >>> int(is_noisy.sum()), bool(np.all(y_noisy[is_noisy] != y[is_noisy]))
    (6, True)
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D class labels; got shape {y.shape}.")
    if X is not None and len(X) != len(y):
        raise ValueError(
            f"X has {len(X)} rows but y has {len(y)}; pass one label per row."
        )
    classes, y_idx = np.unique(y, return_inverse=True)
    n_classes = len(classes)
    if n_classes < 2:
        raise ValueError(
            f"y has {n_classes} class; flipping labels needs at least two classes."
        )
    rng = check_random_state(random_state)
    n_flip = int(round(rate * len(y)))
    rows = rng.choice(len(y), n_flip, replace=False)
    new_idx = y_idx.copy()
    if kind == "symmetric":
        shift = rng.randint(1, n_classes, size=n_flip)
    else:
        shift = np.ones(n_flip, dtype=int)
    new_idx[rows] = (y_idx[rows] + shift) % n_classes
    is_noisy = np.zeros(len(y), dtype=bool)
    is_noisy[rows] = True
    return classes[new_idx].astype(y.dtype, copy=False), is_noisy


def _load(name, n_samples):
    from sklearn import datasets

    if name == "synthetic":
        X, y = datasets.make_classification(
            n_samples=n_samples,
            n_features=20,
            n_informative=10,
            n_redundant=4,
            n_classes=4,
            random_state=0,
        )
        return X, y, None, None
    loader = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
    }[name]
    data = loader()
    return data.data, data.target, data.get("feature_names"), data.target_names


@validate_params(
    {
        "name": [StrOptions({"digits", "breast_cancer", "wine", "iris", "synthetic"})],
        "rate": [Interval(numbers.Real, 0, 1, closed="both")],
        "kind": [StrOptions({"symmetric", "asymmetric"})],
        "test_size": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "standardize": ["boolean"],
        "n_samples": [Interval(numbers.Integral, 10, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def load_noisy(
    name="digits",
    *,
    rate=0.1,
    kind="symmetric",
    test_size=None,
    standardize=True,
    n_samples=4000,
    random_state=None,
):
    """A scikit-learn dataset with a known fraction of flipped training labels.

    Loads one of scikit-learn's bundled classification datasets (or the
    4-class ``make_classification`` problem used in the benchmarks), splits
    off a stratified test set when ``test_size`` is given, standardises the
    features with the training rows' statistics, and flips ``rate`` of the
    *training* labels with :func:`make_noisy_labels`. Test labels stay clean.

    Parameters
    ----------
    name : {"digits", "breast_cancer", "wine", "iris", "synthetic"}, \
            default="digits"
        ``"synthetic"`` is ``make_classification(n_samples, n_features=20,
        n_informative=10, n_redundant=4, n_classes=4, random_state=0)``.
    rate : float in [0, 1], default=0.1
        Fraction of training labels flipped.
    kind : {"symmetric", "asymmetric"}, default="symmetric"
        How flipped labels are drawn (see :func:`make_noisy_labels`).
    test_size : float in (0, 1) or None, default=None
        Fraction of rows held out (stratified, clean labels); ``None`` keeps
        every row for training.
    standardize : bool, default=True
        Scale features to zero mean and unit variance (training statistics).
    n_samples : int, default=4000
        Rows of the ``"synthetic"`` problem (ignored otherwise).
    random_state : int, RandomState instance or None, default=None
        Seed of the split and of the flips.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (training features), ``target`` (noisy training labels),
        ``target_true`` (their clean labels), ``is_noisy`` (bool mask of
        flipped rows), ``data_test`` and ``target_test`` (empty when
        ``test_size=None``), ``feature_names``, ``target_names``.

    See Also
    --------
    make_noisy_labels : flip the labels of any array.

    Examples
    --------
    >>> from skinfluence.datasets import load_noisy
    >>> data = load_noisy("wine", rate=0.1, test_size=0.2, random_state=0)
    >>> data.data.shape, data.data_test.shape, int(data.is_noisy.sum())
    ((142, 13), (36, 13), 14)
    """
    from sklearn.model_selection import train_test_split

    rng = check_random_state(random_state)
    X, y, feature_names, target_names = _load(name, n_samples)
    if test_size is not None:
        X, X_test, y, y_test = train_test_split(
            X, y, test_size=test_size, stratify=y, random_state=rng
        )
    else:
        X_test, y_test = X[:0], y[:0]
    if standardize:
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std[std == 0] = 1.0
        X = (X - mean) / std
        X_test = (X_test - mean) / std
    y_noisy, is_noisy = make_noisy_labels(X, y, rate, kind=kind, random_state=rng)
    return Bunch(
        data=X,
        target=y_noisy,
        target_true=y,
        is_noisy=is_noisy,
        data_test=X_test,
        target_test=y_test,
        feature_names=feature_names,
        target_names=target_names,
    )

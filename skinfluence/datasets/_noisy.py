"""Label noise with a known truth mask, and scikit-learn datasets with it."""

import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["load_noisy", "make_noisy_labels"]

KINDS = {"symmetric", "asymmetric", "pairs", "confusion", "instance"}


@validate_params(
    {
        "X": ["array-like", None],
        "y": ["array-like"],
        "rate": [Interval(numbers.Real, 0, 1, closed="both")],
        "kind": [StrOptions(KINDS)],
        "pairs": ["array-like", None],
        "transition": ["array-like", None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_noisy_labels(
    X,
    y,
    rate=0.1,
    *,
    kind="symmetric",
    pairs=None,
    transition=None,
    random_state=None,
):
    """Flip a fraction of class labels, returning the noisy labels and the truth.

    Exactly ``n_flip = round(rate * n_samples)`` rows get a label different
    from their own. ``kind`` says which rows and which new label:

    - ``"symmetric"``: rows drawn uniformly without replacement; the new
      label is drawn uniformly from the other classes.
    - ``"asymmetric"``: rows drawn uniformly; the new label is the next
      class in sorted order (the last class goes to the first).
    - ``"pairs"``: the classes are paired, and a flipped row gets its
      class's partner (both directions of a pair). ``pairs`` lists the
      pairs; by default the sorted classes are shuffled with
      ``random_state`` and paired two by two (this needs an even number of
      classes). Rows are drawn uniformly among the rows of paired classes.
    - ``"confusion"``: ``transition`` is a row-stochastic matrix whose entry
      ``[i, j]`` is the relative chance that a row of class ``i`` is given
      label ``j``. Rows are drawn without replacement with probability
      proportional to ``1 - transition[y_i, y_i]``, and a drawn row of class
      ``i`` gets label ``j != i`` with probability ``transition[i, j] / (1 -
      transition[i, i])``. The shape of the confusion is the matrix's;
      ``rate`` sets how many rows it reaches.
    - ``"instance"``: flips near the decision boundary, as annotators make
      them. A reference ``LogisticRegression`` is fitted on the standardised
      ``X`` and ``y``; with ``p_i`` its class probabilities, the margin of
      row ``i`` is ``m_i = p_i[y_i] - max_{c != y_i} p_i[c]`` in [-1, 1].
      Rows are drawn without replacement with probability proportional to
      ``1 - |m_i|`` (floored at 1e-6), and a drawn row gets the reference
      model's most probable class other than its own. Needs ``X``.

    ``X`` and ``y`` are not modified.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or None
        The features: used by ``kind="instance"``, otherwise only checked for
        its length.
    y : array-like of shape (n_samples,)
        Class labels; at least two classes.
    rate : float in [0, 1], default=0.1
        Fraction of rows whose label is flipped.
    kind : {"symmetric", "asymmetric", "pairs", "confusion", "instance"}, \
            default="symmetric"
        How rows and their new labels are chosen (see above).
    pairs : array-like of shape (n_pairs, 2) or None, default=None
        With ``kind="pairs"``, the pairs of class labels that are confused;
        each class is in at most one pair, and classes in none keep their
        labels. ``None`` pairs the classes at random.
    transition : array-like of shape (n_classes, n_classes) or None, \
            default=None
        With ``kind="confusion"`` (required there), the row-stochastic
        confusion matrix, rows and columns in sorted class order.
    random_state : int, RandomState instance or None, default=None
        Seed of the pairing and of the row and label draws.

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
    >>> y_noisy, is_noisy = make_noisy_labels(
    ...     None, y, 0.2, kind="pairs", pairs=[(0, 1)], random_state=0
    ... )
    >>> sorted(set(zip(y[is_noisy].tolist(), y_noisy[is_noisy].tolist())))
    [(0, 1), (1, 0)]
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D class labels; got shape {y.shape}.")
    if X is not None and len(X) != len(y):
        raise ValueError(
            f"X has {len(X)} rows but y has {len(y)}; pass one label per row."
        )
    if pairs is not None and kind != "pairs":
        raise ValueError(f"pairs is only used with kind='pairs' (got kind={kind!r}).")
    if transition is not None and kind != "confusion":
        raise ValueError(
            f"transition is only used with kind='confusion' (got kind={kind!r})."
        )
    classes, y_idx = np.unique(y, return_inverse=True)
    n_classes = len(classes)
    if n_classes < 2:
        raise ValueError(
            f"y has {n_classes} class; flipping labels needs at least two classes."
        )
    rng = check_random_state(random_state)
    n_flip = int(round(rate * len(y)))
    if kind in ("symmetric", "asymmetric"):
        rows = rng.choice(len(y), n_flip, replace=False)
        if kind == "symmetric":
            shift = rng.randint(1, n_classes, size=n_flip)
        else:
            shift = np.ones(n_flip, dtype=int)
        new = (y_idx[rows] + shift) % n_classes
    elif kind == "pairs":
        partner = _partners(classes, pairs, rng)
        rows = _draw(rng, n_flip, (partner >= 0)[y_idx].astype(float), kind)
        new = partner[y_idx[rows]]
    elif kind == "confusion":
        T = _check_transition(transition, classes)
        rows = _draw(rng, n_flip, 1.0 - np.diag(T)[y_idx], kind)
        off = T.copy()
        np.fill_diagonal(off, 0.0)
        off /= np.maximum(off.sum(axis=1, keepdims=True), 1e-300)
        cum = np.cumsum(off[y_idx[rows]], axis=1)
        u = rng.random_sample(len(rows))[:, None]
        # The first class whose cumulative probability exceeds u.
        new = np.minimum((cum <= u).sum(axis=1), n_classes - 1)
    else:
        if X is None:
            raise ValueError(
                "kind='instance' flips rows by a reference model's margin on X; "
                "pass the features X (not None)."
            )
        proba = _reference_proba(X, y_idx)
        rows_all = np.arange(len(y))
        own = proba[rows_all, y_idx]
        others = proba.copy()
        others[rows_all, y_idx] = -np.inf
        margin = own - others.max(axis=1)
        rows = _draw(rng, n_flip, np.maximum(1.0 - np.abs(margin), 1e-6), kind)
        new = others[rows].argmax(axis=1)
    new_idx = y_idx.copy()
    new_idx[rows] = new
    is_noisy = np.zeros(len(y), dtype=bool)
    is_noisy[rows] = True
    return classes[new_idx].astype(y.dtype, copy=False), is_noisy


def _draw(rng, n_flip, weights, kind):
    """``n_flip`` row indices without replacement, probability ~ ``weights``."""
    eligible = int(np.count_nonzero(weights))
    if n_flip > eligible:
        raise ValueError(
            f"rate asks for {n_flip} flipped rows but kind={kind!r} can flip only "
            f"{eligible} (rows of classes that have a label to flip to); lower rate."
        )
    return rng.choice(len(weights), n_flip, replace=False, p=weights / weights.sum())


def _partners(classes, pairs, rng):
    """Index of each class's partner (-1 for unpaired classes)."""
    n_classes = len(classes)
    partner = np.full(n_classes, -1)
    if pairs is None:
        if n_classes % 2:
            raise ValueError(
                f"kind='pairs' pairs the classes two by two, but y has {n_classes} "
                "classes (an odd number); pass pairs=[(a, b), ...] naming the pairs "
                "(a class may be left out)."
            )
        order = rng.permutation(n_classes)
        partner[order[0::2]] = order[1::2]
        partner[order[1::2]] = order[0::2]
        return partner
    pairs = [tuple(p) for p in np.asarray(pairs, dtype=object).tolist()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise ValueError(
            f"pairs must be a non-empty list of (class, class) pairs; got {pairs!r}."
        )
    position = {c: i for i, c in enumerate(classes.tolist())}
    bad = [c for p in pairs for c in p if c not in position]
    if bad:
        raise ValueError(
            f"pairs names {bad}, which are not classes of y "
            f"({classes.tolist()}); pair only classes that occur."
        )
    idx = np.array([position[c] for p in pairs for c in p])
    if len(set(idx.tolist())) != len(idx):
        raise ValueError(
            f"pairs={pairs!r} uses a class twice or pairs a class with itself; "
            "each class may be in at most one pair."
        )
    a, b = idx[0::2], idx[1::2]
    partner[a], partner[b] = b, a
    return partner


def _check_transition(transition, classes):
    n_classes = len(classes)
    T = np.asarray(transition, dtype=np.float64)
    if T.shape != (n_classes, n_classes):
        raise ValueError(
            f"transition must be of shape (n_classes, n_classes) = "
            f"({n_classes}, {n_classes}) for y's classes {classes.tolist()}; got "
            f"shape {T.shape}."
        )
    if not np.all(np.isfinite(T)) or np.any(T < 0):
        raise ValueError("transition must hold finite, non-negative probabilities.")
    sums = T.sum(axis=1)
    if not np.allclose(sums, 1.0, rtol=0, atol=1e-6):
        raise ValueError(
            f"transition must be row-stochastic (each row sums to 1); its rows sum "
            f"to {np.round(sums, 6).tolist()}. Divide each row by its sum."
        )
    return T


def _reference_proba(X, y_idx):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import check_array

    X = check_array(X, dtype=np.float64)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return model.fit(X, y_idx).predict_proba(X)


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
        "kind": [StrOptions(KINDS)],
        "pairs": ["array-like", None],
        "transition": ["array-like", None],
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
    pairs=None,
    transition=None,
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
    kind : {"symmetric", "asymmetric", "pairs", "confusion", "instance"}, \
            default="symmetric"
        How flipped labels are drawn (see :func:`make_noisy_labels`).
    pairs, transition : array-like or None, default=None
        The class pairs of ``kind="pairs"`` and the confusion matrix of
        ``kind="confusion"`` (see :func:`make_noisy_labels`).
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
    y_noisy, is_noisy = make_noisy_labels(
        X,
        y,
        rate,
        kind=kind,
        pairs=pairs,
        transition=transition,
        random_state=rng,
    )
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

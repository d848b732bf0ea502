"""The figures: noise scores, precision-recall, proponents and opponents, the
train-query influence graph and the removal curve."""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils import Bunch, _safe_indexing, check_random_state

GREEN, RED, GREY = "#2a9d55", "#d1495b", "#8d99ae"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "skinfluence.plotting needs matplotlib, which is not installed; install "
            'it with pip install "skinfluence[plot]"'
        ) from None
    return plt


def _axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _influence_array(influence):
    """Influence as a float array; the CSR matrix of ``influence(...,
    top_k=k)`` becomes dense with NaN where it kept no entry."""
    if not sp.issparse(influence):
        return np.asarray(influence, dtype=np.float64)
    coo = sp.coo_array(influence)
    out = np.full(coo.shape, np.nan)
    out[coo.row, coo.col] = coo.data
    return out


def _vector(name, values, n=None, dtype=np.float64):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d; got shape {arr.shape}.")
    if n is not None and len(arr) != n:
        raise ValueError(
            f"{name} has {len(arr)} entries but the scores have {n}; pass one per row."
        )
    if dtype is bool:
        return arr.astype(bool)
    arr = arr.astype(dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity; pass finite values.")
    return arr


def plot_noise_scores(noise_scores, flagged=None, *, is_noisy=None, bins=40, ax=None):
    """Distribution of noise scores, with the cut between kept and flagged rows.

    Parameters
    ----------
    noise_scores : array-like of shape (n_samples,)
        Higher = more likely mislabeled (``NoisyLabelFilter.noise_scores_``).
    flagged : array-like of bool, shape (n_samples,), default=None
        Rows flagged (``label_issues_``); the cut is drawn at the lowest
        flagged score.
    is_noisy : array-like of bool, shape (n_samples,), default=None
        Known wrong labels: the histogram is then split into clean and
        mislabeled rows instead of kept and flagged.
    bins : int, default=40
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from skinfluence.plotting import plot_noise_scores
    >>> scores = np.random.default_rng(0).random(100)
    >>> ax = plot_noise_scores(scores, scores > 0.9, ax=Figure().subplots())
    >>> ax.get_xlabel()
    'noise score (higher = more likely mislabeled)'
    """
    scores = _vector("noise_scores", noise_scores)
    ax = _axes(ax)
    edges = np.histogram_bin_edges(scores, bins=bins)
    if is_noisy is not None:
        split = _vector("is_noisy", is_noisy, len(scores), bool)
        names = ("clean label", "wrong label")
    elif flagged is not None:
        split = _vector("flagged", flagged, len(scores), bool)
        names = ("kept", "flagged")
    else:
        split, names = np.zeros(len(scores), bool), ("rows", "")
    ax.hist(scores[~split], bins=edges, color=GREY, alpha=0.85, label=names[0])
    if split.any():
        ax.hist(scores[split], bins=edges, color=RED, alpha=0.75, label=names[1])
    if flagged is not None:
        mask = _vector("flagged", flagged, len(scores), bool)
        if mask.any():
            cut = float(scores[mask].min())
            ax.axvline(
                cut,
                color="black",
                ls="--",
                lw=1,
                label=f"cut ({int(mask.sum())} flagged)",
            )
    ax.set_yscale("log")
    ax.set_xlabel("noise score (higher = more likely mislabeled)")
    ax.set_ylabel("rows (log scale)")
    ax.legend(frameon=False)
    return ax


def plot_precision_recall(is_noisy, noise_scores, *, flagged=None, ax=None):
    """Precision-recall curve of the noise ranking against known wrong labels.

    Parameters
    ----------
    is_noisy : array-like of bool, shape (n_samples,)
        The truth: rows whose label is wrong.
    noise_scores : array-like of shape (n_samples,)
        Higher = more likely mislabeled.
    flagged : array-like of bool, shape (n_samples,), default=None
        Rows flagged; marked as one point on the curve.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from skinfluence.plotting import plot_precision_recall
    >>> truth = np.arange(50) < 5
    >>> ax = plot_precision_recall(truth, truth + 0.1, ax=Figure().subplots())
    >>> ax.get_ylabel()
    'precision'
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    scores = _vector("noise_scores", noise_scores)
    truth = _vector("is_noisy", is_noisy, len(scores), bool)
    if truth.all() or not truth.any():
        raise ValueError(
            "is_noisy must mark some rows True and some False to draw a "
            "precision-recall curve."
        )
    ax = _axes(ax)
    precision, recall, _ = precision_recall_curve(truth, scores)
    ap = average_precision_score(truth, scores)
    ax.step(recall, precision, where="post", color="C0", label=f"ranking (AP {ap:.3f})")
    ax.axhline(truth.mean(), color=GREY, ls=":", label=f"chance ({truth.mean():.2f})")
    if flagged is not None:
        mask = _vector("flagged", flagged, len(scores), bool)
        if mask.any():
            p = truth[mask].mean()
            r = truth[mask].sum() / truth.sum()
            ax.plot(
                [r], [p], "o", color=RED, label=f"flagged rows (P {p:.2f}, R {r:.2f})"
            )
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall (share of wrong labels found)")
    ax.set_ylabel("precision")
    ax.legend(frameon=False, loc="lower left")
    return ax


def _top_rows(influence, top):
    order = np.argsort(influence, kind="stable")
    pos = [j for j in order[::-1][:top] if influence[j] > 0]
    neg = [j for j in order[:top] if influence[j] < 0]
    return pos, neg


def plot_proponents_opponents(
    influence,
    *,
    y_train=None,
    top=5,
    X_train=None,
    image_shape=None,
    query=None,
    query_label=None,
    ax=None,
):
    """The training rows that helped (proponents) and hurt (opponents) one
    prediction most.

    A bar chart of their influence, or, with ``image_shape``, the rows
    themselves as images: the query on the left, proponents on the top
    line and opponents on the bottom line.

    Parameters
    ----------
    influence : array-like of shape (n_train,), or sparse of shape (1, n_train)
        Influence of every training row on the query (positive = helpful),
        one row of :meth:`InfluenceScorer.influence` (with ``top_k``, one
        row of its CSR matrix). NaN entries (rows FastIF did not score, or a
        row left out) and entries a sparse row does not hold are skipped.
    y_train : array-like of shape (n_train,), default=None
        Training labels, shown with each row.
    top : int, default=5
        Rows shown on each side.
    X_train : array-like of shape (n_train, n_features), default=None
        Needed for images.
    image_shape : tuple of int, default=None
        ``(height, width)`` of one row as an image, e.g. ``(8, 8)`` for
        digits.
    query : array-like of shape (n_features,), default=None
        The query row, drawn first when images are shown.
    query_label : object, default=None
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from skinfluence.plotting import plot_proponents_opponents
    >>> infl = np.array([0.5, -0.2, 0.1, -0.7, 0.0])
    >>> ax = plot_proponents_opponents(infl, top=2, ax=Figure().subplots())
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['row 3', 'row 1', 'row 2', 'row 0']
    """
    infl = _influence_array(influence)
    if sp.issparse(influence) and infl.shape[0] == 1:
        infl = infl[0]
    if infl.ndim != 1:
        raise ValueError(
            f"influence must be one query's scores, shape (n_train,); got {infl.shape}. "
            "Pass influence[i] for query i."
        )
    if not isinstance(top, numbers.Integral) or top < 1:
        raise ValueError(f"top must be a positive integer; got {top!r}.")
    scored = np.where(np.isnan(infl), 0.0, infl)
    pos, neg = _top_rows(scored, top)
    ax = _axes(ax)
    if y_train is not None:
        # By position: a pandas Series after a split keeps its old index.
        y_train = np.asarray(y_train)

    def name(j):
        return f"row {j}" if y_train is None else f"row {j} ({y_train[j]})"

    if image_shape is None:
        rows = list(neg) + list(pos[::-1])
        values = scored[rows]
        ax.barh(
            range(len(rows)), values, color=np.where(values > 0, GREEN, RED).tolist()
        )
        ax.set_yticks(range(len(rows)), [name(j) for j in rows])
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel("influence (positive = the row helped this prediction)")
        ax.set_title("opponents (red) and proponents (green)")
        return ax
    if X_train is None:
        raise ValueError("image_shape needs X_train, the rows to draw.")
    X_train = np.asarray(X_train, dtype=np.float64)
    h, w = image_shape
    if h * w != X_train.shape[1]:
        raise ValueError(
            f"image_shape={image_shape} has {h * w} pixels but rows have "
            f"{X_train.shape[1]} features; pass (height, width) with height * width "
            "= n_features."
        )
    gap = 0.25
    x0 = 0.0
    if query is not None:
        img = np.asarray(query, dtype=np.float64).reshape(h, w)
        ax.imshow(img, cmap="gray_r", extent=(0, 1, -2, -1))
        label = "query" if query_label is None else f"query ({query_label})"
        ax.text(0.5, -2.05, label, ha="center", va="top", fontsize=8)
        x0 = 1 + 2 * gap
    for line, (rows, color, title) in enumerate(
        ((pos, GREEN, "proponents"), (neg, RED, "opponents"))
    ):
        y_top = -line * 2.0
        ax.text(x0, y_top + 0.15, title, color=color, fontsize=9, va="bottom")
        for i, j in enumerate(rows):
            left = x0 + i * (1 + gap)
            ax.imshow(
                X_train[j].reshape(h, w),
                cmap="gray_r",
                extent=(left, left + 1, y_top - 1, y_top),
            )
            ax.text(
                left + 0.5,
                y_top - 1.05,
                f"{name(j)}\n{scored[j]:+.3g}",
                ha="center",
                va="top",
                fontsize=7,
            )
    ax.set_xlim(-0.1, x0 + top * (1 + gap))
    ax.set_ylim(-3.6, 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def plot_influence_graph(
    influence, *, top_k=3, query_names=None, train_names=None, ax=None
):
    """Queries and their most influential training rows as a bipartite graph.

    Each query (left) is joined to the ``top_k`` training rows (right) of
    largest absolute influence on it; green edges help, red edges hurt, and
    the width follows the size of the influence. This is the train-query
    view of FastIF's visualisation (Guo et al. 2021).

    Parameters
    ----------
    influence : array-like or sparse matrix of shape (n_query, n_train)
        :meth:`InfluenceScorer.influence` of a few queries (with ``top_k``,
        its CSR matrix); NaN entries and entries a sparse matrix does not
        hold are skipped.
    top_k : int, default=3
        Training rows joined to each query.
    query_names, train_names : list of str, default=None
        Node labels; default ``"query i"`` and ``"row j"``.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from skinfluence.plotting import plot_influence_graph
    >>> infl = np.array([[0.9, -0.1, 0.0], [0.0, 0.2, -0.8]])
    >>> ax = plot_influence_graph(infl, top_k=1, ax=Figure().subplots())
    >>> sorted(t.get_text() for t in ax.texts)
    ['query 0', 'query 1', 'row 0', 'row 2']
    """
    infl = _influence_array(influence)
    if infl.ndim != 2:
        raise ValueError(
            f"influence must have shape (n_query, n_train); got {infl.shape}."
        )
    if not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer; got {top_k!r}.")
    n_query, n_train = infl.shape
    size = np.nan_to_num(np.abs(infl), nan=-1.0)
    k = min(top_k, n_train)
    picks = np.argsort(-size, axis=1, kind="stable")[:, :k]
    edges = [(q, j) for q in range(n_query) for j in picks[q] if size[q, j] > 0]
    ax = _axes(ax)
    qy = np.linspace(1, 0, n_query) if n_query > 1 else np.array([0.5])
    # Order the training nodes by the mean height of their queries, which
    # keeps edges from crossing where it can.
    nodes = sorted({j for _, j in edges})
    mean_y = {j: np.mean([qy[q] for q, jj in edges if jj == j]) for j in nodes}
    nodes.sort(key=lambda j: -mean_y[j])
    ty = np.linspace(1, 0, len(nodes)) if len(nodes) > 1 else np.array([0.5])
    pos = {j: ty[i] for i, j in enumerate(nodes)}
    biggest = max((size[q, j] for q, j in edges), default=1.0)
    for q, j in edges:
        v = infl[q, j]
        ax.plot(
            [0, 1],
            [qy[q], pos[j]],
            color=GREEN if v > 0 else RED,
            lw=0.5 + 3.5 * abs(v) / biggest,
            alpha=0.8,
            zorder=1,
        )
    ax.scatter(np.zeros(n_query), qy, s=60, color="C0", zorder=2)
    ax.scatter(np.ones(len(nodes)), ty, s=60, color=GREY, zorder=2)
    for q in range(n_query):
        label = f"query {q}" if query_names is None else str(query_names[q])
        ax.text(-0.04, qy[q], label, ha="right", va="center", fontsize=8)
    for j in nodes:
        label = f"row {j}" if train_names is None else str(train_names[j])
        ax.text(1.04, pos[j], label, ha="left", va="center", fontsize=8)
    ax.set_xlim(-0.45, 1.45)
    ax.set_ylim(-0.08, 1.08)
    ax.axis("off")
    ax.set_title("queries (left) and their most influential training rows")
    return ax


def removal_curve(
    estimator,
    X,
    y,
    scores,
    *,
    X_test,
    y_test,
    fractions=(0.0, 0.05, 0.1, 0.15, 0.2, 0.3),
    n_random=5,
    scoring=None,
    random_state=None,
):
    """Test metric of ``estimator`` refitted after removing the rows of
    highest score, against removing the same number of random rows.

    Parameters
    ----------
    estimator : estimator
        Cloned and refitted for every point (any scikit-learn estimator).
    X, y : array-like
        Training rows.
    scores : array-like of shape (n_samples,)
        Rows are removed in decreasing order of score: pass noise scores, or
        minus the influence to remove the most harmful rows first.
    X_test, y_test : array-like
        Rows the metric is measured on.
    fractions : sequence of float in [0, 1), default=(0, .05, .1, .15, .2, .3)
        Fractions of training rows removed.
    n_random : int, default=5
        Random removals averaged at every fraction.
    scoring : str, callable or None, default=None
        As in :func:`sklearn.metrics.check_scoring`; None is the estimator's
        ``score`` (accuracy for classifiers).
    random_state : int, RandomState or None, default=None
        Seeds the random removals.

    Returns
    -------
    curve : :class:`~sklearn.utils.Bunch`
        ``fractions``, ``by_score`` (metric after removing by score),
        ``random_mean`` and ``random_std`` (over the random removals), and
        ``metric`` (its name), for :func:`plot_removal_curve`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.plotting import removal_curve
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 2)); y = (X[:, 0] > 0).astype(int)
    >>> curve = removal_curve(LogisticRegression(), X, y, rng.random(80),
    ...                       X_test=X, y_test=y, fractions=(0, 0.1), n_random=2)
    >>> curve.by_score.shape, curve.random_mean.shape
    ((2,), (2,))
    """
    from sklearn.metrics import check_scoring

    s = _vector("scores", scores, len(y))
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or np.any((fractions < 0) | (fractions >= 1)):
        raise ValueError(
            f"fractions must be a sequence of values in [0, 1); got {fractions}."
        )
    if not isinstance(n_random, numbers.Integral) or n_random < 1:
        raise ValueError(f"n_random must be a positive integer; got {n_random!r}.")
    rng = check_random_state(random_state)
    scorer = check_scoring(estimator, scoring=scoring)
    order = np.argsort(-s, kind="stable")
    n = len(y)

    def fitted_metric(keep):
        # Rows by position, in the caller's containers (a DataFrame keeps its
        # feature names, which X_test then matches).
        model = clone(estimator).fit(_safe_indexing(X, keep), _safe_indexing(y, keep))
        return float(scorer(model, X_test, y_test))

    by_score, rand = [], []
    for f in fractions:
        m = int(round(f * n))
        by_score.append(fitted_metric(np.sort(order[m:])))
        rand.append(
            [
                fitted_metric(np.sort(rng.permutation(n)[m:]))
                for _ in range(n_random if m else 1)
            ]
        )
    name = scoring if isinstance(scoring, str) else "score"
    if scoring is None and hasattr(estimator, "predict_proba"):
        name = "accuracy"
    return Bunch(
        fractions=fractions,
        by_score=np.array(by_score),
        random_mean=np.array([np.mean(r) for r in rand]),
        random_std=np.array([np.std(r) for r in rand]),
        metric=name,
    )


def plot_removal_curve(curve, *, label="removed by score", ax=None):
    """Draw a :func:`removal_curve`: the metric after removing rows by score,
    and the mean and spread of random removal.

    Parameters
    ----------
    curve : Bunch
        What :func:`removal_curve` returns.
    label : str, default="removed by score"
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from sklearn.utils import Bunch
    >>> from skinfluence.plotting import plot_removal_curve
    >>> curve = Bunch(fractions=np.array([0, .1]), by_score=np.array([.8, .9]),
    ...               random_mean=np.array([.8, .79]), random_std=np.zeros(2),
    ...               metric="accuracy")
    >>> plot_removal_curve(curve, ax=Figure().subplots()).get_ylabel()
    'test accuracy'
    """
    for key in ("fractions", "by_score", "random_mean"):
        if key not in curve:
            raise ValueError(
                f"curve has no {key!r}; pass what skinfluence.plotting.removal_curve "
                "returns."
            )
    ax = _axes(ax)
    f = np.asarray(curve["fractions"])
    mean = np.asarray(curve["random_mean"])
    std = np.asarray(curve.get("random_std", np.zeros_like(mean)))
    ax.plot(f, curve["by_score"], "o-", color=GREEN, label=label)
    ax.plot(f, mean, "s--", color=GREY, label="removed at random")
    ax.fill_between(f, mean - std, mean + std, color=GREY, alpha=0.25, lw=0)
    ax.set_xlabel("fraction of training rows removed")
    ax.set_ylabel(f"test {curve.get('metric', 'score')}")
    ax.legend(frameon=False)
    return ax


class LabelIssuesDisplay:
    """Noise scores of a fitted :class:`~skinfluence.NoisyLabelFilter`, with
    the precision-recall curve when the wrong labels are known.

    Build it with :meth:`from_estimator`; like scikit-learn's ``Display``
    objects it keeps what it drew in ``ax_`` and ``figure_``.

    Parameters
    ----------
    noise_scores : ndarray of shape (n_samples,)
    label_issues : ndarray of bool, shape (n_samples,)
    is_noisy : ndarray of bool, shape (n_samples,), default=None

    Attributes
    ----------
    ax_ : matplotlib Axes or ndarray of Axes
        One axes, or two (scores, precision-recall) when ``is_noisy`` is set.
    figure_ : matplotlib Figure

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import NoisyLabelFilter
    >>> from skinfluence.datasets import load_noisy
    >>> from skinfluence.plotting import LabelIssuesDisplay
    >>> data = load_noisy("wine", rate=0.1, random_state=0)
    >>> filt = NoisyLabelFilter(LogisticRegression(), n_repeats=1, random_state=0)
    >>> filt = filt.fit(data.data, data.target)
    >>> display = LabelIssuesDisplay.from_estimator(filt, is_noisy=data.is_noisy)
    >>> len(display.ax_)
    2
    """

    def __init__(self, noise_scores, label_issues, *, is_noisy=None):
        self.noise_scores = noise_scores
        self.label_issues = label_issues
        self.is_noisy = is_noisy

    @classmethod
    def from_estimator(cls, estimator, *, is_noisy=None, ax=None):
        """Draw the noise scores of a fitted ``NoisyLabelFilter``.

        Parameters
        ----------
        estimator : NoisyLabelFilter
            Fitted (it has ``noise_scores_`` and ``label_issues_``).
        is_noisy : array-like of bool, default=None
            Known wrong labels, for the precision-recall panel.
        ax : matplotlib Axes or pair of Axes, default=None

        Returns
        -------
        display : LabelIssuesDisplay
        """
        if not hasattr(estimator, "noise_scores_"):
            raise ValueError(
                f"{type(estimator).__name__} has no noise_scores_; pass a "
                "NoisyLabelFilter fitted with fit or fit_resample."
            )
        return cls(
            estimator.noise_scores_, estimator.label_issues_, is_noisy=is_noisy
        ).plot(ax=ax)

    def plot(self, ax=None):
        """Draw on ``ax`` (two axes when ``is_noisy`` is set); returns self."""
        panels = 1 if self.is_noisy is None else 2
        if ax is None:
            fig, ax = _pyplot().subplots(
                1, panels, figsize=(5.5 * panels, 4), layout="constrained"
            )
        axes = np.atleast_1d(ax)
        if len(axes) != panels:
            raise ValueError(
                f"ax must hold {panels} axes here (is_noisy "
                f"{'given' if panels == 2 else 'not given'}); got {len(axes)}."
            )
        plot_noise_scores(
            self.noise_scores, self.label_issues, is_noisy=self.is_noisy, ax=axes[0]
        )
        if panels == 2:
            plot_precision_recall(
                self.is_noisy, self.noise_scores, flagged=self.label_issues, ax=axes[1]
            )
        self.ax_ = axes[0] if panels == 1 else axes
        self.figure_ = axes[0].figure
        return self


class RemovalCurveDisplay:
    """Test metric after removing rows by score, against random removal.

    Build it with :meth:`from_estimator`, which computes
    :func:`removal_curve` and draws it with :func:`plot_removal_curve`.

    Parameters
    ----------
    curve : Bunch
        What :func:`removal_curve` returns.

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence.plotting import RemovalCurveDisplay
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 2)); y = (X[:, 0] > 0).astype(int)
    >>> display = RemovalCurveDisplay.from_estimator(
    ...     LogisticRegression(), X, y, rng.random(80), X_test=X, y_test=y,
    ...     fractions=(0, 0.1), n_random=2)
    >>> display.curve.by_score.shape
    (2,)
    """

    def __init__(self, curve):
        self.curve = curve

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        scores,
        *,
        X_test,
        y_test,
        label="removed by score",
        ax=None,
        **curve_params,
    ):
        """Compute :func:`removal_curve` (``curve_params`` go to it) and draw it.

        Returns
        -------
        display : RemovalCurveDisplay
        """
        curve = removal_curve(
            estimator, X, y, scores, X_test=X_test, y_test=y_test, **curve_params
        )
        return cls(curve).plot(label=label, ax=ax)

    def plot(self, *, label="removed by score", ax=None):
        """Draw on ``ax``; returns self."""
        self.ax_ = plot_removal_curve(self.curve, label=label, ax=ax)
        self.figure_ = self.ax_.figure
        return self

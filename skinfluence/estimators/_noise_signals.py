"""The noise detector's signals: class probabilities of held-out rows from a
fold model, its influence vote and neighbour votes, the confident joint of
given and true labels, and the noise-transition posterior built on it."""

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.neighbors import KNeighborsClassifier

from ..utils._torch import MemoryBudget

__all__ = [
    "SHARPNESS_GRID",
    "SIGNALS",
    "VOTES",
    "confident_joint_count",
    "fit_sharpness",
    "influence_vote",
    "label_error_posterior",
    "neighbor_vote",
    "noise_transition",
    "percentile_rank",
    "predicted_proba",
    "sharpen",
]

SIGNALS = {"proba", "influence", "neighbors", "input_neighbors", "self_influence"}
# Probability-like signals, averaged into the cross-fitted class probabilities.
VOTES = {"proba", "influence", "neighbors", "input_neighbors"}
# Powers tried for a vote's sharpness: 1/4 (softer) to 16 (harder).
SHARPNESS_GRID = 2.0 ** np.arange(-2, 5)
# Share of a vote spread evenly over the classes before sharpening, so that
# a class no neighbour voted for keeps a small probability.
_FLOOR = 1e-3


def sharpen(P, power):
    """The rows of ``P`` (probabilities) raised to ``power`` and renormalised,
    after mixing a small uniform floor into them. For a softmax vote this is
    the softmax at ``1 / power`` of its temperature (up to the floor)."""
    k = P.shape[1]
    Q = ((1.0 - _FLOOR) * P + _FLOOR / k) ** power
    return Q / Q.sum(axis=1, keepdims=True)


def fit_sharpness(P, y_idx, grid=SHARPNESS_GRID):
    """The power of ``grid`` whose :func:`sharpen`-ed ``P`` has the lowest
    Brier score against the given labels ``y_idx`` (ties: the smallest)."""
    rows = np.arange(len(y_idx))
    best, best_score = None, np.inf
    for power in grid:
        Q = sharpen(P, power)
        Q[rows, y_idx] -= 1.0
        score = np.einsum("ij,ij->", Q, Q)
        if score < best_score:
            best, best_score = float(power), score
    return best


def predicted_proba(scorer, X):
    """The fold model's class probabilities of rows ``X`` (one-hot
    predictions for a model without probabilities)."""
    if hasattr(scorer, "predict_proba"):
        return np.asarray(scorer.predict_proba(X), dtype=np.float64)
    pred = scorer.predict(X)
    return (pred[:, None] == scorer.classes_[None, :]).astype(np.float64)


def influence_vote(scorer, X, n_neighbors, temperature, exclude=None):
    """Class probabilities of rows ``X`` from the influence of ``scorer``'s
    training rows on each candidate label (see
    :class:`~skinfluence.NoisyLabelFilter`).

    ``exclude`` gives, for in-sample use, the training-row index of each row
    of ``X``, whose influence on itself is left out.
    """
    classes = scorer.classes_
    n_train = scorer.n_train_
    n_classes = len(classes)
    # Norms floored at 1e-15: a zero gradient has zero influence, and its
    # cosine is then 0.
    norms_train = np.sqrt(np.maximum(scorer.self_influence_, 1e-30))
    k = min(n_neighbors, n_train - (exclude is not None))
    # Rows per block of candidate-label influences (rows x classes x train):
    # the float64 block, the scorer's own blocks of it and the cosine's
    # temporaries, about eight copies, in one chunk of the scorer's budget.
    budget = MemoryBudget(scorer.memory_budget)
    step = budget.rows_for(8 * 8 * n_classes * n_train)
    out = np.empty((len(X), n_classes))
    for start in range(0, len(X), step):
        rows = slice(start, min(len(X), start + step))
        Xq = np.repeat(X[rows], n_classes, axis=0)
        cq = np.tile(classes, len(Xq) // n_classes)
        rho = np.asarray(scorer.influence(Xq, cq), dtype=np.float64)
        norms = np.sqrt(np.maximum(scorer.self_influence(Xq, cq), 1e-30))
        # Cosine in the method's metric, influence / (||g_q|| ||g_j||), in
        # place: the blocks are large and every temporary is a full copy.
        rho /= norms[:, None]
        rho /= norms_train[None, :]
        rho = rho.reshape(-1, n_classes, n_train)
        if exclude is not None:
            rho[np.arange(len(rho)), :, exclude[rows]] = -np.inf
        top = torch.from_numpy(rho).topk(k, dim=2, sorted=False).values.numpy()
        support = top.mean(axis=2) / temperature
        support -= support.max(axis=1, keepdims=True)
        weights = np.exp(support)
        out[rows] = weights / weights.sum(axis=1, keepdims=True)
    return out


def neighbor_vote(F_train, y_train, F_test, cols, n_neighbors, in_sample):
    """Distance-weighted vote of the ``n_neighbors`` nearest training rows,
    as probabilities over the classes ``cols``.

    ``F_train``/``F_test`` are the rows in the space of the vote (inputs, or
    a fold model's penultimate features). ``in_sample`` says the test rows
    are the training rows, whose own vote is then left out.
    """
    k = min(n_neighbors + in_sample, len(y_train))
    knn = KNeighborsClassifier(k, weights="distance").fit(F_train, y_train)
    if in_sample:
        dist, ind = knn.kneighbors(F_test)
        dist, ind = dist[:, 1:], ind[:, 1:]
        w = 1.0 / np.maximum(dist, 1e-12)
        vote = np.zeros((len(F_test), len(cols)))
        pos = np.searchsorted(cols, y_train[ind])
        np.add.at(vote, (np.arange(len(F_test))[:, None], pos), w)
        return vote / vote.sum(axis=1, keepdims=True)
    proba = knn.predict_proba(F_test)
    out = np.zeros((len(F_test), len(cols)))
    out[:, np.searchsorted(cols, knn.classes_)] = proba
    return out


def _confident_classes(P, y_idx):
    """Confident learning's count of each row: the class of highest
    probability among those whose probability reaches the class's mean
    probability over its own labelled rows, and whether any class does."""
    n_classes = P.shape[1]
    thresholds = np.array(
        [
            P[y_idx == j, j].mean() if (y_idx == j).any() else np.inf
            for j in range(n_classes)
        ]
    )
    confident = np.where(P >= thresholds[None, :], P, -np.inf)
    return confident.argmax(axis=1), np.isfinite(confident).any(axis=1)


def confident_joint_count(P, y_idx):
    """Number of rows counted off the diagonal of the confident joint.

    Confident learning (Northcutt, Jiang, Chuang 2021): the threshold of
    class ``j`` is the mean probability of ``j`` over the rows labelled
    ``j``; a row is counted under the class of highest probability among the
    classes whose probability reaches their threshold, and it is an
    off-diagonal count when that class is not its given label. Rows with no
    class at its threshold are not counted.
    """
    true, counted = _confident_classes(P, y_idx)
    return int((counted & (true != y_idx)).sum())


def noise_transition(P, y_idx, pseudo_count=1.0):
    """Estimated noise transition ``T[j, c]`` = P(given label ``c`` | true
    class ``j``) from the confident joint of ``P`` and the given labels.

    The confident joint ``C[c, j]`` counts the rows labelled ``c`` whose
    confident class (see :func:`confident_joint_count`) is ``j``. Each row
    ``c`` is calibrated to the number of rows labelled ``c`` (the rows no
    class is confident about are spread like the counted ones), every cell
    gets ``pseudo_count`` rows more (so a class nothing was counted under
    has a uniform row, and no transition is impossible), and ``T`` is the
    transposed joint normalised over the given labels.
    """
    n_classes = P.shape[1]
    true, counted = _confident_classes(P, y_idx)
    joint = np.zeros((n_classes, n_classes))
    np.add.at(joint, (y_idx[counted], true[counted]), 1.0)
    given = np.bincount(y_idx, minlength=n_classes).astype(np.float64)
    totals = joint.sum(axis=1)
    joint *= np.divide(given, totals, out=np.zeros(n_classes), where=totals > 0)[
        :, None
    ]
    T = joint.T + pseudo_count
    return T / T.sum(axis=1, keepdims=True)


def label_error_posterior(P, y_idx, T):
    """Probability that each row's given label is wrong when ``P`` are its
    class probabilities and labels are flipped by ``T`` (``T[j, c]`` = P(given
    ``c`` | true ``j``)): ``sum_{j != y} P[j] T[j, y] / sum_j P[j] T[j, y]``."""
    rows = np.arange(len(y_idx))
    W = P * T[:, y_idx].T
    total = W.sum(axis=1)
    return 1.0 - W[rows, y_idx] / np.maximum(total, np.finfo(np.float64).tiny)


def percentile_rank(values):
    """Ranks of ``values`` scaled to (0, 1] (ties share their mean rank)."""
    return rankdata(values) / len(values)

"""The trimmed loss objective against hand-written float64 references.

The query gradient is checked against ``torch.autograd.grad`` of the trimmed
sum written out here, and the influence-function scores against actual
leave-one-out retraining measured on the same (fixed) set of kept rows.
"""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from skinfluence import InfluenceScorer, InfluentialSubsetSelector, LossObjective
from skinfluence.datasets import load_noisy, make_noisy_labels

D = torch.float64


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(260, 3))
    y = (X @ [1.5, -1.0, 0.5] + 0.5 * rng.normal(size=260) > 0).astype(int)
    # Noisy query labels: the rows the trimming should leave out.
    yq, _ = make_noisy_labels(None, y[200:], 0.2, random_state=0)
    return X[:200], y[:200], X[200:], yq


def _fit(X, y):
    return LogisticRegression(C=0.5, tol=1e-12, max_iter=5000).fit(X, y)


def _row_losses(est, X, y, w=None, b=None):
    if w is None:
        w = torch.tensor(est.coef_[0], dtype=D)
        b = torch.tensor(est.intercept_[0], dtype=D)
    z = torch.as_tensor(X, dtype=D) @ w + b
    return torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.as_tensor(y, dtype=D), reduction="none"
    )


def _kept(est, X, y, trim):
    losses = _row_losses(est, X, y).numpy()
    n_trim = int(trim * len(y))
    return np.sort(np.argsort(-losses, kind="stable")[n_trim:])


@pytest.mark.parametrize("trim", [0.0, 0.1, 0.25])
def test_trimmed_query_gradient_matches_autograd(problem, trim):
    X, y, Xq, yq = problem
    est = _fit(X, y)
    kept = _kept(est, Xq, yq, trim)
    w = torch.tensor(est.coef_[0], dtype=D, requires_grad=True)
    b = torch.tensor(est.intercept_[0], dtype=D, requires_grad=True)

    def grad(value):
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, [w, b])])

    gq = grad(_row_losses(None, Xq[kept], yq[kept], w, b).sum())
    G = torch.stack(
        [
            grad(_row_losses(None, X[j : j + 1], y[j : j + 1], w, b).sum())
            for j in range(len(X))
        ]
    )
    scorer = InfluenceScorer(
        FrozenEstimator(est),
        method="tracin",
        objective=LossObjective(trim=trim),
        dtype="float64",
    ).fit(X, y)
    got = scorer.influence(Xq, yq, aggregate=True)
    np.testing.assert_allclose(got, (G @ gq).numpy(), rtol=1e-9, atol=1e-12)
    # Per query row: the trimmed rows measure nothing, the others their loss.
    rows = scorer.influence(Xq, yq)
    assert len(kept) == len(yq) - int(trim * len(yq))
    np.testing.assert_array_equal(np.flatnonzero(np.abs(rows).sum(1) > 0), kept)
    np.testing.assert_allclose(rows.sum(0), got, rtol=1e-9, atol=1e-12)


def test_trimmed_influence_function_tracks_leave_one_out(problem):
    """Sign and scale: the influence on the trimmed loss predicts the change
    of the loss over the kept rows when a training row is removed."""
    X, y, Xq, yq = problem
    trim = 0.2
    scorer = InfluenceScorer(
        _fit(X, y),
        method="influence_function",
        objective=LossObjective(trim=trim),
        dtype="float64",
    ).fit(X, y)
    pred = scorer.influence(Xq, yq, aggregate=True)
    kept = _kept(scorer.estimator_, Xq, yq, trim)

    def trimmed(model):
        return float(_row_losses(model, Xq[kept], yq[kept]).sum())

    base = trimmed(scorer.estimator_)
    actual = np.array(
        [
            trimmed(_fit(np.delete(X, j, 0), np.delete(y, j))) - base
            for j in range(len(X))
        ]
    )
    assert spearmanr(pred, actual).statistic > 0.95
    np.testing.assert_allclose(pred, actual, atol=0.1 * np.abs(actual).max())


@pytest.mark.parametrize("trim", [1.0, -0.1, "half"])
def test_bad_trim(problem, trim):
    X, y, Xq, yq = problem
    scorer = InfluenceScorer(_fit(X, y), objective=LossObjective(trim=trim)).fit(X, y)
    with pytest.raises(ValueError, match="trim"):
        scorer.influence(Xq, yq)


def test_trimming_keeps_noisy_validation_rows_from_steering_the_selection():
    # Validation rows carry the same 20% flipped labels as the training rows.
    d = load_noisy("digits", rate=0.2, test_size=0.2, random_state=0)
    X, y = d.data, d.target
    flipped = {}
    for trim in [0.0, 0.2]:
        sel = InfluentialSubsetSelector(
            LogisticRegression(max_iter=2000),
            objective=LossObjective(trim=trim),
            strategy="keep_helpful",
            fraction=0.9,
            cv=5,
            random_state=0,
        ).fit(X, y)
        dropped = np.setdiff1d(np.arange(len(y)), sel.sample_indices_)
        flipped[trim] = d.is_noisy[dropped].mean()
        if trim:
            # The selection optimises the validation loss it measures:
            # refitting without the dropped rows lowers the clean test loss.
            idx = sel.sample_indices_
            before = log_loss(
                d.target_test,
                LogisticRegression(max_iter=2000).fit(X, y).predict_proba(d.data_test),
            )
            after = log_loss(
                d.target_test,
                LogisticRegression(max_iter=2000)
                .fit(X[idx], y[idx])
                .predict_proba(d.data_test),
            )
            assert after < before
    assert flipped[0.2] > max(flipped[0.0], 0.95)


def test_trim_is_a_nested_parameter_of_the_selector():
    sel = InfluentialSubsetSelector(objective=LossObjective())
    assert sel.set_params(objective__trim=0.3).get_params()["objective__trim"] == 0.3

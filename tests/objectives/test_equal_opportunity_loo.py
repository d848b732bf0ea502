"""Equal opportunity against actual leave-one-out retraining."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceFunction, InfluenceScorer
from skinfluence.datasets import make_fairness_problem


def _f_eop(model, X, y, s):
    """The seed paper's f_EOp: mean log-loss over {s=0, y=1} minus that over
    {s=1, y=1}, in NumPy."""
    z = model.decision_function(X)
    loss = np.logaddexp(0.0, z) - y * z
    pos = y == 1
    return loss[pos & (s == 0)].mean() - loss[pos & (s == 1)].mean()


def test_predicted_change_of_the_gap_matches_leave_one_out_retraining():
    X, y, s = make_fairness_problem(n_samples=300, random_state=0)
    Xtr, ytr = X[:150], y[:150]
    Xv, yv, sv = X[150:], y[150:], s[150:]
    model = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000)
    scorer = InfluenceScorer(
        model,
        method=InfluenceFunction(damping=0.0, solver="exact"),
        objective="equal_opportunity",
        dtype="float64",
    ).fit(Xtr, ytr)
    predicted = scorer.influence(Xv, yv, sensitive_features=sv)
    base = _f_eop(scorer.estimator_, Xv, yv, sv)
    # The fitted objective keeps the gap it measured, with the paper's sign.
    assert scorer.objective_.gap_ == pytest.approx(base, rel=1e-9)
    assert scorer.objective_.pair_ == (0, 1)
    rng = np.random.default_rng(0)
    rows = np.unique(
        np.r_[np.argsort(-np.abs(predicted))[:6], rng.choice(150, 6, replace=False)]
    )
    actual = np.array(
        [
            _f_eop(
                clone(model).fit(np.delete(Xtr, j, 0), np.delete(ytr, j)), Xv, yv, sv
            )
            - base
            for j in rows
        ]
    )
    assert np.corrcoef(predicted[rows], actual)[0, 1] > 0.99
    big = np.abs(actual) > 0.3 * np.abs(actual).max()
    assert np.all(np.sign(predicted[rows][big]) == np.sign(actual[big]))
    np.testing.assert_allclose(predicted[rows][big], actual[big], rtol=0.15, atol=0.0)

"""TracIn and the exact influence function against explicit references."""

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import pearsonr, spearmanr
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceFunction, InfluenceScorer, TracIn
from skinfluence.exceptions import SingularHessianError


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))[:90]
    X = StandardScaler().fit_transform(X)[idx][:, :10]
    return X[:80], y[idx][:80], X[80:], y[idx][80:]


def _log_loss(est, X, y):
    p = est.predict_proba(X)[np.arange(len(y)), y]
    return -np.log(p)


def _logistic_grads(est, X, y):
    """Per-row gradients of log(1 + exp(-s z)) w.r.t. [w, b], in numpy."""
    Xb = np.hstack([X, np.ones((len(X), 1))])
    p = expit(X @ est.coef_[0] + est.intercept_[0])
    return (p - y)[:, None] * Xb


def _logistic_hessian(est, X, C):
    """Hessian of the mean of sum(log-loss) + ||w||^2 / (2C) w.r.t. [w, b]."""
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1))])
    p = expit(X @ est.coef_[0] + est.intercept_[0])
    H = (Xb * (p * (1 - p))[:, None]).T @ Xb
    H[np.arange(d), np.arange(d)] += 1.0 / C
    return H / n


LR = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12)


def test_exact_influence_function_tracks_leave_one_out_retraining(cancer):
    X, y, Xq, yq = cancer
    scorer = InfluenceScorer(
        clone(LR), method=InfluenceFunction(damping=0.0), dtype="float64"
    ).fit(X, y)
    predicted = scorer.influence(Xq, yq)

    base = _log_loss(scorer.estimator_, Xq, yq)
    actual = np.empty((len(yq), len(y)))
    for j in range(len(y)):
        keep = np.arange(len(y)) != j
        est_j = clone(LR).fit(X[keep], y[keep])
        actual[:, j] = _log_loss(est_j, Xq, yq) - base

    pearson = [pearsonr(predicted[q], actual[q])[0] for q in range(len(yq))]
    spearman = [spearmanr(predicted[q], actual[q])[0] for q in range(len(yq))]
    assert np.mean(pearson) > 0.95 and min(pearson) > 0.85
    assert np.mean(spearman) > 0.9
    # Same sign and scale, not just correlated (positive = helpful); the
    # first-order estimate undershoots the largest effects a little.
    slope = (predicted * actual).sum() / (predicted**2).sum()
    assert 0.75 < slope < 1.5


def test_exact_influence_function_matches_explicit_formula(cancer):
    X, y, Xq, yq = cancer
    C = 0.5
    est = LogisticRegression(C=C, tol=1e-12)
    scorer = InfluenceScorer(
        est, method=InfluenceFunction(damping=0.0), dtype="float64"
    ).fit(X, y)
    fitted = scorer.estimator_
    G = _logistic_grads(fitted, X, y)
    Q = _logistic_grads(fitted, Xq, yq)
    H = _logistic_hessian(fitted, X, C)
    expected = Q @ np.linalg.solve(H, G.T) / len(y)
    np.testing.assert_allclose(scorer.influence(Xq, yq), expected, rtol=1e-8)
    self_expected = np.einsum("ij,ji->i", G, np.linalg.solve(H, G.T)) / len(y)
    np.testing.assert_allclose(scorer.self_influence_, self_expected, rtol=1e-8)
    np.testing.assert_allclose(
        scorer.self_influence(Xq, yq),
        np.einsum("ij,ji->i", Q, np.linalg.solve(H, Q.T)) / len(y),
        rtol=1e-8,
    )

    # Damping shifts the Hessian's diagonal.
    damped = InfluenceScorer(
        est, method=InfluenceFunction(damping=0.3), dtype="float64"
    ).fit(X, y)
    H_damped = H + 0.3 * np.eye(H.shape[0])
    np.testing.assert_allclose(
        damped.influence(Xq, yq),
        Q @ np.linalg.solve(H_damped, G.T) / len(y),
        rtol=1e-8,
    )
    assert damped.method_.damping_ == 0.3


def test_tracin_matches_explicit_gradient_products(cancer):
    X, y, Xq, yq = cancer
    scorer = InfluenceScorer(LR, method=TracIn(), dtype="float64").fit(X, y)
    G = _logistic_grads(scorer.estimator_, X, y)
    Q = _logistic_grads(scorer.estimator_, Xq, yq)
    np.testing.assert_allclose(scorer.influence(Xq, yq), Q @ G.T, rtol=1e-9)
    np.testing.assert_allclose(scorer.self_influence_, (G**2).sum(1), rtol=1e-9)
    # float32 (the default) agrees to float32 precision.
    fast = InfluenceScorer(LR, method="tracin").fit(X, y)
    np.testing.assert_allclose(fast.influence(Xq, yq), Q @ G.T, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_zero_damping_on_singular_hessian_says_to_add_damping(cancer):
    X, y, _, _ = cancer
    # An exact copy of a feature gives the Hessian a null direction when the
    # model is unpenalised.
    X_dup = np.hstack([X, X[:, :1]])
    est = LogisticRegression(C=np.inf, solver="newton-cholesky", max_iter=5)
    with pytest.raises(SingularHessianError, match="Add damping: e.g. damping="):
        InfluenceScorer(est, method=InfluenceFunction(damping=0.0)).fit(X_dup, y)


def test_zero_damping_on_softmax_intercepts_raises_and_auto_damping_works():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, 60)
    # Adding one constant to every class's intercept leaves the softmax
    # unchanged: an exact null direction of the Hessian.
    with pytest.raises(SingularHessianError, match="damping"):
        InfluenceScorer(
            LogisticRegression(), method=InfluenceFunction(damping=0.0)
        ).fit(X, y)
    scorer = InfluenceScorer(LogisticRegression(), method="influence_function")
    scorer.fit(X, y)
    assert scorer.method_.damping_ > 0
    assert np.all(np.isfinite(scorer.influence(X[:3], y[:3])))


def test_negative_damping_is_rejected_with_the_parameter_name(cancer):
    X, y, _, _ = cancer
    with pytest.raises(ValueError, match="'damping' parameter.*-0.1"):
        InfluenceScorer(LR, method=InfluenceFunction(damping=-0.1)).fit(X, y)

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier

from skinfluence import InfluenceFunction, InfluenceScorer, NewtonLOO
from skinfluence.exceptions import UnsupportedEstimatorError


def _loo_ridge(X, y, Xq, yq, alpha):
    base = Ridge(alpha=alpha).fit(X, y)
    out = np.zeros((len(Xq), len(X)))
    self_loo = np.zeros(len(X))
    for j in range(len(X)):
        keep = np.arange(len(X)) != j
        m = Ridge(alpha=alpha).fit(X[keep], y[keep])
        out[:, j] = (m.predict(Xq) - yq) ** 2 - (base.predict(Xq) - yq) ** 2
        self_loo[j] = (
            (m.predict(X[j : j + 1]) - y[j]) ** 2
            - (base.predict(X[j : j + 1]) - y[j]) ** 2
        )[0]
    return base, out, self_loo


def test_exact_for_ridge():
    # One Newton step is exact on a quadratic objective.
    X, y = make_regression(40, 3, noise=1.0, random_state=0)
    base, loo, self_loo = _loo_ridge(X[:30], y[:30], X[30:], y[30:], 2.0)
    s = InfluenceScorer(
        FrozenEstimator(base), method=NewtonLOO(damping=0, n_steps=1), dtype="float64"
    ).fit(X[:30], y[:30])
    scale = np.abs(loo).max()
    np.testing.assert_allclose(s.influence(X[30:], y[30:]), loo, atol=1e-9 * scale)
    np.testing.assert_allclose(s.self_influence_, self_loo, atol=1e-9 * scale)


def _loo_logistic(X, y, Xq, yq, C=1.0):
    def fit(Xf, yf, init=None):
        m = LogisticRegression(
            C=C, solver="newton-cholesky", tol=1e-12, max_iter=500, warm_start=True
        )
        if init is not None:
            m.coef_, m.intercept_ = init.coef_.copy(), init.intercept_.copy()
        return m.fit(Xf, yf)

    def qloss(m):
        p = m.predict_proba(Xq)[np.arange(len(Xq)), np.searchsorted(m.classes_, yq)]
        return -np.log(p)

    base = fit(X, y)
    out = np.zeros((len(Xq), len(X)))
    for j in range(len(X)):
        keep = np.arange(len(X)) != j
        out[:, j] = qloss(fit(X[keep], y[keep], base)) - qloss(base)
    return base, out


@pytest.mark.parametrize("n_classes", [2, 3])
def test_newton_steps_converge_to_true_leave_one_out(n_classes):
    X, y = make_classification(
        70, 4, n_informative=3, n_redundant=0, n_classes=n_classes, random_state=1
    )
    base, loo = _loo_logistic(X[:60], y[:60], X[60:], y[60:])
    errors = []
    for n_steps in (1, 2, 8):
        s = InfluenceScorer(
            FrozenEstimator(base), method=NewtonLOO(n_steps=n_steps), dtype="float64"
        ).fit(X[:60], y[:60])
        errors.append(np.abs(s.influence(X[60:], y[60:]) - loo).max())
    # Each step holds the Hessian at the fitted parameters: the error falls
    # geometrically towards the true leave-one-out change.
    assert errors[0] < 0.3 * np.abs(loo).max()
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] < 0.01 * errors[0]


def test_auto_steps_takes_the_cheap_second_step(monkeypatch):
    from skinfluence.methods import _newton_loo

    X, y = make_classification(60, 4, n_informative=3, n_redundant=0, random_state=2)
    base = LogisticRegression().fit(X, y)
    kw = dict(dtype="float64")
    auto = InfluenceScorer(FrozenEstimator(base), method=NewtonLOO(), **kw).fit(X, y)
    two = InfluenceScorer(FrozenEstimator(base), method=NewtonLOO(n_steps=2), **kw)
    assert auto.method_.n_steps_ == 2
    np.testing.assert_allclose(
        auto.influence(X[:5], y[:5]), two.fit(X, y).influence(X[:5], y[:5])
    )
    # Past the budget (n_train^2 * p multiply-adds) "auto" keeps one step.
    monkeypatch.setattr(_newton_loo, "_AUTO_SECOND_STEP", 10.0)
    one = InfluenceScorer(FrozenEstimator(base), method=NewtonLOO(), **kw).fit(X, y)
    assert one.method_.n_steps_ == 1


def test_binary_linear_query_is_influence_function_over_one_minus_leverage():
    X, y = make_classification(80, 4, n_informative=3, n_redundant=0, random_state=0)
    est = FrozenEstimator(LogisticRegression(C=0.5).fit(X, y))
    kw = dict(dtype="float64")
    nl = InfluenceScorer(est, method=NewtonLOO(query="linear", n_steps=1), **kw).fit(
        X, y
    )
    inf = InfluenceScorer(est, method=InfluenceFunction(solver="exact"), **kw).fit(X, y)
    h = nl.method_.leverage_
    assert np.all((h > 0) & (h < 1))
    expected = inf.influence(X[:5], y[:5]) / (1 - h)
    np.testing.assert_allclose(nl.influence(X[:5], y[:5]), expected, rtol=1e-8)
    np.testing.assert_allclose(nl.self_influence_, inf.self_influence_ / (1 - h))


def test_float32_matches_float64():
    X, y = make_classification(80, 4, n_informative=3, n_redundant=0, random_state=0)
    est = FrozenEstimator(LogisticRegression().fit(X, y))
    a = InfluenceScorer(est, method="newton_loo", dtype="float32").fit(X, y)
    b = InfluenceScorer(est, method="newton_loo", dtype="float64").fit(X, y)
    np.testing.assert_allclose(
        a.influence(X[:4], y[:4]), b.influence(X[:4], y[:4]), rtol=1e-3, atol=1e-7
    )


def test_rejects_non_glm():
    X, y = make_classification(60, 4, random_state=0)
    mlp = MLPClassifier((4,), max_iter=50, random_state=0)
    with pytest.raises(UnsupportedEstimatorError, match="generalised linear"):
        InfluenceScorer(mlp, method="newton_loo").fit(X, y)


@pytest.mark.parametrize(
    "params, match", [({"n_steps": 0}, "n_steps"), ({"damping": -1.0}, "damping")]
)
def test_bad_parameters(params, match):
    X, y = make_classification(40, 3, n_informative=2, n_redundant=0, random_state=0)
    with pytest.raises(ValueError, match=match):
        InfluenceScorer(LogisticRegression(), method=NewtonLOO(**params)).fit(X, y)

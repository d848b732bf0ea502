"""Query gradients of every objective against float64 autograd by hand.

With ``method="tracin"`` the influence is ``g_q . g_j``, so each check
compares the scorer's output with products of gradients computed here from
the model's weights with plain ``torch.autograd.grad`` loops.
"""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from skinfluence import (
    CallableObjective,
    DemographicParity,
    InfluenceScorer,
    RobustnessObjective,
)
from skinfluence.datasets import make_fairness_problem

D = torch.float64


@pytest.fixture(scope="module")
def problem():
    X, y, s = make_fairness_problem(n_samples=120, n_features=4, random_state=1)
    return X[:60], y[:60], X[60:], y[60:], s[60:]


@pytest.fixture(scope="module")
def logistic(problem):
    X, y, *_ = problem
    return LogisticRegression(C=0.5, tol=1e-10, max_iter=1000).fit(X, y)


def _logistic_params(est):
    w = torch.tensor(est.coef_[0], dtype=D, requires_grad=True)
    b = torch.tensor(est.intercept_[0], dtype=D, requires_grad=True)
    return w, b


def means_pairs():
    return [("a", "b"), ("a", "c"), ("b", "c")]


def _grad(value, params):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, params)])


def _bce(z, y):
    return torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.as_tensor(y, dtype=D), reduction="none"
    )


def _train_grads_logistic(est, X, y):
    w, b = _logistic_params(est)
    rows = []
    for i in range(len(X)):
        z = torch.as_tensor(X[i], dtype=D) @ w + b
        rows.append(_grad(_bce(z.reshape(1), y[i : i + 1]).sum(), [w, b]))
    return torch.stack(rows)


def _scorer(est, objective, X, y):
    from sklearn.frozen import FrozenEstimator

    return InfluenceScorer(
        FrozenEstimator(est), method="tracin", objective=objective, dtype="float64"
    ).fit(X, y)


def _expected(gq, G):
    return (G @ gq).numpy() if gq.dim() == 1 else (gq @ G.T).numpy()


def test_demographic_parity_matches_autograd(problem, logistic):
    X, y, Xq, yq, s = problem
    got = _scorer(logistic, "demographic_parity", X, y).influence(
        Xq, yq, sensitive_features=s
    )
    w, b = _logistic_params(logistic)
    p = torch.sigmoid(torch.as_tensor(Xq, dtype=D) @ w + b)
    gap = p[s == 1].mean() - p[s == 0].mean()
    want = _expected(_grad(gap, [w, b]), _train_grads_logistic(logistic, X, y))
    assert got.shape == (60,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_demographic_parity_many_groups_uses_largest_pair(problem, logistic):
    X, y, Xq, yq, _ = problem
    groups = np.array(["c", "a", "b"])[np.arange(len(Xq)) % 3]
    got = _scorer(logistic, "demographic_parity", X, y).influence(
        Xq, yq, sensitive_features=groups
    )
    w, b = _logistic_params(logistic)
    p = torch.sigmoid(torch.as_tensor(Xq, dtype=D) @ w + b)
    means = {g: p[groups == g].mean() for g in "abc"}
    gaps = {ab: float((means[ab[1]] - means[ab[0]]).detach()) for ab in means_pairs()}
    lo, hi = max(gaps, key=lambda ab: abs(gaps[ab]))
    want = _expected(
        _grad(means[hi] - means[lo], [w, b]), _train_grads_logistic(logistic, X, y)
    )
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    obj = DemographicParity()
    from skinfluence.models import adapt

    view = adapt(logistic, len(X), "cpu", D)
    value = obj.value(
        view,
        torch.as_tensor(Xq, dtype=D),
        torch.as_tensor(yq),
        sensitive_features=groups,
    )
    assert obj.pair_ == (lo, hi)
    np.testing.assert_allclose(value, gaps[(lo, hi)], rtol=1e-12)


def test_equal_opportunity_matches_autograd(problem, logistic):
    X, y, Xq, yq, s = problem
    got = _scorer(logistic, "equal_opportunity", X, y).influence(
        Xq, yq, sensitive_features=s
    )
    w, b = _logistic_params(logistic)
    loss = _bce(torch.as_tensor(Xq, dtype=D) @ w + b, yq)
    pos = yq == 1
    # The seed paper's f_EOp: loss(s=0, y=1) - loss(s=1, y=1).
    gap = loss[pos & (s == 0)].mean() - loss[pos & (s == 1)].mean()
    want = _expected(_grad(gap, [w, b]), _train_grads_logistic(logistic, X, y))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_margin_robustness_matches_autograd(problem, logistic):
    X, y, Xq, yq, _ = problem
    got = _scorer(logistic, "robustness", X, y).influence(Xq[:7], yq[:7])
    w, b = _logistic_params(logistic)
    wd, bd = w.detach(), b.detach()
    xq = torch.as_tensor(Xq[:7], dtype=D)
    x_adv = xq - (1.3 * (xq @ wd + bd) / (wd @ wd)).unsqueeze(1) * wd
    # The attack crosses the boundary: every prediction flips.
    assert torch.all(torch.sign(x_adv @ wd + bd) == -torch.sign(xq @ wd + bd))
    gq = torch.stack(
        [
            _grad(_bce((x_adv[i] @ w + b).reshape(1), yq[i : i + 1]).sum(), [w, b])
            for i in range(7)
        ]
    )
    want = _expected(gq, _train_grads_logistic(logistic, X, y))
    assert got.shape == (7, 60)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_gradient_attacks_on_a_network_match_autograd(problem, attack):
    X, y, Xq, yq, _ = problem
    mlp = MLPClassifier(hidden_layer_sizes=(5,), max_iter=300, random_state=0).fit(X, y)
    eps, steps = 0.2, 4
    obj = RobustnessObjective(attack, epsilon=eps, steps=steps)
    got = _scorer(mlp, obj, X, y).influence(Xq[:5], yq[:5])

    params = [
        torch.tensor(a, dtype=D, requires_grad=True)
        for pair in zip(mlp.coefs_, mlp.intercepts_)
        for a in pair
    ]

    def loss(x, t):
        W1, b1, W2, b2 = params
        z = (torch.relu(x @ W1 + b1) @ W2 + b2).reshape(-1)
        return _bce(z, t).sum()

    def attack_row(x0, t):
        x = x0.clone()
        n_steps, size = (1, eps) if attack == "fgsm" else (steps, 2.5 * eps / steps)
        for _ in range(n_steps):
            x.requires_grad_(True)
            (g,) = torch.autograd.grad(loss(x, t), x)
            x = torch.clamp(x.detach() + size * g.sign(), x0 - eps, x0 + eps)
        return x.detach()

    def flat_grad(x, t):
        return _grad(loss(x, t), params)

    X_t, Xq_t = torch.as_tensor(X, dtype=D), torch.as_tensor(Xq, dtype=D)
    G = torch.stack([flat_grad(X_t[i : i + 1], y[i : i + 1]) for i in range(len(X))])
    gq = torch.stack(
        [
            flat_grad(attack_row(Xq_t[i : i + 1], yq[i : i + 1]), yq[i : i + 1])
            for i in range(5)
        ]
    )
    # The library's flat order differs (Linear blocks are [W | b]); the inner
    # products do not depend on it.
    want = _expected(gq, G)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-11)


def test_callable_objectives_match_autograd(problem, logistic):
    X, y, Xq, yq, _ = problem
    w, b = _logistic_params(logistic)
    G = _train_grads_logistic(logistic, X, y)
    xq = torch.as_tensor(Xq, dtype=D)

    def softmax_margin(output, target, temperature=1.0):
        return torch.logsumexp(output.reshape(-1) / temperature, dim=0)

    scorer = _scorer(logistic, softmax_margin, X, y)
    got = scorer.influence(Xq, yq, temperature=2.0)
    want = _expected(_grad(torch.logsumexp((xq @ w + b) / 2.0, dim=0), [w, b]), G)
    assert got.shape == (60,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)

    def squared_logit(output, target):
        return output.reshape(-1) ** 2

    per_row = _scorer(logistic, CallableObjective(squared_logit, per_row=True), X, y)
    got = per_row.influence(Xq[:4], yq[:4])
    gq = torch.stack([_grad((xq[i] @ w + b) ** 2, [w, b]) for i in range(4)])
    np.testing.assert_allclose(got, _expected(gq, G), rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_fairness_influence_function_tracks_leave_one_out(problem):
    """Sign and scale: the influence function predicts the change of the gap
    when a row is removed and the model refitted."""
    X, y, Xq, yq, s = problem
    est = LogisticRegression(C=0.5, tol=1e-10, max_iter=2000)
    scorer = InfluenceScorer(
        est,
        method="influence_function",
        objective="demographic_parity",
        dtype="float64",
    ).fit(X, y)
    pred = scorer.influence(Xq, yq, sensitive_features=s)

    def gap(model):
        p = model.predict_proba(Xq)[:, 1]
        return p[s == 1].mean() - p[s == 0].mean()

    base = gap(scorer.estimator_)
    actual = np.array(
        [
            gap(
                LogisticRegression(C=0.5, tol=1e-10, max_iter=2000).fit(
                    np.delete(X, j, 0), np.delete(y, j)
                )
            )
            - base
            for j in range(len(X))
        ]
    )
    assert spearmanr(pred, actual).statistic > 0.9
    np.testing.assert_allclose(pred, actual, atol=0.2 * np.abs(actual).max())

"""IPEnsemble: members' inner products by hand, noise, masks, bad input."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import scale

from skinfluence import InfluenceScorer, IPEnsemble, RobustnessObjective

D = torch.float64


@pytest.fixture(scope="module")
def fitted():
    X, y = load_breast_cancer(return_X_y=True)
    X, y = scale(X)[:80, :6], y[:80]
    return X, y, LogisticRegression(C=0.5).fit(X, y)


def _scorer(est, method, objective="loss"):
    return InfluenceScorer(
        FrozenEstimator(est), method=method, objective=objective, dtype="float64"
    )


def _grads(w, b, X, y, attack=None):
    """Per-row loss gradients at (w, b), optionally on margin-attacked rows."""
    rows = []
    for i in range(len(X)):
        wl, bl = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        x = torch.as_tensor(X[i], dtype=D)
        if attack:
            x = x - 1.3 * (x @ w + b) / (w @ w) * w
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            x @ wl + bl, torch.tensor(float(y[i]), dtype=D)
        )
        rows.append(
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, [wl, bl])])
        )
    return torch.stack(rows)


@pytest.mark.parametrize("objective", ["loss", "robustness"])
def test_sum_of_member_inner_products(fitted, objective):
    X, y, est = fitted
    scorer = _scorer(
        est, IPEnsemble(n_estimators=3, sigma=0.05, random_state=0), objective
    )
    scorer.fit(X, y)
    sets = scorer.method_.param_sets_
    assert len(sets) == 4 and sets[0][0] is None
    members = [
        (torch.tensor(est.coef_[0], dtype=D), torch.tensor(est.intercept_[0], dtype=D))
    ]
    members += [(p["0.weight"][0], p["0.bias"][0]) for p, _ in sets[1:]]
    attack = objective == "robustness"
    want_cross, want_self = 0, 0
    for w, b in members:
        G = _grads(w, b, X, y)
        # Query gradients (and the attack) at the member's own parameters.
        want_cross = want_cross + _grads(w, b, X[:3], y[:3], attack) @ G.T
        want_self = want_self + (G**2).sum(1)
    np.testing.assert_allclose(scorer.influence(X[:3], y[:3]), want_cross, rtol=1e-9)
    np.testing.assert_allclose(scorer.self_influence_, want_self, rtol=1e-9)


def test_noise_members_are_gaussian_and_seeded(fitted):
    X, y, est = fitted
    sigma = 0.01
    method = IPEnsemble(n_estimators=40, sigma=sigma, random_state=3)
    sets = _scorer(est, method).fit(X, y).method_.param_sets_
    base = torch.tensor(np.r_[est.coef_[0], est.intercept_], dtype=D)
    eps = torch.stack(
        [torch.cat([p["0.weight"][0], p["0.bias"]]) - base for p, _ in sets[1:]]
    )
    eps = eps / sigma
    # 280 draws: the mean is within 4 standard errors of 0, the spread of 1.
    assert abs(float(eps.mean())) < 0.25
    assert abs(float(eps.std()) - 1) < 0.2
    again = _scorer(est, method).fit(X, y).method_.param_sets_
    torch.testing.assert_close(again[5][0]["0.weight"], sets[5][0]["0.weight"])
    other = IPEnsemble(n_estimators=40, sigma=sigma, random_state=4)
    different = _scorer(est, other).fit(X, y).method_.param_sets_
    assert not torch.equal(different[5][0]["0.weight"], sets[5][0]["0.weight"])


def test_zero_noise_is_tracin_times_members(fitted):
    X, y, est = fitted
    plain = _scorer(est, "tracin").fit(X, y).self_influence_
    ens = _scorer(est, IPEnsemble(n_estimators=4, sigma=0.0)).fit(X, y).self_influence_
    np.testing.assert_allclose(ens, 5 * plain, rtol=1e-12)


def test_dropout_masks_zero_or_rescale_weights(fitted):
    X, y, est = fitted
    method = IPEnsemble(n_estimators=3, kind="dropout", dropout=0.5, random_state=0)
    sets = _scorer(est, method).fit(X, y).method_.param_sets_
    w = torch.tensor(est.coef_[0], dtype=D)
    for p, _ in sets[1:]:
        ratio = p["0.weight"][0] / w
        assert torch.all((ratio.abs() < 1e-12) | ((ratio - 2).abs() < 1e-12))
        torch.testing.assert_close(p["0.bias"], torch.tensor(est.intercept_, dtype=D))


def test_refits_use_the_estimators_randomness():
    from sklearn.linear_model import SGDClassifier

    X, y = load_breast_cancer(return_X_y=True)
    X, y = scale(X)[:80, :5], y[:80]
    method = IPEnsemble(n_estimators=2, kind="refits", random_state=0)
    est = SGDClassifier(loss="log_loss", random_state=0)
    scorer = InfluenceScorer(est, method=method).fit(X, y)
    sets = scorer.method_.param_sets_
    assert len(sets) == 3
    assert not torch.equal(sets[1][0]["0.weight"], sets[2][0]["0.weight"])


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_estimators": 0}, "'n_estimators' parameter of IPEnsemble must be"),
        ({"sigma": -0.1}, "'sigma' parameter of IPEnsemble must be"),
        ({"kind": "bagging"}, "'kind' parameter of IPEnsemble must be"),
        ({"dropout": 1.0}, "'dropout' parameter of IPEnsemble must be"),
    ],
)
def test_bad_parameters(fitted, params, match):
    X, y, est = fitted
    with pytest.raises(ValueError, match=match):
        _scorer(est, IPEnsemble(**params)).fit(X, y)


def test_checkpoint_members_need_checkpoints(fitted):
    X, y, est = fitted
    with pytest.raises(ValueError, match="records none"):
        _scorer(est, IPEnsemble(kind="checkpoints")).fit(X, y)


def test_robustness_objective_with_margin_needs_linear_classifier():
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = X @ np.array([1.0, -1.0, 0.5])
    from sklearn.linear_model import Ridge

    scorer = InfluenceScorer(Ridge(), objective=RobustnessObjective("margin")).fit(X, y)
    with pytest.raises(ValueError, match="attack='margin' needs a linear classifier"):
        scorer.influence(X[:2], y[:2])

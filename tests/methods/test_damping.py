"""The automatic damping rule on convex and indefinite Hessians."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.neural_network import MLPClassifier

from skinfluence import InfluenceFunction, InfluenceScorer
from skinfluence.exceptions import SkinfluenceWarning
from skinfluence.methods.ihvp._base import (
    AUTO_DAMPING_FRACTION,
    INDEFINITE_MARGIN,
    resolve_damping,
)


class ExplicitHessian:
    """Stand-in for a HessianProblem whose Hessian is a known matrix."""

    def __init__(self, H):
        self.H = H
        self.p = H.shape[0]
        self.dtype, self.device = H.dtype, H.device
        self.n_hvp = 0

    def hvp(self, V):
        self.n_hvp += 1
        return V @ self.H


def _matrix(evals, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(
        torch.randn(len(evals), len(evals), generator=g, dtype=torch.float64)
    )
    return (Q * torch.as_tensor(evals, dtype=torch.float64)) @ Q.T


def test_convex_hessian_keeps_the_trace_rule_without_warning(recwarn):
    evals = np.linspace(0.01, 2.0, 40)
    H = _matrix(evals)
    expected = AUTO_DAMPING_FRACTION * evals.sum() / len(evals)
    assert resolve_damping(ExplicitHessian(H), "auto", H=H) == pytest.approx(expected)
    # Without H: Hutchinson trace and a Lanczos look at the spectrum.
    gen = torch.Generator().manual_seed(0)
    got = resolve_damping(ExplicitHessian(H), "auto", generator=gen, n_probes=200)
    assert got == pytest.approx(expected, rel=0.3)
    assert not [w for w in recwarn if issubclass(w.category, SkinfluenceWarning)]


def test_explicit_damping_is_used_as_given():
    H = _matrix(np.linspace(-1.0, 1.0, 10))
    assert resolve_damping(ExplicitHessian(H), 0.25, H=H) == 0.25


@pytest.mark.parametrize("formed", [True, False], ids=["exact", "lanczos"])
def test_indefinite_hessian_lifts_auto_damping_to_positive_definite(formed):
    evals = np.concatenate([[-0.02, -0.005], np.linspace(1e-4, 1.0, 58)])
    H = _matrix(evals, seed=1)
    problem = ExplicitHessian(H)
    gen = torch.Generator().manual_seed(0)
    with pytest.warns(SkinfluenceWarning, match="indefinite.*lifted"):
        d = resolve_damping(problem, "auto", H=H if formed else None, generator=gen)
    smallest = float(torch.linalg.eigvalsh(H + d * torch.eye(len(evals)))[0])
    assert smallest > 0
    if formed:
        assert d == pytest.approx(0.02 + INDEFINITE_MARGIN * 1.0)


@pytest.fixture(scope="module")
def indefinite_mlp():
    X, y = make_classification(
        120, 5, n_informative=3, n_redundant=0, n_classes=3, random_state=0
    )
    mlp = MLPClassifier((5,), alpha=1e-2, max_iter=3000, random_state=0).fit(X, y)
    return FrozenEstimator(mlp), X, y


@pytest.mark.parametrize("solver", ["exact", "cg", "arnoldi"])
def test_influence_function_runs_at_defaults_on_an_indefinite_mlp(
    indefinite_mlp, solver
):
    est, X, y = indefinite_mlp
    # The undamped Hessian is indefinite: its exact spectrum, for reference.
    ref = InfluenceScorer(
        est, method=InfluenceFunction(damping=1.0), dtype="float64"
    ).fit(X, y)
    lowest = float(ref.method_.solver_.eigenvalues_[0])
    assert lowest < 0
    scorer = InfluenceScorer(
        est, method=InfluenceFunction(solver=solver), dtype="float64", random_state=0
    )
    with pytest.warns(SkinfluenceWarning, match="indefinite"):
        scorer.fit(X, y)
    assert scorer.method_.damping_ > -lowest
    assert np.all(np.isfinite(scorer.influence(X[:3], y[:3])))


def test_influence_ensemble_is_the_mean_over_independent_refits(indefinite_mlp):
    from skinfluence.utils._torch import draw_seed, make_generator

    est, X, y = indefinite_mlp
    damping = 0.05
    method = InfluenceFunction(damping=damping, n_estimators=2, random_state=7)
    scorer = InfluenceScorer(est, method=method, dtype="float64").fit(X, y)
    got = scorer.influence(X[:4], y[:4])
    # Reference: the same refits (same seeds), each scored on its own.
    ctx = scorer._context()
    gen = make_generator(7)
    models = [est.estimator]
    for _ in range(2):
        models.append(ctx.adapter.refit(ctx.X, ctx.T, draw_seed(gen)).estimator_)
    single = [
        InfluenceScorer(
            FrozenEstimator(m),
            method=InfluenceFunction(damping=damping),
            dtype="float64",
        )
        .fit(X, y)
        .influence(X[:4], y[:4])
        for m in models
    ]
    assert not np.allclose(single[1], single[0])  # the members differ
    np.testing.assert_allclose(got, np.mean(single, axis=0), rtol=1e-6, atol=1e-12)
    assert len(scorer.method_.dampings_) == 3
    self_ref = np.mean(
        [
            InfluenceScorer(
                FrozenEstimator(m),
                method=InfluenceFunction(damping=damping),
                dtype="float64",
            )
            .fit(X, y)
            .self_influence_
            for m in models
        ],
        axis=0,
    )
    np.testing.assert_allclose(scorer.self_influence_, self_ref, rtol=1e-6)


def test_influence_ensemble_with_cg_survives_pickling(indefinite_mlp):
    import pickle

    est, X, y = indefinite_mlp
    method = InfluenceFunction(
        solver="cg", damping=0.05, n_estimators=1, random_state=0
    )
    scorer = InfluenceScorer(est, method=method, dtype="float64").fit(X, y)
    before = scorer.influence(X[:3], y[:3])
    after = pickle.loads(pickle.dumps(scorer)).influence(X[:3], y[:3])
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-12)

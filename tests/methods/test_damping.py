"""The automatic damping rule on convex and indefinite Hessians."""

import contextlib

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from skinfluence import InfluenceFunction, InfluenceScorer
from skinfluence.exceptions import SkinfluenceWarning
from skinfluence.gradients import HessianProblem
from skinfluence.methods._influence_function import AUTO_N_ESTIMATORS
from skinfluence.methods.ihvp._base import (
    AUTO_DAMPING_FRACTION,
    INDEFINITE_FACTOR,
    extreme_eigenvalues,
    resolve_damping,
)
from skinfluence.methods.ihvp._lissa import estimate_top_eigenvalue
from skinfluence.models._adapters import SklearnAdapter
from skinfluence.utils._torch import MemoryBudget, make_generator


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
        assert d == pytest.approx(INDEFINITE_FACTOR * 0.02)
    else:
        # The Lanczos estimate of the smallest eigenvalue is inside the
        # spectrum: the lift still clears the true one.
        assert d > 0.02


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
    # Every solver at its defaults; the refits of the default ensemble are
    # the same for all solvers, so only the exact one pays for them here.
    method = InfluenceFunction(solver=solver)
    if solver != "exact":
        method.set_params(n_estimators=1)
    scorer = InfluenceScorer(est, method=method, dtype="float64", random_state=0)
    with pytest.warns(SkinfluenceWarning, match="indefinite"):
        scorer.fit(X, y)
    assert scorer.method_.damping_ > -lowest
    assert np.all(np.isfinite(scorer.influence(X[:3], y[:3])))


def test_influence_ensemble_is_the_mean_over_independent_refits(indefinite_mlp):
    from skinfluence.utils._torch import draw_seed, make_generator

    est, X, y = indefinite_mlp
    damping = 0.05
    method = InfluenceFunction(damping=damping, n_estimators=3, random_state=7)
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
            method=InfluenceFunction(damping=damping, n_estimators=1),
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
                method=InfluenceFunction(damping=damping, n_estimators=1),
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
        solver="cg", damping=0.05, n_estimators=2, random_state=0
    )
    scorer = InfluenceScorer(est, method=method, dtype="float64").fit(X, y)
    before = scorer.influence(X[:3], y[:3])
    after = pickle.loads(pickle.dumps(scorer)).influence(X[:3], y[:3])
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-12)


def _explicit_influence(mlp, X, y, Xq, yq, damping):
    """``(1/n) g_q^T (H + damping I)^{-1} g_j`` for a fitted ReLU
    ``MLPClassifier`` (softmax output), written out in float64 from its
    weights: per-row gradients by a loop of ``torch.autograd.grad`` and the
    Hessian of sklearn's objective, ``mean log-loss + alpha ||W||^2 / (2n)``,
    by differentiating the gradient coordinate by coordinate."""
    shapes = [W.shape for W in mlp.coefs_] + [b.shape for b in mlp.intercepts_]
    flat0 = np.concatenate(
        [W.ravel() for W in mlp.coefs_] + [b.ravel() for b in mlp.intercepts_]
    )
    n_layers = len(mlp.coefs_)

    def unpack(w):
        out, off = [], 0
        for shape in shapes:
            k = int(np.prod(shape))
            out.append(w[off : off + k].reshape(shape))
            off += k
        return out[:n_layers], out[n_layers:]

    def losses(w, Xt, yt):
        Ws, bs = unpack(w)
        h = Xt
        for i, (W, b) in enumerate(zip(Ws, bs)):
            h = h @ W + b
            if i < n_layers - 1:
                h = torch.relu(h)
        return torch.nn.functional.cross_entropy(h, yt, reduction="none")

    def objective(w, Xt, yt):
        Ws, _ = unpack(w)
        penalty = 0.5 * mlp.alpha * sum((W**2).sum() for W in Ws)
        return (losses(w, Xt, yt).sum() + penalty) / len(yt)

    w = torch.tensor(flat0, dtype=torch.float64, requires_grad=True)
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.as_tensor(np.searchsorted(mlp.classes_, y))
    (g,) = torch.autograd.grad(objective(w, Xt, yt), w, create_graph=True)
    H = torch.stack(
        [torch.autograd.grad(g[i], w, retain_graph=True)[0] for i in range(len(g))]
    )

    def row_grads(Xr, yr):
        Xr = torch.tensor(Xr, dtype=torch.float64)
        yr = torch.as_tensor(np.searchsorted(mlp.classes_, yr))
        rows = []
        for i in range(len(yr)):
            (gi,) = torch.autograd.grad(losses(w, Xr[i : i + 1], yr[i : i + 1]), w)
            rows.append(gi)
        return torch.stack(rows)

    G, Q = row_grads(X, y), row_grads(Xq, yq)
    P = torch.linalg.solve(H + damping * torch.eye(len(H), dtype=H.dtype), G.T)
    return (Q @ P).numpy() / len(y)


def test_one_estimator_is_the_single_fitted_model(indefinite_mlp):
    est, X, y = indefinite_mlp
    damping = 0.05
    scorer = InfluenceScorer(
        est, method=InfluenceFunction(damping=damping, n_estimators=1), dtype="float64"
    ).fit(X, y)
    assert scorer.method_.n_estimators_ == 1
    assert len(scorer.method_.solvers_) == 1
    got = scorer.influence(X[:4], y[:4])
    expected = _explicit_influence(est.estimator, X, y, X[:4], y[:4], damping)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_auto_ensemble_refits_a_neural_net_and_not_a_convex_model(
    indefinite_mlp, monkeypatch
):
    est, X, y = indefinite_mlp
    auto = InfluenceScorer(
        est, method=InfluenceFunction(damping=0.05, random_state=3), dtype="float64"
    ).fit(X, y)
    assert auto._adapter.convex is False
    assert auto.method_.n_estimators_ == AUTO_N_ESTIMATORS > 1
    assert len(auto.method_.dampings_) == AUTO_N_ESTIMATORS
    explicit = InfluenceScorer(
        est,
        method=InfluenceFunction(
            damping=0.05, n_estimators=AUTO_N_ESTIMATORS, random_state=3
        ),
        dtype="float64",
    ).fit(X, y)
    np.testing.assert_allclose(
        auto.influence(X[:3], y[:3]), explicit.influence(X[:3], y[:3]), rtol=1e-10
    )
    single = InfluenceScorer(
        est, method=InfluenceFunction(damping=0.05, n_estimators=1), dtype="float64"
    ).fit(X, y)
    assert not np.allclose(auto.influence(X[:3], y[:3]), single.influence(X[:3], y[:3]))

    # A convex model is never refitted: every refit would be the same model.
    def no_refit(*args, **kwargs):
        raise AssertionError("a convex model was refitted")

    monkeypatch.setattr(SklearnAdapter, "refit", no_refit)
    lr = InfluenceScorer(LogisticRegression(), method="influence_function").fit(X, y)
    assert lr._adapter.convex is True
    assert lr.method_.n_estimators_ == 1
    frozen = InfluenceScorer(
        FrozenEstimator(lr.estimator_), method="influence_function"
    ).fit(X, y)
    assert frozen.method_.n_estimators_ == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "many"])
def test_bad_n_estimators_names_the_parameter(indefinite_mlp, bad):
    est, X, y = indefinite_mlp
    scorer = InfluenceScorer(est, method=InfluenceFunction(n_estimators=bad))
    with pytest.raises(ValueError, match="n_estimators"):
        scorer.fit(X, y)


def _lift_warnings(records):
    return [
        w
        for w in records
        if issubclass(w.category, SkinfluenceWarning) and "lifted" in str(w.message)
    ]


def test_ensemble_says_its_damping_lifts_in_one_warning(indefinite_mlp):
    import warnings

    est, X, y = indefinite_mlp
    scorer = InfluenceScorer(
        est, method=InfluenceFunction(), dtype="float64", random_state=0
    )
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        scorer.fit(X, y)
    method = scorer.method_
    assert method.n_estimators_ == AUTO_N_ESTIMATORS
    # Reference: each member's exact spectrum. A member is lifted when its
    # smallest eigenvalue is negative, to 3 x its magnitude.
    smallest = np.array([float(s.eigenvalues_[0]) for s in method.solvers_])
    np.testing.assert_array_equal(method.lifted_, smallest < 0)
    lifted = np.array(method.dampings_)[method.lifted_]
    assert len(lifted) >= 2  # the case of the warning to aggregate
    np.testing.assert_allclose(
        lifted, INDEFINITE_FACTOR * -smallest[smallest < 0], rtol=1e-10
    )
    (warning,) = _lift_warnings(records)
    text = str(warning.message)
    assert f"{len(lifted)} of the {AUTO_N_ESTIMATORS} models" in text
    assert f"{lifted.min():.3g} to {lifted.max():.3g}" in text
    assert warning.filename == __file__  # points at the caller's fit


def test_single_model_says_its_damping_lift_as_before(indefinite_mlp):
    import warnings

    est, X, y = indefinite_mlp
    scorer = InfluenceScorer(
        est, method=InfluenceFunction(n_estimators=1), dtype="float64"
    )
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        scorer.fit(X, y)
    (warning,) = _lift_warnings(records)
    smallest = float(scorer.method_.solver_.eigenvalues_[0])
    assert f"smallest eigenvalue about {smallest:.3g}" in str(warning.message)
    assert "convex default" in str(warning.message)
    assert scorer.method_.lifted_ == [True]
    assert scorer.method_.damping_ == pytest.approx(INDEFINITE_FACTOR * -smallest)


def _forwards_with_and_without_kept_graphs(indefinite_mlp, monkeypatch, run):
    """``run(problem)`` on the Hessian of ``indefinite_mlp`` (120 rows in
    chunks of 50), with graphs kept and with every product redoing its
    passes: ``(values, forwards)`` of each."""
    est, X, y = indefinite_mlp
    method = InfluenceFunction(damping=1.0, n_estimators=1)
    ctx = InfluenceScorer(est, method=method, dtype="float64").fit(X, y)._context()

    def counted():
        problem = HessianProblem(
            ctx.view, ctx.layout, ctx.X, ctx.T, budget=MemoryBudget(batch_size=50)
        )
        calls = []
        hook = ctx.view.module.register_forward_hook(lambda *a: calls.append(1))
        values = run(problem)
        hook.remove()
        return values, len(calls)

    kept = counted()
    with monkeypatch.context() as m:
        m.setattr(HessianProblem, "reuse_graph", lambda self: contextlib.nullcontext())
        plain = counted()
    return kept, plain


def test_auto_damping_shares_one_forward_pass_per_chunk(indefinite_mlp, monkeypatch):
    def damping(problem):
        with pytest.warns(SkinfluenceWarning, match="indefinite"):
            return resolve_damping(problem, "auto", generator=make_generator(0))

    (d, forwards), (d_plain, forwards_plain) = _forwards_with_and_without_kept_graphs(
        indefinite_mlp, monkeypatch, damping
    )
    # Three chunks; without kept graphs the 8 trace probes (one batched
    # pass) and each of the 40 Lanczos steps redo them.
    assert forwards == 3
    assert forwards_plain == 3 * (1 + 40)
    assert d == pytest.approx(d_plain, rel=1e-8)


def test_spectrum_estimates_share_one_forward_pass_per_chunk(
    indefinite_mlp, monkeypatch
):
    # FastIF's and LiSSA's spectrum estimates, as they call them.
    def estimates(problem):
        lo, hi = extreme_eigenvalues(problem, make_generator(0))
        return lo, hi, estimate_top_eigenvalue(problem, make_generator(0))

    (values, forwards), (plain, forwards_plain) = (
        _forwards_with_and_without_kept_graphs(indefinite_mlp, monkeypatch, estimates)
    )
    # Three chunks, once for each estimate; without kept graphs once for
    # each of the 40 Lanczos steps and 20 power iterations.
    assert forwards == 2 * 3
    assert forwards_plain == 3 * (40 + 20)
    np.testing.assert_allclose(values, plain, rtol=1e-8)

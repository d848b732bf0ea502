import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier
from torch import nn

from skinfluence import (
    ArnoldiSolver,
    CGSolver,
    EKFACSolver,
    InfluenceFunction,
    InfluenceScorer,
)
from skinfluence.exceptions import SingularHessianError, SolverConvergenceWarning
from skinfluence.gradients import HessianProblem, ParamLayout
from skinfluence.models import ModelView
from skinfluence.models._losses import squared_error


def _pearson(a, b):
    return np.mean([np.corrcoef(u, v)[0, 1] for u, v in zip(a, b)])


@pytest.fixture(scope="module")
def mlp_data():
    X, y = make_classification(
        120, 5, n_informative=3, n_redundant=0, n_classes=3, random_state=0
    )
    mlp = MLPClassifier((5,), alpha=1e-2, max_iter=3000, random_state=0).fit(X, y)
    return FrozenEstimator(mlp), X, y


def _scores(est, X, y, solver, damping=0.2, dtype="float64", n_query=8):
    s = InfluenceScorer(
        est,
        # One model: the solvers are compared on the fitted model's Hessian.
        method=InfluenceFunction(solver=solver, damping=damping, n_estimators=1),
        dtype=dtype,
        random_state=0,
    ).fit(X, y)
    return s, s.influence(X[:n_query], y[:n_query]), s.self_influence_


@pytest.fixture(scope="module")
def mlp_exact(mlp_data):
    est, X, y = mlp_data
    return _scores(est, X, y, "exact")


@pytest.mark.parametrize(
    "solver",
    [
        CGSolver(tol=1e-10, max_iter=500),
        CGSolver(tol=1e-10, max_iter=500, preconditioner="diagonal"),
        ArnoldiSolver(rank=1000),
    ],
    ids=["cg", "cg-diagonal", "arnoldi-full-rank"],
)
def test_exact_solvers_match_cholesky(mlp_data, mlp_exact, solver):
    est, X, y = mlp_data
    _, ref, ref_self = mlp_exact
    _, inf, self_inf = _scores(est, X, y, solver)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(inf, ref, rtol=0, atol=1e-7 * scale)
    np.testing.assert_allclose(
        self_inf, ref_self, rtol=0, atol=1e-7 * np.abs(ref_self).max()
    )


def _explicit_hessian(view, X, T):
    """Mean Hessian by a plain loop of autograd over parameter coordinates."""
    names = list(view.params)
    flat = torch.cat([view.params[n].reshape(-1) for n in names]).clone()
    flat.requires_grad_(True)

    def objective(w):
        params, off = {}, 0
        for n in names:
            k = view.params[n].numel()
            params[n] = w[off : off + k].reshape(view.params[n].shape)
            off += k
        out = torch.func.functional_call(view.module, params, (X,))
        return (view.loss(out, T).sum() + view.penalty(params)) / view.n_train

    (g,) = torch.autograd.grad(objective(flat), flat, create_graph=True)
    rows = [
        torch.autograd.grad(g[i], flat, retain_graph=True)[0] for i in range(len(g))
    ]
    return torch.stack(rows), names


def test_arnoldi_subspace_matches_eigendecomposition(mlp_data):
    est, X, y = mlp_data
    damping, rank = 0.2, 6
    s, inf, self_inf = _scores(
        est, X, y, ArnoldiSolver(rank=rank, oversampling=1000, tail=0.0), damping
    )
    ctx = s._context()
    H, names = _explicit_hessian(ctx.view, ctx.X, ctx.T)
    evals, vecs = torch.linalg.eigh((H + H.T) / 2)
    top = torch.argsort(evals.abs(), descending=True)[:rank]
    U, lam = vecs[:, top], evals[top]
    P = (
        U @ torch.diag(1 / (lam + damping) - 1 / damping) @ U.T
        + torch.eye(len(H), dtype=H.dtype) / damping
    )
    # Per-row loss gradients in the same (named-parameter) order.
    leaves = {n: ctx.view.params[n].clone().requires_grad_(True) for n in names}

    def row_grad(x, t):
        out = ctx.view.forward(x[None], leaves)
        gs = torch.autograd.grad(
            ctx.view.loss(out, t[None]).sum(), list(leaves.values())
        )
        return torch.cat([gi.reshape(-1) for gi in gs])

    G = torch.stack([row_grad(ctx.X[i], ctx.T[i]) for i in range(ctx.X.shape[0])])
    ref = (G[:8] @ P @ G.T).numpy() / ctx.view.n_train
    ref_self = ((G @ P) * G).sum(1).numpy() / ctx.view.n_train
    np.testing.assert_allclose(
        np.sort(np.abs(s.method_.solver_.eigenvalues_)),
        np.sort(np.abs(lam.numpy())),
        rtol=1e-8,
    )
    np.testing.assert_allclose(inf, ref, atol=1e-8 * np.abs(ref).max())
    np.testing.assert_allclose(self_inf, ref_self, atol=1e-8 * np.abs(ref_self).max())


def test_arnoldi_samples_rows_only_above_hessian_rows(mlp_data):
    est, X, y = mlp_data
    n = len(X)
    assert ArnoldiSolver().hessian_rows == 4096 > n
    for rows, sampled in [(None, False), (n, False), (n - 1, True)]:
        s, _, _ = _scores(est, X, y, ArnoldiSolver(rank=5, hessian_rows=rows), 0.2)
        idx = s.method_.solver_.hessian_indices_
        assert (idx is not None) == sampled
        if sampled:
            assert len(np.unique(idx)) == n - 1
    s, _, _ = _scores(est, X, y, ArnoldiSolver(rank=5), 0.2)
    assert s.method_.solver_.hessian_indices_ is None


@pytest.mark.filterwarnings("ignore:The Hessian is indefinite")
def test_arnoldi_on_a_row_sample_runs_no_product_over_every_row(mlp_data, monkeypatch):
    # With damping="auto" too: the trace behind the convex default comes
    # from the sample, like the Krylov space and the tail.
    est, X, y = mlp_data
    calls = []
    hvp = HessianProblem.hvp

    def recorded(self, V, rows=None, idx=None):
        calls.append(idx is not None)
        return hvp(self, V, rows=rows, idx=idx)

    monkeypatch.setattr(HessianProblem, "hvp", recorded)
    solver = ArnoldiSolver(rank=5, hessian_rows=len(X) // 2)
    s, _, _ = _scores(est, X, y, solver, "auto")
    assert s.method_.solver_.hessian_indices_ is not None
    assert calls and all(calls)


def test_arnoldi_on_a_row_sample_inverts_the_sampled_hessian(mlp_data):
    est, X, y = mlp_data
    damping, m = 0.2, 40
    s, _, _ = _scores(
        est, X, y, ArnoldiSolver(rank=1000, hessian_rows=m, tail=0.0), damping
    )
    solver = s.method_.solver_
    idx = solver.hessian_indices_
    assert len(np.unique(idx)) == m
    ctx = s._context()
    n = ctx.view.n_train
    H_s, _ = _explicit_hessian(ctx.view, ctx.X[idx], ctx.T[idx])
    twice = torch.cat([torch.as_tensor(idx)] * 2)
    H_ss, _ = _explicit_hessian(ctx.view, ctx.X[twice], ctx.T[twice])
    # (sum over the sample)/n and the penalty's Hessian/n, separated.
    data, pen = H_ss - H_s, 2 * H_s - H_ss
    H_ref = n / m * data + pen
    H_ref = (H_ref + H_ref.T) / 2
    # The Krylov basis stops at the sample Hessian's distinct eigenvalues:
    # every kept value is one of its eigenvalues, and the largest all appear.
    _, w, _ = solver.low_rank_factors()
    lam = torch.as_tensor(solver.eigenvalues_)
    ref_vals = torch.linalg.eigvalsh(H_ref)
    gap = (lam[:, None] - ref_vals[None, :]).abs().min(1).values
    assert float(gap.max()) < 1e-9 * float(ref_vals.abs().max())
    top = torch.linalg.eigvalsh(H_ref).abs().sort(descending=True).values[:10]
    np.testing.assert_allclose(lam.abs()[:10], top, rtol=1e-8)
    np.testing.assert_allclose(w, 1 / (lam + damping) - 1 / damping, rtol=1e-10)


def _named_row_grads(view, X, T, names):
    leaves = {n: view.params[n].clone().requires_grad_(True) for n in names}
    rows = []
    for i in range(X.shape[0]):
        out = view.forward(X[i : i + 1], leaves)
        gs = torch.autograd.grad(
            view.loss(out, T[i : i + 1]).sum(), list(leaves.values())
        )
        rows.append(torch.cat([g.reshape(-1) for g in gs]))
    return torch.stack(rows)


def _named_to_layout(layout, view, flat_named, names):
    parts, off = {}, 0
    for n in names:
        k = view.params[n].numel()
        parts[n] = flat_named[..., off : off + k].reshape(
            *flat_named.shape[:-1], *view.params[n].shape
        )
        off += k
    return layout.flatten(parts, batch_dims=flat_named.dim() - 1)


@pytest.mark.parametrize("batched", [True, False])
def test_signed_gradients_are_signed_sums_of_row_gradients(
    mlp_data, monkeypatch, batched
):
    # One batched backward pass for all probes, or one pass per probe.
    monkeypatch.setattr(HessianProblem, "_batches_vectors", lambda self: batched)
    est, X, y = mlp_data
    s, _, _ = _scores(est, X, y, "exact")
    ctx = s._context()
    problem = HessianProblem(ctx.view, ctx.layout, ctx.X, ctx.T)
    Z = problem.signed_gradients(3, torch.Generator().manual_seed(7))
    signs = torch.randint(
        0, 2, (3, ctx.X.shape[0]), generator=torch.Generator().manual_seed(7)
    )
    signs = (signs * 2 - 1).to(torch.float64)
    names = list(ctx.view.params)
    G = _named_row_grads(ctx.view, ctx.X, ctx.T, names)
    ref = _named_to_layout(ctx.layout, ctx.view, signs @ G, names)
    np.testing.assert_allclose(Z, ref, atol=1e-10 * float(ref.abs().max()))


def _patched_probes(mlp_data, monkeypatch, probes):
    """The context of ``mlp_data`` and the probes ``probes(G)`` (named order,
    from the per-row gradients ``G``), which ``signed_gradients`` then
    returns (in layout order)."""
    est, X, y = mlp_data
    ctx = _scores(est, X, y, "exact")[0]._context()
    names = list(ctx.view.params)
    Z = torch.stack(probes(_named_row_grads(ctx.view, ctx.X, ctx.T, names)))
    Z_layout = _named_to_layout(ctx.layout, ctx.view, Z, names)
    monkeypatch.setattr(
        HessianProblem, "signed_gradients", lambda self, k, gen=None: Z_layout[:k]
    )
    return ctx, Z


def test_arnoldi_gradient_tail_is_the_rayleigh_quotient_of_gradient_probes(
    mlp_data, monkeypatch
):
    est, X, y = mlp_data
    ctx, Z = _patched_probes(
        mlp_data,
        monkeypatch,
        lambda G: [G[:40].sum(0), G[40:80].sum(0) - G[80:].sum(0)],
    )
    rank, damping = 5, 0.2
    solver = ArnoldiSolver(rank=rank, oversampling=1000, n_probes=2, tail="gradient")
    s, _, _ = _scores(est, X, y, solver, damping)
    H, _ = _explicit_hessian(ctx.view, ctx.X, ctx.T)
    evals, vecs = torch.linalg.eigh((H + H.T) / 2)
    U = vecs[:, torch.argsort(evals.abs(), descending=True)[:rank]]
    R = Z - (Z @ U) @ U.T
    c_ref = float((R @ H * R).sum() / (R * R).sum())
    solver = s.method_.solver_
    assert solver.tail_eigenvalue_ == pytest.approx(c_ref, rel=1e-8)
    # The gradients see more curvature in the rest than its mean eigenvalue.
    rest = evals[torch.argsort(evals.abs(), descending=True)[rank:]]
    assert c_ref > float(rest.mean())
    _, w, shift = solver.low_rank_factors()
    assert shift == pytest.approx(1 / (c_ref + damping), rel=1e-8)


def test_arnoldi_gradient_start_and_tail_share_one_draw_of_probes(
    mlp_data, monkeypatch
):
    est, X, y = mlp_data
    s, _, _ = _scores(est, X, y, "exact")
    ctx = s._context()
    layout, names = ctx.layout, list(ctx.view.params)
    L = _named_to_layout(
        layout, ctx.view, torch.eye(layout.p, dtype=torch.float64), names
    )
    G = _named_row_grads(ctx.view, ctx.X, ctx.T, names) @ L
    Z = torch.stack([G[:50].sum(0), G[50:].sum(0), G[::2].sum(0) - G[1::2].sum(0)])
    calls = []

    def probes(self, k, gen=None):
        calls.append(k)
        return Z[:k]

    monkeypatch.setattr(HessianProblem, "signed_gradients", probes)
    solver = ArnoldiSolver(
        rank=4, oversampling=2, n_probes=2, tail="gradient", start="gradient"
    )
    s, _, _ = _scores(est, X, y, solver, 0.2)
    # One pass draws the start vector and the tail's probes.
    assert calls == [3]
    fitted = s.method_.solver_
    H = L.T @ _explicit_hessian(ctx.view, ctx.X, ctx.T)[0] @ L
    U = fitted._U.to(torch.float64)
    R = Z[1:] - (Z[1:] @ U) @ U.T
    c_ref = float((R @ H * R).sum() / (R * R).sum())
    assert fitted.tail_eigenvalue_ == pytest.approx(c_ref, rel=1e-6)
    # The start vector is not one of them: with it, the quotient differs.
    R0 = Z[:2] - (Z[:2] @ U) @ U.T
    assert float((R0 @ H * R0).sum() / (R0 * R0).sum()) != pytest.approx(
        c_ref, rel=1e-3
    )


def test_arnoldi_layer_tail_is_the_per_layer_rayleigh_quotient(mlp_data, monkeypatch):
    est, X, y = mlp_data
    s, _, _ = _scores(est, X, y, "exact")
    ctx = s._context()
    layout, names = ctx.layout, list(ctx.view.params)
    p = layout.p
    # Named order -> layout order: layout_vector = named_vector @ L.
    L = _named_to_layout(layout, ctx.view, torch.eye(p, dtype=torch.float64), names)
    G = _named_row_grads(ctx.view, ctx.X, ctx.T, names) @ L
    Z = torch.stack([G[:40].sum(0), G[40:80].sum(0) - G[80:].sum(0)])
    monkeypatch.setattr(
        HessianProblem, "signed_gradients", lambda self, k, gen=None: Z[:k]
    )
    rank, damping = 5, 0.2
    solver = ArnoldiSolver(rank=rank, oversampling=1000, n_probes=2, tail="layer")
    s, inf, self_inf = _scores(est, X, y, solver, damping)
    H_named, _ = _explicit_hessian(ctx.view, ctx.X, ctx.T)
    H = L.T @ H_named @ L
    evals, vecs = torch.linalg.eigh((H + H.T) / 2)
    top = torch.argsort(evals.abs(), descending=True)[:rank]
    U, lam = vecs[:, top], evals[top]
    R = Z - (Z @ U) @ U.T
    HR = R @ H
    c = torch.tensor(
        [
            float((R[:, sl] * HR[:, sl]).sum() / (R[:, sl] ** 2).sum())
            for sl in layout.segments
        ],
        dtype=torch.float64,
    )
    fitted = s.method_.solver_
    np.testing.assert_allclose(fitted.tail_eigenvalues_, c, rtol=1e-8)
    # The layers do see different curvature, so the per-layer tail matters.
    assert float(c.max() - c.min()) > 0.1 * float(c.abs().max())
    S = torch.cat(
        [
            torch.full((sl.stop - sl.start,), 1 / (ci + damping))
            for sl, ci in zip(layout.segments, c)
        ]
    ).to(H)
    proj = torch.eye(p, dtype=H.dtype) - U @ U.T
    P = U @ torch.diag(1 / (lam + damping)) @ U.T + proj @ torch.diag(S) @ proj
    n = ctx.view.n_train
    ref = (G[:8] @ P @ G.T).numpy() / n
    np.testing.assert_allclose(inf, ref, atol=1e-8 * np.abs(ref).max())
    ref_self = ((G @ P) * G).sum(1).numpy() / n
    np.testing.assert_allclose(self_inf, ref_self, atol=1e-8 * np.abs(ref_self).max())
    V = torch.randn(3, p, dtype=H.dtype, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(
        fitted.solve(V), V @ P, atol=1e-8 * float((V @ P).abs().max())
    )
    with pytest.raises(ValueError, match="tail='layer'"):
        fitted.low_rank_factors()


def test_arnoldi_low_rank_tracks_exact(mlp_data, mlp_exact):
    est, X, y = mlp_data
    _, ref, _ = mlp_exact
    _, inf, _ = _scores(est, X, y, ArnoldiSolver(rank=20))
    assert _pearson(inf, ref) > 0.95


def test_ekfac_is_exact_for_linear_regression():
    X, y = make_regression(80, 4, n_targets=2, random_state=0)
    est = FrozenEstimator(LinearRegression().fit(X, y))
    _, ref, ref_self = _scores(est, X, y, "exact", damping=0.01)
    _, inf, self_inf = _scores(est, X, y, EKFACSolver(), damping=0.01)
    np.testing.assert_allclose(inf, ref, atol=1e-9 * np.abs(ref).max())
    np.testing.assert_allclose(self_inf, ref_self, atol=1e-9 * np.abs(ref_self).max())
    # The L2 penalty is rotated into the eigenbasis: exact when it covers
    # every parameter.
    est = FrozenEstimator(Ridge(alpha=3.0, fit_intercept=False).fit(X, y))
    _, ref, _ = _scores(est, X, y, "exact", damping=0.0)
    _, inf, _ = _scores(est, X, y, EKFACSolver(), damping=0.0)
    np.testing.assert_allclose(inf, ref, atol=1e-9 * np.abs(ref).max())


def test_ekfac_tracks_exact_on_mlp(mlp_data, mlp_exact):
    est, X, y = mlp_data
    _, ref, ref_self = mlp_exact
    s, inf, self_inf = _scores(est, X, y, EKFACSolver())
    assert _pearson(inf, ref) > 0.7
    # Self-influence from the factors equals the diagonal of the full matrix.
    full = s.influence(X, y)
    np.testing.assert_allclose(np.diag(full), self_inf, rtol=1e-8)


@pytest.mark.parametrize("solver", ["cg", "arnoldi", "ekfac"])
def test_float32_close_to_float64(mlp_data, mlp_exact, solver):
    est, X, y = mlp_data
    _, ref, _ = mlp_exact
    _, inf32, _ = _scores(est, X, y, solver, dtype="float32")
    _, inf64, _ = _scores(est, X, y, solver, dtype="float64")
    assert inf32.dtype == np.float64
    assert _pearson(inf32, inf64) > 0.999


def test_cg_warns_naming_max_iter(mlp_data):
    est, X, y = mlp_data
    with pytest.warns(SolverConvergenceWarning, match="max_iter"):
        s, _, _ = _scores(est, X, y, CGSolver(max_iter=1, tol=1e-12))
    assert s.method_.solver_.residual_ > 1e-12


def test_indefinite_hessian_without_damping_says_add_damping(mlp_data):
    est, X, y = mlp_data
    with pytest.raises(SingularHessianError, match="[Aa]dd damping"):
        _scores(est, X, y, ArnoldiSolver(rank=1000), damping=0.0)


@pytest.mark.parametrize(
    "solver, match",
    [
        (CGSolver(tol=-1.0), "tol"),
        (CGSolver(max_iter=0), "max_iter"),
        (ArnoldiSolver(rank=0), "rank"),
        (ArnoldiSolver(tail="median"), "tail"),
        (ArnoldiSolver(hessian_rows=0), "hessian_rows"),
        (ArnoldiSolver(block_size=0), "block_size"),
        (EKFACSolver(max_outputs=0), "max_outputs"),
    ],
)
def test_bad_solver_parameters(solver, match):
    X, y = make_classification(40, 3, n_informative=2, n_redundant=0, random_state=0)
    with pytest.raises(ValueError, match=match):
        InfluenceScorer(
            LogisticRegression(), method=InfluenceFunction(solver=solver)
        ).fit(X, y)


def test_ekfac_needs_linear_layers():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3, dtype=torch.float64))

        def forward(self, x):
            return (x * self.w).sum(1, keepdim=True)

    X = torch.randn(10, 3, dtype=torch.float64)
    view = ModelView(
        Scale(),
        squared_error,
        n_train=10,
        task="regression",
        encode_target=lambda t: t,
        name="Scale",
    )
    layout = ParamLayout(view, view.select("all"), X)
    problem = HessianProblem(view, layout, X, torch.zeros(10, 1, dtype=X.dtype))
    with pytest.raises(ValueError, match="Linear"):
        EKFACSolver().fit(problem, 0.1)


def test_solver_settings_are_grid_searchable():
    method = InfluenceFunction(solver=ArnoldiSolver(rank=5))
    scorer = InfluenceScorer(LogisticRegression(), method=method)
    assert scorer.get_params()["method__solver__rank"] == 5
    scorer.set_params(method__solver__rank=7, method__solver__tail="drop")
    cloned = clone(scorer)
    assert cloned.method.solver.rank == 7
    assert cloned.method.solver.tail == "drop"


def test_cg_scorer_survives_pickling(mlp_data):
    import pickle

    est, X, y = mlp_data
    s, inf, _ = _scores(est, X, y, CGSolver(tol=1e-10, max_iter=500))
    again = pickle.loads(pickle.dumps(s))
    np.testing.assert_allclose(again.influence(X[:8], y[:8]), inf, rtol=1e-8)


def test_get_solver_clones_objects_and_rejects_other_types():
    from skinfluence.methods.ihvp import BaseSolver, get_solver

    given = CGSolver(tol=1e-3)
    got = get_solver(given)
    assert isinstance(got, CGSolver) and got is not given and got.tol == 1e-3
    assert isinstance(get_solver("arnoldi"), BaseSolver)
    with pytest.raises(ValueError, match="solver='nope'"):
        get_solver("nope")

    class Duck:
        def fit(self, *a):
            return self

        def solve(self, V):
            return V

    with pytest.raises(TypeError, match="BaseSolver"):
        get_solver(Duck())


def test_capabilities_are_declared():
    from skinfluence.methods.ihvp import SOLVERS

    low_rank = {n for n, cls in SOLVERS.items() if cls.low_rank}
    uses_problem = {n for n, cls in SOLVERS.items() if cls.uses_problem}
    assert low_rank == {"arnoldi"}
    assert uses_problem == {"cg", "lissa"}
    with pytest.raises(NotImplementedError, match="not a low-rank solver"):
        CGSolver().low_rank_factors()


def test_an_unbound_solver_says_how_to_attach_a_problem(mlp_data):
    import pickle

    est, X, y = mlp_data
    s, _, _ = _scores(est, X, y, CGSolver(tol=1e-10, max_iter=500))
    solver = pickle.loads(pickle.dumps(s.method_.solver_))
    assert not solver.is_bound
    with pytest.raises(ValueError, match="rebind"):
        solver.solve(torch.zeros(1, 3, dtype=torch.float64))
    problem = s._context().hessian_problem()
    V = torch.randn(2, problem.p, dtype=torch.float64)
    np.testing.assert_array_equal(
        solver.rebind(problem).solve(V), s.method_.solver_.solve(V)
    )


@pytest.mark.parametrize("damping", [-0.1, float("nan"), "big", True])
def test_every_solver_rejects_bad_damping(mlp_data, damping):
    from skinfluence.methods.ihvp import SOLVERS

    est, X, y = mlp_data
    s, _, _ = _scores(est, X, y, "exact")
    problem = s._context().hessian_problem()
    for cls in SOLVERS.values():
        with pytest.raises(ValueError, match="damping must be 'auto'"):
            cls().fit(problem, damping)


class _MatrixProblem:
    """A Hessian problem whose Hessian is an explicit symmetric matrix."""

    def __init__(self, A):
        self.A, self.p = A, A.shape[0]
        self.dtype, self.device = A.dtype, A.device
        self.n_hvp = 0

    def hvp(self, V):
        self.n_hvp += V.reshape(-1, self.p).shape[0]
        return V @ self.A


def _spectrum_matrix(p, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(p, p, generator=g, dtype=torch.float64))
    # A decaying spectrum with a few negative eigenvalues, as on a neural net.
    lam = torch.cat([10.0 * 0.8 ** torch.arange(p - 3.0), -torch.tensor([0.5, 1, 2])])
    return (Q * lam) @ Q.T, lam


@pytest.mark.parametrize("block", [2, 3, 8])
def test_block_lanczos_is_rayleigh_ritz_on_the_block_krylov_space(block):
    from skinfluence.methods.ihvp._lanczos import _ritz_pairs

    A, _ = _spectrum_matrix(40)
    m = 12
    problem = _MatrixProblem(A)
    pairs = _ritz_pairs(problem, m, torch.Generator().manual_seed(3), block=block)
    evals, U = pairs.values, pairs.vectors()
    # The same space built explicitly: [Q0, A Q0, A^2 Q0, ...], orthonormalised.
    Q0 = torch.randn(
        block, 40, generator=torch.Generator().manual_seed(3), dtype=A.dtype
    )
    blocks, B = [], Q0.T
    while sum(b.shape[1] for b in blocks) < m:
        blocks.append(B)
        B = A @ B
    K, _ = torch.linalg.qr(torch.cat(blocks, 1)[:, :m])
    ref = torch.linalg.eigvalsh(K.T @ A @ K)
    np.testing.assert_allclose(evals, ref, rtol=1e-9, atol=1e-9)
    assert problem.n_hvp == m
    np.testing.assert_allclose(U.T @ U, torch.eye(m, dtype=A.dtype), atol=1e-10)
    # Ritz vectors: U^T A U is diagonal with the Ritz values.
    np.testing.assert_allclose(U.T @ A @ U, torch.diag(evals), atol=1e-9)


@pytest.mark.parametrize("block", [1, 3])
def test_ritz_pairs_form_the_requested_vectors(block):
    from skinfluence.methods.ihvp._lanczos import _ritz_pairs

    A, _ = _spectrum_matrix(40)
    pairs = _ritz_pairs(_MatrixProblem(A), 15, torch.Generator().manual_seed(2), block)
    top = pairs.top(4)
    # Largest magnitude first, negative values included.
    ref = torch.argsort(pairs.values.abs(), descending=True)[:4]
    assert top.tolist() == ref.tolist()
    assert float(pairs.values[top].abs().min()) >= float(
        pairs.values.abs().sort().values[-4]
    )
    U = pairs.vectors(top)
    assert U.shape == (40, 4)
    np.testing.assert_allclose(U, pairs.vectors()[:, top], atol=1e-12)
    # Ritz pairs of the space: orthonormal, and U^T A U = diag(values).
    np.testing.assert_allclose(U.T @ U, torch.eye(4, dtype=A.dtype), atol=1e-10)
    np.testing.assert_allclose(U.T @ A @ U, torch.diag(pairs.values[top]), atol=1e-9)


def test_block_lanczos_stops_at_an_invariant_subspace():
    from skinfluence.methods.ihvp._lanczos import _ritz_pairs

    # Rank 5 plus a multiple of the identity has 6 distinct eigenvalues: a
    # block of 2 spans its invariant space after a few products.
    g = torch.Generator().manual_seed(0)
    W = torch.randn(30, 5, generator=g, dtype=torch.float64)
    A = W @ W.T + 0.3 * torch.eye(30, dtype=torch.float64)
    pairs = _ritz_pairs(_MatrixProblem(A), 30, torch.Generator().manual_seed(1), 2)
    evals, U = pairs.values, pairs.vectors()
    assert U.shape[1] < 30
    exact = torch.linalg.eigvalsh(A)
    gap = (evals[:, None] - exact[None, :]).abs().min(1).values
    assert float(gap.max()) < 1e-9 * float(exact.max())
    np.testing.assert_allclose(evals.max(), exact.max(), rtol=1e-10)


@pytest.mark.parametrize("block", [1, 4])
def test_arnoldi_block_size_keeps_the_full_rank_solve_exact(mlp_data, mlp_exact, block):
    est, X, y = mlp_data
    _, ref, ref_self = mlp_exact
    _, inf, self_inf = _scores(est, X, y, ArnoldiSolver(rank=1000, block_size=block))
    np.testing.assert_allclose(inf, ref, rtol=0, atol=1e-7 * np.abs(ref).max())
    np.testing.assert_allclose(
        self_inf, ref_self, rtol=0, atol=1e-7 * np.abs(ref_self).max()
    )


def test_arnoldi_gradient_start_spans_the_krylov_space_of_a_gradient_probe(
    mlp_data, monkeypatch
):
    est, X, y = mlp_data
    ctx, (z,) = _patched_probes(
        mlp_data, monkeypatch, lambda G: [G[:40].sum(0) - G[40:].sum(0)]
    )
    names = list(ctx.view.params)
    # span{z, H z, H^2 z, H^3 z} from the explicit Hessian.
    H, _ = _explicit_hessian(ctx.view, ctx.X, ctx.T)
    K = [z / z.norm()]
    for _ in range(3):
        K.append(H @ K[-1])
        K[-1] = K[-1] / K[-1].norm()
    Q, _ = torch.linalg.qr(torch.stack(K, 1))
    Q = _named_to_layout(ctx.layout, ctx.view, Q.T, names).T
    for start, same in [("gradient", True), ("random", False)]:
        solver = ArnoldiSolver(rank=4, oversampling=0, tail="drop", start=start)
        s, _, _ = _scores(est, X, y, solver)
        U = s.method_.solver_._U
        gap = float(torch.linalg.matrix_norm(U @ U.T - Q @ Q.T, ord=2))
        assert (gap < 1e-6) == same, (start, gap)


@pytest.mark.parametrize(
    "precision, native, dtype, expected",
    [
        ("auto", True, "float32", torch.bfloat16),
        ("auto", False, "float32", torch.float32),
        ("bfloat16", False, "float32", torch.bfloat16),
        ("full", True, "float32", torch.float32),
        # float64 problems are reference numbers: never autocast.
        ("auto", True, "float64", torch.float64),
        ("bfloat16", True, "float64", torch.float64),
    ],
)
def test_arnoldi_precision_picks_the_product_dtype(
    mlp_data, monkeypatch, precision, native, dtype, expected
):
    from skinfluence.methods.ihvp import _base

    monkeypatch.setattr(_base, "native_bfloat16", lambda device: native)
    seen, probes = [], []
    hvp = HessianProblem.hvp
    signed = HessianProblem.signed_gradients

    def recording_hvp(self, V, rows=None, idx=None):
        seen.extend([self._autocast] * V.reshape(-1, self.p).shape[0])
        return hvp(self, V, rows=rows, idx=idx)

    def recording_signed(self, n_probes, generator=None, idx=None):
        probes.append((self._autocast, n_probes))
        return signed(self, n_probes, generator, idx=idx)

    monkeypatch.setattr(HessianProblem, "hvp", recording_hvp)
    monkeypatch.setattr(HessianProblem, "signed_gradients", recording_signed)
    est, X, y = mlp_data
    solver = ArnoldiSolver(rank=4, oversampling=2, n_probes=3, precision=precision)
    s, _, _ = _scores(est, X, y, solver, dtype=dtype)
    fitted = s.method_.solver_
    assert fitted.product_dtype_ == expected
    autocast = None if expected == getattr(torch, dtype) else expected
    # The tail's gradient probes are drawn at the products' precision.
    assert probes == [(autocast, 3)]
    # The Krylov space's and the tail's products (6 + 3) at that precision;
    # in bfloat16 then the check: the Rayleigh quotients of one or two Ritz
    # vectors in bfloat16 on the same rows, then in bfloat16 and at full
    # precision on the check's rows.
    if autocast is None:
        assert seen == [None] * 9
    else:
        k = (len(seen) - 9) // 3
        assert k in (1, 2) and len(seen) == 9 + 3 * k
        assert seen == [autocast] * (9 + 2 * k) + [None] * k


@pytest.mark.parametrize(
    "precision, expected", [("bfloat16", torch.bfloat16), ("full", None)]
)
def test_arnoldi_gradient_start_draws_its_probes_at_the_products_precision(
    mlp_data, monkeypatch, precision, expected
):
    probes = []
    signed = HessianProblem.signed_gradients

    def recording_signed(self, n_probes, generator=None, idx=None):
        probes.append((self._autocast, n_probes))
        return signed(self, n_probes, generator, idx=idx)

    monkeypatch.setattr(HessianProblem, "signed_gradients", recording_signed)
    est, X, y = mlp_data
    solver = ArnoldiSolver(
        rank=4, oversampling=2, n_probes=3, precision=precision, start="gradient"
    )
    _scores(est, X, y, solver, dtype="float32")
    # One draw for the start vector and the tail's probes, even where the
    # fit falls back to full precision.
    assert probes == [(expected, 4)]


def test_arnoldi_falls_back_to_full_precision_where_bfloat16_loses_too_much(
    monkeypatch,
):
    from skinfluence.methods.ihvp import _base

    monkeypatch.setattr(_base, "native_bfloat16", lambda device: True)
    X, y = make_classification(
        300, 8, n_informative=4, n_classes=3, n_clusters_per_class=1, random_state=0
    )
    fitted = {}
    for offset in [0.0, 100.0]:
        # Features far from zero: bfloat16 rounds away their spread.
        Xo = X + offset
        lr = FrozenEstimator(LogisticRegression(max_iter=5000).fit(Xo, y))
        for precision in ["auto", "full"]:
            solver = ArnoldiSolver(rank=5, oversampling=5, precision=precision)
            s, inf, _ = _scores(lr, Xo, y, solver, damping=0.01, dtype="float32")
            fitted[offset, precision] = s.method_.solver_, inf
    kept, _ = fitted[0.0, "auto"]
    assert kept.product_dtype_ == torch.bfloat16
    low, ref = fitted[100.0, "auto"], fitted[100.0, "full"]
    assert low[0].product_dtype_ == torch.float32
    # The same Krylov space as a full-precision fit from the same state.
    np.testing.assert_allclose(low[0].eigenvalues_, ref[0].eigenvalues_, rtol=1e-6)
    np.testing.assert_allclose(low[1], ref[1], rtol=1e-5, atol=1e-7)


def test_arnoldi_auto_precision_keeps_a_full_krylov_space_exact(mlp_data, monkeypatch):
    from skinfluence.methods.ihvp import _base

    monkeypatch.setattr(_base, "native_bfloat16", lambda device: True)
    est, X, y = mlp_data
    s, _, _ = _scores(est, X, y, ArnoldiSolver(rank=1000), dtype="float32")
    assert s.method_.solver_.product_dtype_ == torch.float32


def test_arnoldi_bfloat16_products_keep_the_top_eigenvalues(mlp_data):
    est, X, y = mlp_data
    ctx = _scores(est, X, y, "exact")[0]._context()
    H, _ = _explicit_hessian(ctx.view, ctx.X, ctx.T)
    top = torch.linalg.eigvalsh((H + H.T) / 2).abs().sort(descending=True).values
    top = top[:3].numpy()
    found = {}
    for precision in ["full", "bfloat16"]:
        solver = ArnoldiSolver(rank=3, oversampling=30, precision=precision)
        s, inf, _ = _scores(est, X, y, solver, dtype="float32")
        found[precision] = np.abs(s.method_.solver_.eigenvalues_)
    np.testing.assert_allclose(found["full"], top, rtol=1e-4)
    np.testing.assert_allclose(found["bfloat16"], top, rtol=3e-2)
    # ... and the products did run in bfloat16.
    assert np.abs(found["bfloat16"] / top - 1).max() > 1e-4


def test_arnoldi_falls_back_where_reduced_products_are_consistently_off(
    mlp_data, monkeypatch
):
    from skinfluence.methods.ihvp import _base

    monkeypatch.setattr(_base, "native_bfloat16", lambda device: True)
    est, X, y = mlp_data
    solver = ArnoldiSolver(rank=4, oversampling=4)
    ref, _, _ = _scores(est, X, y, clone(solver).set_params(precision="full"))
    hvp = HessianProblem.hvp

    def skewed_hvp(self, V, rows=None, idx=None):
        # A reduced-precision operator that is wrong in a way the Krylov
        # recurrence itself cannot see: every product 30% too large.
        out = hvp(self, V, rows=rows, idx=idx)
        return out * 1.3 if self._autocast is not None else out

    monkeypatch.setattr(HessianProblem, "hvp", skewed_hvp)
    s, _, _ = _scores(est, X, y, solver, dtype="float32")
    fitted = s.method_.solver_
    assert fitted.product_dtype_ == torch.float32
    np.testing.assert_allclose(
        fitted.eigenvalues_, ref.method_.solver_.eigenvalues_, rtol=1e-4
    )

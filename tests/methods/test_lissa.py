import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceFunction, InfluenceScorer, LissaSolver
from skinfluence.exceptions import SolverConvergenceWarning
from skinfluence.gradients import HessianProblem
from skinfluence.methods.ihvp import SOLVERS, ExactSolver, _lissa, get_solver
from skinfluence.utils._torch import MemoryBudget, make_generator


@pytest.fixture(scope="module")
def logistic():
    X, y = make_classification(
        n_samples=80, n_features=4, n_informative=3, n_redundant=0, random_state=0
    )
    scorer = InfluenceScorer(LogisticRegression(C=0.5), dtype="float64")
    scorer.fit(X, y)
    ctx = scorer._context()
    problem = HessianProblem(ctx.view, ctx.layout, ctx.X, ctx.T)
    return X, y, ctx, problem


def _fit(solver, problem, damping, seed=0):
    class Ctx:
        generator = make_generator(seed)
        n_jobs = None

    return solver.fit(problem, damping, Ctx())


def test_registered_and_presets(logistic):
    _, _, _, problem = logistic
    assert SOLVERS["lissa"] is LissaSolver
    assert isinstance(get_solver("lissa"), LissaSolver)
    fast = _fit(LissaSolver("fastif"), problem, 0.1)
    assert (fast.depth_, fast.batch_size_, fast.repetitions_) == (1000, 1, 1)
    assert fast.batches_[0].shape == (1, 1000, 1)
    orig = _fit(LissaSolver("original", depth=7), problem, 0.1)
    # 128 rows exceed the 80 training rows: full (deterministic) batches.
    assert (orig.depth_, orig.batch_size_) == (7, 128)
    assert orig.batches_ == [None]


def test_deterministic_lissa_matches_exact_solve(logistic):
    _, _, _, problem = logistic
    damping = 0.2
    exact = ExactSolver().fit(problem, damping)
    lissa = _fit(LissaSolver(batch_size="all", depth=400), problem, damping)
    # Independent check of the contraction rate from the explicit Hessian.
    evals = np.linalg.eigvalsh(problem.hessian().numpy())
    assert lissa.scale_ > evals[-1] + damping
    rate = 1 - (evals[0] + damping) / lissa.scale_
    assert rate**400 < 1e-8
    V = torch.randn(3, problem.p, dtype=torch.float64, generator=make_generator(1))
    np.testing.assert_allclose(lissa.solve(V), exact.solve(V), rtol=1e-6, atol=1e-9)


def test_stochastic_lissa_close_to_exact(logistic):
    _, _, _, problem = logistic
    damping = 0.5
    H = problem.hessian() + damping * torch.eye(problem.p, dtype=torch.float64)
    V = torch.randn(2, problem.p, dtype=torch.float64, generator=make_generator(2))
    ref = torch.linalg.solve(H, V.T).T
    lissa = _fit(LissaSolver(batch_size=16, depth=150, repetitions=3), problem, damping)
    est = lissa.solve(V)
    rel = (est - ref).norm(dim=1) / ref.norm(dim=1)
    assert float(rel.max()) < 0.15


def test_lissa_influence_matches_exact_sign_and_scale(logistic):
    X, y, _, _ = logistic
    kw = dict(dtype="float64", random_state=0)
    exact = InfluenceScorer(
        LogisticRegression(C=0.5), method=InfluenceFunction(damping=0.2), **kw
    ).fit(X, y)
    lissa = InfluenceScorer(
        LogisticRegression(C=0.5),
        method=InfluenceFunction(
            solver=LissaSolver(batch_size="all", depth=400), damping=0.2
        ),
        **kw,
    ).fit(X, y)
    np.testing.assert_allclose(
        lissa.influence(X[:4], y[:4]),
        exact.influence(X[:4], y[:4]),
        rtol=1e-5,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        lissa.self_influence_, exact.self_influence_, rtol=1e-5, atol=1e-12
    )
    assert lissa.method_.solver_.damping_ == 0.2


def test_scale_below_top_eigenvalue_warns_and_diverges(logistic):
    _, _, _, problem = logistic
    top = float(np.linalg.eigvalsh(problem.hessian().numpy())[-1])
    with pytest.warns(SolverConvergenceWarning, match="scale="):
        solver = _fit(
            LissaSolver(batch_size="all", depth=200, scale=top / 4), problem, 0.0
        )
    V = torch.ones(1, problem.p, dtype=torch.float64)
    with pytest.warns(SolverConvergenceWarning, match="Increase scale"):
        solver.solve(V)


def _chains(problem):
    return _fit(
        LissaSolver(batch_size=4, depth=20, repetitions=2, n_chains=3), problem, 0.3
    )


def test_chains_sample_disjoint_rows(logistic):
    _, _, _, problem = logistic
    solver = _chains(problem)
    rows = [set(r.tolist()) for r in solver.chain_rows_]
    assert sum(len(r) for r in rows) == problem.n
    assert set.union(*rows) == set(range(problem.n))
    for r, batches in zip(rows, solver.batches_):
        assert batches.shape == (2, 20, 4)
        assert set(batches.unique().tolist()) <= r


@pytest.mark.slow
def test_parallel_chains_match_serial(logistic):
    _, _, _, problem = logistic
    solver = _chains(problem)
    V = torch.randn(2, problem.p, dtype=torch.float64, generator=make_generator(3))
    serial = solver.solve(V)
    solver._n_jobs = 2
    np.testing.assert_allclose(solver.solve(V), serial, rtol=1e-12)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"depth": 0}, "depth"),
        ({"repetitions": 0}, "repetitions"),
        ({"batch_size": 0}, "batch_size"),
        ({"n_chains": 0}, "n_chains"),
        ({"preset": "koh"}, "preset"),
    ],
)
def test_bad_parameters(logistic, params, name):
    _, _, _, problem = logistic
    with pytest.raises(ValueError, match=name):
        _fit(LissaSolver(**params), problem, 0.1)


def test_negative_damping_is_rejected(logistic):
    X, y, _, _ = logistic
    method = InfluenceFunction(solver=LissaSolver(depth=5), damping=-1.0)
    with pytest.raises(ValueError, match="damping"):
        InfluenceScorer(LogisticRegression(), method=method).fit(X, y)


@pytest.mark.parametrize("batch_size, expected", [(1, 1), (32, 2)])
def test_small_batch_recursion_runs_on_one_thread(logistic, batch_size, expected):
    _, _, _, problem = logistic
    solver = _fit(LissaSolver(depth=5, batch_size=batch_size, scale=50.0), problem, 0.1)
    seen = []

    class Recording:
        p, dtype, device = problem.p, problem.dtype, problem.device

        def hvp(self, V, idx=None):
            seen.append(torch.get_num_threads())
            return problem.hvp(V, idx=idx)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        V = torch.randn(3, problem.p, dtype=problem.dtype)
        out = solver.rebind(Recording()).solve(V)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert set(seen) == {expected}
    np.testing.assert_allclose(out, solver.rebind(problem).solve(V), rtol=1e-12)


def test_small_batch_recursion_splits_the_vectors_over_threads(logistic, monkeypatch):
    import threading

    _, _, _, problem = logistic
    solver = _fit(LissaSolver(depth=6, batch_size=1, scale=50.0), problem, 0.1)
    seen = []

    class Recording:
        """The problem, recording which thread asks for how many vectors and
        on which model."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def replica(self):
            return Recording(self.inner.replica())

        def products_on(self, V):
            apply = self.inner.products_on(V)
            module = id(self.inner.view.module)

            def recorded(idx):
                seen.append((threading.get_ident(), module, V.shape[0]))
                return apply(idx)

            return recorded

    V = torch.randn(3, problem.p, dtype=problem.dtype, generator=make_generator(4))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        # A group takes at least MIN_GROUP_VECTORS vectors ...
        assert _lissa.column_groups(problem, 2 * _lissa.MIN_GROUP_VECTORS - 1) == 1
        assert _lissa.column_groups(problem, 2 * _lissa.MIN_GROUP_VECTORS) == 2
        # ... here one, so that three vectors split into groups of 2 and 1.
        monkeypatch.setattr(_lissa, "MIN_GROUP_VECTORS", 1)
        assert _lissa.column_groups(problem, 3) == 2
        assert _lissa.column_groups(problem, 1) == 1
        with problem.reuse_graph():
            # Kept graphs are a cache the threads would share.
            assert _lissa.column_groups(problem, 3) == 1
        recording = Recording(problem)
        n_hvp = recording.n_hvp
        split = solver.rebind(recording).solve(V)
        # Every product is counted on the caller's problem.
        assert recording.n_hvp - n_hvp == 6 * 3
    finally:
        torch.set_num_threads(before)
    # Two groups of vectors (2 and 1), each on its own copy of the model for
    # every step, each run from one thread of the pool.
    groups = {}
    for ident, module, k in seen:
        groups.setdefault(module, set()).add((ident, k))
    assert len(groups) == 2
    assert all(len(v) == 1 for v in groups.values())
    assert sorted(k for ((_, k),) in groups.values()) == [1, 2]
    assert len(seen) == 2 * 6
    monkeypatch.setattr(_lissa, "column_groups", lambda problem, n: 1)
    whole = solver.rebind(problem).solve(V)
    np.testing.assert_allclose(split, whole, rtol=1e-10, atol=1e-14)


def test_a_model_that_cannot_be_copied_runs_on_one_thread(logistic, monkeypatch):
    _, _, _, problem = logistic
    solver = _fit(LissaSolver(depth=4, batch_size=1, scale=50.0), problem, 0.1)
    V = torch.randn(2, problem.p, dtype=problem.dtype, generator=make_generator(5))
    expected = solver.solve(V)
    monkeypatch.setattr(_lissa, "MIN_GROUP_VECTORS", 1)

    def refuse(self):
        raise TypeError("cannot pickle this module")

    monkeypatch.setattr(type(problem), "replica", refuse)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert _lissa.column_groups(problem, 2) == 2
        got = solver.solve(V)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


def test_column_groups_fit_the_memory_budget(logistic, monkeypatch):
    _, _, _, problem = logistic
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        assert _lissa.column_groups(problem, 30) == _lissa.MAX_COLUMN_GROUPS == 2
        monkeypatch.setattr(_lissa, "MAX_COLUMN_GROUPS", 3)
        assert _lissa.column_groups(problem, 30) == 3
        monkeypatch.setattr(_lissa, "MAX_COLUMN_GROUPS", 2)
        # Room for one copy of the model beside the problem's own: 2 groups.
        one = MemoryBudget(memory_budget=problem.module_bytes())
        monkeypatch.setattr(problem, "budget", one)
        assert _lissa.column_groups(problem, 30) == 2
        less = MemoryBudget(memory_budget=problem.module_bytes() - 1)
        monkeypatch.setattr(problem, "budget", less)
        assert _lissa.column_groups(problem, 30) == 1
    finally:
        torch.set_num_threads(before)


def test_row_top_eigenvalue_is_the_largest_single_row_curvature(logistic):
    # One row's loss Hessian of a logistic regression is rank one,
    # p (1 - p) [x, 1] [x, 1]^T.
    X, y, ctx, problem = logistic
    p = LogisticRegression(C=0.5).fit(X, y).predict_proba(X)[:, 1]
    ref = float(np.max(p * (1 - p) * ((X**2).sum(1) + 1)))
    got = _lissa.estimate_row_top_eigenvalue(problem, make_generator(0))
    assert got == pytest.approx(ref, rel=1e-6)

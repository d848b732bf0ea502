"""Fast paths of the engine against materialised gradients and a plain loop.

The references are independent of the factorised code: per-row gradients from
a float64 loop of ``torch.autograd.grad``, and their explicit Gram matrix.
"""

import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skinfluence.gradients import ParamLayout, RowGrads, row_gradients
from skinfluence.methods import InfluenceContext, Query, TracIn
from skinfluence.models import ModelView


class Scale(nn.Module):
    """Elementwise scale: a parameter outside any Linear layer (dense path)."""

    def __init__(self, width):
        super().__init__()
        self.s = nn.Parameter(torch.linspace(0.5, 1.5, width))

    def forward(self, x):
        return x * self.s


def _problem(n=40, m=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    module = nn.Sequential(
        nn.Linear(5, 8),
        nn.Tanh(),
        Scale(8),
        nn.Linear(8, 6),
        nn.ReLU(),
        nn.Linear(6, 3),
    ).double()
    X = torch.randn(n + m, 5, generator=gen, dtype=torch.float64)
    T = torch.randint(0, 3, (n + m,), generator=gen)

    def loss(out, t):
        return F.cross_entropy(out, t, reduction="none")

    view = ModelView(
        module,
        loss,
        n_train=n,
        task="classification",
        encode_target=lambda y: torch.as_tensor(y),
    )
    layout = ParamLayout(view, view.select("all"), X[:2])
    return view, layout, X[:n], T[:n], X[n:], T[n:]


def _loop_grads(view, X, T):
    """(n, p) per-row gradients from a plain loop of ``autograd.grad``."""
    module = view.module
    params = [p for _, p in module.named_parameters()]
    for p in params:
        p.requires_grad_(True)
    rows = []
    try:
        for i in range(X.shape[0]):
            value = view.loss(module(X[i : i + 1]), T[i : i + 1]).sum()
            gs = torch.autograd.grad(value, params)
            rows.append(torch.cat([g.reshape(-1) for g in gs]))
    finally:
        for p in params:
            p.requires_grad_(False)
    return torch.stack(rows)


def test_layout_has_factorised_and_dense_parts():
    _, layout, *_ = _problem()
    assert len(layout.groups) == 3
    assert layout.dense == ["2.s"]


def test_dot_sq_norms_match_materialised_and_loop():
    view, layout, X, T, Xq, Tq = _problem()
    G = row_gradients(view, layout, X, T)
    Q = row_gradients(view, layout, Xq, Tq)
    ref_G, ref_Q = _loop_grads(view, X, T), _loop_grads(view, Xq, Tq)

    gram = ref_Q @ ref_G.T
    torch.testing.assert_close(Q.dot(G), gram, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        Q.dot(G), Q.materialise() @ G.materialise().T, rtol=1e-10, atol=1e-12
    )
    torch.testing.assert_close(G.sq_norms(), (ref_G**2).sum(1), rtol=1e-10, atol=0)
    flat = RowGrads.from_flat(layout, G.materialise())
    torch.testing.assert_close(flat.sq_norms(), G.sq_norms(), rtol=1e-10, atol=0)


def test_dot_writes_into_out_contiguous_and_strided():
    view, layout, X, T, Xq, Tq = _problem()
    G = row_gradients(view, layout, X, T)
    Q = row_gradients(view, layout, Xq, Tq)
    expected = Q.materialise() @ G.materialise().T

    out = torch.full((Q.n, G.n), float("nan"), dtype=torch.float64)
    assert Q.dot(G, out=out) is out
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)

    wide = torch.full((Q.n, G.n + 5), float("nan"), dtype=torch.float64)
    Q.dot(G, out=wide[:, 2 : 2 + G.n])
    torch.testing.assert_close(wide[:, 2 : 2 + G.n], expected, rtol=1e-10, atol=1e-12)
    assert torch.isnan(wide[:, :2]).all() and torch.isnan(wide[:, 2 + G.n :]).all()

    flat_q = RowGrads.from_flat(layout, Q.materialise())
    out = torch.empty(Q.n, G.n, dtype=torch.float64)
    torch.testing.assert_close(flat_q.dot(G, out=out), expected, rtol=1e-10, atol=1e-12)


def test_cat_of_one_block_is_that_block_and_of_many_is_exact():
    view, layout, X, T, *_ = _problem()
    G = row_gradients(view, layout, X, T)
    assert RowGrads.cat([G]) is G
    parts = [G.rows(slice(0, 13)), G.rows(slice(13, 40))]
    torch.testing.assert_close(RowGrads.cat(parts).materialise(), G.materialise())


def _context(batch_size=None, memory_budget=None):
    view, layout, X, T, Xq, Tq = _problem()
    ctx = InfluenceContext(
        view=view,
        layout=layout,
        X=X,
        T=T,
        batch_size=batch_size,
        memory_budget=memory_budget,
    )
    return ctx, Xq, Tq


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("batch_size", [None, 6])
def test_tracin_matrix_and_self_influence_match_loop(cached, batch_size):
    # A tiny memory budget, which the training gradients just fill (cached)
    # or just overflow (recomputed), forces the training rows into several
    # product blocks, so the products land in strided slices of the output.
    view, layout, X, *_ = _problem()
    cache_bytes = len(X) * layout.factor_width * 8
    ctx, Xq, Tq = _context(batch_size, cache_bytes if cached else cache_bytes - 1)
    assert ctx.budget.rows_for(3 * len(Xq) * 8) < len(X)
    method = TracIn().fit(ctx)
    assert bool(method._train_cache) is cached
    assert bool(method._self_cache) is cached

    ref_G = _loop_grads(ctx.view, ctx.X, ctx.T)
    ref_Q = _loop_grads(ctx.view, Xq, Tq)
    scores = method.influence(ctx, Query(Xq, Tq, measure=ctx.view.loss))
    torch.testing.assert_close(scores, ref_Q @ ref_G.T, rtol=1e-10, atol=1e-12)

    self_inf = method.self_influence(ctx)
    torch.testing.assert_close(self_inf, (ref_G**2).sum(1), rtol=1e-10, atol=0)
    # The returned vector is the caller's: changing it leaves the cache alone.
    self_inf.zero_()
    torch.testing.assert_close(
        method.self_influence(ctx), (ref_G**2).sum(1), rtol=1e-10, atol=0
    )
    rows = method.self_influence(ctx, Xq, Tq)
    torch.testing.assert_close(rows, (ref_Q**2).sum(1), rtol=1e-10, atol=0)


class _TwoSettings(TracIn):
    """Two parameter settings with weights and an overall scale, to exercise
    the weighted accumulation of the base class."""

    def _param_sets(self, ctx):
        shifted = {k: v + 0.1 for k, v in ctx.view.params.items()}
        return [(None, 0.5), (shifted, 2.0)]

    def _scale(self, ctx):
        return 3.0


def test_weighted_settings_and_scale_match_loop():
    ctx, Xq, Tq = _context()
    method = _TwoSettings().fit(ctx)
    scores = method.influence(ctx, Query(Xq, Tq, measure=ctx.view.loss))
    self_inf = method.self_influence(ctx)

    ref_scores = 0.5 * (
        _loop_grads(ctx.view, Xq, Tq) @ _loop_grads(ctx.view, ctx.X, ctx.T).T
    )
    ref_self = 0.5 * (_loop_grads(ctx.view, ctx.X, ctx.T) ** 2).sum(1)
    original = {k: v.clone() for k, v in ctx.view.module.state_dict().items()}
    with torch.no_grad():
        for p in ctx.view.module.parameters():
            p.add_(0.1)
    try:
        G2 = _loop_grads(ctx.view, ctx.X, ctx.T)
        ref_scores = ref_scores + 2.0 * (_loop_grads(ctx.view, Xq, Tq) @ G2.T)
        ref_self = ref_self + 2.0 * (G2**2).sum(1)
    finally:
        ctx.view.module.load_state_dict(original)
    torch.testing.assert_close(scores, 3.0 * ref_scores, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(self_inf, 3.0 * ref_self, rtol=1e-10, atol=0)


def test_self_cache_survives_pickling():
    ctx, *_ = _context()
    method = TracIn().fit(ctx)
    expected = method.self_influence(ctx)
    restored = pickle.loads(pickle.dumps(method))
    torch.testing.assert_close(restored.self_influence(ctx), expected)

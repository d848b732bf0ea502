"""Gradient engine: factorised vs materialised, Hessians, parameter subsets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.neural_network import MLPClassifier
from torch import nn

from skinfluence import models
from skinfluence.gradients import (
    HessianProblem,
    ParamLayout,
    RowGrads,
    _rowgrads,
    iter_row_gradients,
    row_gradients,
    total_gradient,
)
from skinfluence.models import ModelView
from skinfluence.utils._torch import MemoryBudget

F64 = torch.float64


class _Mixed(nn.Module):
    """Linear layers with and without bias, a LayerNorm (dense parameters),
    a free parameter and a Linear layer called twice (not factorisable)."""

    def __init__(self, d=5, k=3):
        super().__init__()
        # Wider than its input (the products over ``D`` first), and a head
        # narrower than its input (the products over ``A`` first).
        self.inp = nn.Linear(d, 8)
        self.norm = nn.LayerNorm(8)
        self.shared = nn.Linear(8, 8, bias=False)
        self.temperature = nn.Parameter(torch.tensor(0.7))
        self.head = nn.Linear(8, k)

    def forward(self, x):
        h = torch.tanh(self.norm(self.inp(x)))
        h = torch.tanh(self.shared(torch.tanh(self.shared(h))))
        return self.head(h) * self.temperature


def _mixed_view(n, seed=0):
    torch.manual_seed(seed)
    module = _Mixed().to(F64)
    return ModelView(
        module,
        lambda out, t: F.cross_entropy(out, t, reduction="none"),
        penalty=None,
        n_train=n,
        task="classification",
        encode_target=lambda y: torch.as_tensor(y),
    )


def _mixed_data(n=23, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=F64)
    T = torch.randint(0, k, (n,), generator=g)
    return X, T


def _by_name(layout, M):
    """``{name: (rows, *shape)}`` from rows in a layout's flat order."""
    return {k: v.reshape(M.shape[0], -1) for k, v in layout.unflatten(M).items()}


def _to_layout(layout, named):
    """Flat rows in ``layout``'s order from ``{name: (rows, size)}``."""
    return layout.flatten(
        {k: v.reshape(v.shape[0], *layout.shapes[k]) for k, v in named.items()},
        batch_dims=1,
    )


def test_layout_groups_only_linear_layers_called_once():
    view = _mixed_view(10)
    X, _ = _mixed_data()
    layout = ParamLayout(view, view.select("all"), X)
    assert [g.module for g in layout.groups] == ["inp", "head"]
    assert set(layout.dense) == {
        "norm.weight",
        "norm.bias",
        "shared.weight",
        "temperature",
    }
    assert layout.p == sum(p.numel() for p in view.params.values())
    flat = layout.flatten(view.params)
    back = layout.unflatten(flat)
    for k, v in view.params.items():
        torch.testing.assert_close(back[k], v, rtol=0, atol=0)


def test_factorised_and_materialised_gradients_agree(monkeypatch):
    view = _mixed_view(23)
    X, T = _mixed_data()
    Xq, Tq = _mixed_data(n=9, seed=1)
    names = view.select("all")
    fact = ParamLayout(view, names, X)
    flat = ParamLayout(view, names, X, factorise=False)
    assert fact.groups and not flat.groups
    weights = torch.linspace(0.5, 2.0, X.shape[0], dtype=F64)
    G1 = row_gradients(view, fact, X, T, weights=weights)
    G2 = row_gradients(view, flat, X, T, weights=weights)
    Q1 = row_gradients(view, fact, Xq, Tq)
    Q2 = row_gradients(view, flat, Xq, Tq)
    assert G1.factors and G2.dense is not None and not G2.factors
    assert {g.cols < g.out for g in fact.groups} == {True, False}

    # materialise: the same gradient for every parameter.
    n1, n2 = _by_name(fact, G1.materialise()), _by_name(flat, G2.materialise())
    for k in names:
        torch.testing.assert_close(n1[k], n2[k], rtol=1e-12, atol=1e-14)
    # dot, dot_flat, sq_norms: the same numbers without forming g.
    torch.testing.assert_close(Q1.dot(G1), Q2.dot(G2), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(G1.dot(Q1), Q2.dot(G2).T, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(G1.sq_norms(), G2.sq_norms(), rtol=1e-12, atol=1e-14)
    V = torch.randn(4, fact.p, dtype=F64, generator=torch.Generator().manual_seed(2))
    V2 = _to_layout(flat, _by_name(fact, V))
    torch.testing.assert_close(G1.dot_flat(V), G2.dot_flat(V2), rtol=1e-12, atol=1e-13)
    # ... and against the plain matrix products of the materialised rows.
    M1 = G1.materialise()
    torch.testing.assert_close(Q1.dot(G1), Q1.materialise() @ M1.T, rtol=1e-12, atol=0)
    torch.testing.assert_close(G1.sq_norms(), (M1**2).sum(1), rtol=1e-12, atol=0)
    torch.testing.assert_close(G1.dot_flat(V), M1 @ V.T, rtol=1e-12, atol=1e-13)
    for part, seg in zip(G1.dot_flat(V, per_segment=True), fact.segments):
        torch.testing.assert_close(
            part, M1[:, seg] @ V[:, seg].T, rtol=1e-12, atol=1e-13
        )
    # ... also with the vectors taken in several blocks (one at a time, and
    # blocks that do not divide their number).
    for width in (1, 2 * min(min(g.cols, g.out) for g in fact.groups)):
        monkeypatch.setattr(_rowgrads, "_BLOCK_WIDTH", width)
        for part, seg in zip(G1.dot_flat(V, per_segment=True), fact.segments):
            torch.testing.assert_close(
                part, M1[:, seg] @ V[:, seg].T, rtol=1e-12, atol=1e-13
            )
    # flat RowGrads behave like structured ones.
    F1 = RowGrads.from_flat(fact, M1)
    torch.testing.assert_close(Q1.dot(F1), Q1.dot(G1), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(F1.dot(Q1), Q1.dot(G1).T, rtol=1e-12, atol=1e-14)


def test_row_gradients_match_autograd_loop_for_mixed_module():
    view = _mixed_view(23)
    X, T = _mixed_data()
    layout = ParamLayout(view, view.select("all"), X)
    G = _by_name(layout, row_gradients(view, layout, X, T).materialise())
    module = view.module
    for i in range(X.shape[0]):
        params = dict(module.named_parameters())
        with torch.enable_grad():
            leaves = {
                k: v.detach().clone().requires_grad_(True) for k, v in params.items()
            }
            out = torch.func.functional_call(module, leaves, (X[i : i + 1],))
            value = -torch.log_softmax(out, 1)[0, T[i]]
            grads = torch.autograd.grad(value, list(leaves.values()))
        for k, g in zip(leaves, grads):
            torch.testing.assert_close(G[k][i], g.reshape(-1), rtol=1e-10, atol=1e-13)


def test_rowgrads_rows_cat_scale_and_chunking():
    view = _mixed_view(23)
    X, T = _mixed_data()
    layout = ParamLayout(view, view.select("all"), X)
    whole = row_gradients(view, layout, X, T)
    chunks = list(iter_row_gradients(view, layout, X, T, chunk=5))
    assert [sl.start for sl, _ in chunks] == [0, 5, 10, 15, 20]
    joined = RowGrads.cat(g for _, g in chunks)
    torch.testing.assert_close(
        joined.materialise(), whole.materialise(), rtol=1e-12, atol=1e-14
    )
    idx = torch.tensor([3, 0, 17])
    torch.testing.assert_close(
        whole.rows(idx).materialise(), whole.materialise()[idx], rtol=0, atol=0
    )
    c = torch.arange(1, 24, dtype=F64)
    torch.testing.assert_close(
        whole.scale(c).materialise(),
        whole.materialise() * c[:, None],
        rtol=1e-12,
        atol=0,
    )
    # total_gradient is the weighted sum of the rows.
    w = torch.linspace(0.1, 1.0, 23, dtype=F64)
    total = total_gradient(view, layout, X, T, weights=w, chunk=4)
    torch.testing.assert_close(
        total, (whole.materialise() * w[:, None]).sum(0), rtol=1e-10, atol=1e-13
    )


# ------------------------------------------------------------- Hessians
def _mlp_problem(n=30, alpha=0.3):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4))
    y = rng.integers(0, 3, n)
    est = MLPClassifier(
        hidden_layer_sizes=(4,), activation="tanh", alpha=alpha, max_iter=5
    )
    with pytest.warns(Warning):
        est.fit(X, y)
    view = models.adapt(est, n, "cpu", F64)
    Xt = torch.tensor(X, dtype=F64)
    T = view.encode_target(np.searchsorted(est.classes_, y))
    return est, view, Xt, T


def _sklearn_objective(est, X, y_idx, rows=None):
    """scikit-learn's MLP objective, written from its documentation: mean
    cross-entropy + alpha / (2 n) * sum ||W||^2, as a function of the flat
    vector [W1, b1, W2, b2] (sklearn's (in, out) weight layout)."""
    shapes = [a.shape for pair in zip(est.coefs_, est.intercepts_) for a in pair]
    sizes = [int(np.prod(s)) for s in shapes]
    n = X.shape[0]

    def f(theta):
        parts = torch.split(theta, sizes)
        W1, b1, W2, b2 = (p.reshape(s) for p, s in zip(parts, shapes))
        Z = torch.tanh(X @ W1 + b1) @ W2 + b2
        losses = torch.logsumexp(Z, 1) - Z[torch.arange(n), y_idx]
        if rows is None:
            data = losses.mean()
        else:
            data = losses[rows].mean()
        return data + est.alpha / (2 * n) * ((W1**2).sum() + (W2**2).sum())

    theta = torch.cat(
        [
            torch.tensor(a, dtype=F64).reshape(-1)
            for pair in zip(est.coefs_, est.intercepts_)
            for a in pair
        ]
    )
    return f, theta, shapes, sizes


def _sklearn_to_layout_index(view, layout, shapes, sizes):
    """For each layout position, the index of the same entry in sklearn's flat
    vector (torch weights are sklearn's transposed)."""
    offsets = np.cumsum([0] + sizes)
    mods = view.linear_modules()
    named = {}
    for i, mod in enumerate(mods):
        W_idx = torch.arange(offsets[2 * i], offsets[2 * i + 1]).reshape(shapes[2 * i])
        b_idx = torch.arange(offsets[2 * i + 1], offsets[2 * i + 2])
        named[mod + ".weight"] = W_idx.T
        named[mod + ".bias"] = b_idx
    return layout.flatten({k: v for k, v in named.items() if k in layout.names})


def test_hessian_and_hvp_match_autograd_hessian_of_sklearn_objective():
    est, view, X, T = _mlp_problem()
    layout = ParamLayout(view, view.select("all"), X)
    problem = HessianProblem(view, layout, X, T, budget=MemoryBudget(batch_size=7))
    f, theta, shapes, sizes = _sklearn_objective(est, X, T)
    perm = _sklearn_to_layout_index(view, layout, shapes, sizes)
    torch.testing.assert_close(theta[perm], problem.theta, rtol=0, atol=0)

    H_ref = torch.autograd.functional.hessian(f, theta)[perm][:, perm]
    torch.testing.assert_close(problem.hessian(block=13), H_ref, rtol=1e-9, atol=1e-12)
    V = torch.randn(3, layout.p, dtype=F64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(problem.hvp(V), V @ H_ref.T, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(problem.hvp(V[0]), H_ref @ V[0], rtol=1e-9, atol=1e-12)
    g_ref = torch.autograd.grad(f(theta.requires_grad_(True)), theta)[0][perm]
    torch.testing.assert_close(problem.gradient(), g_ref, rtol=1e-10, atol=1e-13)

    # A mini-batch HVP estimates the full objective from a subset of rows.
    idx = torch.tensor([1, 4, 5, 11, 20, 29])
    f_sub, *_ = _sklearn_objective(est, X, T, rows=idx)
    H_sub = torch.autograd.functional.hessian(f_sub, theta.detach())[perm][:, perm]
    torch.testing.assert_close(
        problem.hvp(V, idx=idx), V @ H_sub.T, rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("parameters", ["last", ["2"], ["0.bias", "2.weight"]])
def test_parameter_subsets_are_slices_of_the_full_problem(parameters):
    est, view, X, T = _mlp_problem()
    full = ParamLayout(view, view.select("all"), X)
    names = view.select(parameters)
    expected = {
        "last": ["2.weight", "2.bias"],
        "2": ["2.weight", "2.bias"],
        "0.bias": ["0.bias", "2.weight"],
    }[parameters if isinstance(parameters, str) else parameters[0]]
    assert names == expected
    sub = ParamLayout(view, names, X)
    # Positions of the subset's entries inside the full layout.
    index = torch.arange(full.p, dtype=F64).reshape(1, -1)
    pos = _to_layout(
        sub, {k: v for k, v in _by_name(full, index).items() if k in names}
    )
    pos = pos[0].long()

    G_full = row_gradients(view, full, X, T).materialise()
    G_sub = row_gradients(view, sub, X, T).materialise()
    torch.testing.assert_close(G_sub, G_full[:, pos], rtol=1e-12, atol=1e-14)
    H_full = HessianProblem(view, full, X, T).hessian()
    H_sub = HessianProblem(view, sub, X, T).hessian()
    torch.testing.assert_close(H_sub, H_full[pos][:, pos], rtol=1e-10, atol=1e-13)


def test_unknown_parameter_name_is_a_value_error():
    _, view, _, _ = _mlp_problem()
    with pytest.raises(ValueError, match="parameters contains 'nope'.*Available"):
        view.select(["nope"])

"""Random projection against the explicit projection of exact gradients.

Reference: per-row gradients from a float64 loop of ``torch.autograd.grad``,
multiplied by the explicit block-diagonal matrix (a Kronecker product per
Linear layer, the dense Gaussian block for the rest).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skinfluence.gradients import GradientProjection, ParamLayout, row_gradients
from skinfluence.gradients._projection import _allocate, _split
from skinfluence.models import ModelView


class Scale(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.s = nn.Parameter(torch.linspace(0.5, 1.5, width))

    def forward(self, x):
        return x * self.s


def _problem(n=30, m=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    module = nn.Sequential(
        nn.Linear(6, 12),
        nn.Tanh(),
        Scale(12),
        nn.Linear(12, 9),
        nn.ReLU(),
        nn.Linear(9, 4),
    ).double()
    X = torch.randn(n + m, 6, generator=gen, dtype=torch.float64)
    T = torch.randint(0, 4, (n + m,), generator=gen)
    view = ModelView(
        module,
        lambda out, t: F.cross_entropy(out, t, reduction="none"),
        n_train=n,
        task="classification",
        encode_target=torch.as_tensor,
    )
    layout = ParamLayout(view, view.select("all"), X[:2])
    return view, layout, X, T


def _loop_grads(view, X, T):
    params = list(view.module.parameters())
    for p in params:
        p.requires_grad_(True)
    try:
        rows = []
        for i in range(X.shape[0]):
            value = view.loss(view.module(X[i : i + 1]), T[i : i + 1]).sum()
            rows.append(
                torch.cat([g.reshape(-1) for g in torch.autograd.grad(value, params)])
            )
    finally:
        for p in params:
            p.requires_grad_(False)
    return torch.stack(rows)


def _layout_order(view, layout, flat_loop):
    """Reorder loop gradients (module order) into the layout's flat order."""
    names = [n for n, _ in view.module.named_parameters()]
    sizes = [view.params[n].numel() for n in names]
    pieces = dict(zip(names, torch.split(flat_loop, sizes, dim=1)))
    tensors = {
        n: pieces[n].reshape(flat_loop.shape[0], *view.params[n].shape) for n in names
    }
    return layout.flatten(tensors, batch_dims=1)


def _explicit_matrix(proj, layout):
    blocks = []
    for g, (R_in, R_out) in zip(layout.groups, proj.mats):
        R_in = torch.eye(g.cols, dtype=torch.float64) if R_in is None else R_in
        R_out = torch.eye(g.out, dtype=torch.float64) if R_out is None else R_out
        blocks.append(torch.kron(R_out, R_in))
    if layout.p_dense:
        blocks.append(
            torch.eye(layout.p_dense, dtype=torch.float64)
            if proj.dense is None
            else proj.dense
        )
    return torch.block_diag(*blocks)


@pytest.mark.parametrize("dim", [20, 60, 200])
def test_projection_equals_explicit_projection_of_loop_gradients(dim):
    view, layout, X, T = _problem()
    G = row_gradients(view, layout, X, T)
    proj = GradientProjection(
        layout, dim, torch.Generator().manual_seed(3), probe=G, dtype=torch.float64
    )
    assert proj.dim <= dim + 2 and proj.dim >= dim // 2
    ref = _layout_order(view, layout, _loop_grads(view, X, T)) @ _explicit_matrix(
        proj, layout
    )
    PG = proj(G)
    torch.testing.assert_close(PG.materialise(), ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(PG.dot(PG), ref @ ref.T, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(PG.sq_norms(), (ref**2).sum(1), rtol=1e-10, atol=0)
    # Flat vectors (preconditioned or aggregated queries) project the same way.
    flat = proj(type(G).from_flat(layout, G.materialise()))
    torch.testing.assert_close(flat.flat, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(flat.dot(PG), ref @ ref.T, rtol=1e-10, atol=1e-12)


def test_projection_is_seeded():
    view, layout, X, T = _problem()
    G = row_gradients(view, layout, X, T)
    a = GradientProjection(layout, 50, torch.Generator().manual_seed(1), probe=G)
    b = GradientProjection(layout, 50, torch.Generator().manual_seed(1), probe=G)
    c = GradientProjection(layout, 50, torch.Generator().manual_seed(2), probe=G)
    assert torch.equal(a(G).dot(a(G)), b(G).dot(b(G)))
    assert not torch.equal(a(G).dot(a(G)), c(G).dot(c(G)))


def test_johnson_lindenstrauss_unbiased_and_tightening():
    """Averaged over seeds the projected Gram matrix is the exact one, and a
    larger dimension brings one draw closer to it."""
    view, layout, X, T = _problem()
    G = row_gradients(view, layout, X, T)
    exact = G.dot(G)
    scale = exact.abs().max()
    errors = {}
    for dim in (30, 300):
        draws = [
            (lambda p: p(G).dot(p(G)))(
                GradientProjection(
                    layout,
                    dim,
                    torch.Generator().manual_seed(s),
                    probe=G,
                    dtype=torch.float64,
                )
            )
            for s in range(200)
        ]
        mean = torch.stack(draws).mean(0)
        # Unbiased: the mean of 200 draws is within a few standard errors.
        sd = torch.stack(draws).std(0) / np.sqrt(len(draws))
        assert ((mean - exact).abs() <= 5 * sd + 1e-9 * scale).float().mean() > 0.99
        errors[dim] = float(
            torch.stack([(d - exact).norm() for d in draws]).mean() / exact.norm()
        )
    assert errors[300] < 0.5 * errors[30]


def test_split_and_allocate():
    assert _split(10_000, 9, 13) == (9, 13)  # the whole block: exact
    kr, kc = _split(30, 9, 13)
    assert kr <= 9 and kc <= 13 and 20 <= kr * kc <= 30
    ks = _allocate(100, [10, 1000, 1000], [5.0, 1.0, 1.0])
    assert ks[0] == 10 and ks[1] == ks[2] == 45


def test_assemble_equals_cat():
    from skinfluence.gradients import RowGrads

    view, layout, X, T = _problem()
    X, T = X[:30], T[:30]
    parts = [
        (
            slice(s, min(30, s + 7)),
            row_gradients(view, layout, X[s : s + 7], T[s : s + 7]),
        )
        for s in range(0, 30, 7)
    ]
    whole = RowGrads.assemble(iter(parts), 30)
    torch.testing.assert_close(
        whole.materialise(), RowGrads.cat([g for _, g in parts]).materialise()
    )
    flat = RowGrads.assemble(
        ((sl, RowGrads.from_flat(layout, g.materialise())) for sl, g in parts), 30
    )
    torch.testing.assert_close(flat.flat, whole.materialise())

import pytest
import torch
from torch import nn

from skinfluence.gradients import HessianProblem, ParamLayout
from skinfluence.models import L2Penalty, ModelView
from skinfluence.models._losses import multinomial_loss
from skinfluence.utils._torch import MemoryBudget

N, D, H, C = 30, 3, 4, 3
PENALTY = 0.7


def _view(loss=multinomial_loss, penalty=True, dtype=torch.float64):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, C)).to(dtype)

    def l2(params):
        return PENALTY * sum((params[k] ** 2).sum() for k in ("0.weight", "2.weight"))

    if penalty == "l2":
        # Declared as L2: products add its Hessian in closed form.
        l2 = L2Penalty(["0.weight", "2.weight"], PENALTY)
    return ModelView(
        module,
        loss,
        penalty=l2 if penalty else None,
        n_train=N,
        task="classification",
        encode_target=lambda y: y,
    )


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, D, generator=g, dtype=torch.float64), torch.randint(
        0, C, (N,), generator=g
    )


def _objective(flat, X, T, rows, weight, penalty=True):
    """The mean objective written out by hand, on a flat vector ordered as
    ``[W1 | b1]`` row-major then ``[W2 | b2]`` row-major."""
    a = H * (D + 1)
    B1 = flat[:a].reshape(H, D + 1)
    B2 = flat[a:].reshape(C, H + 1)
    W1, b1, W2, b2 = B1[:, :D], B1[:, D], B2[:, :H], B2[:, H]
    out = torch.tanh(X[rows] @ W1.T + b1) @ W2.T + b2
    value = nn.functional.cross_entropy(out, T[rows], reduction="sum") * weight
    if penalty:
        value = value + PENALTY * ((W1**2).sum() + (W2**2).sum())
    return value / N


def _explicit_hessian(view, X, T, rows, weight, penalty=True):
    p = view.params
    flat = torch.cat(
        [
            torch.cat([p["0.weight"], p["0.bias"][:, None]], 1).reshape(-1),
            torch.cat([p["2.weight"], p["2.bias"][:, None]], 1).reshape(-1),
        ]
    ).requires_grad_(True)
    (g,) = torch.autograd.grad(
        _objective(flat, X, T, rows, weight, penalty), flat, create_graph=True
    )
    rows_of_h = [
        torch.autograd.grad(g[i], flat, retain_graph=True)[0] for i in range(len(flat))
    ]
    return torch.stack(rows_of_h)


@pytest.mark.parametrize("penalty", [True, "l2", False])
def test_hvp_matches_explicit_hessian(penalty):
    view = _view(penalty=penalty)
    X, T = _data()
    layout = ParamLayout(view, view.select("all"), X[:2])
    problem = HessianProblem(view, layout, X, T, budget=MemoryBudget(batch_size=7))
    assert (problem._penalty_diag is not None) == (penalty == "l2")
    ref = _explicit_hessian(view, X, T, slice(None), 1.0, bool(penalty))
    V = torch.randn(5, layout.p, dtype=torch.float64)
    torch.testing.assert_close(problem.hvp(V), V @ ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(problem.hvp(V[0]), ref @ V[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(problem.hessian(), ref, rtol=1e-10, atol=1e-12)


def test_minibatch_hvp_is_rescaled_subset_hessian():
    view = _view()
    X, T = _data()
    layout = ParamLayout(view, view.select("all"), X[:2])
    problem = HessianProblem(view, layout, X, T)
    idx = torch.tensor([3, 3, 17])
    ref = _explicit_hessian(view, X, T, idx, N / len(idx))
    V = torch.randn(4, layout.p, dtype=torch.float64)
    torch.testing.assert_close(problem.hvp(V, idx=idx), V @ ref, rtol=1e-10, atol=1e-12)


def test_hvp_on_a_parameter_subset():
    view = _view()
    X, T = _data()
    layout = ParamLayout(view, view.select("last"), X[:2])
    problem = HessianProblem(view, layout, X, T)
    full = _explicit_hessian(view, X, T, slice(None), 1.0)
    last = slice(H * (D + 1), None)
    V = torch.randn(2, layout.p, dtype=torch.float64)
    torch.testing.assert_close(
        problem.hvp(V), V @ full[last, last], rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("penalty", [True, False])
def test_objective_linear_in_parameters(penalty):
    # A loss linear in every parameter has no data curvature: only the
    # penalty's Hessian (2 * PENALTY on the weights, 0 on the biases) is left.
    view = _view(loss=lambda out, t: out.sum(1), penalty=penalty)
    X, T = _data()
    layout = ParamLayout(view, ["2.weight", "2.bias"], X[:2])
    problem = HessianProblem(view, layout, X, T)
    V = torch.randn(3, layout.p, dtype=torch.float64)
    diag = torch.zeros(C, H + 1, dtype=torch.float64)
    if penalty:
        diag[:, :H] = 2 * PENALTY / N
    torch.testing.assert_close(
        problem.hvp(V), V * diag.reshape(-1), rtol=1e-12, atol=1e-14
    )


def _count_forwards(view):
    calls = []
    view.module.register_forward_hook(lambda *a: calls.append(1))
    return calls


def test_reused_graph_gives_the_same_products_with_one_forward_per_chunk():
    view = _view()
    X, T = _data()
    layout = ParamLayout(view, view.select("all"), X[:2])
    problem = HessianProblem(view, layout, X, T, budget=MemoryBudget(batch_size=7))
    ref = _explicit_hessian(view, X, T, slice(None), 1.0)
    idx = torch.tensor([3, 3, 17])
    ref_rows = _explicit_hessian(view, X, T, idx, N / len(idx))
    V = torch.randn(5, layout.p, dtype=torch.float64)
    calls = _count_forwards(view)
    with problem.reuse_graph():
        for _ in range(3):
            torch.testing.assert_close(problem.hvp(V), V @ ref, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(
                problem.hvp(V[1]), ref @ V[1], rtol=1e-10, atol=1e-12
            )
        # 30 rows in chunks of 7: five forward passes for six products.
        assert len(calls) == 5
        torch.testing.assert_close(
            problem.hvp(V, idx=idx), V @ ref_rows, rtol=1e-10, atol=1e-12
        )
        torch.testing.assert_close(
            problem.hvp(V, idx=idx), V @ ref_rows, rtol=1e-10, atol=1e-12
        )
        assert len(calls) == 6
        torch.testing.assert_close(problem.hvp(V), V @ ref, rtol=1e-10, atol=1e-12)
        assert len(calls) == 11
    assert problem._graphs is None
    problem.hvp(V)
    assert len(calls) == 16
    assert problem.n_hvp == 7 * 5 + 3


@pytest.mark.parametrize("batched", [True, False])
def test_reused_graph_splits_many_vectors_and_respects_the_budget(monkeypatch, batched):
    # Vectors in batched passes (as on a GPU), or one pass per vector (as on
    # a CPU): the same products and forward passes either way.
    monkeypatch.setattr(HessianProblem, "_batches_vectors", lambda self: batched)
    view = _view()
    X, T = _data()
    layout = ParamLayout(view, view.select("all"), X[:2])
    row_bytes = HessianProblem(view, layout, X, T)._row_bytes()
    ref = _explicit_hessian(view, X, T, slice(None), 1.0)
    V = torch.randn(5, layout.p, dtype=torch.float64)
    # Room for the kept graphs of all 30 rows, and for products of only two
    # vectors at a time over a 7-row chunk.
    fits = MemoryBudget(memory_budget=64 * row_bytes, batch_size=7)
    # Too little room to keep the graphs: every product redoes its passes.
    tight = MemoryBudget(memory_budget=40 * row_bytes, batch_size=7)
    assert fits.rows_for(row_bytes * 7) == 2
    for budget, forwards in [(fits, 5), (tight, 10)]:
        problem = HessianProblem(view, layout, X, T, budget=budget)
        calls = _count_forwards(view)
        with problem.reuse_graph():
            for _ in range(2):
                torch.testing.assert_close(
                    problem.hvp(V), V @ ref, rtol=1e-10, atol=1e-12
                )
        assert len(calls) == forwards
        view.module._forward_hooks.clear()


def test_products_in_bfloat16_are_close_and_kept_graphs_follow_the_precision():
    X, T = _data()
    ref = _explicit_hessian(_view(), X, T, slice(None), 1.0).float()
    view = _view(dtype=torch.float32)
    X = X.float()
    layout = ParamLayout(view, view.select("all"), X[:2])
    problem = HessianProblem(view, layout, X, T)
    V = torch.randn(3, layout.p)
    exact = V @ ref

    def rel_err(out):
        return float((out - exact).norm() / exact.norm())

    assert rel_err(problem.hvp(V)) < 1e-5
    with problem.products_in(torch.bfloat16):
        low = problem.hvp(V)
    assert low.dtype == torch.float32
    # bfloat16 matrix products: close to the Hessian, but not float32-exact.
    assert 1e-4 < rel_err(low) < 5e-2
    calls = _count_forwards(view)
    with problem.reuse_graph():
        with problem.products_in(torch.bfloat16):
            torch.testing.assert_close(problem.hvp(V), low)
        # The kept bfloat16 graph is not reused at full precision.
        assert rel_err(problem.hvp(V)) < 1e-5
        with problem.products_in(torch.bfloat16):
            torch.testing.assert_close(problem.hvp(V), low)
    assert len(calls) == 3
    # A problem in its own dtype runs unchanged.
    with problem.products_in(torch.float32):
        assert rel_err(problem.hvp(V)) < 1e-5


def test_l2_penalty_diagonal_covers_only_penalised_layout_parameters():
    view = _view(penalty="l2")
    X, _ = _data()
    layout = ParamLayout(view, view.select("last"), X[:2])
    diag = view.penalty.hessian_diagonal(layout, torch.zeros(1, dtype=torch.float64))
    parts = layout.unflatten(diag)
    # Only the last layer is in the layout; its bias is not penalised.
    assert set(parts) == {"2.weight", "2.bias"}
    torch.testing.assert_close(
        parts["2.weight"], torch.full((C, H), 2 * PENALTY, dtype=torch.float64)
    )
    torch.testing.assert_close(parts["2.bias"], torch.zeros(C, dtype=torch.float64))
    params = {k: v.clone() for k, v in view.params.items()}
    expected = PENALTY * (
        (params["0.weight"] ** 2).sum() + (params["2.weight"] ** 2).sum()
    )
    torch.testing.assert_close(view.penalty(params), expected)


@pytest.mark.parametrize("parameters", ["all", "last"])
@pytest.mark.parametrize("idx", [None, torch.tensor([3, 7, 11])])
def test_l2_penalty_in_closed_form_matches_differentiated_penalty(idx, parameters):
    X, T = _data()
    out = []
    for penalty in (True, "l2"):
        view = _view(penalty=penalty)
        layout = ParamLayout(view, view.select(parameters), X[:2])
        problem = HessianProblem(view, layout, X, T, budget=MemoryBudget(batch_size=7))
        V = torch.randn(
            4, layout.p, dtype=torch.float64, generator=torch.Generator().manual_seed(5)
        )
        out.append(problem.hvp(V, idx=idx))
        with problem.reuse_graph():
            out.append(problem.hvp(V, idx=idx))
    for other in out[1:]:
        torch.testing.assert_close(other, out[0], rtol=1e-12, atol=1e-14)


def test_a_replica_gives_the_same_products_from_another_thread():
    import threading

    view = _view(penalty=True)
    X, T = _data()
    layout = ParamLayout(view, view.select("all"), X[:2])
    problem = HessianProblem(view, layout, X, T)
    replica = problem.replica()
    assert replica.view.module is not problem.view.module
    assert replica.X is problem.X and replica.n_hvp == 0
    for a, b in zip(replica.view.module.parameters(), view.module.parameters()):
        assert a.data_ptr() != b.data_ptr()
        torch.testing.assert_close(a, b)
    V = torch.randn(
        3, layout.p, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    rows = [torch.tensor([i]) for i in range(N)]
    expected = [problem.hvp(V, idx=r) for r in rows]
    results = {}

    def run(which, prob):
        results[which] = [prob.hvp(V, idx=r) for r in rows * 20]

    # Concurrent products, one problem per thread: each sees its own model.
    threads = [
        threading.Thread(target=run, args=(k, prob))
        for k, prob in enumerate([problem, replica])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for out in results.values():
        for k, got in enumerate(out):
            torch.testing.assert_close(got, expected[k % N], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("penalty", [True, "l2"])
def test_products_on_follow_the_tensor_as_it_changes(penalty):
    view = _view(penalty=penalty)
    X, T = _data()
    layout = ParamLayout(view, view.select("all"), X[:2])
    problem = HessianProblem(view, layout, X, T)
    g = torch.Generator().manual_seed(3)
    h = torch.randn(3, layout.p, dtype=torch.float64, generator=g)
    apply = problem.products_on(h)
    for rows in ([4], [0, 9, 17], [5]):
        idx = torch.tensor(rows)
        ref = _explicit_hessian(view, X, T, idx, N / len(rows), bool(penalty))
        expected = h @ ref
        got = apply(idx)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(problem.hvp(h, idx=idx), expected)
        # The next step's vectors, written in place, as LiSSA does.
        h.mul_(0.5).add_(torch.randn(h.shape, dtype=h.dtype, generator=g))
    with pytest.raises(ValueError, match="products_on needs a"):
        problem.products_on(h[0])
    with pytest.raises(ValueError, match="dtype"):
        problem.products_on(h.float())

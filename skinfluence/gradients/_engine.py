"""Per-row gradients of a measurement, computed chunk by chunk."""

import torch
from torch.func import functional_call, grad, vmap

from ..utils._torch import MemoryBudget
from ._rowgrads import RowGrads

__all__ = [
    "default_chunk",
    "iter_row_gradients",
    "row_gradients",
    "row_work_bytes",
    "total_gradient",
]

# Per-row memory is dominated by activations and gradient copies; this factor
# turns the size of one row's gradient into a conservative working-set size.
_WORKSET_FACTOR = 4


def row_work_bytes(layout, dtype):
    """Working memory of one row's per-row gradient work, in bytes."""
    itemsize = torch.tensor([], dtype=dtype).element_size()
    return (layout.factor_width + 64) * itemsize * _WORKSET_FACTOR


def default_chunk(layout, dtype, budget=None):
    """Rows per chunk for per-row gradient work: the budget's ``batch_size``
    when set, else as many rows as one chunk of the
    :class:`~skinfluence.utils._torch.MemoryBudget` holds (16 to 8192)."""
    budget = MemoryBudget() if budget is None else budget
    return budget.batch_rows(row_work_bytes(layout, dtype), minimum=16, maximum=8192)


def _linear_factors(view, layout, X, T, params, measure, weights):
    """Factors ``(A, D)`` of every Linear group, from one forward and one
    backward pass over the chunk."""
    modules = dict(view.module.named_modules())
    params = dict(params)
    for g in layout.groups:
        params[g.weight] = params[g.weight].detach().requires_grad_(True)
    captured = {}
    handles = []
    for g in layout.groups:

        def hook(mod, args, out, name=g.module):
            captured[name] = (args[0], out)

        handles.append(modules[g.module].register_forward_hook(hook))
    try:
        with torch.enable_grad():
            output = functional_call(view.module, params, (X,))
            values = measure(output, T)
            if weights is not None:
                values = values * weights
            outs = [captured[g.module][1] for g in layout.groups]
            deltas = torch.autograd.grad(values.sum(), outs, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    factors = []
    for g, delta in zip(layout.groups, deltas):
        a = captured[g.module][0].detach()
        if delta is None:
            delta = torch.zeros(a.shape[0], g.out, dtype=a.dtype, device=a.device)
        if g.bias is not None:
            a = torch.cat([a, torch.ones_like(a[:, :1])], dim=1)
        factors.append((a, delta.detach()))
    return factors


def _dense_grads(view, layout, X, T, params, measure, weights):
    """Per-row gradients of the dense parameters with ``vmap(grad(...))``."""
    base = {k: v for k, v in params.items() if k not in layout.dense}
    dense = {k: params[k].detach() for k in layout.dense}

    def f(dense_params, x, t, w):
        out = functional_call(view.module, {**base, **dense_params}, (x.unsqueeze(0),))
        return (measure(out, t.unsqueeze(0)) * w).sum()

    w = (
        weights
        if weights is not None
        else torch.ones(X.shape[0], dtype=X.dtype, device=X.device)
    )
    g = vmap(grad(f), in_dims=(None, 0, 0, 0))(dense, X, T, w)
    return torch.cat([g[k].reshape(X.shape[0], -1) for k in layout.dense], dim=1)


def row_gradients(view, layout, X, T, *, params=None, measure=None, weights=None):
    """Per-row gradients of one chunk as :class:`RowGrads`.

    Parameters
    ----------
    view : ModelView
    layout : ParamLayout
    X, T : Tensor
        Inputs and targets (as ``view.encode_target`` makes them).
    params : dict, optional
        Parameters to differentiate at (defaults to the fitted ones), e.g. a
        perturbed copy or a checkpoint.
    measure : callable, optional
        ``measure(output, target) -> (n,)``; defaults to the training loss.
    weights : Tensor (n,), optional
        Per-row multipliers of the measurement.
    """
    params = view.params if params is None else params
    measure = view.loss if measure is None else measure
    factors = (
        _linear_factors(view, layout, X, T, params, measure, weights)
        if layout.groups
        else []
    )
    dense = (
        _dense_grads(view, layout, X, T, params, measure, weights)
        if layout.dense
        else None
    )
    return RowGrads(layout, factors=factors, dense=dense)


def iter_row_gradients(view, layout, X, T, *, chunk=None, progress=None, **kwargs):
    """Yield ``(slice, RowGrads)`` over row chunks of ``X``."""
    n = X.shape[0]
    chunk = chunk or default_chunk(layout, view.dtype)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        w = kwargs.get("weights")
        kw = dict(kwargs)
        if w is not None:
            kw["weights"] = w[sl]
        yield sl, row_gradients(view, layout, X[sl], T[sl], **kw)
        if progress is not None:
            progress.update(sl.stop - sl.start)


def total_gradient(
    view, layout, X, T, *, params=None, measure=None, weights=None, chunk=None
):
    """Flat gradient of ``sum_i weights_i * measure_i`` over all rows, (p,)."""
    params = view.params if params is None else params
    measure = view.loss if measure is None else measure
    n = X.shape[0]
    chunk = chunk or default_chunk(layout, view.dtype)
    total = torch.zeros(layout.p, dtype=view.dtype, device=view.device)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        p = dict(params)
        leaves = {k: params[k].detach().requires_grad_(True) for k in layout.names}
        p.update(leaves)
        with torch.enable_grad():
            out = functional_call(view.module, p, (X[sl],))
            vals = measure(out, T[sl])
            if weights is not None:
                vals = vals * weights[sl]
            gs = torch.autograd.grad(
                vals.sum(), [leaves[k] for k in layout.names], allow_unused=True
            )
        gd = {
            k: (g if g is not None else torch.zeros_like(leaves[k]))
            for k, g in zip(layout.names, gs)
        }
        total += layout.flatten(gd)
    return total

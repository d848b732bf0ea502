"""Hessian-vector products and explicit Hessians of the training objective."""

import contextlib
import copy

import torch
from torch.func import functional_call, grad

from ..utils._torch import MemoryBudget, rademacher
from ._engine import default_chunk

__all__ = ["HessianProblem"]


class HessianProblem:
    """The mean training objective ``J(theta)/n`` over a parameter subset.

    ``J = sum_i loss_i + penalty``, the estimator's own objective (see
    :class:`~skinfluence.models.ModelView`), so its Hessian is the one leave-one-
    out retraining sees. All products are in the layout's flat order.

    Parameters
    ----------
    view : ModelView
    layout : ParamLayout
    X, T : Tensor
        Training inputs and encoded targets.
    budget : MemoryBudget, optional
        Sizes the chunks of the data passes (its ``batch_size``, when set,
        is the rows per chunk).
    """

    def __init__(self, view, layout, X, T, budget=None):
        self.view = view
        self.layout = layout
        self.X = X
        self.T = T
        self.n = view.n_train
        self.p = layout.p
        self.budget = MemoryBudget() if budget is None else budget
        self.theta = layout.flatten({k: view.params[k] for k in layout.names})
        self._base = {k: v for k, v in view.params.items() if k not in layout.names}
        self.n_hvp = 0
        # A penalty declared as L2 has a constant diagonal Hessian, added to
        # each product directly rather than differentiated twice.
        diagonal = getattr(view.penalty, "hessian_diagonal", None)
        self._penalty_diag = None if diagonal is None else diagonal(layout, self.theta)
        # ``None``: every product redoes its forward and first backward
        # pass; a dict while :meth:`reuse_graph` is active.
        self._graphs = None
        # The dtype that the products' matrix multiplications are autocast
        # to inside :meth:`products_in`; ``None``: the problem's own.
        self._autocast = None

    @property
    def dtype(self):
        return self.theta.dtype

    @property
    def device(self):
        return self.theta.device

    def _params(self, flat):
        return {**self._base, **self.layout.unflatten(flat)}

    def _data_term(self, flat, x, t):
        out = functional_call(self.view.module, self._params(flat), (x,))
        return self.view.loss(out, t).sum()

    def _penalty_term(self, flat):
        value = self.view.penalty_value(self._params(flat))
        if value is None:
            return flat.sum() * 0
        return value

    def row_chunk(self):
        """Rows per chunk of per-row gradient work on this problem."""
        return default_chunk(self.layout, self.dtype, self.budget)

    def _chunks(self, n_vectors, rows=None, n_rows=None):
        n = self.X.shape[0] if n_rows is None else n_rows
        if rows is None:
            rows = self.budget.batch_rows(
                self._row_bytes() * max(1, n_vectors), minimum=8, maximum=n
            )
        for start in range(0, n, rows):
            yield slice(start, min(n, start + rows))

    def gradient(self):
        """Gradient of the mean objective (≈ 0 at a fitted optimum)."""
        g = grad(self._penalty_term)(self.theta)
        for sl in self._chunks(1):
            g = g + grad(self._data_term)(self.theta, self.X[sl], self.T[sl])
        return g / self.n

    def signed_gradients(self, n_probes, generator=None, idx=None):
        """``(n_probes, p)`` sums ``sum_i s_i grad loss_i`` over the training
        rows (or the rows ``idx``) with independent random signs ``s_i = +-1``.

        Their second moment is ``sum_i g_i g_i^T``: probes that weight each
        direction by how much of the rows' gradients lies along it. One
        forward pass and one backward pass batched over the probes, in the
        precision of :meth:`products_in`.
        """
        rows = torch.arange(self.X.shape[0], device=self.device) if idx is None else idx
        signs = rademacher((n_probes, len(rows)), generator, self.dtype, self.device)
        out = torch.zeros(n_probes, self.p, dtype=self.dtype, device=self.device)
        batched = self._batches_vectors()
        for sl in self._chunks(n_probes if batched else 1, n_rows=len(rows)):
            params, leaves = self._leaves()
            with torch.enable_grad():
                pred = self._forward(params, self.X[rows[sl]])
                losses = self.view.loss(pred, self.T[rows[sl]])
                if batched:
                    res = torch.autograd.grad(
                        losses,
                        leaves,
                        grad_outputs=signs[:, sl],
                        is_grads_batched=True,
                        allow_unused=True,
                    )
                else:
                    each = [
                        torch.autograd.grad(
                            losses,
                            leaves,
                            grad_outputs=signs[k, sl],
                            retain_graph=k < n_probes - 1,
                            allow_unused=True,
                        )
                        for k in range(n_probes)
                    ]
                    res = [None if g[0] is None else torch.stack(g) for g in zip(*each)]
            out += self._flatten_batched(leaves, res, n_probes)
        return out

    def _batches_vectors(self):
        """Whether the backward passes of several vectors are batched into
        one (``is_grads_batched``). Not on a CPU, where one pass per vector
        costs less: on the MLP of ``benchmarks/speed_if.py`` (2,000 rows, one
        thread), 87 ms against 125 ms for 4 products through kept graphs,
        and 28 ms against 50 ms for 4 signed gradient sums."""
        return self.device.type != "cpu"

    def _flatten_batched(self, leaves, grads, m, into=None):
        """Flat (m, p) from autograd results batched over ``m`` vectors; a
        ``None`` (no dependence) is zeros, which ``materialize_grads`` would
        give without the batch dimension. Written into one tensor, new or
        the ``(tensor, views)`` pair ``into``: a one-row product is short
        enough for each extra temporary (and each torch call) to show."""
        if into is None:
            out = torch.empty(m, self.p, dtype=self.dtype, device=self.device)
            views = self.layout.unflatten(out)
        else:
            out, views = into
        for name, g in zip(self.layout.names, grads):
            if g is None:
                views[name].zero_()
            else:
                views[name].copy_(g.detach() if g.requires_grad else g)
        return out

    def _leaves(self):
        """All parameters, with fresh leaves that require grad for the subset."""
        params = dict(self._base)
        leaves = []
        for name in self.layout.names:
            leaf = self.view.params[name].detach().requires_grad_(True)
            params[name] = leaf
            leaves.append(leaf)
        return params, leaves

    def _hvp_pass(self, U, x, t, weight, with_penalty, prepared=None, into=None):
        """``weight * H_rows U`` (+ the penalty's Hessian times ``U``, unless
        it is added in closed form) on the sum scale for the tangent dict
        ``U`` of ``m`` stacked vectors (``prepared`` leaves and the ``into``
        result as in :meth:`_graph` and :meth:`_second_backward`).

        One forward pass, a backward pass that keeps its graph, and one
        double-backward pass batched over the ``m`` vectors
        (``is_grads_batched``): plain reverse-over-reverse autograd, whose
        fixed cost per call is far below that of composed ``torch.func``
        transforms, which matters for the one-row products of LiSSA.
        """
        leaves, grads = self._graph(x, t, weight, with_penalty, prepared)
        return self._second_backward(leaves, grads, U, False, into)

    def _forward(self, params, x):
        """The module's output on ``x``, its matrix multiplications in the
        dtype of :meth:`products_in`; the output (hence the loss and its
        derivatives) in the problem's dtype."""
        if self._autocast is None:
            return functional_call(self.view.module, params, (x,))
        with torch.autocast(self.device.type, dtype=self._autocast):
            out = functional_call(self.view.module, params, (x,))
        return out.to(self.dtype)

    def _graph(self, x, t, weight, with_penalty, prepared=None):
        """``(leaves, gradients)`` of one chunk's objective, the gradients
        with their graph kept for second backward passes; ``prepared`` is a
        ``(params, leaves)`` pair of :meth:`_leaves` to use again (each
        graph is new, so its leaves can be those of the last one)."""
        params, leaves = self._leaves() if prepared is None else prepared
        with torch.enable_grad():
            out = self._forward(params, x)
            value = self.view.loss(out, t).sum() * weight
            if with_penalty and self._penalty_diag is None:
                penalty = self.view.penalty_value(params)
                if penalty is not None:
                    value = value + penalty
            grads = torch.autograd.grad(
                value, leaves, create_graph=True, allow_unused=True
            )
        return leaves, grads

    def _second_backward(self, leaves, grads, U, keep_graph, into=None):
        """``H U`` on the sum scale from one chunk's gradient graph, for the
        tangent dict ``U`` of ``m`` stacked vectors (written into ``into``,
        a ``(tensor, views)`` pair, when given)."""
        names = self.layout.names
        # A gradient that does not depend on the parameters contributes
        # nothing to the Hessian.
        keep = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        m = next(iter(U.values())).shape[0]
        if not keep:
            if into is not None:
                return into[0].zero_()
            return torch.zeros(m, self.p, dtype=self.dtype, device=self.device)
        with torch.enable_grad():
            if m == 1:
                # One vector: a plain backward pass, which skips the cost of
                # batching.
                res = torch.autograd.grad(
                    [grads[i] for i in keep],
                    leaves,
                    grad_outputs=[U[names[i]][0] for i in keep],
                    retain_graph=keep_graph,
                    allow_unused=True,
                )
                res = [None if r is None else r.unsqueeze(0) for r in res]
            else:
                res = torch.autograd.grad(
                    [grads[i] for i in keep],
                    leaves,
                    grad_outputs=[U[names[i]] for i in keep],
                    is_grads_batched=True,
                    retain_graph=keep_graph,
                    allow_unused=True,
                )
        return self._flatten_batched(leaves, res, m, into)

    def module_bytes(self):
        """Memory of one copy of the model (parameters and buffers)."""
        module = self.view.module
        tensors = [*module.parameters(), *module.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def replica(self):
        """This problem with a private copy of the model, for products run
        in another thread at the same time.

        A functional call swaps the module's parameters for the call's own
        while it runs, so two threads calling one module would each see the
        other's leaves. The replica shares the data and every tensor but
        the module's, keeps no graphs and counts its products from zero.
        """
        clone = copy.copy(self)
        clone.view = copy.copy(self.view)
        clone.view.module = copy.deepcopy(self.view.module)
        clone.n_hvp = 0
        clone._graphs = None
        return clone

    def _row_bytes(self):
        # The working set per row and vector is its activations (about the
        # layer widths), not the parameter count.
        return (self.layout.factor_width + 256) * self.theta.element_size() * 4

    def graph_bytes(self, n_rows):
        """Estimated memory of the kept graphs of ``n_rows`` rows (their
        activations and first-backward intermediates)."""
        return n_rows * self._row_bytes()

    @contextlib.contextmanager
    def reuse_graph(self):
        """Within this block, repeated products over the same rows share one
        forward pass and one first backward pass.

        A product ``H v`` is a backward pass through the gradient's graph
        with ``v`` as its output gradient, and that graph does not depend on
        ``v``. Inside the block every chunk's graph is built once and kept,
        so each further product costs only the second backward pass (about
        two thirds of a full product on an MLP). The graphs are kept only
        when twice their :meth:`graph_bytes` fits the memory budget;
        otherwise the products run as outside the block. Results are the
        same either way, up to floating-point summation order. Iterative
        solvers (Lanczos, conjugate gradients) use it.
        """
        if self._graphs is not None:
            yield self
            return
        self._graphs = {}
        try:
            yield self
        finally:
            self._graphs = None

    @contextlib.contextmanager
    def products_in(self, dtype):
        """Within this block, the matrix multiplications of Hessian-vector
        products run in ``dtype`` (``torch.autocast``; ``None``: the
        problem's own dtype), with the loss and its derivatives in the
        problem's dtype and the products returned in it.

        ``torch.bfloat16`` halves the cost of a product on hardware with
        native bfloat16 arithmetic (a CPU with AVX-512 BF16 or AMX, a recent
        GPU), at a relative error of about 1e-2 per product: enough for
        estimates of the curvature (Krylov bases, tails, traces), not for a
        converged solve.
        """
        previous = self._autocast
        self._autocast = None if dtype == self.dtype else dtype
        try:
            yield self
        finally:
            self._autocast = previous

    def _cached_graphs(self, idx):
        """The kept per-chunk graphs ``(leaves, gradients, n_rows)`` for the
        rows ``idx`` (``None``: all rows), built on first use; ``None`` when
        they would not fit the budget."""
        entry = self._graphs.get("rows")
        if entry is not None and entry[0] is idx and entry[2] == self._autocast:
            return entry[1]
        self._graphs.clear()
        n_rows = self.X.shape[0] if idx is None else len(idx)
        graphs = None
        if self.budget.can_cache(2 * self.graph_bytes(n_rows)):
            graphs = []
            if idx is None:
                for sl in self._chunks(1):
                    graph = self._graph(self.X[sl], self.T[sl], 1.0, not graphs)
                    graphs.append((*graph, sl.stop - sl.start))
            else:
                weight = self.X.shape[0] / len(idx)
                graph = self._graph(self.X[idx], self.T[idx], weight, True)
                graphs.append((*graph, len(idx)))
        self._graphs["rows"] = (idx, graphs, self._autocast)
        return graphs

    def hvp(self, V, rows=None, idx=None):
        """``H V^T`` row-wise: (k, p) products with the mean Hessian.

        Parameters
        ----------
        V : Tensor (k, p) or (p,)
        rows : int, optional
            Chunk size of the data pass.
        idx : Tensor of int, optional
            Use only these training rows (a stochastic mini-batch estimate,
            rescaled to the full objective).
        """
        squeeze = V.dim() == 1
        V = V.reshape(-1, self.p).to(self.dtype)
        U = self.layout.unflatten(V)
        graphs = None
        if self._graphs is not None and rows is None:
            graphs = self._cached_graphs(idx)
        if graphs is not None:
            # The kept chunks are sized for one vector; many vectors go in
            # groups whose batched pass fits the same chunk budget.
            rows = max(n_rows for _, _, n_rows in graphs)
            group = self.budget.rows_for(self._row_bytes() * rows)
            if not self._batches_vectors():
                group = 1
            parts = []
            for start in range(0, V.shape[0], group):
                Ug = {k: u[start : start + group] for k, u in U.items()}
                out = None
                for leaves, grads, _ in graphs:
                    part = self._second_backward(leaves, grads, Ug, True)
                    out = part if out is None else out + part
                parts.append(out)
            out = parts[0] if len(parts) == 1 else torch.cat(parts)
        elif idx is None:
            out = None
            for sl in self._chunks(V.shape[0], rows):
                part = self._hvp_pass(U, self.X[sl], self.T[sl], 1.0, out is None)
                out = part if out is None else out + part
        else:
            weight = self.X.shape[0] / len(idx)
            out = self._hvp_pass(U, self.X[idx], self.T[idx], weight, True)
        out = self._finish(out, V)
        return out[0] if squeeze else out

    def _finish(self, out, V):
        """The sum-scale data term ``out`` (this call's own tensor, updated in
        place) to the mean-scale product: the penalty's closed-form term
        added, divided by ``n``; the products counted."""
        if self._penalty_diag is not None:
            out.addcmul_(V, self._penalty_diag)
        self.n_hvp += V.shape[0]
        return out.div_(self.n)

    def products_on(self, V):
        """``apply(idx)``: the mean-Hessian products ``H_idx V^T`` (k, p) on
        the training rows ``idx``, as :meth:`hvp` gives them, for whatever
        the (k, p) tensor ``V`` holds at the call.

        For recursions that update ``V`` in place and take a product at
        every step (LiSSA): the views of ``V`` that autograd takes as
        tangents, the parameter leaves, and the result tensor with its views
        are made once, and every call overwrites that one result. The graphs of
        :meth:`reuse_graph` are not used (each step has its own rows).
        """
        if V.dim() != 2 or V.shape[1] != self.p or V.dtype != self.dtype:
            raise ValueError(
                f"products_on needs a (k, {self.p}) tensor of dtype {self.dtype}; "
                f"got shape {tuple(V.shape)} and dtype {V.dtype}."
            )
        tangents = self.layout.unflatten(V)
        out = torch.empty_like(V)
        into = (out, self.layout.unflatten(out))
        n_rows = self.X.shape[0]
        prepared = self._leaves()

        def apply(idx):
            x, t, weight = self.X[idx], self.T[idx], n_rows / len(idx)
            self._hvp_pass(tangents, x, t, weight, True, prepared, into)
            return self._finish(out, V)

        return apply

    def hessian(self, block=256):
        """The explicit (p, p) mean Hessian, symmetrised."""
        eye = torch.eye(self.p, dtype=self.dtype, device=self.device)
        cols = [self.hvp(eye[s : s + block]) for s in range(0, self.p, block)]
        H = torch.cat(cols, dim=0)
        return (H + H.T) / 2

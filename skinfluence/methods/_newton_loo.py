"""Leverage-corrected Newton leave-one-out for generalised linear models."""

import numbers

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch.func import grad, jvp, vmap

from ..exceptions import UnsupportedEstimatorError
from ..gradients import Query
from ._base import BaseInfluenceMethod, ChunkPlan
from .ihvp import ExactSolver

__all__ = ["NewtonLOO"]

# Multiply-adds up to which n_steps="auto" takes the O(n_train^2 p) second step.
_AUTO_SECOND_STEP = 1e10


class NewtonLOO(BaseInfluenceMethod):
    """Approximate leave-one-out retraining of a generalised linear model.

    For a model whose output is one Linear layer ``z = W a`` (scikit-learn
    ``LogisticRegression``, ``SGDClassifier(loss="log_loss")``,
    ``LinearRegression``, ``Ridge``, or a torch/skorch model that is a
    single ``torch.nn.Linear``), the per-row Hessian is ``J_j^T S_j J_j``
    with ``S_j`` the loss' curvature in the output, of rank at most the
    number of outputs. One Newton step from the fitted parameters on the
    objective without row ``j`` then has a closed form (Woodbury):

        ``theta_(-j) - theta = H^{-1} J_j^T (I - S_j C_j)^{-1} r_j``,
        ``C_j = J_j H^{-1} J_j^T``

    with ``H`` the Hessian of the summed objective and ``r_j`` the loss
    gradient in the output. With one output this is the classic
    approximate leave-one-out correction: the influence function divided by
    ``1 - h_jj``, ``h_jj`` the row's leverage. High-leverage rows, which the
    first-order influence function underestimates, are then scored right.
    Further ``n_steps`` refine the step with the exact gradient of the
    leave-one-out objective (O(n_train^2 p) each).

    ``influence(q, j) ~ measure_q(theta_(-j)) - measure_q(theta)``: positive =
    helpful, on the same scale as :class:`InfluenceFunction`; with
    ``query="exact"`` the query's measurement is evaluated at
    ``theta_(-j)``, with ``query="linear"`` it is its first-order change
    ``g_q . (theta_(-j) - theta)``. Self-influence of a training row is its
    own leave-one-out loss change; for other rows it is the influence
    function's ``(1/n) g^T H^{-1} g``.

    Parameters
    ----------
    damping : float >= 0 or "auto", default="auto"
        Added to the mean Hessian's diagonal (see :class:`InfluenceFunction`).
    n_steps : int >= 1 or "auto", default="auto"
        Newton steps; 1 is the closed-form estimate. ``"auto"`` takes 2
        steps when the second one is cheap (``n_train**2 * p <= 1e10``
        multiply-adds) and 1 otherwise: the second step brings the estimate
        closer to actual leave-one-out retraining
        (``benchmarks/loo_fidelity.py`` measures how much).
    query : {"exact", "linear"}, default="exact"
        How the query measurement's change is evaluated (see above).
        Objectives that transform the query rows use ``"linear"``.
    max_params : int, default=8000
        Largest parameter count for which the Hessian is formed.

    Attributes
    ----------
    damping_ : float
    n_steps_ : int
        Newton steps taken.
    leverage_ : ndarray of shape (n_train,)
        ``trace(S_j C_j)``; ``h_jj`` for single-output models.
    steps_ : ndarray of shape (n_train, p) or None
        ``theta_(-j) - theta`` in the parameter layout; ``None`` when the
        ``n_train * p`` float64 numbers exceed the scorer's
        ``memory_budget``, in which case each chunk of rows' steps is
        recomputed from its own factors wherever scores need it (the same
        numbers, at the cost of a ``(rows, p) @ (p, p)`` product per chunk,
        and with ``n_steps_=2`` the second step again).

    See Also
    --------
    InfluenceFunction : the first-order estimate for any differentiable model.

    References
    ----------
    .. [1] Rad, Maleki. "A scalable estimate of the out-of-sample prediction
       error via approximate leave-one-out cross-validation." JRSS-B 2020.
    .. [2] Pregibon. "Logistic Regression Diagnostics." Annals of
       Statistics 1981.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import InfluenceScorer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> scorer = InfluenceScorer(LogisticRegression(), method="newton_loo")
    >>> scorer.fit(X, y).influence(X[:2], y[:2]).shape
    (2, 569)
    >>> bool((scorer.method_.leverage_ < 1).all())
    True
    """

    _parameter_constraints = {
        "damping": [
            Interval(numbers.Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "n_steps": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "query": [StrOptions({"exact", "linear"})],
        "max_params": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, damping="auto", n_steps="auto", query="exact", max_params=8000):
        self.damping = damping
        self.n_steps = n_steps
        self.query = query
        self.max_params = max_params

    def _prepare(self, ctx, c, params):
        view, layout = ctx.view, ctx.layout
        _check_glm(view, layout, ctx.X)
        group = layout.groups[0]
        problem = ctx.hessian_problem()
        solver = ExactSolver(max_params=self.max_params).fit(problem, self.damping, ctx)
        self.damping_ = solver.damping_
        f64 = torch.float64
        p, n = layout.p, view.n_train
        # Inverse of the summed objective's damped Hessian.
        eye = torch.eye(p, dtype=f64, device=view.device)
        h_inv = solver.solve(eye).to(f64) / n
        h_inv = (h_inv + h_inv.T) / 2
        a, z = _inputs_outputs(view, group, ctx.X)
        a, z = a.to(f64), z.to(f64)
        k_out = z.shape[1]
        r, s = _output_derivatives(view.loss, z, ctx.T)
        h4 = h_inv.reshape(k_out, group.cols, k_out, group.cols)
        # The contraction passes through (rows, k, k, cols) float64 temporaries.
        step = ctx.budget.rows_for(2 * 8 * k_out * k_out * group.cols)
        cmat = torch.cat(
            [
                torch.einsum("jc,kcld,jd->jkl", a[sl], h4, a[sl])
                for sl in _slices(n, step)
            ]
        )
        sc = s @ cmat
        self.leverage_ = torch.diagonal(sc, dim1=1, dim2=2).sum(1).cpu().numpy()
        ident = torch.eye(k_out, dtype=f64, device=view.device)
        m = torch.linalg.inv(ident - sc)
        self._r_tilde = (m @ r.unsqueeze(2)).squeeze(2)
        self._a, self._z, self._s, self._cmat = a, z, s, cmat
        self._h_inv = h_inv
        n_steps = self.n_steps
        if n_steps == "auto":
            n_steps = 2 if n * n * p <= _AUTO_SECOND_STEP else 1
        self.n_steps_ = n_steps
        # Every row's step is a function of that row's factors alone, so
        # when the (n_train, p) steps exceed the memory budget they are not
        # kept but recomputed chunk by chunk wherever scores need them.
        self._steps = None
        self.steps_ = None
        if ctx.budget.can_cache(8 * n * p):
            self._steps = torch.cat(
                [self._row_steps(ctx, sl) for sl in _slices(n, self._step_rows(ctx))]
            )
            self.steps_ = self._steps.cpu().numpy()

    def _step_rows(self, ctx):
        """Training rows whose steps are computed together: each takes its
        (p,) step, gradient and correction in float64 (the correction's own
        temporaries are chunked inside it)."""
        return ctx.budget.rows_for(3 * 8 * ctx.layout.p)

    def _row_steps(self, ctx, sl):
        """``theta_(-j) - theta`` (float64, in the parameter layout) of the
        training rows ``sl``."""
        a, r_tilde = self._a[sl], self._r_tilde[sl]
        g_tilde = (r_tilde.unsqueeze(2) * a.unsqueeze(1)).reshape(a.shape[0], -1)
        steps = g_tilde @ self._h_inv
        for _ in range(self.n_steps_ - 1):
            steps = steps - self._newton_correction(ctx, sl, steps)
        return steps

    def _steps_of(self, ctx, sl):
        """The steps of the rows ``sl``: from the cache, or computed now."""
        if self._steps is not None:
            return self._steps[sl]
        return self._row_steps(ctx, sl)

    def _newton_correction(self, ctx, rows, steps):
        """``H_(-j)^{-1} grad J_(-j)(theta + step_j)`` for the training rows
        ``rows`` (whose current steps are ``steps``), with the Hessian held
        at the fitted parameters (Woodbury, as above)."""
        problem = ctx.hessian_problem()
        view, t = problem.view, ctx.T
        theta = problem.theta.to(torch.float64)
        a, z, s, cmat, h_inv = self._a, self._z, self._s, self._cmat, self._h_inv
        n, cols = a.shape
        k = z.shape[1]
        ident = torch.eye(k, dtype=a.dtype, device=a.device)
        out = torch.empty_like(steps)
        # Per leave-one-out row: the outputs, loss gradients and their
        # products over all training rows, about four (n, k) float64 blocks.
        chunk = ctx.budget.rows_for(4 * 8 * n * k)
        pen = problem._penalty_term
        for loc in _slices(steps.shape[0], chunk):
            sl = slice(rows.start + loc.start, rows.start + loc.stop)
            dw = steps[loc].reshape(-1, k, cols)
            zz = z.unsqueeze(0) + torch.einsum("ic,jkc->jik", a, dw)
            rr = _loss_grad(
                view.loss,
                zz.reshape(-1, k),
                t.repeat(dw.shape[0], *([1] * (t.dim() - 1))),
            )
            rr = rr.reshape(dw.shape[0], n, k)
            own = rr[torch.arange(dw.shape[0]), torch.arange(sl.start, sl.stop)]
            gw = torch.einsum("jik,ic->jkc", rr, a) - own.unsqueeze(2) * a[
                sl
            ].unsqueeze(1)
            gvec = gw.reshape(dw.shape[0], -1)
            th = (theta.unsqueeze(0) + steps[loc]).to(problem.dtype)
            gvec = gvec + vmap(grad(pen))(th).to(gvec.dtype)
            u = gvec @ h_inv
            ju = torch.einsum("jkc,jc->jk", u.reshape(-1, k, cols), a[sl])
            corr = torch.linalg.solve(
                ident - s[sl] @ cmat[sl], (s[sl] @ ju.unsqueeze(2))
            )
            back = (corr.squeeze(2).unsqueeze(2) * a[sl].unsqueeze(1)).reshape(
                len(ju), -1
            )
            out[loc] = u + back @ h_inv
        return out

    def _scale(self, ctx):
        return 1.0

    def _chunk_plan(self, ctx, query):
        """The scores as chunk tasks over the training rows: each chunk
        carries its rows' steps (cached, or computed as it is handed out)."""
        dtype = ctx.view.dtype
        n = self._a.shape[0]
        if self.query == "linear" or query.transform is not None:
            Q = ctx.query_grads(query)
            m = Q.n
            payload = ("linear", Q, dtype)
            # Per training row: its (p,) step and (m,) scores.
            rows = ctx.budget.rows_for(8 * ctx.layout.p + 8 * m)
        else:
            group = ctx.layout.groups[0]
            aq, zq = _inputs_outputs(ctx.view, group, query.X)
            aq, zq = aq.to(torch.float64), zq.to(torch.float64)
            measure = query.measure if query.measure is not None else ctx.view.loss
            # Differences of nearby losses: evaluate in float64.
            base = measure(zq, query.T)
            if query.weights is not None:
                base = base * query.weights
            m = 1 if query.aggregate else aq.shape[0]
            payload = (
                "exact",
                (aq, zq, base, measure, query.weights, query.T),
                group.cols,
                bool(query.aggregate),
                dtype,
            )
            # Per training row, the (n_query, k) float64 outputs of the query
            # rows and the measure's temporaries on them: about sixteen such
            # blocks.
            rows = ctx.budget.rows_for(16 * 8 * aq.shape[0] * zq.shape[1])
        if self._steps is None:
            rows = min(rows, self._step_rows(ctx))

        def chunks():
            for sl in _slices(n, rows):
                yield sl, self._steps_of(ctx, sl).clone()

        return ChunkPlan(m=m, kernel=_loo_block, payload=payload, chunks=chunks())

    def _influence(self, ctx, query):
        return self._chunk_plan(ctx, query).dense(ctx)

    def _self_influence(self, ctx, X, T):
        dtype, f64 = ctx.view.dtype, torch.float64
        if X is not None:
            Q = ctx.query_grads(Query(X, T))
            M = Q.materialise().to(f64)
            return ((M * (M @ self._h_inv)).sum(1)).to(dtype)
        vals = []
        if self.query == "linear":
            for sl, G in ctx.train_chunks():
                M = G.materialise().to(f64)
                vals.append((M * self._steps_of(ctx, sl)).sum(1))
            return torch.cat(vals).to(dtype)
        k = self._z.shape[1]
        n, cols = self._a.shape
        loss = ctx.view.loss
        for sl in _slices(n, min(ctx.chunk, self._step_rows(ctx))):
            dw = self._steps_of(ctx, sl).reshape(-1, k, cols)
            z_old = self._z[sl]
            z_new = z_old + torch.einsum("jc,jkc->jk", self._a[sl], dw)
            vals.append(loss(z_new, ctx.T[sl]) - loss(z_old, ctx.T[sl]))
        return torch.cat(vals).to(dtype)


def _slices(n, step):
    """Consecutive slices of ``step`` rows (the last shorter) over ``n`` rows."""
    return [slice(i, min(n, i + step)) for i in range(0, n, step)]


def _loo_block(state, sl, steps):
    """Scores of the training rows ``sl`` (whose steps are ``steps``): the
    query measurement's change under each row's leave-one-out step."""
    kind, *rest = state.payload
    if kind == "linear":
        Q, dtype = rest
        return Q.dot_flat(steps.to(dtype))
    (aq, zq, base, measure, weights, T), cols, aggregate, dtype = rest
    m, k = zq.shape
    dw = steps.reshape(-1, k, cols)
    zz = zq.unsqueeze(1) + torch.einsum("qc,jkc->qjk", aq, dw)
    nj = zz.shape[1]
    vals = measure(zz.reshape(m * nj, k), T.repeat_interleave(nj, dim=0))
    vals = vals.reshape(m, nj)
    if weights is not None:
        vals = vals * weights.reshape(-1, 1).to(vals.dtype)
    out = vals - base.reshape(-1, 1)
    if aggregate:
        out = out.sum(0, keepdim=True)
    return out.to(dtype)


def _check_glm(view, layout, X):
    """Raise unless the selected parameters are one Linear layer whose
    output is the model's output."""
    ok = len(layout.groups) == 1 and not layout.dense
    if ok:
        _, z = _inputs_outputs(view, layout.groups[0], X[:4])
        with torch.no_grad():
            out = view.forward(X[:4])
        ok = out.reshape(z.shape).shape == z.shape and torch.allclose(
            out.reshape(z.shape), z
        )
    if not ok:
        raise UnsupportedEstimatorError(
            f"method='newton_loo' applies to generalised linear models: the model's "
            f"output must be one torch.nn.Linear layer with every selected parameter "
            f"in it (LogisticRegression, SGDClassifier(loss='log_loss'), "
            f"LinearRegression, Ridge). {view.name} with parameters "
            f"{layout.names} is not one; use method='influence_function'."
        )


def _inputs_outputs(view, group, X):
    """The layer's augmented inputs ``a`` (n, cols) and outputs ``z`` (n, out)."""
    module = dict(view.module.named_modules())[group.module]
    captured = {}

    def hook(mod, args, out):
        captured["a"], captured["z"] = args[0], out

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            view.forward(X)
    finally:
        handle.remove()
    a = captured["a"].reshape(X.shape[0], -1)
    if group.bias is not None:
        a = torch.cat([a, torch.ones_like(a[:, :1])], dim=1)
    return a, captured["z"].reshape(X.shape[0], -1)


def _loss_grad(loss, z, t):
    zz = z.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(loss(zz, t).sum(), zz)
    return g


def _output_derivatives(loss, z, t):
    """Per-row gradient (n, K) and Hessian (n, K, K) of the loss in the output."""

    def row_loss(o, ti):
        return loss(o.unsqueeze(0), ti.unsqueeze(0)).sum()

    def row_hessian(o, ti):
        eye = torch.eye(o.shape[0], dtype=o.dtype, device=o.device)
        return vmap(lambda v: jvp(lambda w: grad(row_loss)(w, ti), (o,), (v,))[1])(eye)

    r = vmap(grad(row_loss))(z, t)
    s = vmap(row_hessian)(z, t)
    return r, (s + s.transpose(1, 2)) / 2

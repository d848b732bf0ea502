"""Shared machinery of the influence methods.

Every method computes ``influence(q, j) = g_q^T P g_j``. A method
is a small :class:`~sklearn.base.BaseEstimator` holding its settings; its
``fit`` builds ``P`` and caches what later queries reuse. Methods see the
model only through an :class:`InfluenceContext`.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
from sklearn.base import BaseEstimator
from tqdm.auto import tqdm

from ..gradients import (
    HessianProblem,
    Query,
    RowGrads,
    default_chunk,
    iter_row_gradients,
    row_gradients,
    row_work_bytes,
    total_gradient,
)
from ..utils._params import NamedComponentsMixin
from ..utils._torch import CHUNK_SHARE, CPUStateMixin, MemoryBudget
from ._projected import ProjectedContext, make_projection
from .ihvp import BaseSolver

__all__ = [
    "BaseInfluenceMethod",
    "ChunkPlan",
    "InfluenceContext",
    "train_cache_bytes",
]

# Cached training rows handed to one product at least: fewer, larger blocks.
CACHE_SLICE_ROWS = 4096


def train_cache_bytes(ctx):
    """Bytes the cached (factorised) training gradients of one setting take."""
    return (
        ctx.n_train
        * ctx.layout.factor_width
        * ctx.view.params[ctx.layout.names[0]].element_size()
    )


@dataclass
class ChunkPlan:
    """A method's scores as independent tasks over chunks of training rows.

    ``kernel(state, sl, *args)`` returns the (m, sl.stop - sl.start) block
    of scores of the training rows ``sl``, where ``(sl, *args)`` is one item
    of ``chunks`` (small, per-chunk arguments such as copies of the rows it
    needs) and ``state`` carries ``view`` (the model view; under threads a
    copy of this thread's own) and ``payload`` (what every chunk shares:
    query vectors, factors; shipped once per worker). The kernel is a pure
    function of its arguments, so chunks may run in any order and on any
    worker (:mod:`skinfluence.scoring` runs them through joblib).
    """

    m: int
    kernel: Callable
    payload: object
    chunks: Iterable

    def dense(self, ctx):
        """The whole (m, n_train) matrix, chunk after chunk in this thread."""
        state = SimpleNamespace(view=ctx.view, payload=self.payload)
        out = None
        for sl, *args in self.chunks:
            block = self.kernel(state, sl, *args)
            if out is None:
                out = block.new_empty(self.m, ctx.n_train)
            out[:, sl] = block
        return out


@dataclass
class InfluenceContext:
    """Everything a method needs: the model view, the parameter layout and
    the training data (as tensors on the working device), and the model's
    adapter (:mod:`skinfluence.models`), which refits the model and holds
    its training checkpoints (``None`` when the model is given as a view
    alone).

    ``batch_size`` and ``memory_budget`` (bytes) make ``budget``, the one
    :class:`~skinfluence.utils._torch.MemoryBudget` that sizes every chunk
    and decides what is cached.
    """

    view: object
    layout: object
    X: torch.Tensor
    T: torch.Tensor
    batch_size: int = None
    verbose: int = 0
    generator: torch.Generator = None
    n_jobs: int = None
    random_state: object = None
    adapter: object = None
    memory_budget: int = None
    budget: MemoryBudget = field(init=False, repr=False)
    _problem: object = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.budget = MemoryBudget(self.memory_budget, self.batch_size)
        if self.memory_budget is not None:
            # One chunk gets a share of the budget and holds at least a row.
            least = row_work_bytes(self.layout, self.view.dtype) * CHUNK_SHARE
            if self.memory_budget < least:
                raise ValueError(
                    f"memory_budget={self.memory_budget} bytes is too small for one "
                    f"training row of this model: one row's gradient work takes "
                    f"{least // CHUNK_SHARE} bytes and a chunk gets 1/{CHUNK_SHARE} "
                    f"of the budget, so the minimum is {least} bytes. Pass "
                    f"memory_budget >= {least}, or None for the default."
                )

    @property
    def n_train(self):
        return self.X.shape[0]

    @property
    def chunk(self):
        """Rows per chunk of per-row gradient work."""
        return default_chunk(self.layout, self.view.dtype, self.budget)

    def hessian_problem(self):
        """The :class:`~skinfluence.gradients.HessianProblem` of the training
        rows (built once per context)."""
        if self._problem is None:
            self._problem = HessianProblem(
                self.view, self.layout, self.X, self.T, budget=self.budget
            )
        return self._problem

    def progress(self, total, desc):
        return tqdm(total=total, desc=desc, disable=not self.verbose, leave=False)

    def train_chunks(self, params=None, desc="training gradients"):
        """Yield ``(slice, RowGrads)`` of training-loss gradients."""
        with self.progress(self.n_train, desc) as bar:
            yield from iter_row_gradients(
                self.view,
                self.layout,
                self.X,
                self.T,
                chunk=self.chunk,
                progress=bar,
                params=params,
            )

    def train_grads(self, params=None):
        return RowGrads.cat(g for _, g in self.train_chunks(params))

    def query_grads(self, query, params=None):
        """Query gradients: (m rows) or, with ``aggregate``, one flat row."""
        X = query.X
        if query.transform is not None:
            X = query.transform(self.view, params, X, query.T)
        if query.aggregate:
            g = total_gradient(
                self.view,
                self.layout,
                X,
                query.T,
                params=params,
                measure=query.measure,
                weights=query.weights,
                chunk=query.chunk or self.chunk,
            )
            return RowGrads.from_flat(self.layout, g.unsqueeze(0))
        parts = []
        for start in range(0, X.shape[0], self.chunk):
            sl = slice(start, min(X.shape[0], start + self.chunk))
            w = None if query.weights is None else query.weights[sl]
            parts.append(
                row_gradients(
                    self.view,
                    self.layout,
                    X[sl],
                    query.T[sl],
                    params=params,
                    measure=query.measure,
                    weights=w,
                )
            )
        return RowGrads.cat(parts)


class BaseInfluenceMethod(NamedComponentsMixin, CPUStateMixin, BaseEstimator):
    """Base class: influence as a sum over parameter settings ``c`` with
    weights ``w_c`` (one setting, weight 1, for most methods) of
    ``scale * (P g_q(c)) . g_j(c)``.

    Subclasses set ``_scale(ctx)``, ``_param_sets(ctx)`` and
    ``_precondition(ctx, Q, c)``, and may override ``_self_block``, or the
    whole ``_influence``/``_self_influence``; a method whose scores are not
    such a sum describes them as chunk tasks instead
    (``_chunk_plan(ctx, query)`` returning a :class:`ChunkPlan`), which the
    score phase streams and the dense ``_influence`` runs in order. :meth:`fit` validates the
    parameters (``_parameter_constraints``) first.

    Pickling keeps every tensor on the CPU and every fitted solver without
    its Hessian problem; the public :meth:`influence` and
    :meth:`self_influence` first bring the state to the context's device
    and re-attach the solvers to the context's problem.
    """

    _parameter_constraints = {}

    def fit(self, ctx):
        """Build the preconditioner and caches from the training data."""
        self._validate_params()
        self._state_device = ctx.view.device
        self.projection_ = make_projection(ctx, getattr(self, "projection_dim", None))
        ctx = self._working_context(ctx)
        self.n_train_ = ctx.n_train
        self.param_sets_ = self._param_sets(ctx)
        self._train_cache = {}
        self._self_cache = {}
        for c, (params, _) in enumerate(self.param_sets_):
            self._prepare(ctx, c, params)
        return self

    def _working_context(self, ctx):
        """``ctx``, or a view of it whose gradients come out projected."""
        projection = getattr(self, "projection_", None)
        if projection is None or isinstance(ctx, ProjectedContext):
            return ctx
        return ProjectedContext(ctx, projection.to(device=ctx.view.device))

    # -- hooks -------------------------------------------------------------
    def _param_sets(self, ctx):
        return [(None, 1.0)]

    def _prepare(self, ctx, c, params):
        """Per-setting preparation; default caches training gradients."""
        self._maybe_cache(ctx, c, params)

    def _scale(self, ctx):
        return 1.0

    def _precondition(self, ctx, Q, c):
        return Q

    def _self_block(self, ctx, G, c):
        """``g_j^T P g_j`` for a block of gradients (identity ``P`` here)."""
        return G.sq_norms()

    # -- caching -----------------------------------------------------------
    def _identity_self(self):
        """Whether self-influence is the plain squared gradient norm, which
        can then be taken from the same pass that caches the gradients."""
        return type(self)._self_block is BaseInfluenceMethod._self_block

    def _maybe_cache(self, ctx, c, params):
        # Cache only if the training gradients of every setting fit.
        if ctx.budget.can_cache(train_cache_bytes(ctx) * len(self.param_sets_)):
            identity = self._identity_self()
            norms = []

            def chunks():
                for sl, G in ctx.train_chunks(params):
                    if identity:
                        norms.append(G.sq_norms())
                    yield sl, G

            self._train_cache[c] = RowGrads.assemble(chunks(), ctx.n_train)
            if identity:
                self._self_cache[c] = torch.cat(norms)

    def _train_chunks(self, ctx, c, step=None):
        """``(slice, RowGrads)`` over the training rows: slices of the cache
        (``step`` rows at a time) or freshly computed chunks."""
        params = self.param_sets_[c][0]
        cached = self._train_cache.get(c)
        if cached is not None:
            step = max(ctx.chunk, CACHE_SLICE_ROWS if step is None else step)
            if step >= cached.n:
                yield slice(0, cached.n), cached.to(device=ctx.view.device)
                return
            for start in range(0, cached.n, step):
                sl = slice(start, min(cached.n, start + step))
                yield sl, cached.rows(sl).to(device=ctx.view.device)
        else:
            yield from ctx.train_chunks(params)

    # -- public computations -----------------------------------------------
    def influence(self, ctx, query):
        """(m, n_train) influence of every training row on every query row
        (one row when the query aggregates)."""
        self._attach(ctx)
        return self._influence(self._working_context(ctx), query)

    def self_influence(self, ctx, X=None, T=None):
        """``g_j^T P g_j`` for the training rows (or the given rows)."""
        self._attach(ctx)
        return self._self_influence(self._working_context(ctx), X, T)

    def _attach(self, ctx):
        """Bring the fitted state to ``ctx`` (needed after unpickling): its
        tensors to the working device, and every fitted solver re-attached
        to the context's Hessian problem with :meth:`BaseSolver.rebind`."""
        self._move_state(ctx.view.device)
        for key, value in vars(self).items():
            if key.endswith("_") and isinstance(value, BaseSolver):
                value.rebind(ctx.hessian_problem())

    def _influence(self, ctx, query):
        out = None
        for c, (_, weight) in enumerate(self.param_sets_):
            Q = ctx.query_grads(query, self._query_params(ctx, c))
            PQ = self._precondition(ctx, Q, c)
            block = torch.empty(
                PQ.n, ctx.n_train, dtype=ctx.view.dtype, device=ctx.view.device
            )
            # Training rows per product: the output block and two scratch
            # matrices of that width stay within a chunk of the budget.
            step = ctx.budget.rows_for(3 * PQ.n * block.element_size())
            for sl, G in self._train_chunks(ctx, c, step):
                PQ.dot(G, out=block[:, sl])
            if not _is_one(weight):
                block.mul_(weight)
            out = block if out is None else out.add_(block)
        scale = self._scale(ctx)
        return out if _is_one(scale) else out.mul_(scale)

    def _self_influence(self, ctx, X, T):
        total = None
        for c, (_, weight) in enumerate(self.param_sets_):
            vals = []
            cached = getattr(self, "_self_cache", {}).get(c)
            if X is None and cached is not None:
                vals.append(cached.to(device=ctx.view.device))
            elif X is None:
                for _, G in self._train_chunks(ctx, c):
                    vals.append(self._self_block(ctx, G, c))
            else:
                q = ctx.query_grads(Query(X, T), self._query_params(ctx, c))
                for start in range(0, q.n, ctx.chunk):
                    vals.append(
                        self._self_block(
                            ctx, q.rows(slice(start, start + ctx.chunk)), c
                        )
                    )
            v = torch.cat(vals) if len(vals) > 1 else vals[0].clone()
            if not _is_one(weight):
                v.mul_(weight)
            total = v if total is None else total.add_(v)
        scale = self._scale(ctx)
        return total if _is_one(scale) else total * scale

    def _query_params(self, ctx, c):
        return self.param_sets_[c][0]


def _is_one(x):
    """Whether a scale or weight is the plain number 1 (multiplying is a no-op)."""
    return isinstance(x, int | float) and x == 1

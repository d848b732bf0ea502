"""Streaming a method's scores over training chunks into a reducer."""

import collections
import copy
import threading

import torch

from ..gradients import row_gradients
from ..methods import BaseInfluenceMethod
from ._parallel import map_chunks
from ._reducers import Dense, Diagonal

__all__ = ["stream_influence", "stream_self_influence"]


def _overrides(method, name):
    return getattr(type(method), name) is not getattr(BaseInfluenceMethod, name)


def _streams(method):
    """Whether the method's scores can be produced chunk by chunk: the base
    class's sum over settings, a method with its own chunk hooks
    (``_stream_queries`` and ``_chunk_scores``), or one that describes its
    scores as chunk tasks (``_chunk_plan``, e.g. FastIF's candidate sets and
    NewtonLOO's leave-one-out steps); others give their matrix whole, one
    block of query rows at a time."""
    if hasattr(method, "_stream_queries") or hasattr(method, "_chunk_plan"):
        return True
    return not any(
        _overrides(method, name)
        for name in ("influence", "_influence")
        if hasattr(BaseInfluenceMethod, name)
    )


def _prepared(method, ctx):
    attach = getattr(method, "_attach", None)
    if attach is not None:
        attach(ctx)
    return method._working_context(ctx)


class _PerThread:
    """Shared state of chunk tasks that hands every thread a model view of
    its own (see :meth:`_thread_view`); pickled without the thread store."""

    def __init__(self, view):
        self.view = view
        self._local = threading.local()

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_local"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def _thread_view(self):
        """The view with a module of this thread's own: the factorised path
        records layer inputs with forward hooks on the module, which tasks
        running side by side in threads must not share."""
        view = getattr(self._local, "view", None)
        if view is None:
            view = copy.copy(self.view)
            view.module = copy.deepcopy(self.view.module)
            self._local.view = view
        return view


class _Scores(_PerThread):
    """What every chunk task needs, shipped once per worker: the model view,
    the layout, each setting's parameters, preconditioned query vectors and
    weight, the overall scale, the projection and the reducer."""

    def __init__(self, ctx, method, queries, reducer, self_influence=False):
        base = getattr(ctx, "base", ctx)
        super().__init__(base.view)
        self.layout = base.layout
        self.projection = getattr(ctx, "projection", None)
        self.params = [p for p, _ in method.param_sets_]
        self.weights = [w for _, w in method.param_sets_]
        self.queries = queries
        self.scale = method._scale(ctx)
        self.reducer = reducer
        self.self_influence = self_influence

    def grads(self, c, X, T):
        G = row_gradients(self._thread_view(), self.layout, X, T, params=self.params[c])
        return G if self.projection is None else self.projection(G)


def _combine(parts, weights, scale):
    out = None
    for part, w in zip(parts, weights):
        if not (isinstance(w, int | float) and w == 1):
            part = part * w
        out = part if out is None else out.add_(part)
    if not (isinstance(scale, int | float) and scale == 1):
        out = out * scale
    return out


def _score_chunk(shared, sl, X, T):
    """One training chunk: its gradients under every setting, their products
    with the query vectors (or their squared norms), summed with the weights
    and reduced by the reducer's ``partial``."""
    with torch.no_grad():
        if shared.self_influence:
            parts = [
                shared.grads(c, X, T).sq_norms() for c in range(len(shared.params))
            ]
        else:
            parts = [q.dot(shared.grads(c, X, T)) for c, q in enumerate(shared.queries)]
        block = _combine(parts, shared.weights, shared.scale)
        return shared.reducer.partial(sl, block)


class _Planned(_PerThread):
    """A method's :class:`~skinfluence.methods.ChunkPlan` as shared task
    state: its kernel and payload, and the reducer."""

    def __init__(self, view, plan, reducer):
        super().__init__(view)
        self.kernel = plan.kernel
        self.payload = plan.payload
        self.reducer = reducer


class _KernelState:
    """What a plan's kernel sees in one task: the payload, and this
    thread's view (copied on first use, so kernels that never touch the
    model copy nothing)."""

    def __init__(self, shared):
        self._shared = shared
        self.payload = shared.payload

    @property
    def view(self):
        return self._shared._thread_view()


def _planned_chunk(shared, sl, *args):
    """One chunk of a method's plan, reduced by the reducer's ``partial``."""
    with torch.no_grad():
        state = _KernelState(shared)
        block = shared.kernel(state, sl, *args)
        return shared.reducer.partial(sl, block)


def _fresh_chunks(ctx, rows):
    """``(slice, X, T)`` of every training chunk; the rows are copies, so a
    process backend ships the chunk and not the whole training set."""
    n = ctx.n_train
    for start in range(0, n, rows):
        sl = slice(start, min(n, start + rows))
        yield sl, ctx.X[sl].clone(), ctx.T[sl].clone()


def _cached(method):
    cache = getattr(method, "_train_cache", {})
    return all(c in cache for c in range(len(method.param_sets_)))


def stream_influence(method, ctx, query, reducer=None):
    """Influence of every training row on the query, streamed into ``reducer``.

    The query's preconditioned vectors are built once per parameter setting;
    the training rows are then walked in chunks (cached gradients, or ones
    computed afresh as independent joblib tasks, see :func:`map_chunks`),
    each chunk's (m, rows) block summed over the settings and handed to the
    reducer, so only one block exists at a time.

    Parameters
    ----------
    method : fitted BaseInfluenceMethod
    ctx : InfluenceContext
    query : Query
    reducer : Dense, TopK or compatible, default=Dense()

    Returns
    -------
    The reducer's ``result()``.
    """
    reducer = Dense() if reducer is None else reducer
    if not _streams(method):
        S = method.influence(ctx, query)
        reducer.start(S.shape[0], S.shape[1], device=S.device, dtype=S.dtype)
        reducer.add(slice(0, S.shape[1]), S)
        return reducer.result()
    wctx = _prepared(method, ctx)
    if hasattr(method, "_chunk_plan"):
        plan = method._chunk_plan(wctx, query)
        view = getattr(wctx, "base", wctx).view
        reducer.start(plan.m, wctx.n_train, device=view.device, dtype=view.dtype)
        shared = _Planned(view, plan, reducer)
        return _run(
            shared,
            wctx,
            reducer,
            "scoring training rows",
            task=_planned_chunk,
            chunks=plan.chunks,
        )
    if hasattr(method, "_stream_queries"):
        queries = method._stream_queries(wctx, query)
    else:
        queries = [
            method._precondition(
                wctx, wctx.query_grads(query, method._query_params(wctx, c)), c
            )
            for c in range(len(method.param_sets_))
        ]
    first = queries[0]
    m, n = (first.n if hasattr(first, "n") else first.shape[0]), wctx.n_train
    dtype, device = wctx.view.dtype, wctx.view.device
    reducer.start(m, n, device=device, dtype=dtype)
    custom = hasattr(method, "_chunk_scores")
    if custom or _cached(method):
        itemsize = torch.tensor([], dtype=dtype).element_size()
        step = wctx.budget.rows_for(3 * m * itemsize)
        streams = [
            method._train_chunks(wctx, c, step) for c in range(len(method.param_sets_))
        ]
        for pieces in zip(*streams):
            sl = pieces[0][0]
            Gs = [G for _, G in pieces]
            if custom:
                block = method._chunk_scores(wctx, queries, sl, Gs)
            else:
                block = _combine(
                    [q.dot(G) for q, G in zip(queries, Gs)],
                    [w for _, w in method.param_sets_],
                    method._scale(wctx),
                )
            reducer.add(sl, block)
        return reducer.result()
    shared = _Scores(wctx, method, queries, reducer)
    return _run(shared, wctx, reducer, "scoring training rows")


def stream_self_influence(method, ctx, reducer=None):
    """Self-influence of every training row, streamed into ``reducer``.

    For inner-product methods whose gradients are not cached, chunks are
    independent joblib tasks (:func:`map_chunks`); otherwise the method's
    own chunked computation runs (its cache, one solve per chunk, or, for
    NewtonLOO, each chunk's leave-one-out steps), in this process: the
    Hessian-vector products of iterative solvers keep global autograd state
    that threads would share.
    """
    reducer = Diagonal() if reducer is None else reducer
    n = ctx.n_train
    self_cache = getattr(method, "_self_cache", {})
    cached = all(
        c in self_cache for c in range(len(getattr(method, "param_sets_", [])))
    )
    if (
        not _streams(method)
        or not method._identity_self()
        or cached
        or _overrides(method, "self_influence")
        or _overrides(method, "_self_influence")
    ):
        values = method.self_influence(ctx)
        reducer.start(n, device=values.device, dtype=values.dtype)
        reducer.add(slice(0, n), values)
        return reducer.result()
    wctx = _prepared(method, ctx)
    reducer.start(n, device=wctx.view.device, dtype=wctx.view.dtype)
    shared = _Scores(wctx, method, None, reducer, self_influence=True)
    return _run(shared, wctx, reducer, "self-influence")


def _run(shared, ctx, reducer, desc, task=_score_chunk, chunks=None):
    """Chunk tasks over the training rows, merged in order into ``reducer``.

    ``chunks`` yields the arguments of each task, a slice of training rows
    first (by default, copies of the rows of every chunk of
    ``ctx.chunk``)."""
    chunks = _fresh_chunks(ctx, ctx.chunk) if chunks is None else chunks
    # The slices in the order the tasks were handed out, which is the order
    # their results come back in.
    slices = collections.deque()

    def handed_out():
        for args in chunks:
            slices.append(args[0])
            yield args

    parts = map_chunks(task, shared, handed_out(), ctx.n_jobs)
    with ctx.progress(ctx.n_train, desc) as bar:
        for part in parts:
            sl = slices.popleft()
            reducer.merge(sl, part)
            bar.update(sl.stop - sl.start)
    return reducer.result()

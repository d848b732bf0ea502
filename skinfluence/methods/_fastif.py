"""FastIF: influence functions on the nearest training rows only."""

import contextlib
import dataclasses
import numbers
import warnings
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval, StrOptions

from ..exceptions import SkinfluenceWarning
from ..gradients import ParamLayout, RowGrads, row_gradients
from ..utils._torch import make_generator
from ._base import BaseInfluenceMethod, ChunkPlan
from .ihvp import LissaSolver
from .ihvp._base import extreme_eigenvalues, indefinite_damping, sample_rows
from .ihvp._lissa import POWER_ROWS

__all__ = ["FastIF"]

# FastIF's recursion damping, relative to the LiSSA scale (Guo et al. 2021).
PAPER_RELATIVE_DAMPING = 5e-3

# Candidates per query by default, the paper's k; clipped silently on smaller
# training sets.
DEFAULT_NEIGHBORS = 1000


class FastIF(BaseInfluenceMethod):
    """Influence functions evaluated on a few candidate training rows per query.

    FastIF (Guo et al. 2021) makes the influence function cheap per query in
    three ways: (1) only ``n_neighbors`` candidate training rows are scored
    exactly (see ``candidates``); (2) the
    inverse-Hessian-vector product is a LiSSA recursion with the paper's
    tuned settings (HVP batch of one row, depth 1000); (3) independent LiSSA
    chains on disjoint random parts of the training rows run in parallel and
    are averaged, and the candidates are scored in independent chunks of
    training rows, also in parallel.

    Scores are on the leave-one-out scale of :class:`InfluenceFunction`,
    ``(1/n) g_q^T (H + damping I)^{-1} g_j`` with positive = helpful (the
    paper's sign is the opposite). Rows that are not candidates get ``NaN``.

    Parameters
    ----------
    n_neighbors : int >= 1, default=1000
        Candidates per query (the paper's k). Clipped to the number of
        training rows, with a warning when it was set above it (the default
        is clipped silently: on fewer rows it scores every row).
    candidates : {"gradients", "features"}, default="gradients"
        How the candidates are found. ``"features"``: the paper's search, the
        nearest training rows to the query in the model's penultimate
        feature space (exact L2 search with
        :class:`~sklearn.neighbors.NearestNeighbors`). ``"gradients"``: the
        rows with the largest ``|influence|`` restricted to the last Linear
        layer, ``(P g_q)_last . g_j,last``, for every training row. That
        layer's per-row gradient is the outer product of two short factors,
        cached once in ``fit`` (``n_train * (inputs + outputs)`` numbers), so
        this ranks all rows at O(n_train) cost per query without forming a
        gradient, using the query vector ``P g_q`` that is solved anyway.
        Nearness in feature space says little about which rows an influence
        function ranks first; on the tabular MLP of ``benchmarks/fastif.py``
        the gradient search is the one that keeps the original's top rows
        (see the table there), hence the default.
    search : {"mean", "each"}, default="mean"
        ``"mean"``: the queries passed together share one candidate set (with
        ``candidates="features"`` the neighbours of the mean of their
        features, the paper's search for several queries; with
        ``"gradients"`` the rows ranked by their largest ``|influence|`` on
        any of the queries, each relative to that query's largest).
        ``"each"``: every query row gets its own candidates; the gradients of
        the union of candidates are computed once. The queries passed
        together are all the rows of one ``influence`` call, also when
        :class:`InfluenceScorer` scores them in several blocks (more than
        ``max(1024, rows per chunk)`` rows): the candidates, and so the
        scores, do not depend on the blocks. With ``"mean"`` and
        ``"gradients"``, such a query set is solved twice (once to find the
        shared candidates, once to score them).
    damping : float >= 0 or "auto", default="auto"
        ``H + damping I`` is inverted. ``"auto"`` is the paper's recursion
        damping, ``5e-3 * scale`` (with the scale chosen before damping is
        added), or, when a Lanczos estimate finds the Hessian indefinite and
        that is not enough, the indefinite-Hessian rule of
        :class:`InfluenceFunction` (``3 * |smallest eigenvalue|``, with a
        warning). Like the scale's power iteration, the Lanczos estimate
        (40 Hessian-vector products) runs on the Hessian of at most 4,096
        random training rows: over all 20,000 rows of the token encoder of
        ``benchmarks/fastif.py`` it took about 160 of the fit's 260 s.
    scale : float > 0 or "auto", default="auto"
        LiSSA scale; must exceed the top eigenvalue of ``H + damping I``.
        ``"auto"`` follows :class:`LissaSolver` (twice an estimated bound on
        the mini-batch Hessians' top eigenvalue). The paper's 1e4 was tuned
        to BERT's curvature.
    depth : int >= 1, default=1000
        LiSSA steps per recursion (paper: 1000-2000).
    batch_size : int >= 1 or "all", default=1
        Training rows per Hessian-vector product (paper: 1).
    repetitions : int >= 1, default=1
        Recursions averaged per chain.
    n_chains : int >= 1, default=1
        Parallel LiSSA chains on disjoint random parts of the training rows,
        averaged; the chains run in worker processes with the estimator's
        ``n_jobs``. The candidates are scored chunk by chunk of training
        rows, as independent tasks of :mod:`skinfluence.scoring` (threads
        with ``n_jobs``, or any joblib backend), each computing the
        gradients of the candidate rows in its chunk only.

    Attributes
    ----------
    n_neighbors_ : int
        Candidates per query actually used.
    nn_ : NearestNeighbors or None
        Index over the training rows' penultimate features
        (``candidates="features"``).
    damping_ : float
    solver_ : LissaSolver
        The fitted LiSSA solver (its mini-batches are drawn once in ``fit``).
    candidates_ : ndarray of shape (n_query, k)
        The ``k = n_neighbors_`` training-row indices scored for each row of
        the last :meth:`influence` call, every row of it (identical rows
        with ``search="mean"``), in decreasing order of the retrieval score
        with ``candidates="gradients"`` and of nearness with ``"features"``.

    Notes
    -----
    Self-influence (``g_j^T P g_j``) is computed for *every* training row,
    not only for candidates, with the same fitted LiSSA operator as the
    queries: it is finite everywhere, and equals the diagonal of the
    influence matrix where a row is its own candidate. It costs one LiSSA
    solve per training row (batched), far more than a query; use
    ``method="influence_function"`` where self-influence is the goal.

    See Also
    --------
    InfluenceFunction : the same quantity on every training row.
    LissaSolver : the inverse-Hessian solver used here.

    References
    ----------
    .. [1] Guo, Rajani, Hase, Bansal, Xiong. "FastIF: Scalable Influence
       Functions for Efficient Model Interpretation and Debugging."
       EMNLP 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import FastIF, InfluenceScorer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X, y = scale(X)[:100], y[:100]
    >>> method = FastIF(n_neighbors=20, depth=50)
    >>> scorer = InfluenceScorer(LogisticRegression(), method=method, random_state=0)
    >>> scores = scorer.fit(X, y).influence(X[:3], y[:3])
    >>> scores.shape
    (3, 100)
    >>> int(np.isfinite(scores).sum(axis=1)[0])
    20
    >>> scorer.method_.candidates_.shape
    (3, 20)
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "candidates": [StrOptions({"gradients", "features"})],
        "search": [StrOptions({"mean", "each"})],
        "damping": [
            Interval(numbers.Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "scale": [
            Interval(numbers.Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"all"}),
        ],
        "repetitions": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_chains": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_neighbors=DEFAULT_NEIGHBORS,
        *,
        candidates="gradients",
        search="mean",
        damping="auto",
        scale="auto",
        depth=1000,
        batch_size=1,
        repetitions=1,
        n_chains=1,
    ):
        self.n_neighbors = n_neighbors
        self.candidates = candidates
        self.search = search
        self.damping = damping
        self.scale = scale
        self.depth = depth
        self.batch_size = batch_size
        self.repetitions = repetitions
        self.n_chains = n_chains

    # ------------------------------------------------------------------ fit
    def _prepare(self, ctx, c, params):
        # Index the training features, then fit the LiSSA solver. No
        # training-gradient cache: per query only candidates are needed.
        n = ctx.n_train
        k = self.n_neighbors
        if k > n:
            if k != DEFAULT_NEIGHBORS:
                warnings.warn(
                    f"n_neighbors={k} is larger than the training set ({n} rows); "
                    f"using all {n} rows. Set n_neighbors <= {n} to silence this.",
                    SkinfluenceWarning,
                    stacklevel=4,
                )
            k = n
        self.n_neighbors_ = k
        self.nn_ = None
        self._retrieval = None
        if self.candidates == "features":
            self.nn_ = NearestNeighbors(n_neighbors=k).fit(self._features(ctx, ctx.X))
        else:
            self._retrieval = self._last_layer_factors(ctx)
        problem = ctx.hessian_problem()
        solver = LissaSolver(
            "fastif",
            depth=self.depth,
            batch_size=self.batch_size,
            repetitions=self.repetitions,
            scale=self.scale,
            n_chains=self.n_chains,
        )
        # The mini-batches get a generator of their own, seeded before the
        # spectrum estimates: those draw their random start vectors chunk by
        # chunk, so whatever follows them on a shared generator would change
        # with memory_budget and batch_size.
        batches = SimpleNamespace(
            generator=make_generator(
                ctx.random_state if ctx.generator is None else ctx.generator
            ),
            n_jobs=ctx.n_jobs,
        )
        damping = 0.0 if isinstance(self.damping, str) else float(self.damping)
        scale, top = solver.scale_rule(problem, damping, ctx.generator)
        if isinstance(self.damping, str):
            damping = PAPER_RELATIVE_DAMPING * scale
            # The paper's rule assumes a positive semi-definite Hessian; on an
            # indefinite one, lift it as InfluenceFunction's "auto" does.
            # On at most as many rows as the scale's power iteration.
            rows = sample_rows(problem, POWER_ROWS, ctx.generator)
            lo, hi = extreme_eigenvalues(rows, ctx.generator)
            lifted = indefinite_damping(lo)
            if lo < 0 and lifted > damping:
                warnings.warn(
                    f"The Hessian is indefinite (smallest eigenvalue about "
                    f"{lo:.3g}): damping='auto' lifted FastIF's damping from "
                    f"{damping:.3g} to {lifted:.3g} so that H + damping*I is "
                    "positive definite. Pass damping=<float> to choose it.",
                    SkinfluenceWarning,
                    stacklevel=4,
                )
                damping = lifted
            if isinstance(self.scale, str):
                # Keep scale above the top eigenvalue once damping is added.
                scale += 2 * damping
        self.solver_ = solver.set_params(scale=scale).fit(
            problem, damping, batches, top_eigenvalue=top
        )
        self.damping_ = self.solver_.damping_

    @staticmethod
    def _last_layer_factors(ctx):
        """``(slice, layout, A, D)``: the last Linear layer's block of the flat
        layout and the factors of every training row's gradient there."""
        layout = ctx.layout
        if not layout.groups:
            raise ValueError(
                "FastIF(candidates='gradients') ranks training rows by a Linear "
                "layer's factorised gradients, and none of the influence "
                "parameters belongs to a Linear layer called once per row. Use "
                "candidates='features', or include a Linear layer in parameters."
            )
        group = layout.groups[-1]
        sl = layout.group_slices[-1]
        names = [group.weight] + ([group.bias] if group.bias else [])
        sub = ParamLayout(ctx.view, names, ctx.X[:2])
        parts = []
        for start in range(0, ctx.n_train, max(ctx.chunk, 4096)):
            rows = slice(start, start + max(ctx.chunk, 4096))
            G = row_gradients(ctx.view, sub, ctx.X[rows], ctx.T[rows])
            parts.append(G)
        return sl, sub, RowGrads.cat(parts)

    @staticmethod
    def _features(ctx, X):
        step = max(ctx.chunk, 1024)
        feats = [
            ctx.view.features(X[s : s + step]).detach()
            for s in range(0, X.shape[0], step)
        ]
        return torch.cat(feats).cpu().double().numpy()

    # --------------------------------------------------------------- scores
    def _scale(self, ctx):
        return 1.0 / ctx.view.n_train

    def _self_block(self, ctx, G, c):
        return self.solver_.quadratic(G)

    def _influence(self, ctx, query):
        """(m, n_train) influence on the candidate rows, ``NaN`` elsewhere."""
        return self._chunk_plan(ctx, query).dense(ctx)

    def _chunk_plan(self, ctx, query):
        """The candidates' scores as chunk tasks over the training rows: a
        chunk computes the gradients of the candidate rows it holds only."""
        if query.transform is not None:
            # Transform once (e.g. an attack): the features and the query
            # gradients both take the transformed rows.
            X = query.transform(ctx.view, None, query.X, query.T)
            query = dataclasses.replace(query, X=X, transform=None)
        Q = ctx.query_grads(query)
        m = Q.n
        shared = query.aggregate or self.search == "mean"
        fixed = getattr(self, "_set_candidates", None)
        if fixed is not None and shared:
            # One block of a larger query set: the whole set's candidates.
            candidates = np.repeat(fixed[None], m, axis=0)
        elif self.candidates == "features":
            feats = self._features(ctx, query.X)
            if shared:
                nearest = self.nn_.kneighbors(
                    feats.mean(0, keepdims=True), return_distance=False
                )
                candidates = np.repeat(nearest, m, axis=0)
            else:
                candidates = self.nn_.kneighbors(feats, return_distance=False)
        PQ = self.solver_.solve(Q.materialise())
        if self.candidates == "gradients" and (fixed is None or not shared):
            candidates = self._retrieve(ctx, PQ, shared)
        blocks = getattr(self, "_block_candidates", None)
        if blocks is None:
            self.candidates_ = candidates
        else:
            blocks.append(candidates)
        return ChunkPlan(
            m=m,
            kernel=_candidate_block,
            payload=(ctx.layout, PQ, self._scale(ctx)),
            chunks=_candidate_chunks(ctx, candidates),
        )

    def _retrieve(self, ctx, PQ, shared):
        """Top ``n_neighbors_`` training rows per query by ``|influence|`` on
        the last Linear layer (one shared set when ``shared``)."""
        vals, idx = self._top_per_query(ctx, PQ)
        if not shared:
            return idx.cpu().numpy()
        top = self._shared_top(vals, idx)
        return np.repeat(top[None], PQ.shape[0], axis=0)

    def _top_per_query(self, ctx, PQ):
        """``(values, indices)``, each (m, k): every query's ``k`` training
        rows of largest ``|influence|`` on the last Linear layer, largest
        first. The products are taken chunk by chunk of training rows under
        the memory budget, with a running top ``k``."""
        sl, sub, G = self._retrieval
        V = PQ[:, sl].to(G.factors[0][0].dtype)
        m, k, n = V.shape[0], self.n_neighbors_, G.n
        # dot_flat's working set per training row: an (m, narrower factor)
        # block per Linear group, and a few (m,) rows of products.
        width = sum(min(g.out, g.cols) for g in sub.groups) + 4
        step = ctx.budget.rows_for(m * width * V.element_size())
        vals = V.new_empty(m, 0)
        idx = torch.empty(m, 0, dtype=torch.long, device=V.device)
        for start in range(0, n, step):
            rows = slice(start, min(n, start + step))
            block = G.rows(rows).dot_flat(V).abs().T  # (m, rows)
            cols = torch.arange(rows.start, rows.stop, device=V.device)
            vals = torch.cat([vals, block], 1)
            idx = torch.cat([idx, cols.expand(m, -1)], 1)
            top = torch.topk(vals, min(k, vals.shape[1]), dim=1, sorted=True)
            vals, idx = top.values, idx.gather(1, top.indices)
        return vals, idx

    def _shared_top(self, vals, idx):
        """The ``k`` training rows of largest relative score ``max_q |s_qj| /
        max_i |s_qi|`` from every query's top ``k`` (``_top_per_query``).
        Those are enough: a row among the ``k`` best is among the ``k`` best
        of the query that attains its score (otherwise ``k`` rows of that
        query score higher)."""
        rel = vals / vals[:, :1].clamp_min(1e-300)
        best = torch.full(
            (self.n_train_,), -torch.inf, dtype=rel.dtype, device=rel.device
        )
        best.scatter_reduce_(0, idx.reshape(-1), rel.reshape(-1), reduce="amax")
        return torch.topk(best, self.n_neighbors_, sorted=True).indices.cpu().numpy()

    # ------------------------------------------------------ query sets
    @contextlib.contextmanager
    def _query_set(self, ctx, query, step):
        """Score ``query`` in blocks of ``step`` rows as one query set.

        Inside the block, :meth:`influence` calls on blocks of ``query``
        (in order) see the candidates of the whole set: with
        ``search="mean"`` the set's one shared candidate set, found before
        the first block; with ``"each"`` every row's own. On leaving it,
        ``candidates_`` holds the candidates of every row of ``query``, so
        neither the scores nor ``candidates_`` depend on how the rows were
        split into blocks (the block size follows ``memory_budget``).
        Finding the shared set of gradient candidates solves every block
        once more (the blocks' solved queries are not kept, to stay within
        the memory budget).
        """
        self._attach(ctx)
        wctx = self._working_context(ctx)
        shared = self.search == "mean" and not query.aggregate
        self._set_candidates = (
            self._query_set_candidates(wctx, query, step) if shared else None
        )
        self._block_candidates = []
        try:
            yield self
            if self._block_candidates:
                self.candidates_ = np.concatenate(self._block_candidates)
        finally:
            self._set_candidates = self._block_candidates = None

    def _query_set_candidates(self, ctx, query, step):
        """The shared candidates, shape (k,), of all rows of ``query``."""
        if query.transform is not None:
            X = query.transform(ctx.view, None, query.X, query.T)
            query = dataclasses.replace(query, X=X, transform=None)
        if self.candidates == "features":
            feats = self._features(ctx, query.X)
            return self.nn_.kneighbors(
                feats.mean(0, keepdims=True), return_distance=False
            )[0]
        parts = []
        for start in range(0, query.X.shape[0], step):
            rows = slice(start, start + step)
            block = dataclasses.replace(
                query,
                X=query.X[rows],
                T=query.T[rows],
                weights=None if query.weights is None else query.weights[rows],
            )
            Q = ctx.query_grads(block)
            parts.append(self._top_per_query(ctx, self.solver_.solve(Q.materialise())))
        return self._shared_top(
            torch.cat([v for v, _ in parts]), torch.cat([i for _, i in parts])
        )


def _candidate_chunks(ctx, candidates):
    """``(sl, rows, pos, local, X, T)`` for every chunk ``sl`` of training
    rows: the pairs (query row ``rows[i]``, candidate ``local[pos[i]]``,
    relative to ``sl.start``) that fall in the chunk, and copies of those
    candidate rows (so a process backend ships them and not the data)."""
    m, k = candidates.shape
    cols = candidates.ravel()
    order = np.argsort(cols, kind="stable")
    cols = cols[order]
    qrows = np.repeat(np.arange(m), k)[order]
    n, step = ctx.n_train, ctx.chunk
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        lo, hi = np.searchsorted(cols, [sl.start, sl.stop])
        local, pos = np.unique(cols[lo:hi], return_inverse=True)
        idx = torch.as_tensor(local, device=ctx.X.device)
        yield (
            sl,
            torch.as_tensor(qrows[lo:hi]),
            torch.as_tensor(pos.reshape(-1)),
            torch.as_tensor(local - start),
            ctx.X[idx],
            ctx.T[idx],
        )


def _candidate_block(state, sl, rows, pos, local, X, T):
    """(m, rows of ``sl``) scores: ``(1/n) PQ . g_j`` at each query row's
    candidates in the chunk, ``NaN`` elsewhere."""
    layout, PQ, scale = state.payload
    device = PQ.device
    block = torch.full(
        (PQ.shape[0], sl.stop - sl.start), float("nan"), dtype=PQ.dtype, device=device
    )
    if len(local):
        G = row_gradients(state.view, layout, X, T)
        vals = G.dot_flat(PQ).T * scale
        rows, pos = rows.to(device), pos.to(device)
        block[rows, local.to(device)[pos]] = vals[rows, pos]
    return block

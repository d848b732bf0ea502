"""Classic influence functions: ``(1/n) g_q^T (H + damping I)^-1 g_j``."""

import copy
import numbers

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..gradients import HessianProblem, RowGrads
from ._base import BaseInfluenceMethod
from ._ensemble import damping_lift_recorder, warn_damping_lifts
from .ihvp import SOLVERS, BaseSolver, get_solver

__all__ = ["AUTO_N_ESTIMATORS", "InfluenceFunction"]

#: Models averaged by ``InfluenceFunction(n_estimators="auto")`` on a
#: non-convex model (the class docstring says how it was chosen).
AUTO_N_ESTIMATORS = 5


class InfluenceFunction(BaseInfluenceMethod):
    """Influence functions on the leave-one-out scale.

    ``influence(q, j) = (1/n) g_q^T (H + damping I)^{-1} g_j``, with ``H`` the
    Hessian of the estimator's mean training objective (penalty included)
    and ``g`` the per-row loss gradients. Positive = helpful: it
    approximates ``loss_q(theta without j) - loss_q(theta)``, so it can be
    held against actual leave-one-out retraining.

    Parameters
    ----------
    solver : {"exact", "cg", "lissa", "arnoldi", "ekfac"} or solver object, \
            default="exact"
        How ``(H + damping I)^{-1}`` is applied. ``"exact"`` forms ``H``
        and factorises it (Cholesky, float64); fit for up to a few thousand
        parameters. ``"cg"`` (:class:`CGSolver`): conjugate gradient on
        Hessian-vector products, exact up to its tolerance. ``"arnoldi"``
        (:class:`ArnoldiSolver`): top-k eigenpairs, fast queries from cached
        training-row coordinates. ``"ekfac"`` (:class:`EKFACSolver`):
        eigenvalue-corrected Kronecker factors of Linear layers.
        ``"lissa"`` (:class:`LissaSolver`): the stochastic Neumann
        recursion. A solver object (any :class:`BaseSolver`) is cloned; its
        settings are grid-searchable as ``method__solver__tol`` etc.
    damping : float >= 0 or "auto", default="auto"
        Added to the Hessian's diagonal. ``"auto"`` is ``1e-5 * trace(H)/p``
        on a convex model; when the Hessian is indefinite (a neural net), it
        is lifted to ``3 * |smallest eigenvalue|`` (exact eigenvalues with
        ``solver="exact"``, a Lanczos estimate otherwise) with a warning, so
        the damped system is always positive definite (the rule and how it
        was chosen: ``skinfluence.methods.ihvp.resolve_damping``). ``0`` is
        allowed; a singular or indefinite Hessian then raises an error that
        says how much damping it needs.
    n_estimators : int >= 1 or "auto", default="auto"
        Number of models whose influences are averaged, as TRAK ensembles
        models: the fitted model and ``n_estimators - 1`` independent refits
        of the estimator on the same rows, each with its own seed (see
        ``IPEnsemble(kind="refits")``). Every model contributes ``(1/n)
        g_q^T (H_m + damping I)^{-1} g_j`` with its own gradients, Hessian
        and damping, and the score is their mean, so it stays on the
        leave-one-out scale. ``1`` is the fitted model alone. ``"auto"``
        is 5 models when the estimator's training objective is non-convex
        (neural nets: skorch nets, torch modules,
        ``MLPClassifier``/``MLPRegressor``), whose refits land in different
        optima, and 1 for convex models (linear and logistic regression),
        whose refits are the same model; it is also 1 when the method has
        no estimator to refit (a bare model view). Cost: ``n_estimators -
        1`` extra fits of the estimator, and as many extra Hessians and
        gradient passes; on the small MLPs below one fit takes 3-6 s on two
        CPU cores, so the default ensemble adds about 15-25 s there.

        How the default was chosen: the linear datamodeling score (LDS, 100
        half-size retrains with their own seeds, 50 test rows, default
        damping) of the mean over ``n_estimators`` independently trained
        models, on the digits MLP of ``benchmarks/lds.py`` (skorch,
        64-32-10), a skorch MLP 30-32-2 on breast_cancer and a
        scikit-learn ``MLPClassifier((64,))`` on a 4-class synthetic
        problem:

        ================  =====  =====  =====  =====  =====  =====
        ``n_estimators``  1      2      3      4      5      6
        ================  =====  =====  =====  =====  =====  =====
        digits            0.535  0.555  0.570  0.575  0.579  0.579
        breast_cancer     0.690  0.716  0.722  0.723  0.723  0.726
        synthetic         0.495  0.536  0.560  0.581  0.587  0.594
        mean              0.573  0.602  0.617  0.626  0.630  0.633
        ================  =====  =====  =====  =====  =====  =====

        The gain levels off after about 5 models on two of the three
        problems, hence 5. (:class:`TracIn` on the same problems: 0.295,
        0.586, 0.362.)
    random_state : int, RandomState or None, default=None
        Seeds of the refits; ``None`` draws them from the estimator's
        ``random_state``.

    Attributes
    ----------
    damping_ : float
        The damping used (after the indefinite-Hessian lift of ``"auto"``),
        for the fitted model.
    n_estimators_ : int
        The number of models averaged (``"auto"`` resolved).
    dampings_ : list of float
        The damping of every model (the fitted model first).
    lifted_ : list of bool
        Per model, whether ``damping="auto"`` was lifted above its
        indefinite Hessian's smallest eigenvalue. An ensemble says so in one
        warning (how many models, and the range of their dampings); a single
        model in its own.
    solvers_ : list of solver objects
        The fitted solver of every member.
    solver_ : solver object
        The fitted solver.

    See Also
    --------
    TracIn : the Hessian-free inner product.

    References
    ----------
    .. [1] Koh, Liang. "Understanding Black-box Predictions via Influence
       Functions." ICML 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import InfluenceScorer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> scorer = InfluenceScorer(LogisticRegression(), method="influence_function")
    >>> scorer.fit(X, y).influence(X[:1], y[:1]).shape
    (1, 569)
    """

    _parameter_constraints = {
        "solver": [StrOptions(set(SOLVERS)), BaseSolver],
        "damping": [
            Interval(numbers.Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "n_estimators": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "random_state": ["random_state"],
    }

    def __init__(
        self, solver="exact", damping="auto", n_estimators="auto", random_state=None
    ):
        self.solver = solver
        self.damping = damping
        self.n_estimators = n_estimators
        self.random_state = random_state

    def _n_models(self, ctx):
        """``n_estimators`` with ``"auto"`` resolved for the context's model."""
        if self.n_estimators != "auto":
            return self.n_estimators
        adapter = ctx.adapter
        if adapter is None or adapter.convex:
            return 1
        return AUTO_N_ESTIMATORS

    def _param_sets(self, ctx):
        self.n_estimators_ = self._n_models(ctx)
        if self.n_estimators_ == 1:
            return [(None, 1.0)]
        from ._ensemble import refit_members

        members = refit_members(ctx, self.n_estimators_ - 1, self.random_state)
        weight = 1.0 / (len(members) + 1)
        return [(None, weight)] + [(params, weight) for params in members]

    @staticmethod
    def _problem_at(ctx, params):
        """The Hessian problem at the fitted parameters or at a member's."""
        if params is None:
            return ctx.hessian_problem()
        view = copy.copy(ctx.view)
        view.params = params
        return HessianProblem(view, ctx.layout, ctx.X, ctx.T, budget=ctx.budget)

    def _attach(self, ctx):
        super()._attach(ctx)
        # Members' solvers are bound to their own Hessians (after unpickling,
        # or on another device).
        for (params, _), solver in zip(self.param_sets_[1:], self.solvers_[1:]):
            solver.rebind(self._problem_at(ctx, params))

    def _prepare(self, ctx, c, params):
        solver = get_solver(self.solver)
        problem = self._problem_at(ctx, params)
        n_models = len(self.param_sets_)
        if c == 0:
            self.lifted_ = []
        # An ensemble says its members' damping lifts in one warning.
        with damping_lift_recorder(self.lifted_, say_lift=n_models == 1):
            damping = solver.fit(problem, self.damping, ctx).damping_
        if c == 0:
            self.solver_, self.damping_ = solver, damping
            self.solvers_, self.dampings_ = [], []
            self._train_embed = {}
        self.solvers_.append(solver)
        self.dampings_.append(damping)
        if n_models > 1 and c == n_models - 1:
            warn_damping_lifts(self.lifted_, self.dampings_, stacklevel=5)
        self._maybe_cache(ctx, c, params)
        if self.solver_.low_rank and len(self.param_sets_) == 1:
            # g^T P g' = C(g)^T K C(g') + g^T S g' (low rank plus a block
            # scalar): cache every training row's coordinates C(g_j) once, so
            # queries and self-influence never solve again.
            self._train_embed[c] = torch.cat(
                [self.solver_.coordinates(G) for _, G in self._train_chunks(ctx, c)]
            )

    def _scale(self, ctx):
        return 1.0 / ctx.view.n_train

    def _precondition(self, ctx, Q, c):
        solver = self.solvers_[c]
        return RowGrads.from_flat(ctx.layout, solver.solve(Q.materialise()))

    def _self_block(self, ctx, G, c):
        solver = self.solvers_[c]
        if solver.low_rank:
            C = solver.coordinates(G)
            vals = ((C.to(torch.float64) @ solver.core()) * C).sum(1).to(C.dtype)
            extra = solver.shift_sq_norms(G)
            return vals if extra is None else vals + extra
        return solver.quadratic(G)

    def _influence(self, ctx, query):
        embed = self._train_embed
        if not embed:
            return super()._influence(ctx, query)
        solver = self.solver_
        Q = ctx.query_grads(query, self._query_params(ctx, 0))
        # The two terms partly cancel: sum them in float64 so that a row's
        # score does not depend on which other rows share its block.
        f64 = torch.float64
        out = (solver.coordinates(Q).to(f64) @ solver.core()) @ embed[0].to(f64).T
        if solver.has_shift:
            for sl, G in self._train_chunks(ctx, 0):
                out[:, sl] += solver.shift_dot(Q, G).to(f64)
        return (out * self._scale(ctx)).to(ctx.view.dtype)

    def _self_influence(self, ctx, X, T):
        embed = self._train_embed
        if not embed or X is not None:
            return super()._self_influence(ctx, X, T)
        solver = self.solver_
        E = embed[0]
        vals = ((E.to(torch.float64) @ solver.core()) * E).sum(1).to(E.dtype)
        extra = [solver.shift_sq_norms(G) for _, G in self._train_chunks(ctx, 0)]
        if extra[0] is not None:
            vals = vals + torch.cat(extra)
        return vals * self._scale(ctx)

    # -- streaming hooks (the score phase, skinfluence.scoring) -------------
    def _stream_queries(self, ctx, query):
        """What every chunk of training rows is scored against: the solved
        query vectors, or with a low-rank solver the query coordinates
        ``(Q U) diag(w)`` (float64) and the queries themselves."""
        if not getattr(self, "_train_embed", None):
            # One solved query block per member (only the fitted model
            # without an ensemble).
            return [
                self._precondition(
                    ctx, ctx.query_grads(query, self._query_params(ctx, c)), c
                )
                for c in range(len(self.param_sets_))
            ]
        Q = ctx.query_grads(query, self._query_params(ctx, 0))
        solver = self.solver_
        return [solver.coordinates(Q).to(torch.float64) @ solver.core(), Q]

    def _chunk_scores(self, ctx, queries, sl, Gs):
        """Scores of the training chunk ``sl`` (gradients ``Gs``)."""
        scale = self._scale(ctx)
        if not getattr(self, "_train_embed", None):
            out = None
            for PQ, G, (_, weight) in zip(queries, Gs, self.param_sets_):
                block = PQ.dot(G) * weight
                out = block if out is None else out.add_(block)
            return out * scale
        coords, Q = queries
        out = coords @ self._train_embed[0][sl].to(coords.dtype).T
        extra = self.solver_.shift_dot(Q, Gs[0])
        if extra is not None:
            out += extra.to(out.dtype)
        return (out * scale).to(ctx.view.dtype)

"""Classic influence functions: ``(1/n) g_q^T (H + damping I)^-1 g_j``."""

import numbers
import warnings

import torch
from sklearn.base import clone
from sklearn.utils._param_validation import Interval, StrOptions

from ..exceptions import SkinfluenceWarning
from ..gradients import HessianProblem, RowGrads
from ..utils._torch import rademacher
from ._base import BaseInfluenceMethod
from .ihvp import get_solver

__all__ = ["InfluenceFunction", "extreme_eigenvalues", "resolve_damping"]

# damping="auto": this fraction of the Hessian's mean eigenvalue (trace / p).
AUTO_DAMPING_FRACTION = 1e-5
# damping="auto" on an indefinite Hessian: the magnitude of its smallest
# eigenvalue plus this fraction of its largest.
INDEFINITE_MARGIN = 1e-2
# Lanczos steps of the smallest-eigenvalue estimate when H is not formed.
SPECTRUM_STEPS = 40


def extreme_eigenvalues(problem, generator=None, n_steps=SPECTRUM_STEPS):
    """``(smallest, largest)`` Ritz values of the mean Hessian from a Lanczos
    run of ``n_steps`` Hessian-vector products. Ritz values lie inside the
    spectrum, so the smallest overestimates the true smallest eigenvalue (on
    the digits MLP of ``benchmarks/lds.py``, 40 steps found 80-90% of the
    most negative eigenvalue's magnitude); the margin below covers the rest.
    """
    from .ihvp._arnoldi import _lanczos

    evals, _ = _lanczos(problem, min(problem.p, n_steps), generator)
    return float(evals.min()), float(evals.max())


def resolve_damping(
    problem, damping, H=None, generator=None, n_probes=8, spectrum=None
):
    """The numeric damping for ``damping`` ("auto" or a number >= 0).

    ``"auto"`` is the *convex default* ``1e-5 * trace(H) / p``: small beside
    the curvature the data and penalty provide, yet enough to make a Hessian
    with exact null directions (e.g. softmax intercepts) invertible. The trace
    is exact when ``H`` is given, otherwise a Hutchinson estimate from
    ``n_probes`` Rademacher vectors.

    A non-convex model (a neural net away from a strict minimum, ReLU kinks)
    has an indefinite Hessian, for which that default leaves ``H + damping I``
    indefinite. So ``"auto"`` also looks at the ends of the spectrum: the
    exact eigenvalues when ``H`` is given, ``spectrum=(smallest, largest)``
    when the caller has them (Arnoldi's Ritz values), otherwise a Lanczos
    estimate (:func:`extreme_eigenvalues`). When the smallest eigenvalue is
    below ``-max(convex default, 100 * eps * largest)`` (i.e. negative beyond
    rounding), the damping is lifted to ``|smallest| + 1e-2 * largest``, which
    makes the system positive definite with a condition number of at most
    about ``100 + largest / |smallest|``, and a :class:`SkinfluenceWarning`
    says so. The rule depends only on the spectrum, so no value has to be
    known in advance; the margin ``1e-2`` was chosen by the linear
    datamodeling score on the digits MLP (``benchmarks/lds.py``).
    """
    if not (isinstance(damping, str) and damping == "auto"):
        return float(damping)
    if H is not None:
        tr = float(torch.diagonal(H).sum())
        if spectrum is None:
            evals = torch.linalg.eigvalsh(H.to(torch.float64))
            spectrum = float(evals[0]), float(evals[-1])
    else:
        z = rademacher((n_probes, problem.p), generator, problem.dtype, problem.device)
        tr = float((problem.hvp(z) * z).sum(1).mean())
    convex = max(AUTO_DAMPING_FRACTION * abs(tr) / problem.p, 0.0)
    if spectrum is not None:
        lo, hi = map(float, spectrum)
    else:
        lo, hi = extreme_eigenvalues(problem, generator)
    rounding = 100 * torch.finfo(problem.dtype).eps * max(abs(hi), abs(lo))
    if lo >= -max(convex, rounding):
        return convex
    lifted = -lo + INDEFINITE_MARGIN * max(hi, 0.0)
    warnings.warn(
        f"The Hessian is indefinite (smallest eigenvalue about {lo:.3g}, largest "
        f"{hi:.3g}): damping='auto' lifted the damping from the convex default "
        f"{convex:.3g} to {lifted:.3g} so that H + damping*I is positive "
        "definite. Pass damping=<float> to choose it yourself.",
        SkinfluenceWarning,
        stacklevel=3,
    )
    return lifted


class InfluenceFunction(BaseInfluenceMethod):
    """Influence functions on the leave-one-out scale.

    ``influence(q, j) = (1/n) g_q^T (H + damping I)^{-1} g_j``, with ``H`` the
    Hessian of the estimator's mean training objective (penalty included)
    and ``g`` the per-row loss gradients. Positive = helpful: it
    approximates ``loss_q(theta without j) - loss_q(theta)``, so it can be
    held against actual leave-one-out retraining.

    Parameters
    ----------
    solver : {"exact", "cg", "arnoldi", "ekfac"} or solver object, default="exact"
        How ``(H + damping I)^{-1}`` is applied. ``"exact"`` forms ``H``
        and factorises it (Cholesky, float64); fit for up to a few thousand
        parameters. ``"cg"`` (:class:`CGSolver`): conjugate gradient on
        Hessian-vector products, exact up to its tolerance. ``"arnoldi"``
        (:class:`ArnoldiSolver`): top-k eigenpairs, fast queries from cached
        training-row coordinates. ``"ekfac"`` (:class:`EKFACSolver`):
        eigenvalue-corrected Kronecker factors of Linear layers. A solver
        object's settings are grid-searchable as ``method__solver__tol``
        etc.
    damping : float >= 0 or "auto", default="auto"
        Added to the Hessian's diagonal. ``"auto"`` is ``1e-5 * trace(H)/p``
        on a convex model; when the Hessian is indefinite (a neural net), it
        is lifted to ``|smallest eigenvalue| + 1e-2 * largest eigenvalue``
        (exact eigenvalues with ``solver="exact"``, a Lanczos estimate
        otherwise) with a warning, so the damped system is always positive
        definite. ``0`` is allowed; a singular or indefinite Hessian then
        raises an error that says how much damping it needs.

    Attributes
    ----------
    damping_ : float
        The damping used (after the indefinite-Hessian lift of ``"auto"``).
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
        "solver": [StrOptions({"exact", "cg", "lissa", "arnoldi", "ekfac"}), object],
        "damping": [
            Interval(numbers.Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
    }

    def __init__(self, solver="exact", damping="auto"):
        self.solver = solver
        self.damping = damping

    def fit(self, ctx):
        self._validate_params()
        return super().fit(ctx)

    def _prepare(self, ctx, c, params):
        problem = HessianProblem(ctx.view, ctx.layout, ctx.X, ctx.T, ctx.batch_size)
        solver = get_solver(self.solver)
        self.solver_ = clone(solver) if not isinstance(self.solver, str) else solver
        self.damping_ = self.solver_.fit(problem, self.damping, ctx).damping_
        self._maybe_cache(ctx, c, params)
        self._train_embed = {}
        if hasattr(self.solver_, "low_rank_factors"):
            # P = U diag(w) U^T + s I: cache every training row's coordinates
            # g_j U once, so queries and self-influence never solve again.
            U = self.solver_.low_rank_factors()[0]
            self._train_embed[c] = torch.cat(
                [G.dot_flat(U.T) for _, G in self._train_chunks(ctx, c)]
            )

    def _scale(self, ctx):
        return 1.0 / ctx.view.n_train

    def _bind(self, ctx):
        # Solvers that keep computing Hessian products (CG) drop their problem
        # when pickled; attach one built from the current context.
        if hasattr(self.solver_, "rebind") and self.solver_._problem is None:
            self.solver_.rebind(
                HessianProblem(ctx.view, ctx.layout, ctx.X, ctx.T, ctx.batch_size)
            )

    def _precondition(self, ctx, Q, c):
        self._bind(ctx)
        return RowGrads.from_flat(ctx.layout, self.solver_.solve(Q.materialise()))

    def _self_block(self, ctx, G, c):
        self._bind(ctx)
        if hasattr(self.solver_, "low_rank_factors"):
            U, w, shift = self.solver_.low_rank_factors()
            return ((G.dot_flat(U.T) ** 2) * w).sum(1) + shift * G.sq_norms()
        if hasattr(self.solver_, "quadratic"):
            return self.solver_.quadratic(G)
        M = G.materialise()
        return (M * self.solver_.solve(M)).sum(1)

    def influence(self, ctx, query):
        embed = getattr(self, "_train_embed", None)
        if not embed:
            return super().influence(ctx, query)
        U, w, shift = self.solver_.low_rank_factors()
        Q = ctx.query_grads(query, self._query_params(ctx, 0))
        # The two terms partly cancel: sum them in float64 so that a row's
        # score does not depend on which other rows share its block.
        f64 = torch.float64
        out = (Q.dot_flat(U.T).to(f64) * w.to(f64)) @ embed[0].to(f64).T
        if shift:
            for sl, G in self._train_chunks(ctx, 0):
                out[:, sl] += shift * Q.dot(G).to(f64)
        return (out * self._scale(ctx)).to(ctx.view.dtype)

    def self_influence(self, ctx, X=None, T=None):
        embed = getattr(self, "_train_embed", None)
        if not embed or X is not None:
            return super().self_influence(ctx, X, T)
        U, w, shift = self.solver_.low_rank_factors()
        vals = (embed[0] ** 2 * w).sum(1)
        if shift:
            norms = torch.cat([G.sq_norms() for _, G in self._train_chunks(ctx, 0)])
            vals = vals + shift * norms
        return vals * self._scale(ctx)

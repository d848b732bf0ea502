"""Conjugate gradient on Hessian-vector products, many right-hand sides at once."""

import numbers
import warnings

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ...exceptions import SingularHessianError, SolverConvergenceWarning
from ...utils._torch import rademacher
from ._base import BaseSolver, resolve_damping

__all__ = ["CGSolver"]


class CGSolver(BaseSolver):
    """Solve ``(H + damping I) x = v`` by conjugate gradient, one system per row.

    All right-hand sides advance together: every iteration costs one batched
    Hessian-vector product (vectorised over the rows of ``V``), and each row
    keeps its own step sizes, so the result is the same as running the rows
    one by one. Converged rows stop changing.

    Parameters
    ----------
    tol : float > 0, default=1e-5
        Stop a row when ``||r|| <= tol * ||v||`` (relative residual).
    max_iter : int >= 1, default=100
        Iterations at most; rows still above ``tol`` then raise a
        :class:`~skinfluence.exceptions.SolverConvergenceWarning`.
    preconditioner : {None, "diagonal"} or callable, default=None
        ``"diagonal"``: Jacobi preconditioning by a Hutchinson estimate of
        ``diag(H)`` from ``n_probes`` Hessian-vector products (clipped below
        at a small positive floor), plus ``damping``. A callable maps a
        residual block (k, p) to the preconditioned block.
    n_probes : int >= 1, default=16
        Probes of the diagonal estimate.

    Attributes
    ----------
    damping_ : float
    residual_ : float
        Largest relative residual of the last :meth:`solve`.
    n_iter_ : int
        Iterations of the last :meth:`solve`.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import CGSolver, InfluenceFunction, InfluenceScorer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> method = InfluenceFunction(solver=CGSolver(max_iter=200), damping=0.01)
    >>> scorer = InfluenceScorer(LogisticRegression(), method=method).fit(X, y)
    >>> scorer.get_params()["method__solver__max_iter"]
    200
    >>> scorer.influence(X[:3], y[:3]).shape
    (3, 569)
    """

    _parameter_constraints = {
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "preconditioner": [None, StrOptions({"diagonal"}), callable],
        "n_probes": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, tol=1e-5, max_iter=100, preconditioner=None, n_probes=16):
        self.tol = tol
        self.max_iter = max_iter
        self.preconditioner = preconditioner
        self.n_probes = n_probes

    uses_problem = True

    def _fit(self, problem, damping, ctx):
        generator = getattr(ctx, "generator", None)
        self.damping_ = resolve_damping(problem, damping, generator=generator)
        self._diag = None
        if isinstance(self.preconditioner, str):
            z = rademacher(
                (self.n_probes, problem.p), generator, problem.dtype, problem.device
            )
            diag = (problem.hvp(z) * z).mean(0)
            floor = max(float(diag.abs().mean()) * 1e-3, 1e-12)
            self._diag = diag.clamp_min(floor) + self.damping_
        self.residual_ = 0.0
        self.n_iter_ = 0

    def _apply_precond(self, R):
        if self._diag is not None:
            return R / self._diag
        if callable(self.preconditioner):
            return self.preconditioner(R)
        return R

    def _matvec(self, P):
        return self._problem.hvp(P) + self.damping_ * P

    def _solve(self, V):
        # Every iteration multiplies by the Hessian of the same rows.
        with self._problem.reuse_graph():
            return self._iterate(V)

    def _iterate(self, V):
        problem = self._problem
        B = V.to(device=problem.device, dtype=problem.dtype)
        X = torch.zeros_like(B)
        norms = B.norm(dim=1)
        target = self.tol * norms
        active = norms > 0
        R = B.clone()
        Z = self._apply_precond(R)
        P = Z.clone()
        rz = (R * Z).sum(1)
        it = 0
        h_scale = 0.0
        while bool(active.any()) and it < self.max_iter:
            idx = active.nonzero().squeeze(1)
            Pa = P[idx]
            AP = self._matvec(Pa)
            curv = (Pa * AP).sum(1)
            pp = (Pa * Pa).sum(1)
            h_scale = max(
                h_scale,
                float((curv / pp.clamp_min(torch.finfo(pp.dtype).tiny)).abs().max()),
            )
            eps = torch.finfo(curv.dtype).eps
            bad = curv <= 10 * eps * h_scale * pp
            if bool(bad.any()):
                rel_bad = R[idx[bad]].norm(dim=1) / norms[idx[bad]]
                if bool((rel_bad > eps**0.5).any()):
                    raise SingularHessianError(
                        "Conjugate gradient met a direction of zero or negative "
                        f"curvature: H + damping*I (damping={self.damping_:g}) is "
                        "singular or indefinite. Add damping (e.g. "
                        "InfluenceFunction(damping=...) or method__damping)."
                    )
                # Rounding-level residuals: these rows cannot improve further.
                active[idx[bad]] = False
                good = ~bad
                idx, Pa, AP, curv = idx[good], Pa[good], AP[good], curv[good]
                if idx.numel() == 0:
                    break
            alpha = rz[idx] / curv
            X[idx] += alpha[:, None] * Pa
            R[idx] -= alpha[:, None] * AP
            Zi = self._apply_precond(R[idx])
            rz_new = (R[idx] * Zi).sum(1)
            beta = rz_new / rz[idx]
            P[idx] = Zi + beta[:, None] * Pa
            rz[idx] = rz_new
            active[idx] = R[idx].norm(dim=1) > target[idx]
            it += 1
        rel = R.norm(dim=1) / norms.clamp_min(torch.finfo(norms.dtype).tiny)
        self.residual_ = float(rel.max()) if rel.numel() else 0.0
        self.n_iter_ = it
        if bool((rel > self.tol).any()):
            warnings.warn(
                f"CG stopped after max_iter={self.max_iter} iterations with a "
                f"relative residual of {self.residual_:.2e} > tol={self.tol:g}. "
                "Increase max_iter (method__solver__max_iter), or damping to make "
                "the system better conditioned.",
                SolverConvergenceWarning,
                stacklevel=3,
            )
        return X

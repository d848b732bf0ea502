"""Exact inverse-Hessian products by Cholesky factorisation."""

import numbers

import torch
from sklearn.utils._param_validation import Interval

from ...exceptions import SingularHessianError
from ._base import BaseSolver, resolve_damping

__all__ = ["ExactSolver"]


class ExactSolver(BaseSolver):
    """Form the mean Hessian, add damping, factorise it in float64.

    Memory grows as ``p^2``: fit for models of up to a few thousand
    parameters (all weights of a linear model, the last layer of a net).

    Attributes
    ----------
    damping_ : float
        The damping used. With ``damping="auto"`` it is at least twice the
        rounding level of ``H`` in the working dtype (``10 * eps`` times its
        largest eigenvalue), so "auto" never fails on rounding alone.
    eigenvalues_ : ndarray
        Eigenvalues of the undamped Hessian (ascending).
    """

    _parameter_constraints = {
        "max_params": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, max_params=8000):
        self.max_params = max_params

    def _fit(self, problem, damping, ctx):
        if problem.p > self.max_params:
            raise ValueError(
                f"solver='exact' would form a {problem.p}x{problem.p} Hessian, above "
                f"max_params={self.max_params}. Use solver='cg' or 'arnoldi', or "
                "parameters='last'."
            )
        H = problem.hessian().to(torch.float64)
        evals = torch.linalg.eigvalsh(H)
        self.damping_ = resolve_damping(
            problem, damping, H=H, spectrum=(float(evals[0]), float(evals[-1]))
        )
        self.eigenvalues_ = evals.cpu().numpy()
        # H was accumulated in the working dtype: eigenvalues below its
        # rounding level are indistinguishable from zero. "auto" damping is
        # kept above that level; an explicit damping is used as given.
        floor = 10 * torch.finfo(problem.dtype).eps * max(abs(float(evals[-1])), 1e-300)
        if isinstance(damping, str):
            self.damping_ = max(self.damping_, 2 * floor)
        Hd = H + self.damping_ * torch.eye(problem.p, dtype=H.dtype, device=H.device)
        L, info = torch.linalg.cholesky_ex(Hd)
        lo, hi = float(evals[0]) + self.damping_, float(evals[-1]) + self.damping_
        if int(info) != 0 or lo <= floor:
            need = max(-float(evals[0]), 0.0) + 1e-3 * max(abs(hi), 1e-12)
            raise SingularHessianError(
                f"The damped Hessian (H + damping*I with damping={self.damping_:g}) is "
                f"singular or not positive definite: its smallest eigenvalue is "
                f"{lo:.3g} (largest {hi:.3g}). Add damping: e.g. damping={need:.3g} "
                "or damping='auto' (InfluenceFunction(damping=...), or "
                "method__damping in a grid)."
            )
        self._L = L

    def _solve(self, V):
        L = self._L
        return torch.cholesky_solve(V.T.to(device=L.device, dtype=L.dtype), L).T

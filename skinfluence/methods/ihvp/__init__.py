"""Inverse-Hessian-vector-product solvers.

Every solver is a :class:`BaseSolver`: ``fit(problem, damping, ctx)`` (sets
``damping_``) and ``solve(V) -> (H + damping_ I)^{-1} V`` row-wise, where
``problem`` is a :class:`~skinfluence.gradients.HessianProblem`.
"""

from sklearn.base import clone

from ._arnoldi import ArnoldiSolver
from ._base import AUTO_DAMPING_FRACTION, BaseSolver, resolve_damping
from ._cg import CGSolver
from ._ekfac import EKFACSolver
from ._exact import ExactSolver
from ._lissa import LISSA_PRESETS, LissaSolver

SOLVERS = {
    "exact": ExactSolver,
    "lissa": LissaSolver,
    "cg": CGSolver,
    "arnoldi": ArnoldiSolver,
    "ekfac": EKFACSolver,
}

__all__ = [
    "AUTO_DAMPING_FRACTION",
    "ArnoldiSolver",
    "BaseSolver",
    "CGSolver",
    "EKFACSolver",
    "ExactSolver",
    "LISSA_PRESETS",
    "LissaSolver",
    "SOLVERS",
    "get_solver",
    "resolve_damping",
]


def get_solver(solver):
    """A fresh (unfitted) solver from a name or a solver object (cloned)."""
    if isinstance(solver, str):
        try:
            return SOLVERS[solver]()
        except KeyError:
            raise ValueError(
                f"solver={solver!r} is not available; choose one of "
                f"{sorted(SOLVERS)} or pass a solver object."
            ) from None
    if isinstance(solver, BaseSolver):
        return clone(solver)
    raise TypeError(
        f"solver must be a name among {sorted(SOLVERS)} or a solver object "
        f"(a subclass of skinfluence.methods.BaseSolver, e.g. "
        f"skinfluence.CGSolver()); got {solver!r}."
    )

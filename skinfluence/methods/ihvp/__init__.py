"""Inverse-Hessian-vector-product solvers.

A solver is a small estimator-like object with ``fit(problem, damping,
ctx)`` (sets ``damping_``) and ``solve(V) -> (H + damping_ I)^{-1} V``
row-wise, where ``problem`` is a :class:`~skinfluence.gradients.HessianProblem`.
"""

from ._arnoldi import ArnoldiSolver
from ._cg import CGSolver
from ._ekfac import EKFACSolver
from ._exact import ExactSolver
from ._lissa import LISSA_PRESETS, LissaSolver

SOLVERS = {"exact": ExactSolver}
SOLVERS["lissa"] = LissaSolver
SOLVERS["cg"] = CGSolver
SOLVERS["arnoldi"] = ArnoldiSolver
SOLVERS["ekfac"] = EKFACSolver

__all__ = [
    "ArnoldiSolver",
    "CGSolver",
    "EKFACSolver",
    "ExactSolver",
    "LISSA_PRESETS",
    "LissaSolver",
    "SOLVERS",
    "get_solver",
]


def get_solver(solver):
    """A solver object from a name or an object (returned as is)."""
    if isinstance(solver, str):
        try:
            return SOLVERS[solver]()
        except KeyError:
            raise ValueError(
                f"solver={solver!r} is not available; choose one of "
                f"{sorted(SOLVERS)} or pass a solver object."
            ) from None
    if not (hasattr(solver, "fit") and hasattr(solver, "solve")):
        raise TypeError(
            f"solver must be a name ({sorted(SOLVERS)}) or an object with fit and "
            f"solve; got {solver!r}."
        )
    return solver

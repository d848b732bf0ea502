"""Errors and warnings raised by skinfluence."""

from sklearn.exceptions import ConvergenceWarning, NotFittedError

__all__ = [
    "NotFittedError",
    "UnsupportedEstimatorError",
    "SingularHessianError",
    "SolverConvergenceWarning",
    "SkinfluenceDeprecationWarning",
    "SkinfluenceWarning",
]


class UnsupportedEstimatorError(TypeError):
    """The estimator cannot be turned into a differentiable torch model."""


class SingularHessianError(ValueError):
    """The (damped) Hessian is singular or not positive definite."""


class SolverConvergenceWarning(ConvergenceWarning):
    """An inverse-Hessian solver stopped before it converged."""


class SkinfluenceWarning(UserWarning):
    """A result may not be what was asked for (e.g. a clipped parameter)."""


class SkinfluenceDeprecationWarning(DeprecationWarning):
    """A skinfluence feature is deprecated."""

"""The solver protocol: damping, ``solve``, capabilities, binding, pickling."""

import math
import numbers

import torch
from sklearn.base import BaseEstimator

from ...utils._torch import CPUStateMixin, rademacher

__all__ = ["AUTO_DAMPING_FRACTION", "BaseSolver", "check_damping", "resolve_damping"]

# damping="auto": this fraction of the Hessian's mean eigenvalue (trace / p).
AUTO_DAMPING_FRACTION = 1e-5


def check_damping(damping):
    """Raise unless ``damping`` is ``"auto"`` or a finite number >= 0."""
    if isinstance(damping, str) and damping == "auto":
        return
    ok = isinstance(damping, numbers.Real) and not isinstance(damping, bool)
    if not ok or not math.isfinite(damping) or damping < 0:
        raise ValueError(
            f"damping must be 'auto' or a finite number >= 0; got {damping!r}. "
            "Pass e.g. damping=0.01 (InfluenceFunction(damping=...), or "
            "method__damping in a grid)."
        )


def resolve_damping(problem, damping, H=None, generator=None, n_probes=8):
    """The numeric damping for ``damping`` ("auto" or a number >= 0).

    ``"auto"`` is ``1e-5 * trace(H) / p``: small beside the curvature the
    data and penalty provide, yet enough to make a Hessian with exact null
    directions (e.g. softmax intercepts) invertible. The trace is exact when
    ``H`` is given, otherwise a Hutchinson estimate from ``n_probes``
    Rademacher vectors.
    """
    if not (isinstance(damping, str) and damping == "auto"):
        return float(damping)
    if H is not None:
        tr = float(torch.diagonal(H).sum())
    else:
        z = rademacher((n_probes, problem.p), generator, problem.dtype, problem.device)
        tr = float((problem.hvp(z) * z).sum(1).mean())
    return max(AUTO_DAMPING_FRACTION * abs(tr) / problem.p, 0.0)


class BaseSolver(CPUStateMixin, BaseEstimator):
    """Base class of the inverse-Hessian-vector-product solvers.

    A solver is a small estimator holding its numerical settings.
    :meth:`fit` validates them and calls the subclass's ``_fit(problem,
    damping, ctx)``, which resolves ``damping`` (with
    :func:`resolve_damping`, the rule every solver shares) into
    ``damping_`` and prepares the operator; :meth:`solve` applies
    ``(H + damping_ I)^{-1}`` row-wise through the subclass's ``_solve``.

    Capabilities are declared, not probed:

    - ``low_rank = True``: :meth:`low_rank_factors` gives ``(U, w, s)`` with
      ``(H + damping I)^{-1} = U diag(w) U^T + s I``, so a method can cache
      every training row's coordinates ``g_j U`` once.
    - ``uses_problem = True``: :meth:`solve` keeps computing Hessian-vector
      products (CG, LiSSA), so it needs the
      :class:`~skinfluence.gradients.HessianProblem`.
    - :meth:`quadratic` gives ``g_i^T P g_i`` for a block of per-row
      gradients; the default materialises the block and solves, a solver
      with a cheaper form overrides it.

    The Hessian problem holds the model and the training data, so it is not
    pickled, and every fitted tensor is pickled on the CPU. :meth:`rebind`
    is the one way to attach a problem again (the methods call it with the
    problem of their context); it also moves the fitted tensors to the
    problem's device.
    """

    low_rank = False
    uses_problem = False
    _parameter_constraints = {}
    _transient_state = ("_problem",)

    def fit(self, problem, damping, ctx=None, **fit_params):
        """Prepare ``(H + damping I)^{-1}`` for ``problem``.

        Parameters
        ----------
        problem : HessianProblem
        damping : float >= 0 or "auto"
            ``"auto"`` follows :func:`resolve_damping`.
        ctx : InfluenceContext, optional
            Supplies the random generator and ``n_jobs``.
        **fit_params : dict
            Passed to the subclass's ``_fit`` (e.g. LiSSA's ``top_eigenvalue``).

        Returns
        -------
        self
        """
        self._validate_params()
        check_damping(damping)
        self._problem = problem
        self._fit(problem, damping, ctx, **fit_params)
        self._state_device = problem.device
        return self

    def _fit(self, problem, damping, ctx, **fit_params):
        raise NotImplementedError

    def rebind(self, problem):
        """Attach ``problem`` (e.g. after unpickling) and move the fitted
        tensors to its device."""
        self._move_state(problem.device)
        self._problem = problem
        return self

    @property
    def is_bound(self):
        """Whether a Hessian problem is attached."""
        return getattr(self, "_problem", None) is not None

    def solve(self, V):
        """``(H + damping I)^{-1} V^T`` row-wise for V (m, p), on V's device
        and in its dtype."""
        if self.uses_problem and not self.is_bound:
            raise ValueError(
                f"This {type(self).__name__} has no Hessian problem (solvers are "
                "pickled without their training data); attach one with "
                "rebind(problem), or fit again."
            )
        return self._solve(V).to(device=V.device, dtype=V.dtype)

    def _solve(self, V):
        raise NotImplementedError

    def quadratic(self, G):
        """``g_i^T P g_i`` for the rows of a :class:`RowGrads`."""
        M = G.materialise()
        return (M * self.solve(M)).sum(1)

    def low_rank_factors(self):
        """``(U, w, s)`` with ``(H + damping I)^{-1} = U diag(w) U^T + s I``
        (solvers with ``low_rank = True``)."""
        raise NotImplementedError(
            f"{type(self).__name__} is not a low-rank solver (low_rank=False)."
        )

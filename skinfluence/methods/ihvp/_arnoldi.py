"""Top-k Hessian eigenpairs by Lanczos (Arnoldi on a symmetric operator)."""

import numbers

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ...exceptions import SingularHessianError
from ...utils._torch import rademacher
from ._base import BaseSolver, resolve_damping
from ._lanczos import _lanczos

__all__ = ["ArnoldiSolver"]


class ArnoldiSolver(BaseSolver):
    """Invert the damped Hessian in its top-``rank`` eigenspace.

    A Krylov basis of ``rank + oversampling`` Hessian-vector products (Lanczos
    with full re-orthogonalisation, kept in float64) gives Ritz pairs; the
    ``rank`` of largest magnitude are kept, as in Schioppa et al. The inverse
    is then

        ``U diag(1 / (lambda + damping)) U^T + (I - U U^T) / (c + damping)``

    with ``c`` the eigenvalue assumed on the rest of the space.
    ``tail="gradient"`` takes the Rayleigh quotient ``sum_k r_k^T H r_k /
    sum_k |r_k|^2`` of probes ``r_k = (I - U U^T) sum_i s_ik g_i``: random
    signed sums of the training rows' loss gradients ``g_i``, projected off
    ``U``. Their second moment is ``sum_i g_i g_i^T``, so ``c`` is the
    curvature of the remaining space *as the gradients see it*, which is
    what the influence ``g_q^T (H + damping I)^{-1} g_j`` is made of. Loss
    gradients lie mostly in directions of high curvature (for
    cross-entropy the Gauss-Newton matrix is their expected outer product),
    so this ``c`` is far above the plain mean eigenvalue of the rest, and
    the scores come closer to a converged solve with the same eigenpairs
    (``benchmarks/speed_if.py`` measures it). ``tail="mean"`` estimates the
    plain mean eigenvalue there (Rademacher probes projected off ``U``), a
    number sets ``c``, and ``tail="drop"`` drops the rest of the space (the
    original Arnoldi influence, which ignores gradient components outside
    the basis). Because the operator is "low rank plus a multiple of the
    identity", :class:`~skinfluence.InfluenceFunction` caches every
    training row's ``rank`` coordinates once: each later query is a small
    matrix product plus a gradient inner product, and self-influence costs
    O(n_train * rank).

    Parameters
    ----------
    rank : int >= 1, default=50
        Eigenpairs kept (capped at the number of parameters).
    oversampling : int >= 0, default=10
        Extra Krylov vectors that sharpen the kept Ritz pairs.
    tail : {"gradient", "mean", "drop"} or float >= 0, default="gradient"
        Eigenvalue used outside the kept eigenspace (see above).
    n_probes : int >= 1, default=4
        Probes of the ``"gradient"`` and ``"mean"`` estimates (one
        Hessian-vector product each).
    hessian_rows : int >= 1 or None, default=None
        Estimate the eigenpairs (and the tail) from the Hessian of this many
        training rows drawn at random without replacement (rescaled to the
        mean objective), as LiSSA samples its mini-batches; ``None`` uses
        every row. Each Hessian-vector product then costs ``hessian_rows /
        n_train`` of a full one, at a small loss of agreement with a
        converged solve (``benchmarks/speed_if.py`` measures both); the
        training rows' coordinates and the influence scores still use every
        row.

    Attributes
    ----------
    damping_ : float
    eigenvalues_ : ndarray of shape (rank,)
        Kept Ritz values, largest magnitude first.
    tail_eigenvalue_ : float
        ``c`` above (``nan`` with ``tail="drop"``).
    n_hvp_ : int
        Hessian-vector products used.
    hessian_indices_ : ndarray of int or None
        Training rows of the ``hessian_rows`` sample (``None``: all rows).

    References
    ----------
    .. [1] Schioppa, Zablotskaia, Vilar, Sokolov. "Scaling Up Influence
       Functions." AAAI 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import ArnoldiSolver, InfluenceFunction, InfluenceScorer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> method = InfluenceFunction(solver=ArnoldiSolver(rank=10), damping=0.01)
    >>> scorer = InfluenceScorer(LogisticRegression(), method=method).fit(X, y)
    >>> scorer.method_.solver_.eigenvalues_.shape
    (10,)
    """

    _parameter_constraints = {
        "rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "oversampling": [Interval(numbers.Integral, 0, None, closed="left")],
        "tail": [
            StrOptions({"gradient", "mean", "drop"}),
            Interval(numbers.Real, 0, None, closed="left"),
        ],
        "n_probes": [Interval(numbers.Integral, 1, None, closed="left")],
        "hessian_rows": [None, Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self, rank=50, oversampling=10, tail="gradient", n_probes=4, hessian_rows=None
    ):
        self.rank = rank
        self.oversampling = oversampling
        self.tail = tail
        self.n_probes = n_probes
        self.hessian_rows = hessian_rows

    low_rank = True

    def _fit(self, problem, damping, ctx):
        generator = getattr(ctx, "generator", None)
        start = problem.n_hvp
        full = problem
        p = problem.p
        rank = min(self.rank, p)
        n_rows = problem.X.shape[0]
        self.hessian_indices_ = None
        if self.hessian_rows is not None and self.hessian_rows < n_rows:
            idx = torch.randperm(n_rows, generator=generator)[: self.hessian_rows]
            self.hessian_indices_ = idx.numpy()
            problem = _RowSample(problem, idx.to(problem.device))
        evals, U = _lanczos(problem, min(p, rank + self.oversampling), generator)
        # The Krylov space's extreme Ritz values decide whether "auto" damping
        # must be lifted above an indefinite Hessian's smallest eigenvalue.
        self.damping_ = resolve_damping(
            full,
            damping,
            generator=generator,
            spectrum=(float(evals.min()), float(evals.max())),
        )
        order = torch.argsort(evals.abs(), descending=True)[:rank]
        evals, U = evals[order], U[:, order]
        k = U.shape[1]
        if self.tail == "drop" or k == p:
            c = float("nan")
            shift = 0.0
        else:
            c = self._tail_eigenvalue(problem, U, generator)
            if c + self.damping_ <= 0:
                raise SingularHessianError(
                    f"The damped Hessian is singular or indefinite outside its top "
                    f"{k} eigenvectors (mean eigenvalue there {c:.3g}, damping "
                    f"{self.damping_:g}). Add damping (method__damping)."
                )
            shift = 1.0 / (c + self.damping_)
        lo = float((evals + self.damping_).min())
        if lo <= 1e-12 * max(float(evals.abs().max()), 1.0):
            raise SingularHessianError(
                f"The damped Hessian (damping={self.damping_:g}) has eigenvalue "
                f"{lo:.3g} <= 0 in its top {k} eigenvectors: it is singular or "
                f"indefinite. Add damping: set damping above "
                f"{max(-float(evals.min()), 0):.3g} (method__damping)."
            )
        self.eigenvalues_ = evals.cpu().numpy()
        self.tail_eigenvalue_ = c
        self._U = U.to(problem.dtype)
        self._weights = (1.0 / (evals + self.damping_) - shift).to(problem.dtype)
        self._shift = shift
        self.n_hvp_ = problem.n_hvp - start

    def _tail_eigenvalue(self, problem, U, generator):
        """``c``: the eigenvalue assumed outside the basis ``U`` (see above)."""
        if not isinstance(self.tail, str):
            return float(self.tail)
        if self.tail == "mean":
            z = rademacher(
                (self.n_probes, problem.p), generator, torch.float64, U.device
            )
        else:
            z = problem.signed_gradients(self.n_probes, generator).to(torch.float64)
        z = z - (z @ U) @ U.T
        Hz = problem.hvp(z.to(problem.dtype)).to(torch.float64)
        if self.tail == "mean":
            return float((Hz * z).sum(1).mean()) / (problem.p - U.shape[1])
        return float((Hz * z).sum() / (z * z).sum().clamp_min(1e-300))

    def low_rank_factors(self):
        """``(U, w, s)`` with ``(H + damping I)^{-1} = U diag(w) U^T + s I``."""
        return self._U, self._weights, self._shift

    def _solve(self, V):
        U = self._U
        W = V.to(device=U.device, dtype=U.dtype)
        return ((W @ U) * self._weights) @ U.T + self._shift * W


class _RowSample:
    """The Hessian of a row sample, rescaled to the mean objective."""

    def __init__(self, problem, idx):
        self._problem, self._idx = problem, idx
        self.p, self.dtype, self.device = problem.p, problem.dtype, problem.device

    @property
    def n_hvp(self):
        return self._problem.n_hvp

    def hvp(self, V):
        return self._problem.hvp(V, idx=self._idx)

    def signed_gradients(self, n_probes, generator=None):
        return self._problem.signed_gradients(n_probes, generator, idx=self._idx)

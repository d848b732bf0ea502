"""Eigenvalue-corrected Kronecker-factored (EK-FAC) curvature of Linear layers."""

import numbers

import torch
from sklearn.utils._param_validation import Interval
from torch.func import grad, jvp, vmap

from ...exceptions import SingularHessianError
from ...gradients import row_gradients
from ._base import BaseSolver, resolve_damping

__all__ = ["EKFACSolver"]


class EKFACSolver(BaseSolver):
    """Block-diagonal, eigenvalue-corrected Kronecker-factored Hessian.

    Every Linear layer is one block; for a row ``i`` its gradient is
    ``outer(delta_i, a_i)``. With ``S = mean_i delta_i delta_i^T`` and
    ``A = mean_i a_i a_i^T`` (eigenbases ``Q_S``, ``Q_A``), the block is
    ``(Q_S kron Q_A) diag(lambda) (Q_S kron Q_A)^T`` where ``lambda`` are
    the *corrected* eigenvalues: the mean squared projections of the rows'
    gradients onto the Kronecker eigenbasis (George et al.). The
    ``delta`` are pseudo-gradients of the Gauss-Newton matrix: each row's
    output is back-propagated along the square-root columns of the loss'
    Hessian in the model output, so the curvature is that of the generalised
    Gauss-Newton approximation, not of the labels' gradients (empirical
    Fisher). The L2 penalty's (diagonal) curvature is rotated into the
    eigenbasis and added; ``damping`` is added to every eigenvalue.

    Every selected parameter must belong to a ``torch.nn.Linear`` layer
    applied once per row (skorch MLPs, converted scikit-learn MLPs and
    linear models); otherwise use ``solver="cg"`` or ``"arnoldi"``.

    Parameters
    ----------
    max_outputs : int >= 1, default=64
        Output columns up to which the Gauss-Newton factor is exact (one
        backward pass per output column); with more outputs, that many
        Gaussian projections give an unbiased estimate.

    Attributes
    ----------
    damping_ : float
    eigenvalues_ : list of ndarray of shape (out, cols)
        Corrected eigenvalues of each layer (without damping).

    References
    ----------
    .. [1] George, Laurent, Bouthillier, Ballas, Vincent. "Fast Approximate
       Natural Gradient Descent in a Kronecker-factored Eigenbasis."
       NeurIPS 2018.
    .. [2] Grosse et al. "Studying Large Language Model Generalization with
       Influence Functions." arXiv:2308.03296, 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neural_network import MLPClassifier
    >>> from skinfluence import EKFACSolver, InfluenceFunction, InfluenceScorer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 4))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> mlp = MLPClassifier((8,), max_iter=300, random_state=0)
    >>> method = InfluenceFunction(solver=EKFACSolver(), damping=0.01)
    >>> scorer = InfluenceScorer(mlp, method=method).fit(X, y)
    >>> [e.shape for e in scorer.method_.solver_.eigenvalues_]
    [(8, 5), (1, 9)]
    """

    _parameter_constraints = {
        "max_outputs": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, max_outputs=64):
        self.max_outputs = max_outputs

    def _fit(self, problem, damping, ctx):
        layout, view = problem.layout, problem.view
        if not layout.groups:
            raise ValueError(
                "solver='ekfac' needs torch.nn.Linear layers among the selected "
                f"parameters; {view.name} has none ({layout.dense}). Use "
                "solver='cg' or 'arnoldi'."
            )
        if layout.dense:
            raise ValueError(
                f"solver='ekfac' covers Linear layers only; the parameters "
                f"{layout.dense} are not in one. Restrict `parameters` to Linear "
                "layers (e.g. parameters='last') or use solver='cg' or 'arnoldi'."
            )
        generator = getattr(ctx, "generator", None)
        self.damping_ = resolve_damping(problem, damping, generator=generator)
        chunk = problem.row_chunk()
        dtype, device = problem.dtype, problem.device
        cov_a = [
            torch.zeros(g.cols, g.cols, dtype=dtype, device=device)
            for g in layout.groups
        ]
        cov_s = [
            torch.zeros(g.out, g.out, dtype=dtype, device=device) for g in layout.groups
        ]
        for A, Ds in self._factor_passes(problem, chunk, generator):
            for k, a in enumerate(A):
                cov_a[k] += a.T @ a
                for d in Ds[k]:
                    cov_s[k] += d.T @ d
        bases = []
        for ca, cs in zip(cov_a, cov_s):
            _, qa = torch.linalg.eigh(ca.double())
            _, qs = torch.linalg.eigh(cs.double())
            bases.append((qs.to(dtype), qa.to(dtype)))
        lam = [
            torch.zeros(g.out, g.cols, dtype=dtype, device=device)
            for g in layout.groups
        ]
        for A, Ds in self._factor_passes(problem, chunk, generator):
            for k, ((qs, qa), a) in enumerate(zip(bases, A)):
                at2 = (a @ qa) ** 2
                for d in Ds[k]:
                    lam[k] += ((d @ qs) ** 2).T @ at2
        n = problem.n
        pen = _penalty_diagonal(problem)
        self.eigenvalues_ = []
        self._bases = bases
        self._inv = []
        for (qs, qa), lk, s in zip(bases, lam, layout.group_slices):
            ev = lk / n
            if pen is not None:
                c = pen[s].reshape(lk.shape)
                ev = ev + (qs**2).T @ c @ (qa**2)
            self.eigenvalues_.append(ev.cpu().numpy())
            damped = ev + self.damping_
            lo = float(damped.min())
            if lo <= 1e-12 * max(float(damped.abs().max()), 1.0):
                raise SingularHessianError(
                    f"The EK-FAC curvature plus damping={self.damping_:g} has "
                    f"eigenvalue {lo:.3g}: it is singular. Add damping "
                    "(method__damping)."
                )
            self._inv.append(1.0 / damped)
        self._layout = layout

    def _factor_passes(self, problem, chunk, generator):
        """Per chunk: ``A`` factors per layer and, per layer, the list of
        Gauss-Newton pseudo-gradient factors ``delta``."""
        view, layout = problem.view, problem.layout
        for start in range(0, problem.X.shape[0], chunk):
            x = problem.X[start : start + chunk]
            t = problem.T[start : start + chunk]
            with torch.no_grad():
                out = view.forward(x)
            shape = out.shape
            flat = out.reshape(shape[0], -1)
            roots = _output_hessian_roots(view.loss, flat, t, shape)
            k_out = roots.shape[2]
            if k_out > self.max_outputs:
                z = torch.randn(
                    k_out, self.max_outputs, generator=generator, dtype=torch.float64
                ).to(device=flat.device, dtype=flat.dtype)
                roots = roots @ z / self.max_outputs**0.5
            A, Ds = None, [[] for _ in layout.groups]
            for j in range(roots.shape[2]):
                cot = roots[:, :, j]

                def measure(output, c):
                    return (output.reshape(c.shape) * c).sum(1)

                g = row_gradients(view, layout, x, cot, measure=measure)
                if A is None:
                    A = [a for a, _ in g.factors]
                for k, (_, d) in enumerate(g.factors):
                    Ds[k].append(d)
            yield A, Ds

    def _rotate_apply(self, block, k):
        qs, qa = self._bases[k]
        return qs @ ((qs.T @ block @ qa) * self._inv[k]) @ qa.T

    def _solve(self, V):
        # P V^T row-wise, P the inverse of the damped EK-FAC matrix.
        layout = self._layout
        dtype = self._inv[0].dtype
        W = V.to(device=self._inv[0].device, dtype=dtype)
        out = torch.empty_like(W)
        for k, (g, s) in enumerate(zip(layout.groups, layout.group_slices)):
            block = W[:, s].reshape(-1, g.out, g.cols)
            out[:, s] = self._rotate_apply(block, k).reshape(W.shape[0], -1)
        return out

    def quadratic(self, G):
        """``g_i^T P g_i`` for the rows of a :class:`RowGrads`, from the
        factors (O(n p) without forming any gradient)."""
        if G.is_flat:
            M = G.flat
            return (M * self.solve(M)).sum(1)
        total = 0
        for k, (a, d) in enumerate(G.factors):
            qs, qa = self._bases[k]
            inv = self._inv[k].to(d.dtype)
            dt2 = (d @ qs.to(d.dtype)) ** 2
            at2 = (a @ qa.to(a.dtype)) ** 2
            total = total + ((dt2 @ inv) * at2).sum(1)
        return total


def _output_hessian_roots(loss, flat, t, shape):
    """Per row ``L`` (n, K, K) with ``L L^T`` the Hessian of the row's loss in
    the model output, negative curvature clipped."""

    def row_loss(o, ti):
        return loss(o.reshape(1, *shape[1:]), ti.unsqueeze(0)).sum()

    def row_hessian(o, ti):
        eye = torch.eye(o.shape[0], dtype=o.dtype, device=o.device)
        return vmap(lambda v: jvp(lambda z: grad(row_loss)(z, ti), (o,), (v,))[1])(eye)

    H = vmap(row_hessian)(flat, t)
    H = (H + H.transpose(1, 2)) / 2
    evals, vecs = torch.linalg.eigh(H)
    return vecs * evals.clamp_min(0).sqrt().unsqueeze(1)


def _penalty_diagonal(problem):
    """Diagonal of the penalty's mean-scale Hessian (an L2 term for every
    supported estimator), or None without a penalty."""
    if problem.view.penalty is None:
        return None
    if getattr(problem, "_penalty_diag", None) is not None:
        return problem._penalty_diag / problem.n
    ones = torch.ones(problem.p, dtype=problem.dtype, device=problem.device)
    return jvp(grad(problem._penalty_term), (problem.theta,), (ones,))[1] / problem.n

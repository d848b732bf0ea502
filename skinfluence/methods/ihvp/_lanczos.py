"""Lanczos with full re-orthogonalisation on a Hessian problem."""

import torch

__all__ = ["RitzPairs", "_ritz_pairs"]

# A new Krylov direction whose norm after orthogonalisation is below this
# fraction of the operator's scale lies in the space already spanned.
BREAKDOWN = 1e-10


class RitzPairs:
    """Ritz values of a Krylov space, with its vectors formed on request.

    A Ritz vector is the basis ``Q`` (k, p) times a column of the projected
    matrix's eigenvectors ``S`` (k, k). A caller usually keeps a few of the
    ``k`` pairs, so :meth:`vectors` forms only those, in the basis' own
    dtype: the basis carries no more digits than that, and on the MLP of
    ``benchmarks/speed_if.py`` (85,002 parameters, 40 vectors, 20 kept)
    forming and picking all of them in float64 took about 50 ms of a
    1-second fit.
    """

    def __init__(self, values, basis, coefficients):
        self.values = values
        self._basis = basis
        self._coefficients = coefficients

    def top(self, k):
        """Indices of the ``k`` pairs of largest ``|value|``, largest first."""
        return torch.argsort(self.values.abs(), descending=True)[:k]

    def vectors(self, idx=None):
        """Ritz vectors ``(p, len(idx))`` (all of them for ``None``)."""
        S = self._coefficients if idx is None else self._coefficients[:, idx]
        return self._basis.T @ S.to(self._basis)


def _ritz_pairs(problem, m, generator, block=1, start=None):
    """:class:`RitzPairs` of the mean Hessian from an ``m``-dimensional
    Krylov space (values float64, on the problem's device).

    ``block=1`` is the three-term Lanczos recurrence; ``block > 1`` grows the
    space ``block`` vectors at a time (block Lanczos), each block's
    Hessian-vector products taken in one batched pass over the data.
    ``start`` (``(block, p)``) gives the first vectors instead of random
    ones.
    """
    if block > 1 or (start is not None and start.shape[0] > 1):
        return _block_lanczos(problem, m, generator, block, start)
    p = problem.p
    device = problem.device
    # The basis is kept in the products' own precision: they carry no more
    # digits than that, and re-orthogonalisation against the basis (the
    # memory-bound part, reading it twice per step) costs half as much in
    # float32; the second pass below keeps it orthonormal to that precision.
    dtype = problem.dtype
    breakdown = max(BREAKDOWN, 10 * torch.finfo(dtype).eps)
    q = None if start is None else start[0].to(device=device, dtype=torch.float64)
    if q is None or not float(q.norm()) > 0:
        q = torch.randn(p, generator=generator, dtype=torch.float64).to(device)
    q = (q / q.norm()).to(dtype)
    Q = torch.empty(m, p, dtype=dtype, device=device)
    alphas, betas = [], []
    beta_prev, q_prev = 0.0, torch.zeros_like(q)
    scale = 0.0
    for i in range(m):
        Q[i] = q
        w = problem.hvp(q).to(dtype)
        alpha = float(w.double() @ q.double())
        w = w - alpha * q - beta_prev * q_prev
        # Full re-orthogonalisation keeps the basis orthonormal; a second
        # pass runs when the first removed much of w (the DGKS criterion).
        before = float(w.norm())
        w = w - Q[: i + 1].T @ (Q[: i + 1] @ w)
        beta = float(w.norm())
        if beta < 0.7071 * before:
            w = w - Q[: i + 1].T @ (Q[: i + 1] @ w)
            beta = float(w.norm())
        alphas.append(alpha)
        scale = max(scale, abs(alpha), beta)
        if i == m - 1 or beta <= breakdown * max(scale, 1e-30):
            Q = Q[: i + 1]
            break
        betas.append(beta)
        q_prev, q, beta_prev = q, w / beta, beta
    k = len(alphas)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if k > 1:
        off = torch.tensor(betas[: k - 1], dtype=torch.float64)
        T = T + torch.diag(off, 1) + torch.diag(off, -1)
    evals, S = torch.linalg.eigh(T)
    return RitzPairs(evals.to(device), Q, S.to(device))


def _orthonormal_rows(W, Q, floor):
    """The rows of ``W`` made orthonormal to the rows of ``Q`` and to each
    other (two Gram-Schmidt passes); rows left with a norm at most ``floor``
    (already in the span) are dropped."""
    for _ in range(2):
        W = W - (W @ Q.T) @ Q
    kept = []
    for w in W:
        for _ in range(2):
            for u in kept:
                w = w - (u @ w) * u
        norm = float(w.norm())
        if norm > floor:
            kept.append(w / norm)
    if not kept:
        return W[:0]
    return torch.stack(kept)


def _block_lanczos(problem, m, generator, block, start=None):
    """Block Lanczos with full re-orthogonalisation and a Rayleigh-Ritz step.

    The space is ``span{Q0, H Q0, H^2 Q0, ...}`` for a random block ``Q0`` of
    ``block`` vectors; each new block is the Hessian times the last block,
    orthogonalised against the whole basis. The projected matrix
    ``T = Q^T H Q`` is read off the products themselves (each new block's
    products against the basis so far), so no product is stored.
    """
    p, device, f64 = problem.p, problem.device, torch.float64
    Q = torch.empty(m, p, dtype=f64, device=device)
    T = torch.zeros(m, m, dtype=f64, device=device)
    if start is None:
        start = torch.randn(min(block, m), p, generator=generator, dtype=f64)
    start = start[:m].to(device=device, dtype=f64)
    new = _orthonormal_rows(start, Q[:0], 0.0)
    k, scale = 0, 0.0
    while new.shape[0]:
        b = min(new.shape[0], m - k)
        Q[k : k + b] = new[:b]
        HQ = problem.hvp(Q[k : k + b].to(problem.dtype)).to(f64)
        # Row block k:k+b of T against every basis vector so far; the upper
        # triangle follows by symmetry.
        T[k : k + b, : k + b] = HQ @ Q[: k + b].T
        k += b
        scale = max(scale, float(HQ.norm(dim=1).max()))
        if k >= m:
            break
        new = _orthonormal_rows(HQ, Q[:k], BREAKDOWN * max(scale, 1e-30))
    Q, T = Q[:k], T[:k, :k]
    T = torch.tril(T) + torch.tril(T, -1).T
    evals, S = torch.linalg.eigh(T)
    return RitzPairs(evals, Q, S)

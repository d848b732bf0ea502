"""Lanczos with full re-orthogonalisation on a Hessian problem."""

import torch

__all__ = ["_lanczos"]


def _lanczos(problem, m, generator):
    """Ritz pairs of the mean Hessian from an ``m``-dimensional Krylov space,
    in float64: ``(values (m,), vectors (p, m))``."""
    p = problem.p
    device = problem.device
    q = torch.randn(p, generator=generator, dtype=torch.float64).to(device)
    q = q / q.norm()
    Q = torch.empty(m, p, dtype=torch.float64, device=device)
    alphas, betas = [], []
    beta_prev, q_prev = 0.0, torch.zeros_like(q)
    scale = 0.0
    for i in range(m):
        Q[i] = q
        w = problem.hvp(q.to(problem.dtype)).to(torch.float64)
        alpha = float(w @ q)
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
        if i == m - 1 or beta <= 1e-10 * max(scale, 1e-30):
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
    return evals.to(device), Q.T @ S.to(device)

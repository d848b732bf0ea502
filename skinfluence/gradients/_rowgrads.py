"""Per-row gradients kept factorised where possible."""

import torch

__all__ = ["RowGrads"]


class RowGrads:
    """Per-row gradients of ``n`` rows in a :class:`ParamLayout`.

    Either *structured*: for each Linear group the factors ``A`` (n, cols)
    and ``D`` (n, out), whose row-wise outer product ``D_i A_i^T`` is the
    gradient block, plus a dense (n, p_dense) part; or *flat*: a plain
    (n, p) matrix in layout order (e.g. preconditioned query vectors).
    Inner products never form the structured gradients:
    ``g_i . g_j = sum_groups (A_i . A_j)(D_i . D_j) + dense_i . dense_j``.
    """

    def __init__(self, layout, factors=None, dense=None, flat=None):
        self.layout = layout
        self.factors = factors if factors is not None else []
        self.dense = dense
        self.flat = flat

    @classmethod
    def from_flat(cls, layout, flat):
        return cls(layout, flat=flat)

    @property
    def is_flat(self):
        return self.flat is not None

    @property
    def n(self):
        if self.flat is not None:
            return self.flat.shape[0]
        if self.factors:
            return self.factors[0][0].shape[0]
        return self.dense.shape[0]

    def materialise(self):
        """The (n, p) gradient matrix in layout order."""
        if self.flat is not None:
            return self.flat
        parts = [
            (D.unsqueeze(2) * A.unsqueeze(1)).reshape(A.shape[0], -1)
            for A, D in self.factors
        ]
        if self.dense is not None:
            parts.append(self.dense)
        return torch.cat(parts, dim=1)

    def sq_norms(self):
        """``||g_i||^2`` for every row, without forming ``g``."""
        if self.flat is not None:
            return (self.flat**2).sum(1)
        total = 0
        for A, D in self.factors:
            total = total + (A**2).sum(1) * (D**2).sum(1)
        if self.dense is not None:
            total = total + (self.dense**2).sum(1)
        return total

    def dot_flat(self, V):
        """``G V^T``: (n, m) products of these rows with flat vectors V (m, p)."""
        if self.flat is not None:
            return self.flat @ V.T
        m = V.shape[0]
        out = torch.zeros(self.n, m, dtype=V.dtype, device=V.device)
        for (A, D), s, g in zip(
            self.factors, self.layout.group_slices, self.layout.groups
        ):
            Vb = V[:, s].reshape(m * g.out, g.cols)
            T = (A @ Vb.T).reshape(self.n, m, g.out)
            out += torch.einsum("nmo,no->nm", T, D)
        if self.dense is not None:
            out += self.dense @ V[:, self.layout.dense_start :].T
        return out

    def dot(self, other):
        """(self.n, other.n) matrix of inner products."""
        if other.flat is not None:
            return self.dot_flat(other.flat)
        if self.flat is not None:
            return other.dot_flat(self.flat).T
        out = None
        for (A1, D1), (A2, D2) in zip(self.factors, other.factors):
            term = (A1 @ A2.T) * (D1 @ D2.T)
            out = term if out is None else out + term
        if self.dense is not None:
            term = self.dense @ other.dense.T
            out = term if out is None else out + term
        return out

    def rows(self, idx):
        """The gradients of a subset of rows."""
        if self.flat is not None:
            return RowGrads(self.layout, flat=self.flat[idx])
        return RowGrads(
            self.layout,
            factors=[(A[idx], D[idx]) for A, D in self.factors],
            dense=None if self.dense is None else self.dense[idx],
        )

    def to(self, device=None, dtype=None):
        def mv(t):
            return None if t is None else t.to(device=device, dtype=dtype)

        return RowGrads(
            self.layout,
            factors=[(mv(A), mv(D)) for A, D in self.factors],
            dense=mv(self.dense),
            flat=mv(self.flat),
        )

    def scale(self, c):
        """Gradients multiplied by ``c`` (scalar or (n,) per row)."""
        c = torch.as_tensor(c, device=self._any().device, dtype=self._any().dtype)
        col = c.reshape(-1, 1) if c.dim() else c
        if self.flat is not None:
            return RowGrads(self.layout, flat=self.flat * col)
        return RowGrads(
            self.layout,
            factors=[(A, D * col) for A, D in self.factors],
            dense=None if self.dense is None else self.dense * col,
        )

    def nbytes(self):
        tensors = [self.flat, self.dense] + [t for f in self.factors for t in f]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    def _any(self):
        if self.flat is not None:
            return self.flat
        if self.factors:
            return self.factors[0][0]
        return self.dense

    @staticmethod
    def cat(items):
        items = list(items)
        first = items[0]
        if first.flat is not None:
            return RowGrads(first.layout, flat=torch.cat([r.flat for r in items]))
        factors = [
            (
                torch.cat([r.factors[k][0] for r in items]),
                torch.cat([r.factors[k][1] for r in items]),
            )
            for k in range(len(first.factors))
        ]
        dense = None if first.dense is None else torch.cat([r.dense for r in items])
        return RowGrads(first.layout, factors=factors, dense=dense)

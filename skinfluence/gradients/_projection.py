"""Seeded random projection of per-row gradients, factorised per Linear layer."""

import math

import torch

from ._layout import LinearGroup
from ._rowgrads import RowGrads

__all__ = ["GradientProjection", "ProjectedLayout"]


class ProjectedLayout:
    """The layout of projected gradients, shaped like a :class:`ParamLayout`
    so that :class:`RowGrads` products work on it unchanged (``names`` are
    the projected parameters): each Linear
    group becomes a ``k_out x k_in`` block (its projected factors), the dense
    part a block of ``k_dense`` columns."""

    def __init__(self, source, groups, k_dense):
        self.names = source.names
        self.groups = groups
        self.group_slices = []
        offset = 0
        for g in groups:
            self.group_slices.append(slice(offset, offset + g.size))
            offset += g.size
        self.dense_start = offset
        self.dense = ["projected"] if k_dense else []
        self.p = offset + k_dense
        self.p_dense = k_dense
        self.factor_width = k_dense + sum(g.cols + g.out for g in groups)


def _split(k, rows, cols):
    """``(k_rows, k_cols)`` with ``k_rows * k_cols`` close to ``k``, each at
    most its factor's width and as balanced as the widths allow."""
    if k >= rows * cols:
        return rows, cols
    k_cols = min(cols, max(1, math.isqrt(k)))
    k_rows = min(rows, max(1, k // k_cols))
    k_cols = min(cols, max(1, k // k_rows))
    return k_rows, k_cols


def _allocate(total, sizes, energies):
    """Integer dimensions per block: proportional to each block's gradient
    energy (which minimises the summed variance of the projected inner
    products), capped at the block's size, leftovers handed on."""
    k = [0] * len(sizes)
    free = list(range(len(sizes)))
    left = total
    while free and left > 0:
        e = sum(energies[i] for i in free) or float(len(free))
        capped = False
        for i in list(free):
            share = left * ((energies[i] or 1.0 / len(free)) / e)
            if share >= sizes[i]:
                k[i] = sizes[i]
                free.remove(i)
                capped = True
        if capped:
            left = total - sum(k)
            continue
        for i in free:
            k[i] = max(1, int(left * ((energies[i] or 1.0 / len(free)) / e)))
        break
    return k


class GradientProjection:
    """A seeded Gaussian projection of gradients to about ``dim`` numbers.

    The gradient of a Linear layer for one row is the outer product
    ``delta a^T``; it is projected as ``(R_out^T delta)(R_in^T a)^T`` with
    Gaussian ``R_in`` (cols x k_in) and ``R_out`` (out x k_out) of variance
    ``1/k``: the Kronecker projection ``R_out (x) R_in`` applied without ever
    forming the layer's gradient, so one row costs ``cols + out`` numbers
    before and ``k_in + k_out`` after. Other parameters are projected by one
    dense Gaussian matrix. Inner products of projected gradients are unbiased
    estimates of the exact ones (the Johnson-Lindenstrauss property); a
    factor whose share is at least its width is kept exact.

    The ``dim`` numbers are shared among the blocks in proportion to their
    mean squared gradient norm on ``probe`` (a sample of per-row gradients),
    which minimises the summed variance of the estimates.

    Parameters
    ----------
    layout : ParamLayout
    dim : int
        Target dimension (the sum over blocks of ``k_out * k_in`` plus the
        dense block's width).
    generator : torch.Generator
        Source of the random matrices (drawn once, on the CPU).
    probe : RowGrads, optional
        Per-row gradients whose block energies share out ``dim``; without
        it, blocks share in proportion to their size.
    device, dtype : torch device and dtype of the matrices.
    """

    def __init__(self, layout, dim, generator, probe=None, device=None, dtype=None):
        self.source = layout
        sizes = [g.size for g in layout.groups]
        if layout.p_dense:
            sizes.append(layout.p_dense)
        if probe is None:
            energies = [float(s) for s in sizes]
        else:
            energies = [float((_sq(A) * _sq(D)).mean()) for A, D in probe.factors]
            if layout.p_dense:
                energies.append(float(_sq(probe.dense).mean()))
        ks = _allocate(int(dim), sizes, energies)

        def gaussian(rows, k):
            R = torch.randn(rows, k, generator=generator, dtype=torch.float64)
            return (R / math.sqrt(k)).to(device=device, dtype=dtype)

        groups, self.mats = [], []
        for g, k in zip(layout.groups, ks):
            k_out, k_in = _split(k, g.out, g.cols)
            R_in = None if k_in == g.cols else gaussian(g.cols, k_in)
            R_out = None if k_out == g.out else gaussian(g.out, k_out)
            self.mats.append((R_in, R_out))
            groups.append(LinearGroup(g.module, g.weight, None, k_out, k_in))
        k_dense = 0
        self.dense = None
        if layout.p_dense:
            k_dense = ks[-1]
            if k_dense < layout.p_dense:
                self.dense = gaussian(layout.p_dense, k_dense)
        self.layout = ProjectedLayout(layout, groups, k_dense)

    @property
    def dim(self):
        """The projected dimension."""
        return self.layout.p

    def __call__(self, G):
        """The projection of :class:`RowGrads` ``G`` (structured or flat)."""
        if G.flat is not None:
            return RowGrads.from_flat(self.layout, self._flat(G.flat))
        factors = [
            (_mul(A, R_in), _mul(D, R_out))
            for (A, D), (R_in, R_out) in zip(G.factors, self.mats)
        ]
        dense = None if G.dense is None else _mul(G.dense, self.dense)
        return RowGrads(self.layout, factors=factors, dense=dense)

    def _flat(self, V):
        """Project flat (m, p) vectors block by block: ``R_out^T B R_in``."""
        m = V.shape[0]
        parts = []
        for g, s, (R_in, R_out) in zip(
            self.source.groups, self.source.group_slices, self.mats
        ):
            B = V[:, s].reshape(m, g.out, g.cols)
            if R_in is not None:
                B = B @ R_in
            if R_out is not None:
                B = R_out.T @ B
            parts.append(B.reshape(m, -1))
        if self.source.p_dense:
            parts.append(_mul(V[:, self.source.dense_start :], self.dense))
        return torch.cat(parts, dim=1)

    def to(self, device=None, dtype=None):
        """The same projection with its matrices moved."""
        out = object.__new__(GradientProjection)
        out.__dict__.update(self.__dict__)

        def mv(t):
            return None if t is None else t.to(device=device, dtype=dtype)

        out.mats = [(mv(a), mv(b)) for a, b in self.mats]
        out.dense = mv(self.dense)
        return out


def _sq(M):
    return torch.einsum("ij,ij->i", M, M)


def _mul(M, R):
    return M if R is None else M @ R

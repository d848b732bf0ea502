"""Per-query top-k proponents and opponents, merged over training chunks."""

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["TopK"]


def _best(vals, idx, k, largest):
    """The ``k`` best columns of every row of ``vals`` (largest or smallest),
    ties going to the smaller training-row index, in ascending index order.

    ``idx`` holds the training-row index of every column and ascends along
    each row, so a stable sort on the value alone breaks ties by index. NaN
    (a row that was not scored) loses to every number.
    """
    key = vals if largest else -vals
    key = torch.where(torch.isnan(key), -torch.inf, key)
    k = min(k, key.shape[1])
    pos = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :k]
    pos = torch.sort(pos, dim=1).values
    return torch.gather(vals, 1, pos), torch.gather(idx, 1, pos)


class TopK:
    """Running top-k of an (m, n) score matrix that arrives in column chunks.

    Per query row it keeps the ``k`` largest scores (proponents) and the
    ``k`` smallest (opponents), ties broken by training-row index, so memory
    is O(m k) whatever ``n``. Chunks are reduced on their own with
    :meth:`partial` (which may run on a worker) and folded in, in training-
    row order, with :meth:`merge`; :meth:`add` does both.

    Parameters
    ----------
    k : int >= 1
        Proponents and opponents kept per query row.

    Examples
    --------
    >>> import torch
    >>> from skinfluence.scoring import TopK
    >>> scores = torch.tensor([[3.0, -1.0, 0.5, -4.0, 2.0]])
    >>> top = TopK(1).start(1, 5)
    >>> top.add(slice(0, 3), scores[:, :3])
    >>> top.add(slice(3, 5), scores[:, 3:])
    >>> top.to_csr().toarray()
    array([[ 3.,  0.,  0., -4.,  0.]])
    """

    def __init__(self, k):
        self.k = int(k)

    def start(self, m, n, device=None, dtype=None):
        """Begin a reduction of an (m, n) matrix; returns self."""
        self.shape = (int(m), int(n))
        self._top = self._bottom = None
        return self

    def partial(self, sl, block):
        """Chunk-local ``(top, bottom)``: each a pair (values, row indices)."""
        m, width = block.shape
        idx = torch.arange(sl.start, sl.start + width, device=block.device)
        idx = idx.expand(m, width)
        return _best(block, idx, self.k, True), _best(block, idx, self.k, False)

    def merge(self, sl, part):
        """Fold in the partial result of the chunk ``sl`` (chunks in order)."""
        top, bottom = part
        self._top = self._fold(self._top, top, True)
        self._bottom = self._fold(self._bottom, bottom, False)

    def add(self, sl, block):
        self.merge(sl, self.partial(sl, block))

    def _fold(self, state, part, largest):
        if state is None:
            return part
        vals = torch.cat([state[0], part[0].to(state[0].device)], dim=1)
        idx = torch.cat([state[1], part[1].to(state[1].device)], dim=1)
        return _best(vals, idx, self.k, largest)

    def result(self):
        return self.to_csr()

    def _ranked(self, state, largest):
        vals, idx = state
        key = vals if largest else -vals
        key = torch.where(torch.isnan(key), -torch.inf, key)
        order = torch.sort(key, dim=1, descending=True, stable=True).indices
        return (
            torch.gather(idx, 1, order).cpu().numpy(),
            torch.gather(vals, 1, order).detach().cpu().double().numpy(),
        )

    def proponents(self):
        """``(indices, values)``, each (m, k): the largest scores, best first."""
        return self._ranked(self._top, True)

    def opponents(self):
        """``(indices, values)``, each (m, k): the smallest scores, most
        negative first."""
        return self._ranked(self._bottom, False)

    def to_csr(self):
        """(m, n) CSR holding the proponents and opponents of every row (one
        entry per row where the two overlap; rows never scored left out)."""
        m, n = self.shape
        if self._top is None:
            return sp.csr_matrix((m, n), dtype=np.float64)
        idx = torch.cat([self._top[1], self._bottom[1]], dim=1).cpu().numpy()
        vals = torch.cat([self._top[0], self._bottom[0]], dim=1)
        vals = vals.detach().cpu().double().numpy()
        order = np.argsort(idx, axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        keep = np.ones(idx.shape, dtype=bool)
        keep[:, 1:] = idx[:, 1:] != idx[:, :-1]
        keep &= ~np.isnan(vals)
        indptr = np.concatenate([[0], np.cumsum(keep.sum(1))])
        return sp.csr_matrix((vals[keep], idx[keep], indptr), shape=(m, n))

"""Reductions of streamed score blocks: the full matrix and self-influence."""

import numpy as np
import torch

__all__ = ["Dense", "Diagonal"]


class Dense:
    """The full (m, n) matrix, assembled from column chunks.

    Parameters
    ----------
    out : ndarray of shape (m, n), optional
        Where the matrix is written (e.g. a ``numpy.memmap`` from
        :func:`~skinfluence.scoring.memmap_output`); each chunk is copied to
        the host as it arrives, so only one chunk lives on the device. By
        default a tensor on the working device holds it.
    """

    def __init__(self, out=None):
        self.out = out

    def start(self, m, n, device=None, dtype=None):
        if self.out is not None:
            if tuple(self.out.shape) != (m, n):
                raise ValueError(
                    f"out has shape {tuple(self.out.shape)}, but the result has "
                    f"shape {(m, n)}; pass an array of that shape."
                )
            self._buf = self.out
        else:
            self._buf = torch.empty(m, n, device=device, dtype=dtype)
        return self

    def partial(self, sl, block):
        return block

    def merge(self, sl, part):
        if isinstance(self._buf, torch.Tensor):
            self._buf[:, sl] = part.to(self._buf.device)
        else:
            self._buf[:, sl] = part.detach().cpu().double().numpy()

    def add(self, sl, block):
        self.merge(sl, block)

    def result(self):
        return self._buf


class Diagonal:
    """Self-influence ``g_j^T P g_j`` of n rows, assembled from row chunks.

    Parameters
    ----------
    out : ndarray of shape (n,), optional
        Where the values go; by default a tensor on the working device.
    """

    def __init__(self, out=None):
        self.out = out

    def start(self, n, device=None, dtype=None):
        self._buf = (
            self.out
            if self.out is not None
            else torch.empty(n, device=device, dtype=dtype)
        )
        return self

    def partial(self, sl, values):
        return values

    def merge(self, sl, part):
        if isinstance(self._buf, torch.Tensor):
            self._buf[sl] = part.to(self._buf.device)
        else:
            self._buf[sl] = np.asarray(part.detach().cpu().double())

    def add(self, sl, values):
        self.merge(sl, values)

    def result(self):
        return self._buf

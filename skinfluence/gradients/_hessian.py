"""Hessian-vector products and explicit Hessians of the training objective."""

import torch
from torch.func import functional_call, grad, jvp, vmap

from ..utils._torch import chunk_size

__all__ = ["HessianProblem"]


class HessianProblem:
    """The mean training objective ``J(theta)/n`` over a parameter subset.

    ``J = sum_i loss_i + penalty``, the estimator's own objective (see
    :class:`~skinfluence.models.ModelView`), so its Hessian is the one leave-one-
    out retraining sees. All products are in the layout's flat order.

    Parameters
    ----------
    view : ModelView
    layout : ParamLayout
    X, T : Tensor
        Training inputs and encoded targets.
    batch_size : int, optional
        Rows per chunk of the data pass.
    """

    def __init__(self, view, layout, X, T, batch_size=None):
        self.view = view
        self.layout = layout
        self.X = X
        self.T = T
        self.n = view.n_train
        self.p = layout.p
        self.batch_size = batch_size
        self.theta = layout.flatten({k: view.params[k] for k in layout.names})
        self._base = {k: v for k, v in view.params.items() if k not in layout.names}
        self.n_hvp = 0

    @property
    def dtype(self):
        return self.theta.dtype

    @property
    def device(self):
        return self.theta.device

    def _params(self, flat):
        return {**self._base, **self.layout.unflatten(flat)}

    def _data_term(self, flat, x, t):
        out = functional_call(self.view.module, self._params(flat), (x,))
        return self.view.loss(out, t).sum()

    def _penalty_term(self, flat):
        value = self.view.penalty_value(self._params(flat))
        if value is None:
            return flat.sum() * 0
        return value

    def _chunks(self, n_vectors, rows=None):
        n = self.X.shape[0]
        if rows is None:
            # The working set per row is its activations (about the layer
            # widths) per vector, not the parameter count.
            width = self.layout.p_dense + sum(
                g.cols + g.out for g in self.layout.groups
            )
            rows = self.batch_size or chunk_size(
                (width + 256) * max(1, n_vectors) * self.theta.element_size() * 4,
                minimum=8,
                maximum=n,
            )
        for start in range(0, n, rows):
            yield slice(start, min(n, start + rows))

    def gradient(self):
        """Gradient of the mean objective (≈ 0 at a fitted optimum)."""
        g = grad(self._penalty_term)(self.theta)
        for sl in self._chunks(1):
            g = g + grad(self._data_term)(self.theta, self.X[sl], self.T[sl])
        return g / self.n

    def hvp(self, V, rows=None, idx=None, scale_to_mean=True):
        """``H V^T`` row-wise: (k, p) products with the mean Hessian.

        Parameters
        ----------
        V : Tensor (k, p) or (p,)
        rows : int, optional
            Chunk size of the data pass.
        idx : Tensor of int, optional
            Use only these training rows (a stochastic mini-batch estimate,
            rescaled to the full objective).
        """
        squeeze = V.dim() == 1
        V = V.reshape(-1, self.p).to(self.dtype)
        theta = self.theta

        def hv_data(v, x, t):
            return jvp(lambda w: grad(self._data_term)(w, x, t), (theta,), (v,))[1]

        def hv_pen(v):
            return jvp(grad(self._penalty_term), (theta,), (v,))[1]

        out = vmap(hv_pen)(V)
        if idx is None:
            data = 0
            for sl in self._chunks(V.shape[0], rows):
                data = data + vmap(hv_data, in_dims=(0, None, None))(
                    V, self.X[sl], self.T[sl]
                )
            out = out + data
        else:
            x, t = self.X[idx], self.T[idx]
            out = out + vmap(hv_data, in_dims=(0, None, None))(V, x, t) * (
                self.X.shape[0] / len(idx)
            )
        self.n_hvp += V.shape[0]
        out = out / self.n
        return out[0] if squeeze else out

    def hessian(self, block=256):
        """The explicit (p, p) mean Hessian, symmetrised."""
        eye = torch.eye(self.p, dtype=self.dtype, device=self.device)
        cols = [self.hvp(eye[s : s + block]) for s in range(0, self.p, block)]
        H = torch.cat(cols, dim=0)
        return (H + H.T) / 2

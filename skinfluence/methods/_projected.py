"""Methods on randomly projected gradients (``projection_dim``)."""

import numbers
import warnings

import torch
from sklearn.utils._param_validation import Interval

from ..exceptions import SkinfluenceWarning
from ..gradients import GradientProjection, row_gradients
from ..utils._torch import make_generator

__all__ = ["PROJECTION_CONSTRAINT", "ProjectedContext", "make_projection"]

PROJECTION_CONSTRAINT = {
    "projection_dim": [Interval(numbers.Integral, 1, None, closed="left"), None]
}

# Rows whose gradients share the projected dimension out among the layers.
PROBE_ROWS = 256

PROJECTION_DIM_DOC = """projection_dim : int >= 1 or None, default=None
        Project every gradient to about this many numbers with a seeded
        Gaussian random projection (TRAK-style; factorised per Linear layer,
        so a row's full gradient is never formed) before taking inner
        products: memory and work per row no longer grow with the number of
        parameters, at the price of a random error that shrinks like
        ``1/sqrt(projection_dim)``. ``None`` keeps the exact gradients; a
        value at least the number of parameters warns and keeps them too.
        Seeded from the estimator's ``random_state``."""


def make_projection(ctx, dim):
    """The :class:`GradientProjection` a method with ``projection_dim=dim``
    uses on ``ctx``, or ``None`` for exact gradients."""
    if dim is None:
        return None
    if dim >= ctx.layout.p:
        warnings.warn(
            f"projection_dim={dim} is at least the number of parameters "
            f"({ctx.layout.p}); using the exact gradients instead. Pass a smaller "
            "projection_dim, or None.",
            SkinfluenceWarning,
            stacklevel=4,
        )
        return None
    gen = make_generator(ctx.random_state)
    n = ctx.n_train
    rows = torch.randperm(n, generator=gen)[: min(n, PROBE_ROWS)].to(ctx.X.device)
    probe = row_gradients(ctx.view, ctx.layout, ctx.X[rows], ctx.T[rows])
    return GradientProjection(
        ctx.layout,
        dim,
        gen,
        probe=probe,
        device=ctx.view.device,
        dtype=ctx.view.dtype,
    )


class ProjectedContext:
    """An :class:`InfluenceContext` whose gradients come out projected.

    Everything else (data, chunk sizes, the model) is the wrapped context's;
    ``layout`` is the projected one, so caches and products are sized by the
    projected width.
    """

    def __init__(self, ctx, projection):
        self.base = ctx
        self.projection = projection
        self.layout = projection.layout

    def __getattr__(self, name):
        return getattr(self.base, name)

    def train_chunks(self, params=None, desc="training gradients"):
        for sl, G in self.base.train_chunks(params, desc):
            yield sl, self.projection(G)

    def train_grads(self, params=None):
        from ..gradients import RowGrads

        return RowGrads.cat(g for _, g in self.train_chunks(params))

    def query_grads(self, query, params=None):
        return self.projection(self.base.query_grads(query, params))

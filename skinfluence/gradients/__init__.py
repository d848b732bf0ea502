"""Per-row gradients (factorised for Linear layers), their random projection,
Hessian products."""

from ._engine import (
    default_chunk,
    iter_row_gradients,
    row_gradients,
    row_work_bytes,
    total_gradient,
)
from ._hessian import HessianProblem
from ._layout import LinearGroup, ParamLayout
from ._projection import GradientProjection, ProjectedLayout
from ._query import Query
from ._rowgrads import RowGrads

__all__ = [
    "GradientProjection",
    "ProjectedLayout",
    "HessianProblem",
    "LinearGroup",
    "ParamLayout",
    "Query",
    "RowGrads",
    "default_chunk",
    "iter_row_gradients",
    "row_gradients",
    "row_work_bytes",
    "total_gradient",
]

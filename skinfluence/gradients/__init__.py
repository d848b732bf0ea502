"""Per-row gradients (factorised for Linear layers), Hessian products."""

from ._engine import default_chunk, iter_row_gradients, row_gradients, total_gradient
from ._hessian import HessianProblem
from ._layout import LinearGroup, ParamLayout
from ._query import Query
from ._rowgrads import RowGrads

__all__ = [
    "HessianProblem",
    "LinearGroup",
    "ParamLayout",
    "Query",
    "RowGrads",
    "default_chunk",
    "iter_row_gradients",
    "row_gradients",
    "total_gradient",
]

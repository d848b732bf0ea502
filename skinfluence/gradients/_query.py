"""What a query gradient measures: the meeting point of objectives and methods."""

from dataclasses import dataclass

import torch

__all__ = ["Query"]


@dataclass
class Query:
    """What the query gradient measures.

    ``measure(output, target) -> (m,)`` per row (defaults to the training
    loss); ``weights`` multiply it per row; ``aggregate=True`` sums the
    weighted measurement over all rows into a single query vector.
    """

    X: torch.Tensor
    T: torch.Tensor
    measure: object = None
    weights: torch.Tensor = None
    aggregate: bool = False
    transform: object = None  # optional ``transform(view, params, X, T) -> X'``
    # Rows per pass of an aggregated gradient; a set-level measurement that
    # does not decompose over rows sets it to the number of rows.
    chunk: int = None

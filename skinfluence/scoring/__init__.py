"""Score phase: reductions of ``g_q^T P g_j`` streamed over training chunks.

Methods produce blocks of scores (query rows by a chunk of training rows, or
the self-influence of a chunk); a *reducer* turns the stream into what was
asked for without holding more than it must:

- :class:`Dense`: the full matrix, in memory or in a ``numpy.memmap``
  (:func:`memmap_output`);
- :class:`TopK`: per query row the ``k`` largest and ``k`` smallest scores,
  by a running merge (O(m k) memory);
- :class:`Diagonal`: the self-influence of every row.

Every reducer has ``start``, ``partial(sl, block)`` (pure: may run on a
worker, shrinking what travels back), ``merge(sl, part)`` (in chunk order)
and ``result()``. :func:`map_chunks` runs independent chunk tasks through
joblib, so a Dask or Ray backend runs them unchanged.
"""

from ._memmap import check_output_path, memmap_output
from ._parallel import map_chunks
from ._reducers import Dense, Diagonal
from ._stream import stream_influence, stream_self_influence
from ._topk import TopK

__all__ = [
    "Dense",
    "Diagonal",
    "TopK",
    "check_output_path",
    "map_chunks",
    "memmap_output",
    "stream_influence",
    "stream_self_influence",
]

"""Independent chunk tasks through joblib (threads, Dask or Ray)."""

import contextlib
import itertools

from joblib import Parallel, delayed, effective_n_jobs, parallel_config
from joblib.parallel import get_active_backend

__all__ = ["map_chunks"]

# Tasks per worker handed out at once to a backend that cannot stream its
# results back (Ray's): bounds how many finished chunks wait in memory.
WAVE_PER_WORKER = 4
# Times the tasks not yet returned are run again after Dask cancelled them
# because a worker was lost.
LOST_WORKER_RETRIES = 2


def _is_dask(backend):
    return type(backend).__name__ == "DaskDistributedBackend"


@contextlib.contextmanager
def _shipped_once(shared):
    """Under a Dask backend, copy ``shared`` to every worker once (a
    broadcast scatter) for the duration of the block, so each task refers to
    the worker's copy instead of carrying its own, and a lost worker does not
    lose the only copy. Other backends share it in process (threads) or ship
    it with each batch of tasks."""
    backend, _ = get_active_backend()
    if not _is_dask(backend):
        yield
        return
    with parallel_config(backend="dask", client=backend.client, scatter=[shared]):
        yield


def map_chunks(task, shared, chunks, n_jobs=None):
    """Yield ``task(shared, *args)`` for every ``args`` of ``chunks``, in order.

    ``shared`` (model parameters, preconditioned queries, ...) is the same for
    every task and is shipped once per worker; ``chunks`` holds the small
    per-task arguments (a slice and its rows). With ``n_jobs`` of ``None``
    or 1 and no parallel backend configured the tasks run in this process,
    one after the other. Otherwise they go through :class:`joblib.Parallel`
    (threads by default, as torch releases the GIL in its kernels), so
    ``with joblib.parallel_config(backend="dask"):`` runs them on a
    ``dask.distributed`` cluster and ``backend="ray"`` on Ray; results come
    back in order either way, and each task is a pure function of its
    arguments, so they are the same as the sequential ones. A backend that
    cannot stream results back (Ray's) gets the tasks in waves of a few per
    worker, so finished chunks never pile up.
    """
    backend, active_jobs = get_active_backend()
    jobs = n_jobs if n_jobs is not None else active_jobs
    sequential = jobs in (None, 1) and not _is_dask(backend)
    if sequential:
        for args in chunks:
            yield task(shared, *args)
        return
    if not getattr(backend, "supports_return_generator", False):
        # Results come back as a list per call: hand the tasks out in waves.
        wave = WAVE_PER_WORKER * max(1, effective_n_jobs(n_jobs))
        chunks = iter(chunks)
        with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
            while batch := list(itertools.islice(chunks, wave)):
                yield from parallel(delayed(task)(shared, *args) for args in batch)
        return
    chunks = list(chunks)
    done = 0
    for attempt in range(LOST_WORKER_RETRIES + 1):
        try:
            with _shipped_once(shared):
                results = Parallel(
                    n_jobs=n_jobs, prefer="threads", return_as="generator"
                )(delayed(task)(shared, *args) for args in chunks[done:])
                for result in results:
                    done += 1
                    yield result
            return
        except Exception as err:
            # A worker lost mid-run can leave Dask's futures of the queued
            # tasks cancelled ("already forgotten"); the tasks are pure, so
            # the ones not yet returned are run again.
            if attempt == LOST_WORKER_RETRIES or not _lost_work(err):
                raise


def _lost_work(err):
    return type(err).__name__ in {"FutureCancelledError", "CancelledError"}

"""A full score matrix written to a caller-named ``numpy.memmap``."""

import contextlib
import os
import uuid

import numpy as np

__all__ = ["check_output_path", "memmap_output"]


def check_output_path(out, overwrite=False):
    """The absolute path ``out`` names, after checking that it can be written.

    Raises ``TypeError`` for something that is not a path, ``ValueError``
    when the file exists (unless ``overwrite``) or its folder is missing or
    not writable.
    """
    if not isinstance(out, str | os.PathLike):
        raise TypeError(
            f"out must be a file path (str or os.PathLike); got {type(out).__name__}."
        )
    path = os.path.abspath(os.fspath(out))
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise ValueError(f"out={os.fspath(out)!r} is a folder; name a file in it.")
    if os.path.exists(path) and not overwrite:
        raise ValueError(
            f"out={os.fspath(out)!r} exists; pass overwrite=True to replace it, "
            "or choose a new file name."
        )
    if not os.path.isdir(folder):
        raise ValueError(
            f"out={os.fspath(out)!r}: its folder {folder!r} does not exist; "
            "create it first."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(
            f"out={os.fspath(out)!r}: the folder {folder!r} is not writable; "
            "choose a path you can write to."
        )
    return path


@contextlib.contextmanager
def memmap_output(out, shape, dtype=np.float64, overwrite=False):
    """Context manager yielding a writable ``numpy.memmap`` for ``out``.

    The array is a ``.npy`` file (readable with ``np.load(out,
    mmap_mode="r")``) created under a temporary name in the same folder and
    renamed to ``out`` only when the block finishes without an error, so an
    interrupted run never leaves a half-written file under the caller's
    name; on an error the temporary file is removed. Open the finished file
    with ``np.load(out, mmap_mode="r")``.

    Yields
    ------
    array : numpy.memmap of shape ``shape``
    """
    path = check_output_path(out, overwrite)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.partial-{uuid.uuid4().hex[:12]}")
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    try:
        yield array
        array.flush()
    except BaseException:
        del array
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    del array
    os.replace(tmp, path)

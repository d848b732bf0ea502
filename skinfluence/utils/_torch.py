"""Torch helpers: devices, dtypes, conversion and memory budgets."""

import contextlib

import numpy as np
import torch

DEFAULT_MEMORY_BUDGET = 512 * 2**20  # bytes per chunk of per-row gradients


def resolve_device(device):
    """Return a ``torch.device`` for ``device`` ("auto", "cpu", "cuda", ...)."""
    if isinstance(device, torch.device):
        device = str(device)
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str):
        raise TypeError(
            f"device must be 'auto', 'cpu', 'cuda' or a torch.device; got {device!r}."
        )
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for but CUDA is not available on this "
            "machine. Use device='auto' (CUDA when present) or device='cpu'."
        )
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu' or "
            "'cuda'."
        ) from exc


def resolve_dtype(dtype):
    """Return the torch floating dtype for ``dtype`` ("float32"/"float64")."""
    mapping = {
        "float32": torch.float32,
        "float64": torch.float64,
        torch.float32: torch.float32,
        torch.float64: torch.float64,
        np.float32: torch.float32,
        np.float64: torch.float64,
    }
    try:
        return mapping[dtype]
    except (KeyError, TypeError):
        raise ValueError(
            f"dtype must be 'float32' or 'float64'; got {dtype!r}."
        ) from None


def to_tensor(a, device, dtype=None):
    """Convert an array to a tensor on ``device`` (no copy of the caller's data
    is ever written to)."""
    if isinstance(a, torch.Tensor):
        t = a.detach()
    else:
        t = torch.as_tensor(np.ascontiguousarray(a))
    if dtype is not None and t.is_floating_point():
        t = t.to(dtype)
    return t.to(device)


def to_numpy(t):
    """Return a float64 (or integer) NumPy array on the CPU."""
    a = t.detach().cpu()
    if a.is_floating_point():
        a = a.double()
    return a.numpy()


def chunk_size(bytes_per_row, budget=None, minimum=1, maximum=None):
    """Rows per chunk so that ``rows * bytes_per_row`` stays within ``budget``."""
    budget = DEFAULT_MEMORY_BUDGET if budget is None else budget
    rows = max(minimum, int(budget // max(1, bytes_per_row)))
    if maximum is not None:
        rows = min(rows, maximum)
    return rows


def make_generator(random_state, device="cpu"):
    """A local ``torch.Generator`` seeded from ``random_state`` (global seeds
    are never touched)."""
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(rng.randint(0, 2**31 - 1)))
    return gen


def rademacher(shape, generator=None, dtype=torch.float32, device="cpu"):
    """Independent random signs +-1 of ``shape``, drawn from ``generator``."""
    z = torch.randint(0, 2, shape, generator=generator, dtype=torch.int64)
    return z.to(device=device, dtype=dtype) * 2 - 1


@contextlib.contextmanager
def seeded_torch(seed):
    """Run a block (e.g. a skorch net's ``fit``, which draws from torch's
    global generator) with torch's RNG seeded with the integer ``seed``, then
    restore the caller's RNG state. ``None`` leaves the RNG untouched."""
    if seed is None:
        yield
        return
    devices = (
        list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def intra_op_threads(n, device="cpu"):
    """Run the block with at most ``n`` intra-op CPU threads, then restore.

    Products on a handful of rows are a chain of tiny kernels: extra threads
    only add synchronisation (a one-row Hessian-vector product of the FastIF
    benchmark's encoder took 41 ms with two threads and 26 ms with one).
    """
    old = torch.get_num_threads()
    if str(device).startswith("cuda") or n >= old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)

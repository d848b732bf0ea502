"""Torch helpers: devices, dtypes, conversion, seeds and the memory budget."""

import contextlib
import dataclasses
import warnings

import numpy as np
import torch

from ..exceptions import SkinfluenceWarning

#: Default ``memory_budget`` in bytes (2 GiB): training gradients that fit in
#: it are cached, and one chunk of working memory (per-row gradients, blocks
#: of products) takes a quarter of it, so that a chunk's temporaries and the
#: output block it writes fit beside a full cache on an ordinary machine.
DEFAULT_MEMORY_BUDGET = 2 * 2**30
# One chunk of work is this fraction of the memory budget.
CHUNK_SHARE = 4
# Seeds are drawn uniformly from [0, SEED_BOUND): valid for NumPy, torch and
# scikit-learn alike.
SEED_BOUND = 2**31 - 1


def resolve_device(device, fallback=False):
    """Return a ``torch.device`` for ``device``: ``"auto"`` (CUDA when
    present, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, or a
    ``torch.device`` of those kinds.

    An unavailable CUDA device raises, unless ``fallback`` (for a model
    fitted elsewhere and loaded here, as skorch does): the CPU is then used,
    with a warning.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str):
        raise TypeError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device; got "
            f"{device!r}."
        )
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise ValueError(
            f"device={device!r} is not a device skinfluence runs on; use 'auto', "
            "'cpu', 'cuda' or 'cuda:N' (N the index of a CUDA device)."
        )
    if kind == "cuda" and not torch.cuda.is_available():
        if fallback:
            warnings.warn(
                f"device={device!r} is not available on this machine (no CUDA); "
                "using the CPU. Set device='cpu' or 'auto' to silence this.",
                SkinfluenceWarning,
                stacklevel=3,
            )
            return torch.device("cpu")
        raise ValueError(
            f"device={device!r} was asked for but CUDA is not available on this "
            "machine. Use device='auto' (CUDA when present) or device='cpu'."
        )
    if kind == "cuda":
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise ValueError(
                f"device={device!r} names CUDA device {index}, but this machine has "
                f"{count} (indices 0 to {count - 1}); pass one of those or 'cuda'."
            )
    return torch.device(device)


def resolve_dtype(dtype):
    """Return the torch floating dtype for ``dtype`` ("float32", "float64" or
    "bfloat16")."""
    mapping = {
        "float32": torch.float32,
        "float64": torch.float64,
        "bfloat16": torch.bfloat16,
        torch.float32: torch.float32,
        torch.float64: torch.float64,
        torch.bfloat16: torch.bfloat16,
        np.float32: torch.float32,
        np.float64: torch.float64,
    }
    try:
        return mapping[dtype]
    except (KeyError, TypeError):
        raise ValueError(
            f"dtype must be 'float32', 'float64' or 'bfloat16'; got {dtype!r}."
        ) from None


def to_numpy(t):
    """Return a float64 (or integer) NumPy array on the CPU."""
    a = t.detach().cpu()
    if a.is_floating_point():
        a = a.double()
    return a.numpy()


def _available_memory():
    """Bytes of memory available to new work (Linux ``MemAvailable``), or
    ``None`` where that is not known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_memory_budget():
    """The budget used when ``memory_budget=None``: :data:`DEFAULT_MEMORY_BUDGET`
    (2 GiB), or half of the memory available on this machine when that is
    less, so that the default never asks for memory the machine lacks."""
    available = _available_memory()
    if available is None:
        return DEFAULT_MEMORY_BUDGET
    return max(min(DEFAULT_MEMORY_BUDGET, available // 2), 64 * 2**20)


@dataclasses.dataclass(frozen=True)
class MemoryBudget:
    """How much memory the engine's work may take, in one place.

    Parameters
    ----------
    memory_budget : int or None, default=None
        Bytes; ``None`` is 2 GiB, or half the memory available on the
        machine when that is less (:func:`default_memory_budget`). Cached
        training gradients may take all of it; one chunk of work (per-row
        gradients, a block of products and its temporaries) a quarter.
    batch_size : int or None, default=None
        Rows per chunk of per-row gradient work when set (see
        :meth:`batch_rows`); ``None`` sizes those chunks from the budget.
    """

    memory_budget: int = None
    batch_size: int = None

    @property
    def nbytes(self):
        """The budget in bytes."""
        if self.memory_budget is None:
            return default_memory_budget()
        return int(self.memory_budget)

    def rows_for(self, bytes_per_row, *, minimum=1, maximum=None):
        """Rows of ``bytes_per_row`` bytes each that fit in one chunk (a
        quarter of the budget), clipped to ``[minimum, maximum]``."""
        chunk = self.nbytes // CHUNK_SHARE
        rows = max(minimum, int(chunk // max(1, bytes_per_row)))
        return rows if maximum is None else min(rows, maximum)

    def batch_rows(self, bytes_per_row, *, minimum=1, maximum=None):
        """Rows per chunk of per-row gradient work: ``batch_size`` when set,
        else :meth:`rows_for`."""
        if self.batch_size is not None:
            return int(self.batch_size)
        return self.rows_for(bytes_per_row, minimum=minimum, maximum=maximum)

    def can_cache(self, nbytes):
        """Whether a cache of ``nbytes`` bytes fits in the budget."""
        return nbytes <= self.nbytes


def draw_seed(random_state):
    """An integer seed in ``[0, 2**31 - 1)`` drawn from ``random_state``.

    ``random_state`` is anything :func:`sklearn.utils.check_random_state`
    takes (``None``, an int, a ``RandomState``, which is advanced) or a
    ``torch.Generator`` (also advanced). The one rule by which the package
    derives the seeds of folds, refits and local generators.
    """
    if isinstance(random_state, torch.Generator):
        return int(torch.randint(0, SEED_BOUND, (1,), generator=random_state))
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, SEED_BOUND))


def make_generator(random_state, device="cpu"):
    """A local ``torch.Generator`` seeded from ``random_state`` (global seeds
    are never touched); a ``torch.Generator`` seeds the new one with a draw."""
    gen = torch.Generator(device=device)
    gen.manual_seed(draw_seed(random_state))
    return gen


def move_tensors(obj, device):
    """``obj`` with every tensor in it moved to ``device``.

    Looks inside dicts, lists and tuples, and moves per-row gradient blocks
    (objects with ``materialise`` and a ``to(device=...)`` that returns a
    moved copy, i.e. ``RowGrads``). Other values come back as they are.
    """
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: move_tensors(v, device) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(move_tensors(v, device) for v in obj)
    if hasattr(obj, "materialise") and callable(getattr(obj, "to", None)):
        return obj.to(device=device)
    return obj


class CPUStateMixin:
    """Pickle with every tensor on the CPU, so a model fitted on CUDA loads
    on a machine without it (as skorch does).

    Attributes named in ``_transient_state`` (e.g. a Hessian problem that
    holds the model and the training data) are stored as ``None``; their
    owner attaches them again. ``_state_device`` records where the tensors
    are, so that :meth:`_move_state` can bring them back to the working
    device on first use.
    """

    _transient_state = ()

    def __getstate__(self):
        # A copy: object.__getstate__ returns the live __dict__ itself.
        state = dict(super().__getstate__())
        for key in self._transient_state:
            if key in state:
                state[key] = None
        state = {k: move_tensors(v, "cpu") for k, v in state.items()}
        if "_state_device" in state:
            state["_state_device"] = torch.device("cpu")
        return state

    def _move_state(self, device):
        """Move every tensor of the fitted state to ``device`` (a no-op when
        it is there already)."""
        device = torch.device(device)
        if getattr(self, "_state_device", device) == device:
            return
        for key, value in list(vars(self).items()):
            if key not in self._transient_state:
                setattr(self, key, move_tensors(value, device))
        self._state_device = device


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
    only add synchronisation, which then dominates a one-row
    Hessian-vector product.
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

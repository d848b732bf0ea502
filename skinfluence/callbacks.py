"""skorch callbacks that record what influence methods need from training."""

import numbers
from pathlib import Path

import torch
from sklearn.frozen import FrozenEstimator
from skorch.callbacks import Callback

__all__ = ["Checkpoints", "add_checkpoints", "find_checkpoints", "load_checkpoint"]


def load_checkpoint(path, reference=None):
    """Parameters saved by :class:`Checkpoints` at ``path``, checked against
    ``reference`` (a dict of the model's named parameters).

    Files are read with ``torch.load(..., weights_only=True)``: tensors only,
    no code is unpickled.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"The checkpoint file {str(path)!r} does not exist. Keep the directory "
            "the Checkpoints callback wrote to, or retrain the model."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"The checkpoint file {str(path)!r} could not be read as saved "
            f"parameters ({type(exc).__name__}: {exc}). Pass files written by "
            "skinfluence.callbacks.Checkpoints."
        ) from exc
    if reference is not None:
        check_matches(state, reference, str(path))
    return state


def check_matches(state, reference, where):
    """Raise ``ValueError`` unless ``state`` has the names and shapes of
    ``reference``."""
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(
            f"The checkpoint {where} is not a dict of parameter tensors; pass files "
            "written by skinfluence.callbacks.Checkpoints."
        )
    missing = sorted(set(reference) - set(state))
    extra = sorted(set(state) - set(reference))
    shapes = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(reference[k].shape)}"
        for k in reference
        if k in state and tuple(state[k].shape) != tuple(reference[k].shape)
    ]
    if missing or extra or shapes:
        raise ValueError(
            f"The checkpoint {where} does not match the model's parameters "
            f"(missing: {missing}, unexpected: {extra}, shape mismatches: {shapes}). "
            "Use checkpoints recorded while training this model."
        )


class Checkpoints(Callback):
    """Record parameter snapshots and the learning rate during training.

    A skorch callback for :class:`~skinfluence.TracInCP` (and
    ``IPEnsemble(kind="checkpoints")``): at the end of every ``every``-th
    epoch it stores the module's parameters and the learning rate the
    optimizer's first parameter group used during that epoch. ``InfluenceScorer`` adds it to its
    copy of a skorch net by itself when the method needs checkpoints; a net
    trained by hand with this callback can be passed as a
    ``FrozenEstimator``.

    Parameters
    ----------
    every : int >= 1, default=1
        Record every ``every`` epochs (epochs ``every, 2 every, ...``).
    directory : str, path or None, default=None
        ``None`` keeps the snapshots in memory (on the CPU); otherwise each
        is written there with ``torch.save`` as ``checkpoint_epoch{e}.pt``
        and read back with ``torch.load(..., weights_only=True)``.

    Attributes
    ----------
    checkpoints_ : list of dict
        One entry per snapshot: ``epoch``, ``lr`` and either ``params`` (a
        dict of CPU tensors) or ``path``.

    See Also
    --------
    TracInCP : influence summed over the recorded checkpoints.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from skinfluence.callbacks import Checkpoints
    >>> from skinfluence.models import MLPModule
    >>> X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> net = NeuralNetClassifier(
    ...     MLPModule, module__n_features=4, criterion=torch.nn.CrossEntropyLoss,
    ...     max_epochs=4, train_split=None, verbose=0,
    ...     callbacks=[("checkpoints", Checkpoints(every=2))],
    ... ).fit(X, y)
    >>> recorder = dict(net.callbacks_)["checkpoints"]
    >>> [c["epoch"] for c in recorder.checkpoints_]
    [2, 4]
    """

    def __init__(self, every=1, directory=None):
        self.every = every
        self.directory = directory

    def initialize(self):
        if (
            isinstance(self.every, bool)
            or not isinstance(self.every, numbers.Integral)
            or self.every < 1
        ):
            raise ValueError(
                f"Checkpoints(every={self.every!r}) must be an integer >= 1 (record "
                "every that many epochs)."
            )
        if self.directory is not None and not isinstance(self.directory, str | Path):
            raise TypeError(
                f"Checkpoints(directory={self.directory!r}) must be a path or None "
                "(None keeps the snapshots in memory)."
            )
        self.checkpoints_ = []
        self.epoch_lr_ = None
        return self

    def on_epoch_begin(self, net, **kwargs):
        # The rate the epoch's steps use: schedulers may change it at the
        # epoch's end, before this callback runs.
        self.epoch_lr_ = float(net.optimizer_.param_groups[0]["lr"])

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every:
            return
        lr = getattr(self, "epoch_lr_", None)
        if lr is None:
            lr = float(net.optimizer_.param_groups[0]["lr"])
        params = {
            name: p.detach().to("cpu", copy=True)
            for name, p in net.module_.named_parameters()
        }
        entry = {"epoch": epoch, "lr": lr}
        if self.directory is None:
            entry["params"] = params
        else:
            directory = Path(self.directory)
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"checkpoint_epoch{epoch}.pt"
            torch.save(params, path)
            entry["path"] = str(path)
        self.checkpoints_.append(entry)

    def load(self, index, reference=None):
        """Parameters of checkpoint ``index`` (checked against ``reference``)."""
        entry = self.checkpoints_[index]
        if "params" in entry:
            if reference is not None:
                check_matches(entry["params"], reference, f"of epoch {entry['epoch']}")
            return entry["params"]
        return load_checkpoint(entry["path"], reference)


def _callbacks_of(net):
    cbs = getattr(net, "callbacks_", None)
    if cbs is None:
        cbs = net.callbacks if isinstance(net.callbacks, list | tuple) else []
    return [cb[1] if isinstance(cb, tuple) else cb for cb in cbs]


def find_checkpoints(estimator):
    """The :class:`Checkpoints` callback of a fitted skorch net (possibly
    frozen), or ``None``."""
    net = estimator
    while isinstance(net, FrozenEstimator):
        net = net.estimator
    if not hasattr(net, "callbacks"):
        return None
    for cb in _callbacks_of(net):
        if isinstance(cb, Checkpoints):
            return cb
    return None


def add_checkpoints(net):
    """``net`` (an unfitted skorch net, modified in place) with a
    :class:`Checkpoints` callback, unless it already has one."""
    if find_checkpoints(net) is not None:
        return net
    current = net.callbacks if isinstance(net.callbacks, list | tuple) else []
    net.set_params(callbacks=[*current, ("influence_checkpoints", Checkpoints())])
    return net

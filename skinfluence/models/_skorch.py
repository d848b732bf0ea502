"""skorch nets and bare torch modules."""

import copy

import numpy as np
import torch
from torch import nn

from ..exceptions import UnsupportedEstimatorError
from ._losses import class_index_encoder, softmax_proba
from ._view import L2Penalty, ModelView


class MLPModule(nn.Module):
    """A small multilayer perceptron returning logits (the default model).

    Parameters
    ----------
    n_features : int
    n_outputs : int
    hidden : tuple of int
    """

    def __init__(self, n_features=10, n_outputs=2, hidden=(64,)):
        super().__init__()
        layers, width = [], n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, X):
        return self.net(X)


class BatchLoader:
    """Mini-batches of a skorch dataset taken by slicing, not row by row.

    A drop-in for ``torch.utils.data.DataLoader`` as a skorch net's
    ``iterator_train``/``iterator_valid``: it yields the same batches in the
    same order (contiguous slices, or a ``torch.randperm`` permutation with
    ``shuffle=True``), but takes each one with a single indexing of the
    arrays instead of ``batch_size`` calls of ``Dataset.__getitem__`` and a
    collation. On the default MLP that per-row fetching was a third of the
    training time. Datasets other than skorch's own over dense arrays go to
    ``DataLoader`` unchanged, as do any DataLoader options other than
    ``batch_size``, ``shuffle`` and ``generator``.

    Parameters
    ----------
    dataset : torch Dataset
    batch_size : int, default=1
    shuffle : bool, default=False
    generator : torch.Generator or None, default=None
    **kwargs
        Further ``DataLoader`` options; given any, ``DataLoader`` is used.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, generator=None, **kwargs):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.kwargs = kwargs

    def _sliceable(self):
        from skorch.dataset import Dataset

        data = self.dataset
        return (
            not self.kwargs
            and self.batch_size is not None
            and type(data) is Dataset
            and isinstance(data.X, torch.Tensor | np.ndarray)
            and (data.y is None or isinstance(data.y, torch.Tensor | np.ndarray))
        )

    def __len__(self):
        return -(-len(self.dataset) // self.batch_size)

    def __iter__(self):
        if not self._sliceable():
            loader = torch.utils.data.DataLoader(
                self.dataset,
                batch_size=self.batch_size,
                shuffle=self.shuffle,
                generator=self.generator,
                **self.kwargs,
            )
            yield from loader
            return
        n = len(self.dataset)
        order = None
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).numpy()
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            yield self.dataset[
                slice(start, stop) if order is None else order[start:stop]
            ]


def _is_skorch_classifier(net):
    from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier

    if isinstance(net, NeuralNetBinaryClassifier):
        raise UnsupportedEstimatorError(
            "skorch NeuralNetBinaryClassifier is not supported yet; use "
            "NeuralNetClassifier with a two-column output."
        )
    return isinstance(net, NeuralNetClassifier)


def _weight_decay(net):
    opt = getattr(net, "optimizer_", None)
    if opt is None or isinstance(opt, torch.optim.AdamW):
        # AdamW's decay is decoupled from the loss: it is no part of the
        # objective the parameters minimise.
        return 0.0
    decays = {g.get("weight_decay", 0.0) for g in opt.param_groups}
    if len(decays) > 1:
        raise UnsupportedEstimatorError(
            "skorch nets with different weight_decay per parameter group are not "
            "supported; use a single weight_decay."
        )
    return float(decays.pop())


def skorch_view(net, n_train, device, dtype):
    """View of a fitted skorch ``NeuralNetClassifier``/``NeuralNetRegressor``.

    The per-row loss is skorch's own: ``NLLLoss`` on ``log(p + eps)`` when the
    criterion is ``NLLLoss`` (the module then outputs probabilities),
    otherwise the criterion with ``reduction="none"`` averaged over all but
    the row axis. Weight decay of ``SGD``/``Adam`` is an L2 term of the
    objective (mean loss + wd/2 ||theta||^2).
    """
    module = copy.deepcopy(net.module_).to(device=device, dtype=dtype)
    criterion = copy.deepcopy(net.criterion_)
    if not hasattr(criterion, "reduction"):
        raise UnsupportedEstimatorError(
            f"The skorch criterion {type(criterion).__name__} has no 'reduction' "
            "attribute, so its per-row loss cannot be taken; use a torch.nn loss."
        )
    criterion.reduction = "none"
    criterion = criterion.to(device=device, dtype=dtype)
    classifier = _is_skorch_classifier(net)
    nll = isinstance(criterion, nn.NLLLoss)
    eps = torch.finfo(torch.float32).eps

    if classifier and nll:

        def loss(output, target):
            return criterion(torch.log(output + eps), target)

        def proba(output):
            return output

    else:

        def loss(output, target):
            out = criterion(output, target)
            return out.reshape(out.shape[0], -1).mean(1) if out.dim() > 1 else out

        proba = softmax_proba if classifier else None

    wd = _weight_decay(net)
    names = [n for n, _ in module.named_parameters()]
    penalty = L2Penalty(names, n_train * wd / 2.0) if wd > 0 else None

    if classifier:
        encode = class_index_encoder(device)
        classes = getattr(net, "classes_", None)
        n_classes = None if classes is None else len(classes)
    else:

        def encode(y):
            t = torch.as_tensor(y, device=device).to(dtype)
            return t.reshape(t.shape[0], -1)

        n_classes = None
    return ModelView(
        module,
        loss,
        penalty=penalty,
        n_train=n_train,
        task="classification" if classifier else "regression",
        encode_target=encode,
        proba=proba,
        n_classes=n_classes,
        name=type(net).__name__,
    )

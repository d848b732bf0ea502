"""Turn a user's estimator into something to fit and, once fitted, a view."""

import copy

import torch
from sklearn.base import clone
from torch import nn

from ..exceptions import UnsupportedEstimatorError
from ._skorch import BatchLoader, MLPModule, skorch_view

SUPPORTED = (
    "skorch NeuralNetClassifier/NeuralNetRegressor (any module), a torch.nn.Module, "
    "scikit-learn LogisticRegression, SGDClassifier(loss='log_loss'), "
    "LinearRegression, Ridge, MLPClassifier, MLPRegressor"
)


def _unsupported(estimator):
    return UnsupportedEstimatorError(
        f"{type(estimator).__name__} is not supported as the influence estimator: "
        f"influence needs a differentiable model. Supported: {SUPPORTED}. To use "
        f"{type(estimator).__name__} anyway, pass it as final_estimator (of "
        "NoisyLabelFilter or InfluentialSubsetSelector) with a differentiable "
        "estimator."
    )


def default_estimator(task, n_features=10, n_outputs=2):
    """The small skorch MLP used when ``estimator=None``: one hidden layer of
    64 ReLU units, Adam (lr 0.01, weight decay 1e-4), 40 epochs of
    mini-batches of 128 rows in order, fetched by :class:`BatchLoader`."""
    from skorch import NeuralNetClassifier, NeuralNetRegressor

    common = dict(
        module=MLPModule,
        module__n_features=n_features,
        module__n_outputs=n_outputs,
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=40,
        batch_size=128,
        train_split=None,
        verbose=0,
        optimizer__weight_decay=1e-4,
        iterator_train=BatchLoader,
        iterator_valid=BatchLoader,
    )
    if task == "classification":
        return NeuralNetClassifier(criterion=nn.CrossEntropyLoss, **common)
    return NeuralNetRegressor(criterion=nn.MSELoss, **common)


def wrap_module(module, task):
    """Wrap a bare ``torch.nn.Module`` (copied, never mutated) in a skorch net."""
    from skorch import NeuralNetClassifier, NeuralNetRegressor

    common = dict(
        module=copy.deepcopy(module),
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=40,
        batch_size=128,
        train_split=None,
        verbose=0,
        iterator_train=BatchLoader,
        iterator_valid=BatchLoader,
    )
    if task == "classification":
        return NeuralNetClassifier(criterion=nn.CrossEntropyLoss, **common)
    return NeuralNetRegressor(criterion=nn.MSELoss, **common)


def kind_of(estimator):
    """A short kind string for a supported estimator, or raise ``TypeError``."""
    from sklearn.frozen import FrozenEstimator

    if isinstance(estimator, FrozenEstimator):
        return kind_of(estimator.estimator)
    if isinstance(estimator, nn.Module):
        return "torch"
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        NeuralNet = ()
    if isinstance(estimator, NeuralNet):
        from skorch import NeuralNetClassifier, NeuralNetRegressor

        if not isinstance(estimator, NeuralNetClassifier | NeuralNetRegressor):
            raise _unsupported(estimator)
        return "skorch"
    from sklearn.linear_model import (
        LinearRegression,
        LogisticRegression,
        Ridge,
        SGDClassifier,
    )
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    table = {
        LogisticRegression: "logistic",
        SGDClassifier: "sgd",
        LinearRegression: "linear",
        Ridge: "ridge",
        MLPClassifier: "mlp",
        MLPRegressor: "mlp",
    }
    kind = table.get(type(estimator))
    if kind is None:
        raise _unsupported(estimator)
    if kind in ("logistic", "sgd"):
        # Unsupported settings fail before any fitting is done.
        from ._sklearn import _check_class_weight, _logistic_penalty_strength

        _check_class_weight(estimator)
        if kind == "logistic":
            _logistic_penalty_strength(estimator)
    if kind == "sgd" and estimator.loss != "log_loss":
        raise UnsupportedEstimatorError(
            f"SGDClassifier(loss={estimator.loss!r}) is not differentiable; use "
            "SGDClassifier(loss='log_loss'), or pass it as final_estimator."
        )
    return kind


def prepare(estimator, task, n_features, n_outputs):
    """An unfitted copy of ``estimator`` ready for ``fit`` (or the frozen one)."""
    from sklearn.frozen import FrozenEstimator

    if estimator is None:
        return default_estimator(task, n_features, n_outputs), "skorch"
    kind = kind_of(estimator)
    if isinstance(estimator, FrozenEstimator):
        return estimator, kind
    if kind == "torch":
        return wrap_module(estimator, task), "skorch"
    est = clone(estimator)
    if kind == "skorch":
        # DESIGN 6.6: the scorer fits skorch nets on every row it is given.
        est.set_params(train_split=None)
    return est, kind


def unwrap(fitted):
    from sklearn.frozen import FrozenEstimator

    while isinstance(fitted, FrozenEstimator):
        fitted = fitted.estimator
    return fitted


def adapt(fitted, n_train, device="cpu", dtype=torch.float32):
    """The :class:`ModelView` of a fitted supported estimator."""
    from . import _sklearn

    est = unwrap(fitted)
    kind = kind_of(est)
    if kind == "skorch":
        return skorch_view(est, n_train, device, dtype)
    if kind == "logistic":
        return _sklearn.logistic_regression_view(est, n_train, device, dtype)
    if kind == "sgd":
        return _sklearn.sgd_classifier_view(est, n_train, device, dtype)
    if kind == "linear":
        return _sklearn.linear_regression_view(est, n_train, device, dtype)
    if kind == "ridge":
        return _sklearn.linear_regression_view(
            est, n_train, device, dtype, alpha=est.alpha
        )
    if kind == "mlp":
        return _sklearn.mlp_view(est, n_train, device, dtype)
    raise _unsupported(est)  # pragma: no cover

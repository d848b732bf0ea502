"""One adapter per kind of model: how it is fitted, how it predicts in the
user's labels, and how it is seen as a differentiable view."""

import copy

import numpy as np
import torch
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
)
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import LabelEncoder
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from ..callbacks import add_checkpoints, find_checkpoints
from ..exceptions import UnsupportedEstimatorError
from ..utils._torch import seeded_torch
from . import _sklearn
from ._skorch import BatchLoader, MLPModule, skorch_view

__all__ = [
    "FINE_TUNABLE",
    "SUPPORTED",
    "FrozenAdapter",
    "ModelAdapter",
    "SklearnLinearAdapter",
    "SklearnMLPAdapter",
    "SkorchAdapter",
    "TorchModuleAdapter",
    "adapt",
    "adapter_for",
    "default_estimator",
    "task_of",
    "unwrap",
]

SUPPORTED = (
    "skorch NeuralNetClassifier/NeuralNetRegressor (any module), a torch.nn.Module, "
    "scikit-learn LogisticRegression, SGDClassifier(loss='log_loss'), "
    "LinearRegression, Ridge, MLPClassifier, MLPRegressor"
)


FINE_TUNABLE = (
    "skorch NeuralNetClassifier (any module; also a bare torch.nn.Module and the "
    "default estimator=None), scikit-learn MLPClassifier(solver='adam' or 'sgd') "
    "and SGDClassifier(loss='log_loss')"
)


def _unsupported(estimator):
    return UnsupportedEstimatorError(
        f"{type(estimator).__name__} is not supported as the influence estimator: "
        f"influence needs a differentiable model. Supported: {SUPPORTED}. To use "
        f"{type(estimator).__name__} anyway, pass it as final_estimator (of "
        "NoisyLabelFilter or InfluentialSubsetSelector) with a differentiable "
        "estimator."
    )


def _skorch_net(task, **settings):
    """A skorch net of the package's training settings (Adam at lr 0.01, 40
    epochs of mini-batches of 128 rows in order, every row trained on)."""
    settings = dict(
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=40,
        batch_size=128,
        train_split=None,
        verbose=0,
        iterator_train=BatchLoader,
        iterator_valid=BatchLoader,
        **settings,
    )
    if task == "classification":
        return NeuralNetClassifier(criterion=nn.CrossEntropyLoss, **settings)
    return NeuralNetRegressor(criterion=nn.MSELoss, **settings)


def default_estimator(task, n_features=10, n_outputs=2):
    """The small skorch MLP used when ``estimator=None``: one hidden layer of
    64 ReLU units, Adam (lr 0.01, weight decay 1e-4), 40 epochs of
    mini-batches of 128 rows in order, fetched by :class:`BatchLoader`."""
    return _skorch_net(
        task,
        module=MLPModule,
        module__n_features=n_features,
        module__n_outputs=n_outputs,
        optimizer__weight_decay=1e-4,
    )


def wrap_module(module, task):
    """Wrap a bare ``torch.nn.Module`` (copied, never mutated) in a skorch net."""
    return _skorch_net(task, module=copy.deepcopy(module))


def unwrap(fitted):
    """The model inside any number of ``FrozenEstimator`` layers."""
    while isinstance(fitted, FrozenEstimator):
        fitted = fitted.estimator
    return fitted


def task_of(estimator):
    """``"classification"``, ``"regression"`` or ``None`` (decided from the
    targets) for an estimator, a torch module or ``None``."""
    estimator = unwrap(estimator)
    if estimator is None or isinstance(estimator, nn.Module):
        return None
    if isinstance(estimator, NeuralNetClassifier):
        return "classification"
    if isinstance(estimator, NeuralNetRegressor):
        return "regression"
    if not hasattr(estimator, "get_params"):
        return None
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    return None


def _numpy(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


class ModelAdapter:
    """How one kind of model is fitted, predicts, and is differentiated.

    An adapter holds the user's ``estimator`` (never modified) and, once
    :meth:`fit` has run, the fitted copy ``estimator_``. Classifiers are
    fitted on encoded labels (indices into ``classes_``, set by
    :meth:`fit_labels`) and predict in the user's labels.

    Parameters
    ----------
    estimator : estimator, torch.nn.Module or None
        The user's model (or its specification).
    task : {"classification", "regression"}
    """

    #: Whether models of this kind can record training checkpoints.
    records_checkpoints = False
    #: Whether the model's training objective is convex in its parameters, so
    #: that refits with other seeds reach the same model (linear models), or
    #: not (neural nets, whose refits land in different optima).
    convex = False

    def __init__(self, estimator, task):
        self.estimator = estimator
        self.task = task

    @property
    def name(self):
        """The class name of the model, for messages."""
        return type(unwrap(getattr(self, "estimator_", self.estimator))).__name__

    # -- labels ------------------------------------------------------------
    def _known_classes(self, found):
        """The classes of the fitted model given those found in ``y``."""
        return found

    def fit_labels(self, y):
        """Set ``classes_`` from the labels ``y`` and return them encoded."""
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"y has 1 class ({encoder.classes_[:1].tolist()[0]!r}); influence "
                "needs at least two classes. Pass y with two or more classes."
            )
        self.classes_ = self._known_classes(encoder.classes_)
        return self.encode_labels(y)

    def encode_labels(self, y):
        """Indices into ``classes_`` of the labels ``y`` (unseen labels raise)."""
        y = np.asarray(y)
        pos = np.searchsorted(self.classes_, y)
        pos = np.clip(pos, 0, len(self.classes_) - 1)
        bad = self.classes_[pos] != y
        if np.any(bad):
            raise ValueError(
                f"y contains labels {np.unique(y[bad])[:5].tolist()} unseen in fit; "
                f"known classes are {self.classes_.tolist()}."
            )
        return pos

    # -- fitting -----------------------------------------------------------
    def fit(self, X, y, seed=None, *, record_checkpoints=False, **fit_params):
        """Fit a copy of the model on ``(X, y)``; ``y`` holds encoded labels
        (classifiers) or float targets. ``seed`` (an int or ``None``) seeds
        the randomness the model leaves open; ``record_checkpoints`` adds a
        checkpoint recorder where the kind supports one."""
        raise NotImplementedError

    def refit(self, X, y, seed):
        """A new adapter whose model is a fresh copy of the fitted one,
        fitted on ``(X, y)`` (arrays or tensors of encoded targets) with its
        randomness drawn from ``seed``."""
        raise NotImplementedError

    # -- fine-tuning -------------------------------------------------------
    def check_fine_tune(self):
        """Raise :class:`~skinfluence.exceptions.UnsupportedEstimatorError`
        unless the model can continue training by a few gradient steps."""
        raise UnsupportedEstimatorError(
            f"{self.name} cannot be fine-tuned by a few gradient steps: it has no "
            "partial_fit (a warm-started refit re-solves its objective on the "
            f"selected rows alone). Fine-tunable estimators: {FINE_TUNABLE}."
        )

    def fine_tune(self, X, y, n_steps, lr, seed=None):
        """A new adapter whose model is a copy of the fitted one after
        ``n_steps`` steps on ``(X, y)`` (encoded targets), each with all of
        ``X``'s rows as one batch and a fresh optimizer of the model's own
        kind at step size ``lr``; this adapter's model is not touched."""
        self.check_fine_tune()
        tuned = copy.deepcopy(unwrap(self.estimator_))
        new = copy.copy(self)
        new.estimator, new.estimator_ = tuned, tuned
        self._fine_tune(tuned, X, y, n_steps, lr, seed)
        return new

    # -- predictions -------------------------------------------------------
    def predict(self, X):
        """Predictions in the user's labels."""
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        """Class probabilities, in ``classes_`` order."""
        return self.estimator_.predict_proba(X)

    def view(self, n_train, device="cpu", dtype=torch.float32):
        """The :class:`~skinfluence.models.ModelView` of the fitted model."""
        raise NotImplementedError

    def query_targets(self, view, X):
        """Encoded targets of query rows ``X`` (a tensor) predicted by ``view``:
        the most probable class, or the predicted values."""
        with torch.no_grad():
            out = view.forward(X)
        if self.task == "classification":
            if out.dim() == 1 or out.shape[1] == 1:
                return (out.reshape(-1) > 0).long()
            return out.argmax(1)
        T = out.reshape(out.shape[0], -1).detach()
        return view.encode_target(T.cpu().numpy())

    def checkpoints(self):
        """The :class:`~skinfluence.callbacks.Checkpoints` recorder of the
        fitted model, or ``None``."""
        return None


class SkorchAdapter(ModelAdapter):
    """A skorch ``NeuralNetClassifier``/``NeuralNetRegressor`` (``None``: the
    package's small MLP). The copy is fitted on every given row
    (``train_split=None``), on float32 inputs, with torch's global generator
    seeded from ``seed`` and restored afterwards."""

    records_checkpoints = True

    def _build(self, n_features, n_outputs):
        if self.estimator is None:
            return default_estimator(self.task, n_features, n_outputs)
        net = clone(self.estimator)
        net.set_params(train_split=None)
        return net

    def _fit_net(self, net, X, y, seed, fit_params):
        X = np.asarray(X).astype(np.float32)
        if self.task == "classification":
            y = np.asarray(y).astype(np.int64)
        else:
            y = np.asarray(y).astype(np.float32).reshape(len(y), -1)
        with seeded_torch(seed):
            net.fit(X, y, **fit_params)
        return net

    def fit(self, X, y, seed=None, *, record_checkpoints=False, **fit_params):
        if "sample_weight" in fit_params and not isinstance(
            self.estimator, NeuralNetClassifier | NeuralNetRegressor
        ):
            # skorch hands fit parameters to the module's forward, which for
            # the package's network and a wrapped module has no such argument.
            raise TypeError(
                "sample_weight is not supported by the skorch net that "
                f"{'estimator=None' if self.estimator is None else 'a torch module'} "
                "becomes (skorch passes fit parameters to the module's forward); "
                "drop it, or pass a scikit-learn estimator that takes sample_weight "
                "(e.g. LogisticRegression())."
            )
        if self.task == "classification":
            n_outputs = len(self.classes_)
        else:
            n_outputs = 1 if np.ndim(y) == 1 else np.shape(y)[1]
        net = self._build(X.shape[1], n_outputs)
        if record_checkpoints:
            add_checkpoints(net)
        self._y_ndim = np.ndim(y)
        self.estimator_ = self._fit_net(net, X, y, seed, fit_params)
        return self

    def refit(self, X, y, seed):
        net = clone(unwrap(self.estimator_))
        net.set_params(train_split=None)
        new = SkorchAdapter(net, self.task)
        new.estimator_ = self._fit_net(net, _numpy(X), _numpy(y), seed, {})
        return new

    def check_fine_tune(self):
        return None

    def _fine_tune(self, net, X, y, n_steps, lr, seed):
        net.set_params(lr=lr, batch_size=len(X), train_split=None)
        net.initialize_optimizer()
        X = np.asarray(X).astype(np.float32)
        y = np.asarray(y).astype(
            np.int64 if self.task == "classification" else np.float32
        )
        with seeded_torch(seed):
            net.partial_fit(X, y, epochs=n_steps)

    def predict(self, X):
        pred = np.asarray(self.estimator_.predict(np.asarray(X).astype(np.float32)))
        if self.task == "classification":
            return self.classes_[pred.astype(int)]
        if getattr(self, "_y_ndim", 2) == 1 and pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred[:, 0]
        return pred

    def predict_proba(self, X):
        return self.estimator_.predict_proba(np.asarray(X).astype(np.float32))

    def view(self, n_train, device="cpu", dtype=torch.float32):
        return skorch_view(unwrap(self.estimator_), n_train, device, dtype)

    def checkpoints(self):
        return find_checkpoints(unwrap(self.estimator_))


class TorchModuleAdapter(SkorchAdapter):
    """A bare ``torch.nn.Module``, copied and wrapped in a skorch net with
    cross-entropy (classification) or mean squared error (regression)."""

    def _build(self, n_features, n_outputs):
        return wrap_module(self.estimator, self.task)


class SklearnAdapter(ModelAdapter):
    """A differentiable scikit-learn estimator; ``seed`` fills its
    ``random_state`` when that is left at ``None``."""

    def _fit_copy(self, est, X, y, seed, force_seed, fit_params):
        if seed is not None and "random_state" in est.get_params():
            if force_seed or est.get_params()["random_state"] is None:
                est.set_params(random_state=seed)
        return est.fit(X, y, **fit_params)

    def fit(self, X, y, seed=None, *, record_checkpoints=False, **fit_params):
        if self.task == "classification":
            y = self.classes_[y]
        self.estimator_ = self._fit_copy(
            clone(self.estimator), X, y, seed, False, fit_params
        )
        return self

    def refit(self, X, y, seed):
        y = _numpy(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        est = clone(unwrap(self.estimator_))
        new = type(self)(est, self.task)
        new.estimator_ = self._fit_copy(est, _numpy(X), y, seed, True, {})
        return new

    def decision_function(self, X):
        return self.estimator_.decision_function(X)


class SklearnLinearAdapter(SklearnAdapter):
    """``LogisticRegression`` (L2), ``SGDClassifier(loss="log_loss")``,
    ``LinearRegression`` and ``Ridge``: an exact single Linear layer."""

    convex = True

    def __init__(self, estimator, task):
        super().__init__(estimator, task)
        # Unsupported settings fail before any fitting is done.
        if isinstance(estimator, LogisticRegression | SGDClassifier):
            _sklearn.check_class_weight(estimator)
        if isinstance(estimator, LogisticRegression):
            _sklearn.logistic_penalty_strength(estimator)
        if isinstance(estimator, SGDClassifier) and estimator.loss != "log_loss":
            raise UnsupportedEstimatorError(
                f"SGDClassifier(loss={estimator.loss!r}) is not differentiable; use "
                "SGDClassifier(loss='log_loss'), or pass it as final_estimator."
            )

    def check_fine_tune(self):
        if not isinstance(unwrap(self.estimator), SGDClassifier):
            super().check_fine_tune()

    def _fine_tune(self, est, X, y, n_steps, lr, seed):
        # SGDClassifier updates row by row: a pass over the rows at step
        # lr / n moves the weights about as far as one full-batch step of lr.
        est.set_params(learning_rate="constant", eta0=lr / len(X))
        y = self.classes_[np.asarray(y)]
        for _ in range(n_steps):
            est.partial_fit(X, y)

    def view(self, n_train, device="cpu", dtype=torch.float32):
        est = unwrap(self.estimator_)
        if isinstance(est, LogisticRegression):
            return _sklearn.logistic_regression_view(est, n_train, device, dtype)
        if isinstance(est, SGDClassifier):
            return _sklearn.sgd_classifier_view(est, n_train, device, dtype)
        alpha = est.alpha if isinstance(est, Ridge) else 0.0
        return _sklearn.linear_regression_view(est, n_train, device, dtype, alpha)


class SklearnMLPAdapter(SklearnAdapter):
    """``MLPClassifier`` and ``MLPRegressor``: their layers as torch Linear
    layers and activations."""

    def check_fine_tune(self):
        if unwrap(self.estimator).solver == "lbfgs":
            raise UnsupportedEstimatorError(
                f"{self.name}(solver='lbfgs') cannot be fine-tuned by a few "
                "gradient steps: it has no partial_fit. Use solver='adam' or "
                f"solver='sgd'. Fine-tunable estimators: {FINE_TUNABLE}."
            )

    def _fine_tune(self, est, X, y, n_steps, lr, seed):
        est.set_params(learning_rate_init=lr, batch_size=len(X))
        # partial_fit keeps an existing optimizer and its step size; drop it
        # so that the fine-tuning starts a fresh one at ``lr``.
        if hasattr(est, "_optimizer"):
            del est._optimizer
        if self.task == "classification":
            y = self.classes_[np.asarray(y)]
        for _ in range(n_steps):
            est.partial_fit(X, y)

    def view(self, n_train, device="cpu", dtype=torch.float32):
        return _sklearn.mlp_view(unwrap(self.estimator_), n_train, device, dtype)


class FrozenAdapter(ModelAdapter):
    """A fitted model passed as :class:`sklearn.frozen.FrozenEstimator`: used
    as is, never refitted by :meth:`fit`. A frozen scikit-learn classifier
    keeps its own ``classes_``."""

    def __init__(self, estimator, task):
        super().__init__(estimator, task)
        inner = unwrap(estimator)
        if isinstance(inner, nn.Module):
            raise _unsupported(estimator)
        self.inner = adapter_for(inner, task)
        self.records_checkpoints = self.inner.records_checkpoints
        self.convex = self.inner.convex

    def _known_classes(self, found):
        own = getattr(unwrap(self.estimator), "classes_", None)
        if isinstance(self.inner, SklearnAdapter) and own is not None:
            return np.asarray(own)
        return found

    def fit(self, X, y, seed=None, *, record_checkpoints=False, **fit_params):
        self.estimator_ = self.estimator
        self.inner.estimator_ = unwrap(self.estimator)
        self.inner._y_ndim = np.ndim(y)
        if self.task == "classification":
            self.inner.classes_ = self.classes_
        return self

    def refit(self, X, y, seed):
        return self.inner.refit(X, y, seed)

    def check_fine_tune(self):
        self.inner.check_fine_tune()

    def fine_tune(self, X, y, n_steps, lr, seed=None):
        return self.inner.fine_tune(X, y, n_steps, lr, seed)

    def _fitted_input(self, X):
        """Validated rows as the frozen model was fitted on them: under its
        feature names when it has them (the caller's frame was checked
        against them already), so that it does not warn of their absence."""
        names = getattr(unwrap(self.estimator), "feature_names_in_", None)
        if names is None or hasattr(X, "columns"):
            return X
        try:
            import pandas as pd
        except ImportError:
            return X
        return pd.DataFrame(X, columns=names)

    def predict(self, X):
        return self.inner.predict(self._fitted_input(X))

    def predict_proba(self, X):
        return self.inner.predict_proba(self._fitted_input(X))

    def decision_function(self, X):
        return self.inner.decision_function(self._fitted_input(X))

    def view(self, n_train, device="cpu", dtype=torch.float32):
        return self.inner.view(n_train, device, dtype)

    def checkpoints(self):
        return self.inner.checkpoints()


_SKLEARN_ADAPTERS = {
    LogisticRegression: SklearnLinearAdapter,
    SGDClassifier: SklearnLinearAdapter,
    LinearRegression: SklearnLinearAdapter,
    Ridge: SklearnLinearAdapter,
    MLPClassifier: SklearnMLPAdapter,
    MLPRegressor: SklearnMLPAdapter,
}


def adapter_for(estimator, task):
    """The (unfitted) adapter of a supported model, or raise
    :class:`~skinfluence.exceptions.UnsupportedEstimatorError`."""
    if estimator is None:
        return SkorchAdapter(None, task)
    if isinstance(estimator, FrozenEstimator):
        return FrozenAdapter(estimator, task)
    if isinstance(estimator, nn.Module):
        return TorchModuleAdapter(estimator, task)
    if isinstance(estimator, NeuralNet):
        if not isinstance(estimator, NeuralNetClassifier | NeuralNetRegressor):
            raise _unsupported(estimator)
        return SkorchAdapter(estimator, task)
    kind = _SKLEARN_ADAPTERS.get(type(estimator))
    if kind is None:
        raise _unsupported(estimator)
    return kind(estimator, task)


def adapt(fitted, n_train, device="cpu", dtype=torch.float32):
    """The :class:`ModelView` of a fitted supported estimator."""
    adapter = adapter_for(unwrap(fitted), task_of(fitted))
    adapter.estimator_ = unwrap(fitted)
    return adapter.view(n_train, device, dtype)

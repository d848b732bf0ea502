"""Exact torch conversions of scikit-learn's differentiable estimators."""

import numpy as np
import torch
from torch import nn

from ..exceptions import UnsupportedEstimatorError
from ._losses import (
    binary_logistic_loss,
    class_index_encoder,
    float_target_encoder,
    half_mean_squared_error,
    multinomial_loss,
    ovr_logistic_loss,
    sigmoid_proba,
    softmax_proba,
    squared_error,
)
from ._view import L2Penalty, ModelView


def _linear(coef, intercept, device, dtype):
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    # Built in float64 so that float64 views hold the fitted values exactly.
    layer = nn.Linear(
        coef.shape[1], coef.shape[0], bias=intercept is not None, dtype=torch.float64
    )
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(coef))
        if intercept is not None:
            layer.bias.copy_(
                torch.as_tensor(np.atleast_1d(intercept), dtype=torch.float64)
            )
    return nn.Sequential(layer).to(device=device, dtype=dtype)


def _l2(names, strength):
    """``strength * sum ||params[name]||^2``."""
    return L2Penalty(names, strength)


def logistic_penalty_strength(est):
    penalty = getattr(est, "penalty", "deprecated")
    l1_ratio = getattr(est, "l1_ratio", None)
    if penalty in (None, "none") or not np.isfinite(est.C):
        return 0.0
    if penalty in ("l1", "elasticnet") or (l1_ratio not in (None, 0, 0.0)):
        raise UnsupportedEstimatorError(
            "LogisticRegression with an L1 or elastic-net penalty is not "
            "differentiable; use the L2 penalty (l1_ratio=0) for the influence "
            "estimator, and your model as final_estimator if needed."
        )
    return 1.0 / (2.0 * est.C)


def check_class_weight(est):
    if getattr(est, "class_weight", None) is not None:
        raise UnsupportedEstimatorError(
            f"{type(est).__name__}(class_weight={est.class_weight!r}) is not "
            "supported for influence; use class_weight=None."
        )


def logistic_regression_view(est, n_train, device, dtype):
    check_class_weight(est)
    strength = logistic_penalty_strength(est)
    intercept = est.intercept_ if est.fit_intercept else None
    module = _linear(est.coef_, intercept, device, dtype)
    binary = len(est.classes_) == 2
    penalty = _l2(["0.weight"], strength) if strength > 0 else None
    return ModelView(
        module,
        binary_logistic_loss if binary else multinomial_loss,
        penalty=penalty,
        n_train=n_train,
        task="classification",
        encode_target=class_index_encoder(device),
        proba=sigmoid_proba if binary else softmax_proba,
        n_classes=len(est.classes_),
        name="LogisticRegression",
    )


def sgd_classifier_view(est, n_train, device, dtype):
    if est.loss != "log_loss":
        raise UnsupportedEstimatorError(
            f"SGDClassifier(loss={est.loss!r}) is not differentiable in the sense "
            "influence needs; use SGDClassifier(loss='log_loss')."
        )
    if est.penalty not in (None, "l2"):
        raise UnsupportedEstimatorError(
            f"SGDClassifier(penalty={est.penalty!r}) is not supported; use "
            "penalty='l2' or None."
        )
    check_class_weight(est)
    intercept = est.intercept_ if est.fit_intercept else None
    module = _linear(est.coef_, intercept, device, dtype)
    binary = len(est.classes_) == 2
    # SGD minimises mean(loss) + alpha/2 ||w||^2; on the sum scale that is
    # sum(loss) + n alpha/2 ||w||^2.
    penalty = (
        _l2(["0.weight"], n_train * est.alpha / 2.0) if est.penalty == "l2" else None
    )
    return ModelView(
        module,
        binary_logistic_loss if binary else ovr_logistic_loss,
        penalty=penalty,
        n_train=n_train,
        task="classification",
        encode_target=class_index_encoder(device),
        proba=sigmoid_proba if binary else _ovr_proba,
        n_classes=len(est.classes_),
        name="SGDClassifier",
    )


def _ovr_proba(output):
    p = torch.sigmoid(output)
    return p / p.sum(1, keepdim=True)


def linear_regression_view(est, n_train, device, dtype, alpha=0.0):
    coef = np.asarray(est.coef_)
    n_outputs = 1 if coef.ndim == 1 else coef.shape[0]
    intercept = est.intercept_ if est.fit_intercept else None
    module = _linear(coef, intercept, device, dtype)
    alpha = np.asarray(alpha, dtype=float)
    if alpha.ndim > 0 and alpha.size > 1:
        raise UnsupportedEstimatorError(
            "Ridge with one alpha per target is not supported; use a scalar alpha."
        )
    alpha = float(alpha)
    penalty = _l2(["0.weight"], alpha) if alpha > 0 else None
    return ModelView(
        module,
        squared_error,
        penalty=penalty,
        n_train=n_train,
        task="regression",
        encode_target=float_target_encoder(device, dtype, n_outputs),
        name=type(est).__name__,
    )


_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}


def mlp_view(est, n_train, device, dtype):
    layers = []
    n_layers = len(est.coefs_)
    weight_names = []
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        lin = nn.Linear(W.shape[0], W.shape[1], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(np.asarray(W, dtype=np.float64).T))
            lin.bias.copy_(torch.as_tensor(np.asarray(b, dtype=np.float64)))
        weight_names.append(f"{len(layers)}.weight")
        layers.append(lin)
        if i < n_layers - 1:
            layers.append(_ACTIVATIONS[est.activation]())
    module = nn.Sequential(*layers).to(device=device, dtype=dtype)
    # sklearn minimises mean(loss) + alpha/(2 n) sum ||W||^2, i.e. on the sum
    # scale sum(loss) + alpha/2 sum ||W||^2 (biases unpenalised).
    penalty = _l2(weight_names, est.alpha / 2.0) if est.alpha > 0 else None
    if hasattr(est, "classes_"):
        if est.out_activation_ == "logistic" and est.n_outputs_ == 1:
            loss, proba = binary_logistic_loss, sigmoid_proba
        elif est.out_activation_ == "softmax":
            loss, proba = multinomial_loss, softmax_proba
        else:
            raise UnsupportedEstimatorError(
                "MLPClassifier on multilabel targets is not supported; use "
                "single-label targets."
            )
        return ModelView(
            module,
            loss,
            penalty=penalty,
            n_train=n_train,
            task="classification",
            encode_target=class_index_encoder(device),
            proba=proba,
            n_classes=len(est.classes_),
            name="MLPClassifier",
        )
    return ModelView(
        module,
        half_mean_squared_error,
        penalty=penalty,
        n_train=n_train,
        task="regression",
        encode_target=float_target_encoder(device, dtype, est.n_outputs_),
        name="MLPRegressor",
    )

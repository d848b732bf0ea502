"""The adapter of each model kind: fitting, labels, refits, checkpoints."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import models
from skinfluence.callbacks import Checkpoints
from skinfluence.exceptions import UnsupportedEstimatorError
from skinfluence.models import MLPModule


def _data(n=40, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.array(["cat", "dog", "eel"])[
        (X[:, :3] + 0.3 * rng.normal(size=(n, 3))).argmax(1)
    ]
    return X, y


def _net():
    return NeuralNetClassifier(
        MLPModule,
        module__n_features=4,
        module__n_outputs=3,
        criterion=nn.CrossEntropyLoss,
        max_epochs=3,
        verbose=0,
    )


KINDS = {
    "default": (None, models.SkorchAdapter),
    "skorch": (_net(), models.SkorchAdapter),
    "module": (nn.Sequential(nn.Linear(4, 3)), models.TorchModuleAdapter),
    "logistic": (LogisticRegression(), models.SklearnLinearAdapter),
    "mlp": (MLPClassifier((5,), max_iter=50), models.SklearnMLPAdapter),
}


@pytest.mark.parametrize("case", list(KINDS))
def test_each_kind_fits_a_copy_and_predicts_in_the_users_labels(case):
    import warnings

    est, kind = KINDS[case]
    X, y = _data()
    adapter = models.adapter_for(est, "classification")
    assert type(adapter) is kind
    y_enc = adapter.fit_labels(y)
    np.testing.assert_array_equal(adapter.classes_, ["cat", "dog", "eel"])
    np.testing.assert_array_equal(adapter.classes_[y_enc], y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapter.fit(X, y_enc, seed=0)
    assert adapter.estimator_ is not est
    pred = adapter.predict(X)
    assert set(pred) <= {"cat", "dog", "eel"}
    proba = adapter.predict_proba(X)
    assert proba.shape == (40, 3)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    # The view's predictions agree with the fitted model's.
    view = adapter.view(len(X), "cpu", torch.float64)
    with torch.no_grad():
        out = view.forward(torch.as_tensor(X))
    assert (adapter.classes_[out.argmax(1).numpy()] == pred).mean() > 0.95
    targets = adapter.query_targets(view, torch.as_tensor(X))
    np.testing.assert_array_equal(targets.numpy(), out.argmax(1).numpy())


@pytest.mark.parametrize("case", ["skorch", "logistic", "mlp"])
def test_refits_are_fresh_copies_seeded_by_their_seed(case):
    import warnings

    est, _ = KINDS[case]
    X, y = _data()
    adapter = models.adapter_for(
        clone(est) if est is not None else None, "classification"
    )
    y_enc = adapter.fit_labels(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapter.fit(X, y_enc, seed=0)
        fitted = adapter.view(len(X), "cpu", torch.float64).params
        a = adapter.refit(X, y_enc, 1).view(len(X), "cpu", torch.float64).params
        b = adapter.refit(X, y_enc, 1).view(len(X), "cpu", torch.float64).params
        c = adapter.refit(X, y_enc, 2).view(len(X), "cpu", torch.float64).params
    assert a.keys() == fitted.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    # The fitted model is left as it was.
    after = adapter.view(len(X), "cpu", torch.float64).params
    for k in fitted:
        torch.testing.assert_close(fitted[k], after[k], rtol=0, atol=0)
    if case != "logistic":  # lbfgs on a convex loss ignores the seed
        assert any(not torch.equal(a[k], c[k]) for k in a)


def test_skorch_copies_record_checkpoints_when_asked_and_sklearn_has_none():
    X, y = _data()
    net = models.adapter_for(_net(), "classification")
    net.fit(X, net.fit_labels(y), seed=0, record_checkpoints=True)
    recorder = net.checkpoints()
    assert isinstance(recorder, Checkpoints)
    assert [c["epoch"] for c in recorder.checkpoints_] == [1, 2, 3]
    plain = models.adapter_for(_net(), "classification")
    plain.fit(X, plain.fit_labels(y), seed=0)
    assert plain.checkpoints() is None
    lr = models.adapter_for(LogisticRegression(), "classification")
    lr.fit(X, lr.fit_labels(y))
    assert not lr.records_checkpoints and lr.checkpoints() is None


def test_seed_fills_only_an_open_random_state():
    X, y = _data()
    open_seed = models.adapter_for(SGDClassifier(loss="log_loss"), "classification")
    open_seed.fit(X, open_seed.fit_labels(y), seed=7)
    assert open_seed.estimator_.random_state == 7
    own = models.adapter_for(
        SGDClassifier(loss="log_loss", random_state=3), "classification"
    )
    own.fit(X, own.fit_labels(y), seed=7)
    assert own.estimator_.random_state == 3
    # A refit always takes its seed.
    assert own.refit(X, own.encode_labels(y), 11).estimator_.random_state == 11


def test_frozen_model_is_used_as_is_and_keeps_its_classes():
    X, y = _data()
    fitted = LogisticRegression().fit(X, y)
    coef = fitted.coef_.copy()
    adapter = models.adapter_for(FrozenEstimator(fitted), "classification")
    assert isinstance(adapter, models.FrozenAdapter)
    # Only two of the model's classes among the labels: the model's three stay.
    keep = y != "eel"
    y_enc = adapter.fit_labels(y[keep])
    np.testing.assert_array_equal(adapter.classes_, fitted.classes_)
    adapter.fit(X[keep], y_enc)
    np.testing.assert_array_equal(fitted.coef_, coef)
    np.testing.assert_array_equal(adapter.predict(X), fitted.predict(X))
    with pytest.raises(ValueError, match="unseen in fit"):
        adapter.encode_labels(np.array(["cat", "fox"]))


def test_regression_adapter_and_unsupported_kinds():
    X, _ = _data()
    t = X @ np.arange(4.0)
    ridge = models.adapter_for(Ridge(alpha=0.5), "regression")
    ridge.fit(X, t)
    view = ridge.view(len(X), "cpu", torch.float64)
    with torch.no_grad():
        out = view.forward(torch.as_tensor(X)).reshape(-1).numpy()
    np.testing.assert_allclose(out, ridge.predict(X), rtol=1e-10)
    with pytest.raises(UnsupportedEstimatorError, match="Supported: skorch"):
        models.adapter_for(FrozenEstimator(nn.Linear(4, 1)), "regression")
    with pytest.raises(UnsupportedEstimatorError, match="hinge"):
        models.adapter_for(SGDClassifier(loss="hinge"), "classification")

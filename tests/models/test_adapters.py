"""Model adapters against independent float64 references.

For every supported estimator the engine's per-row gradients are compared
with a plain loop of ``torch.autograd.grad`` over a loss written here from
the estimator's documented objective, on parameters read from the fitted
estimator itself (not from the view).
"""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
)
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import SVC
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn
from torch.func import functional_call

from skinfluence import InfluenceScorer, models
from skinfluence.exceptions import UnsupportedEstimatorError
from skinfluence.gradients import HessianProblem, ParamLayout, row_gradients

F64 = torch.float64
SKORCH_EPS = torch.finfo(torch.float32).eps  # skorch trains in float32


# ---------------------------------------------------------------- data
def _data(n=40, d=4, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=(d, n_classes))
    y = (X @ w + 0.8 * rng.normal(size=(n, n_classes))).argmax(1)
    return X, y


def _reg_data(n=40, d=4, n_outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = X @ rng.normal(size=(d, n_outputs)) + 0.3 * rng.normal(size=(n, n_outputs))
    return X, (Y[:, 0] if n_outputs == 1 else Y)


def _t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=F64)


# --------------------------------------------------- independent losses
def _binary_log_loss(z, y):
    # log(1 + exp(-s z)) with s = +-1
    s = 2.0 * y - 1.0
    return F.softplus(-s * z.reshape(-1))


def _softmax_ce(z, y):
    return torch.logsumexp(z, dim=1) - z[torch.arange(len(y)), y]


def _ovr_log_loss(z, y):
    onehot = F.one_hot(y, z.shape[1]).to(z.dtype)
    return F.softplus(-(2 * onehot - 1) * z).sum(1)


# -------------------------------------------------------- references
def _reference_grads(forward, loss, params, X, T):
    """(n, p) per-row gradients from a loop of ``torch.autograd.grad``."""
    rows = []
    for i in range(X.shape[0]):
        leaves = [p.detach().clone().requires_grad_(True) for p in params]
        value = loss(forward(leaves, X[i : i + 1]), T[i : i + 1]).sum()
        grads = torch.autograd.grad(value, leaves)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def _engine_grads(view, X, T, to_reference):
    """Engine per-row gradients, reordered like the reference's parameters."""
    layout = ParamLayout(view, view.select("all"), X)
    G = row_gradients(view, layout, X, T).materialise()
    parts = to_reference(layout.unflatten(G), view)
    return torch.cat([p.reshape(G.shape[0], -1) for p in parts], dim=1)


def _rel_err(a, b):
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def _linear_to_ref(unflat, view):
    (mod,) = view.linear_modules()
    prefix = mod + "." if mod else ""
    out = [unflat[prefix + "weight"]]
    if prefix + "bias" in unflat:
        out.append(unflat[prefix + "bias"])
    return out


def _mlp_to_ref(unflat, view):
    # sklearn stores coefs_[i] as (in, out): the transpose of torch's weight.
    out = []
    for mod in view.linear_modules():
        out += [unflat[mod + ".weight"].transpose(-1, -2), unflat[mod + ".bias"]]
    return out


def _named_to_ref(names):
    def to_ref(unflat, view):
        return [unflat[n] for n in names]

    return to_ref


# ------------------------------------------------- sklearn linear models
def _linear_forward(fit_intercept):
    def forward(params, x):
        z = x @ params[0].T
        return z + params[1] if fit_intercept else z

    return forward


def _linear_params(est):
    coef = np.atleast_2d(est.coef_)
    params = [_t(coef)]
    if est.fit_intercept:
        params.append(_t(np.atleast_1d(est.intercept_)))
    return params


LINEAR_CASES = {
    "logistic-binary": (LogisticRegression(C=0.7), 2, _binary_log_loss),
    "logistic-binary-no-intercept": (
        LogisticRegression(C=0.7, fit_intercept=False),
        2,
        _binary_log_loss,
    ),
    "logistic-multinomial": (LogisticRegression(C=2.0), 3, _softmax_ce),
    "logistic-multinomial-no-intercept": (
        LogisticRegression(C=2.0, fit_intercept=False),
        3,
        _softmax_ce,
    ),
    "sgd-binary": (
        SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0),
        2,
        _binary_log_loss,
    ),
    "sgd-multiclass": (
        SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0),
        3,
        _ovr_log_loss,
    ),
}


@pytest.mark.parametrize("case", list(LINEAR_CASES))
def test_linear_classifier_row_gradients_match_autograd_loop(case):
    est, n_classes, loss = LINEAR_CASES[case]
    X, y = _data(n_classes=n_classes)
    est = clone(est).fit(X, y)
    view = models.adapt(est, len(X), "cpu", F64)
    Xt = _t(X)
    y_idx = np.searchsorted(est.classes_, y)
    ref = _reference_grads(
        _linear_forward(est.fit_intercept),
        loss,
        _linear_params(est),
        Xt,
        torch.as_tensor(y_idx),
    )
    got = _engine_grads(view, Xt, view.encode_target(y_idx), _linear_to_ref)
    assert _rel_err(got, ref) < 1e-8
    # The view predicts what scikit-learn predicts.
    with torch.no_grad():
        proba = view.proba(view.forward(Xt)).numpy()
    np.testing.assert_allclose(proba, est.predict_proba(X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_outputs", [1, 2])
@pytest.mark.parametrize(
    "est",
    [LinearRegression(), LinearRegression(fit_intercept=False), Ridge(alpha=3.0)],
    ids=["linreg", "linreg-no-intercept", "ridge"],
)
def test_linear_regression_row_gradients_match_autograd_loop(est, n_outputs):
    X, y = _reg_data(n_outputs=n_outputs)
    est = clone(est).fit(X, y)
    view = models.adapt(est, len(X), "cpu", F64)
    Xt = _t(X)
    Y = _t(y).reshape(len(y), -1)

    def loss(z, t):
        return ((z - t) ** 2).sum(1)

    ref = _reference_grads(
        _linear_forward(est.fit_intercept), loss, _linear_params(est), Xt, Y
    )
    got = _engine_grads(view, Xt, view.encode_target(y), _linear_to_ref)
    assert _rel_err(got, ref) < 1e-8
    with torch.no_grad():
        out = view.forward(Xt).numpy()
    np.testing.assert_allclose(out.reshape(np.shape(y)), est.predict(X), rtol=1e-10)


# --------------------------------------------------------- sklearn MLP
_ACT = {"relu": torch.relu, "tanh": torch.tanh, "logistic": torch.sigmoid}


def _mlp_forward(activation):
    def forward(params, x):
        h = x
        n_layers = len(params) // 2
        for i in range(n_layers):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < n_layers - 1:
                h = _ACT[activation](h)
        return h

    return forward


def _mlp_params(est):
    params = []
    for W, b in zip(est.coefs_, est.intercepts_):
        params += [_t(W), _t(b)]
    return params


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_mlp_classifier_row_gradients_match_autograd_loop(activation, n_classes):
    X, y = _data(n_classes=n_classes)
    est = MLPClassifier(
        hidden_layer_sizes=(6, 5),
        activation=activation,
        alpha=0.01,
        max_iter=30,
        random_state=0,
    )
    with pytest.warns(Warning):  # stops before convergence on purpose
        est.fit(X, y)
    view = models.adapt(est, len(X), "cpu", F64)
    Xt = _t(X)
    y_idx = np.searchsorted(est.classes_, y)
    loss = _binary_log_loss if n_classes == 2 else _softmax_ce
    ref = _reference_grads(
        _mlp_forward(activation), loss, _mlp_params(est), Xt, torch.as_tensor(y_idx)
    )
    got = _engine_grads(view, Xt, view.encode_target(y_idx), _mlp_to_ref)
    assert _rel_err(got, ref) < 1e-8
    with torch.no_grad():
        proba = view.proba(view.forward(Xt)).numpy()
    np.testing.assert_allclose(proba, est.predict_proba(X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_mlp_regressor_row_gradients_match_autograd_loop(n_outputs):
    X, y = _reg_data(n_outputs=n_outputs)
    est = MLPRegressor(
        hidden_layer_sizes=(7,), activation="tanh", max_iter=30, random_state=0
    )
    with pytest.warns(Warning):
        est.fit(X, y)
    view = models.adapt(est, len(X), "cpu", F64)
    Xt = _t(X)
    Y = _t(y).reshape(len(y), -1)

    def loss(z, t):
        # scikit-learn's squared loss: half the mean over outputs.
        return 0.5 * ((z - t) ** 2).mean(1)

    ref = _reference_grads(_mlp_forward("tanh"), loss, _mlp_params(est), Xt, Y)
    got = _engine_grads(view, Xt, view.encode_target(y), _mlp_to_ref)
    assert _rel_err(got, ref) < 1e-8
    with torch.no_grad():
        out = view.forward(Xt).numpy()
    np.testing.assert_allclose(out.reshape(np.shape(y)), est.predict(X), rtol=1e-10)


# ------------------------------------------------------ skorch and torch
class _SoftmaxNet(nn.Module):
    def __init__(self, d=4, k=3):
        super().__init__()
        self.hidden = nn.Linear(d, 8)
        self.out = nn.Linear(8, k)

    def forward(self, x):
        return torch.softmax(self.out(torch.tanh(self.hidden(x))), dim=-1)


class _LogitNet(nn.Module):
    def __init__(self, d=4, k=3):
        super().__init__()
        self.hidden = nn.Linear(d, 8)
        self.out = nn.Linear(8, k)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def _skorch_reference(net, X, T, loss):
    module = copy.deepcopy(net.module_).to(F64)
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach() for _, p in module.named_parameters()]

    def forward(ps, x):
        return functional_call(module, dict(zip(names, ps)), (x,))

    return names, _reference_grads(forward, loss, params, X, T)


def _fit_skorch(net, X, y):
    return net.fit(X.astype(np.float32), y)


SKORCH_CLASSIFIER_CASES = {
    "nll-on-softmax": (
        dict(module=_SoftmaxNet),  # skorch's default criterion is NLLLoss
        lambda p, y: -torch.log(p[torch.arange(len(y)), y] + SKORCH_EPS),
    ),
    "cross-entropy": (
        dict(module=_LogitNet, criterion=nn.CrossEntropyLoss),
        _softmax_ce,
    ),
}


@pytest.mark.parametrize("case", list(SKORCH_CLASSIFIER_CASES))
def test_skorch_classifier_row_gradients_match_autograd_loop(case):
    kwargs, loss = SKORCH_CLASSIFIER_CASES[case]
    X, y = _data(n_classes=3)
    net = NeuralNetClassifier(
        max_epochs=3, lr=0.1, train_split=None, verbose=0, **kwargs
    )
    _fit_skorch(net, X, y)
    view = models.adapt(net, len(X), "cpu", F64)
    Xt = _t(X)
    names, ref = _skorch_reference(net, Xt, torch.as_tensor(y), loss)
    got = _engine_grads(view, Xt, view.encode_target(y), _named_to_ref(names))
    assert _rel_err(got, ref) < 1e-8
    with torch.no_grad():
        proba = view.proba(view.forward(Xt)).numpy()
    np.testing.assert_allclose(
        proba, net.predict_proba(X.astype(np.float32)), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_skorch_regressor_row_gradients_match_autograd_loop(n_outputs):
    X, y = _reg_data(n_outputs=n_outputs)
    Y = y.reshape(len(y), -1)
    net = NeuralNetRegressor(
        _LogitNet,
        module__k=n_outputs,
        max_epochs=3,
        lr=0.05,
        train_split=None,
        verbose=0,
    )
    net.fit(X.astype(np.float32), Y.astype(np.float32))
    view = models.adapt(net, len(X), "cpu", F64)
    Xt = _t(X)

    def loss(z, t):
        return ((z - t) ** 2).mean(1)  # MSELoss per row

    names, ref = _skorch_reference(net, Xt, _t(Y), loss)
    got = _engine_grads(view, Xt, view.encode_target(Y), _named_to_ref(names))
    assert _rel_err(got, ref) < 1e-8
    with torch.no_grad():
        out = view.forward(Xt).numpy()
    np.testing.assert_allclose(
        out, net.predict(X.astype(np.float32)), rtol=1e-5, atol=1e-6
    )


def test_bare_module_is_wrapped_fitted_and_differentiated_exactly():
    X, y = _data(n_classes=3)
    module = _LogitNet()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    adapter = models.adapter_for(module, "classification")
    assert isinstance(adapter, models.TorchModuleAdapter)
    adapter.fit(X, adapter.fit_labels(y), seed=0)
    net = adapter.estimator_
    assert isinstance(net, NeuralNetClassifier)
    # The user's module is copied, never trained in place.
    for k, v in module.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    view = adapter.view(len(X), "cpu", F64)
    Xt = _t(X)
    names, ref = _skorch_reference(net, Xt, torch.as_tensor(y), _softmax_ce)
    got = _engine_grads(view, Xt, view.encode_target(y), _named_to_ref(names))
    assert _rel_err(got, ref) < 1e-8


@pytest.mark.parametrize(
    "optimizer, in_objective",
    [(torch.optim.SGD, True), (torch.optim.Adam, True), (torch.optim.AdamW, False)],
    ids=["sgd", "adam", "adamw"],
)
def test_skorch_weight_decay_enters_the_objective(optimizer, in_objective):
    X, y = _data(n_classes=3)
    wd = 0.05
    net = NeuralNetClassifier(
        _LogitNet,
        criterion=nn.CrossEntropyLoss,
        optimizer=optimizer,
        optimizer__weight_decay=wd,
        max_epochs=3,
        lr=0.05,
        train_split=None,
        verbose=0,
    )
    _fit_skorch(net, X, y)
    view = models.adapt(net, len(X), "cpu", F64)
    Xt, T = _t(X), view.encode_target(y)
    names, ref = _skorch_reference(net, Xt, torch.as_tensor(y), _softmax_ce)
    # Per-row gradients are those of the loss alone.
    got = _engine_grads(view, Xt, T, _named_to_ref(names))
    assert _rel_err(got, ref) < 1e-8
    # The mean objective's gradient is the mean loss gradient plus wd * theta
    # (what SGD/Adam add to every step); AdamW decouples its decay.
    layout = ParamLayout(view, view.select("all"), Xt)
    problem = HessianProblem(view, layout, Xt, T)
    unflat = layout.unflatten(problem.gradient())
    got_mean = torch.cat([unflat[n].reshape(-1) for n in names])
    theta = torch.cat(
        [p.detach().to(F64).reshape(-1) for _, p in net.module_.named_parameters()]
    )
    expected = ref.mean(0) + (wd * theta if in_objective else 0)
    torch.testing.assert_close(got_mean, expected, rtol=1e-10, atol=1e-12)


# -------------------------------------- stationarity at sklearn's optimum
def _objective_gradient(est, X, y):
    view = models.adapt(est, len(X), "cpu", F64)
    Xt = _t(X)
    if hasattr(est, "classes_"):
        T = view.encode_target(np.searchsorted(est.classes_, y))
    else:
        T = view.encode_target(y)
    layout = ParamLayout(view, view.select("all"), Xt)
    problem = HessianProblem(view, layout, Xt, T)
    # Per-row scale: how large a single row's gradient typically is.
    G = row_gradients(view, layout, Xt, T).materialise()
    return problem.gradient(), float(G.norm(dim=1).mean())


@pytest.mark.parametrize(
    "est, n_classes",
    [
        (LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000), 2),
        (LogisticRegression(C=0.5, fit_intercept=False, tol=1e-12), 2),
        (LogisticRegression(C=2.0, tol=1e-12, max_iter=10_000), 3),
        (LogisticRegression(C=2.0, solver="newton-cholesky", tol=1e-12), 3),
    ],
    ids=["binary", "binary-no-intercept", "multinomial", "multinomial-newton"],
)
def test_logistic_regression_fitted_parameters_are_stationary(est, n_classes):
    X, y = _data(n=60, n_classes=n_classes)
    g, scale = _objective_gradient(clone(est).fit(X, y), X, y)
    assert float(g.abs().max()) < 1e-7 * scale


@pytest.mark.parametrize("n_outputs", [1, 2])
@pytest.mark.parametrize(
    "est",
    [LinearRegression(), Ridge(alpha=5.0), Ridge(alpha=5.0, fit_intercept=False)],
    ids=["linreg", "ridge", "ridge-no-intercept"],
)
def test_linear_regression_fitted_parameters_are_stationary(est, n_outputs):
    X, y = _reg_data(n_outputs=n_outputs)
    g, scale = _objective_gradient(clone(est).fit(X, y), X, y)
    assert float(g.abs().max()) < 1e-10 * scale


@pytest.mark.parametrize(
    "est, bound",
    [
        (MLPClassifier(hidden_layer_sizes=(5,), alpha=3.0, solver="lbfgs"), 1e-2),
        (
            MLPRegressor(
                hidden_layer_sizes=(5,), activation="tanh", alpha=3.0, solver="lbfgs"
            ),
            1e-3,
        ),
    ],
    ids=["classifier", "regressor"],
)
def test_mlp_fitted_parameters_are_nearly_stationary(est, bound):
    # lbfgs stops on a relative change of the loss, so the bound is loose.
    # It still separates a right penalty from a wrong one: here the penalty's
    # own gradient, alpha/n * W, is a few times larger than the bound.
    est = clone(est).set_params(tol=1e-12, max_iter=5000, random_state=0)
    if isinstance(est, MLPClassifier):
        X, y = _data(n=60, n_classes=3)
    else:
        X, y = _reg_data(n=60)
    est.fit(X, y)
    g, scale = _objective_gradient(est, X, y)
    assert float(g.abs().max()) < bound * scale
    penalty_grad = max(np.abs(W).max() for W in est.coefs_) * est.alpha / len(X)
    assert penalty_grad > 2 * bound * scale


# ----------------------------------------------------------- unsupported
@pytest.mark.parametrize(
    "est",
    [
        RandomForestClassifier(n_estimators=2),
        SVC(),
        SGDClassifier(loss="hinge"),
        LogisticRegression(l1_ratio=1.0, solver="saga", C=0.5),
    ],
    ids=["forest", "svc", "sgd-hinge", "logistic-l1"],
)
def test_unsupported_estimator_raises_type_error_pointing_to_final_estimator(est):
    X, y = _data()
    X_before, y_before = X.copy(), y.copy()
    params_before = est.get_params()
    with pytest.raises(TypeError, match="final_estimator") as info:
        InfluenceScorer(est).fit(X, y)
    assert isinstance(info.value, UnsupportedEstimatorError)
    msg = str(info.value)
    assert type(est).__name__ in msg
    if not isinstance(est, SGDClassifier | LogisticRegression):
        assert "LogisticRegression" in msg and "skorch" in msg
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    assert est.get_params() == params_before
    assert not hasattr(est, "classes_")


def test_adapt_of_unsupported_fitted_estimator_raises_type_error():
    X, y = _data()
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match="Supported: skorch"):
        models.adapt(forest, len(X))


# ---------------------------------------------------------------- batches
def test_batch_loader_yields_dataloaders_batches_and_the_same_fit():
    from skorch.dataset import Dataset

    from skinfluence.models import default_estimator
    from skinfluence.models._skorch import BatchLoader

    X, y = _data(n=50, d=3, n_classes=3)
    X, y = X.astype(np.float32), y.astype(np.int64)
    data = Dataset(X, y)
    ours = list(BatchLoader(data, batch_size=16))
    theirs = list(torch.utils.data.DataLoader(data, batch_size=16))
    assert [len(b[0]) for b in ours] == [16, 16, 16, 2] == [len(b[0]) for b in theirs]
    for (xa, ya), (xb, yb) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(np.asarray(xa), xb.numpy())
        np.testing.assert_array_equal(np.asarray(ya), yb.numpy())

    gen = torch.Generator().manual_seed(0)
    rows = np.concatenate(
        [b[1] for b in BatchLoader(Dataset(X, np.arange(50)), 16, True, gen)]
    )
    assert sorted(rows) == list(range(50)) and list(rows) != list(range(50))

    # Datasets it cannot slice go to DataLoader unchanged.
    tensors = torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y))
    first = next(iter(BatchLoader(tensors, batch_size=16)))
    assert isinstance(first[0], torch.Tensor) and first[0].shape == (16, 3)

    # The default net trains to the same parameters with either loader.
    fitted = []
    for loader in (BatchLoader, torch.utils.data.DataLoader):
        net = default_estimator("classification", 3, 3).set_params(
            iterator_train=loader, iterator_valid=loader, max_epochs=3
        )
        torch.manual_seed(0)
        net.fit(X, y)
        fitted.append([p.detach().clone() for p in net.module_.parameters()])
        np.testing.assert_array_equal(net.predict_proba(X).shape, (50, 3))
    for a, b in zip(*fitted, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

"""TracInCP against a by-hand loop over saved checkpoints."""

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetClassifier
from skorch.callbacks import LRScheduler
from torch.func import functional_call

from skinfluence import Checkpoints, InfluenceScorer, TracInCP
from skinfluence.callbacks import find_checkpoints
from skinfluence.models import MLPModule

LR0, GAMMA, EPOCHS = 0.2, 0.5, 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(np.int64)
    return X, y


def _net(**kw):
    return NeuralNetClassifier(
        MLPModule,
        module__n_features=3,
        module__hidden=(4,),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=LR0,
        max_epochs=EPOCHS,
        batch_size=8,
        train_split=None,
        verbose=0,
        **kw,
    )


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A net trained by hand with the callback writing to disk and a
    step-decayed learning rate."""
    X, y = data
    directory = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    net = _net(
        callbacks=[
            (
                "decay",
                LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=GAMMA),
            ),
            ("checkpoints", Checkpoints(directory=directory)),
        ]
    ).fit(X.astype(np.float32), y)
    return net, directory


def _per_row_grads(module, state, X, y):
    rows = []
    for i in range(len(X)):
        params = {k: v.double().requires_grad_(True) for k, v in state.items()}
        x = torch.as_tensor(X[i : i + 1], dtype=torch.float64)
        out = functional_call(module, params, (x,))
        loss = torch.nn.functional.cross_entropy(out, torch.as_tensor(y[i : i + 1]))
        grads = torch.autograd.grad(loss, list(params.values()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def _reference(net, directory, X, y, Xq=None, yq=None):
    """``sum_c lr_c g_c(q) . g_c(j)`` from the files on disk."""
    module = MLPModule(n_features=3, hidden=(4,)).double()
    files = sorted(directory.glob("*.pt"))
    assert len(files) == EPOCHS
    self_inf, cross = 0.0, 0.0
    for epoch, path in enumerate(files, start=1):
        state = torch.load(path, weights_only=True)
        lr = LR0 * GAMMA ** (epoch - 1)
        G = _per_row_grads(module, state, X, y)
        self_inf = self_inf + lr * (G**2).sum(1)
        if Xq is not None:
            cross = cross + lr * _per_row_grads(module, state, Xq, yq) @ G.T
    return self_inf.numpy(), (None if Xq is None else cross.numpy())


def test_self_influence_and_influence_match_by_hand_loop(data, trained):
    X, y = data
    net, directory = trained
    scorer = InfluenceScorer(
        FrozenEstimator(net), method="tracin_cp", dtype="float64"
    ).fit(X, y)
    want_self, want_cross = _reference(net, directory, X, y, X[:4], y[:4])
    np.testing.assert_allclose(scorer.self_influence_, want_self, rtol=1e-10)
    np.testing.assert_allclose(
        scorer.influence(X[:4], y[:4]), want_cross, rtol=1e-9, atol=1e-12
    )
    lrs = [c["lr"] for c in find_checkpoints(net).checkpoints_]
    np.testing.assert_allclose(lrs, [LR0 * GAMMA**e for e in range(EPOCHS)])


def test_scorer_adds_the_callback_to_its_copy_only(data):
    X, y = data
    net = _net()
    scorer = InfluenceScorer(net, method="tracin_cp").fit(X, y)
    assert net.callbacks is None
    recorder = find_checkpoints(scorer.estimator_)
    assert isinstance(recorder, Checkpoints)
    assert [c["epoch"] for c in recorder.checkpoints_] == [1, 2, 3]
    # Checkpoints held in memory give the same self-influence as a by-hand
    # sum over the recorded snapshots.
    module = MLPModule(n_features=3, hidden=(4,)).double()
    want = sum(
        c["lr"] * (_per_row_grads(module, c["params"], X, y) ** 2).sum(1)
        for c in recorder.checkpoints_
    )
    np.testing.assert_allclose(scorer.self_influence_, want.numpy(), rtol=1e-5)


def test_explicit_checkpoint_list_equals_callback(data, trained):
    X, y = data
    net, directory = trained
    files = sorted(directory.glob("*.pt"))
    lrs = [LR0 * GAMMA**e for e in range(EPOCHS)]
    explicit = TracInCP(checkpoints=list(zip([str(f) for f in files], lrs)))
    recorded = TracInCP(checkpoints=find_checkpoints(net).checkpoints_)
    a = InfluenceScorer(FrozenEstimator(net), method=explicit, dtype="float64")
    b = InfluenceScorer(FrozenEstimator(net), method="tracin_cp", dtype="float64")
    c = InfluenceScorer(FrozenEstimator(net), method=recorded, dtype="float64")
    want = b.fit(X, y).self_influence_
    np.testing.assert_allclose(a.fit(X, y).self_influence_, want, rtol=1e-12)
    np.testing.assert_allclose(c.fit(X, y).self_influence_, want, rtol=1e-12)


# -- bad input ---------------------------------------------------------------


def test_sklearn_model_has_no_checkpoints(data):
    X, y = data
    with pytest.raises(ValueError, match="LogisticRegression records none"):
        InfluenceScorer(LogisticRegression(), method="tracin_cp").fit(X, y)


def test_frozen_net_without_callback(data):
    X, y = data
    net = _net().fit(X.astype(np.float32), y)
    with pytest.raises(ValueError, match="without the Checkpoints callback"):
        InfluenceScorer(FrozenEstimator(net), method="tracin_cp").fit(X, y)


def test_no_recorded_checkpoint(data):
    X, y = data
    net = _net(callbacks=[Checkpoints(every=10)]).fit(X.astype(np.float32), y)
    with pytest.raises(
        ValueError, match=r"recorded no checkpoints \(Checkpoints\(every=10"
    ):
        InfluenceScorer(FrozenEstimator(net), method="tracin_cp").fit(X, y)


def test_missing_checkpoint_file(data, tmp_path):
    X, y = data
    net = _net(callbacks=[Checkpoints(directory=tmp_path)]).fit(X.astype(np.float32), y)
    next(iter(sorted(tmp_path.glob("*.pt")))).unlink()
    with pytest.raises(ValueError, match="does not exist"):
        InfluenceScorer(FrozenEstimator(net), method="tracin_cp").fit(X, y)


def test_checkpoint_of_another_model(data, tmp_path):
    X, y = data
    net = _net().fit(X.astype(np.float32), y)
    wrong = tmp_path / "wrong.pt"
    torch.save({"net.0.weight": torch.zeros(7, 3)}, wrong)
    method = TracInCP(checkpoints=[(str(wrong), 0.1)])
    with pytest.raises(ValueError, match="does not match the model's parameters"):
        InfluenceScorer(FrozenEstimator(net), method=method).fit(X, y)


@pytest.mark.parametrize("every", [0, 1.5, "2"])
def test_checkpoints_every_must_be_positive_int(data, every):
    X, y = data
    with pytest.raises(ValueError, match=r"Checkpoints\(every="):
        _net(callbacks=[Checkpoints(every=every)]).fit(X.astype(np.float32), y)

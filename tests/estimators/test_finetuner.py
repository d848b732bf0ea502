import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier

import skinfluence
from skinfluence import FastIF, InfluenceFineTuner, InfluenceFunction, InfluenceScorer
from skinfluence.exceptions import SkinfluenceWarning, UnsupportedEstimatorError
from skinfluence.models import default_estimator


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=260, n_features=6, n_informative=4, flip_y=0.15, random_state=0
    )
    X = X.astype(np.float32)
    return X[:140], y[:140], X[140:180], y[140:180], X[180:], y[180:]


@pytest.fixture(scope="module")
def fitted_net(data):
    X, y = data[0], data[1]
    net = default_estimator("classification", X.shape[1], 2).set_params(max_epochs=10)
    torch.manual_seed(0)
    return net.fit(X, y)


@pytest.fixture(scope="module")
def fitted_mlp(data):
    X, y = data[0], data[1]
    return MLPClassifier((8,), max_iter=2000, random_state=0).fit(X, y)


def _state(net):
    return {k: v.clone() for k, v in net.module_.state_dict().items()}


@pytest.mark.parametrize(
    "method",
    ["tracin", InfluenceFunction(damping=0.5, n_estimators=1)],
    ids=["tracin", "if"],
)
@pytest.mark.parametrize("pool", ["train", "pool"])
def test_selected_rows_are_the_top_of_the_scorers_aggregated_influence(
    data, fitted_mlp, method, pool
):
    X, y, Xv, yv, Xp, yp = data
    frozen = FrozenEstimator(fitted_mlp)
    extra = {"X_pool": Xp, "y_pool": yp} if pool == "pool" else {}
    tuner = InfluenceFineTuner(
        frozen,
        method=method,
        n_rows=7,
        n_steps=2,
        n_rounds=1,
        pool=pool,
        dtype="float64",
    ).fit(X, y, X_val=Xv, y_val=yv, **extra)
    Xc, yc = (Xp, yp) if pool == "pool" else (X, y)
    wrong = fitted_mlp.predict(Xv) != yv
    ref = (
        InfluenceScorer(frozen, method=method, dtype="float64")
        .fit(Xc, yc)
        .influence(Xv[wrong], yv[wrong], aggregate=True)
    )
    np.testing.assert_allclose(tuner.influence_[0], ref, rtol=1e-7, atol=1e-12)
    expected = np.argsort(-ref, kind="stable")[:7]
    np.testing.assert_array_equal(tuner.selected_rows_[0], expected)
    assert tuner.n_errors_[0] == wrong.sum()


@pytest.mark.parametrize("name", sorted(skinfluence.METHODS))
def test_every_method_drives_the_fine_tuning(data, name):
    # Each method on a model it supports: Newton-LOO and the influence
    # function's default damping need a convex (linear) model, TracInCP a
    # skorch net that records checkpoints.
    X, y, Xv, yv, _, _ = data
    if name in ("newton_loo", "influence_function"):
        est = SGDClassifier(loss="log_loss", random_state=0)
    else:
        est = default_estimator("classification", X.shape[1], 2).set_params(
            max_epochs=5
        )
    method = FastIF(n_neighbors=60, depth=30) if name == "fastif" else name
    tuner = InfluenceFineTuner(
        est, method=method, n_rows=8, n_rounds=2, random_state=0
    ).fit(X, y, X_val=Xv, y_val=yv)
    assert tuner.n_rounds_ >= 1
    for rows, infl in zip(tuner.selected_rows_, tuner.influence_):
        assert np.isfinite(infl[rows]).all()
        assert infl[rows].min() >= np.nanmax(np.delete(infl, rows))


def test_skorch_fine_tuning_matches_plain_torch_adam_steps(data, fitted_net):
    # Reference: a fresh Adam (the net's optimizer, its weight decay) taking
    # full-batch cross-entropy steps on the selected rows.
    X, y, Xv, yv, _, _ = data
    before = _state(fitted_net)
    tuner = InfluenceFineTuner(
        FrozenEstimator(fitted_net),
        n_rows=12,
        n_steps=3,
        lr=5e-3,
        n_rounds=1,
        random_state=0,
    ).fit(X, y, X_val=Xv, y_val=yv)
    rows = tuner.selected_rows_[0]
    module = copy.deepcopy(fitted_net.module_)
    opt = torch.optim.Adam(module.parameters(), lr=5e-3, weight_decay=1e-4)
    Xs, ys = torch.tensor(X[rows]), torch.tensor(y[rows])
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(Xs), ys).backward()
        opt.step()
    for k, v in module.state_dict().items():
        torch.testing.assert_close(tuner.estimator_.module_.state_dict()[k], v)
    # The caller's fitted net is untouched.
    for k, v in _state(fitted_net).items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert not torch.equal(
        tuner.estimator_.module_.net[0].weight, before["net.0.weight"]
    )


def test_helpful_rows_lower_the_failing_rows_loss(data):
    # One small SGD pass over the most helpful rows is a step along their
    # summed gradient, which TracIn says points down the failing rows' loss.
    X, y, Xv, yv, _, _ = data
    sgd = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0).fit(X, y)
    wrong = sgd.predict(Xv) != yv
    tuner = InfluenceFineTuner(
        FrozenEstimator(sgd), n_rows=10, n_steps=1, lr=1e-3, n_rounds=1, dtype="float64"
    ).fit(X, y, X_val=Xv, y_val=yv)
    loss = lambda m: log_loss(yv[wrong], m.predict_proba(Xv[wrong]), labels=[0, 1])  # noqa: E731
    assert loss(tuner.estimator_) < loss(sgd)
    worst = np.argsort(tuner.influence_[0], kind="stable")[:10]
    harmful = copy.deepcopy(sgd).set_params(learning_rate="constant", eta0=1e-4)
    harmful.partial_fit(X[worst], y[worst])
    assert loss(harmful) > loss(sgd)


def test_original_estimator_is_never_mutated(data, fitted_mlp):
    X, y, Xv, yv, _, _ = data
    est = MLPClassifier((8,), max_iter=50, random_state=0)
    params = est.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        InfluenceFineTuner(est, n_rows=5).fit(X, y, X_val=Xv, y_val=yv)
    assert est.get_params() == params and not hasattr(est, "coefs_")
    coefs = [c.copy() for c in fitted_mlp.coefs_]
    tuner = InfluenceFineTuner(FrozenEstimator(fitted_mlp), n_rows=5, n_steps=3).fit(
        X, y, X_val=Xv, y_val=yv
    )
    for a, b in zip(coefs, fitted_mlp.coefs_):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(coefs, tuner.estimator_.coefs_))
    assert tuner.base_estimator_.estimator is fitted_mlp


def test_rounds_rescore_and_record_errors(data, fitted_net):
    X, y, Xv, yv, _, _ = data
    tuner = InfluenceFineTuner(
        FrozenEstimator(fitted_net), n_rows=10, n_steps=2, lr=1e-2, n_rounds=3
    ).fit(X, y, X_val=Xv, y_val=yv)
    assert tuner.n_rounds_ in (1, 2, 3)
    assert tuner.selected_rows_.shape == (tuner.n_rounds_, 10)
    assert tuner.influence_.shape == (tuner.n_rounds_, len(y))
    assert len(tuner.n_errors_) == tuner.n_rounds_ + 1
    assert tuner.n_errors_[-1] == (tuner.predict(Xv) != yv).sum()
    if tuner.n_rounds_ > 1:
        # Later rounds score with the fine-tuned model: new influence.
        assert not np.allclose(tuner.influence_[0], tuner.influence_[1])


def test_verbose_reports_each_round(data, fitted_mlp, capsys):
    X, y, Xv, yv, _, _ = data
    InfluenceFineTuner(
        FrozenEstimator(fitted_mlp), n_rows=5, n_rounds=2, verbose=1
    ).fit(X, y, X_val=Xv, y_val=yv)
    out = capsys.readouterr().out
    wrong = (fitted_mlp.predict(Xv) != yv).sum()
    assert f"round 1/2: {wrong} of {len(yv)} validation rows wrong" in out


def test_heldout_split_indexes_rows_of_X(data):
    X, y = data[0], data[1]
    tuner = InfluenceFineTuner(
        SGDClassifier(loss="log_loss", random_state=0), n_rows=0.1, random_state=0
    ).fit(X, y)
    val = tuner.validation_indices_
    assert len(val) == 28
    assert tuner.influence_.shape[1] == len(y)
    assert np.isnan(tuner.influence_[:, val]).all()
    assert not np.isin(tuner.selected_rows_, val).any()
    assert tuner.selected_rows_.shape[1] == round(0.1 * (len(y) - len(val)))


def test_clone_pickle_and_grid_search(data, fitted_net):
    X, y, Xv, yv, Xt, yt = data
    tuner = InfluenceFineTuner(
        FrozenEstimator(fitted_net), n_rows=10, n_steps=2, random_state=0
    )
    assert clone(tuner).get_params()["n_rows"] == 10
    tuner.fit(X, y, X_val=Xv, y_val=yv)
    loaded = pickle.loads(pickle.dumps(tuner))
    np.testing.assert_array_equal(loaded.predict(Xt), tuner.predict(Xt))
    np.testing.assert_allclose(loaded.predict_proba(Xt), tuner.predict_proba(Xt))
    assert set(tuner.predict(Xt)) <= set(tuner.classes_)
    search = GridSearchCV(
        InfluenceFineTuner(SGDClassifier(loss="log_loss", random_state=0)),
        {"n_rows": [5, 10], "n_steps": [1, 2], "method": ["tracin"]},
        cv=2,
    ).fit(X, y, X_val=Xv, y_val=yv)
    assert search.best_params_["n_rows"] in (5, 10)


def test_string_labels_map_through_skorch_indices(data):
    X, y, Xv, yv, Xt, yt = data
    names = np.array(["cat", "dog"])
    tuner = InfluenceFineTuner(n_rows=5, n_steps=1, random_state=0)
    tuner.set_params(
        estimator=default_estimator("classification", X.shape[1], 2).set_params(
            max_epochs=5
        )
    )
    tuner.fit(X, names[y], X_val=Xv, y_val=names[yv])
    assert set(tuner.predict(Xt)) <= {"cat", "dog"}
    assert tuner.score(Xt, names[yt]) > 0.5


def test_a_validation_set_without_errors_keeps_the_model(data, fitted_mlp):
    X, y, Xv, yv, _, _ = data
    right = fitted_mlp.predict(Xv) == yv
    with pytest.warns(SkinfluenceWarning, match="no error to correct"):
        tuner = InfluenceFineTuner(FrozenEstimator(fitted_mlp), n_rows=5).fit(
            X, y, X_val=Xv[right], y_val=yv[right]
        )
    assert tuner.n_rounds_ == 0 and tuner.selected_rows_.shape == (0, 5)
    assert tuner.estimator_ is fitted_mlp
    np.testing.assert_array_equal(tuner.predict(Xv), fitted_mlp.predict(Xv))


def test_bad_input(data, fitted_mlp):
    X, y, Xv, yv, Xp, yp = data
    frozen = FrozenEstimator(fitted_mlp)
    tuner = InfluenceFineTuner(frozen, n_rows=5)
    with pytest.raises(ValueError, match="y_val is missing"):
        tuner.fit(X, y, X_val=Xv)
    with pytest.raises(ValueError, match="X_val is missing"):
        tuner.fit(X, y, y_val=yv)
    with pytest.raises(ValueError, match="pass X_val and y_val"):
        clone(tuner).set_params(validation_fraction=None).fit(X, y)
    with pytest.raises(ValueError, match="y_val has shape"):
        tuner.fit(X, y, X_val=Xv, y_val=yv[:-1])
    with pytest.raises(ValueError, match="NaN"):
        Xbad = Xv.copy()
        Xbad[0, 0] = np.nan
        tuner.fit(X, y, X_val=Xbad, y_val=yv)
    with pytest.raises(ValueError, match="features"):
        tuner.fit(X, y, X_val=Xv[:, :3], y_val=yv)
    with pytest.raises(ValueError, match="not in y"):
        tuner.fit(X, y, X_val=Xv, y_val=yv + 5)
    with pytest.raises(ValueError, match="n_rows=141 is larger than the 140"):
        clone(tuner).set_params(n_rows=141).fit(X, y, X_val=Xv, y_val=yv)
    pooled = clone(tuner).set_params(pool="pool")
    with pytest.raises(ValueError, match="n_rows=81 is larger than the 80"):
        pooled.set_params(n_rows=81).fit(X, y, X_val=Xv, y_val=yv, X_pool=Xp, y_pool=yp)
    with pytest.raises(ValueError, match=r"y_pool has no row of class\(es\) \[1\]"):
        InfluenceFineTuner(n_rows=5, pool="pool").fit(
            X, y, X_val=Xv, y_val=yv, X_pool=Xp[yp == 0], y_pool=yp[yp == 0]
        )
    with pytest.raises(ValueError, match="y_pool is missing"):
        pooled.fit(X, y, X_val=Xv, y_val=yv, X_pool=Xp)
    with pytest.raises(ValueError, match="X_pool is missing"):
        pooled.fit(X, y, X_val=Xv, y_val=yv, y_pool=yp)
    with pytest.raises(ValueError, match="needs X_pool"):
        pooled.fit(X, y, X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match="set pool='pool'"):
        tuner.fit(X, y, X_val=Xv, y_val=yv, X_pool=Xp, y_pool=yp)
    with pytest.raises(ValueError, match="Unknown label type"):
        tuner.fit(X, X[:, 0], X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match="1 class"):
        tuner.fit(X, np.zeros(len(y), dtype=int), X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match="y has 139 rows but X has 140"):
        tuner.fit(X, y[:-1], X_val=Xv, y_val=yv)
    with pytest.raises(ValueError, match="not a known method"):
        clone(tuner).set_params(method="nope").fit(X, y, X_val=Xv, y_val=yv)
    for name, value in [
        ("n_steps", 0),
        ("lr", -1.0),
        ("pool", "both"),
        ("n_rows", 1.5),
    ]:
        with pytest.raises(ValueError, match=name):
            clone(tuner).set_params(**{name: value}).fit(X, y, X_val=Xv, y_val=yv)


@pytest.mark.parametrize(
    "estimator, match",
    [
        (LogisticRegression(), "LogisticRegression cannot be fine-tuned"),
        (MLPClassifier(solver="lbfgs"), "solver='lbfgs'"),
        (LinearRegression(), "LinearRegression is a regressor"),
        (SGDClassifier(loss="hinge"), "not differentiable"),
    ],
)
def test_estimators_that_cannot_be_fine_tuned_are_refused_before_fitting(
    data, estimator, match
):
    X, y, Xv, yv, _, _ = data
    with pytest.raises(UnsupportedEstimatorError, match=match) as info:
        InfluenceFineTuner(estimator).fit(X, y, X_val=Xv, y_val=yv)
    if "cannot be fine-tuned" in match:
        assert "SGDClassifier(loss='log_loss')" in str(info.value)
    assert not hasattr(estimator, "coef_") and not hasattr(estimator, "coefs_")


def test_exported():
    assert "InfluenceFineTuner" in skinfluence.__all__

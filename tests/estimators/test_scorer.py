"""InfluenceScorer: scikit-learn workflows, delegation and bad input."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skinfluence import CGSolver, InfluenceFunction, InfluenceScorer, TracIn


def _data(n=60, d=4, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=(d, n_classes))
    y = (X @ w + 0.5 * rng.normal(size=(n, n_classes))).argmax(1)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _data()
    scorer = InfluenceScorer(LogisticRegression(), dtype="float64").fit(X, y)
    return scorer, X, y


# ------------------------------------------------------------- workflows
def test_clone_gives_an_unfitted_copy_with_the_same_params(fitted):
    scorer, X, y = fitted
    copy = clone(scorer)
    assert copy.get_params().keys() == scorer.get_params().keys()
    assert copy.dtype == "float64" and not hasattr(copy, "method_")
    assert copy.estimator is not scorer.estimator
    with pytest.raises(NotFittedError):
        copy.influence(X)


@pytest.mark.parametrize("method", ["tracin", "influence_function"])
def test_pickle_round_trip_gives_the_same_results(method):
    X, y = _data()
    scorer = InfluenceScorer(LogisticRegression(), method=method).fit(X, y)
    expected = scorer.influence(X[:5], y[:5])
    restored = pickle.loads(pickle.dumps(scorer))
    np.testing.assert_array_equal(restored.influence(X[:5], y[:5]), expected)
    np.testing.assert_array_equal(restored.self_influence_, scorer.self_influence_)
    np.testing.assert_array_equal(
        restored.self_influence(X[:5], y[:5]), scorer.self_influence(X[:5], y[:5])
    )
    np.testing.assert_array_equal(restored.predict(X), scorer.predict(X))


def test_pickle_round_trip_of_a_skorch_backed_scorer():
    X, y = _data()
    scorer = InfluenceScorer(random_state=0).fit(X.astype(np.float32), y)
    restored = pickle.loads(pickle.dumps(scorer))
    np.testing.assert_allclose(
        restored.influence(X[:4], y[:4]), scorer.influence(X[:4], y[:4]), rtol=1e-6
    )


def test_pipeline_scales_then_scores(fitted):
    _, X, y = fitted
    X = X * 10 + 3
    pipe = make_pipeline(
        StandardScaler(), InfluenceScorer(LogisticRegression(), dtype="float64")
    )
    pipe.fit(X, y)
    scorer = pipe[-1]
    Xs = pipe[0].transform(X)
    np.testing.assert_allclose(pipe.transform(X[:3]), scorer.influence(Xs[:3]))
    np.testing.assert_array_equal(pipe.predict(X), scorer.estimator_.predict(Xs))
    assert pipe.score(X, y) == scorer.estimator_.score(Xs, y)


def test_grid_search_over_method_and_damping():
    X, y = _data(n=80)
    grid = GridSearchCV(
        InfluenceScorer(LogisticRegression()),
        [
            {"method": ["tracin"]},
            {"method": [InfluenceFunction()], "method__damping": [0.01, 1.0]},
        ],
        cv=2,
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 3
    best = grid.best_estimator_
    assert hasattr(best, "method_")
    dampings = [
        p.get("method__damping") for p in grid.cv_results_["params"] if "method" in p
    ]
    assert dampings == [None, 0.01, 1.0]
    # The damping reaches the fitted method.
    refit = clone(grid.estimator).set_params(
        method=InfluenceFunction(), method__damping=1.0
    )
    assert refit.fit(X, y).method_.damping_ == 1.0


def test_frozen_prefitted_model_is_used_as_is():
    X, y = _data()
    X_other, y_other = _data(seed=1)
    est = LogisticRegression().fit(X_other, y_other)
    coef = est.coef_.copy()
    before = joblib.hash(est)
    scorer = InfluenceScorer(FrozenEstimator(est), dtype="float64").fit(X, y)
    assert joblib.hash(est) == before
    np.testing.assert_array_equal(scorer.estimator_.estimator.coef_, coef)
    np.testing.assert_array_equal(scorer.predict(X), est.predict(X))
    # Gradients are taken at the frozen parameters, not refitted ones.
    refit = InfluenceScorer(LogisticRegression(), dtype="float64").fit(X, y)
    assert not np.allclose(scorer.self_influence_, refit.self_influence_)
    p = est.predict_proba(X)[:, 1]
    Xb = np.hstack([X, np.ones((len(X), 1))])
    G = (p - y)[:, None] * Xb
    np.testing.assert_allclose(scorer.self_influence_, (G**2).sum(1), rtol=1e-9)


def test_default_estimator_is_a_small_skorch_mlp():
    X, y = _data(n=80, n_classes=3)
    scorer = InfluenceScorer(random_state=0).fit(X, y)
    from skorch import NeuralNetClassifier

    assert isinstance(scorer.estimator_, NeuralNetClassifier)
    np.testing.assert_array_equal(scorer.classes_, [0, 1, 2])
    scores = scorer.influence(X[:3], y[:3])
    assert scores.shape == (3, 80) and np.all(np.isfinite(scores))
    assert scorer.score(X, y) > 0.6
    assert scorer.predict_proba(X).shape == (80, 3)


def test_bare_torch_module_is_wrapped_and_not_mutated():
    X, y = _data(n_classes=3)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    state = {k: v.clone() for k, v in module.state_dict().items()}
    scorer = InfluenceScorer(module, parameters="last").fit(X.astype(np.float32), y)
    for k, v in module.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    scores = scorer.influence(X[:2], y[:2])
    assert scores.shape == (2, len(X)) and np.all(np.isfinite(scores))
    assert scorer.predict(X).shape == (len(X),)


def test_regression_with_ridge_and_with_the_default_net():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=50)
    scorer = InfluenceScorer(Ridge(alpha=1.0), dtype="float64").fit(X, y)
    assert not hasattr(scorer, "classes_")
    # TracIn on squared error: g = 2 r [x, 1].
    r = scorer.predict(X) - y
    G = 2 * r[:, None] * np.hstack([X, np.ones((50, 1))])
    np.testing.assert_allclose(scorer.influence(X[:4], y[:4]), G[:4] @ G.T, rtol=1e-8)
    assert scorer.score(X, y) == pytest.approx(scorer.estimator_.score(X, y))
    from skinfluence.models import default_estimator

    regressor = default_estimator("regression", n_features=3, n_outputs=1)
    net = InfluenceScorer(regressor, random_state=0).fit(X, y)
    assert net.influence(X[:2], y[:2]).shape == (2, 50)
    assert net.predict(X).shape == (50,)
    # The default (estimator=None) is a classifier: a continuous target is an
    # error that names the regressor to use.
    with pytest.raises(ValueError, match="Unknown label type.*default_estimator"):
        InfluenceScorer().fit(X, y)


@pytest.mark.parametrize("estimator", [LogisticRegression(), None], ids=["lr", "net"])
def test_string_labels_are_encoded_like_scikit_learn(estimator):
    X, y = _data(n_classes=3)
    names = np.array(["ant", "bee", "cat"])
    y_str = names[y]
    scorer = InfluenceScorer(estimator, random_state=0).fit(X, y_str)
    np.testing.assert_array_equal(scorer.classes_, names)
    assert set(scorer.predict(X)) <= set(names)
    ref = InfluenceScorer(estimator, random_state=0).fit(X, y)
    np.testing.assert_allclose(
        scorer.influence(X[:3], y_str[:3]), ref.influence(X[:3], y[:3]), rtol=1e-5
    )
    with pytest.raises(ValueError, match=r"y contains labels \['dog'\] unseen"):
        scorer.influence(X[:1], ["dog"])


def test_transform_dense_and_sparse_top_k(fitted):
    scorer, X, _ = fitted
    dense = scorer.transform(X[:5])
    np.testing.assert_array_equal(dense, scorer.influence(X[:5]))
    sparse_scorer = clone(scorer).set_params(top_k=3).fit(*fitted[1:])
    Xt = sparse_scorer.transform(X[:5])
    assert sp.issparse(Xt) and Xt.format == "csr" and Xt.shape == (5, len(X))
    assert np.all(np.diff(Xt.indptr) == 6)  # 3 proponents and 3 opponents
    for i, full in enumerate(dense):
        kept = Xt.indices[Xt.indptr[i] : Xt.indptr[i + 1]]
        expected = np.concatenate([np.argsort(-full)[:3], np.argsort(full)[:3]])
        assert set(kept) == set(expected)
        np.testing.assert_allclose(Xt[i].toarray()[0, kept], full[kept], rtol=1e-12)


def test_predict_proba_score_are_delegated(fitted):
    scorer, X, y = fitted
    est = scorer.estimator_
    np.testing.assert_array_equal(scorer.predict(X), est.predict(X))
    np.testing.assert_array_equal(scorer.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(scorer.decision_function(X), est.decision_function(X))
    assert scorer.score(X, y) == est.score(X, y)


def test_influence_without_y_uses_predicted_labels(fitted):
    scorer, X, y = fitted
    pred = scorer.predict(X)
    wrong = np.flatnonzero(pred != y)
    assert len(wrong) > 0  # so the test tells labels and predictions apart
    rows = np.r_[wrong[:3], 0, 1]
    Xq = X[rows]
    by_pred = scorer.influence(Xq, pred[rows])
    np.testing.assert_array_equal(scorer.influence(Xq), by_pred)
    assert not np.allclose(by_pred, scorer.influence(Xq, y[rows]))
    np.testing.assert_array_equal(
        scorer.self_influence(Xq), scorer.self_influence(Xq, pred[rows])
    )


def test_aggregate_sums_over_query_rows(fitted):
    scorer, X, y = fitted
    full = scorer.influence(X[:10], y[:10])
    total = scorer.influence(X[:10], y[:10], aggregate=True)
    assert total.shape == (len(X),)
    np.testing.assert_allclose(total, full.sum(0), rtol=1e-10, atol=1e-12)


def test_self_influence_defaults_to_training_rows_and_is_a_copy(fitted):
    scorer, X, y = fitted
    values = scorer.self_influence()
    np.testing.assert_array_equal(values, scorer.self_influence_)
    values[:] = 0
    assert np.any(scorer.self_influence_ != 0)
    np.testing.assert_allclose(
        scorer.self_influence(X, y), scorer.self_influence_, rtol=1e-10
    )


# ------------------------------------------------------------- bad input
def _snapshot(X, y, est):
    return (
        None if X is None else np.array(X, copy=True),
        None if y is None else np.array(y, copy=True),
        joblib.hash(est),
    )


def _assert_unchanged(snapshot, X, y, est):
    X0, y0, h = snapshot
    if X0 is not None:
        np.testing.assert_array_equal(np.asarray(X), X0, strict=True)
    if y0 is not None:
        np.testing.assert_array_equal(np.asarray(y), y0, strict=True)
    assert joblib.hash(est) == h


X_OK, Y_OK = _data()
X_NAN = X_OK.copy()
X_NAN[3, 1] = np.nan
X_INF = X_OK.copy()
X_INF[5, 0] = np.inf

FIT_ERRORS = {
    "nan-in-X": (dict(), X_NAN, Y_OK, ValueError, "Input X contains NaN"),
    "inf-in-X": (dict(), X_INF, Y_OK, ValueError, "Input X contains infinity"),
    "X-1d": (dict(), X_OK[:, 0], Y_OK, ValueError, r"X must be 2-D .*shape \(60,\)"),
    "X-3d": (dict(), X_OK[:, :, None], Y_OK, ValueError, "X must be 2-D"),
    "y-length": (dict(), X_OK, Y_OK[:-1], ValueError, "y has 59 rows but X has 60"),
    "single-class": (
        dict(),
        X_OK,
        np.zeros(60, dtype=int),
        ValueError,
        r"y has 1 class \(.*0.*\).*two or more classes",
    ),
    "unknown-method": (
        dict(method="tracn"),
        X_OK,
        Y_OK,
        ValueError,
        r"method='tracn' is not a known method",
    ),
    "estimator-string": (
        dict(estimator="LogisticRegression"),
        X_OK,
        Y_OK,
        ValueError,
        r"'estimator' parameter.*Got 'LogisticRegression'",
    ),
    "objective-type": (
        dict(objective=3),
        X_OK,
        Y_OK,
        ValueError,
        r"'objective' parameter.*Got 3",
    ),
    "method-type": (
        dict(method=3),
        X_OK,
        Y_OK,
        ValueError,
        r"'method' parameter.*Got 3",
    ),
    "negative-damping": (
        dict(method=InfluenceFunction(damping=-1.0)),
        X_OK,
        Y_OK,
        ValueError,
        r"'damping' parameter.*\[0.0, inf\).*Got -1.0",
    ),
    "batch-size": (
        dict(batch_size=0),
        X_OK,
        Y_OK,
        ValueError,
        r"'batch_size' parameter.*\[1, inf\).*Got 0 ",
    ),
    "unsupported-estimator": (
        dict(estimator=RandomForestClassifier(n_estimators=2)),
        X_OK,
        Y_OK,
        TypeError,
        "RandomForestClassifier is not supported.*final_estimator",
    ),
    "dtype": (dict(dtype="float16"), X_OK, Y_OK, ValueError, "'dtype' parameter"),
}


@pytest.mark.parametrize("case", list(FIT_ERRORS))
def test_bad_input_to_fit_names_the_parameter_and_mutates_nothing(case):
    params, X, y, error, match = FIT_ERRORS[case]
    est = params.pop("estimator", LogisticRegression())
    scorer = InfluenceScorer(est, **params)
    snapshot = _snapshot(X, y, est)
    scorer_params = joblib.hash(scorer.get_params())
    with pytest.raises(error, match=match):
        scorer.fit(X, y)
    _assert_unchanged(snapshot, X, y, est)
    assert joblib.hash(scorer.get_params()) == scorer_params


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_value_error_that_says_the_fix():
    with pytest.raises(ValueError, match=r"device='cuda'.*not available.*'auto'"):
        InfluenceScorer(LogisticRegression(), device="cuda").fit(X_OK, Y_OK)


def test_successful_fit_and_queries_mutate_nothing():
    X, y = _data()
    est = LogisticRegression()
    snapshot = _snapshot(X, y, est)
    scorer = InfluenceScorer(est, method="influence_function").fit(X, y)
    scorer.influence(X[:5], y[:5])
    scorer.influence(X[:5])
    scorer.self_influence(X[:5], y[:5])
    scorer.transform(X[:5])
    _assert_unchanged(snapshot, X, y, est)
    assert not hasattr(est, "coef_")


def test_unfitted_scorer_queried_raises_not_fitted():
    scorer = InfluenceScorer(LogisticRegression())
    for call in (
        lambda: scorer.influence(X_OK),
        lambda: scorer.self_influence(),
        lambda: scorer.transform(X_OK),
        lambda: scorer.predict(X_OK),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet.*fit"):
            call()


QUERY_ERRORS = {
    "n-features": (X_OK[:, :3], None, "X has 3 features, but InfluenceScorer is"),
    "X-1d": (X_OK[0], None, "X must be 2-D"),
    "nan-in-X": (X_NAN, None, "Input X contains NaN"),
    "y-length": (X_OK[:5], Y_OK[:4], "y has 4 rows but X has 5"),
    "unseen-label": (X_OK[:2], [0, 7], r"y contains labels \[7\] unseen"),
}


@pytest.mark.parametrize("case", list(QUERY_ERRORS))
def test_bad_query_names_the_parameter_and_mutates_nothing(fitted, case):
    scorer, _, _ = fitted
    X, y, match = QUERY_ERRORS[case]
    snapshot = _snapshot(X, y, None)
    with pytest.raises(ValueError, match=match):
        scorer.influence(X, y)
    _assert_unchanged(snapshot, X, y, None)


def test_method_objects_are_cloned_not_fitted_in_place():
    X, y = _data()
    method = TracIn()
    scorer = InfluenceScorer(LogisticRegression(), method=method).fit(X, y)
    assert scorer.method_ is not method
    assert not hasattr(method, "param_sets_")


def test_skorch_net_is_fitted_on_every_row_and_not_mutated():
    from skorch import NeuralNetClassifier

    X, y = _data(n_classes=3)
    net = NeuralNetClassifier(
        nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)),
        criterion=nn.CrossEntropyLoss,
        max_epochs=2,
        verbose=0,
    )
    split = net.train_split
    scorer = InfluenceScorer(net, random_state=0).fit(X.astype(np.float32), y)
    assert net.train_split is split and not hasattr(net, "module_")
    assert scorer.estimator_.train_split is None
    # One column per row the caller passed, all of them trained on.
    assert scorer.influence(X[:2], y[:2]).shape == (2, len(X))
    assert scorer.self_influence_.shape == (len(X),)


def test_a_method_registered_after_import_is_accepted_by_name():
    from skinfluence.methods import METHODS, register_method
    from skinfluence.methods._registry import METHODS as registry

    class Doubled(TracIn):
        def _scale(self, ctx):
            return 2.0

    register_method("doubled_tracin", Doubled)
    try:
        X, y = _data()
        est = LogisticRegression()
        base = InfluenceScorer(est, method="tracin").fit(X, y).influence(X[:3], y[:3])
        got = InfluenceScorer(est, method="doubled_tracin").fit(X, y)
        assert isinstance(got.method_, Doubled)
        np.testing.assert_allclose(got.influence(X[:3], y[:3]), 2 * base, rtol=1e-6)
    finally:
        del registry["doubled_tracin"]
    assert "doubled_tracin" not in METHODS


def test_features_are_the_last_linear_layers_input():
    X, y = _data()
    net = nn.Sequential(nn.Linear(4, 7), nn.Tanh(), nn.Linear(7, 2))
    scorer = InfluenceScorer(net, dtype="float64", random_state=0).fit(X, y)
    module = scorer.estimator_.module_
    with torch.no_grad():
        expected = module[1](module[0](torch.tensor(X, dtype=torch.float32)))
    got = scorer.features(X)
    assert got.shape == (60, 7)
    assert scorer.n_train_ == 60
    np.testing.assert_allclose(got, expected.double().numpy(), rtol=1e-5, atol=1e-6)
    # A linear model's penultimate space is its input.
    lin = InfluenceScorer(LogisticRegression(), dtype="float64").fit(X, y)
    np.testing.assert_array_equal(lin.features(X), X)
    with pytest.raises(ValueError, match="features"):
        lin.features(X[:, :3])


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(method__damping=0.1), r"method__damping.*method='influence_function'"),
        (dict(method__solver__tol=1e-3), r"solver__tol.*solver='exact'"),
    ],
)
def test_settings_of_a_component_given_by_name_say_to_pass_an_object(params, match):
    # What GridSearchCV does with param_grid={"method__damping": [...]}.
    scorer = InfluenceScorer(LogisticRegression(), method="influence_function")
    if "method__solver__tol" in params:
        scorer.set_params(method=InfluenceFunction())
    with pytest.raises(ValueError, match=match + ".*as an object"):
        scorer.set_params(**params)
    # Passing the object, with or without its name in the same call, works.
    scorer.set_params(
        method=InfluenceFunction(solver=CGSolver()), method__solver__tol=1
    )
    assert scorer.method.solver.tol == 1
    scorer.set_params(method=InfluenceFunction(), method__damping=0.1)
    assert scorer.method.damping == 0.1


def test_sample_weight_for_the_default_network_is_refused_with_the_fix():
    X, y = _data()
    with pytest.raises(TypeError, match="sample_weight.*skorch"):
        InfluenceScorer().fit(X, y, sample_weight=np.ones(len(y)))


def test_pandas_output_in_a_pipeline_names_the_training_rows():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    frame = pd.DataFrame(X, columns=list("abcd"), index=np.arange(60) + 100)
    pipe = make_pipeline(StandardScaler(), InfluenceScorer(LogisticRegression()))
    pipe.set_output(transform="pandas").fit(frame, y)
    out = pipe.transform(frame.iloc[:3])
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == [100, 101, 102]
    assert list(out.columns[:2]) == ["train_row0", "train_row1"]
    assert out.shape == (3, 60)
    plain = make_pipeline(StandardScaler(), InfluenceScorer(LogisticRegression()))
    ref = plain.fit(X, y).transform(X[:3])
    np.testing.assert_allclose(out.to_numpy(), ref, rtol=1e-5, atol=1e-7)


def test_the_default_classifier_warns_on_a_target_that_looks_numeric():
    # load_diabetes-like: whole-number targets with many one-row values.
    from skinfluence.exceptions import SkinfluenceWarning

    rng = np.random.default_rng(0)
    X = rng.normal(size=(442, 3))
    y = rng.integers(25, 250, size=442).astype(float)
    with pytest.warns(SkinfluenceWarning, match="distinct values.*regression"):
        InfluenceScorer(memory_budget=2**24).fit(X, y)
    # Class labels, even many of them, are left alone.
    X2, y2 = _data(n=200, n_classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkinfluenceWarning)
        InfluenceScorer(LogisticRegression()).fit(X2, y2 + 100)


def test_sparse_input_says_how_to_make_a_pipeline_dense():
    from skinfluence import InfluentialSubsetSelector, NoisyLabelFilter

    X, y = _data()
    Xs = sp.csr_matrix(X)
    for est in (
        InfluenceScorer(LogisticRegression()),
        NoisyLabelFilter(LogisticRegression()),
        InfluentialSubsetSelector(LogisticRegression()),
    ):
        with pytest.raises(TypeError, match=r"sparse.*toarray.*sparse_output=False"):
            est.fit(Xs, y)
    scorer = InfluenceScorer(LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match=r"sparse.*toarray"):
        scorer.influence(Xs[:2], y[:2])


def test_a_frozen_model_fitted_on_a_frame_predicts_without_warnings():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    frame = pd.DataFrame(X, columns=list("abcd"))
    fitted = LogisticRegression().fit(frame, y)
    scorer = InfluenceScorer(FrozenEstimator(fitted)).fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        pred = scorer.predict(frame)
        proba = scorer.predict_proba(frame)
        dec = scorer.decision_function(frame)
    np.testing.assert_array_equal(pred, fitted.predict(frame))
    np.testing.assert_allclose(proba, fitted.predict_proba(frame))
    np.testing.assert_allclose(dec, fitted.decision_function(frame))


def test_unscaled_features_for_the_default_network_are_said():
    from skinfluence.exceptions import SkinfluenceWarning

    X, y = _data()
    with pytest.warns(SkinfluenceWarning, match="column 2 .*StandardScaler"):
        InfluenceScorer().fit(X * np.array([1, 1, 500, 1]), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkinfluenceWarning)
        InfluenceScorer(LogisticRegression()).fit(X * 500, y)

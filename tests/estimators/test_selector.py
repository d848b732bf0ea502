import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import skinfluence
from skinfluence import InfluenceScorer, InfluentialSubsetSelector
from skinfluence.datasets import load_noisy
from skinfluence.exceptions import SkinfluenceWarning


@pytest.fixture(scope="module")
def cancer():
    d = load_noisy("breast_cancer", rate=0.2, test_size=0.3, random_state=0)
    return d


@pytest.mark.slow
def test_dropping_harmful_rows_lowers_validation_loss_on_retraining(cancer):
    # Independent check: actual retraining without the dropped rows.
    X, y = cancer.data, cancer.target
    Xv, yv = cancer.data_test, cancer.target_test
    sel = InfluentialSubsetSelector(
        LogisticRegression(),
        method="influence_function",
        objective="loss",
        strategy="keep_helpful",
        n_select=len(y) - 20,
        dtype="float64",
        random_state=0,
    ).fit(X, y, X_val=Xv, y_val=yv)
    before = log_loss(yv, LogisticRegression().fit(X, y).predict_proba(Xv))
    idx = sel.sample_indices_
    after = log_loss(yv, LogisticRegression().fit(X[idx], y[idx]).predict_proba(Xv))
    rng = np.random.default_rng(0)
    rand = rng.choice(len(y), len(y) - 20, replace=False)
    random_after = log_loss(
        yv, LogisticRegression().fit(X[rand], y[rand]).predict_proba(Xv)
    )
    assert after < before and after < random_after
    # The scores are the scorer's influence on the summed validation loss.
    ref = (
        InfluenceScorer(
            LogisticRegression(), method="influence_function", dtype="float64"
        )
        .fit(X, y)
        .influence(Xv, yv, aggregate=True)
    )
    np.testing.assert_allclose(sel.influence_scores_, ref, rtol=1e-6, atol=1e-10)


def test_budget_and_strategies(cancer):
    X, y = cancer.data, cancer.target
    keep = InfluentialSubsetSelector(
        LogisticRegression(),
        strategy="keep_helpful",
        fraction=0.75,
        cv=None,
        random_state=0,
    )
    Xk, yk = keep.fit_resample(X, y)
    assert len(yk) == round(0.75 * len(y))
    val = keep.validation_indices_
    assert np.isin(val, keep.sample_indices_).all()
    assert np.isnan(keep.influence_scores_[val]).all()
    dropped = np.setdiff1d(np.arange(len(y)), keep.sample_indices_)
    scored_kept = np.setdiff1d(keep.sample_indices_, val)
    assert (
        keep.influence_scores_[dropped].max()
        <= keep.influence_scores_[scored_kept].min()
    )

    drop = InfluentialSubsetSelector(
        LogisticRegression(), fraction=0.5, validate_drop=False, random_state=0
    ).fit_resample(X, y)
    sel = InfluentialSubsetSelector(
        LogisticRegression(), fraction=0.5, validate_drop=False, random_state=0
    )
    sel.fit_resample(X, y)
    dropped = np.setdiff1d(np.arange(len(y)), sel.sample_indices_)
    assert (sel.influence_scores_[dropped] < 0).all()
    assert len(drop[1]) >= round(0.5 * len(y))

    rw = InfluentialSubsetSelector(LogisticRegression(), strategy="reweight", cv=3)
    Xr, yr = rw.fit_resample(X, y)
    assert len(yr) == len(y)
    s = rw.influence_scores_
    z = (s - s.mean()) / s.std()
    expected = np.exp(2 * z)
    np.testing.assert_allclose(rw.sample_weight_, expected / expected.mean())


def test_reweight_passes_weights_to_final_estimator(cancer):
    X, y = cancer.data, cancer.target
    w = np.full(len(y), 2.0)
    sel = InfluentialSubsetSelector(
        LogisticRegression(),
        strategy="reweight",
        cv=3,
        final_estimator=LogisticRegression(),
        random_state=0,
    ).fit(X, y, sample_weight=w)
    ref = LogisticRegression().fit(X, y, sample_weight=2.0 * sel.sample_weight_)
    np.testing.assert_allclose(sel.final_estimator_.coef_, ref.coef_)


def test_sample_weight_resampled_with_rows(cancer):
    X, y = cancer.data, cancer.target
    w = np.linspace(0.5, 2, len(y))
    sel = InfluentialSubsetSelector(
        LogisticRegression(), final_estimator=LogisticRegression(), random_state=0
    ).fit(X, y, sample_weight=w)
    idx = sel.sample_indices_
    ref = LogisticRegression().fit(X[idx], y[idx], sample_weight=w[idx])
    np.testing.assert_allclose(sel.final_estimator_.coef_, ref.coef_)


@pytest.mark.parametrize(
    "kwargs, fit_kw, match",
    [
        (dict(n_select=10_000), {}, "n_select=10000 is larger"),
        (dict(n_select=0), {}, "n_select"),
        (dict(fraction=1.0), {}, "fraction"),
        (dict(validation_fraction=0.005, cv=None), {}, "validation_fraction=0.005"),
        (dict(final_estimator=3), {}, "final_estimator"),
        ({}, dict(sample_weight=[1.0]), "sample_weight has 1 entries"),
        ({}, dict(X_val=np.zeros((2, 30))), "both X_val and y_val"),
    ],
)
def test_bad_input(cancer, kwargs, fit_kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        InfluentialSubsetSelector(LogisticRegression(), **kwargs).fit(
            cancer.data, cancer.target, **fit_kw
        )


@pytest.mark.slow
def test_pipelines_grid_search_clone_pickle(cancer):
    from imblearn.pipeline import Pipeline as ImbPipeline

    X, y = cancer.data, cancer.target
    imb = ImbPipeline(
        [
            ("sel", InfluentialSubsetSelector(LogisticRegression(), random_state=0)),
            ("clf", LogisticRegression()),
        ]
    ).fit(X, y)
    kept = imb.named_steps["sel"].sample_indices_
    np.testing.assert_allclose(
        imb.named_steps["clf"].coef_, LogisticRegression().fit(X[kept], y[kept]).coef_
    )
    meta = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "sel",
                InfluentialSubsetSelector(
                    LogisticRegression(),
                    final_estimator=LogisticRegression(),
                    random_state=0,
                ),
            ),
        ]
    )
    # Scored against noisy labels (20% flipped), so the ceiling is about 0.8.
    assert cross_val_score(meta, X, y, cv=3).mean() > 0.7
    grid = GridSearchCV(
        meta,
        {
            "sel__fraction": [0.8, 0.95],
            "sel__estimator": [LogisticRegression(C=0.1), LogisticRegression()],
        },
        cv=2,
    ).fit(X, y)
    fitted = grid.best_estimator_
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    assert not hasattr(clone(meta)[-1], "influence_scores_")


@pytest.mark.skipif(
    "demographic_parity" not in skinfluence.objectives.OBJECTIVES,
    reason="needs the demographic_parity objective",
)
def test_demographic_parity_selection_reduces_gap():
    from skinfluence.datasets import make_fairness_problem

    X, y, s = make_fairness_problem(1200, random_state=0)
    tr, te = np.arange(800), np.arange(800, 1200)

    def gap(model):
        p = model.predict_proba(X[te])[:, 1]
        return p[s[te] == 1].mean() - p[s[te] == 0].mean()

    base = gap(LogisticRegression().fit(X[tr], y[tr]))
    sel = InfluentialSubsetSelector(
        LogisticRegression(),
        objective="demographic_parity",
        final_estimator=LogisticRegression(),
        fraction=0.95,
        strategy="keep_helpful",
        random_state=0,
    ).fit(X[tr], y[tr], sensitive_features=s[tr])
    assert abs(gap(sel.final_estimator_)) < abs(base)


def test_fraction_counts_all_rows_in_the_held_out_mode(cancer):
    X, y = cancer.data, cancer.target
    sel = InfluentialSubsetSelector(
        LogisticRegression(),
        strategy="keep_helpful",
        fraction=0.1,
        cv=None,
        random_state=0,
    ).fit_resample(X, y)
    assert len(sel[1]) == round(0.1 * len(y))


def _blobs(flip, seed=0):
    from sklearn.datasets import make_blobs

    X, y = make_blobs(300, centers=3, n_features=4, cluster_std=1.0, random_state=seed)
    rng = np.random.default_rng(seed)
    noisy = np.zeros(len(y), dtype=bool)
    noisy[rng.choice(len(y), int(flip * len(y)), replace=False)] = True
    y = np.where(noisy, (y + 1) % 3, y)
    return X, y, noisy


def test_validated_drop_keeps_every_row_when_dropping_does_not_help():
    # Separated classes, clean labels: every refit classifies the validation
    # rows alike, so no drop is significantly better and none is made.
    X, y, _ = _blobs(0.0)
    sel = InfluentialSubsetSelector(LogisticRegression(), random_state=0)
    sel.fit_resample(X, y)
    assert (sel.influence_scores_ < 0).sum() > 0
    assert len(sel.sample_indices_) == len(y)
    assert sel.drop_validation_["gain"].max() <= 0


def test_validated_drop_matches_a_plain_refit_loop(cancer):
    from sklearn.model_selection import KFold

    X, y, noisy = cancer.data, cancer.target, cancer.is_noisy
    cv = KFold(3, shuffle=True, random_state=1)
    sel = InfluentialSubsetSelector(
        LogisticRegression(),
        cv=cv,
        final_estimator=LogisticRegression(),
        dtype="float64",
        random_state=0,
    ).fit(X, y)
    folds = list(cv.split(X, y))
    n, budget = len(y), len(y) - round(0.9 * len(y))
    # Each fold's influence on its validation rows' trimmed loss, by hand.
    S = np.full((3, n), np.nan)
    for f, (tr, va) in enumerate(folds):
        scorer = InfluenceScorer(
            LogisticRegression(),
            objective=skinfluence.LossObjective(trim=0.1),
            dtype="float64",
        ).fit(X[tr], y[tr])
        S[f, tr] = scorer.influence(X[va], y[va], aggregate=True)
    np.testing.assert_allclose(sel.influence_scores_, np.nanmean(S, axis=0))
    gains, discordant = [0], [0]
    for share in (0.25, 0.5, 1.0):
        better = worse = 0
        for f, (tr, va) in enumerate(folds):
            m = np.nanmean(np.delete(S, f, axis=0), axis=0)[tr]
            k = round(share * budget * len(tr) / n)
            drop = [i for i in np.argsort(m, kind="stable")[:k] if m[i] < 0]
            keep = np.delete(tr, drop)
            e0 = LogisticRegression().fit(X[tr], y[tr]).predict(X[va]) != y[va]
            e1 = LogisticRegression().fit(X[keep], y[keep]).predict(X[va]) != y[va]
            better += int(np.sum(e1 < e0))
            worse += int(np.sum(e1 > e0))
        gains.append(better - worse)
        discordant.append(better + worse)
    np.testing.assert_array_equal(sel.drop_validation_["gain"], gains)
    np.testing.assert_array_equal(sel.drop_validation_["discordant"], discordant)
    # Dropping is significantly better here, and the rows dropped are the
    # most harmful ones, mostly the flipped ones.
    dropped = np.setdiff1d(np.arange(n), sel.sample_indices_)
    assert len(dropped) > 0
    assert noisy[dropped].mean() > 0.8


def test_a_regressor_on_integer_targets_is_not_stratified():
    # Integer-valued targets of a regressor (counts, scores) are not classes:
    # they are neither stratified nor protected from vanishing.
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkinfluenceWarning)
        sel = InfluentialSubsetSelector(Ridge(), random_state=0).fit(X, y)
    assert sel.drop_validation_ is not None  # cross-fitted, not in-sample


def test_shape_errors_name_x_and_y(cancer):
    sel = InfluentialSubsetSelector(LogisticRegression())
    with pytest.raises(ValueError, match="X must be 2-D"):
        sel.fit_resample(cancer.data[:, 0], cancer.target)
    n = len(cancer.target)
    with pytest.raises(ValueError, match=f"y has {n - 1} rows but X has {n}"):
        sel.fit_resample(cancer.data, cancer.target[:-1])


def test_unscaled_features_for_the_default_network_are_said_once(cancer):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InfluentialSubsetSelector(cv=2, random_state=0).fit(
            cancer.data * 1000, cancer.target
        )
    said = [w for w in caught if "root mean square" in str(w.message)]
    assert len(said) == 1 and "InfluentialSubsetSelector" in str(said[0].message)


def test_a_continuous_target_for_the_default_network_says_to_pass_a_regressor():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5]
    with pytest.raises(
        ValueError, match=r"estimator=None.*default_estimator\('regression'"
    ):
        InfluentialSubsetSelector().fit(X, y)


def test_imbalanced_classes_survive_the_validated_drop():
    # The refits that check a drop must not lose the minority class either
    # (a fold's most harmful rows can be all of it).
    from sklearn.datasets import make_classification

    X, y = make_classification(200, 5, weights=[0.95], flip_y=0, random_state=0)
    for est in (LogisticRegression(), None):
        sel = InfluentialSubsetSelector(est, random_state=0).fit(X, y)
        assert set(y[sel.sample_indices_]) == {0, 1}
        assert sel.drop_validation_ is not None


def test_a_whole_number_target_for_the_default_network_is_said():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)  # 214 distinct whole numbers
    with pytest.warns(SkinfluenceWarning, match="distinct values.*regression"):
        InfluentialSubsetSelector(cv=2, validate_drop=False, random_state=0).fit(
            X[:200], y[:200]
        )


def test_a_frozen_model_without_x_val_is_said_to_judge_in_sample(cancer):
    from sklearn.frozen import FrozenEstimator

    X, y = cancer.data, cancer.target
    fitted = LogisticRegression().fit(X, y)
    with pytest.warns(SkinfluenceWarning, match="FrozenEstimator.*X_val"):
        InfluentialSubsetSelector(FrozenEstimator(fitted)).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkinfluenceWarning)
        InfluentialSubsetSelector(FrozenEstimator(fitted)).fit(
            X, y, X_val=cancer.data_test, y_val=cancer.target_test
        )


def test_the_validated_drop_refits_do_not_fit_the_influence_method(cancer, monkeypatch):
    # Only the refitted models' predictions are compared, and those do not
    # depend on the method: one method fit per fold, none per refit.
    from skinfluence import InfluenceFunction

    calls = []
    real = InfluenceFunction.fit

    def counting(self, ctx):
        calls.append(ctx.n_train)
        return real(self, ctx)

    monkeypatch.setattr(InfluenceFunction, "fit", counting)
    sel = InfluentialSubsetSelector(
        LogisticRegression(), method="influence_function", cv=2, random_state=0
    ).fit(cancer.data, cancer.target)
    assert sel.drop_validation_ is not None
    assert len(calls) == 2

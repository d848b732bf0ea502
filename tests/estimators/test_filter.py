import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import average_precision_score
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    cross_val_predict,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import NoisyLabelFilter
from skinfluence.datasets import load_noisy
from skinfluence.exceptions import SkinfluenceWarning


@pytest.fixture(scope="module")
def wine():
    return load_noisy("wine", rate=0.15, random_state=0)


def lr(**kw):
    return LogisticRegression(C=0.1, **kw)


def test_detects_flipped_rows(wine):
    filt = NoisyLabelFilter(lr(), random_state=0)
    X_k, y_k = filt.fit_resample(wine.data, wine.target)
    assert average_precision_score(wine.is_noisy, filt.noise_scores_) > 0.9
    assert len(X_k) == len(y_k) == len(filt.sample_indices_)
    np.testing.assert_array_equal(
        filt.sample_indices_, np.flatnonzero(~filt.label_issues_)
    )
    # Dropping the flagged rows leaves a cleaner set than the input.
    assert wine.is_noisy[filt.sample_indices_].mean() < 0.5 * wine.is_noisy.mean()


def _margin(P, y_idx):
    """(1 + best other class - given class) / 2, by a plain loop."""
    out = np.empty(len(y_idx))
    for i, (row, c) in enumerate(zip(P, y_idx)):
        best = max(p for j, p in enumerate(row) if j != c)
        out[i] = (1 + best - row[c]) / 2
    return out


def _transition(P, y_idx):
    """Noise transition T[true, given] by plain loops: the confident joint,
    each given label's row calibrated to its count, one pseudo-row per cell,
    normalised over the given labels."""
    k = P.shape[1]
    thresholds = [
        np.mean([P[i, j] for i in range(len(P)) if y_idx[i] == j]) for j in range(k)
    ]
    joint = np.zeros((k, k))  # [given, true]
    for row, c in zip(P, y_idx):
        confident = [j for j in range(k) if row[j] >= thresholds[j]]
        if confident:
            joint[c, max(confident, key=lambda j: row[j])] += 1
    for c in range(k):
        if joint[c].sum() > 0:
            joint[c] *= np.sum(y_idx == c) / joint[c].sum()
    T = joint.T + 1.0
    return T / T.sum(axis=1, keepdims=True)


def _score(P, y_idx, weight=0.25):
    """The default noise score by plain loops: (1 - weight) margin + weight
    posterior of a wrong label under the estimated transition."""
    T = _transition(P, y_idx)
    out = _margin(P, y_idx) * (1 - weight)
    for i, (row, c) in enumerate(zip(P, y_idx)):
        w = [row[j] * T[j, c] for j in range(len(row))]
        out[i] += weight * (1 - w[c] / sum(w))
    return out


def test_cross_fitted_proba_matches_cross_val_predict(wine):
    # Independent reference: scikit-learn's own out-of-fold probabilities.
    cv = KFold(4, shuffle=True, random_state=2)
    filt = NoisyLabelFilter(lr(), cv=cv, signals=["proba"], dtype="float64")
    filt.fit_resample(wine.data, wine.target)
    ref = cross_val_predict(lr(), wine.data, wine.target, cv=cv, method="predict_proba")
    y_idx = np.searchsorted(np.unique(wine.target), wine.target)
    np.testing.assert_allclose(filt.predicted_proba_, ref, atol=1e-10)
    np.testing.assert_allclose(filt.noise_scores_, _score(ref, y_idx), atol=1e-10)
    auto = ref.argmax(axis=1) != y_idx
    np.testing.assert_array_equal(filt.label_issues_, auto)


def _reference_influence_vote(X_tr, y_tr, X_q, k, temperature, exclude=None):
    """The influence vote from closed-form float64 gradients of multinomial
    logistic regression: the loss gradient of row (x, c) w.r.t. [W | b] is
    (p(x) - e_c) outer [x, 1]."""
    model = lr().fit(X_tr, y_tr)
    n_classes = len(model.classes_)
    A_tr = np.c_[X_tr, np.ones(len(X_tr))]
    G_tr = np.stack(
        [
            np.outer(p - np.eye(n_classes)[c], a).ravel()
            for p, c, a in zip(model.predict_proba(X_tr), y_tr, A_tr)
        ]
    )
    votes = []
    for i, (p, a) in enumerate(
        zip(model.predict_proba(X_q), np.c_[X_q, np.ones(len(X_q))])
    ):
        support = []
        for c in range(n_classes):
            g = np.outer(p - np.eye(n_classes)[c], a).ravel()
            cos = [
                g @ G_tr[j] / np.sqrt((g @ g) * (G_tr[j] @ G_tr[j]))
                for j in range(len(G_tr))
                if exclude is None or j != exclude[i]
            ]
            support.append(np.mean(sorted(cos)[-k:]))
        w = np.exp(np.array(support) / temperature)
        votes.append(w / w.sum())
    return np.array(votes)


@pytest.mark.parametrize("in_sample", [False, True])
def test_influence_vote_matches_closed_form_reference(wine, in_sample):
    X, y = wine.data[::3], wine.target[::3]
    cv = None if in_sample else KFold(3, shuffle=True, random_state=0)
    filt = NoisyLabelFilter(
        lr(),
        cv=cv,
        n_repeats=1,
        signals=["influence"],
        n_neighbors=4,
        temperature=0.2,
        sharpen_votes=False,
        dtype="float64",
    )
    filt.fit_resample(X, y)
    if in_sample:
        ref = _reference_influence_vote(X, y, X, 4, 0.2, exclude=np.arange(len(y)))
    else:
        ref = np.zeros_like(filt.predicted_proba_)
        for train, test in cv.split(X, y):
            ref[test] = _reference_influence_vote(X[train], y[train], X[test], 4, 0.2)
    np.testing.assert_allclose(filt.predicted_proba_, ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(filt.noise_scores_, _score(ref, y))


def test_influence_vote_of_a_network_uses_its_last_layer(wine):
    """In-sample vote of a frozen one-hidden-layer MLP against closed-form
    last-layer gradients (p - e_c) outer [relu(x W1 + b1), 1]."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import scale

    X, y = scale(wine.data[::3]), wine.target[::3]
    mlp = MLPClassifier((6,), max_iter=2000, random_state=0).fit(X, y)
    filt = NoisyLabelFilter(
        FrozenEstimator(mlp),
        cv=None,
        signals=["influence"],
        n_neighbors=3,
        temperature=0.3,
        sharpen_votes=False,
        dtype="float64",
    )
    filt.fit_resample(X, y)
    A = np.maximum(X @ mlp.coefs_[0] + mlp.intercepts_[0], 0)
    A = np.c_[A, np.ones(len(A))]
    P = mlp.predict_proba(X)
    eye = np.eye(3)
    G = np.stack([np.outer(P[j] - eye[y[j]], A[j]).ravel() for j in range(len(y))])
    ref = []
    for i in range(len(y)):
        support = []
        for c in range(3):
            g = np.outer(P[i] - eye[c], A[i]).ravel()
            cos = [
                g @ G[j] / np.sqrt((g @ g) * (G[j] @ G[j]))
                for j in range(len(y))
                if j != i
            ]
            support.append(np.mean(sorted(cos)[-3:]))
        w = np.exp(np.array(support) / 0.3)
        ref.append(w / w.sum())
    np.testing.assert_allclose(
        filt.predicted_proba_, np.array(ref), rtol=1e-6, atol=1e-9
    )


@pytest.mark.parametrize("signal", ["influence", "input_neighbors"])
def test_sharpened_vote_is_the_brier_best_power(wine, signal):
    """Each vote is raised to the power of {1/4, ..., 16} whose renormalised
    vote (after a 1e-3 uniform floor) has the lowest Brier score against the
    given labels; the reference is a plain loop over the powers."""
    X, y = wine.data[::2], wine.target[::2]
    common = dict(cv=3, n_repeats=1, signals=[signal], random_state=0)
    filt = NoisyLabelFilter(lr(), **common)
    filt.fit_resample(X, y)
    raw_filt = NoisyLabelFilter(lr(), sharpen_votes=False, **common)
    raw_filt.fit_resample(X, y)
    V = raw_filt.predicted_proba_
    best, best_score, best_Q = None, np.inf, None
    for power in [0.25, 0.5, 1, 2, 4, 8, 16]:
        Q = np.empty_like(V)
        for i in range(len(V)):
            row = ((1 - 1e-3) * V[i] + 1e-3 / 3) ** power
            Q[i] = row / row.sum()
        score = sum(
            sum((Q[i, c] - (c == y[i])) ** 2 for c in range(3)) for i in range(len(y))
        )
        if score < best_score:
            best, best_score, best_Q = power, score, Q
    assert filt.vote_sharpness_ == {signal: best}
    np.testing.assert_allclose(filt.predicted_proba_, best_Q, rtol=1e-10)
    np.testing.assert_allclose(filt.noise_scores_, _score(best_Q, y))
    assert raw_filt.vote_sharpness_ == {}


def test_proba_signal_is_not_sharpened(wine):
    common = dict(cv=3, n_repeats=1, signals=["proba"], random_state=0)
    a = NoisyLabelFilter(lr(), **common).fit(wine.data, wine.target)
    b = NoisyLabelFilter(lr(), sharpen_votes=False, **common).fit(
        wine.data, wine.target
    )
    np.testing.assert_array_equal(a.predicted_proba_, b.predicted_proba_)
    assert a.vote_sharpness_ == {}


def test_influence_vote_finds_flipped_rows(wine):
    filt = NoisyLabelFilter(lr(), signals=["influence"], n_repeats=1, random_state=0)
    filt.fit_resample(wine.data, wine.target)
    assert average_precision_score(wine.is_noisy, filt.noise_scores_) > 0.9


def test_float_contamination_flags_that_many_top_scores(wine):
    filt = NoisyLabelFilter(lr(), contamination=0.1, cv=3, random_state=0)
    filt.fit_resample(wine.data, wine.target)
    k = round(0.1 * len(wine.target))
    assert filt.label_issues_.sum() == k
    assert (
        filt.noise_scores_[filt.label_issues_].min()
        >= filt.noise_scores_[~filt.label_issues_].max()
    )


def test_confident_joint_count_by_hand():
    from skinfluence.estimators._noise_signals import confident_joint_count

    # Thresholds (mean probability of each class over its own labelled
    # rows): class 0 mean(0.9, 0.7, 0.2) = 0.6, class 1 mean(0.6, 0.4) = 0.5,
    # class 2 mean(1.0, 0.2) = 0.6.
    P = np.array(
        [
            [0.9, 0.1, 0.0],  # label 0; 0 reaches 0.6: diagonal
            [0.7, 0.3, 0.0],  # label 0; 0 reaches 0.6: diagonal
            [0.2, 0.8, 0.0],  # label 0; only 1 reaches 0.5: off-diagonal
            [0.1, 0.6, 0.3],  # label 1; only 1 reaches 0.5: diagonal
            [0.1, 0.4, 0.5],  # label 1; none reaches its threshold: not counted
            [0.0, 0.0, 1.0],  # label 2; 2 reaches 0.6: diagonal
            [0.5, 0.3, 0.2],  # label 2; none reaches its threshold: not counted
        ]
    )
    y = np.array([0, 0, 0, 1, 1, 2, 2])
    assert confident_joint_count(P, y) == 1
    # Row 6 with 0.65 for class 0 (threshold still 0.6; class 2's stays 0.6):
    # off-diagonal too.
    P[6] = [0.65, 0.15, 0.2]
    assert confident_joint_count(P, y) == 2
    # Row 4 with classes 1 and 2 both at their thresholds: the more probable
    # one (2) counts, so it is off-diagonal. Thresholds become class 1
    # mean(0.4, 0.45) = 0.425 and class 2 mean(0.8, 0.2) = 0.5; row 3 then
    # reaches none, row 5 stays diagonal.
    P[3] = [0.2, 0.4, 0.4]
    P[4] = [0.0, 0.45, 0.55]
    P[5] = [0.0, 0.2, 0.8]
    assert confident_joint_count(P, y) == 3


def test_confident_joint_contamination_flags_the_counted_number(wine):
    from skinfluence.estimators._noise_signals import confident_joint_count

    filt = NoisyLabelFilter(
        lr(), contamination="confident_joint", cv=3, n_repeats=1, random_state=0
    )
    filt.fit_resample(wine.data, wine.target)
    y_idx = np.searchsorted(filt.labels_, wine.target)
    k = confident_joint_count(filt.predicted_proba_, y_idx)
    assert 0 < filt.label_issues_.sum() == k
    assert (
        filt.noise_scores_[filt.label_issues_].min()
        >= filt.noise_scores_[~filt.label_issues_].max()
    )
    auto = (
        clone(filt)
        .set_params(contamination="auto")
        .fit_resample(wine.data, wine.target)
    )
    assert len(auto[1]) <= len(filt.sample_indices_)


def test_confident_joint_count_matches_cleanlab():
    count = pytest.importorskip("cleanlab.count")
    from skinfluence.estimators._noise_signals import confident_joint_count

    rng = np.random.default_rng(0)
    for n_classes in (2, 3, 5):
        y = rng.integers(0, n_classes, 300)
        logits = rng.normal(size=(300, n_classes)) + 2.0 * np.eye(n_classes)[y]
        flip = rng.random(300) < 0.2
        y[flip] = rng.integers(0, n_classes, flip.sum())
        P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        _, off = count.compute_confident_joint(
            y, P, calibrate=False, return_indices_of_off_diagonals=True
        )
        assert confident_joint_count(P, y) == len(off)


def test_in_sample_self_influence_signal(wine):
    filt = NoisyLabelFilter(
        lr(), cv=None, signals=["self_influence"], contamination=0.1
    )
    filt.fit_resample(wine.data, wine.target)
    assert average_precision_score(wine.is_noisy, filt.noise_scores_) > 0.5


def test_sample_weight_and_metadata_resampled_with_rows(wine):
    w = np.linspace(0.5, 2.0, len(wine.target))
    w_before = w.copy()
    X_before = wine.data.copy()
    filt = NoisyLabelFilter(
        lr(), final_estimator=LogisticRegression(), cv=3, random_state=0
    )
    filt.fit(wine.data, wine.target, sample_weight=w, sensitive_features=w > 1)
    idx = filt.sample_indices_
    ref = LogisticRegression().fit(
        wine.data[idx], wine.target[idx], sample_weight=w[idx]
    )
    np.testing.assert_allclose(filt.final_estimator_.coef_, ref.coef_)
    np.testing.assert_array_equal(w, w_before)
    np.testing.assert_array_equal(wine.data, X_before)
    assert filt.score(wine.data, wine.target) == ref.score(wine.data, wine.target)


def test_metadata_routing(wine):
    from sklearn import config_context

    w = np.linspace(0.5, 2.0, len(wine.target))
    with config_context(enable_metadata_routing=True):
        final = LogisticRegression().set_fit_request(sample_weight=True)
        filt = NoisyLabelFilter(lr(), final_estimator=final, cv=3, random_state=0)
        filt.set_fit_request(sample_weight=True)
        scaler = StandardScaler().set_fit_request(sample_weight=False)
        pipe = Pipeline([("scale", scaler), ("filt", filt)])
        pipe.fit(wine.data, wine.target, sample_weight=w)
    fitted = pipe[-1]
    idx = fitted.sample_indices_
    Xs = StandardScaler().fit_transform(wine.data)
    ref = LogisticRegression().fit(Xs[idx], wine.target[idx], sample_weight=w[idx])
    np.testing.assert_allclose(fitted.final_estimator_.coef_, ref.coef_)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(contamination=0.7), "contamination"),
        (dict(contamination=0.0), "contamination"),
        (dict(signals=["margin"]), "signals"),
        (dict(temperature=0.0), "temperature"),
        (dict(sharpen_votes="yes"), "sharpen_votes"),
        (dict(posterior_weight=1.5), "posterior_weight"),
        (dict(posterior_weight="posterior"), "posterior_weight"),
        (dict(final_estimator="tree"), "final_estimator"),
    ],
)
def test_bad_parameters(wine, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        NoisyLabelFilter(lr(), **kwargs).fit_resample(wine.data, wine.target)


def test_bad_metadata_length(wine):
    with pytest.raises(ValueError, match="sample_weight has 3 entries"):
        NoisyLabelFilter(lr()).fit(wine.data, wine.target, sample_weight=[1, 2, 3])
    with pytest.raises(ValueError, match="sensitive_features"):
        NoisyLabelFilter(lr()).fit_resample(
            wine.data, wine.target, sensitive_features=np.zeros(5)
        )


def test_vanishing_class_keeps_one_row():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    y[:3] = 2  # a tiny class the detector cannot learn
    filt = NoisyLabelFilter(LogisticRegression(), cv=None, contamination=0.5)
    with pytest.warns(SkinfluenceWarning, match="no class vanishes"):
        X_k, y_k = filt.fit_resample(X, y)
    assert set(np.unique(y_k)) == {0, 1, 2}


def test_refuses_to_drop_every_row():
    # Labels that are the exact opposite of a perfectly separable rule: every
    # in-sample row disagrees with the (regularised-away) model of its label.
    X = np.r_[np.zeros((10, 1)), np.ones((10, 1))]
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    filt = NoisyLabelFilter(LogisticRegression(C=1e-8), cv=None, signals=["neighbors"])
    filt.fit_resample(X, y)  # neighbours agree: nothing flagged
    assert not filt.label_issues_.any()
    X2 = np.arange(20.0)[:, None]
    y2 = np.arange(20) % 2  # alternating: every neighbour vote disagrees
    filt = NoisyLabelFilter(
        LogisticRegression(), cv=None, signals=["neighbors"], n_neighbors=2
    )
    with pytest.warns(SkinfluenceWarning, match="refusing"):
        X_k, y_k = filt.fit_resample(X2, y2)
    assert len(y_k) == 20


@pytest.mark.slow
def test_pipelines_grid_search_clone_pickle(wine):
    from imblearn.pipeline import Pipeline as ImbPipeline

    X, y = wine.data, wine.target
    imb = ImbPipeline(
        [
            ("filter", NoisyLabelFilter(lr(), cv=3, random_state=0)),
            ("clf", LogisticRegression()),
        ]
    ).fit(X, y)
    kept = imb.named_steps["filter"].sample_indices_
    ref = LogisticRegression().fit(X[kept], y[kept])
    np.testing.assert_allclose(imb.named_steps["clf"].coef_, ref.coef_)

    meta = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "filter",
                NoisyLabelFilter(
                    lr(),
                    cv=3,
                    final_estimator=RandomForestClassifier(20, random_state=0),
                    random_state=0,
                ),
            ),
        ]
    )
    scores = cross_val_score(meta, X, y, cv=3)
    assert scores.mean() > 0.8
    grid = GridSearchCV(
        meta,
        {
            "filter__contamination": ["auto", "confident_joint", 0.1],
            "filter__estimator": [lr(), LogisticRegression(C=1.0)],
        },
        cv=2,
    ).fit(X, y)
    assert set(grid.best_params_) == {"filter__contamination", "filter__estimator"}
    fitted = grid.best_estimator_
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    c = clone(meta)
    assert c.get_params()["filter__cv"] == 3 and not hasattr(c[-1], "noise_scores_")


@pytest.mark.slow
def test_default_detector_runs_on_small_data():
    d = load_noisy("iris", rate=0.1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        filt = NoisyLabelFilter(cv=3, random_state=0).fit(d.data, d.target)
    assert filt.noise_scores_.shape == (150,)
    assert average_precision_score(d.is_noisy, filt.noise_scores_) > 0.5


def test_posterior_under_symmetric_transition_ranks_like_given_probability():
    from scipy.stats import rankdata

    from skinfluence.estimators._noise_signals import label_error_posterior

    rng = np.random.default_rng(0)
    n, k, eps = 200, 4, 0.3
    P = rng.dirichlet(np.ones(k), size=n)
    y = rng.integers(0, k, n)
    T = np.full((k, k), eps / (k - 1)) + (1 - eps - eps / (k - 1)) * np.eye(k)
    post = label_error_posterior(P, y, T)
    np.testing.assert_array_equal(rankdata(post), rankdata(1 - P[np.arange(n), y]))
    # By hand for one row: sum_{j != y} P_j T[j, y] / sum_j P_j T[j, y].
    w = P[0] * T[:, y[0]]
    assert post[0] == pytest.approx(1 - w[y[0]] / w.sum())


def test_noise_transition_recovers_planted_pair_flips():
    from sklearn.datasets import make_blobs

    from skinfluence.datasets import make_noisy_labels

    centers = 6.0 * np.eye(4)
    X, y_true = make_blobs(800, centers=centers, cluster_std=1.0, random_state=0)
    y, flipped = make_noisy_labels(
        X, y_true, 0.2, kind="pairs", pairs=[(0, 1), (2, 3)], random_state=0
    )
    filt = NoisyLabelFilter(lr(), signals=["proba"], n_repeats=1, random_state=0)
    filt.fit(X, y)
    # The transition of this very sample: true class j labelled c.
    sample = np.array(
        [[np.mean(y[y_true == j] == c) for c in range(4)] for j in range(4)]
    )
    assert sample[0, 1] > 0.15 and sample[0, 2] == 0
    np.testing.assert_allclose(filt.noise_transition_.sum(axis=1), 1.0)
    np.testing.assert_allclose(filt.noise_transition_, sample, atol=0.04)
    assert average_precision_score(flipped, filt.noise_scores_) > 0.95


def test_posterior_weight_mixes_margin_and_posterior(wine):
    from skinfluence.estimators._noise_signals import (
        label_error_posterior,
        noise_transition,
    )

    common = dict(cv=3, n_repeats=1, signals=["proba"], random_state=0)
    y_idx = np.searchsorted(np.unique(wine.target), wine.target)
    fits = {
        w: NoisyLabelFilter(lr(), posterior_weight=w, **common).fit(
            wine.data, wine.target
        )
        for w in (0.0, 0.25, 1.0)
    }
    P = fits[0.0].predicted_proba_
    margin = _margin(P, y_idx)
    post = label_error_posterior(P, y_idx, noise_transition(P, y_idx))
    np.testing.assert_allclose(fits[0.0].noise_scores_, margin)
    np.testing.assert_allclose(fits[1.0].noise_scores_, post)
    np.testing.assert_allclose(fits[0.25].noise_scores_, 0.75 * margin + 0.25 * post)
    # "auto" is the Bayes decision on P whatever the weight.
    for filt in fits.values():
        np.testing.assert_array_equal(filt.label_issues_, P.argmax(axis=1) != y_idx)


def test_a_regressor_as_detector_is_refused_before_fitting():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.arange(40) % 4
    with pytest.raises(TypeError, match="estimator=Ridge.*classifier"):
        NoisyLabelFilter(Ridge()).fit_resample(X, y)


def test_shape_errors_name_x_and_y(wine):
    with pytest.raises(ValueError, match="X must be 2-D"):
        NoisyLabelFilter(lr()).fit_resample(wine.data[:, 0], wine.target)
    with pytest.raises(ValueError, match="y has 177 rows but X has 178"):
        NoisyLabelFilter(lr()).fit_resample(wine.data, wine.target[:-1])


def test_messages_name_the_callers_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.where(X[:, 0] > 0, "yes", "no").astype(object)
    y[:3] = "rare"
    filt = NoisyLabelFilter(LogisticRegression(), cv=None, contamination=0.5)
    with pytest.warns(SkinfluenceWarning, match=r"class\(es\) \['rare'\]"):
        filt.fit_resample(X, y)
    y[3:5] = "single"
    y[5] = "one"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NoisyLabelFilter(LogisticRegression(), n_repeats=3).fit(X, y)
    assert sum("too few for cv=5" in str(w.message) for w in caught) == 1
    with pytest.raises(ValueError, match=r"one class \('no'\)"):
        NoisyLabelFilter(lr()).fit_resample(X, np.full(60, "no", dtype=object))


def test_flagging_much_of_one_class_is_said(wine):
    # Clean, imbalanced labels: the held-out models prefer the majority
    # class for many rows of the minority one, which "auto" then flags.
    from sklearn.datasets import make_classification

    X, y = make_classification(1000, 5, weights=[0.95], flip_y=0, random_state=1)
    filt = NoisyLabelFilter(lr(), n_repeats=1, random_state=0)
    with pytest.warns(
        SkinfluenceWarning, match=r"of the 50 rows of class 1.*confident_joint"
    ):
        filt.fit_resample(X, y)
    share = filt.label_issues_[y == 1].mean()
    assert share > 0.3 and share > 2 * filt.label_issues_.mean()
    # Flags spread over the classes, as label noise spreads them, say nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkinfluenceWarning)
        NoisyLabelFilter(lr(), n_repeats=1, random_state=0).fit(wine.data, wine.target)


def test_verbose_shows_the_cross_fitting_progress(wine, capsys):
    NoisyLabelFilter(lr(), cv=3, n_repeats=2, random_state=0).fit(
        wine.data, wine.target
    )
    assert capsys.readouterr().err == ""
    NoisyLabelFilter(lr(), cv=3, n_repeats=2, verbose=1, random_state=0).fit(
        wine.data, wine.target
    )
    assert "cross-fitted detectors" in capsys.readouterr().err


def test_unscaled_features_for_the_default_network_are_said_once():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)  # proline in the hundreds
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NoisyLabelFilter(n_repeats=1, cv=2, random_state=0).fit(X, y)
    said = [w for w in caught if "root mean square" in str(w.message)]
    assert len(said) == 1 and "StandardScaler" in str(said[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkinfluenceWarning)
        NoisyLabelFilter(n_repeats=1, cv=2, random_state=0).fit(
            StandardScaler().fit_transform(X), y
        )
        NoisyLabelFilter(lr(), n_repeats=1, cv=2).fit(X, y)  # its own model

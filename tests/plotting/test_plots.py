"""skinfluence.plotting: what each figure draws, checked on its artists, and
the removal curve against a plain refitting loop."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

from skinfluence.plotting import (  # noqa: E402
    plot_influence_graph,
    plot_noise_scores,
    plot_precision_recall,
    plot_proponents_opponents,
    plot_removal_curve,
    removal_curve,
)


def new_ax():
    return Figure().subplots()


def test_noise_scores_histogram_and_cut():
    scores = np.linspace(0, 1, 101)
    flagged = scores > 0.8
    ax = new_ax()
    assert plot_noise_scores(scores, flagged, ax=ax) is ax
    kept = sum(p.get_height() for p in ax.containers[0])
    bad = sum(p.get_height() for p in ax.containers[1])
    assert (kept, bad) == (81, 20)
    cut = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(cut) == 1 and cut[0].get_xdata()[0] == pytest.approx(0.81)
    assert "20 flagged" in cut[0].get_label()


def test_noise_scores_split_by_truth():
    scores = np.arange(10.0)
    truth = np.arange(10) >= 7
    ax = plot_noise_scores(scores, scores > 5, is_noisy=truth, ax=new_ax())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["clean label", "wrong label"]
    assert sum(p.get_height() for p in ax.containers[1]) == 3


def test_noise_scores_bad_input():
    with pytest.raises(ValueError, match="finite"):
        plot_noise_scores([0.1, np.nan], ax=new_ax())
    with pytest.raises(ValueError, match="flagged has 1 entries"):
        plot_noise_scores([0.1, 0.2], [True], ax=new_ax())


def test_precision_recall_curve_and_operating_point():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    truth = rng.random(200) < 0.1
    scores = truth + rng.normal(scale=0.6, size=200)
    flagged = scores > 0.5
    ax = plot_precision_recall(truth, scores, flagged=flagged, ax=new_ax())
    labels = [line.get_label() for line in ax.get_lines()]
    ap = average_precision_score(truth, scores)
    assert f"ranking (AP {ap:.3f})" in labels
    point = next(line for line in ax.get_lines() if "flagged" in line.get_label())
    assert point.get_xdata()[0] == pytest.approx(truth[flagged].sum() / truth.sum())
    assert point.get_ydata()[0] == pytest.approx(truth[flagged].mean())
    with pytest.raises(ValueError, match="some rows True and some False"):
        plot_precision_recall(np.zeros(5, bool), np.arange(5.0), ax=new_ax())


def test_proponents_opponents_bars():
    infl = np.array([0.5, -0.2, 0.1, -0.7, 0.0, np.nan, 0.3])
    ax = plot_proponents_opponents(infl, y_train=list("abcdefg"), top=2, ax=new_ax())
    widths = [p.get_width() for p in ax.patches]
    assert widths == [-0.7, -0.2, 0.3, 0.5]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "row 3 (d)",
        "row 1 (b)",
        "row 6 (g)",
        "row 0 (a)",
    ]


def test_proponents_opponents_images():
    rng = np.random.default_rng(1)
    X = rng.random((30, 16))
    infl = rng.normal(size=30)
    ax = plot_proponents_opponents(
        infl,
        X_train=X,
        image_shape=(4, 4),
        query=X[0],
        query_label=1,
        top=3,
        ax=new_ax(),
    )
    assert len(ax.images) == 1 + 3 + 3
    top3 = np.argsort(-infl)[:3]
    np.testing.assert_array_equal(ax.images[1].get_array(), X[top3[0]].reshape(4, 4))
    with pytest.raises(ValueError, match="16 features"):
        plot_proponents_opponents(infl, X_train=X, image_shape=(3, 3), ax=new_ax())
    with pytest.raises(ValueError, match="one query"):
        plot_proponents_opponents(np.zeros((2, 30)), ax=new_ax())


def test_influence_graph_edges():
    infl = np.array([[0.9, -0.1, 0.0, 0.3], [0.0, 0.2, -0.8, 0.1]])
    ax = plot_influence_graph(infl, top_k=2, ax=new_ax())
    edges = [line for line in ax.get_lines()]
    assert len(edges) == 4
    colors = sorted(matplotlib.colors.to_hex(e.get_color()) for e in edges)
    assert colors.count("#d1495b") == 1  # one harmful edge: query 1 -> row 2
    widest = max(edges, key=lambda e: e.get_linewidth())
    assert widest.get_linewidth() == pytest.approx(4.0)
    names = sorted(t.get_text() for t in ax.texts)
    assert names == ["query 0", "query 1", "row 0", "row 1", "row 2", "row 3"]
    with pytest.raises(ValueError, match="n_query, n_train"):
        plot_influence_graph(np.zeros(3), ax=new_ax())


def test_removal_curve_against_a_refitting_loop():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=120) > 0).astype(int)
    X_test = rng.normal(size=(60, 3))
    y_test = (X_test[:, 0] > 0).astype(int)
    scores = rng.random(120)
    curve = removal_curve(
        LogisticRegression(),
        X,
        y,
        scores,
        X_test=X_test,
        y_test=y_test,
        fractions=(0.0, 0.25),
        n_random=3,
        random_state=0,
    )
    order = np.argsort(-scores)
    expected = [
        LogisticRegression().fit(X[keep], y[keep]).score(X_test, y_test)
        for keep in (order, order[30:])
    ]
    np.testing.assert_allclose(curve.by_score, expected)
    assert curve.random_std[0] == 0 and curve.metric == "accuracy"
    ax = plot_removal_curve(curve, ax=new_ax())
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), expected)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        removal_curve(
            LogisticRegression(),
            X,
            y,
            scores,
            X_test=X_test,
            y_test=y_test,
            fractions=(0.5, 1.0),
        )
    with pytest.raises(ValueError, match="removal_curve"):
        plot_removal_curve({"fractions": [0]}, ax=new_ax())


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"skinfluence\[plot\]"):
        plot_noise_scores([0.1, 0.2])


def test_label_issues_display_from_estimator():
    from sklearn.utils import Bunch

    from skinfluence.plotting import LabelIssuesDisplay

    rng = np.random.default_rng(3)
    truth = rng.random(60) < 0.2
    fitted = Bunch(noise_scores_=truth + rng.random(60), label_issues_=truth.copy())
    display = LabelIssuesDisplay.from_estimator(fitted)
    assert display.figure_ is display.ax_.figure
    display = LabelIssuesDisplay.from_estimator(fitted, is_noisy=truth)
    assert len(display.ax_) == 2
    assert display.ax_[1].get_ylabel() == "precision"
    with pytest.raises(ValueError, match="must hold 2 axes"):
        LabelIssuesDisplay.from_estimator(fitted, is_noisy=truth, ax=new_ax())
    with pytest.raises(ValueError, match="no noise_scores_"):
        LabelIssuesDisplay.from_estimator(Bunch())


def test_removal_curve_display_matches_the_function():
    from sklearn.linear_model import LogisticRegression

    from skinfluence.plotting import RemovalCurveDisplay

    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 2))
    y = (X[:, 1] > 0).astype(int)
    scores = rng.random(60)
    kw = dict(X_test=X, y_test=y, fractions=(0, 0.2), n_random=2, random_state=0)
    display = RemovalCurveDisplay.from_estimator(
        LogisticRegression(), X, y, scores, ax=new_ax(), **kw
    )
    curve = removal_curve(LogisticRegression(), X, y, scores, **kw)
    np.testing.assert_allclose(display.curve.by_score, curve.by_score)
    np.testing.assert_allclose(display.ax_.get_lines()[0].get_ydata(), curve.by_score)


def test_figures_take_the_sparse_top_k_matrix():
    # influence(X, top_k=k) gives a CSR matrix; rows it did not keep are
    # not drawn, as NaN entries of a dense matrix are not.
    import scipy.sparse as sp

    dense = np.array([[0.9, -0.1, 0.0, 0.3], [0.0, 0.2, -0.8, 0.1]])
    kept = np.where(np.abs(dense) >= 0.2, dense, 0.0)
    csr = sp.csr_matrix(kept)
    expected = np.where(kept != 0, kept, np.nan)
    got = plot_influence_graph(csr, top_k=2, ax=new_ax())
    ref = plot_influence_graph(expected, top_k=2, ax=new_ax())
    assert [tuple(e.get_ydata()) for e in got.get_lines()] == [
        tuple(e.get_ydata()) for e in ref.get_lines()
    ]
    ax = plot_proponents_opponents(csr[1], top=2, ax=new_ax())
    assert [p.get_width() for p in ax.patches] == [-0.8, 0.2]


def test_proponents_opponents_labels_follow_row_positions():
    pd = pytest.importorskip("pandas")
    infl = np.array([0.5, -0.2, 0.1, -0.7])
    y = pd.Series(list("abcd"), index=[10, 3, 2, 0])  # e.g. after a split
    ax = plot_proponents_opponents(infl, y_train=y, top=1, ax=new_ax())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["row 3 (d)", "row 0 (a)"]


def test_removal_curve_keeps_data_frames():
    import warnings

    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    y = pd.Series((X["a"] > 0).map({True: "yes", False: "no"}).to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "fitted without feature names"
        curve = removal_curve(
            LogisticRegression(),
            X,
            y,
            rng.random(60),
            X_test=X,
            y_test=y,
            fractions=(0.0, 0.1),
            n_random=1,
        )
    assert curve.by_score[0] == LogisticRegression().fit(X, y).score(X, y)

"""FastIF and NewtonLOO through the score phase, against their dense matrix.

Both describe their scores as chunk tasks over the training rows. The dense
matrix (the method's own ``influence``, every chunk in order in one thread)
is the reference of every reduction; a memory budget far below the data
forces many chunks (and, for NewtonLOO, steps recomputed per chunk) and must
give the same numbers; threads must give exactly the one-thread numbers.
"""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from joblib import parallel_config
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from skinfluence import FastIF, InfluenceScorer, NewtonLOO
from skinfluence.gradients import Query, row_work_bytes
from skinfluence.utils._torch import CHUNK_SHARE

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=90, d=5, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    if classes == 3:
        y = y + (X[:, 1] > 0.8)
    return X, y


def _topk_reference(S, k):
    """Per row the k largest and k smallest finite entries (ties to the
    smaller column), the rest zero: a plain loop over the dense matrix."""
    out = np.zeros_like(S)
    cols = np.arange(S.shape[1])
    for i, row in enumerate(S):
        desc = np.lexsort((cols, -np.nan_to_num(row, nan=-np.inf)))[:k]
        asc = np.lexsort((cols, np.nan_to_num(row, nan=np.inf)))[:k]
        for j in np.concatenate([desc, asc]):
            if np.isfinite(row[j]):
                out[i, j] = row[j]
    return out


def _least_budget(scorer):
    """The smallest memory_budget the scorer's context accepts."""
    ctx = scorer._context()
    return row_work_bytes(ctx.layout, ctx.view.dtype) * CHUNK_SHARE


def _dense(scorer, X, y, aggregate=False):
    """The method's own dense matrix, outside the score phase."""
    ctx = scorer._context()
    Xq, T = scorer._check_query(X, y)[1:]
    query = Query(Xq, T, measure=ctx.view.loss, aggregate=aggregate)
    S = scorer.method_.influence(ctx, query)
    return S.double().numpy()


CASES = [
    ("fastif-gradients-mean", FastIF(n_neighbors=15, depth=40), LogisticRegression),
    (
        "fastif-gradients-each",
        FastIF(n_neighbors=15, depth=40, search="each"),
        LogisticRegression,
    ),
    (
        "fastif-features-each-mlp",
        FastIF(n_neighbors=15, depth=40, search="each", candidates="features"),
        lambda: MLPClassifier((6,), max_iter=60, random_state=0),
    ),
    ("newton-exact-2-steps", NewtonLOO(n_steps=2), LogisticRegression),
    ("newton-exact-1-step", NewtonLOO(n_steps=1), LogisticRegression),
    ("newton-linear", NewtonLOO(query="linear"), LogisticRegression),
]


@pytest.mark.parametrize("name, method, make", CASES, ids=[c[0] for c in CASES])
def test_streamed_reductions_equal_the_dense_matrix(name, method, make, tmp_path):
    classes = 3 if "newton" in name else 2
    X, y = _data(classes=classes)
    kw = dict(method=method, dtype="float64", random_state=0)
    scorer = InfluenceScorer(make(), batch_size=16, **kw).fit(X, y)
    dense = _dense(scorer, X[:7], y[:7])
    if "fastif" in name:
        assert np.isnan(dense).any() and np.isfinite(dense).sum(1).min() >= 15
    streamed = scorer.influence(X[:7], y[:7])
    np.testing.assert_array_equal(streamed, dense)
    top = scorer.influence(X[:7], y[:7], top_k=4)
    assert sp.issparse(top) and top.format == "csr"
    np.testing.assert_array_equal(top.toarray(), _topk_reference(dense, 4))
    mm = scorer.influence(X[:7], y[:7], out=tmp_path / "S.npy")
    assert isinstance(mm, np.memmap)
    np.testing.assert_array_equal(np.asarray(mm), dense)

    # A budget at its minimum: many chunks of rows, and NewtonLOO refitted
    # under it keeps no steps; the same numbers. (FastIF is rescored, not
    # refitted: its LiSSA mini-batches are drawn under the fitting budget.)
    least = _least_budget(scorer)
    # Leave-one-out changes are differences of nearby losses: compare them
    # to the scale of the scores.
    tol = 1e-9 * np.nanmax(np.abs(dense))
    if "newton" in name:
        small = InfluenceScorer(make(), memory_budget=least, **kw).fit(X, y)
        assert small.method_.steps_ is None and scorer.method_.steps_ is not None
        assert small.method_._step_rows(small._context()) < len(X) // 3
    else:
        small = copy.deepcopy(scorer).set_params(memory_budget=least, batch_size=None)
        small._ctx = None  # the next context is built under the new budget
    assert small._context().chunk < len(X) // 3
    np.testing.assert_allclose(
        small.influence(X[:7], y[:7]), dense, rtol=1e-9, atol=tol
    )
    got = small.influence(X[:7], y[:7], top_k=4).toarray()
    np.testing.assert_allclose(got, _topk_reference(dense, 4), rtol=1e-9, atol=tol)
    np.testing.assert_allclose(
        small.self_influence_, scorer.self_influence_, rtol=1e-9, atol=tol
    )
    # Summed over the query rows (FastIF draws one candidate set for the
    # sum): the method's own dense vector.
    agg = small.influence(X[:7], y[:7], aggregate=True)
    expected = _dense(scorer, X[:7], y[:7], aggregate=True)[0]
    np.testing.assert_allclose(agg, expected, rtol=1e-9, atol=tol)
    if "newton" in name:
        np.testing.assert_allclose(agg, dense.sum(0), rtol=1e-9, atol=tol)


def test_fastif_scores_only_its_candidates_and_the_dense_rows_match_them():
    X, y = _data()
    scorer = InfluenceScorer(
        LogisticRegression(),
        method=FastIF(n_neighbors=10, depth=30, search="each"),
        batch_size=16,
        dtype="float64",
        random_state=0,
    ).fit(X, y)
    S = scorer.influence(X[:5], y[:5])
    cand = scorer.method_.candidates_
    for i in range(5):
        assert set(np.flatnonzero(np.isfinite(S[i]))) == set(cand[i].tolist())


@pytest.mark.parametrize("search", ["mean", "each"])
def test_fastif_threads_give_exactly_the_one_thread_scores(search):
    # The factorised gradients record layer inputs with forward hooks on the
    # module; tasks in threads must each use a module of their own.
    X, y = _data(n=240, d=6)
    est = MLPClassifier((16,), max_iter=80, random_state=0)
    method = FastIF(n_neighbors=200, depth=10, search=search)
    one = InfluenceScorer(
        est, method=method, dtype="float64", batch_size=8, random_state=0
    ).fit(X, y)
    two = copy.deepcopy(one).set_params(n_jobs=2)
    two._ctx = None  # the next context runs two jobs
    expected = one.influence(X[:12], y[:12])
    expected_top = one.influence(X[:12], y[:12], top_k=5).toarray()
    assert np.isfinite(expected).sum() >= 12 * 200
    with parallel_config(backend="threading"):
        for _ in range(2):
            np.testing.assert_array_equal(two.influence(X[:12], y[:12]), expected)
            np.testing.assert_array_equal(
                two.influence(X[:12], y[:12], top_k=5).toarray(), expected_top
            )


def test_newton_loo_recomputed_steps_equal_the_cached_ones():
    X, y = _data(classes=3)
    kw = dict(method=NewtonLOO(n_steps=2), dtype="float64")
    full = InfluenceScorer(LogisticRegression(), **kw).fit(X, y)
    small = InfluenceScorer(
        LogisticRegression(), memory_budget=_least_budget(full), **kw
    ).fit(X, y)
    assert small.method_.steps_ is None
    ctx = small._context()
    rows = slice(10, 37)
    expected = full.method_.steps_[rows]
    # The two Hessians are summed in different chunks (float64 rounding,
    # amplified by the inverse).
    np.testing.assert_allclose(
        small.method_._row_steps(ctx, rows).numpy(),
        expected,
        rtol=1e-6,
        atol=1e-7 * np.abs(expected).max(),
    )

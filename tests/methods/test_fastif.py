import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier

from skinfluence import FastIF, InfluenceFunction, InfluenceScorer
from skinfluence.exceptions import SkinfluenceWarning
from skinfluence.methods import Query, get_method
from skinfluence.models._skorch import MLPModule
from skinfluence.utils.estimator_checks import expected_failed_checks


@pytest.fixture(scope="module")
def mlp():
    X, y = make_classification(
        n_samples=120, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    X = X.astype(np.float32)
    net = NeuralNetClassifier(
        MLPModule,
        module__n_features=6,
        module__n_outputs=3,
        module__hidden=(8,),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        optimizer__weight_decay=1e-3,
        lr=0.02,
        max_epochs=30,
        batch_size=64,
        verbose=0,
        train_split=None,
    )
    torch.manual_seed(0)
    scorer = InfluenceScorer(
        net, parameters="last", dtype="float64", random_state=0
    ).fit(X, y)
    return X, y, scorer


def _query(ctx, rows):
    return Query(ctx.X[rows], ctx.T[rows], measure=ctx.view.loss)


def _penultimate(scorer, X):
    """Independent feature map: the fitted module without its last layer."""
    trunk = scorer.estimator_.module_.net[:-1]
    with torch.no_grad():
        return trunk(torch.as_tensor(X, dtype=torch.float32)).double().numpy()


def _knn(feats, point, k):
    d = ((feats - point) ** 2).sum(1)
    return set(np.argsort(d, kind="stable")[:k].tolist())


def test_candidates_are_nearest_neighbours_in_feature_space(mlp):
    X, _, scorer = mlp
    ctx = scorer._context()
    k = 15
    feats = _penultimate(scorer, X)
    rows = [3, 40, 77]
    each = FastIF(
        k, candidates="features", search="each", depth=3, batch_size="all"
    ).fit(ctx)
    out = each.influence(ctx, _query(ctx, rows)).numpy()
    for i, r in enumerate(rows):
        assert set(each.candidates_[i].tolist()) == _knn(feats, feats[r], k)
        assert set(np.flatnonzero(np.isfinite(out[i])).tolist()) == _knn(
            feats, feats[r], k
        )
    mean = FastIF(
        k, candidates="features", search="mean", depth=3, batch_size="all"
    ).fit(ctx)
    out = mean.influence(ctx, _query(ctx, rows)).numpy()
    expected = _knn(feats, feats[rows].mean(0), k)
    assert mean.candidates_.shape == (3, k)
    for i in range(3):
        assert set(mean.candidates_[i].tolist()) == expected
        assert set(np.flatnonzero(np.isfinite(out[i])).tolist()) == expected


def _last_layer_influence(scorer, X, y, PQ):
    """Independent reference: ``(P g_q)_last . g_j,last`` from a plain loop of
    ``torch.autograd.grad`` over the training rows (float64)."""
    head = scorer.estimator_.module_.net[-1]
    trunk = scorer.estimator_.module_.net[:-1]
    Xt = torch.as_tensor(X, dtype=torch.float64)
    W = head.weight.detach().double().requires_grad_(True)
    b = head.bias.detach().double().requires_grad_(True)
    rows = []
    for i in range(len(X)):
        with torch.no_grad():
            h = trunk.double()(Xt[i : i + 1])
        out = h @ W.T + b
        loss = torch.nn.functional.cross_entropy(out, torch.tensor([int(y[i])]))
        gW, gb = torch.autograd.grad(loss, (W, b))
        rows.append(torch.cat([gW, gb[:, None]], 1).reshape(-1))
    trunk.float()
    return PQ @ torch.stack(rows).T


def test_gradient_candidates_are_the_largest_last_layer_influences(mlp):
    X, y, scorer = mlp
    ctx = scorer._context()
    k = 15
    rows = [3, 40, 77]
    each = FastIF(k, search="each", depth=3, batch_size="all").fit(ctx)
    assert each.candidates == "gradients" and each.nn_ is None
    query = _query(ctx, rows)
    out = each.influence(ctx, query).numpy()
    PQ = each.solver_.solve(ctx.query_grads(query).materialise())
    # parameters="last": the flat layout is exactly the head's [W | b].
    ref = _last_layer_influence(scorer, X, y, PQ.double()).abs().numpy()
    for i in range(len(rows)):
        expected = set(np.argsort(-ref[i], kind="stable")[:k].tolist())
        assert set(each.candidates_[i].tolist()) == expected
        assert set(np.flatnonzero(np.isfinite(out[i])).tolist()) == expected
    mean = FastIF(k, search="mean", depth=3, batch_size="all").fit(ctx)
    mean.influence(ctx, query)
    rel = (ref / ref.max(1, keepdims=True)).max(0)
    expected = set(np.argsort(-rel, kind="stable")[:k].tolist())
    for i in range(len(rows)):
        assert set(mean.candidates_[i].tolist()) == expected


def test_gradient_candidates_hold_the_top_influential_rows():
    # On a logistic model the last layer is every parameter: the candidates
    # must contain the exact influence function's top rows by |influence|.
    X, y = make_classification(n_samples=200, n_features=6, random_state=3)
    damping = 0.05
    fast = InfluenceScorer(
        LogisticRegression(),
        method=FastIF(20, search="each", damping=damping, depth=3000, batch_size="all"),
        random_state=0,
    ).fit(X, y)
    exact = InfluenceScorer(
        LogisticRegression(), method=InfluenceFunction(damping=damping)
    ).fit(X, y)
    fast.influence(X[:5], y[:5])
    ref = exact.influence(X[:5], y[:5])
    for i in range(5):
        top = set(np.argsort(-np.abs(ref[i]))[:10].tolist())
        assert top <= set(fast.method_.candidates_[i].tolist())


def test_values_match_exact_influence_on_candidates(mlp):
    _, _, scorer = mlp
    ctx = scorer._context()
    damping = 1.0
    fast = FastIF(20, damping=damping, depth=120, batch_size="all").fit(ctx)
    exact = InfluenceFunction(damping=damping, n_estimators=1).fit(ctx)
    # Independent check that the deterministic recursion has converged.
    evals = exact.solver_.eigenvalues_
    rate = 1 - (evals[0] + damping) / fast.solver_.scale_
    assert rate**120 < 1e-6
    query = _query(ctx, [5, 6])
    got = fast.influence(ctx, query).numpy()
    ref = exact.influence(ctx, query).numpy()
    mask = np.isfinite(got)
    assert mask.sum() == 2 * 20
    np.testing.assert_allclose(got[mask], ref[mask], rtol=1e-4, atol=1e-10)


def test_self_influence_finite_and_matches_diagonal(mlp):
    X, _, scorer = mlp
    ctx = scorer._context()
    fast = FastIF(10, candidates="features", search="each", depth=20, batch_size=1).fit(
        ctx
    )
    self_inf = fast.self_influence(ctx).numpy()
    assert self_inf.shape == (len(X),) and np.all(np.isfinite(self_inf))
    rows = np.arange(0, len(X), 7)
    out = fast.influence(ctx, _query(ctx, rows)).numpy()
    # Each training row is its own nearest neighbour, so the diagonal exists.
    np.testing.assert_allclose(out[np.arange(len(rows)), rows], self_inf[rows])


def test_n_neighbors_clipped_with_warning(mlp):
    X, _, scorer = mlp
    ctx = scorer._context()
    with pytest.warns(SkinfluenceWarning, match="n_neighbors=500"):
        fast = FastIF(500, depth=2).fit(ctx)
    assert fast.n_neighbors_ == len(X)
    # The default asks for no more than the data has: clipped silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkinfluenceWarning)
        fast = FastIF(depth=2).fit(ctx)
    assert fast.n_neighbors_ == len(X)
    out = fast.influence(ctx, _query(ctx, [0]))
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize(
    "params, name",
    [
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"depth": 0}, "depth"),
        ({"repetitions": 0}, "repetitions"),
        ({"scale": 0.0}, "scale"),
        ({"damping": -0.1}, "damping"),
        ({"n_chains": 0}, "n_chains"),
        ({"search": "median"}, "search"),
        ({"candidates": "knn"}, "candidates.*among"),
    ],
)
def test_bad_parameters(mlp, params, name):
    _, _, scorer = mlp
    with pytest.raises(ValueError, match=name):
        FastIF(**params).fit(scorer._context())


def test_scores_do_not_depend_on_the_chunk_size(mlp):
    import dataclasses

    _, _, scorer = mlp
    ctx = scorer._context()
    fast = FastIF(30, depth=5, batch_size=4, search="each").fit(ctx)
    q = _query(ctx, [1, 2, 7])
    whole = fast.influence(ctx, q).numpy()
    small = dataclasses.replace(ctx, batch_size=7)  # chunks of 7 training rows
    assert small.chunk == 7 < ctx.chunk
    got = fast.influence(small, q).numpy()
    np.testing.assert_allclose(got, whole, rtol=1e-12, equal_nan=True)
    assert np.isfinite(got).sum() == 3 * 30


def test_scorer_end_to_end():
    X, y = make_classification(n_samples=60, n_features=5, random_state=1)
    assert isinstance(get_method("fastif"), FastIF)
    scorer = InfluenceScorer(
        LogisticRegression(),
        method=FastIF(n_neighbors=10, depth=20),
        random_state=0,
    ).fit(X, y)
    scores = scorer.influence(X[:4], y[:4])
    assert scores.shape == (4, 60)
    assert np.all(np.isfinite(scores).sum(1) == 10)
    assert np.all(np.isfinite(scorer.self_influence_))
    Xt = scorer.transform(X[:3])
    assert Xt.shape == (3, 60)
    assert np.all(np.isfinite(Xt).sum(1) == 10)
    assert scorer.method_.candidates_.shape == (3, 10)
    assert scorer.get_params()["method__n_neighbors"] == 10


@pytest.mark.slow
@parametrize_with_checks(
    [
        InfluenceScorer(
            LogisticRegression(), method=FastIF(n_neighbors=5, depth=5), random_state=0
        )
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_estimator_checks_with_fastif(estimator, check):
    check(estimator)


def _default_and_least_budget(mlp):
    """The fitted scorer's context under the default and under the smallest
    memory budget it accepts, each with a fresh generator of seed 0."""
    import dataclasses

    from skinfluence.gradients._engine import row_work_bytes
    from skinfluence.utils._torch import CHUNK_SHARE, make_generator

    ctx = mlp[2]._context()
    least = row_work_bytes(ctx.layout, ctx.view.dtype) * CHUNK_SHARE
    return ctx, [
        dataclasses.replace(ctx, memory_budget=budget, generator=make_generator(0))
        for budget in (None, least)
    ]


def test_fit_does_not_depend_on_the_memory_budget(mlp):
    ctx, contexts = _default_and_least_budget(mlp)
    fits = []
    for c in contexts:
        fast = FastIF(30, depth=20, batch_size=2).fit(c)
        fits.append((c, fast, fast.influence(c, _query(c, [1, 2, 7])).numpy()))
    (big, a, Sa), (small, b, Sb) = fits
    assert small.chunk < big.chunk and small.chunk < ctx.n_train <= big.chunk
    # The same random stream: the same mini-batches, the same operator.
    assert torch.equal(a.solver_.batches_[0], b.solver_.batches_[0])
    assert b.solver_.scale_ == pytest.approx(a.solver_.scale_, rel=1e-10)
    assert b.damping_ == pytest.approx(a.damping_, rel=1e-10)
    np.testing.assert_array_equal(b.candidates_, a.candidates_)
    np.testing.assert_allclose(Sb, Sa, rtol=1e-8, atol=1e-14, equal_nan=True)


@pytest.mark.parametrize("search", ["each", "mean"])
def test_gradient_search_is_chunked_under_the_memory_budget(mlp, monkeypatch, search):
    import dataclasses

    from skinfluence.gradients import RowGrads
    from skinfluence.gradients._engine import row_work_bytes
    from skinfluence.utils._torch import CHUNK_SHARE

    X, y, scorer = mlp
    ctx = scorer._context()
    k, rows = 15, [3, 40, 77, 101]
    fast = FastIF(k, search=search, depth=3, batch_size="all").fit(ctx)
    query = _query(ctx, rows)
    whole = fast.influence(ctx, query).numpy()
    expected = fast.candidates_.copy()
    # The smallest budget the context accepts: the retrieval then takes the
    # training rows a few at a time.
    least = row_work_bytes(ctx.layout, ctx.view.dtype) * CHUNK_SHARE
    small = dataclasses.replace(ctx, memory_budget=least)
    sub, sizes, dot_flat = fast._retrieval[1], [], RowGrads.dot_flat

    def spy(self, V, per_segment=False):
        if self.layout is sub:
            sizes.append(self.n)
        return dot_flat(self, V, per_segment)

    monkeypatch.setattr(RowGrads, "dot_flat", spy)
    got = fast.influence(small, query).numpy()
    assert len(sizes) > 1 and sum(sizes) == ctx.n_train  # every row, in chunks
    np.testing.assert_array_equal(fast.candidates_, expected)
    np.testing.assert_allclose(got, whole, rtol=1e-12, equal_nan=True)
    # Independent reference: the float64 last-layer influences of every row.
    PQ = fast.solver_.solve(ctx.query_grads(query).materialise())
    ref = _last_layer_influence(scorer, X, y, PQ.double()).abs().numpy()
    if search == "mean":
        ref = np.repeat((ref / ref.max(1, keepdims=True)).max(0)[None], len(rows), 0)
    for i in range(len(rows)):
        top = set(np.argsort(-ref[i], kind="stable")[:k].tolist())
        assert set(fast.candidates_[i].tolist()) == top


@pytest.mark.parametrize("candidates", ["gradients", "features"])
@pytest.mark.parametrize("search", ["mean", "each"])
def test_query_set_larger_than_a_block_is_one_query_set(candidates, search):
    # The scorer scores max(1024, rows per chunk) query rows at a time:
    # batch_size=16 splits these 1100 rows in two blocks, 2048 does not.
    X, y = make_classification(n_samples=80, n_features=5, random_state=2)
    rng = np.random.default_rng(0)
    Xq = X[rng.integers(0, 80, 1100)] + 0.3 * rng.normal(size=(1100, 5))
    yq = rng.integers(0, 2, 1100)
    k = 12
    runs = []
    for batch_size in (16, 2048):
        method = FastIF(
            k, candidates=candidates, search=search, depth=5, batch_size="all"
        )
        scorer = InfluenceScorer(
            LogisticRegression(),
            method=method,
            batch_size=batch_size,
            dtype="float64",
            random_state=0,
        ).fit(X, y)
        runs.append((scorer, scorer.influence(Xq, yq)))
    (split, S_split), (whole, S_whole) = runs
    cand = split.method_.candidates_
    assert cand.shape == (1100, k)
    np.testing.assert_array_equal(cand, whole.method_.candidates_)
    np.testing.assert_allclose(S_split, S_whole, rtol=1e-9, equal_nan=True)
    assert np.all(np.isfinite(S_split).sum(1) == k)
    if search == "mean":
        assert (cand == cand[0]).all()
        if candidates == "features":
            # A logistic model's features are its input: the training rows
            # nearest the mean of all 1100 query rows.
            assert set(cand[0].tolist()) == _knn(X, Xq.mean(0), k)


def test_lissa_batches_do_not_depend_on_the_memory_budget(mlp):
    from skinfluence import InfluenceFunction, LissaSolver

    fits = []
    for c in _default_and_least_budget(mlp)[1]:
        method = InfluenceFunction(
            solver=LissaSolver(depth=20, batch_size=2), damping=0.5, n_estimators=1
        ).fit(c)
        fits.append(method.solver_)
    a, b = fits
    assert torch.equal(a.batches_[0], b.batches_[0])
    assert b.scale_ == pytest.approx(a.scale_, rel=1e-10)


@pytest.mark.parametrize("limit", [50, 4096])
def test_indefiniteness_check_runs_on_a_row_sample(mlp, monkeypatch, limit):
    from skinfluence.methods import _fastif
    from skinfluence.methods.ihvp._base import RowSample

    _, _, scorer = mlp
    ctx = scorer._context()
    monkeypatch.setattr(_fastif, "POWER_ROWS", limit)
    seen = []
    check = _fastif.extreme_eigenvalues

    def recording(problem, generator=None):
        out = check(problem, generator)
        seen.append((problem, out))
        return out

    monkeypatch.setattr(_fastif, "extreme_eigenvalues", recording)
    FastIF(20).fit(ctx)
    ((problem, (lo, hi)),) = seen
    full = ctx.hessian_problem()
    if limit >= len(ctx.X):
        # Few rows: every row, as before.
        assert not isinstance(problem, RowSample)
        idx = torch.arange(len(ctx.X))
    else:
        assert isinstance(problem, RowSample)
        idx = problem.idx
        assert len(idx) == limit == len(set(idx.tolist()))
    # The Krylov space spans every parameter here, so the estimate is the
    # exact extreme eigenvalues of the sample's Hessian (rescaled to the
    # mean objective).
    H = full.hvp(torch.eye(full.p, dtype=full.dtype), idx=idx)
    evals = torch.linalg.eigvalsh((H + H.T) / 2)
    assert full.p <= 40
    assert lo == pytest.approx(float(evals.min()), rel=1e-6, abs=1e-9)
    assert hi == pytest.approx(float(evals.max()), rel=1e-6)

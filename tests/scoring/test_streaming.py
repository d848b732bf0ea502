"""Streamed scores through InfluenceScorer against the dense matrix.

The dense matrix is the reference of every reduction: the reductions are
checked for every method, with cached and with recomputed training
gradients, sequentially and with joblib threads.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from joblib import parallel_config
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from skinfluence import (
    FastIF,
    InfluenceFunction,
    InfluenceScorer,
    IPEnsemble,
    NewtonLOO,
    TracIn,
)
from skinfluence.exceptions import SkinfluenceWarning


def _data(n=80, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


def _topk_reference(S, k):
    out = np.zeros_like(S)
    cols = np.arange(S.shape[1])
    for i, row in enumerate(S):
        finite = ~np.isnan(row)
        desc = np.lexsort((cols, -np.nan_to_num(row, nan=-np.inf)))[:k]
        asc = np.lexsort((cols, np.nan_to_num(row, nan=np.inf)))[:k]
        for j in np.concatenate([desc, asc]):
            if finite[j]:
                out[i, j] = row[j]
    return out


METHODS = [
    ("tracin", LogisticRegression),
    (IPEnsemble(n_estimators=2, random_state=0), LogisticRegression),
    (InfluenceFunction(), LogisticRegression),
    (InfluenceFunction(solver="cg"), LogisticRegression),
    (InfluenceFunction(solver="arnoldi"), LogisticRegression),
    (NewtonLOO(), LogisticRegression),
    (FastIF(n_neighbors=20, depth=50), LogisticRegression),
    ("tracin", lambda: MLPClassifier((6,), max_iter=50, random_state=0)),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("method, make", METHODS)
def test_top_k_and_memmap_equal_the_dense_matrix(method, make, tmp_path):
    X, y = _data()
    scorer = InfluenceScorer(
        make(), method=method, dtype="float64", batch_size=16, random_state=0
    ).fit(X, y)
    dense = scorer.influence(X[:7], y[:7])
    top = scorer.influence(X[:7], y[:7], top_k=4)
    assert sp.isspmatrix_csr(top) or sp.issparse(top)
    np.testing.assert_allclose(top.toarray(), _topk_reference(dense, 4), rtol=1e-12)
    mm = scorer.influence(X[:7], y[:7], out=tmp_path / "S.npy")
    assert isinstance(mm, np.memmap)
    np.testing.assert_allclose(np.asarray(mm), dense, rtol=1e-12, equal_nan=True)
    agg = scorer.influence(X[:7], y[:7], aggregate=True)
    if not np.isnan(dense).any():
        np.testing.assert_allclose(agg, dense.sum(0), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("cached", [True, False])
def test_threads_and_recomputed_chunks_equal_cached_sequential(cached, monkeypatch):
    from skinfluence.utils._torch import MemoryBudget

    if not cached:
        monkeypatch.setattr(MemoryBudget, "can_cache", lambda self, nbytes: False)
    X, y = _data(n=150)
    kw = dict(dtype="float64", batch_size=16)
    ref = InfluenceScorer(LogisticRegression(), **kw).fit(X, y)
    par = InfluenceScorer(LogisticRegression(), n_jobs=2, **kw).fit(X, y)
    np.testing.assert_allclose(
        par.influence(X[:5], y[:5]), ref.influence(X[:5], y[:5]), rtol=1e-12
    )
    np.testing.assert_allclose(par.self_influence_, ref.self_influence_, rtol=1e-12)
    with parallel_config(backend="threading", n_jobs=2):
        a = ref.influence(X[:5], y[:5], top_k=3)
    b = par.influence(X[:5], y[:5], top_k=3)
    assert abs(a - b).max() < 1e-12


def test_projection_converges_to_exact_tracin():
    X, y = _data(n=120, d=8)
    est = MLPClassifier((16,), max_iter=200, random_state=0)
    exact = InfluenceScorer(est, dtype="float64", random_state=0).fit(X, y)
    S = exact.influence(X[:10], y[:10])
    corr = {}
    for dim in (8, 160):
        proj = InfluenceScorer(
            est, method=TracIn(projection_dim=dim), dtype="float64", random_state=0
        ).fit(X, y)
        P = proj.influence(X[:10], y[:10])
        corr[dim] = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(P, S)])
        assert proj.method_.projection_.dim <= dim + 2
        # Self-influence is the projected squared norm.
        Ps = proj.self_influence(X[:10], y[:10])
        np.testing.assert_allclose(Ps, np.diag(P), rtol=1e-10)
    assert corr[160] > 0.9 and corr[160] > corr[8]


def test_projection_dim_validation():
    X, y = _data()
    with pytest.warns(SkinfluenceWarning, match="exact gradients"):
        s = InfluenceScorer(
            LogisticRegression(), method=TracIn(projection_dim=10_000)
        ).fit(X, y)
    assert s.method_.projection_ is None
    with pytest.raises(ValueError, match="projection_dim"):
        InfluenceScorer(LogisticRegression(), method=TracIn(projection_dim=0)).fit(X, y)


def test_top_k_and_out_errors(tmp_path):
    X, y = _data()
    scorer = InfluenceScorer(LogisticRegression()).fit(X, y)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="top_k must be an integer"):
            scorer.influence(X[:2], y[:2], top_k=bad)
    with pytest.raises(ValueError, match="cannot be combined"):
        scorer.influence(X[:2], y[:2], top_k=2, out=tmp_path / "x.npy")
    path = tmp_path / "x.npy"
    path.write_bytes(b"keep me")
    with pytest.raises(ValueError, match="overwrite=True"):
        scorer.influence(X[:2], y[:2], out=path)
    assert path.read_bytes() == b"keep me"
    res = scorer.influence(X[:2], y[:2], out=path, overwrite=True)
    np.testing.assert_allclose(np.asarray(res), scorer.influence(X[:2], y[:2]))


def test_interrupted_scoring_leaves_no_file(tmp_path, monkeypatch):
    import skinfluence.scoring._reducers as reducers
    from skinfluence.utils._torch import MemoryBudget

    # No cache: five chunks of 16 rows computed afresh.
    monkeypatch.setattr(MemoryBudget, "can_cache", lambda self, nbytes: False)
    X, y = _data()
    scorer = InfluenceScorer(LogisticRegression(), batch_size=16).fit(X, y)
    calls = {"n": 0}
    merge = reducers.Dense.merge

    def failing(self, sl, part):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        merge(self, sl, part)

    monkeypatch.setattr(reducers.Dense, "merge", failing)
    with pytest.raises(KeyboardInterrupt):
        scorer.influence(X[:3], y[:3], out=tmp_path / "S.npy")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
def test_streaming_on_cuda_matches_cpu():
    X, y = _data(n=300)
    cpu = InfluenceScorer(LogisticRegression(), device="cpu").fit(X, y)
    gpu = InfluenceScorer(LogisticRegression(), device="cuda").fit(X, y)
    np.testing.assert_allclose(
        gpu.influence(X[:5], y[:5]), cpu.influence(X[:5], y[:5]), rtol=1e-4, atol=1e-6
    )
    a = gpu.influence(X[:5], y[:5], top_k=3).toarray()
    b = cpu.influence(X[:5], y[:5], top_k=3).toarray()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        gpu.self_influence_, cpu.self_influence_, rtol=1e-4, atol=1e-6
    )
    assert torch.cuda.is_available()


def test_bfloat16_keeps_the_ranking_of_float64():
    X, y = _data(n=200, d=6)
    est = MLPClassifier((16,), max_iter=200, random_state=0)
    ref = InfluenceScorer(est, dtype="float64", random_state=0).fit(X, y)
    low = InfluenceScorer(est, dtype="bfloat16", random_state=0).fit(X, y)
    S, L = ref.influence(X[:8], y[:8]), low.influence(X[:8], y[:8])
    assert L.dtype == np.float64
    assert np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(L, S)]) > 0.99
    assert np.corrcoef(low.self_influence_, ref.self_influence_)[0, 1] > 0.99
    assert low._context().view.dtype == torch.bfloat16


@pytest.mark.parametrize(
    "device, match",
    [
        ("tpu", "not a device skinfluence runs on"),
        ("cuda:x", "not a device"),
        ("xla", "not a device"),
        (3, "device must be"),
    ],
)
def test_unknown_device_strings(device, match):
    from skinfluence.utils._torch import resolve_device

    with pytest.raises((ValueError, TypeError), match=match):
        resolve_device(device)
    X, y = _data()
    if isinstance(device, str):
        with pytest.raises(ValueError, match=match):
            InfluenceScorer(LogisticRegression(), device=device).fit(X, y)


@pytest.mark.gpu
def test_cuda_index_past_the_devices_is_refused():
    from skinfluence.utils._torch import resolve_device

    n = torch.cuda.device_count()
    assert resolve_device(f"cuda:{n - 1}").index == n - 1
    with pytest.raises(ValueError, match=f"has {n}"):
        resolve_device(f"cuda:{n}")


@pytest.mark.gpu
def test_bfloat16_on_cuda_keeps_the_ranking():
    X, y = _data(n=300)
    ref = InfluenceScorer(LogisticRegression(), dtype="float64", device="cpu")
    low = InfluenceScorer(LogisticRegression(), dtype="bfloat16", device="cuda")
    S = ref.fit(X, y).influence(X[:5], y[:5])
    L = low.fit(X, y).influence(X[:5], y[:5])
    assert np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(L, S)]) > 0.99


@pytest.mark.parametrize(
    "method, streams",
    [
        (TracIn(), True),
        (IPEnsemble(), True),
        (InfluenceFunction(), True),
        (InfluenceFunction(solver="arnoldi"), True),
        (InfluenceFunction(solver="ekfac"), True),
        (FastIF(), True),
        (NewtonLOO(), True),
    ],
)
def test_which_methods_stream_chunk_by_chunk(method, streams):
    # FastIF (its candidate sets) and NewtonLOO (its leave-one-out steps)
    # describe their scores as chunk tasks; every method streams.
    from skinfluence.scoring._stream import _streams

    assert _streams(method) is streams


def test_memory_budget_too_small_for_one_row_names_the_minimum():
    X, y = _data()
    with pytest.raises(
        ValueError, match=r"memory_budget=100 bytes is too small.*minimum is"
    ):
        InfluenceScorer(LogisticRegression(), memory_budget=100).fit(X, y)
    # The minimum it names is enough.
    with pytest.raises(ValueError) as err:
        InfluenceScorer(LogisticRegression(), memory_budget=100).fit(X, y)
    least = int(str(err.value).split("minimum is ")[1].split(" ")[0])
    scorer = InfluenceScorer(LogisticRegression(), memory_budget=least).fit(X, y)
    np.testing.assert_allclose(
        scorer.influence(X[:3], y[:3]),
        InfluenceScorer(LogisticRegression()).fit(X, y).influence(X[:3], y[:3]),
        rtol=1e-5,
    )


def test_set_level_objective_writes_its_vector_to_out(tmp_path):
    rng = np.random.default_rng(1)
    X, y = _data(n=60)
    s = rng.integers(0, 2, size=60)
    scorer = InfluenceScorer(
        LogisticRegression(), objective="demographic_parity", dtype="float64"
    ).fit(X, y)
    vec = scorer.influence(X[:20], y[:20], sensitive_features=s[:20])
    mm = scorer.influence(
        X[:20], y[:20], sensitive_features=s[:20], out=tmp_path / "gap.npy"
    )
    assert mm.shape == (60,)
    np.testing.assert_allclose(np.asarray(mm), vec, rtol=1e-12)


def test_tasks_cancelled_by_a_lost_worker_are_run_again():
    from skinfluence.scoring._parallel import map_chunks

    class FutureCancelledError(Exception):
        """Stands for Dask's error for futures of a lost worker."""

    failures = {"left": 1}

    def task(shared, i):
        if i == 3 and failures["left"]:
            failures["left"] -= 1
            raise FutureCancelledError("already forgotten")
        return shared * i

    chunks = [(i,) for i in range(7)]
    got = list(map_chunks(task, 10, chunks, n_jobs=2))
    assert got == [10 * i for i in range(7)]
    assert failures["left"] == 0

    def broken(shared, i):
        raise ValueError("a real error")

    with pytest.raises(ValueError, match="a real error"):
        list(map_chunks(broken, 10, chunks, n_jobs=2))

"""Chunks of training rows as tasks of a local Ray session.

``ray.util.joblib.register_ray()`` makes ``parallel_config(backend="ray")``
send the chunk tasks to Ray worker processes; the results must be exactly
the sequential ones (every task is a pure function of its arguments).
Skipped where Ray is not installed (the ``ray`` extra).
"""

import os

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from skinfluence import FastIF, InfluenceScorer, NewtonLOO
from skinfluence.gradients import Query
from skinfluence.scoring import Dense, stream_influence

ray = pytest.importorskip("ray")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(scope="module")
def ray_backend():
    from ray.util.joblib import register_ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=100 * 2**20,
    )
    register_ray()
    try:
        yield
    finally:
        ray.shutdown()


def _where_dense():
    """The dense reducer, recording the process that reduced each chunk.
    Defined in a function so that it travels to the workers by value (they
    cannot import the test module)."""

    class WhereDense(Dense):
        def partial(self, sl, block):
            return os.getpid(), block

        def merge(self, sl, part):
            self.pids = getattr(self, "pids", []) + [part[0]]
            super().merge(sl, part[1])

        def add(self, sl, block):
            self.merge(sl, self.partial(sl, block))

    return WhereDense()


def _data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = (X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y


CASES = [
    ("tracin", lambda: MLPClassifier((8,), max_iter=40, random_state=0)),
    (FastIF(n_neighbors=50, depth=20), LogisticRegression),
    (NewtonLOO(), LogisticRegression),
]


@pytest.mark.parametrize("method, make", CASES, ids=["tracin", "fastif", "newton"])
def test_ray_backend_gives_the_sequential_results(ray_backend, method, make):
    X, y = _data()
    # A budget below the cache's size: chunks are computed afresh, as tasks.
    scorer = InfluenceScorer(
        make(), method=method, batch_size=40, memory_budget=2**15, random_state=0
    ).fit(X, y)
    assert not getattr(scorer.method_, "_train_cache", None)
    ctx = scorer._context()
    Xq, T = scorer._check_query(X[:6], y[:6])[1:]
    query = Query(Xq, T, measure=ctx.view.loss)
    expected = stream_influence(scorer.method_, ctx, query).numpy()
    expected_top = scorer.influence(X[:6], y[:6], top_k=5).toarray()
    with parallel_config(backend="ray", n_jobs=2):
        where = _where_dense()
        got = stream_influence(scorer.method_, ctx, query, where)
        got_top = scorer.influence(X[:6], y[:6], top_k=5).toarray()
    assert len(where.pids) > 2 and os.getpid() not in where.pids
    np.testing.assert_array_equal(got.numpy(), expected)
    np.testing.assert_array_equal(got_top, expected_top)

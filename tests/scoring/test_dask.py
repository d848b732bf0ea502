"""Chunks of training rows on a real two-worker Dask cluster.

Each chunk is an independent joblib task, so ``parallel_config(backend=
"dask")`` must give exactly the sequential numbers, and still do so when a
worker process is killed while tasks run (the scheduler re-runs its tasks;
the shared state was broadcast to both workers, so none is lost with it).
"""

import logging
import os
import signal

import numpy as np
import pytest
from joblib import parallel_config
from sklearn.neural_network import MLPClassifier

from skinfluence import InfluenceScorer

distributed = pytest.importorskip("distributed")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # The cluster's own shutdown chatter is not ours to judge.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    est = MLPClassifier((8,), max_iter=30, random_state=0)
    # A budget below the cache's size: chunks are recomputed, as tasks.
    scorer = InfluenceScorer(
        est, batch_size=50, memory_budget=2**15, random_state=0
    ).fit(X, y)
    assert not scorer.method_._train_cache
    return scorer, X, y


def _results(scorer, X, y):
    scorer._self_influence = None
    return (
        scorer.influence(X[:6], y[:6]),
        scorer.influence(X[:6], y[:6], top_k=5).toarray(),
        scorer.self_influence_,
    )


def test_dask_cluster_gives_the_sequential_results(client, problem):
    scorer, X, y = problem
    expected = _results(scorer, X, y)
    with distributed.get_task_stream(client) as stream:
        with parallel_config(backend="dask"):
            got = _results(scorer, X, y)
    assert len({task["worker"] for task in stream.data}) == 2  # both worked
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_killed_worker_still_gives_the_sequential_results(client, problem):
    import skinfluence.scoring._reducers as reducers

    scorer, X, y = problem
    expected = _results(scorer, X, y)
    pids = list(client.run(os.getpid).values())
    assert len(pids) == 2
    merges = {"n": 0}
    merge = reducers.Diagonal.merge

    def merge_then_kill(self, sl, part):
        # Kill a worker once a few chunks have come back and more are queued.
        merges["n"] += 1
        if merges["n"] == 3:
            os.kill(pids[0], signal.SIGKILL)
        merge(self, sl, part)

    reducers.Diagonal.merge = merge_then_kill
    try:
        with parallel_config(backend="dask"):
            scorer._self_influence = None
            got = scorer.self_influence_
    finally:
        reducers.Diagonal.merge = merge
    assert merges["n"] == 12  # every chunk arrived, in order
    np.testing.assert_array_equal(got, expected[2])
    client.wait_for_workers(2, timeout=60)
    assert pids[0] not in client.run(os.getpid).values()  # it was replaced
    with parallel_config(backend="dask"):
        np.testing.assert_array_equal(
            scorer.influence(X[:6], y[:6], top_k=5).toarray(), expected[1]
        )

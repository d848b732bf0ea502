"""The memory budget, the seed rule and device resolution on load."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluenceScorer, NoisyLabelFilter
from skinfluence.exceptions import SkinfluenceWarning
from skinfluence.utils._torch import (
    DEFAULT_MEMORY_BUDGET,
    MemoryBudget,
    draw_seed,
    make_generator,
    resolve_device,
)


def test_default_budget_is_two_gib_with_chunks_of_a_quarter(monkeypatch):
    import skinfluence.utils._torch as torch_utils

    monkeypatch.setattr(torch_utils, "_available_memory", lambda: 64 * 2**30)
    budget = MemoryBudget()
    assert budget.nbytes == DEFAULT_MEMORY_BUDGET == 2 * 2**30
    # One chunk is 512 MiB: rows of 1 KiB, 3 KiB, 1 MiB.
    assert budget.rows_for(1024) == 2**19
    assert budget.rows_for(3 * 1024) == 2**29 // (3 * 1024)
    assert budget.rows_for(2**20) == 512
    assert budget.rows_for(2**40) == 1
    assert budget.rows_for(2**40, minimum=16) == 16
    assert budget.rows_for(1, maximum=8192) == 8192
    assert budget.can_cache(2 * 2**30) and not budget.can_cache(2 * 2**30 + 1)


def test_batch_size_sets_gradient_chunks_but_not_other_blocks():
    budget = MemoryBudget(memory_budget=4096, batch_size=7)
    assert budget.batch_rows(10, minimum=16, maximum=8192) == 7
    assert budget.rows_for(10) == 1024 // 10
    assert MemoryBudget(4096).batch_rows(10, minimum=16) == 102
    assert MemoryBudget(4096).batch_rows(1000, minimum=16) == 16


def test_a_small_budget_stops_caching_and_keeps_the_scores():
    # 400 rows of 9 factor entries in float64 (29 kB) do not fit in 10 kB,
    # which still holds one row's gradient work per chunk.
    X, y = make_classification(n_samples=400, n_features=6, random_state=0)
    kw = dict(method="tracin", dtype="float64")
    big = InfluenceScorer(LogisticRegression(), **kw).fit(X, y)
    small = InfluenceScorer(LogisticRegression(), memory_budget=10_000, **kw)
    small = small.fit(X, y)
    assert big.method_._train_cache and not small.method_._train_cache
    np.testing.assert_allclose(
        small.influence(X[:5], y[:5]), big.influence(X[:5], y[:5]), rtol=1e-12
    )
    np.testing.assert_allclose(small.self_influence_, big.self_influence_, rtol=1e-12)


@pytest.mark.parametrize("bad", [0, -5, 1.5, "2GB"])
def test_memory_budget_is_validated(bad):
    X, y = make_classification(n_samples=30, n_features=4, random_state=0)
    with pytest.raises(ValueError, match="memory_budget"):
        InfluenceScorer(LogisticRegression(), memory_budget=bad).fit(X, y)
    with pytest.raises(ValueError, match="memory_budget"):
        NoisyLabelFilter(LogisticRegression(), memory_budget=bad).fit_resample(X, y)


def test_draw_seed_follows_numpy_and_torch_generators():
    rng, ref = np.random.RandomState(3), np.random.RandomState(3)
    assert [draw_seed(rng) for _ in range(3)] == [
        ref.randint(2**31 - 1) for _ in range(3)
    ]
    assert draw_seed(5) == np.random.RandomState(5).randint(0, 2**31 - 1)
    gen, ref_gen = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert draw_seed(gen) == int(torch.randint(0, 2**31 - 1, (1,), generator=ref_gen))
    # A generator made from a generator is seeded by one draw of it.
    child = make_generator(torch.Generator().manual_seed(1))
    expected = torch.Generator().manual_seed(
        draw_seed(torch.Generator().manual_seed(1))
    )
    assert torch.equal(
        torch.rand(4, generator=child), torch.rand(4, generator=expected)
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_falls_back_to_the_cpu_only_when_loading():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.warns(SkinfluenceWarning, match="using the CPU"):
        assert resolve_device("cuda", fallback=True) == torch.device("cpu")


def test_default_budget_is_at_most_half_the_available_memory(monkeypatch):
    import skinfluence.utils._torch as torch_utils

    monkeypatch.setattr(torch_utils, "_available_memory", lambda: 2**30)
    assert MemoryBudget().nbytes == 2**29
    monkeypatch.setattr(torch_utils, "_available_memory", lambda: None)
    assert MemoryBudget().nbytes == DEFAULT_MEMORY_BUDGET
    assert MemoryBudget(1000).nbytes == 1000  # an explicit budget is kept

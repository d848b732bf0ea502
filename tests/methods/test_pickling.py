"""Every method and solver survives pickling with identical scores, and the
pickled state holds no tensor off the CPU and nothing of the training data's
Hessian problem."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skinfluence import (
    FastIF,
    InfluenceFunction,
    InfluenceScorer,
    IPEnsemble,
    LissaSolver,
    NewtonLOO,
    TracIn,
    TracInCP,
)
from skinfluence.exceptions import SkinfluenceWarning
from skinfluence.gradients import HessianProblem
from skinfluence.methods import SOLVERS, BaseSolver
from skinfluence.models import ModelView, default_estimator

SOLVER_SETTINGS = {
    "exact": {},
    "cg": {"max_iter": 200},
    "lissa": {"depth": 50},
    "arnoldi": {"rank": 5},
    "ekfac": {},
}

METHODS = {
    "tracin": lambda: TracIn(),
    "newton_loo": lambda: NewtonLOO(),
    "fastif": lambda: FastIF(n_neighbors=15, depth=20),
    "ip_ensemble_noise": lambda: IPEnsemble(n_estimators=2, random_state=0),
    "ip_ensemble_dropout": lambda: IPEnsemble(
        n_estimators=2, kind="dropout", random_state=0
    ),
    "ip_ensemble_refits": lambda: IPEnsemble(
        n_estimators=2, kind="refits", random_state=0
    ),
    **{
        f"influence_function_{name}": (
            lambda name=name: InfluenceFunction(
                solver=SOLVERS[name](**SOLVER_SETTINGS[name]), damping=0.05
            )
        )
        for name in SOLVERS
    },
}

# Methods that need the training checkpoints of a skorch net.
NET_METHODS = {
    "tracin_cp": lambda: TracInCP(),
    "ip_ensemble_checkpoints": lambda: IPEnsemble(
        n_estimators=2, kind="checkpoints", random_state=0
    ),
}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=60, n_features=5, n_informative=3, n_redundant=0, random_state=0
    )
    return X, y


def _net(X):
    return default_estimator("classification", X.shape[1], 2).set_params(max_epochs=3)


def _results(scorer, X, y):
    return (
        scorer.influence(X[:4], y[:4]),
        scorer.self_influence(X[:3], y[:3]),
        scorer.self_influence_,
    )


def _grid():
    cases = [pytest.param(name, False, id=name) for name in METHODS]
    cases += [pytest.param(name, True, id=name) for name in NET_METHODS]
    return cases


@pytest.mark.parametrize("name, net", _grid())
@pytest.mark.parametrize("when", ["fitted", "used"])
def test_every_method_and_solver_round_trips_with_identical_scores(
    data, name, net, when
):
    X, y = data
    make = NET_METHODS[name] if net else METHODS[name]
    estimator = _net(X) if net else LogisticRegression()
    scorer = InfluenceScorer(estimator, method=make(), random_state=0).fit(X, y)
    if when == "fitted":
        # Pickled straight after fit: nothing was computed yet.
        restored = pickle.loads(pickle.dumps(scorer))
        expected = _results(scorer, X, y)
    else:
        # Pickled after use: caches filled and solvers bound.
        expected = _results(scorer, X, y)
        restored = pickle.loads(pickle.dumps(scorer))
    for got, want in zip(_results(restored, X, y), expected):
        np.testing.assert_array_equal(got, want)


def test_lissa_on_logistic_regression_scores_after_a_round_trip(data):
    X, y = data
    method = InfluenceFunction(solver=LissaSolver(depth=50))
    scorer = InfluenceScorer(LogisticRegression(), method=method, random_state=0)
    scorer.fit(X, y)
    restored = pickle.loads(pickle.dumps(scorer))
    assert not restored.method_.solver_.is_bound
    np.testing.assert_array_equal(
        restored.influence(X[:2], y[:2]), scorer.influence(X[:2], y[:2])
    )
    assert restored.method_.solver_.is_bound


def _walk(obj, seen, found, pickled=True):
    """Every tensor and every object of the given kinds reachable from a
    state (dicts, sequences and object attributes: what ``__getstate__``
    hands to pickle, or with ``pickled=False`` the live attributes)."""
    if id(obj) in seen:
        return
    # Keep the object alive: ids of freed temporaries are reused.
    seen[id(obj)] = obj
    if isinstance(obj, torch.Tensor):
        found["tensors"].append(obj)
        return
    if isinstance(obj, HessianProblem | ModelView | torch.nn.Module):
        found["model"].append(obj)
        return
    if isinstance(obj, dict):
        for v in obj.values():
            _walk(v, seen, found, pickled)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _walk(v, seen, found, pickled)
    elif hasattr(obj, "__dict__"):
        state = obj.__getstate__() if pickled else vars(obj)
        _walk(state if isinstance(state, dict) else vars(obj), seen, found, pickled)


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.gpu),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "name",
    ["tracin", "fastif", "ip_ensemble_noise"]
    + [f"influence_function_{s}" for s in SOLVERS],
)
def test_pickled_method_state_is_on_the_cpu_without_the_problem(data, device, name):
    X, y = data
    scorer = InfluenceScorer(
        LogisticRegression(), method=METHODS[name](), device=device, random_state=0
    ).fit(X, y)
    scorer.influence(X[:2], y[:2])
    found = {"tensors": [], "model": []}
    _walk(scorer.method_.__getstate__(), {}, found)
    assert found["tensors"], "the fitted state caches tensors"
    assert {t.device.type for t in found["tensors"]} == {"cpu"}
    # The Hessian problem holds the model and the training data: not pickled.
    assert found["model"] == []
    solver = getattr(scorer.method_, "solver_", None)
    if solver is not None:
        assert isinstance(solver, BaseSolver) and solver.is_bound
        assert solver.__getstate__()["_problem"] is None
    if device == "cuda" and scorer.method_._train_cache:
        # The live state (here the cached training gradients) stays where
        # it works.
        live = {"tensors": [], "model": []}
        _walk(vars(scorer.method_), {}, live, pickled=False)
        assert "cuda" in {t.device.type for t in live["tensors"]}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_scorer_set_to_cuda_is_re_resolved_on_load(data):
    # What a scorer fitted with device="cuda" meets on a machine without
    # CUDA: its tensors were pickled on the CPU, its device is resolved
    # again on first use, and the CPU is used with a warning.
    X, y = data
    method = InfluenceFunction(solver=LissaSolver(depth=50), damping=0.05)
    scorer = InfluenceScorer(LogisticRegression(), method=method, random_state=0)
    scorer.fit(X, y)
    expected = scorer.influence(X[:3], y[:3])
    scorer.set_params(device="cuda")
    restored = pickle.loads(pickle.dumps(scorer))
    with pytest.warns(SkinfluenceWarning, match="using the CPU"):
        got = restored.influence(X[:3], y[:3])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.gpu
def test_scorer_fitted_on_cuda_loads_in_a_process_without_cuda(data, tmp_path):
    X, y = data
    method = InfluenceFunction(solver=LissaSolver(depth=50), damping=0.05)
    scorer = InfluenceScorer(
        LogisticRegression(), method=method, device="cuda", dtype="float64"
    ).fit(X, y)
    expected = scorer.influence(X[:4], y[:4])
    path = tmp_path / "scorer.pkl"
    path.write_bytes(pickle.dumps(scorer))
    np.save(tmp_path / "X.npy", X[:4])
    np.save(tmp_path / "y.npy", y[:4])
    code = textwrap.dedent(
        f"""
        import pickle, warnings
        import numpy as np
        import torch
        assert not torch.cuda.is_available()
        scorer = pickle.loads(open({str(path)!r}, "rb").read())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores = scorer.influence(
                np.load({str(tmp_path / "X.npy")!r}), np.load({str(tmp_path / "y.npy")!r})
            )
        assert any("not available" in str(w.message) for w in caught)
        np.save({str(tmp_path / "out.npy")!r}, scores)
        """
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    got = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-12)

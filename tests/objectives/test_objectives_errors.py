"""Bad input to the objectives: clear errors naming the fix."""

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skinfluence import CallableObjective, InfluenceScorer, RobustnessObjective
from skinfluence.datasets import make_fairness_problem


@pytest.fixture(scope="module")
def data():
    X, y, s = make_fairness_problem(n_samples=80, random_state=0)
    est = LogisticRegression().fit(X[:40], y[:40])
    return X, y, s, est


def _scorer(data, objective):
    X, y, _, est = data
    return InfluenceScorer(FrozenEstimator(est), objective=objective).fit(
        X[:40], y[:40]
    )


@pytest.mark.parametrize("objective", ["demographic_parity", "equal_opportunity"])
def test_fairness_without_sensitive_features(data, objective):
    X, y, *_ = data
    with pytest.raises(ValueError, match="needs sensitive_features"):
        _scorer(data, objective).influence(X[40:], y[40:])


@pytest.mark.parametrize("objective", ["demographic_parity", "equal_opportunity"])
def test_sensitive_features_of_wrong_length(data, objective):
    X, y, s, _ = data
    with pytest.raises(
        ValueError, match="sensitive_features has 39 rows but the query X has 40"
    ):
        _scorer(data, objective).influence(X[40:], y[40:], sensitive_features=s[41:])


def test_sensitive_features_with_a_single_group(data):
    X, y, *_ = data
    with pytest.raises(ValueError, match=r"single group \('x'\)"):
        _scorer(data, "demographic_parity").influence(
            X[40:], y[40:], sensitive_features=["x"] * 40
        )


def test_sensitive_features_with_several_columns(data):
    X, y, s, _ = data
    two = np.c_[s[40:], s[40:]]
    with pytest.raises(
        ValueError, match=r"one column of group labels; got shape \(40, 2\)"
    ):
        _scorer(data, "demographic_parity").influence(
            X[40:], y[40:], sensitive_features=two
        )


def test_equal_opportunity_without_positives_in_a_group(data):
    X, y, s, _ = data
    groups = s[40:].copy()
    groups[y[40:] == 1] = 1
    assert (groups == 0).any()
    with pytest.raises(
        ValueError, match="group 0 of sensitive_features has no positive rows"
    ):
        _scorer(data, "equal_opportunity").influence(
            X[40:], y[40:], sensitive_features=groups
        )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"epsilon": -0.1}, "'epsilon' parameter of RobustnessObjective must be"),
        ({"steps": 0}, "'steps' parameter of RobustnessObjective must be"),
        ({"attack": "cw"}, "'attack' parameter of RobustnessObjective must be"),
    ],
)
def test_bad_attack_settings(data, params, match):
    X, y, *_ = data
    with pytest.raises(ValueError, match=match):
        _scorer(data, RobustnessObjective(**params)).influence(X[40:42], y[40:42])


def test_unknown_objective_and_extra_parameters(data):
    X, y, s, _ = data
    with pytest.raises(ValueError, match="objective='parity' is not known"):
        _scorer(data, "parity").influence(X[40:42], y[40:42])
    with pytest.raises(TypeError, match="objective='robustness' takes no extra"):
        _scorer(data, "robustness").influence(
            X[40:42], y[40:42], sensitive_features=s[40:42]
        )


def test_callable_returning_the_wrong_thing(data):
    X, y, *_ = data
    with pytest.raises(
        ValueError,
        match=r"returned shape \(40,\); a set-level objective returns a scalar",
    ):
        _scorer(data, lambda out, t: out.reshape(-1)).influence(X[40:], y[40:])
    with pytest.raises(
        TypeError, match="returned float; it must return a torch.Tensor"
    ):
        _scorer(data, lambda out, t: 1.0).influence(X[40:], y[40:])
    per_row = CallableObjective(lambda out, t: out.sum(), per_row=True)
    with pytest.raises(
        ValueError, match="with per_row=True; return one value per query row"
    ):
        _scorer(data, per_row).influence(X[40:43], y[40:43])


def test_user_data_is_not_modified(data):
    X, y, s, _ = data
    Xq, yq, sq = X[40:].copy(), y[40:].copy(), s[40:].copy()
    _scorer(data, "demographic_parity").influence(Xq, yq, sensitive_features=sq)
    _scorer(data, RobustnessObjective("fgsm")).influence(Xq, yq)
    np.testing.assert_array_equal(Xq, X[40:])
    np.testing.assert_array_equal(sq, s[40:])
    assert torch.is_tensor(torch.as_tensor(Xq))


def test_objective_registry_names_objects_and_callables():
    from skinfluence.objectives import (
        OBJECTIVES,
        CallableObjective,
        LossObjective,
        get_objective,
        register_objective,
    )

    assert "CallableObjective" not in OBJECTIVES
    with pytest.raises(ValueError, match="is not known"):
        get_objective("CallableObjective")

    def f(output, y):
        return output.sum()

    wrapped = get_objective(f)
    assert isinstance(wrapped, CallableObjective) and wrapped.func is f
    trimmed = LossObjective(trim=0.1)
    assert get_objective(trimmed) is not trimmed
    assert get_objective(trimmed).trim == 0.1

    class HalfLoss(LossObjective):
        pass

    register_objective("half_loss", HalfLoss)
    try:
        assert isinstance(get_objective("half_loss"), HalfLoss)
    finally:
        del OBJECTIVES["half_loss"]
    with pytest.raises(TypeError, match="BaseObjective subclass"):
        register_objective("bad", dict)
    with pytest.raises(TypeError, match="objective must be one of"):
        get_objective(3)

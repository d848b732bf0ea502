"""scikit-learn's estimator checks with each inverse-Hessian solver selected."""

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import (
    ArnoldiSolver,
    CGSolver,
    EKFACSolver,
    InfluenceFunction,
    InfluenceScorer,
    NewtonLOO,
)
from skinfluence.utils.estimator_checks import expected_failed_checks

ESTIMATORS = [
    InfluenceScorer(
        LogisticRegression(), method=InfluenceFunction(solver=solver, damping=0.01)
    )
    for solver in (CGSolver(), ArnoldiSolver(rank=5), EKFACSolver())
] + [InfluenceScorer(LogisticRegression(), method=NewtonLOO())]


@pytest.mark.slow
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_estimator_checks(estimator, check):
    check(estimator)

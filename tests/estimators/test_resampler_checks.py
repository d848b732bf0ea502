import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import InfluentialSubsetSelector, NoisyLabelFilter
from skinfluence.utils.estimator_checks import expected_failed_checks

ESTIMATORS = [
    NoisyLabelFilter(
        LogisticRegression(), cv=2, final_estimator=LogisticRegression(), random_state=0
    ),
    # The checks' datasets have 6-8 rows per class: a larger validation split
    # keeps at least 2 validation rows of each.
    InfluentialSubsetSelector(
        LogisticRegression(),
        final_estimator=LogisticRegression(),
        validation_fraction=0.5,
        cv=None,
        random_state=0,
    ),
    InfluentialSubsetSelector(
        LogisticRegression(), final_estimator=LogisticRegression(), random_state=0
    ),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# What a user gets with no arguments: the default MLP detector and selector.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@parametrize_with_checks(
    [NoisyLabelFilter(), InfluentialSubsetSelector()],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_compatible_at_defaults(estimator, check):
    check(estimator)

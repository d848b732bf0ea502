"""scikit-learn's estimator checks on every public estimator."""

from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import InfluenceFineTuner, InfluenceScorer
from skinfluence.utils.estimator_checks import expected_failed_checks

ESTIMATORS = [
    InfluenceScorer(LogisticRegression()),
    InfluenceScorer(LogisticRegression(), method="influence_function"),
    InfluenceFineTuner(),
    InfluenceFineTuner(SGDClassifier(loss="log_loss", random_state=0)),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)

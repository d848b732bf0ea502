"""Expected failures of scikit-learn's estimator checks, with reasons."""

__all__ = ["expected_failed_checks"]


def expected_failed_checks(estimator):
    """``{check_name: reason}`` for ``check_estimator``/``parametrize_with_checks``.

    Parameters
    ----------
    estimator : estimator instance

    Returns
    -------
    dict
    """
    name = type(estimator).__name__
    failures = {}
    if name == "InfluenceScorer":
        failures.update(
            {
                "check_sample_weight_equivalence_on_dense_data": (
                    "sample_weight is passed to the wrapped estimator's fit but does "
                    "not enter the influence objective"
                ),
            }
        )
    if name in ("NoisyLabelFilter", "InfluentialSubsetSelector"):
        failures.update(
            {
                "check_sample_weight_equivalence_on_dense_data": (
                    "which rows are dropped is decided from the unweighted rows; "
                    "sample_weight only reaches final_estimator"
                ),
            }
        )
    if name == "InfluentialSubsetSelector":
        failures.update(
            {
                "check_fit2d_1feature": (
                    "the check's 10-row dataset leaves fewer than 2 validation rows "
                    "of a class, which is refused before the feature count matters"
                ),
            }
        )
    return failures

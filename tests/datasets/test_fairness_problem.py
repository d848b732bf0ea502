import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skinfluence.datasets import make_fairness_problem


def test_bias_is_the_flip_of_group_zero_positives():
    X, y, s, biased = make_fairness_problem(4000, random_state=0, return_biased=True)
    assert X.shape == (4000, 5)
    assert set(np.unique(s)) == {0, 1}
    assert np.all(s[biased] == 0) and np.all(y[biased] == 0)
    fair = np.where(biased, 1, y)
    # Fair labels have the same positive rate in both groups; the recorded
    # ones lose about `bias` of group 0's positives.
    assert abs(fair[s == 0].mean() - fair[s == 1].mean()) < 0.05
    lost = biased.sum() / fair[s == 0].sum()
    assert abs(lost - 0.3) < 0.05
    # The proxy feature carries the group.
    assert X[s == 1, 0].mean() - X[s == 0, 0].mean() > 1.5


def test_model_inherits_the_bias_and_no_bias_means_no_flips():
    X, y, s = make_fairness_problem(2000, bias=0.5, random_state=1)
    p = LogisticRegression().fit(X, y).predict_proba(X)[:, 1]
    assert p[s == 1].mean() - p[s == 0].mean() > 0.1
    _, _, _, biased = make_fairness_problem(
        500, bias=0.0, random_state=1, return_biased=True
    )
    assert not biased.any()


def test_bad_parameters():
    with pytest.raises(ValueError, match="'bias' parameter"):
        make_fairness_problem(100, bias=1.5)
    with pytest.raises(ValueError, match="'n_features' parameter"):
        make_fairness_problem(100, n_features=1)

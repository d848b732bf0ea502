import numpy as np
import pytest
from scipy.stats import zscore

from skinfluence.actions import drop_harmful, most_harmful, relabel_harmful, reweight


def test_most_harmful_is_lowest_first():
    scores = np.array([0.3, -1.0, 2.0, -0.5, 0.0])
    np.testing.assert_array_equal(most_harmful(scores, 3), [1, 3, 4])
    np.testing.assert_array_equal(most_harmful(scores, fraction=0.4), [1, 3])
    assert most_harmful(scores, 0).size == 0


def test_drop_harmful_keeps_order_and_does_not_mutate():
    X = np.arange(10.0).reshape(5, 2)
    y = np.array([0, 1, 0, 1, 0])
    scores = np.array([0.3, -1.0, 2.0, -0.5, 0.0])
    X0, y0 = X.copy(), y.copy()
    X_kept, y_kept, kept = drop_harmful(X, y, scores, n=2)
    np.testing.assert_array_equal(kept, [0, 2, 4])
    np.testing.assert_array_equal(X_kept, X[[0, 2, 4]])
    np.testing.assert_array_equal(y_kept, [0, 0, 0])
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_relabel_flips_binary_or_uses_given_labels():
    y = np.array(["no", "yes", "no", "yes"])
    scores = np.array([-3.0, 1.0, -1.0, 2.0])
    y_new, changed = relabel_harmful(y, scores, n=2)
    np.testing.assert_array_equal(changed, [0, 2])
    np.testing.assert_array_equal(y_new, ["yes", "yes", "yes", "yes"])
    assert y[0] == "no"
    y3 = np.array([0, 1, 2, 1])
    y_new, _ = relabel_harmful(y3, scores, n=1, labels=[2, 2, 2, 2])
    np.testing.assert_array_equal(y_new, [2, 1, 2, 1])


def test_reweight_is_exp_of_twice_the_zscore():
    scores = np.random.default_rng(0).normal(size=20)
    np.testing.assert_allclose(reweight(scores), np.exp(2 * zscore(scores)))
    np.testing.assert_allclose(
        reweight(scores, strength=0.5), np.exp(0.5 * zscore(scores))
    )
    np.testing.assert_array_equal(reweight(np.ones(4)), np.ones(4))


def test_bad_input():
    with pytest.raises(ValueError, match="exactly one of n .* and fraction"):
        most_harmful([1.0, 2.0])
    with pytest.raises(ValueError, match="exactly one of n"):
        most_harmful([1.0, 2.0], 1, fraction=0.5)
    with pytest.raises(ValueError, match="n=3 is larger than the number of rows"):
        most_harmful([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="'fraction' parameter"):
        most_harmful([1.0, 2.0], fraction=1.5)
    with pytest.raises(ValueError, match="NaN or infinity"):
        reweight([1.0, np.nan])
    with pytest.raises(ValueError, match="scores must be 1-D"):
        reweight(np.ones((2, 2)))
    with pytest.raises(ValueError, match="'strength' parameter"):
        reweight([1.0, 2.0], strength=-1)
    with pytest.raises(ValueError, match="one score .* per row of X"):
        drop_harmful(np.ones((3, 2)), [0, 1, 0], [1.0, 2.0], n=1)
    with pytest.raises(ValueError, match="y has 3 classes; pass labels="):
        relabel_harmful([0, 1, 2], [1.0, 2.0, 3.0], n=1)

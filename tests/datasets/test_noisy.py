import numpy as np
import pytest

from skinfluence.datasets import load_noisy, make_noisy_labels


def test_symmetric_flips_exact_count_and_change_labels():
    y = np.repeat(np.array(["a", "b", "c", "d"]), 25)
    y_before = y.copy()
    y_noisy, is_noisy = make_noisy_labels(None, y, 0.3, random_state=1)
    assert is_noisy.sum() == 30
    assert np.all(y_noisy[is_noisy] != y[is_noisy])
    assert np.all(y_noisy[~is_noisy] == y[~is_noisy])
    assert set(np.unique(y_noisy)) <= set(np.unique(y))
    np.testing.assert_array_equal(y, y_before)
    # Symmetric: flipped rows reach every other class.
    pairs = {(a, b) for a, b in zip(y[is_noisy], y_noisy[is_noisy])}
    assert len(pairs) > 4


def test_asymmetric_flips_go_to_the_next_class():
    y = np.repeat([3, 5, 9], 20)
    y_noisy, is_noisy = make_noisy_labels(
        None, y, 0.5, kind="asymmetric", random_state=0
    )
    nxt = {3: 5, 5: 9, 9: 3}
    assert all(nxt[a] == b for a, b in zip(y[is_noisy], y_noisy[is_noisy]))


def test_make_noisy_labels_errors():
    with pytest.raises(ValueError, match="rate"):
        make_noisy_labels(None, [0, 1], 1.5)
    with pytest.raises(ValueError, match="at least two classes"):
        make_noisy_labels(None, [0, 0, 0], 0.1)
    with pytest.raises(ValueError, match="rows"):
        make_noisy_labels(np.zeros((3, 2)), [0, 1], 0.1)


def test_load_noisy_flips_only_training_labels():
    d = load_noisy("breast_cancer", rate=0.2, test_size=0.25, random_state=3)
    assert len(d.data) + len(d.data_test) == 569
    assert d.is_noisy.sum() == round(0.2 * len(d.data))
    np.testing.assert_array_equal(d.target != d.target_true, d.is_noisy)
    np.testing.assert_allclose(d.data.mean(axis=0), 0, atol=1e-9)


def test_pairs_flip_to_the_partner_and_random_pairing_is_seeded():
    y = np.repeat(np.arange(6), 30)
    y_noisy, is_noisy = make_noisy_labels(None, y, 0.25, kind="pairs", random_state=4)
    assert is_noisy.sum() == round(0.25 * len(y))
    assert np.all(y_noisy[~is_noisy] == y[~is_noisy])
    partner = {}
    for a, b in zip(y[is_noisy], y_noisy[is_noisy]):
        assert partner.setdefault(a, b) == b
    # A pairing: each class has one partner, and it is mutual.
    assert all(partner.get(b, a) == a for a, b in partner.items())
    assert len(partner) == 6
    again, _ = make_noisy_labels(None, y, 0.25, kind="pairs", random_state=4)
    np.testing.assert_array_equal(again, y_noisy)


def test_given_pairs_leave_the_other_classes_alone():
    y = np.repeat(np.array(["a", "b", "c"]), 20)
    y_noisy, is_noisy = make_noisy_labels(
        None, y, 0.3, kind="pairs", pairs=[("a", "c")], random_state=0
    )
    assert is_noisy.sum() == 18
    assert not is_noisy[y == "b"].any()
    flips = set(zip(y[is_noisy], y_noisy[is_noisy]))
    assert flips == {("a", "c"), ("c", "a")}


def test_confusion_follows_the_matrix():
    y = np.repeat([0, 1, 2], 2000)
    T = np.array([[1.0, 0.0, 0.0], [0.1, 0.6, 0.3], [0.0, 0.2, 0.8]])
    y_noisy, is_noisy = make_noisy_labels(
        None, y, 0.2, kind="confusion", transition=T, random_state=0
    )
    assert is_noisy.sum() == 1200
    assert not is_noisy[y == 0].any()
    # Rows are drawn in proportion to 1 - T[i, i]: 0.4 against 0.2.
    share = is_noisy[y == 1].sum() / is_noisy.sum()
    assert abs(share - 2 / 3) < 0.05
    # New labels of class 1 in proportion 0.1 : 0.3.
    to0 = np.mean(y_noisy[is_noisy & (y == 1)] == 0)
    assert abs(to0 - 0.25) < 0.05
    assert np.all(y_noisy[is_noisy & (y == 2)] == 1)


def test_instance_noise_flips_rows_near_the_boundary_to_the_closest_class():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(
        600, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    X_before = X.copy()
    y_noisy, is_noisy = make_noisy_labels(X, y, 0.2, kind="instance", random_state=0)
    np.testing.assert_array_equal(X, X_before)
    assert is_noisy.sum() == 120
    Xs = StandardScaler().fit_transform(X)
    proba = LogisticRegression(max_iter=1000).fit(Xs, y).predict_proba(Xs)
    rows = np.arange(len(y))
    others = proba.copy()
    others[rows, y] = -np.inf
    margin = proba[rows, y] - others.max(axis=1)
    # Flipped rows are nearer the boundary; each goes to the closest other class.
    assert np.abs(margin[is_noisy]).mean() < np.abs(margin[~is_noisy]).mean() - 0.1
    np.testing.assert_array_equal(y_noisy[is_noisy], others[is_noisy].argmax(axis=1))


def test_new_kinds_bad_input():
    y = np.repeat([0, 1, 2], 10)
    with pytest.raises(ValueError, match="odd number.*pass pairs="):
        make_noisy_labels(None, y, 0.1, kind="pairs")
    with pytest.raises(ValueError, match="not classes of y"):
        make_noisy_labels(None, y, 0.1, kind="pairs", pairs=[(0, 7)])
    with pytest.raises(ValueError, match="at most one pair"):
        make_noisy_labels(None, y, 0.1, kind="pairs", pairs=[(0, 1), (1, 2)])
    with pytest.raises(ValueError, match="can flip only 20"):
        make_noisy_labels(None, y, 0.9, kind="pairs", pairs=[(0, 1)])
    with pytest.raises(ValueError, match="row-stochastic"):
        make_noisy_labels(
            None, y, 0.1, kind="confusion", transition=np.full((3, 3), 0.5)
        )
    with pytest.raises(ValueError, match=r"shape \(n_classes, n_classes\) = \(3, 3\)"):
        make_noisy_labels(None, y, 0.1, kind="confusion", transition=np.eye(2))
    with pytest.raises(ValueError, match="non-negative"):
        bad = np.array([[1.5, -0.5, 0], [0, 1, 0], [0, 0, 1]])
        make_noisy_labels(None, y, 0.1, kind="confusion", transition=bad)
    with pytest.raises(ValueError, match="can flip only 0"):
        make_noisy_labels(None, y, 0.1, kind="confusion", transition=np.eye(3))
    with pytest.raises(ValueError, match="transition is only used"):
        make_noisy_labels(None, y, 0.1, transition=np.eye(3))
    with pytest.raises(ValueError, match="pass the features X"):
        make_noisy_labels(None, y, 0.1, kind="instance")


def test_load_noisy_passes_the_new_kinds_on():
    T = np.array([[0.8, 0.2, 0.0], [0.1, 0.7, 0.2], [0.0, 0.3, 0.7]])
    d = load_noisy("wine", rate=0.2, kind="confusion", transition=T, random_state=0)
    assert d.is_noisy.sum() == round(0.2 * 178)
    assert not np.any((d.target_true == 0) & (d.target == 2))
    d = load_noisy("iris", rate=0.1, kind="instance", random_state=0)
    np.testing.assert_array_equal(d.target != d.target_true, d.is_noisy)

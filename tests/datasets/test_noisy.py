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

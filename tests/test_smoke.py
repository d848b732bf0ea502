import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import scale

from skinfluence import InfluenceScorer


def test_scorer_shapes_and_self_influence_matches_diagonal():
    X, y = load_breast_cancer(return_X_y=True)
    X = scale(X)[:120]
    y = y[:120]
    for method in ["tracin", "influence_function"]:
        s = InfluenceScorer(LogisticRegression(), method=method, dtype="float64").fit(
            X, y
        )
        full = s.influence(X, y)
        assert full.shape == (120, 120)
        np.testing.assert_allclose(
            np.diag(full), s.self_influence_, rtol=1e-8, atol=1e-14
        )

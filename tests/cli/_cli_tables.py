import numpy as np
import pytest


def new_user_table(n=400, seed=0):
    """A table as a user would bring it: string labels, a categorical column,
    a numeric column with a few missing values, an uninformative column, and
    10% of the labels flipped. Returns the frame and the flipped mask."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(seed)
    classes = np.array(["bronze", "silver", "gold"])
    k = rng.integers(0, 3, n)
    centers = np.array([[0.0, 0.0], [2.5, 0.0], [1.25, 2.2]])
    xy = centers[k] + rng.normal(scale=0.7, size=(n, 2))
    regions = np.array(["north", "south", "east"])
    region_p = np.full((3, 3), 0.2) + 0.4 * np.eye(3)
    region = [regions[rng.choice(3, p=region_p[c])] for c in k]
    income = 30 + 10 * k + rng.normal(scale=5, size=n)
    income[rng.choice(n, 12, replace=False)] = np.nan
    y = classes[k].copy()
    flip = rng.choice(n, n // 10, replace=False)
    y[flip] = classes[(k[flip] + rng.integers(1, 3, len(flip))) % 3]
    frame = pd.DataFrame(
        {
            "age": xy[:, 0] * 10 + 40,
            "score": xy[:, 1],
            "region": region,
            "income": income,
            "noise": rng.normal(size=n),
            "tier": y,
        }
    )
    truth = np.zeros(n, bool)
    truth[flip] = True
    return frame, truth

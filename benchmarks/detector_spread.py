"""NoisyLabelFilter on a spread of problems that no other benchmark uses.

Defaults are chosen on data of many shapes, not on the cells of
``noisy_labels.py``: this script scores a ``NoisyLabelFilter``
configuration on 17 problems -- iris, ``make_classification`` with 2, 3, 4,
6 and 10 classes, ``make_blobs`` with 4, 5 and 6 centres and
``make_gaussian_quantiles`` with 3 and 4 classes; 150 to 2,000 rows,
standardised -- with symmetric, pair, confusion-matrix and
instance-dependent flips of 10% to 25% (``make_noisy_labels``; the
confusion matrix keeps 0.7 of each class, gives 0.2 to the next class and
spreads the rest). It prints each problem's average precision of the noise
scores, averaged over the seeds (each seed draws the data and the flips),
and their mean.

Run: ``python benchmarks/detector_spread.py [--seeds 0,1,2,3]
[--params '{"n_repeats": 1}']`` (``--params``: JSON keyword arguments of
``NoisyLabelFilter``; the default configuration when omitted). The default
took about 150 s for seeds 0-3 on one core of a two-core AMD EPYC and gave a
mean of 0.8135.
"""

import argparse
import json
import re
import time
import warnings

import numpy as np
from sklearn.datasets import (
    load_iris,
    make_blobs,
    make_classification,
    make_gaussian_quantiles,
)
from sklearn.metrics import average_precision_score
from sklearn.preprocessing import StandardScaler

from skinfluence import NoisyLabelFilter
from skinfluence.datasets import make_noisy_labels

# (data, kind, rate): data is "iris" or "<generator><classes>_<rows>".
PROBLEMS = [
    ("iris", "symmetric", 0.2),
    ("iris", "confusion", 0.2),
    ("classification2_1000", "symmetric", 0.1),
    ("classification2_1000", "instance", 0.2),
    ("classification3_1000", "confusion", 0.2),
    ("classification3_1000", "symmetric", 0.2),
    ("classification6_2000", "pairs", 0.25),
    ("classification6_2000", "instance", 0.1),
    ("classification10_2000", "symmetric", 0.2),
    ("classification10_2000", "pairs", 0.2),
    ("blobs4_1000", "pairs", 0.2),
    ("blobs4_1000", "instance", 0.2),
    ("blobs5_600", "confusion", 0.15),
    ("quantiles3_1000", "symmetric", 0.1),
    ("quantiles4_1500", "confusion", 0.25),
    ("classification4_300", "symmetric", 0.2),
    ("blobs6_450", "pairs", 0.2),
]


def confusion_matrix(k):
    """Each class keeps 0.7, gives 0.2 to the next class and spreads 0.1
    over the others (two classes: 0.3 to the other)."""
    if k == 2:
        return np.array([[0.7, 0.3], [0.3, 0.7]])
    T = np.full((k, k), 0.1 / (k - 2))
    for i in range(k):
        T[i, i] = 0.7
        T[i, (i + 1) % k] = 0.2
    return T


def load(name, seed):
    if name == "iris":
        X, y = load_iris(return_X_y=True)
    else:
        kind, k, n = re.fullmatch(r"([a-z]+)(\d+)_(\d+)", name).groups()
        k, n = int(k), int(n)
        rs = 100 + seed
        if kind == "classification":
            X, y = make_classification(
                n,
                20,
                n_informative=8,
                n_classes=k,
                n_clusters_per_class=2 if k < 6 else 1,
                random_state=rs,
            )
        elif kind == "blobs":
            X, y = make_blobs(n, 10, centers=k, cluster_std=3.0, random_state=rs)
        else:
            X, y = make_gaussian_quantiles(
                n_samples=n, n_features=6, n_classes=k, random_state=rs
            )
    return StandardScaler().fit_transform(X), y


def score(params, seeds):
    """Average precision per problem, averaged over ``seeds``."""
    out = {}
    for name, kind, rate in PROBLEMS:
        aps = []
        for seed in seeds:
            X, y = load(name, seed)
            extra = {}
            if kind == "confusion":
                extra["transition"] = confusion_matrix(len(np.unique(y)))
            noisy, flipped = make_noisy_labels(
                X, y, rate, kind=kind, random_state=seed, **extra
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                filt = NoisyLabelFilter(random_state=seed, **params).fit(X, noisy)
            aps.append(average_precision_score(flipped, filt.noise_scores_))
        out[f"{name} {kind} {rate:.0%}"] = float(np.mean(aps))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--params", default="{}", help="JSON NoisyLabelFilter kwargs")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    params = json.loads(args.params)
    if not isinstance(params, dict):
        parser.error("--params must be a JSON object of NoisyLabelFilter arguments")
    start = time.perf_counter()
    results = score(params, seeds)
    print(f"NoisyLabelFilter({params}), mean over seeds {seeds}")
    for problem, ap in results.items():
        print(f"{problem:<36}{ap:>8.4f}")
    mean = np.mean(list(results.values()))
    print(f"{'mean':<36}{mean:>8.4f}   ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

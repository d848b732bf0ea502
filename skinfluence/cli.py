"""Command line: find mislabeled rows of a built-in dataset by self-influence."""

import argparse
import time

import numpy as np


def _demo(args):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from . import InfluenceScorer

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(args.seed)
    n_flip = int(round(args.noise * len(y)))
    flipped = rng.choice(len(y), n_flip, replace=False)
    y_noisy = y.copy()
    y_noisy[flipped] = (y[flipped] + rng.integers(1, 10, n_flip)) % 10
    truth = np.zeros(len(y), bool)
    truth[flipped] = True

    estimator = (
        None if args.estimator == "mlp" else LogisticRegression(C=0.1, max_iter=500)
    )
    start = time.perf_counter()
    scorer = InfluenceScorer(estimator, method=args.method, random_state=args.seed)
    scorer.fit(X, y_noisy)
    elapsed = time.perf_counter() - start
    order = np.argsort(-scorer.self_influence_)
    top = order[: args.top]
    hits = int(truth[top].sum())
    print(
        f"digits: {len(y)} rows, {n_flip} labels flipped ({args.noise:.0%}); "
        f"estimator={args.estimator}, method={args.method}, {elapsed:.1f}s"
    )
    print(
        f"{'rank':>4} {'row':>5} {'self-influence':>15} {'label':>5} {'true':>5} flipped"
    )
    for rank, j in enumerate(top[: args.show], 1):
        print(
            f"{rank:>4} {j:>5} {scorer.self_influence_[j]:>15.4g} {y_noisy[j]:>5} "
            f"{y[j]:>5} {'yes' if truth[j] else ''}"
        )
    print(
        f"truly flipped among the top {args.top} by self-influence: {hits}/{args.top} "
        f"(precision {hits / args.top:.2f}; {n_flip / len(y):.2f} by chance)"
    )
    if args.filter:
        from sklearn.metrics import average_precision_score

        from . import NoisyLabelFilter

        start = time.perf_counter()
        filt = NoisyLabelFilter(random_state=args.seed)
        X_kept, _ = filt.fit_resample(X, y_noisy)
        elapsed = time.perf_counter() - start
        flagged = filt.label_issues_
        ap_filter = average_precision_score(truth, filt.noise_scores_)
        ap_self = average_precision_score(truth, scorer.self_influence_)
        print(
            f"NoisyLabelFilter (default, cross-fitted, {elapsed:.1f}s): flagged "
            f"{int(flagged.sum())} rows, {int(truth[flagged].sum())} truly flipped "
            f"(precision {truth[flagged].mean():.2f}, recall "
            f"{truth[flagged].sum() / n_flip:.2f}); kept {len(X_kept)} rows"
        )
        print(
            f"average precision of the noise ranking: filter {ap_filter:.3f}, "
            f"self-influence {ap_self:.3f}"
        )
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="skinfluence",
        description="Rank the rows of sklearn's digits (with flipped labels) by "
        "self-influence and count how many of the top rows are truly flipped.",
    )
    parser.add_argument(
        "--noise", type=float, default=0.1, help="fraction of labels flipped"
    )
    parser.add_argument("--method", default="tracin", help="influence method name")
    parser.add_argument("--estimator", choices=["mlp", "logistic"], default="mlp")
    parser.add_argument(
        "--top", type=int, default=None, help="rows to check (default: number flipped)"
    )
    parser.add_argument("--show", type=int, default=10, help="rows to print")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-filter",
        dest="filter",
        action="store_false",
        help="skip the NoisyLabelFilter comparison",
    )
    args = parser.parse_args(argv)
    if args.top is None:
        args.top = int(round(args.noise * 1797))
    return _demo(args)

"""InfluentialSubsetSelector: does dropping rows by influence help held-out metrics?

1. digits, 20% of training labels flipped (standardised, stratified 80/20
   split, seeds 0-2): drop 10% of the training rows by their influence on
   the validation loss (held-out ``validation_fraction=0.2`` of the noisy
   training rows, or 5-fold cross-fitting), refit LogisticRegression on the
   kept rows and print test accuracy against no selection and against
   dropping 10% at random.
2. The fairness problem of ``skinfluence.datasets`` (when available): drop
   5% of the rows by demographic-parity influence and print the held-out
   parity gap before and after, for 3 seeds.

Run: ``python benchmarks/subset_selection.py``
"""

import time
import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from skinfluence import InfluentialSubsetSelector, objectives
from skinfluence.datasets import load_noisy


def lr():
    return LogisticRegression(max_iter=2000)


def loss_selection(seeds):
    print("digits, 20% flipped: test accuracy of LogisticRegression")
    print(
        f"{'seed':>4}  {'selection':<34}{'kept':>6}{'flipped dropped':>17}{'acc':>8}{'time s':>8}"
    )
    results = {}
    for seed in seeds:
        d = load_noisy("digits", rate=0.2, test_size=0.2, random_state=seed)
        X, y, Xt, yt = d.data, d.target, d.data_test, d.target_test
        n_keep = round(0.9 * len(y))
        rows = [("no selection", np.arange(len(y)), 0.0)]
        rng = np.random.default_rng(seed)
        rows.append(
            (
                "random 10% dropped",
                np.sort(rng.choice(len(y), n_keep, replace=False)),
                0.0,
            )
        )
        for label, kw in [
            ("influence, held-out 20%", {}),
            ("influence, 5-fold cross-fitted", {"cv": 5}),
        ]:
            start = time.perf_counter()
            sel = InfluentialSubsetSelector(
                lr(), strategy="keep_helpful", n_select=n_keep, random_state=seed, **kw
            )
            sel.fit_resample(X, y)
            rows.append((label, sel.sample_indices_, time.perf_counter() - start))
        for label, idx, elapsed in rows:
            dropped = np.setdiff1d(np.arange(len(y)), idx)
            acc = lr().fit(X[idx], y[idx]).score(Xt, yt)
            results.setdefault(label, []).append(acc)
            print(
                f"{seed:>4}  {label:<34}{len(idx):>6}{int(d.is_noisy[dropped].sum()):>17}"
                f"{acc:>8.3f}{elapsed:>8.1f}"
            )
    print("mean: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in results.items()))
    print()


def fairness_selection(seeds):
    if "demographic_parity" not in objectives.OBJECTIVES:
        print("fairness: the demographic_parity objective is not available; skipped")
        return
    from skinfluence.datasets import make_fairness_problem

    print("fairness problem: held-out demographic-parity gap of LogisticRegression")
    print(f"{'seed':>4}{'gap before':>12}{'gap after':>11}{'random drop':>13}")
    for seed in seeds:
        X, y, s = make_fairness_problem(2000, random_state=seed)
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(y))
        tr, te = perm[:1500], perm[1500:]

        def gap(model, X_test=X[te], groups=s[te]):
            p = model.predict_proba(X_test)[:, 1]
            return p[groups == 1].mean() - p[groups == 0].mean()

        before = gap(lr().fit(X[tr], y[tr]))
        sel = InfluentialSubsetSelector(
            lr(),
            objective="demographic_parity",
            strategy="keep_helpful",
            fraction=0.95,
            final_estimator=lr(),
            random_state=seed,
        ).fit(X[tr], y[tr], sensitive_features=s[tr])
        after = gap(sel.final_estimator_)
        keep = rng.choice(tr, len(sel.sample_indices_), replace=False)
        rand = gap(lr().fit(X[keep], y[keep]))
        print(f"{seed:>4}{before:>12.4f}{after:>11.4f}{rand:>13.4f}")


def main():
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    seeds = [0, 1, 2]
    loss_selection(seeds)
    fairness_selection(seeds)


if __name__ == "__main__":
    main()

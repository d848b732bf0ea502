"""InfluentialSubsetSelector: does dropping rows by influence help held-out metrics?

0. The default: for digits, breast_cancer and wine with 0%, 10% and 20% of
   the training labels flipped (standardised, stratified 80/20 split, seeds
   0-9), test accuracy of
   ``InfluentialSubsetSelector(LogisticRegression(),
   final_estimator=LogisticRegression())`` at its defaults, of keeping
   every row, and of dropping as many rows at random; the targets are the
   default >= keeping every row on the mean of every cell, and >= random
   dropping in every noisy cell.
1. digits, 20% of training labels flipped (standardised, stratified 80/20
   split): drop 10% of the training rows by their influence on a validation
   loss, refit LogisticRegression on the kept rows and print test accuracy
   against no selection and against dropping 10% at random. The validation
   rows are the noisy training rows themselves (held-out
   ``validation_fraction=0.2``, or 5-fold cross-fitting ``cv=5``), measured
   by the plain loss or by the trimmed loss ``LossObjective(trim=0.2)``,
   which leaves out the 20% of validation rows of highest loss. One more
   row uses a small trusted set instead: 10% of the training rows
   (stratified) with their true labels passed as ``X_val``/``y_val`` (they
   stay in the training rows with their given labels). Per-seed table for
   seeds 0-2, then the mean gain over no selection and the number of wins
   over seeds 0-9.
2. The fairness problem of ``skinfluence.datasets``: drop
   5% of the rows by demographic-parity influence and print the held-out
   parity gap before and after, for 3 seeds.

Run: ``python benchmarks/subset_selection.py [--parts 0,1,2]`` (BLAS limited
to one thread; times are seconds of selection on one core).
"""

import time
import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skinfluence import InfluentialSubsetSelector, LossObjective
from skinfluence.datasets import load_noisy, make_fairness_problem


def lr():
    return LogisticRegression(max_iter=2000)


SELECTIONS = [
    ("influence, held-out 20%", {"cv": None, "objective": "loss"}),
    ("influence, 5-fold cross-fitted", {"cv": 5, "objective": "loss"}),
    (
        "influence, held-out, trim 0.2",
        {"cv": None, "objective": LossObjective(trim=0.2)},
    ),
    (
        "influence, 5-fold, trim 0.2",
        {"cv": 5, "objective": LossObjective(trim=0.2)},
    ),
    (
        "IF, 5-fold, trim 0.2",
        {
            "cv": 5,
            "objective": LossObjective(trim=0.2),
            "method": "influence_function",
        },
    ),
    ("influence, trusted 10% X_val", "trusted"),
]


def default_selection(seeds):
    print(
        "InfluentialSubsetSelector(LogisticRegression(), final_estimator="
        f"LogisticRegression()) at its defaults: test accuracy, mean of seeds "
        f"{seeds[0]}-{seeds[-1]}"
    )
    print(
        f"{'dataset':<15}{'flips':>6}{'default':>9}{'keep all':>10}{'random':>8}"
        f"{'dropped':>9}{'flipped':>9}{'time s':>8}{'vs all':>8}{'vs random':>11}"
    )
    for name in ("digits", "breast_cancer", "wine"):
        for rate in (0.0, 0.1, 0.2):
            acc = {"default": [], "all": [], "random": []}
            dropped, flipped, elapsed = [], [], []
            for seed in seeds:
                d = load_noisy(name, rate=rate, test_size=0.2, random_state=seed)
                X, y, Xt, yt = d.data, d.target, d.data_test, d.target_test
                start = time.perf_counter()
                sel = InfluentialSubsetSelector(
                    lr(), final_estimator=lr(), random_state=seed
                ).fit(X, y)
                elapsed.append(time.perf_counter() - start)
                acc["default"].append(sel.score(Xt, yt))
                acc["all"].append(lr().fit(X, y).score(Xt, yt))
                n_kept = len(sel.sample_indices_)
                out = np.setdiff1d(np.arange(len(y)), sel.sample_indices_)
                dropped.append(len(out))
                flipped.append(int(d.is_noisy[out].sum()))
                rng = np.random.default_rng(seed)
                keep = rng.choice(len(y), n_kept, replace=False)
                acc["random"].append(lr().fit(X[keep], y[keep]).score(Xt, yt))
            m = {k: float(np.mean(v)) for k, v in acc.items()}
            vs_all = "met" if m["default"] >= m["all"] else "MISSED"
            vs_random = (
                "" if rate == 0 else "met" if m["default"] >= m["random"] else "MISSED"
            )
            print(
                f"{name:<15}{rate:>6.0%}{m['default']:>9.4f}{m['all']:>10.4f}"
                f"{m['random']:>8.4f}{np.mean(dropped):>9.1f}{np.mean(flipped):>9.1f}"
                f"{np.mean(elapsed):>8.1f}{vs_all:>8}{vs_random:>11}",
                flush=True,
            )
    print()


def selections(seed):
    """``(label, kept rows, seconds, test accuracy, flipped dropped)`` of
    every selection on one seed."""
    d = load_noisy("digits", rate=0.2, test_size=0.2, random_state=seed)
    X, y, Xt, yt = d.data, d.target, d.data_test, d.target_test
    n_keep = round(0.9 * len(y))
    rng = np.random.default_rng(seed)
    rows = [
        ("no selection", np.arange(len(y)), 0.0),
        (
            "random 10% dropped",
            np.sort(rng.choice(len(y), n_keep, replace=False)),
            0.0,
        ),
    ]
    for label, kw in SELECTIONS:
        fit = {}
        if kw == "trusted":
            _, trusted = train_test_split(
                np.arange(len(y)),
                test_size=0.1,
                stratify=d.target_true,
                random_state=seed,
            )
            fit = {"X_val": X[trusted], "y_val": d.target_true[trusted]}
            kw = {}
        start = time.perf_counter()
        sel = InfluentialSubsetSelector(
            lr(), strategy="keep_helpful", n_select=n_keep, random_state=seed, **kw
        )
        sel.fit_resample(X, y, **fit)
        rows.append((label, sel.sample_indices_, time.perf_counter() - start))
    out = []
    for label, idx, elapsed in rows:
        dropped = np.setdiff1d(np.arange(len(y)), idx)
        acc = lr().fit(X[idx], y[idx]).score(Xt, yt)
        out.append((label, idx, elapsed, acc, int(d.is_noisy[dropped].sum())))
    return out


def loss_selection(seeds, summary_seeds):
    print("digits, 20% flipped: test accuracy of LogisticRegression")
    print(
        f"{'seed':>4}  {'selection':<32}{'kept':>6}{'flipped dropped':>17}"
        f"{'acc':>8}{'time s':>8}"
    )
    results = {}
    for seed in summary_seeds:
        rows = selections(seed)
        for label, idx, elapsed, acc, flipped in rows:
            results.setdefault(label, []).append(acc)
            if seed in seeds:
                print(
                    f"{seed:>4}  {label:<32}{len(idx):>6}{flipped:>17}"
                    f"{acc:>8.3f}{elapsed:>8.1f}"
                )
    print(
        "mean, seeds "
        + ", ".join(map(str, seeds))
        + ": "
        + ", ".join(f"{k} {np.mean(v[: len(seeds)]):.3f}" for k, v in results.items())
    )
    print()
    base = np.array(results["no selection"])
    rand = np.array(results["random 10% dropped"])
    print(
        f"seeds {summary_seeds[0]}-{summary_seeds[-1]}: gain in test accuracy over "
        "no selection"
    )
    print(
        f"{'selection':<32}{'mean acc':>10}{'mean gain':>11}{'min gain':>10}"
        f"{'beats none':>12}{'beats random':>14}"
    )
    for label, accs in results.items():
        accs = np.array(accs)
        gain = accs - base
        print(
            f"{label:<32}{accs.mean():>10.3f}{gain.mean():>+11.4f}{gain.min():>+10.3f}"
            f"{f'{(gain > 0).sum()}/{len(gain)}':>12}"
            f"{f'{(accs > rand).sum()}/{len(gain)}':>14}"
        )
    print()


def fairness_selection(seeds):
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


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", default="0,1,2", help="which parts to run (see the docstring)"
    )
    parts = parser.parse_args(argv).parts.split(",")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    seeds = [0, 1, 2]
    with threadpool_limits(1):
        if "0" in parts:
            default_selection(list(range(10)))
        if "1" in parts:
            loss_selection(seeds, list(range(10)))
        if "2" in parts:
            fairness_selection(seeds)


if __name__ == "__main__":
    main()

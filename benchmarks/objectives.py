"""Objectives, the IP ensemble and fairness trimming against actual retraining.

Prints three tables:

1. on the synthetic fairness problem (``make_fairness_problem``) with a
   logistic model: for each objective, Spearman and Pearson between the
   predicted change of the objective when a training row is removed and the
   actual change after retraining without it (every row), for the influence
   function (IF), the inner product (IP) and the IP ensemble;
2. the test demographic-parity gap and accuracy before and after dropping
   the 5% of training rows most harmful to fairness (mean over 3 seeds),
   beside dropping 5% at random;
3. IP ensemble vs plain IP: mislabeled-row average precision on digits with
   20% of labels flipped, and leave-one-out Pearson on breast_cancer.

Run: ``python benchmarks/objectives.py`` (a few minutes on 2 CPU cores).
"""

import time
import warnings

import numpy as np
import torch
from scipy.special import expit
from scipy.stats import pearsonr, spearmanr
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceScorer, IPEnsemble
from skinfluence.actions import drop_harmful
from skinfluence.datasets import make_fairness_problem

torch.set_num_threads(2)
C = 0.5


def logistic():
    return LogisticRegression(C=C, tol=1e-10, max_iter=5000)


def log_loss_rows(z, y):
    return np.logaddexp(0, z) - y * z


def margin_attack(model, Xv):
    """The margin attack of the Hessian-free influence paper, at ``model``."""
    w, b = model.coef_[0], model.intercept_[0]
    return Xv - (1.3 * (Xv @ w + b) / (w @ w))[:, None] * w


def objective_values(model, Xv, yv, sv, X_adv_base):
    """The objectives at a fitted logistic model, computed in NumPy."""
    w, b = model.coef_[0], model.intercept_[0]
    z = Xv @ w + b
    p = expit(z)
    loss = log_loss_rows(z, yv)
    pos = yv == 1
    return {
        "loss": loss.sum(),
        "demographic_parity": p[sv == 1].mean() - p[sv == 0].mean(),
        "equal_opportunity": loss[pos & (sv == 0)].mean()
        - loss[pos & (sv == 1)].mean(),
        "robustness": log_loss_rows(margin_attack(model, Xv) @ w + b, yv).sum(),
        "robustness*": log_loss_rows(X_adv_base @ w + b, yv).sum(),
    }


METHODS = {
    "IF": "influence_function",
    "IP": "tracin",
    "IP ensemble": IPEnsemble(random_state=0),
}


def table_objectives(n_train=250, n_val=250):
    X, y, s = make_fairness_problem(n_train + n_val, random_state=0)
    X = StandardScaler().fit(X[:n_train]).transform(X)
    Xt, yt, Xv, yv, sv = X[:n_train], y[:n_train], X[n_train:], y[n_train:], s[n_train:]
    full = logistic().fit(Xt, yt)
    X_adv = margin_attack(full, Xv)
    base = objective_values(full, Xv, yv, sv, X_adv)
    t0 = time.perf_counter()
    actual = {k: np.empty(n_train) for k in base}
    for j in range(n_train):
        keep = np.arange(n_train) != j
        vals = objective_values(logistic().fit(Xt[keep], yt[keep]), Xv, yv, sv, X_adv)
        for k in base:
            actual[k][j] = vals[k] - base[k]
    t_loo = time.perf_counter() - t0
    print(
        f"\n1. Predicted vs actual change of each objective when one training row is "
        f"removed\n   make_fairness_problem: {n_train} training rows (all retrained "
        f"without, {t_loo:.0f} s), {n_val} validation rows,\n   "
        f"LogisticRegression(C={C}); gaps are group 1 minus group 0; base values: "
        + ", ".join(f"{k}={v:.4f}" for k, v in base.items())
    )
    print(
        f"   {'objective':<20}{'method':<13}{'Spearman':>9}{'Pearson':>9}{'time s':>8}"
    )
    for objective in base:
        kw = (
            {"sensitive_features": sv}
            if objective in ("demographic_parity", "equal_opportunity")
            else {}
        )
        for label, method in METHODS.items():
            t0 = time.perf_counter()
            scorer = InfluenceScorer(
                logistic(),
                method=method,
                objective=objective.rstrip("*"),
                dtype="float64",
            ).fit(Xt, yt)
            pred = scorer.influence(Xv, yv, aggregate=True, **kw)
            dt = time.perf_counter() - t0
            rho = spearmanr(pred, actual[objective]).statistic
            r = pearsonr(pred, actual[objective]).statistic
            print(f"   {objective:<20}{label:<13}{rho:>9.3f}{r:>9.3f}{dt:>8.2f}")
    print(
        "   robustness: the actual change re-runs the attack at each retrained model."
        "\n   robustness*: the same predictions against the actual change with the "
        "attacked rows\n   held where the full model's attack put them, as the "
        "query gradient holds them."
    )


def dp_gap(model, X, s):
    p = model.predict_proba(X)[:, 1]
    hard = model.predict(X)
    return p[s == 1].mean() - p[s == 0].mean(), hard[s == 1].mean() - hard[
        s == 0
    ].mean()


def table_trimming(seeds=(0, 1, 2), fraction=0.05):
    rows = {"before": [], "drop 5% harmful to DP (IF)": [], "drop 5% at random": []}
    for seed in seeds:
        X, y, s = make_fairness_problem(2000, bias=0.4, random_state=seed)
        X = StandardScaler().fit(X[:800]).transform(X)
        tr, va, te = slice(0, 800), slice(800, 1200), slice(1200, 2000)
        scorer = InfluenceScorer(
            logistic(),
            method="influence_function",
            objective="demographic_parity",
            dtype="float64",
        ).fit(X[tr], y[tr])
        infl = scorer.influence(X[va], y[va], sensitive_features=s[va])
        gap_val = dp_gap(scorer.estimator_, X[va], s[va])[0]
        # Positive influence = removing the row raises the gap, so the rows
        # whose removal shrinks |gap| have the lowest sign(gap) * influence.
        helpful = np.sign(gap_val) * infl
        _, _, kept = drop_harmful(X[tr], y[tr], helpful, fraction=fraction)
        rng = np.random.default_rng(seed)
        rand = np.sort(
            rng.choice(800, size=800 - int(round(fraction * 800)), replace=False)
        )
        for label, idx in zip(rows, [np.arange(800), kept, rand]):
            model = logistic().fit(X[tr][idx], y[tr][idx])
            soft, hard = dp_gap(model, X[te], s[te])
            rows[label].append((soft, hard, model.score(X[te], y[te])))
    print(
        "\n2. Test demographic-parity gap and accuracy after trimming (mean over "
        f"{len(seeds)} seeds)\n   make_fairness_problem(bias=0.4): 800 train, 400 "
        "validation (influence), 800 test; LogisticRegression"
    )
    print(
        f"   {'training rows':<30}{'DP gap (proba)':>15}{'DP gap (label)':>15}{'accuracy':>10}"
    )
    for label, vals in rows.items():
        soft, hard, acc = np.mean(vals, axis=0)
        print(f"   {label:<30}{soft:>15.4f}{hard:>15.4f}{acc:>10.4f}")


def table_ensemble():
    print("\n3. IP ensemble vs plain IP")
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(0)
    flipped = rng.random(len(y)) < 0.2
    y_noisy = y.copy()
    y_noisy[flipped] = (y[flipped] + rng.integers(1, 10, flipped.sum())) % 10
    ensembles = {
        "IP": "tracin",
        "IP ensemble (noise, M=5, sigma=0.01)": IPEnsemble(random_state=0),
        "IP ensemble (noise, M=5, sigma=0.1)": IPEnsemble(sigma=0.1, random_state=0),
        "IP ensemble (dropout 0.1, M=5)": IPEnsemble(kind="dropout", random_state=0),
    }
    models = {
        "LogisticRegression": LogisticRegression(C=0.1, max_iter=2000),
        "MLPClassifier(32)": MLPClassifier(
            (32,), alpha=1e-3, max_iter=300, random_state=0
        ),
    }
    print(
        f"   a) digits, {flipped.sum()} of {len(y)} labels flipped (20%): average "
        "precision of self-influence"
    )
    print(f"   {'method':<40}" + "".join(f"{m:>20}" for m in models))
    for label, method in ensembles.items():
        aps = []
        for model in models.values():
            scorer = InfluenceScorer(model, method=method, random_state=0).fit(
                X, y_noisy
            )
            aps.append(average_precision_score(flipped, scorer.self_influence_))
        print(f"   {label:<40}" + "".join(f"{a:>20.3f}" for a in aps))

    X, y = load_breast_cancer(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    X, y = X[perm], y[perm]
    n = 400
    X = StandardScaler().fit(X[:n]).transform(X)
    Xt, yt, Xq, yq = X[:n], y[:n], X[n:], y[n:]

    def test_loss(model):
        return log_loss_rows(model.decision_function(Xq), yq).sum()

    base = test_loss(logistic().fit(Xt, yt))
    keep = np.ones(n, bool)
    actual = np.empty(n)
    for j in range(n):
        keep[j] = False
        actual[j] = test_loss(logistic().fit(Xt[keep], yt[keep])) - base
        keep[j] = True
    print(
        f"\n   b) breast_cancer, {n} training rows each retrained without, test loss of "
        f"{len(yq)} rows, LogisticRegression(C={C})"
    )
    print(f"   {'method':<40}{'Pearson':>10}{'Spearman':>10}")
    for label, method in {"IF": "influence_function", **ensembles}.items():
        scorer = InfluenceScorer(
            logistic(), method=method, dtype="float64", random_state=0
        )
        pred = scorer.fit(Xt, yt).influence(Xq, yq, aggregate=True)
        r, rho = pearsonr(pred, actual).statistic, spearmanr(pred, actual).statistic
        print(f"   {label:<40}{r:>10.3f}{rho:>10.3f}")


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    table_objectives()
    table_trimming()
    table_ensemble()

"""Fidelity of influence estimates against actual leave-one-out retraining.

For each problem, every training row j (or, for the MLP, a random sample of
them) is removed and the model retrained; the change of each test point's
loss, ``loss_q(theta without j) - loss_q(theta)``, is the truth. Each
estimator's scores for the same 10 test points are compared with it (and
with the exact influence function) by the mean over test points of the
Pearson and Spearman correlations across training rows.

Problems:

* ``breast_cancer``: ``LogisticRegression(C=1)`` on standardised
  breast_cancer, 80/20 split (455 training rows). Retraining: scikit-learn
  ``LogisticRegression(solver="newton-cholesky", tol=1e-10)`` warm-started
  from the full-data fit.
* ``make_classification``: binary, 1000 rows, 10 features, 80/20 split,
  same model and retraining.
* ``digits``: a skorch MLP 64-32-10 (ReLU, cross-entropy, weight decay
  1e-3), trained with Adam and then polished to a minimum with full-batch
  L-BFGS in float64. Protocol for leave-one-out: from the fitted weights,
  with the row removed, full-batch L-BFGS (strong Wolfe line search) on the
  same objective for at most 200 iterations or until the gradient's largest
  entry is below 1e-9, in float64; ``--mlp-loo-rows`` randomly chosen
  training rows (default 150).

Estimators: the exact influence function (Cholesky; ``damping="auto"`` on
the linear models, 0.01 for every solver on the MLP, whose Hessian keeps
slightly negative eigenvalues),
``cg``, ``arnoldi`` (rank = all parameters on the linear models, 400 on the
MLP), ``ekfac``, ``lissa`` when installed, ``NewtonLOO`` (linear models;
1 and 2 Newton steps) and TracIn (not on the leave-one-out scale; its
correlations are still comparable). Time is ``fit`` + ``influence`` of the
10 test points through ``InfluenceScorer`` on the already-fitted model.

Run: ``python benchmarks/loo_fidelity.py [--problems ...]``.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import (
    ArnoldiSolver,
    CGSolver,
    EKFACSolver,
    InfluenceFunction,
    InfluenceScorer,
    NewtonLOO,
    TracIn,
)
from skinfluence.methods.ihvp import SOLVERS

N_QUERY = 10
MLP_DAMPING = 0.01
MLP_RANK = 400


def _split(X, y, seed=0):
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=seed)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte)[:N_QUERY], ytr, yte[:N_QUERY]


def _query_loss(proba, classes, yq):
    return -np.log(proba[np.arange(len(yq)), np.searchsorted(classes, yq)])


def logistic_problem(X, y):
    Xtr, Xq, ytr, yq = _split(X, y)

    def model():
        return LogisticRegression(
            C=1.0, solver="newton-cholesky", tol=1e-10, max_iter=1000
        )

    full = model().fit(Xtr, ytr)
    base = _query_loss(full.predict_proba(Xq), full.classes_, yq)
    loo = np.zeros((len(yq), len(ytr)))
    for j in range(len(ytr)):
        keep = np.arange(len(ytr)) != j
        m = model().set_params(warm_start=True)
        m.coef_, m.intercept_ = full.coef_.copy(), full.intercept_.copy()
        m.fit(Xtr[keep], ytr[keep])
        loo[:, j] = _query_loss(m.predict_proba(Xq), m.classes_, yq) - base
    return dict(est=full, X=Xtr, y=ytr, Xq=Xq, yq=yq, loo=loo, cols=np.arange(len(ytr)))


class MLP(torch.nn.Module):
    def __init__(self, n_features=64, hidden=32, n_classes=10):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_features, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, n_classes),
        )

    def forward(self, X):
        return self.net(X)


def _polish(module, X, y, wd, n_total, max_iter=200, tol=1e-9):
    """Full-batch L-BFGS on ``sum(CE) / n_total + wd/2 ||theta||^2`` with the
    fitted skorch objective's scaling (mean loss over n_total rows)."""
    params = list(module.parameters())
    opt = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-16,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(X), y, reduction="sum")
        loss = loss / n_total + wd / 2 * sum((p**2).sum() for p in params)
        loss.backward()
        return loss

    opt.step(closure)


def digits_problem(n_rows, seed=0):
    from skorch import NeuralNetClassifier

    X, y = load_digits(return_X_y=True)
    Xtr, Xq, ytr, yq = _split(X, y)
    Xtr, Xq = Xtr.astype(np.float32), Xq.astype(np.float32)
    wd = 1e-3
    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        MLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        optimizer__weight_decay=wd,
        lr=0.01,
        max_epochs=60,
        batch_size=128,
        train_split=None,
        verbose=0,
    ).fit(Xtr, ytr)
    module = net.module_.double()
    Xt, yt = torch.tensor(Xtr, dtype=torch.float64), torch.tensor(ytr)
    n = len(ytr)
    _polish(module, Xt, yt, wd, n)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    Xqt, yqt = torch.tensor(Xq, dtype=torch.float64), torch.tensor(yq)

    def qloss():
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(
                module(Xqt), yqt, reduction="none"
            ).numpy()

    base = qloss()
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.choice(n, size=min(n_rows, n), replace=False))
    loo = np.zeros((len(yq), len(cols)))
    for i, j in enumerate(cols):
        keep = torch.arange(n) != j
        # The objective keeps skorch's scaling (mean over the n rows it was
        # fitted on), so removing a row drops exactly its loss term.
        _polish(module, Xt[keep], yt[keep], wd, n)
        loo[:, i] = qloss() - base
        module.load_state_dict(state)
    return dict(
        est=net, X=Xtr.astype(np.float64), y=ytr, Xq=Xq, yq=yq, loo=loo, cols=cols
    )


def _corr(est, ref, fn):
    return float(np.mean([fn(a, b)[0] for a, b in zip(est, ref)]))


def evaluate(problem, methods):
    rows, exact = [], None
    # One untimed run pays the one-off costs (imports, torch.func set-up).
    InfluenceScorer(
        FrozenEstimator(problem["est"]), method=methods[0][1], dtype="float64"
    ).fit(problem["X"], problem["y"])
    for name, method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            scorer = InfluenceScorer(
                FrozenEstimator(problem["est"]),
                method=method,
                dtype="float64",
                random_state=0,
            ).fit(problem["X"], problem["y"])
            scores = scorer.influence(problem["Xq"], problem["yq"])
            elapsed = time.perf_counter() - t0
        scores = scores[:, problem["cols"]]
        if exact is None:
            exact = scores
        rows.append(
            (
                name,
                _corr(scores, problem["loo"], pearsonr),
                _corr(scores, problem["loo"], spearmanr),
                _corr(scores, exact, pearsonr),
                _corr(scores, exact, spearmanr),
                elapsed,
            )
        )
    return rows


def methods_for(p, glm):
    # The MLP's Hessian at its polished minimum still has slightly negative
    # eigenvalues (ReLU kinks): every solver gets the same small damping.
    # The solvers are compared on the fitted model alone (n_estimators=1:
    # no ensemble of refits on the MLP).
    d = "auto" if glm else MLP_DAMPING

    def IF(solver):
        return InfluenceFunction(solver=solver, damping=d, n_estimators=1)

    out = [("exact IF", IF("exact"))]
    out.append(("cg", IF(CGSolver(tol=1e-8, max_iter=500))))
    rank = p if glm else MLP_RANK
    out.append((f"arnoldi (rank {rank})", IF(ArnoldiSolver(rank=rank))))
    out.append(("ekfac", IF(EKFACSolver())))
    if "lissa" in SOLVERS:
        out.append(("lissa", IF("lissa")))
    if glm:
        out.append(("newton_loo (default)", NewtonLOO()))
        out.append(("newton_loo (1 step)", NewtonLOO(n_steps=1)))
        out.append(("newton_loo (2 steps)", NewtonLOO(n_steps=2)))
    out.append(("tracin", TracIn()))
    return out


def print_table(title, rows):
    print(title)
    head = f"{'estimator':24s} {'P vs LOO':>9s} {'S vs LOO':>9s} {'P vs exact':>10s} {'S vs exact':>10s} {'time s':>8s}"
    print(head)
    print("-" * len(head))
    for name, p1, s1, p2, s2, t in rows:
        print(f"{name:24s} {p1:9.4f} {s1:9.4f} {p2:10.4f} {s2:10.4f} {t:8.2f}")
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--problems",
        nargs="+",
        default=["breast_cancer", "make_classification", "digits"],
    )
    parser.add_argument("--mlp-loo-rows", type=int, default=150)
    args = parser.parse_args(argv)
    for name in args.problems:
        t0 = time.perf_counter()
        if name == "breast_cancer":
            problem = logistic_problem(*load_breast_cancer(return_X_y=True))
        elif name == "make_classification":
            problem = logistic_problem(
                *make_classification(
                    1000, 10, n_informative=6, n_redundant=2, random_state=0
                )
            )
        elif name == "digits":
            problem = digits_problem(args.mlp_loo_rows)
        else:
            raise ValueError(f"unknown problem {name!r}")
        retrain = time.perf_counter() - t0
        glm = name != "digits"
        p = sum(v.numel() for v in _params(problem["est"]))
        rows = evaluate(problem, methods_for(p, glm))
        print_table(
            f"{name}: {len(problem['y'])} training rows, {p} parameters, "
            f"{len(problem['cols'])} rows left out, {N_QUERY} test points "
            f"(leave-one-out retraining took {retrain:.1f} s)",
            rows,
        )


def _params(est):
    if hasattr(est, "module_"):
        return list(est.module_.parameters())
    return [torch.as_tensor(est.coef_), torch.as_tensor(est.intercept_)]


if __name__ == "__main__":
    main()

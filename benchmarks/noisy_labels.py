"""Mislabeled-row detection: NoisyLabelFilter against cleanlab, Captum and a loss baseline.

Cells (standardised, stratified 80/20 split, seeds 0-2; see ``CELLS``):
symmetric flips of 10% and 20% of the training labels on digits,
breast_cancer, wine and a 4-class ``make_classification`` problem, and
class-conditional and instance-dependent noise: ``kind="pairs"`` at 25% on
digits (a random pairing of the ten classes, seeded by the seed),
``kind="confusion"`` at 20% on wine (the matrix ``WINE_CONFUSION``), and
``kind="instance"`` at 10% and 20% on the synthetic problem (flips near a
reference LogisticRegression's boundary). Per detector it prints the ROC
AUC, average precision and precision@k (k = number of flipped rows) of its
noise scores, its wall time, and the test accuracy of a LogisticRegression
refitted after dropping the detector's top-k rows; cleanlab's
``CleanLearning(LogisticRegression())`` gives the downstream reference.

Detectors:

- ``skinfluence``: ``NoisyLabelFilter()`` with its defaults.
- ``cleanlab``: self-confidence label quality (``get_label_quality_scores``) of 5-fold out-of-fold
  LogisticRegression probabilities (ranked by self-confidence).
- ``cleanlab_hgb``: the same on ``HistGradientBoostingClassifier``'s.
- ``cleanlab_ensemble``: the same on the mean out-of-fold probabilities of
  LogisticRegression, HistGradientBoostingClassifier, an RBF ``SVC`` and an
  ``MLPClassifier((64,))`` -- cleanlab fed by the strongest model at hand.
- ``captum_tracincp``: Captum ``TracInCP`` self-influence of the detector's
  MLP and optimiser (Adam, weight decay 1e-2) trained on all rows for 20
  epochs, over checkpoints saved after epochs 5, 10, 15, 20.
- ``captum_fast``: Captum ``TracInCPFast`` self-influence (last layer) over
  the same checkpoints.
- ``loss``: the per-row training loss of that MLP.
- ``loss_sgd``: the per-row training loss of a well-trained MLP of the same
  architecture: plain SGD (lr 0.1, batch 32, no momentum, no weight decay),
  30 epochs.

Run: ``python benchmarks/noisy_labels.py [--datasets digits,wine]
[--kinds symmetric,pairs] [--seeds 0,1,2] [--detectors cleanlab,loss]
[--cache DIR]`` (on a shared machine with ``OMP_WAIT_POLICY=PASSIVE``).
With ``--cache DIR`` the rows of every detector other than ``skinfluence``
are stored in ``DIR`` and reused by later runs, keyed by the cell's data
(training and test arrays, flips), the seed, the source of the detector's
code and the versions of torch, captum, cleanlab and scikit-learn, so a
reused row is the one this code would compute again (its time column is
that of the run that computed it); the filter itself always runs.
"""

import argparse
import functools
import hashlib
import importlib.metadata
import inspect
import json
import os
import tempfile
import time
import warnings

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from skinfluence import NoisyLabelFilter
from skinfluence.datasets import load_noisy
from skinfluence.models._skorch import MLPModule

# A fixed class-conditional confusion of wine's three cultivars: class 0 is
# mistaken for 1, class 1 for both neighbours, class 2 mostly for 1.
WINE_CONFUSION = [[0.7, 0.3, 0.0], [0.15, 0.7, 0.15], [0.0, 0.4, 0.6]]
# (dataset, kind, rate, extra make_noisy_labels arguments)
CELLS = [
    *(
        (name, "symmetric", rate, {})
        for name in ("digits", "breast_cancer", "wine", "synthetic")
        for rate in (0.1, 0.2)
    ),
    ("digits", "pairs", 0.25, {}),
    ("wine", "confusion", 0.2, {"transition": WINE_CONFUSION}),
    ("synthetic", "instance", 0.1, {}),
    ("synthetic", "instance", 0.2, {}),
]


def lr():
    return LogisticRegression(max_iter=2000)


def run_skinfluence(X, y, seed):
    filt = NoisyLabelFilter(final_estimator=lr(), random_state=seed).fit(X, y)
    # The whole product: the default cut ("auto") and the refitted final model.
    run_skinfluence.final = filt
    return filt.noise_scores_


def _cleanlab_scores(models, X, y, seed):
    """cleanlab's self-confidence ranking of the mean 5-fold out-of-fold
    probabilities of ``models`` (one list of folds for all of them)."""
    from cleanlab.rank import get_label_quality_scores

    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    proba = np.mean(
        [
            cross_val_predict(model, X, y, cv=cv, method="predict_proba")
            for model in models
        ],
        axis=0,
    )
    return 1.0 - get_label_quality_scores(y, proba)


def strong_models(seed):
    """What a user would feed cleanlab at its best: gradient boosting, an RBF
    SVM and an MLP besides the linear model."""
    return {
        "lr": lr(),
        "hgb": HistGradientBoostingClassifier(random_state=seed),
        "svc": SVC(probability=True, random_state=seed),
        "mlp": MLPClassifier((64,), alpha=1e-3, max_iter=500, random_state=seed),
    }


def run_cleanlab(X, y, seed):
    return _cleanlab_scores([lr()], X, y, seed)


def run_cleanlab_hgb(X, y, seed):
    return _cleanlab_scores([strong_models(seed)["hgb"]], X, y, seed)


def run_cleanlab_ensemble(X, y, seed):
    return _cleanlab_scores(list(strong_models(seed).values()), X, y, seed)


def train_mlp(X, y, seed, folder, epochs=20, every=5, sgd=False):
    """The filter's default detector MLP, trained in plain torch with
    checkpoints (Adam lr 0.01, weight decay 1e-2, batch 128); with
    ``sgd=True`` plain SGD (lr 0.1, batch 32) instead."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLPModule(X.shape[1], int(y.max()) + 1)
    if sgd:
        opt, batch = torch.optim.SGD(model.parameters(), lr=0.1), 32
    else:
        opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-2)
        batch = 128
    Xt = torch.tensor(X, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long)
    paths = []
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), batch):
            idx = perm[start : start + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx]).backward()
            opt.step()
        if folder is not None and epoch % every == 0:
            path = os.path.join(folder, f"ckpt{epoch}.pt")
            torch.save(model.state_dict(), path)
            paths.append(path)
    return model, paths


def _captum_self_influence(X, y, seed, build):
    """Captum self-influence over the detector MLP's checkpoints;
    ``build(model, data, paths, load)`` makes the Captum object."""
    with tempfile.TemporaryDirectory() as folder:
        model, paths = train_mlp(X, y, seed, folder)

        def load(net, path):
            net.load_state_dict(torch.load(path))
            return 0.01

        data = torch.utils.data.TensorDataset(
            torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.long)
        )
        tracin = build(model, data, paths, load)
        return tracin.self_influence(show_progress=False).detach().numpy()


def run_captum(X, y, seed):
    from captum.influence import TracInCP

    def build(model, data, paths, load):
        return TracInCP(
            model,
            data,
            paths,
            checkpoints_load_func=load,
            loss_fn=torch.nn.CrossEntropyLoss(reduction="sum"),
            batch_size=256,
            sample_wise_grads_per_batch=True,
        )

    return _captum_self_influence(X, y, seed, build)


def run_captum_fast(X, y, seed):
    from captum.influence import TracInCPFast

    def build(model, data, paths, load):
        return TracInCPFast(
            model,
            model.net[-1],
            data,
            paths,
            checkpoints_load_func=load,
            loss_fn=torch.nn.CrossEntropyLoss(reduction="sum"),
            batch_size=256,
        )

    return _captum_self_influence(X, y, seed, build)


def _row_loss(model, X, y):
    with torch.no_grad():
        out = model(torch.tensor(X, dtype=torch.float32))
        loss = torch.nn.functional.cross_entropy(
            out, torch.tensor(y, dtype=torch.long), reduction="none"
        )
    return loss.numpy()


def run_loss(X, y, seed):
    model, _ = train_mlp(X, y, seed, None)
    return _row_loss(model, X, y)


def run_loss_sgd(X, y, seed):
    model, _ = train_mlp(X, y, seed, None, epochs=30, sgd=True)
    return _row_loss(model, X, y)


DETECTORS = {
    "skinfluence": run_skinfluence,
    "cleanlab": run_cleanlab,
    "cleanlab_hgb": run_cleanlab_hgb,
    "cleanlab_ensemble": run_cleanlab_ensemble,
    "captum_tracincp": run_captum,
    "captum_fast": run_captum_fast,
    "loss": run_loss,
    "loss_sgd": run_loss_sgd,
}


def downstream(X, y, X_test, y_test, drop):
    keep = np.setdiff1d(np.arange(len(y)), drop)
    return lr().fit(X[keep], y[keep]).score(X_test, y_test)


def _accuracy_row(detector, acc, elapsed=np.nan):
    """A row with only the downstream accuracy (products with their own cut)."""
    nan = np.nan
    return dict(detector=detector, auc=nan, ap=nan, p_at_k=nan, time=elapsed, acc=acc)


def _cache_key(det, arrays, seed):
    """Key of a baseline row: the cell's arrays, the seed, the source of the
    code that computes the row and the versions of the libraries it uses."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    code = [lr, downstream, train_mlp, _captum_self_influence, _row_loss, MLPModule]
    code += [_cleanlab_scores, strong_models]
    if det in DETECTORS:
        code.append(DETECTORS[det])
    for obj in code:
        h.update(inspect.getsource(obj).encode())
    for pkg in ("torch", "captum", "cleanlab", "scikit-learn"):
        h.update(importlib.metadata.version(pkg).encode())
    h.update(f"{det}|{seed}|{torch.get_num_threads()}".encode())
    return h.hexdigest()[:24]


def _cached(cache, det, arrays, seed, compute):
    """``compute()``'s row, stored in (and reused from) ``cache`` when given."""
    if cache is None:
        return compute()
    path = os.path.join(cache, f"{det}-{_cache_key(det, arrays, seed)}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    row = compute()
    os.makedirs(cache, exist_ok=True)
    with open(path, "w") as f:
        json.dump(row, f)
    return row


def _score_row(det, func, X, y, truth, X_test, y_test, seed):
    k = int(truth.sum())
    start = time.perf_counter()
    scores = func(X, y, seed)
    elapsed = time.perf_counter() - start
    top = np.argsort(-scores, kind="stable")[:k]
    return dict(
        detector=det,
        auc=float(roc_auc_score(truth, scores)),
        ap=float(average_precision_score(truth, scores)),
        p_at_k=float(truth[top].mean()),
        time=elapsed,
        acc=float(downstream(X, y, X_test, y_test, top)),
    )


def _clean_learning(X, y, X_test, y_test, seed):
    from cleanlab.classification import CleanLearning

    start = time.perf_counter()
    cl = CleanLearning(lr(), cv_n_folds=5, seed=seed, verbose=False).fit(X, y)
    return _accuracy_row(
        "CleanLearning(LR)", cl.score(X_test, y_test), time.perf_counter() - start
    )


def evaluate(name, kind, rate, extra, seed, detectors=None, cache=None):
    data = load_noisy(
        name, rate=rate, kind=kind, test_size=0.2, random_state=seed, **extra
    )
    X, y, truth = data.data, data.target, data.is_noisy
    X_test, y_test = data.data_test, data.target_test
    arrays = (X, y, truth, X_test, y_test)
    rows = []
    for det, func in DETECTORS.items():
        if detectors is not None and det not in detectors:
            continue
        args = (det, func, X, y, truth, X_test, y_test, seed)
        if det == "skinfluence":
            rows.append(_score_row(*args))
            filt = run_skinfluence.final
            product = _accuracy_row("NoisyLabelFilter(LR)", filt.score(X_test, y_test))
        else:
            rows.append(
                _cached(cache, det, arrays, seed, functools.partial(_score_row, *args))
            )
    if detectors is None or "skinfluence" in detectors:
        rows.append(product)
    if detectors is None or "cleanlab" in detectors:
        rows.append(
            _cached(
                cache,
                "CleanLearning",
                arrays,
                seed,
                lambda: _clean_learning(X, y, X_test, y_test, seed),
            )
        )
    rows.append(_accuracy_row("no dropping", downstream(X, y, X_test, y_test, [])))
    oracle = downstream(X, y, X_test, y_test, np.flatnonzero(truth))
    rows.append(_accuracy_row("oracle (drop flipped)", oracle))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=None, help="e.g. digits,wine")
    parser.add_argument("--kinds", default=None, help="e.g. symmetric,pairs")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--detectors", default=None, help=f"subset of {','.join(DETECTORS)}"
    )
    parser.add_argument(
        "--cache", default=None, help="folder reusing the rows of the baselines"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    detectors = None if args.detectors is None else args.detectors.split(",")
    unknown = sorted(set(detectors or ()) - set(DETECTORS))
    if unknown:
        parser.error(f"unknown detectors {unknown}; choose from {list(DETECTORS)}")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    seeds = [int(s) for s in args.seeds.split(",")]
    verdicts = []
    cells = [
        c
        for c in CELLS
        if (args.datasets is None or c[0] in args.datasets.split(","))
        and (args.kinds is None or c[1] in args.kinds.split(","))
    ]
    header = (
        f"{'dataset':<14}{'noise':>16}  {'detector':<22}{'ROC AUC':>8}{'AP':>8}"
        f"{'P@k':>8}{'time s':>8}{'LR acc':>8}"
    )
    print(
        f"mean over seeds {seeds}; LR acc = test accuracy of LogisticRegression "
        "refit without the detector's top-k rows; NoisyLabelFilter(LR) and "
        "CleanLearning(LR): the products with their own cut"
    )
    print(header)
    print("-" * len(header))
    for name, kind, rate, extra in cells:
        noise = f"{kind} {rate:.0%}"
        runs = [
            evaluate(name, kind, rate, extra, seed, detectors, args.cache)
            for seed in seeds
        ]
        table = {}
        for run in runs:
            for row in run:
                table.setdefault(row["detector"], []).append(row)
        means = {}
        for det, rows in table.items():
            m = {
                key: np.mean([r[key] for r in rows])
                for key in rows[0]
                if key != "detector"
            }
            means[det] = m
            fmt = lambda v, p=3: "" if np.isnan(v) else f"{v:.{p}f}"  # noqa: E731
            print(
                f"{name:<14}{noise:>16}  {det:<22}{fmt(m['auc']):>8}{fmt(m['ap']):>8}"
                f"{fmt(m['p_at_k']):>8}{fmt(m['time'], 1):>8}{fmt(m['acc']):>8}",
                flush=True,
            )
        print()
        others = [d for d in DETECTORS if d in means and d != "skinfluence"]
        if "skinfluence" not in means or not others or "CleanLearning(LR)" not in means:
            continue
        best = max(others, key=lambda d: means[d]["ap"])
        ours = means["skinfluence"]
        verdicts.append(
            (
                name,
                noise,
                ours["ap"],
                means[best]["ap"],
                best,
                ours["acc"],
                means["CleanLearning(LR)"]["acc"],
                means["NoisyLabelFilter(LR)"]["acc"],
                means["oracle (drop flipped)"]["acc"],
            )
        )
    if not verdicts:
        return
    print(
        f"{'dataset':<14}{'noise':>16}{'our AP':>8}{'best other':>11}"
        f"{'(which)':>17}{'margin':>8}{'AP target':>10}{'top-k acc':>10}"
        f"{'filter acc':>11}{'CL acc':>8}{'acc target':>11}{'oracle acc':>11}"
    )
    for name, noise, ap, best, which, acc, cl, product, oracle in verdicts:
        # Average precision is at most 1: past 0.99 the AP target cannot be met.
        target = "met" if ap >= best + 0.01 else "MISSED"
        if best + 0.01 > 1 and ap < best + 0.01:
            target = "unreachable"
        notes = "" if oracle >= cl else "  (oracle < CL)"
        print(
            f"{name:<14}{noise:>16}{ap:>8.3f}{best:>11.3f}{which:>17}"
            f"{ap - best:>+8.3f}{target:>10}{acc:>10.3f}{product:>11.3f}{cl:>8.3f}"
            f"{'met' if product >= cl else 'MISSED':>11}{oracle:>11.3f}{notes}"
        )
    cells = np.array([v[5:] for v in verdicts])
    print(
        f"mean over the cells: top-k acc {cells[:, 0].mean():.4f}, filter acc "
        f"{cells[:, 2].mean():.4f}, CL acc {cells[:, 1].mean():.4f}, oracle acc "
        f"{cells[:, 3].mean():.4f}"
    )
    print(
        "oracle acc: LogisticRegression refit without exactly the flipped rows. "
        "Where it is below CL acc, no detector that ranks the flipped rows first "
        "reaches CleanLearning's accuracy: CleanLearning also drops correctly "
        "labelled rows that LogisticRegression cannot fit."
    )


if __name__ == "__main__":
    main()

"""FastIF against the original influence function, per query (DESIGN §6.4).

Problem: 20,000 training rows of a 10-class ``make_classification`` task
(20 features), a scikit-learn ``MLPClassifier`` with two hidden layers of 64
units; the influence parameters are its last layer (650 weights), so the
Hessian is that of the last layer and every solver sees the same quantity.

* original: ``InfluenceFunction`` with LiSSA over all training rows in the
  original, untuned configuration (``LissaSolver("original")``: HVP batch
  128, depth 1300), scoring every training row.
* FastIF: ``FastIF`` with its tuned LiSSA (HVP batch 1, depth 1000) on the
  ``n_neighbors`` nearest training rows in penultimate-feature space.

Both invert the same damped Hessian (FastIF's damping rule, ``5e-3 *
scale``, used for both). Per-query time is end to end (query gradients, kNN
search, solve, candidate gradients, products) for a batch of queries solved
together, divided by the number of queries; fitting is reported apart.
Quality: Spearman/Pearson between the two over the candidate rows, and the
recall of the original's top-10/100 helpful and harmful rows (over all
training rows) among the candidates.

Run: ``python benchmarks/fastif.py`` (a few minutes on 2 CPU cores).
"""

import argparse
import time

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier

from skinfluence import FastIF, InfluenceFunction, InfluenceScorer, LissaSolver
from skinfluence.methods import Query


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-queries", type=int, default=8)
    parser.add_argument("--n-neighbors", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)

    X, y = make_classification(
        n_samples=args.n_train + args.n_queries,
        n_features=20,
        n_informative=12,
        n_classes=10,
        n_clusters_per_class=1,
        random_state=args.seed,
    )
    Xtr, ytr = X[: args.n_train], y[: args.n_train]
    Xq, yq = X[args.n_train :], y[args.n_train :]

    t0 = time.perf_counter()
    mlp = MLPClassifier((64, 64), max_iter=30, random_state=args.seed)
    scorer = InfluenceScorer(
        mlp, method="tracin", parameters="last", random_state=args.seed
    ).fit(Xtr, ytr)
    print(
        f"model: MLP 20-64-64-10, train accuracy {scorer.score(Xtr, ytr):.3f}, "
        f"fit {time.perf_counter() - t0:.1f} s; influence parameters: last layer "
        f"(p={scorer._context().layout.p})"
    )
    ctx = scorer._context()
    Tq = ctx.view.encode_target(scorer._encode_labels(yq))
    Xq_t = torch.tensor(Xq, dtype=ctx.view.dtype)
    query = Query(Xq_t, Tq, measure=ctx.view.loss)
    m = len(Xq)

    # One query set per method; each query row gets its own candidates.
    t0 = time.perf_counter()
    fast = FastIF(args.n_neighbors, search="each").fit(ctx)
    fit_fast = time.perf_counter() - t0
    damping = fast.damping_
    t0 = time.perf_counter()
    orig = InfluenceFunction(solver=LissaSolver("original"), damping=damping)
    orig._maybe_cache = lambda *a, **k: None  # the original caches nothing
    orig.fit(ctx)
    fit_orig = time.perf_counter() - t0

    t0 = time.perf_counter()
    S_fast = fast.influence(ctx, query).numpy()
    per_fast = (time.perf_counter() - t0) / m
    t0 = time.perf_counter()
    S_orig = orig.influence(ctx, query).numpy()
    per_orig = (time.perf_counter() - t0) / m

    sp, pe, rec = [], [], {k: [] for k in ("help10", "help100", "harm10", "harm100")}
    for i in range(m):
        cand = fast.candidates_[i]
        sp.append(spearmanr(S_fast[i, cand], S_orig[i, cand])[0])
        pe.append(pearsonr(S_fast[i, cand], S_orig[i, cand])[0])
        order = np.argsort(S_orig[i])
        cs = set(cand.tolist())
        for k in (10, 100):
            rec[f"help{k}"].append(len(cs & set(order[-k:].tolist())) / k)
            rec[f"harm{k}"].append(len(cs & set(order[:k].tolist())) / k)

    print(
        f"\nn_train={args.n_train}, queries={m}, n_neighbors={args.n_neighbors}, "
        f"damping={damping:.4g}, scale fast={fast.solver_.scale_:.4g}, "
        f"original={orig.solver_.scale_:.4g}"
    )
    print(f"{'':34s}{'original':>12s}{'FastIF':>12s}")
    print(f"{'fit (s, once)':34s}{fit_orig:12.2f}{fit_fast:12.2f}")
    print(f"{'per-query time (s)':34s}{per_orig:12.3f}{per_fast:12.3f}")
    print(f"{'speedup per query':34s}{'':12s}{per_orig / per_fast:11.1f}x")
    print(f"{'Spearman over candidates (mean)':34s}{'':12s}{np.mean(sp):12.4f}")
    print(f"{'Pearson over candidates (mean)':34s}{'':12s}{np.mean(pe):12.4f}")
    for key, val in rec.items():
        kind = "helpful" if key.startswith("help") else "harmful"
        label = f"recall@{key[4:]} top {kind}"
        print(f"{label:34s}{'':12s}{np.mean(val):12.3f}")


if __name__ == "__main__":
    main()

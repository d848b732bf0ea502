"""FastIF against the original influence function, per query (DESIGN §6.4).

Problem: 20,000 training rows, each a sequence of 64 tokens with 8 features,
10 classes, some tokens of each row carrying a class signature. The model is
a skorch net shaped like a tiny text encoder: a token-wise MLP (8-64-64,
ReLU) shared by all positions, mean pooling, and a linear head. Every
parameter (p = 5,386) is an influence parameter. Like BERT in the FastIF
paper, each weight is used once per token, so one row's Hessian-vector
product does ~64 flops per parameter and per vector: per-row compute, not
per-call overhead, sets the cost of a LiSSA step. ``--model mlp`` runs a
tabular MLP instead (20 features, 128-128 hidden, all p = 20,490 parameters):
there a one-row product does ~1 flop per parameter and vector, the step cost
is the memory traffic of the query vectors, and the speedup is far smaller.

* original: ``InfluenceFunction`` with LiSSA over all training rows in the
  original, untuned configuration (``LissaSolver("original")``: HVP batch
  128, depth 1300), scoring every training row, caching nothing.
* FastIF: ``FastIF`` with its tuned LiSSA (HVP batch 1, depth 1000) on the
  k = 1000 nearest training rows of each query in penultimate-feature space
  (the paper's default k; here 5% of the training rows).

Both invert the same damped Hessian (FastIF's damping rule, ``5e-3 *
scale``, used for both) with the same code: the queries of a batch are
solved jointly, one Hessian-vector product per LiSSA step for all of them,
and per-query time is the end-to-end time of the batch (query gradients,
kNN search, solve, training/candidate gradients, products) divided by its
number of queries. The original is too slow to run on every query in a few
minutes: it runs on the first ``--n-original`` queries only (its cost is
linear in the queries; the table says so). Fitting (power iterations, kNN
index) is reported apart. Quality, over those queries: Spearman/Pearson
between the two over each query's candidates, and the recall of the
original's top-10/100 helpful and harmful rows (over all training rows)
among the candidates.

Run: ``python benchmarks/fastif.py`` (about 3 minutes on 2 idle CPU
cores, most of it FastIF's fit and the original's queries). Run it on an
idle machine: the original's 128-row products run on every torch thread,
and a thread descheduled by other load stalls each of their operations,
while FastIF's one-row steps run as independent single-thread recursions
on parts of the vectors, so load inflates the speedup (several times over
at a load of 6-8 on 2 cores; see benchmarks/README.md). The load average is printed at the start and the
end, with a warning when it exceeds half the cores (at the end, besides
this run's own threads).
"""

import argparse
import os
import time

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier
from torch import nn

from skinfluence import FastIF, InfluenceFunction, InfluenceScorer, LissaSolver
from skinfluence.methods import Query

N_TOKENS, TOKEN_DIM, N_CLASSES = 64, 8, 10


class TokenEncoder(nn.Module):
    """Token-wise MLP shared across positions, mean pooling, linear head."""

    def __init__(self, hidden=64):
        super().__init__()
        self.tokens = nn.Sequential(
            nn.Linear(TOKEN_DIM, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden, N_CLASSES)

    def forward(self, X):
        tokens = X.reshape(X.shape[0], N_TOKENS, TOKEN_DIM)
        return self.head(self.tokens(tokens).mean(1))


def sequence_problem(n, rng):
    """Rows of 64 noise tokens, a quarter of them replaced by noisy copies of
    one of the class's 3 signature tokens; 5% of the labels flipped."""
    signatures = rng.normal(size=(N_CLASSES, 3, TOKEN_DIM)) * 1.5
    y = rng.integers(0, N_CLASSES, n)
    X = rng.normal(size=(n, N_TOKENS, TOKEN_DIM))
    signal = rng.random((n, N_TOKENS)) < 0.25
    which = rng.integers(0, 3, (n, N_TOKENS))
    sig = signatures[y[:, None], which] + 0.5 * rng.normal(size=X.shape)
    X = np.where(signal[..., None], sig, X)
    flip = rng.random(n) < 0.05
    y = np.where(flip, rng.integers(0, N_CLASSES, n), y)
    return X.reshape(n, -1).astype(np.float32), y


def tabular_problem(n, rng):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n,
        n_features=20,
        n_informative=12,
        n_classes=N_CLASSES,
        n_clusters_per_class=1,
        random_state=int(rng.integers(2**31)),
    )
    return X.astype(np.float32), y


def fit_model(kind, X, y, seed):
    if kind == "sequence":
        model = NeuralNetClassifier(
            TokenEncoder,
            criterion=nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            optimizer__weight_decay=1e-4,
            lr=3e-3,
            max_epochs=6,
            batch_size=256,
            train_split=None,
            verbose=0,
        )
        desc = "token encoder 64x(8-64-64) -> mean -> 10"
    else:
        model = MLPClassifier((128, 128), max_iter=10, random_state=seed)
        desc = "MLP 20-128-128-10"
    scorer = InfluenceScorer(
        model, method="tracin", parameters="all", random_state=seed
    ).fit(X, y)
    return scorer, desc


def _warn_if_loaded(when, own=0):
    """Warn when the load average, less ``own`` (this run's threads), exceeds
    half the cores."""
    load = os.getloadavg()[0]
    if load - own > os.cpu_count() / 2:
        print(
            f"warning: load average {load:.1f} at the {when} on {os.cpu_count()} "
            "cores: other work slows the original's multi-threaded products far "
            "more than FastIF's single-thread steps, so the speedups are inflated"
        )


def log(message):
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["sequence", "mlp"], default="sequence")
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-queries", type=int, default=20)
    parser.add_argument(
        "--candidates",
        nargs="+",
        choices=["gradients", "features"],
        default=["gradients", "features"],
    )
    parser.add_argument("--n-original", type=int, default=4)
    parser.add_argument("--n-neighbors", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    make = sequence_problem if args.model == "sequence" else tabular_problem
    X, y = make(args.n_train + args.n_queries, rng)
    Xtr, ytr = X[: args.n_train], y[: args.n_train]
    Xq, yq = X[args.n_train :], y[args.n_train :]

    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    scorer, desc = fit_model(args.model, Xtr, ytr, args.seed)
    ctx = scorer._context()
    print(
        f"model: {desc}, train accuracy {scorer.score(Xtr, ytr):.3f}, held-out "
        f"accuracy {scorer.score(Xq, yq):.3f}, fit {time.perf_counter() - t0:.0f} s; "
        f"influence parameters: all (p={ctx.layout.p})"
    )
    print(
        f"machine: {os.cpu_count()} CPU cores, torch threads {args.threads}, "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    _warn_if_loaded("start")

    def query(rows):
        Tq = ctx.view.encode_target(scorer._adapter.encode_labels(yq[rows]))
        Xq_t = torch.tensor(Xq[rows], dtype=ctx.view.dtype)
        return Query(Xq_t, Tq, measure=ctx.view.loss)

    m, m_orig = args.n_queries, min(args.n_original, args.n_queries)
    kinds = args.candidates
    fast, fit_fast, S_fast, per_fast, lone_fast = {}, {}, {}, {}, {}
    for kind in kinds:
        log(f"fitting FastIF (candidates={kind!r})")
        t0 = time.perf_counter()
        method = FastIF(args.n_neighbors, candidates=kind, search="each")
        if kind != kinds[0]:
            # The same damped Hessian and LiSSA scale as the first kind: the
            # power iterations behind "auto" are not run twice.
            first = fast[kinds[0]]
            method.set_params(damping=first.damping_, scale=first.solver_.scale_)
        fast[kind] = method.fit(ctx)
        fit_fast[kind] = time.perf_counter() - t0
    damping = fast[kinds[0]].damping_
    log("fitting the original")
    t0 = time.perf_counter()
    orig = InfluenceFunction(
        solver=LissaSolver("original"), damping=damping, n_estimators=1
    )
    orig._maybe_cache = lambda *a, **k: None  # the original caches nothing
    orig.fit(ctx)
    fit_orig = time.perf_counter() - t0

    for kind in kinds:
        log(f"FastIF ({kind}) on {m} queries jointly, then one lone query")
        t0 = time.perf_counter()
        S_fast[kind] = fast[kind].influence(ctx, query(np.arange(m))).numpy()
        per_fast[kind] = (time.perf_counter() - t0) / m
        cands = fast[kind].candidates_
        t0 = time.perf_counter()
        fast[kind].influence(ctx, query(np.arange(1)))
        lone_fast[kind] = time.perf_counter() - t0
        fast[kind].candidates_ = cands
    log(f"original on {m_orig} queries jointly, then one lone query")
    t0 = time.perf_counter()
    S_orig = orig.influence(ctx, query(np.arange(m_orig))).numpy()
    per_orig = (time.perf_counter() - t0) / m_orig
    t0 = time.perf_counter()
    orig.influence(ctx, query(np.arange(1)))
    lone_orig = time.perf_counter() - t0

    keys = [f"{kind}{k}" for kind in ("help", "harm", "abs") for k in (10, 100)]
    quality = {}
    for kind in kinds:
        sp, pe, rec = [], [], {k: [] for k in keys}
        for i in range(m_orig):
            cand = fast[kind].candidates_[i]
            sp.append(spearmanr(S_fast[kind][i, cand], S_orig[i, cand])[0])
            pe.append(pearsonr(S_fast[kind][i, cand], S_orig[i, cand])[0])
            order = np.argsort(S_orig[i])
            by_abs = np.argsort(np.abs(S_orig[i]))
            cs = set(cand.tolist())
            for k in (10, 100):
                rec[f"help{k}"].append(len(cs & set(order[-k:].tolist())) / k)
                rec[f"harm{k}"].append(len(cs & set(order[:k].tolist())) / k)
                rec[f"abs{k}"].append(len(cs & set(by_abs[-k:].tolist())) / k)
        quality[kind] = (sp, pe, rec)

    print(
        f"\nn_train={args.n_train}, n_neighbors={args.n_neighbors}, "
        f"damping={damping:.4g}, scale FastIF={fast[kinds[0]].solver_.scale_:.4g}, "
        f"original={orig.solver_.scale_:.4g}"
    )
    print(
        f"queries: FastIF solves {m} jointly; the original solves the first "
        f"{m_orig} of them jointly (per-query cost measured on those {m_orig}, "
        "not extrapolated to more); 'lone' is one query on its own."
    )
    cols = "".join(f"{'FastIF ' + k:>20s}" for k in kinds)
    print(f"{'':36s}{'original':>12s}{cols}")
    print(
        f"{'fit (s, once)':36s}{fit_orig:12.1f}"
        + "".join(f"{fit_fast[k]:20.1f}" for k in kinds)
    )
    if len(kinds) > 1:
        print(
            f"(fit of FastIF {', '.join(kinds[1:])}: damping and scale taken from "
            f"the {kinds[0]} fit)"
        )
    print(
        f"{'queries timed (batch)':36s}{m_orig:12d}"
        + "".join(f"{m:20d}" for k in kinds)
    )
    print(
        f"{'per-query time in the batch (s)':36s}{per_orig:12.3f}"
        + "".join(f"{per_fast[k]:20.4f}" for k in kinds)
    )
    print(
        f"{'speedup per query (batch)':36s}{'':12s}"
        + "".join(f"{per_orig / per_fast[k]:19.1f}x" for k in kinds)
    )
    print(
        f"{'lone query time (s)':36s}{lone_orig:12.3f}"
        + "".join(f"{lone_fast[k]:20.4f}" for k in kinds)
    )
    print(
        f"{'speedup (lone query)':36s}{'':12s}"
        + "".join(f"{lone_orig / lone_fast[k]:19.1f}x" for k in kinds)
    )
    rows = [
        ("Spearman over candidates (mean)", lambda q: np.mean(q[0])),
        ("Spearman over candidates (min)", lambda q: np.min(q[0])),
        ("Pearson over candidates (mean)", lambda q: np.mean(q[1])),
    ]
    for key in keys:
        kind = {"help": "helpful", "harm": "harmful", "abs": "|influence|"}[
            key.rstrip("0123456789")
        ]
        label = (
            f"recall@{key[4:] if key[:4] in ('help', 'harm') else key[3:]} top {kind}"
        )
        rows.append((label, lambda q, key=key: np.mean(q[2][key])))
    for label, fn in rows:
        print(
            f"{label:36s}{'':12s}" + "".join(f"{fn(quality[k]):20.4f}" for k in kinds)
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    _warn_if_loaded("end", own=args.threads)


if __name__ == "__main__":
    main()

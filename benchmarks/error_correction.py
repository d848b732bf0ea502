"""InfluenceFineTuner: correct a spurious-feature model's errors (FastIF §6).

A HANS-like problem built without downloads: ten *core* features carry the
label through a noisy linear teacher, and one *spurious* feature equals the
label's sign (plus noise) for a fraction ``agreement`` of the rows and its
opposite for the rest. A model trained where the spurious feature agrees on
90% of rows leans on it; on the *challenge* set it agrees on only 10% (it is
anti-correlated with the label), as HANS's examples defeat the lexical-overlap
heuristic of MultiNLI models.
"""

import numpy as np

N_CORE = 10


def make_spurious_problem(n, agreement, rng, *, core_strength=4.5, noise=0.5):
    """``(X, y)``: ``n`` rows with the spurious feature agreeing with the
    label on a fraction ``agreement`` of them (last column).

    The label is Bernoulli(sigmoid(core_strength * w . x)) of a fixed unit
    teacher ``w`` (the same for every call), so the core features alone reach
    only the Bayes accuracy of that noisy teacher.
    """
    teacher = np.random.default_rng(12345).normal(size=N_CORE)
    teacher /= np.linalg.norm(teacher)
    core = rng.normal(size=(n, N_CORE))
    logit = core_strength * (core @ teacher)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    sign = np.where(rng.random(n) < agreement, 1.0, -1.0)
    spurious = sign * (2 * y - 1) + noise * rng.normal(size=n)
    X = np.column_stack([core, spurious]).astype(np.float32)
    return X, y


def draw(seed, agreement=0.9, n_train=2000, n_pool=2000, n_eval=2000, n_val=100):
    """Training, unseen pool and test rows (spurious feature agreeing on
    ``agreement`` of rows), challenge rows and a small validation set from
    the challenge distribution (agreeing on ``1 - agreement``)."""
    rng = np.random.default_rng(seed)
    return {
        "train": make_spurious_problem(n_train, agreement, rng),
        "pool": make_spurious_problem(n_pool, agreement, rng),
        "test": make_spurious_problem(n_eval, agreement, rng),
        "challenge": make_spurious_problem(n_eval, 1 - agreement, rng),
        "val": make_spurious_problem(n_val, 1 - agreement, rng),
    }


ROWS = [
    "original model",
    "helpful training rows",
    "random training rows",
    "helpful pool rows",
    "random pool rows",
    "validation rows themselves",
]


def run_seed(seed, args):
    """Challenge and test accuracy of every row of the table on one seed."""
    from sklearn.frozen import FrozenEstimator

    from skinfluence import InfluenceFineTuner

    d = draw(seed, args.agreement, args.n_train, args.n_pool)
    (X, y), (Xp, yp), (Xv, yv) = d["train"], d["pool"], d["val"]
    settings = {"random_state": seed}
    if args.method is not None:
        settings["method"] = args.method
    if args.n_rows is not None:
        settings["n_rows"] = args.n_rows
    tuner = InfluenceFineTuner(**settings).fit(X, y, X_val=Xv, y_val=yv)
    k = tuner.selected_rows_.shape[1]
    frozen = FrozenEstimator(tuner.base_estimator_)

    def on_rows(rows_X, rows_y, n_rows=None):
        # The pool is exactly the rows to fine-tune on (all of them), or the
        # unseen pool from which the most helpful n_rows are taken.
        ft = InfluenceFineTuner(
            frozen,
            **{**settings, "n_rows": n_rows or len(rows_y)},
            pool="pool",
        )
        return ft.fit(X, y, X_val=Xv, y_val=yv, X_pool=rows_X, y_pool=rows_y)

    rng = np.random.default_rng(seed + 1000)
    rand_train = rng.choice(len(y), k, replace=False)
    rand_pool = rng.choice(len(yp), k, replace=False)
    models = {
        "original model": frozen,
        "helpful training rows": tuner,
        "random training rows": on_rows(X[rand_train], y[rand_train]),
        "helpful pool rows": on_rows(Xp, yp, n_rows=k),
        "random pool rows": on_rows(Xp[rand_pool], yp[rand_pool]),
        "validation rows themselves": on_rows(Xv, yv),
    }
    acc = {}
    for name, model in models.items():
        for split in ("challenge", "test"):
            Xe, ye = d[split]
            acc[name, split] = 100 * float(np.mean(model.predict(Xe) == ye))
    return acc, k, int(tuner.n_errors_[0])


def main(argv=None):
    import argparse
    import time

    import torch

    from skinfluence import InfluenceFineTuner

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--agreement", type=float, default=0.9)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-pool", type=int, default=2000)
    parser.add_argument("--method", default=None, help="default: the tuner's")
    parser.add_argument("--n-rows", type=int, default=None, help="default: the tuner's")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    defaults = InfluenceFineTuner().get_params()
    print(
        f"Spurious feature agrees with the label on {args.agreement:.0%} of training/"
        f"pool/test rows and {1 - args.agreement:.0%} of challenge/validation rows; "
        f"{args.n_train} training, {args.n_pool} pool, 2000 test, 2000 challenge, 100 "
        f"validation rows. Model: the default skorch MLP. InfluenceFineTuner "
        f"method={args.method or defaults['method']!r}, n_rows={defaults['n_rows']}, "
        f"n_steps={defaults['n_steps']}, lr={defaults['lr']:g}, "
        f"n_rounds={defaults['n_rounds']}; every row fine-tunes with these settings."
    )
    results, t0 = [], time.time()
    for seed in seeds:
        acc, k, n_err = run_seed(seed, args)
        results.append(acc)
        print(
            f"  seed {seed}: {n_err} of 100 validation rows wrong, {k} rows "
            f"fine-tuned on ({time.time() - t0:.0f} s)",
            flush=True,
        )
    mean = {key: np.mean([r[key] for r in results]) for key in results[0]}
    sd = {key: np.std([r[key] for r in results]) for key in results[0]}
    base_c, base_t = mean["original model", "challenge"], mean["original model", "test"]
    print(f"\nAccuracy (%), mean ± sd over seeds {args.seeds}:\n")
    head = f"| {'fine-tuned on':28s} | {'challenge':>13s} | {'test':>13s} |"
    print(head + " Δ challenge | Δ test |")
    print(
        "|" + "-" * 30 + "|" + "-" * 15 + "|" + "-" * 15 + "|" + "-" * 13 + "|--------|"
    )
    for name in ROWS:
        c, t = mean[name, "challenge"], mean[name, "test"]
        print(
            f"| {name:28s} | {c:6.2f} ± {sd[name, 'challenge']:4.2f} | "
            f"{t:6.2f} ± {sd[name, 'test']:4.2f} | {c - base_c:+11.2f} | "
            f"{t - base_t:+6.2f} |"
        )
    for where in ("training", "pool"):
        gain = (
            mean[f"helpful {where} rows", "challenge"]
            - mean[f"random {where} rows", "challenge"]
        )
        drop = mean[f"helpful {where} rows", "test"] - base_t
        wins = sum(
            r[f"helpful {where} rows", "challenge"]
            > r[f"random {where} rows", "challenge"]
            for r in results
        )
        print(
            f"\nhelpful vs random {where} rows on the challenge set: {gain:+.2f} points "
            f"(target >= +2.5: {'met' if gain >= 2.5 else 'short'}; helpful ahead on "
            f"{wins} of {len(results)} seeds); test accuracy vs the original: "
            f"{drop:+.2f} (target within 1 point: "
            f"{'met' if abs(drop) <= 1 else 'short'})"
        )


if __name__ == "__main__":
    main()

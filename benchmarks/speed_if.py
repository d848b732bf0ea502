"""Speed of influence functions on an MLP: skinfluence solvers vs pyDVL and Captum.

Problem: the MLP 64-256-256-10 (85,002 parameters) and synthetic data of
``benchmarks/speed.py`` (same files when it shares ``--workdir``; otherwise
made here with the same recipe). Every tool computes the influence matrix of
``--n-query`` (500) query rows on ``n_train`` training rows, from the same
weights, with damping ``--damping`` (0.5, DESIGN 6.5) added to the Hessian
of the mean cross-entropy. Time = ``fit`` + ``influence`` of all queries in
a fresh process (for skinfluence through the method object, i.e. what
``InfluenceScorer.fit``/``influence`` run minus the self-influence pass):
the best of ``--repeat`` (3) runs, which stop repeating once their total
passes ``--repeat-budget`` (30) seconds, as in ``benchmarks/speed.py``, so a
slow contender runs once.

Reference: float64 block conjugate gradient to relative residual 1e-6 at
the same damping, on the first ``--ref-queries`` queries; "pearson" is the
mean over those queries of the Pearson correlation of a tool's scores with
it. Every tool's scores already share skinfluence's sign (positive =
helpful); pyDVL's ``InfluenceMode.Up`` scores are used as they are.

Contenders:

* skinfluence ``InfluenceFunction`` with ``CGSolver()``,
  ``ArnoldiSolver(rank=--rank)`` (the defaults: a Krylov space of
  ``rank + 10`` vectors and the per-layer gradient tail, ``tail="layer"``,
  both from the Hessian of at most 4,096 random training rows,
  ``hessian_rows=4096``), ``-full`` (the same on the Hessian of every
  training row, ``hessian_rows=None``; the same as the default up to 4,096
  rows), ``-r40`` (the defaults at ``rank=40``: fewer products),
  ``-k40g`` (a Krylov space of 40 vectors, all kept, started from a signed
  sum of training gradients: ``rank=40, oversampling=0, start="gradient"``;
  the fewest products found to agree at Pearson >= 0.99 at 2,000 and 8,000
  rows), ``-k40r20g`` (the same Krylov space, of which only the top 20
  Ritz pairs are kept and the rest goes to the tail: ``rank=20,
  oversampling=20, start="gradient"``; half the training rows' coordinates,
  the rest of the fit's cost once products run in bfloat16), ``-gradient``
  (one tail value for all layers, ``tail="gradient"``,
  the default before ``"layer"``), ``-krylov2k`` (a Krylov space of
  ``2 * rank`` vectors) and ``EKFACSolver()``;
* pyDVL 0.10 ``CgInfluence``, ``ArnoldiInfluence(rank=--rank)`` and
  ``EkfacInfluence`` (run with ``--pydvl-python``, a separate environment
  with numpy<2, since pyDVL 0.10 needs it, which also holds Captum);
* Captum ``ArnoldiInfluenceFunction`` (``projection_dim=--rank``,
  ``hessian_reg`` = damping).

A contender that runs past ``--timeout`` seconds is reported as such; where
the fastest anchor is among them, the ratio is a lower bound (``>=``).
Besides wall-clock time, every row has the CPU time of its process (all
threads): on a shared machine it shows how much of the time was work, and
its ratios are steadier than those of wall-clock time. ``--tools`` runs a
subset of the contenders.

Run ``python benchmarks/speed_if.py --n-train 2000 8000 --pydvl-python
/path/to/env/bin/python``. ``table(args,
measure)`` and ``add_arguments(parser)`` let ``benchmarks/speed.py`` append
this table; ``rows(args)`` returns the measurements.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from _speedkit import (
    Data,
    add_repeat_arguments,
    launch_worker,
    passthrough,
    timed_runs,
    write_problem,
)
from torch import nn

SCRIPT = os.path.abspath(__file__)
OURS = [
    "skinfluence-cg",
    "skinfluence-arnoldi",
    "skinfluence-arnoldi-full",
    "skinfluence-arnoldi-r40",
    "skinfluence-arnoldi-k40g",
    "skinfluence-arnoldi-k40r20g",
    "skinfluence-arnoldi-gradient",
    "skinfluence-arnoldi-krylov2k",
    "skinfluence-ekfac",
]
ANCHORS = ["pydvl-cg", "pydvl-arnoldi", "pydvl-ekfac", "captum-arnoldi"]
PASSTHROUGH = []


# --------------------------------------------------------------------------
# contenders (each runs in its own process)
# --------------------------------------------------------------------------
def _skinfluence(solver, module, X, y, Xq, yq, damping, dtype=torch.float32):
    from skorch import NeuralNetClassifier

    from skinfluence import InfluenceFunction, models
    from skinfluence.gradients import ParamLayout
    from skinfluence.methods import InfluenceContext, Query
    from skinfluence.utils._torch import make_generator

    def run():
        net = NeuralNetClassifier(
            module, criterion=nn.CrossEntropyLoss, train_split=None
        ).initialize()
        view = models.adapt(net, len(X), "cpu", dtype)
        Xt, Xqt = X.to(dtype), Xq.to(dtype)
        layout = ParamLayout(view, view.select("all"), Xt[:2])
        ctx = InfluenceContext(
            view=view,
            layout=layout,
            X=Xt,
            T=view.encode_target(y.numpy()),
            generator=make_generator(0),
        )
        method = InfluenceFunction(solver=solver, damping=damping).fit(ctx)
        query = Query(Xqt, view.encode_target(yq.numpy()), measure=view.loss)
        return method.influence(ctx, query).double().numpy()

    return run


def contender(name, args, module, X, y, Xq, yq):
    d = args.damping
    if name.startswith("skinfluence") or name == "reference":
        from skinfluence import ArnoldiSolver, CGSolver, EKFACSolver

        if name == "reference":
            solver = CGSolver(tol=1e-6, max_iter=1000)
            return _skinfluence(solver, module.double(), X, y, Xq, yq, d, torch.float64)
        solver = {
            "skinfluence-cg": CGSolver(),
            "skinfluence-arnoldi": ArnoldiSolver(rank=args.rank),
            "skinfluence-arnoldi-full": ArnoldiSolver(
                rank=args.rank, hessian_rows=None
            ),
            "skinfluence-arnoldi-r40": ArnoldiSolver(rank=40),
            "skinfluence-arnoldi-k40g": ArnoldiSolver(
                rank=40, oversampling=0, start="gradient"
            ),
            "skinfluence-arnoldi-k40r20g": ArnoldiSolver(
                rank=20, oversampling=20, start="gradient"
            ),
            "skinfluence-arnoldi-gradient": ArnoldiSolver(
                rank=args.rank, tail="gradient"
            ),
            "skinfluence-arnoldi-krylov2k": ArnoldiSolver(
                rank=args.rank, oversampling=args.rank
            ),
            "skinfluence-ekfac": EKFACSolver(),
        }[name]
        return _skinfluence(solver, module, X, y, Xq, yq, d)
    if name.startswith("pydvl"):
        from pydvl.influence import InfluenceMode
        from pydvl.influence.torch import ArnoldiInfluence, CgInfluence, EkfacInfluence
        from torch.utils.data import DataLoader, TensorDataset

        loss = nn.functional.cross_entropy

        def run():
            if name == "pydvl-cg":
                model = CgInfluence(module, loss, regularization=d)
            elif name == "pydvl-arnoldi":
                model = ArnoldiInfluence(module, loss, regularization=d, rank=args.rank)
            else:
                model = EkfacInfluence(module, hessian_regularization=d)
            loader = DataLoader(TensorDataset(X, y), batch_size=1000)
            model = model.fit(loader)
            values = model.influences(Xq, yq, X, y, mode=InfluenceMode.Up)
            # pyDVL's "up" scores are g_test^T (H + damping I)^{-1} g_train,
            # already positive for helpful rows: on a 300-row problem its CG
            # matches the reference at Pearson +1.0000 without a sign flip.
            return values.double().numpy()

        return run
    if name == "captum-arnoldi":
        from captum.influence._core.arnoldi_influence_function import (
            ArnoldiInfluenceFunction,
        )
        from torch.utils.data import DataLoader, TensorDataset

        path = os.path.join(args.workdir, "model.pt")

        def run():
            loader = DataLoader(TensorDataset(X, y), batch_size=1000)
            tool = ArnoldiInfluenceFunction(
                module,
                loader,
                path,
                loss_fn=nn.CrossEntropyLoss(reduction="none"),
                batch_size=1000,
                projection_dim=args.rank,
                hessian_reg=d,
            )
            return tool.influence((Xq, yq)).double().numpy()

        return run
    raise ValueError(name)


def worker(args):
    torch.set_num_threads(args.threads)
    data = Data(args.workdir, args.worker_n, args.n_query)
    module, X, y, Xq, yq = data.module(), data.X, data.y, data.Xq, data.yq
    if args.worker == "reference":
        Xq, yq = Xq[: args.ref_queries], yq[: args.ref_queries]
    # One small untimed run pays one-off costs (imports, set-up); a tiny
    # sample's Hessian may be too indefinite for the damping, which is fine.
    try:
        contender(args.worker, args, module, X[:256], y[:256], Xq[:4], yq[:4])()
    except Exception:  # noqa: BLE001
        pass
    run = contender(args.worker, args, module, X, y, Xq, yq)
    # The best of up to --repeat runs, as benchmarks/_speedkit.py times: runs
    # stop repeating once their total passes --repeat-budget seconds (the
    # reference and slow contenders run once).
    repeat = 1 if args.worker == "reference" else args.repeat
    times, cpus, scores = timed_runs(run, repeat, args.repeat_budget)
    path = os.path.join(args.workdir, f"if-{args.worker}-{args.worker_n}.npy")
    np.save(path, scores[: args.ref_queries])
    result = dict(time=min(times), cpu=min(cpus), runs=len(times), scores=path)
    print("RESULT " + json.dumps(result))


def _run(name, n_train, args):
    python = args.pydvl_python if name in ANCHORS else sys.executable
    cmd = [
        python,
        SCRIPT,
        "--worker",
        name,
        "--worker-n",
        str(n_train),
        "--workdir",
        args.workdir,
        *passthrough(
            args,
            [
                "n_query",
                "ref_queries",
                "damping",
                "rank",
                "threads",
                "repeat",
                "repeat_budget",
            ],
        ),
    ]
    try:
        # --threads holds for every library's thread pools, not only torch's.
        return launch_worker(cmd, timeout=args.timeout, threads=args.threads)
    except subprocess.TimeoutExpired:
        return dict(time=None, note=f"> {args.timeout:.0f} s (stopped)")
    except RuntimeError as err:
        return dict(time=None, note="failed: " + str(err).strip().splitlines()[-1])


def _pearson(path, ref):
    a = np.load(path)[: len(ref)]
    return float(np.mean([np.corrcoef(u, v)[0, 1] for u, v in zip(a, ref)]))


def _selected(args):
    """The contenders to run: ``--tools`` (names or prefixes) or all."""
    names = OURS + ANCHORS
    if not args.tools:
        return names
    unknown = [t for t in args.tools if not any(n.startswith(t) for n in names)]
    if unknown:
        raise ValueError(
            f"--tools {unknown} match no contender; choose among {names} "
            "(a prefix such as 'pydvl' selects several)."
        )
    # A full name selects that contender alone; anything else is a prefix.
    return [
        n
        for n in names
        if any(n == t or (t not in names and n.startswith(t)) for t in args.tools)
    ]


def _fastest(results, anchors, key, stopped=None):
    """The fastest anchor's ``key``; ``stopped`` stands in for the anchors
    that did not finish, when given."""
    done = [results[a][key] for a in anchors if results[a].get(key)]
    if stopped is not None and len(done) < len(anchors):
        done.append(stopped)
    return min(done) if done else None


def rows(args):
    """Measurements: one dict per (n_train, contender)."""
    out = []
    names = _selected(args)
    for n in args.if_n_train:
        saved = os.path.join(args.workdir, f"if-reference-{n}.npy")
        if args.reuse_reference and os.path.exists(saved):
            # Same problem files and flags: the (deterministic) solve of an
            # earlier run, whose time is not measured again.
            ref = dict(scores=saved, note="reused from an earlier run")
        else:
            ref = _run("reference", n, args)
        ref_scores = np.load(ref["scores"]) if ref.get("scores") else None
        if ref_scores is not None and len(ref_scores) < args.ref_queries:
            raise ValueError(
                f"{saved} holds {len(ref_scores)} reference queries, fewer than "
                f"--ref-queries {args.ref_queries}; run without --reuse-reference."
            )
        if ref_scores is not None:
            ref_scores = ref_scores[: args.ref_queries]
        results = {name: _run(name, n, args) for name in names}
        anchors = [a for a in ANCHORS if a in results]

        # A stopped anchor took at least the timeout of wall-clock time (a
        # bound); its CPU time is unknown, so the CPU ratio is over the
        # anchors that finished.
        bound = any(results[a].get("time") is None for a in anchors)
        fast = _fastest(results, anchors, "time", args.timeout)
        fast_cpu = _fastest(results, anchors, "cpu")
        for name in ["reference"] + names:
            r = ref if name == "reference" else results[name]
            t, c = r.get("time"), r.get("cpu")
            pear = None
            if r.get("scores") and ref_scores is not None:
                pear = _pearson(r["scores"], ref_scores)
            out.append(
                dict(
                    n_train=n,
                    tool=name,
                    time=t,
                    cpu=c,
                    speedup=(fast / t) if (fast and t) else None,
                    cpu_speedup=(fast_cpu / c) if (fast_cpu and c) else None,
                    # With a stopped anchor, its share is a lower bound
                    # only when it is the fastest (the timeout).
                    bound=bound and fast == args.timeout,
                    pearson=pear,
                    note=r.get("note", ""),
                )
            )
    return out


def table(args, measure=None):
    """The influence-function table as text (``measure`` is unused: these
    contenders run through this module's own workers)."""
    lines = [
        f"Influence functions, {args.n_query} queries, damping {args.damping}; "
        f"reference = float64 block CG to relative residual 1e-6 on the first "
        f"{args.ref_queries} queries ('reference' row: its time for those only); "
        "'x anchor' = fastest pyDVL/Captum time / this time, by wall-clock "
        "and by CPU time (all threads of the process; anchors that finished); "
        "'>=' where the fastest anchor was stopped at the timeout"
    ]
    head = (
        f"{'n_train':>7s}  {'tool':28s} {'time s':>9s} {'cpu s':>9s} "
        f"{'x anchor':>9s} {'x (cpu)':>9s} {'pearson':>8s}  note"
    )
    lines += [head, "-" * len(head)]

    def fmt(v, spec, bound=False):
        return "-" if v is None else (">=" if bound else "") + format(v, spec)

    for r in rows(args):
        lines.append(
            f"{r['n_train']:7d}  {r['tool']:28s} {fmt(r['time'], '.2f'):>9s} "
            f"{fmt(r['cpu'], '.2f'):>9s} "
            f"{fmt(r['speedup'], '.2f', r['bound']):>9s} "
            f"{fmt(r['cpu_speedup'], '.2f'):>9s} "
            f"{fmt(r['pearson'], '.4f'):>8s}  {r['note']}"
        )
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument("--if-n-train", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--damping", type=float, default=0.5)
    parser.add_argument("--ref-queries", type=int, default=50)
    parser.add_argument("--rank", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--reuse-reference",
        action="store_true",
        help="take the reference scores saved in --workdir by an earlier run "
        "of the same problem and damping instead of solving again",
    )
    parser.add_argument(
        "--tools",
        nargs="+",
        default=None,
        help="contenders to run (names or prefixes, e.g. skinfluence-arnoldi "
        "pydvl captum); default: all",
    )
    parser.add_argument(
        "--pydvl-python",
        default=os.environ.get("PYDVL_PYTHON", "/work/venv-pydvl/bin/python"),
        help="python of an environment with pydvl[influence]==0.10 (numpy<2) "
        "and captum, which runs every pyDVL and Captum contender",
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, nargs="+", default=None)
    parser.add_argument("--n-query", type=int, default=500)
    parser.add_argument("--n-features", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--n-classes", type=int, default=10)
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-n", type=int, default=None, help=argparse.SUPPRESS)
    add_repeat_arguments(parser, budget=30.0)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args)
        return
    if args.n_train:
        args.if_n_train = args.n_train
    args.n_train = args.if_n_train
    own = tempfile.TemporaryDirectory() if args.workdir is None else None
    args.workdir = args.workdir or own.name
    if not os.path.exists(os.path.join(args.workdir, "model.pt")):
        write_problem(args, args.workdir)
    print(table(args))
    if own is not None:
        own.cleanup()


if __name__ == "__main__":
    main()

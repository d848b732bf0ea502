"""Scale of exact TracIn: 10^4 to 10^6 training rows in bounded memory.

Problem: the MLP 64-256-256-10 of ``speed.py`` (85,002 parameters), trained
briefly on the first rows of a synthetic set (Gaussian inputs, labels from a
random teacher, 5% flipped). The rows are generated in chunks of float32 and
written to a ``.npy`` file in the work folder, which every measuring process
opens as a memory map: no process ever holds them as float64.

For each ``--n-train`` it measures, every contender in a fresh process:

* self-influence ``||g_j||^2`` of every training row, all parameters --
  skinfluence (``InfluenceScorer(...).self_influence_``), Captum
  ``TracInCP.self_influence`` (batched per-sample gradients), and one plain
  batched forward+backward pass over the same rows (the floor);
* top-``--top-k`` proponents and opponents of ``--n-query`` queries --
  skinfluence ``influence(Xq, yq, top_k=k)`` with all parameters, the same
  with the last layer's weight only, and Captum ``TracInCPFast`` (last
  layer's weight only; ``influence(..., k=k, proponents=True/False)``).

Then, at ``--projection-n`` rows, the mean Pearson correlation per query of
projected TracIn (``TracIn(projection_dim=d)``) with exact TracIn, with time
and memory, for ``--projection-dims``.

With ``--device cuda`` it adds the GPU rows: per-row gradient throughput of
the engine beside a plain batched backward pass over the same rows, and the
self-influence time at the largest ``--n-train``. Without CUDA those rows
are printed as unmeasured.

Columns: wall time after a warm-up on a tiny slice (the fastest of up to
``--repeats`` (3) timed runs, no more once ``--repeat-budget`` (20) seconds
of timed runs are spent, so one stray process on a shared machine does not
decide a short row), CPU time of that run, the ratio to the skinfluence row of the same quantity and
parameter set (all ratios come from one run on the same machine), the
process's peak resident set (``ru_maxrss``: data, model and all), and its
rise during the timed run. Contenders that would not finish within
``--timeout`` seconds (estimated linearly from the largest size measured)
are skipped with that estimate as a lower bound.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _speedkit  # noqa: E402
from _speedkit import format_table, launch_worker, machine_line, make_module  # noqa: E402

SCRIPT = os.path.abspath(__file__)
GEN_CHUNK = 65536
UNMEASURED = "unmeasured (no CUDA machine was available)"


# --------------------------------------------------------------------------
# the problem, written in chunks
# --------------------------------------------------------------------------
def write_problem(args, workdir):
    n = max(args.n_train + [args.projection_n])
    gen = torch.Generator().manual_seed(args.seed)
    teacher = torch.randn(args.n_features, args.n_classes, generator=gen)

    def rows(count):
        X = torch.randn(count, args.n_features, generator=gen)
        y = (torch.tanh(X) @ teacher).argmax(1)
        flip = torch.rand(count, generator=gen) < 0.05
        y[flip] = torch.randint(0, args.n_classes, (int(flip.sum()),), generator=gen)
        return X, y

    X = np.lib.format.open_memmap(
        os.path.join(workdir, "X.npy"), "w+", np.float32, (n, args.n_features)
    )
    y = np.lib.format.open_memmap(os.path.join(workdir, "y.npy"), "w+", np.int64, (n,))
    for start in range(0, n, GEN_CHUNK):
        Xc, yc = rows(min(GEN_CHUNK, n - start))
        X[start : start + len(Xc)] = Xc.numpy()
        y[start : start + len(yc)] = yc.numpy()
    X.flush()
    y.flush()
    Xq, yq = rows(args.n_query)
    np.save(os.path.join(workdir, "Xq.npy"), Xq.numpy())
    np.save(os.path.join(workdir, "yq.npy"), yq.numpy())

    torch.manual_seed(args.seed)
    module = make_module(args.n_features, args.hidden, args.n_classes)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    n_fit = min(n, args.fit_rows)
    Xf, yf = torch.from_numpy(X[:n_fit].copy()), torch.from_numpy(y[:n_fit].copy())
    for _ in range(args.train_epochs):
        order = torch.randperm(n_fit, generator=gen)
        for start in range(0, n_fit, 256):
            idx = order[start : start + 256]
            opt.zero_grad()
            F.cross_entropy(module(Xf[idx]), yf[idx]).backward()
            opt.step()
    torch.save(module.state_dict(), os.path.join(workdir, "model.pt"))
    meta = dict(
        n_features=args.n_features, hidden=list(args.hidden), n_classes=args.n_classes
    )
    with open(os.path.join(workdir, "meta.json"), "w") as f:
        json.dump(meta, f)


class Data(_speedkit.Data):
    """The first ``n`` training rows (memory-mapped) and the query rows; the
    model as in ``_speedkit``."""

    def __init__(self, workdir, n):
        with open(os.path.join(workdir, "meta.json")) as f:
            self.meta = json.load(f)
        self.X = np.load(os.path.join(workdir, "X.npy"), mmap_mode="r")[:n]
        self.y = np.load(os.path.join(workdir, "y.npy"), mmap_mode="r")[:n]
        self.Xq = np.load(os.path.join(workdir, "Xq.npy"))
        self.yq = np.load(os.path.join(workdir, "yq.npy"))
        self.checkpoint = os.path.join(workdir, "model.pt")

    def last_weight(self):
        return [f"{2 * len(self.meta['hidden'])}.weight"]


# --------------------------------------------------------------------------
# contenders: factory(data, args) -> run() (timed) -> result or None
# --------------------------------------------------------------------------
CONTENDERS = {}


def contender(name, quantity, label, params="all"):
    def deco(factory):
        CONTENDERS[name] = dict(
            quantity=quantity, label=label, params=params, factory=factory
        )
        return factory

    return deco


def _scorer(data, args, parameters="all", method="tracin", dtype="float32"):
    from sklearn.frozen import FrozenEstimator

    from skinfluence import InfluenceScorer

    return InfluenceScorer(
        FrozenEstimator(data.skorch_net()),
        method=method,
        parameters=parameters,
        device=args.device,
        dtype=dtype,
        random_state=0,
    )


@contender("ours_self", "self", "skinfluence TracIn")
def _ours_self(data, args):
    scorer = _scorer(data, args)

    def run():
        return scorer.fit(data.X, data.y).self_influence_

    return run


def _ours_topk(parameters):
    def factory(data, args):
        params = data.last_weight() if parameters == "last" else "all"
        scorer = _scorer(data, args, params)

        def run():
            S = scorer.fit(data.X, data.y).influence(data.Xq, data.yq, top_k=args.top_k)
            return _csr_to_ranked(S, args.top_k)

        return run

    return factory


contender("ours_topk", "topk", "skinfluence TracIn")(_ours_topk("all"))
contender("ours_topk_last", "topk", "skinfluence TracIn", "last W")(_ours_topk("last"))


def _csr_to_ranked(S, k):
    """(m, 2k) training-row indices: proponents best first, then opponents."""
    out = np.zeros((S.shape[0], 2 * k), dtype=np.int64)
    for i in range(S.shape[0]):
        lo, hi = S.indptr[i], S.indptr[i + 1]
        idx, vals = S.indices[lo:hi], S.data[lo:hi]
        order = np.lexsort((idx, -vals))
        out[i, :k] = idx[order[:k]]
        order = np.lexsort((idx, vals))
        out[i, k:] = idx[order[:k]]
    return out


@contender("fb", "self", "one forward+backward pass")
def _forward_backward(data, args):
    module = data.module().to(args.device)
    for p in module.parameters():
        p.requires_grad_(True)

    def run():
        module.zero_grad(set_to_none=True)
        n = data.X.shape[0]
        for s in range(0, n, args.fb_batch):
            xb = torch.from_numpy(np.ascontiguousarray(data.X[s : s + args.fb_batch]))
            yb = torch.from_numpy(np.ascontiguousarray(data.y[s : s + args.fb_batch]))
            out = module(xb.to(args.device))
            F.cross_entropy(out, yb.to(args.device), reduction="sum").backward()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return None

    return run


def _captum_data(data):
    from torch.utils.data import TensorDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read-only memory map
        return TensorDataset(torch.from_numpy(data.X), torch.from_numpy(data.y))


def _load_checkpoint(model, path):
    model.load_state_dict(torch.load(path))
    return 1.0


@contender("captum_self", "self", "Captum TracInCP.self_influence")
def _captum_self(data, args):
    from captum.influence import TracInCP

    def run():
        model = data.module()
        tracer = TracInCP(
            model,
            _captum_data(data),
            [data.checkpoint],
            _load_checkpoint,
            loss_fn=torch.nn.CrossEntropyLoss(reduction="sum"),
            batch_size=args.captum_batch,
            sample_wise_grads_per_batch=True,
        )
        return tracer.self_influence().detach().numpy()

    return run


@contender("captum_fast_topk", "topk", "Captum TracInCPFast top-k", "last W")
def _captum_fast_topk(data, args):
    from captum.influence import TracInCPFast

    def run():
        model = data.module()
        tracer = TracInCPFast(
            model,
            model[-1],
            _captum_data(data),
            [data.checkpoint],
            _load_checkpoint,
            loss_fn=torch.nn.CrossEntropyLoss(reduction="sum"),
            batch_size=args.captum_batch,
        )
        q = (torch.from_numpy(data.Xq), torch.from_numpy(data.yq))
        pro = tracer.influence(q, k=args.top_k, proponents=True)
        opp = tracer.influence(q, k=args.top_k, proponents=False)
        return np.concatenate([pro[0].numpy(), opp[0].numpy()], axis=1)

    return run


def _projected(dim, dtype="float32"):
    def factory(data, args):
        from skinfluence import TracIn

        method = TracIn(projection_dim=dim) if dim else "tracin"
        scorer = _scorer(data, args, method=method, dtype=dtype)

        def run():
            return scorer.fit(data.X, data.y).influence(data.Xq, data.yq)

        def info():
            method = scorer.method_
            cache = sum(G.nbytes() for G in method._train_cache.values())
            proj = method.projection_
            return dict(cache_mb=cache / 2**20, dim=proj.dim if proj else None)

        run.info = info
        return run

    return factory


# GPU rows: the engine's per-row gradients against a plain batched backward.
@contender("gpu_rowgrads", "gpu", "per-row gradients (engine)")
def _gpu_rowgrads(data, args):
    from sklearn.frozen import FrozenEstimator

    from skinfluence import InfluenceScorer

    scorer = InfluenceScorer(
        FrozenEstimator(data.skorch_net()), device=args.device
    ).fit(data.X[:64], data.y[:64])
    ctx = scorer._context()

    def run():
        from skinfluence.gradients import row_gradients

        n, step = data.X.shape[0], ctx.chunk
        for s in range(0, n, step):
            X = torch.from_numpy(np.ascontiguousarray(data.X[s : s + step]))
            T = torch.from_numpy(np.ascontiguousarray(data.y[s : s + step]))
            row_gradients(ctx.view, ctx.layout, X.to(args.device), T.to(args.device))
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return None

    return run


contender("gpu_backward", "gpu", "plain batched backward")(_forward_backward)


# --------------------------------------------------------------------------
# the measuring process
# --------------------------------------------------------------------------
def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_worker(args):
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    name = args.worker
    if name.startswith("proj_"):
        factory = _projected(int(name[5:]))
    elif name.startswith("dtype_"):
        factory = _projected(0, name[6:])
    else:
        factory = CONTENDERS[name]["factory"]
    factory(Data(args.workdir, 256), args)()  # warm-up, untimed
    data = Data(args.workdir, args.worker_n)
    run = factory(data, args)
    before = _maxrss_mb()
    timings, spent = [], 0.0
    while len(timings) < args.repeats and (not timings or spent < args.repeat_budget):
        t0, c0 = time.perf_counter(), time.process_time()
        result = run()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        timings.append((wall, cpu))
        spent += wall
    wall, cpu = min(timings)
    out = dict(time=wall, cpu=cpu, peak_mb=_maxrss_mb(), rise_mb=_maxrss_mb() - before)
    out["runs"] = len(timings)
    out.update(getattr(run, "info", dict)())
    if result is not None:
        path = os.path.join(args.workdir, f"result-{name}-{args.worker_n}.npy")
        np.save(path, np.asarray(result))
        out["result"] = path
    print("RESULT " + json.dumps(out))


def measure(args, name, n):
    cmd = [sys.executable, SCRIPT, "--worker", name, "--worker-n", str(n)]
    cmd += ["--workdir", args.workdir, "--threads", str(args.threads)]
    cmd += ["--device", args.device, "--top-k", str(args.top_k)]
    cmd += ["--captum-batch", str(args.captum_batch), "--fb-batch", str(args.fb_batch)]
    cmd += ["--repeats", str(args.repeats), "--repeat-budget", str(args.repeat_budget)]
    print(f"  measuring {name} at n_train={n} ...", file=sys.stderr, flush=True)
    try:
        return launch_worker(cmd, timeout=args.timeout)
    except Exception as err:  # timeout or failure: reported in the table
        return {"failed": type(err).__name__}


# --------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------
MAIN_ROWS = {
    "self": ["ours_self", "captum_self", "fb"],
    "topk": ["ours_topk", "ours_topk_last", "captum_fast_topk"],
}
BASE = {("self", "all"): "ours_self", ("topk", "all"): "ours_topk"}
BASE[("topk", "last W")] = "ours_topk_last"
QUANTITY = {"self": "self-influence", "topk": "top-k"}
CAPTUM = {"captum_self", "captum_fast_topk"}


def _skip(name, n, args, results):
    """A reason to skip, from the largest size this contender finished."""
    if name in CAPTUM and n > args.captum_max:
        return f"not run (n > --captum-max {args.captum_max})"
    done = [(m, r) for (c, m), r in results.items() if c == name and "time" in r]
    if done:
        m, r = max(done, key=lambda item: item[0])
        est = r["time"] * n / m
        if est > args.timeout:
            return f"skipped (est. > {est:.0f} s, past the {args.timeout:.0f} s bound)"
    failed = [m for (c, m), r in results.items() if c == name and "failed" in r]
    if failed and n > min(failed):
        return f"skipped (did not finish within {args.timeout:.0f} s at {min(failed)})"
    return None


def main_table(args):
    results = {}
    for n in args.n_train:
        for quantity in ("self", "topk"):
            for name in MAIN_ROWS[quantity]:
                reason = _skip(name, n, args, results)
                results[name, n] = (
                    {"skipped": reason} if reason else measure(args, name, n)
                )
    header = ["n_train", "quantity", "tool", "params", "time (s)", "cpu (s)"]
    header += ["x skinfluence", "peak RSS MB", "rise MB", "agrees"]
    rows = []
    for n in args.n_train:
        for quantity in ("self", "topk"):
            for name in MAIN_ROWS[quantity]:
                c, res = CONTENDERS[name], results[name, n]
                row = [str(n), QUANTITY[quantity], c["label"], c["params"]]
                if "time" not in res:
                    reason = res.get("skipped") or f"failed ({res.get('failed')})"
                    if "failed" in res and res["failed"] == "TimeoutExpired":
                        reason = f"did not finish within {args.timeout:.0f} s"
                    rows.append(row + [reason, "", "", "", "", ""])
                    continue
                base = results.get((BASE[quantity, c["params"]], n), {})
                ratio = f"{res['time'] / base['time']:.2f}x" if "time" in base else ""
                rows.append(
                    row
                    + [
                        f"{res['time']:.2f}",
                        f"{res['cpu']:.2f}",
                        ratio,
                        f"{res['peak_mb']:.0f}",
                        f"{res['rise_mb']:.0f}",
                        _agreement(name, n, results),
                    ]
                )
    return format_table(header, rows), _targets(args, results)


def _agreement(name, n, results):
    """Self-influence: Pearson with ours; top-k: share of the same rows."""
    ours = {"captum_self": "ours_self", "captum_fast_topk": "ours_topk_last"}
    ref = results.get((ours.get(name), n), {})
    res = results.get((name, n), {})
    if "result" not in ref or "result" not in res:
        return ""
    a, b = np.load(res["result"]), np.load(ref["result"])
    if name == "captum_self":
        return f"corr {np.corrcoef(a.ravel(), b.ravel())[0, 1]:.6f}"
    k = a.shape[1] // 2
    same = [
        len(set(x[:k]) & set(y[:k])) + len(set(x[k:]) & set(y[k:]))
        for x, y in zip(a, b)
    ]
    return f"same rows {np.mean(same) / (2 * k):.3f}"


def _targets(args, results):
    lines = []
    big = max(args.n_train)
    for quantity, name in (("self", "ours_self"), ("topk", "ours_topk")):
        r = results.get((name, big), {})
        if "peak_mb" in r:
            lines.append(
                f"n_train={big}: {QUANTITY[quantity]} peak RSS {r['peak_mb']:.0f} MB "
                "(target at 10^6: <= 2048 MB)"
            )
        sizes = sorted(m for (c, m), v in results.items() if c == name and "time" in v)
        if len(sizes) >= 2:
            a, b = sizes[-2], sizes[-1]
            t = results[name, b]["time"] / results[name, a]["time"]
            lines.append(
                f"{QUANTITY[quantity]}: time({b}) / time({a}) = {t:.2f} for "
                f"{b / a:.0f}x the rows (target for 10^6/10^5: <= 12x)"
            )
    ours, fb = results.get(("ours_self", big), {}), results.get(("fb", big), {})
    if "time" in ours and "time" in fb:
        lines.append(
            f"n_train={big}: self-influence / one forward+backward pass = "
            f"{ours['time'] / fb['time']:.2f}x (target: <= 2x)"
        )
    for n in args.n_train:
        ours, cap = results.get(("ours_self", n), {}), results.get(("captum_self", n))
        if "time" in ours and cap and "time" in cap:
            lines.append(
                f"n_train={n}: Captum TracInCP.self_influence / skinfluence = "
                f"{cap['time'] / ours['time']:.1f}x (target at 10^5: >= 20x)"
            )
    return lines


def projection_table(args):
    n = args.projection_n
    exact = measure(args, "proj_0", n)
    rows = []
    header = ["projection_dim", "projected dim", "time (s)", "x exact"]
    header += ["peak RSS MB", "gradient cache MB", "mean Pearson vs exact"]
    if "result" not in exact:
        return format_table(header, [["exact", "failed", "", "", "", "", ""]])
    S = np.load(exact["result"])
    rows.append(
        ["exact (None)", "", f"{exact['time']:.2f}", "1.00x"]
        + [f"{exact['peak_mb']:.0f}", f"{exact['cache_mb']:.1f}", "1"]
    )
    for dim in args.projection_dims:
        res = measure(args, f"proj_{dim}", n)
        if "result" not in res:
            rows.append([str(dim), "", "failed", "", "", "", ""])
            continue
        P = np.load(res["result"])
        corr = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(P, S)])
        rows.append(
            [
                str(dim),
                str(res["dim"]),
                f"{res['time']:.2f}",
                f"{res['time'] / exact['time']:.2f}x",
                f"{res['peak_mb']:.0f}",
                f"{res['cache_mb']:.1f}",
                f"{corr:.4f}",
            ]
        )
    return format_table(header, rows)


def dtype_table(args):
    """Time and fidelity of the dtypes: the full matrix against float64."""
    n = args.projection_n
    header = [
        "dtype",
        "time (s)",
        "x float32",
        "peak RSS MB",
        "mean Pearson vs float64",
    ]
    header += ["top-k overlap"]
    res = {dt: measure(args, f"dtype_{dt}", n) for dt in DTYPES}
    if "result" not in res["float64"]:
        return format_table(header, [["float64", "failed", "", "", "", ""]])
    S = np.load(res["float64"]["result"])
    rows = []
    for dt in DTYPES:
        r = res[dt]
        if "result" not in r:
            rows.append([dt, f"failed ({r.get('failed')})", "", "", "", ""])
            continue
        P = np.load(r["result"])
        corr = np.mean([np.corrcoef(a, b)[0, 1] for a, b in zip(P, S)])
        base = res["float32"].get("time")
        rows.append(
            [
                dt,
                f"{r['time']:.2f}",
                f"{r['time'] / base:.2f}x" if base else "",
                f"{r['peak_mb']:.0f}",
                f"{corr:.5f}",
                f"{_top_overlap(P, S, args.top_k):.3f} same top-{args.top_k}",
            ]
        )
    return format_table(header, rows)


DTYPES = ["float64", "float32", "bfloat16"]


def _top_overlap(P, S, k):
    """Mean share of the k largest scores per query that two matrices share."""
    a = np.argsort(-P, axis=1)[:, :k]
    b = np.argsort(-S, axis=1)[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))


def gpu_table(args):
    header = ["n_train", "row", "time (s)", "rows/s", "x backward"]
    if not args.device.startswith("cuda"):
        big = max(args.n_train)
        rows = [
            [str(big), CONTENDERS["gpu_rowgrads"]["label"], UNMEASURED, "", ""],
            [str(big), CONTENDERS["gpu_backward"]["label"], UNMEASURED, "", ""],
            [str(big), "self-influence (CUDA)", UNMEASURED, "", ""],
        ]
        return format_table(header, rows)
    big = max(args.n_train)
    rows = []
    back = measure(args, "gpu_backward", big)
    grads = measure(args, "gpu_rowgrads", big)
    selfi = measure(args, "ours_self", big)
    for label, res in (
        ("per-row gradients (engine)", grads),
        ("plain batched backward", back),
        ("self-influence", selfi),
    ):
        if "time" not in res:
            rows.append([str(big), label, "failed", "", ""])
            continue
        ratio = (
            f"{back['time'] / res['time']:.2f}" if "time" in back else ""
        )  # throughput relative to the backward pass
        rows.append(
            [str(big), label, f"{res['time']:.2f}", f"{big / res['time']:.0f}", ratio]
        )
    return format_table(header, rows)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    parser.add_argument("--n-query", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--n-features", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--n-classes", type=int, default=10)
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--fit-rows", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda[:N]'")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds a contender may take; larger sizes whose linear estimate "
        "passes it are skipped",
    )
    parser.add_argument(
        "--captum-max", type=int, default=10**6, help="largest n_train for Captum"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs per row, the fastest reported (fewer once --repeat-budget "
        "seconds of timed runs are spent)",
    )
    parser.add_argument("--repeat-budget", type=float, default=20.0)
    parser.add_argument("--captum-batch", type=int, default=1000)
    parser.add_argument("--fb-batch", type=int, default=8192)
    parser.add_argument("--projection-n", type=int, default=10**4)
    parser.add_argument(
        "--projection-dims", type=int, nargs="+", default=[256, 1024, 4096]
    )
    parser.add_argument(
        "--tables",
        nargs="+",
        default=["main", "projection", "dtype", "gpu"],
        help="tables to print: main, projection, dtype, gpu",
    )
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-n", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.worker is not None:
        run_worker(args)
        return
    own = tempfile.TemporaryDirectory() if args.workdir is None else None
    args.workdir = args.workdir or own.name
    os.makedirs(args.workdir, exist_ok=True)
    write_problem(args, args.workdir)
    print(machine_line(args))
    print(
        f"MLP {args.n_features}-{'-'.join(map(str, args.hidden))}-{args.n_classes}, "
        f"exact TracIn over all parameters unless marked, {args.n_query} queries, "
        f"top-{args.top_k}, float32, device {args.device}; per row the fastest of up "
        f"to {args.repeats} timed runs (no more once {args.repeat_budget:.0f} s are "
        "spent) after an untimed warm-up; ratios are within this run (the machine "
        "may be shared, so compare ratios, not absolute times)"
    )
    if "main" in args.tables:
        table, targets = main_table(args)
        print()
        print("Self-influence and top-k, time and peak memory")
        print(table)
        print()
        print("\n".join(targets))
    if "projection" in args.tables:
        print()
        print(
            f"Projected TracIn at n_train={args.projection_n}: full influence "
            f"matrix of {args.n_query} queries, mean Pearson per query with exact"
        )
        print(projection_table(args))
    if "dtype" in args.tables:
        print()
        print(
            f"dtype at n_train={args.projection_n}: full influence matrix of "
            f"{args.n_query} queries against float64"
        )
        print(dtype_table(args))
    if "gpu" in args.tables:
        print()
        print("GPU: per-row gradient throughput and self-influence")
        print(gpu_table(args))
    if own is not None:
        own.cleanup()


if __name__ == "__main__":
    main()

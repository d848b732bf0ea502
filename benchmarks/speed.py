"""Speed of all-parameter TracIn on an MLP: skinfluence vs Captum and the floors.

Problem: an MLP 64-256-256-10 (85,002 parameters) trained briefly on
synthetic data; ``--n-train`` training rows, ``--n-query`` query rows (500).
Two quantities, each computed by every tool from the same weights:

* the full influence matrix ``g_q . g_j`` (n_query, n_train) over all
  parameters (TracIn at the final weights, one checkpoint, learning rate 1);
* the self-influence ``||g_j||^2`` of every training row.

Contenders (each in a fresh process, see ``_speedkit``):

* skinfluence -- ``InfluenceScorer(FrozenEstimator(net), method="tracin")``,
  ``fit`` then ``influence`` (matrix) or ``self_influence_`` (self);
* naive floor -- ``torch.func.vmap(grad(...))`` per-row gradients, then one
  matrix product (in blocks of ``--naive-chunk`` training rows) or row norms;
* Captum ``TracInCP`` with ``sample_wise_grads_per_batch=True`` (Captum's
  batched per-sample-gradient mode; its default per-example loop is far
  slower and runs only with ``--captum-loop-max``);
* Captum ``TracInCPFast`` -- the last layer's weight only (no bias), so a
  different quantity: it is set beside skinfluence with ``parameters`` naming
  that weight ("last W");
* forward+backward -- one plain batched pass (``--fb-batch`` rows per batch)
  computing the summed-loss gradient over the training rows: the least work
  any exact per-row method must do.

The "x skinfluence" column is each row's time over the skinfluence time for
the same quantity and parameter set; "corr" is the Pearson correlation (and
"max rel err" the largest absolute difference over the largest absolute
reference value) against the reference named in "ref".

Run ``python benchmarks/speed.py --help`` for the flags; a module
``benchmarks/speed_if.py`` (when present) appends its own table, see
``benchmarks/README.md``.
"""

import argparse
import importlib
import importlib.util
import os
import sys
import tempfile

import torch
import torch.nn.functional as F
from _speedkit import (
    COMMON_PASSTHROUGH,
    CONTENDERS,
    add_common_arguments,
    compare,
    contender,
    format_table,
    machine_line,
    measure,
    passthrough,
    run_worker,
    write_problem,
)
from torch.func import functional_call, grad, vmap

EXTENSIONS = ["speed_if"]
SCRIPT = os.path.abspath(__file__)


# --------------------------------------------------------------------------
# skinfluence
# --------------------------------------------------------------------------
def _scorer(data, parameters):
    from sklearn.frozen import FrozenEstimator

    from skinfluence import InfluenceScorer

    return InfluenceScorer(
        FrozenEstimator(data.skorch_net()),
        method="tracin",
        parameters=parameters,
        device="cpu",
    )


def _last_weight(data):
    """Name of the last Linear layer's weight: Captum's TracInCPFast takes the
    gradient of that weight only (no bias), so the comparison uses the same."""
    return [f"{2 * len(data.meta['hidden'])}.weight"]


def _ours_matrix(parameters):
    def factory(data, args):
        scorer = _scorer(
            data, _last_weight(data) if parameters == "last" else parameters
        )
        X, y, Xq, yq = (t.numpy() for t in (data.X, data.y, data.Xq, data.yq))

        def run():
            return scorer.fit(X, y).influence(Xq, yq)

        return run

    return factory


def _ours_self(parameters):
    def factory(data, args):
        scorer = _scorer(
            data, _last_weight(data) if parameters == "last" else parameters
        )
        X, y = data.X.numpy(), data.y.numpy()

        def run():
            return scorer.fit(X, y).self_influence_

        return run

    return factory


contender("ours", "matrix", "skinfluence TracIn")(_ours_matrix("all"))
contender("ours_last", "matrix", "skinfluence TracIn", "last W")(_ours_matrix("last"))
contender("ours_self", "self", "skinfluence TracIn")(_ours_self("all"))
contender("ours_last_self", "self", "skinfluence TracIn", "last W")(_ours_self("last"))


# --------------------------------------------------------------------------
# naive floor: torch.func per-row gradients + one matrix product
# --------------------------------------------------------------------------
def _per_row_grads(module):
    params = {k: v.detach() for k, v in module.named_parameters()}

    def loss(p, x, t):
        out = functional_call(module, p, (x.unsqueeze(0),))
        return F.cross_entropy(out, t.unsqueeze(0))

    per_row = vmap(grad(loss), in_dims=(None, 0, 0))

    def flat(X, y):
        g = per_row(params, X, y)
        return torch.cat([v.reshape(X.shape[0], -1) for v in g.values()], dim=1)

    return flat


@contender("naive", "matrix", "naive floor (torch.func + matmul)")
def _naive_matrix(data, args):
    flat = _per_row_grads(data.module())

    def run():
        with torch.no_grad():
            Q = flat(data.Xq, data.yq)
            n = data.X.shape[0]
            out = torch.empty(Q.shape[0], n)
            for s in range(0, n, args.naive_chunk):
                sl = slice(s, min(n, s + args.naive_chunk))
                torch.mm(Q, flat(data.X[sl], data.y[sl]).T, out=out[:, sl])
        return out.numpy()

    return run


@contender("naive_self", "self", "naive floor (torch.func + norms)")
def _naive_self(data, args):
    flat = _per_row_grads(data.module())

    def run():
        n = data.X.shape[0]
        out = torch.empty(n)
        for s in range(0, n, args.naive_chunk):
            sl = slice(s, min(n, s + args.naive_chunk))
            out[sl] = (flat(data.X[sl], data.y[sl]) ** 2).sum(1)
        return out.numpy()

    return run


@contender("fb", "self", "one forward+backward pass")
def _forward_backward(data, args):
    module = data.module()
    for p in module.parameters():
        p.requires_grad_(True)

    def run():
        module.zero_grad(set_to_none=True)
        n = data.X.shape[0]
        for s in range(0, n, args.fb_batch):
            out = module(data.X[s : s + args.fb_batch])
            F.cross_entropy(
                out, data.y[s : s + args.fb_batch], reduction="sum"
            ).backward()
        return None

    return run


# --------------------------------------------------------------------------
# Captum
# --------------------------------------------------------------------------
def _load_checkpoint(model, path):
    model.load_state_dict(torch.load(path))
    return 1.0


def _captum(data, args, kind):
    from captum.influence import TracInCP, TracInCPFast
    from torch.utils.data import TensorDataset

    model = data.module()
    train = TensorDataset(data.X, data.y)
    if kind == "fast":
        return TracInCPFast(
            model,
            model[-1],
            train,
            [data.checkpoint],
            _load_checkpoint,
            loss_fn=torch.nn.CrossEntropyLoss(reduction="sum"),
            batch_size=args.captum_batch,
        )
    sample_wise = kind == "sample_wise"
    return TracInCP(
        model,
        train,
        [data.checkpoint],
        _load_checkpoint,
        loss_fn=torch.nn.CrossEntropyLoss(reduction="sum" if sample_wise else "none"),
        batch_size=args.captum_batch,
        sample_wise_grads_per_batch=sample_wise,
    )


def _captum_matrix(kind):
    def factory(data, args):
        def run():
            tracer = _captum(data, args, kind)
            return tracer.influence((data.Xq, data.yq)).detach().numpy()

        return run

    return factory


def _captum_self(kind):
    def factory(data, args):
        def run():
            return _captum(data, args, kind).self_influence().detach().numpy()

        return run

    return factory


contender("captum", "matrix", "Captum TracInCP")(_captum_matrix("sample_wise"))
contender("captum_loop", "matrix", "Captum TracInCP (per-example loop)")(
    _captum_matrix("loop")
)
contender("captum_fast", "matrix", "Captum TracInCPFast", "last W")(
    _captum_matrix("fast")
)
contender("captum_self", "self", "Captum TracInCP.self_influence")(
    _captum_self("sample_wise")
)
contender("captum_fast_self", "self", "Captum TracInCPFast.self_influence", "last W")(
    _captum_self("fast")
)

# (contender, reference for corr) in table order, per quantity; the "x
# skinfluence" base is the skinfluence row with the same parameter set.
ROWS = {
    "matrix": [
        ("ours", "naive"),
        ("naive", None),
        ("captum", "naive"),
        ("captum_loop", "naive"),
        ("ours_last", "captum_fast"),
        ("captum_fast", "ours_last"),
    ],
    "self": [
        ("ours_self", "naive_self"),
        ("naive_self", None),
        ("captum_self", "naive_self"),
        ("fb", None),
        ("ours_last_self", "captum_fast_self"),
        ("captum_fast_self", "ours_last_self"),
    ],
}
QUANTITY = {"matrix": "influence matrix", "self": "self-influence"}
SLOW = {"captum", "captum_self"}


def _skip_reason(name, n, args, results):
    if name == "captum_loop" and n > args.captum_loop_max:
        return "off"
    limit = args.skip_captum_above
    if name in SLOW and limit is not None and n > limit:
        done = [(m, r) for (c, m), r in results.items() if c == name and "time" in r]
        if not done:
            return "skipped"
        m, r = max(done, key=lambda item: item[0])
        return f"skipped (est. > {r['time'] * n / m:.0f} s)"
    return None


def tracin_table(args):
    """Measure every TracIn contender; the printed table and a summary."""
    results = {}
    for n in args.n_train:
        for quantity in ("matrix", "self"):
            for name, _ in ROWS[quantity]:
                reason = _skip_reason(name, n, args, results)
                if reason == "off":
                    continue
                if reason is not None:
                    results[name, n] = {"skipped": reason}
                    continue
                print(f"  measuring {name} at n_train={n} ...", file=sys.stderr)
                results[name, n] = measure(SCRIPT, name, n, args)

    header = [
        "n_train",
        "quantity",
        "tool",
        "params",
        "time (s)",
        "cpu (s)",
        "x skinfluence",
        "peak MB",
        "corr",
        "max rel err",
        "ref",
    ]
    rows, summary = [], []
    for n in args.n_train:
        for quantity in ("matrix", "self"):
            for name, ref in ROWS[quantity]:
                res = results.get((name, n))
                if res is None:
                    continue
                c = CONTENDERS[name]
                row = [str(n), QUANTITY[quantity], c.label, c.params]
                if "skipped" in res:
                    rows.append(row + [res["skipped"], "", "", "", "", "", ""])
                    continue
                base = next(
                    results.get((b, n))
                    for b, _ in ROWS[quantity]
                    if b.startswith("ours") and CONTENDERS[b].params == c.params
                )
                ratio = res["time"] / base["time"] if base and "time" in base else None
                corr = err = ""
                ref_res = results.get((ref, n)) if ref else None
                if ref_res and res.get("scores") and ref_res.get("scores"):
                    r, e = compare(res["scores"], ref_res["scores"])
                    corr, err = f"{r:.6f}", f"{e:.1e}"
                rows.append(
                    row
                    + [
                        f"{res['time']:.3f}",
                        f"{res['cpu']:.3f}",
                        "" if ratio is None else f"{ratio:.2f}x",
                        f"{res['peak_mb']:.0f}",
                        corr,
                        err,
                        CONTENDERS[ref].label if corr else "",
                    ]
                )
        summary += _targets(n, results)
    return format_table(header, rows), summary


def _targets(n, results):
    lines = []
    ours, cap = results.get(("ours", n)), results.get(("captum", n))
    if ours and cap and "time" in cap:
        speedup = cap["time"] / ours["time"]
        lines.append(
            f"n_train={n}: full matrix, Captum TracInCP / skinfluence = "
            f"{speedup:.1f}x (target at 8000: >= 20x)"
        )
    ours, fb = results.get(("ours_self", n)), results.get(("fb", n))
    if ours and fb:
        lines.append(
            f"n_train={n}: self-influence / one forward+backward = "
            f"{ours['time'] / fb['time']:.2f}x (target at 8000: <= 2x)"
        )
    return lines


def build_parser(extensions):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--skip-captum-above",
        type=int,
        default=None,
        help="do not run Captum TracInCP (all parameters) for n_train above this; "
        "the table then shows an estimate from the largest n_train measured",
    )
    parser.add_argument(
        "--captum-loop-max",
        type=int,
        default=0,
        help="also run Captum TracInCP's default per-example loop up to this n_train",
    )
    parser.add_argument("--captum-batch", type=int, default=1000)
    parser.add_argument("--naive-chunk", type=int, default=2000)
    parser.add_argument("--fb-batch", type=int, default=8192)
    parser.add_argument(
        "--tables",
        nargs="+",
        default=None,
        help="tables to print: 'tracin' and the names of extension modules "
        "(default: all)",
    )
    for ext in extensions:
        if hasattr(ext, "add_arguments"):
            ext.add_arguments(parser)
    return parser


def main(argv=None):
    sys.path.insert(0, os.path.dirname(SCRIPT))
    extensions = [
        importlib.import_module(m) for m in EXTENSIONS if importlib.util.find_spec(m)
    ]
    args = build_parser(extensions).parse_args(argv)
    if args.worker is not None:
        run_worker(args)
        return
    names = ["n_query", "captum_batch", "naive_chunk", "fb_batch"]
    names += COMMON_PASSTHROUGH
    for ext in extensions:
        names += list(getattr(ext, "PASSTHROUGH", []))
    args.passthrough = passthrough(args, names)
    own = tempfile.TemporaryDirectory() if args.workdir is None else None
    args.workdir = args.workdir or own.name
    write_problem(args, args.workdir)
    p = sum(
        v.numel() for v in torch.load(os.path.join(args.workdir, "model.pt")).values()
    )
    wanted = args.tables or ["tracin"] + [e.__name__ for e in extensions]
    print(machine_line(args))
    print(
        f"MLP {args.n_features}-{'-'.join(map(str, args.hidden))}-{args.n_classes} "
        f"({p} parameters), {args.n_query} queries, float32; time = best of up to "
        f"{args.repeat} runs (one run when a run takes > {args.repeat_budget:.0f} s); "
        "peak MB = rise of the process's max RSS during the timed runs"
    )
    if "tracin" in wanted:
        table, summary = tracin_table(args)
        print()
        print("TracIn, all-parameter influence matrix and self-influence")
        print(table)
        print()
        print("\n".join(summary))
    for ext in extensions:
        if ext.__name__ in wanted:
            print()
            print(ext.table(args, lambda name, n: measure(SCRIPT, name, n, args)))
    if own is not None:
        own.cleanup()


if __name__ == "__main__":
    main()

"""Shared harness of the speed benchmarks.

One synthetic problem (an MLP classifier with fixed weights, training rows and
query rows) is written once to a work folder. Every contender is then run in
a fresh Python process that loads that problem, so that each one sees the
same weights and data and its peak memory can be read from the process's own
high-water mark. Scripts register contenders with :func:`contender`, measure
them with :func:`measure` and print tables with :func:`format_table`.

Timing: a contender is first run once on a tiny slice of the data (so that
one-time initialisation is not timed), then timed on the full slice; the time
reported is the best wall-clock time of ``--repeat`` runs, where runs stop
repeating once their total passes ``--repeat-budget`` seconds (slow
contenders are timed once). The CPU time (all threads of the process, best
run) is reported beside it: on a shared machine it shows how much of the wall
time was work. Peak memory: the rise of ``ru_maxrss`` (the resident-set high-water
mark) from just before the timed runs to just after them, so imports, the
data and the model are not counted; results written by the contender are.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

CONTENDERS = {}


@dataclass
class Contender:
    """A tool computing one quantity; ``factory(data, args)`` builds it
    (untimed) and returns the callable that is timed."""

    name: str
    quantity: str
    label: str
    params: str
    factory: object


def contender(name, quantity, label, params="all"):
    """Decorator registering ``factory(data, args) -> run`` under ``name``."""

    def deco(factory):
        CONTENDERS[name] = Contender(name, quantity, label, params, factory)
        return factory

    return deco


# --------------------------------------------------------------------------
# the problem
# --------------------------------------------------------------------------
def make_module(n_features, hidden, n_classes):
    """The benchmark MLP: Linear layers with ReLU between them."""
    layers, width = [], n_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def write_problem(args, workdir):
    """Synthetic data, and an MLP trained briefly on it, saved to ``workdir``."""
    n_pool = max(args.n_train)
    gen = torch.Generator().manual_seed(args.seed)
    X = torch.randn(n_pool + args.n_query, args.n_features, generator=gen)
    teacher = torch.randn(args.n_features, args.n_classes, generator=gen)
    y = (torch.tanh(X) @ teacher).argmax(1)
    flip = torch.rand(len(y), generator=gen) < 0.05
    y[flip] = torch.randint(0, args.n_classes, (int(flip.sum()),), generator=gen)

    torch.manual_seed(args.seed)
    module = make_module(args.n_features, args.hidden, args.n_classes)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    for _ in range(args.train_epochs):
        order = torch.randperm(n_pool, generator=gen)
        for start in range(0, n_pool, 256):
            idx = order[start : start + 256]
            opt.zero_grad()
            nn.functional.cross_entropy(module(X[idx]), y[idx]).backward()
            opt.step()
    os.makedirs(workdir, exist_ok=True)
    torch.save(module.state_dict(), os.path.join(workdir, "model.pt"))
    np.savez(
        os.path.join(workdir, "data.npz"),
        X=X[:n_pool].numpy(),
        y=y[:n_pool].numpy(),
        Xq=X[n_pool:].numpy(),
        yq=y[n_pool:].numpy(),
    )
    meta = dict(
        n_features=args.n_features, hidden=list(args.hidden), n_classes=args.n_classes
    )
    with open(os.path.join(workdir, "meta.json"), "w") as f:
        json.dump(meta, f)


class Data:
    """The first ``n_train`` training rows and ``n_query`` query rows."""

    def __init__(self, workdir, n_train, n_query):
        with open(os.path.join(workdir, "meta.json")) as f:
            self.meta = json.load(f)
        arrays = np.load(os.path.join(workdir, "data.npz"))
        self.X = torch.from_numpy(arrays["X"][:n_train].copy())
        self.y = torch.from_numpy(arrays["y"][:n_train].copy())
        self.Xq = torch.from_numpy(arrays["Xq"][:n_query].copy())
        self.yq = torch.from_numpy(arrays["yq"][:n_query].copy())
        self.checkpoint = os.path.join(workdir, "model.pt")

    def module(self):
        """A fresh copy of the MLP with the shared weights, in eval mode."""
        m = self.meta
        module = make_module(m["n_features"], m["hidden"], m["n_classes"])
        module.load_state_dict(torch.load(self.checkpoint))
        return module.eval()

    def skorch_net(self):
        """The MLP as a fitted-looking skorch classifier (no training)."""
        from skorch import NeuralNetClassifier

        net = NeuralNetClassifier(
            self.module(),
            criterion=nn.CrossEntropyLoss,
            train_split=None,
            verbose=0,
        ).initialize()
        return net


# --------------------------------------------------------------------------
# running one contender in a fresh process
# --------------------------------------------------------------------------
def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_worker(args):
    """Entry point of the measuring process (``--worker NAME``)."""
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    c = CONTENDERS[args.worker]
    tiny = Data(args.workdir, min(64, args.worker_n), 8)
    c.factory(tiny, args)()
    data = Data(args.workdir, args.worker_n, args.n_query)
    run = c.factory(data, args)
    before = _maxrss_mb()
    times, cpus, scores = timed_runs(run, args.repeat, args.repeat_budget)
    peak = _maxrss_mb() - before
    out = dict(times=times, cpus=cpus, peak_mb=peak, scores=None)
    if scores is not None:
        path = os.path.join(args.workdir, f"scores-{c.name}-{args.worker_n}.npy")
        np.save(path, np.asarray(scores, dtype=np.float64))
        out["scores"] = path
    print("RESULT " + json.dumps(out))


def measure(script, name, n_train, args):
    """Run contender ``name`` at ``n_train`` in a fresh process; its result."""
    cmd = [
        sys.executable,
        script,
        "--worker",
        name,
        "--worker-n",
        str(n_train),
        "--workdir",
        args.workdir,
        *args.passthrough,
    ]
    try:
        res = launch_worker(cmd)
    except RuntimeError as err:
        raise RuntimeError(
            f"contender {name} at n_train={n_train} failed:\n{str(err)[-3000:]}"
        ) from None
    res["time"] = min(res["times"])
    res["cpu"] = min(res["cpus"])
    return res


def launch_worker(cmd, timeout=None, threads=None):
    """Run a worker command with the repository importable; the dict of its
    ``RESULT`` line. Raises ``RuntimeError`` (its stderr) when there is none
    and ``subprocess.TimeoutExpired`` past ``timeout`` seconds. ``threads``
    caps the thread pools of every native library the worker loads (BLAS,
    OpenMP) through the environment, which also reaches libraries loaded
    after start-up, such as SciPy's own BLAS."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(proc.stderr)


def add_common_arguments(parser):
    """Flags every speed script shares (problem, timing, worker plumbing)."""
    parser.add_argument("--n-train", type=int, nargs="+", default=[2000, 8000, 32000])
    parser.add_argument("--n-query", type=int, default=500)
    parser.add_argument("--n-features", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--n-classes", type=int, default=10)
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="torch threads in every contender's process (default: all cores)",
    )
    add_repeat_arguments(parser)
    parser.add_argument("--workdir", default=None, help="folder for the problem")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-n", type=int, default=None, help=argparse.SUPPRESS)


def timed_runs(run, repeat, budget):
    """``(wall times, CPU times, last result)`` of up to ``repeat`` calls of
    ``run``, which stop once their total wall time passes ``budget``."""
    times, cpus, result = [], [], None
    while len(times) < repeat and (not times or sum(times) < budget):
        t0, c0 = time.perf_counter(), time.process_time()
        result = run()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return times, cpus, result


def add_repeat_arguments(parser, budget=60.0):
    """``--repeat`` (timed runs, the best reported) and ``--repeat-budget``."""
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best)")
    parser.add_argument(
        "--repeat-budget",
        type=float,
        default=budget,
        help="stop repeating a contender once its runs took this many seconds",
    )


def passthrough(args, names):
    """Command-line flags that workers need, rebuilt from ``args``."""
    out = []
    for name in names:
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(value, list | tuple):
            out += [flag, *map(str, value)]
        else:
            out += [flag, str(value)]
    return out


COMMON_PASSTHROUGH = ["n_query", "threads", "repeat", "repeat_budget"]


# --------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------
def compare(scores_path, reference_path):
    """Pearson correlation and max relative error of two score arrays."""
    a = np.load(scores_path).ravel()
    b = np.load(reference_path).ravel()
    corr = float(np.corrcoef(a, b)[0, 1])
    err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
    return corr, err


def machine_line(args):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"machine: {os.cpu_count()} CPU cores ({cpu}); torch {torch.__version__}, "
        f"{args.threads} threads per process; python {platform.python_version()}"
    )


def format_table(header, rows):
    """Plain-text table, columns left-aligned except numbers."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def fmt(r):
        return "  ".join(
            c.rjust(w) if i >= 3 else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths))
        )

    lines = [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)

"""LiSSA: inverse-Hessian-vector products by a stochastic Neumann recursion."""

import copy
import numbers
import pickle
import warnings

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.parallel import Parallel, delayed
from torch.func import grad, jvp, vmap

from ...exceptions import SolverConvergenceWarning
from ...utils._torch import intra_op_threads, make_generator
from ._base import BaseSolver, resolve_damping, reusing_graphs, sample_rows

__all__ = [
    "LISSA_PRESETS",
    "LissaSolver",
    "estimate_row_top_eigenvalue",
    "estimate_top_eigenvalue",
]

#: Numerical settings of the two published LiSSA configurations. ``"fastif"``
#: is the tuned one of FastIF (Guo et al. 2021: HVP batch of one row, 1000
#: steps); ``"original"`` is the configuration of the original influence
#: function the FastIF paper compares against (HVP batch 128, 1300 steps).
LISSA_PRESETS = {
    "fastif": {"depth": 1000, "batch_size": 1, "repetitions": 1},
    "original": {"depth": 1300, "batch_size": 128, "repetitions": 1},
}

# scale="auto" is this multiple of a bound on the top eigenvalue of the
# damped mini-batch Hessians: the recursion contracts when scale exceeds it.
AUTO_SCALE_FACTOR = 2.0
# The top eigenvalue is estimated by power iteration on at most this many
# randomly chosen training rows (an unbiased mini-batch of the mean Hessian).
POWER_ROWS = 4096
POWER_ITERATIONS = 20
# A chain whose iterate norm exceeds this multiple of its contractive bound
# ``(t + 1) ||v||`` is declared divergent.
DIVERGENCE_FACTOR = 10.0
# Recursions on mini-batches of at most this many rows run on one CPU thread
# each (see utils._torch.intra_op_threads and column_groups).
SMALL_BATCH = 8
# At most this many threads share the vectors of one small-batch recursion:
# the Python part of a one-row step holds the interpreter lock, so more
# threads contend for it (measured gains are for two; see column_groups).
MAX_COLUMN_GROUPS = 2
# ... and each thread takes at least this many of them: below, the second
# thread's own forward pass costs more than the vectors it takes over.
MIN_GROUP_VECTORS = 6


def column_groups(problem, n_vectors):
    """Threads among which the right-hand sides of a small-batch recursion
    are split, one contiguous group of vectors per thread, each thread with
    its own replica of the model (:meth:`HessianProblem.replica`).

    A one-row product is a chain of tiny kernels that gains nothing from
    intra-op threads, but independent recursions on parts of the vectors
    run side by side: on the token encoder of ``benchmarks/fastif.py`` (one
    row, 20 vectors, two threads) a LiSSA solve took 2.7 s instead of 3.3 s.
    The Python part of each step (about a tenth of it on one thread) holds
    the interpreter lock, which the threads then wait for, so the split is
    capped at :data:`MAX_COLUMN_GROUPS` (two: the case measured), and each
    thread repeats the row's forward pass, so a group takes at least
    :data:`MIN_GROUP_VECTORS` vectors. Measured with 300 steps on the token
    encoder and on the tabular MLP of ``benchmarks/fastif.py`` (2,000 rows),
    one thread against two: 8 vectors 0.54 s against 0.62 s and 0.55 s
    against 0.61 s (slower split), 12 vectors 0.72 against 0.69 and 0.69
    against 0.64, 20 vectors 0.89 against 0.76 and 1.01 against 0.79, 40
    vectors (token encoder) 1.42 against 0.93. How many vectors pay for the
    second thread depends on the model: on a 64-64 MLP of two features
    (``make_moons``, 4,000 rows, ``FastIF()``) the split was slower at 24
    vectors (1.63 s against 1.47 s) and faster at 48 (1.87 s against
    2.11 s). Choosing per solve by timing the first steps both ways was
    tried and rejected: on a shared two-core machine the timings were too
    noisy, and on the token encoder it kept one thread where the split is
    faster (0.275 s per query against 0.17-0.21 s). One group per torch
    thread up to that cap, and only as many replicas as the memory budget
    holds; a single group on a GPU (whose kernels are already parallel), for
    problems that cannot be replicated, and while the problem keeps graphs
    (:meth:`HessianProblem.reuse_graph`).
    """
    if not hasattr(problem, "replica"):
        return 1
    if torch.device(problem.device).type != "cpu" or problem._graphs is not None:
        return 1
    groups = min(torch.get_num_threads(), n_vectors // MIN_GROUP_VECTORS)
    groups = max(1, min(groups, MAX_COLUMN_GROUPS))
    while groups > 1 and not problem.budget.can_cache(
        (groups - 1) * problem.module_bytes()
    ):
        groups -= 1
    return groups


def estimate_top_eigenvalue(problem, generator=None, n_iter=POWER_ITERATIONS):
    """Dominant eigenvalue of the mean Hessian by power iteration.

    Uses at most ``POWER_ROWS`` randomly chosen training rows. Returns the
    Rayleigh quotient of the final iterate (signed: a negative value means
    the Hessian's largest-magnitude eigenvalue is negative).
    """
    generator = generator if generator is not None else make_generator(None)
    rows = sample_rows(problem, POWER_ROWS, generator)
    v = torch.randn(problem.p, generator=generator, dtype=torch.float64)
    v = (v / v.norm()).to(device=problem.device, dtype=problem.dtype)
    value = 0.0
    with reusing_graphs(rows):
        for _ in range(n_iter):
            w = rows.hvp(v)
            value = float(v @ w)
            norm = w.norm()
            if not torch.isfinite(norm) or float(norm) == 0.0:
                break
            v = w / norm
    return value


def estimate_row_top_eigenvalue(problem, generator=None, n_iter=10):
    """Largest single-row Hessian eigenvalue (of the data term) over at most
    ``POWER_ROWS`` random rows, by a power iteration per row, vectorised."""
    n = problem.X.shape[0]
    generator = generator if generator is not None else make_generator(None)
    rows = torch.randperm(n, generator=generator)[:POWER_ROWS].to(problem.device)
    theta = problem.theta

    def hv(v, x, t):
        inner = grad(problem._data_term)
        return jvp(lambda w: inner(w, x, t), (theta,), (v,))[1]

    # About 16 p-vectors per row: the iterate, its product and the
    # temporaries of the forward-over-reverse product.
    step = problem.budget.rows_for(problem.p * theta.element_size() * 16)
    best = 0.0
    for s in range(0, len(rows), step):
        idx = rows[s : s + step]
        x, t = problem.X[idx].unsqueeze(1), problem.T[idx].unsqueeze(1)
        V = torch.randn(len(idx), problem.p, generator=generator, dtype=torch.float64)
        V = (V / V.norm(dim=1, keepdim=True)).to(theta)
        values = torch.zeros(len(idx), dtype=theta.dtype, device=theta.device)
        for _ in range(n_iter):
            W = vmap(hv)(V, x, t)
            values = (V * W).sum(1)
            norms = W.norm(dim=1, keepdim=True)
            V = torch.where(norms > 0, W / norms.clamp_min(1e-30), V)
        best = max(best, float(values.max()))
    return best


def chain_batch(batch_size, n, n_chains):
    """``batch_size`` when it is a mini-batch of each of ``n_chains`` chains'
    share of ``n`` rows, else ``None`` (``"all"``, ``None`` or a batch as
    large as a chain's rows: the recursion is then deterministic)."""
    if batch_size is None or batch_size == "all":
        return None
    return batch_size if batch_size < n // min(n_chains, n) else None


class LissaSolver(BaseSolver):
    """Inverse-Hessian products by LiSSA, the stochastic Neumann recursion.

    For a right-hand side ``v`` the recursion

        h_0 = v,   h_t = v + h_{t-1} - (H_t h_{t-1} + damping h_{t-1}) / scale

    with ``H_t`` the mean Hessian estimated on a random mini-batch of
    ``batch_size`` training rows, gives ``h_depth / scale`` as an estimate of
    ``(H + damping I)^{-1} v``: the same quantity, sign and scale as
    :class:`ExactSolver`. Estimates are averaged over ``repetitions``
    recursions in each of ``n_chains`` chains. It converges when ``scale`` is
    above the top eigenvalue of ``H + damping I`` and ``depth`` is well above
    ``scale / (smallest eigenvalue + damping)``; a shorter recursion is a
    truncated Neumann series, which damps the small-curvature directions.

    The mini-batches are drawn once in ``fit`` and reused by every
    :meth:`solve`, so the fitted solver is a fixed linear operator: all
    queries, and the self-influence of the training rows, see the same one.
    Being linear in ``v``, it is also solved column by column: with
    mini-batches of at most 8 rows on a CPU, the right-hand sides of a solve
    of 12 or more are split between two threads (when torch has two), each
    running the recursion for its part on its own copy of the model
    (:func:`column_groups`); the result is the same (a recursion that
    diverges stops in its own group, which warns).

    Parameters
    ----------
    preset : {"fastif", "original"}, default="original"
        Where ``depth``, ``batch_size`` and ``repetitions`` are ``None``, they
        come from :data:`LISSA_PRESETS`: ``"fastif"`` is FastIF's tuned
        configuration (HVP batch of 1 row, depth 1000), ``"original"`` the
        original influence function's (HVP batch 128, depth 1300). FastIF's
        paper also tuned ``scale`` (1e4) and its recursion damping (5e-3,
        i.e. ``damping = 5e-3 * scale`` here) for BERT; their curvature is
        model-specific, so ``scale`` is not part of a preset.
    depth : int >= 1 or None, default=None
        Steps of each recursion.
    batch_size : int >= 1 or None, default=None
        Training rows per Hessian-vector product (clipped to the rows of a
        chain). ``None`` takes the preset's value; ``"all"`` uses every row
        of the chain, which makes the recursion deterministic.
    repetitions : int >= 1 or None, default=None
        Independent recursions averaged per chain.
    scale : float > 0 or "auto", default="auto"
        Must exceed the top eigenvalue of ``H + damping I`` or the recursion
        diverges (a :class:`~skinfluence.exceptions.SolverConvergenceWarning`
        says so). ``"auto"`` is twice a bound estimated by power iteration:
        the mean Hessian's top eigenvalue, plus damping, plus (for
        mini-batches) the largest single-row eigenvalue over a sample of
        rows divided by ``batch_size``.
    n_chains : int >= 1, default=1
        Independent chains, each drawing its mini-batches from its own
        disjoint random part of the training rows; their estimates are
        averaged. Chains run in parallel through joblib (worker processes by
        default, or any backend set with ``joblib.parallel_config``) with
        the ``n_jobs`` of the estimator that uses the solver.

    Attributes
    ----------
    damping_ : float
    scale_ : float
    depth_, batch_size_, repetitions_ : int
        The settings used (preset resolved).
    top_eigenvalue_ : float
        Power-iteration estimate of the dominant eigenvalue of the undamped
        mean Hessian.
    chain_rows_ : list of Tensor
        Training rows each chain samples from.
    batches_ : list of Tensor
        Per chain, the sampled row indices, shape
        ``(repetitions, depth, batch_size)``; ``None`` for full batches.

    References
    ----------
    .. [1] Agarwal, Bullins, Hazan. "Second-Order Stochastic Optimization for
       Machine Learning in Linear Time." JMLR 2017.
    .. [2] Koh, Liang. "Understanding Black-box Predictions via Influence
       Functions." ICML 2017.
    .. [3] Guo, Rajani, Hase, Bansal, Xiong. "FastIF: Scalable Influence
       Functions for Efficient Model Interpretation and Debugging." EMNLP 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import InfluenceFunction, InfluenceScorer, LissaSolver
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X, y = scale(X)[:100], y[:100]
    >>> solver = LissaSolver(depth=50, batch_size=32)
    >>> method = InfluenceFunction(solver=solver, damping=0.1)
    >>> scorer = InfluenceScorer(LogisticRegression(), method=method, random_state=0)
    >>> scorer.fit(X, y).influence(X[:2], y[:2]).shape
    (2, 100)
    """

    _parameter_constraints = {
        "preset": [StrOptions(set(LISSA_PRESETS))],
        "depth": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "batch_size": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"all"}),
            None,
        ],
        "repetitions": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "scale": [
            Interval(numbers.Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
        "n_chains": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        preset="original",
        *,
        depth=None,
        batch_size=None,
        repetitions=None,
        scale="auto",
        n_chains=1,
    ):
        self.preset = preset
        self.depth = depth
        self.batch_size = batch_size
        self.repetitions = repetitions
        self.scale = scale
        self.n_chains = n_chains

    uses_problem = True

    def _setting(self, name):
        value = getattr(self, name)
        return LISSA_PRESETS[self.preset][name] if value is None else value

    def scale_rule(self, problem, damping, generator=None, top_eigenvalue=None):
        """The scale this solver uses on ``problem`` at ``damping``, and the
        top-eigenvalue estimate it rests on: ``(scale, top_eigenvalue)``.

        ``scale`` is the solver's ``scale`` when it is a number. For
        ``scale="auto"`` it is twice a bound on the damped mini-batch
        Hessians' top eigenvalue, ``top + damping + (largest row
        eigenvalue) / batch``: a mini-batch of ``b`` rows can be dominated
        by one high-curvature row, whose eigenvalue enters its mean Hessian
        divided by ``b``; full batches only need the mean Hessian's top
        eigenvalue. ``top_eigenvalue`` is estimated by power iteration
        unless given. A caller that needs the scale before fitting (FastIF
        sets its damping relative to it) passes the estimate back to
        :meth:`fit` as ``top_eigenvalue``.
        """
        generator = generator if generator is not None else make_generator(None)
        if top_eigenvalue is None:
            top_eigenvalue = estimate_top_eigenvalue(problem, generator)
        top_eigenvalue = float(top_eigenvalue)
        if not isinstance(self.scale, str):
            return float(self.scale), top_eigenvalue
        n = problem.X.shape[0]
        batch = self._setting("batch_size")
        batch = chain_batch(None if batch == "all" else int(batch), n, self.n_chains)
        bound = max(top_eigenvalue, 0.0) + damping
        if batch is not None:
            bound += estimate_row_top_eigenvalue(problem, generator) / batch
        return AUTO_SCALE_FACTOR * max(bound, 1e-12), top_eigenvalue

    def fit(self, problem, damping, ctx=None, top_eigenvalue=None):
        """Choose the scale and draw the mini-batches.

        Parameters
        ----------
        problem : HessianProblem
        damping : float >= 0 or "auto"
            ``"auto"`` follows :func:`resolve_damping` (the rule shared by
            every solver).
        ctx : InfluenceContext, optional
            Supplies the random generator and ``n_jobs``.
        top_eigenvalue : float, optional
            A known estimate of the Hessian's dominant eigenvalue (skips the
            power iteration; see :meth:`scale_rule`).
        """
        return super().fit(problem, damping, ctx, top_eigenvalue=top_eigenvalue)

    def _fit(self, problem, damping, ctx, top_eigenvalue=None):
        generator = getattr(ctx, "generator", None) or make_generator(None)
        # The chains and mini-batches get their own stream, drawn before the
        # spectrum estimates: those consume the generator chunk by chunk, so
        # the batches would otherwise depend on the memory budget.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        batch_generator = torch.Generator().manual_seed(seed)
        self._n_jobs = getattr(ctx, "n_jobs", None)
        self.damping_ = resolve_damping(problem, damping, generator=generator)
        self.scale_, self.top_eigenvalue_ = self.scale_rule(
            problem, self.damping_, generator, top_eigenvalue
        )
        top = self.top_eigenvalue_ + self.damping_
        if top <= 0:
            warnings.warn(
                f"LiSSA diverges: the damped Hessian has a negative dominant "
                f"eigenvalue (about {top:.3g} with damping={self.damping_:g}). "
                f"Increase damping above {-self.top_eigenvalue_:.3g}.",
                SolverConvergenceWarning,
                stacklevel=4,
            )
        self.depth_ = int(self._setting("depth"))
        self.repetitions_ = int(self._setting("repetitions"))
        n = problem.X.shape[0]
        n_chains = min(self.n_chains, n)
        batch = self._setting("batch_size")
        self.batch_size_ = None if batch == "all" else int(batch)
        if not isinstance(self.scale, str):
            if self.scale_ <= top:
                warnings.warn(
                    f"LiSSA diverges: scale={self.scale_:g} is below the top "
                    f"eigenvalue of the damped Hessian (about {top:.3g}). Set scale "
                    f"above it, e.g. scale={AUTO_SCALE_FACTOR * top:.3g}, or "
                    "scale='auto'.",
                    SolverConvergenceWarning,
                    stacklevel=4,
                )
        perm = torch.randperm(n, generator=batch_generator)
        self.chain_rows_ = [part.sort().values for part in perm.chunk(n_chains)]
        self.batches_ = []
        for rows in self.chain_rows_:
            if self.batch_size_ is None or self.batch_size_ >= len(rows):
                self.batches_.append(None)
                continue
            draws = torch.randint(
                0,
                len(rows),
                (self.repetitions_, self.depth_, self.batch_size_),
                generator=batch_generator,
            )
            self.batches_.append(rows[draws])

    def _solve(self, V):
        # (H + damping I)^{-1} V^T row-wise, estimated.
        problem = self._problem
        V = V.to(device=problem.device, dtype=problem.dtype)
        chains = range(len(self.batches_))
        if len(self.batches_) == 1:
            outs = [self._chain(problem, V, 0)]
        else:
            # Processes, not threads: torch's forward-mode AD (used by the
            # Hessian-vector products) keeps global state that threads share.
            outs = Parallel(n_jobs=self._n_jobs)(
                delayed(self._chain)(problem, V, c) for c in chains
            )
        return torch.stack(outs).mean(0)

    def _chain(self, problem, V, c):
        batches = self.batches_[c]
        if batches is None:
            # Full batches: deterministic, a single recursion.
            rows = None if len(self.batches_) == 1 else self.chain_rows_[c]
            rows = None if rows is None else rows.to(problem.device)
            return self._recursion(problem, V, lambda t: rows)
        # Row indices go to the device once, not at every step.
        batches = batches.to(problem.device)
        if batches.shape[-1] > SMALL_BATCH:
            return self._repetitions(problem, V, batches)
        groups = column_groups(problem, V.shape[0])
        replicas = [problem]
        if groups > 1:
            try:
                replicas += [problem.replica() for _ in range(groups - 1)]
            except (
                TypeError,
                RuntimeError,
                AttributeError,
                NotImplementedError,
                copy.Error,
                pickle.PicklingError,
            ):
                # A model that cannot be copied runs on one thread.
                replicas = [problem]
        with intra_op_threads(1, problem.device):
            if len(replicas) == 1:
                return self._repetitions(problem, V, batches)
            # The recursion is linear in V and its mini-batches are fixed, so
            # each column group runs its own recursions, one thread (and one
            # replica of the model) each.
            groups = len(replicas)
            parts = Parallel(n_jobs=groups, backend="threading")(
                delayed(self._repetitions)(rep, part, batches)
                for rep, part in zip(replicas, V.tensor_split(groups))
            )
        problem.n_hvp += sum(rep.n_hvp for rep in replicas[1:])
        return torch.cat(parts)

    def _repetitions(self, problem, V, batches):
        total = torch.zeros_like(V)
        for r in range(batches.shape[0]):
            total += self._recursion(
                problem, V, lambda t, r=r: batches[r, t], mini_batches=True
            )
        return total / batches.shape[0]

    def _recursion(self, problem, V, batch_of, mini_batches=False):
        s, lam = self.scale_, self.damping_
        v_norm = V.norm(dim=1)
        h = V.clone()
        check = max(1, self.depth_ // 20)
        # Mini-batch steps take their products on h through one reused
        # operator (HessianProblem.products_on), which saves the torch calls
        # that dominate a one-row step; a problem without one uses hvp.
        products = getattr(problem, "products_on", None) if mini_batches else None
        product = (
            (lambda idx: problem.hvp(h, idx=idx)) if products is None else products(h)
        )
        for t in range(self.depth_):
            # h <- V + (1 - lam / s) h - H h / s, with H h taken first (h is
            # this recursion's own tensor, updated in place).
            hv = product(batch_of(t))
            h.mul_(1 - lam / s).add_(V).sub_(hv, alpha=1 / s)
            if (t + 1) % check == 0 or t + 1 == self.depth_:
                norm = h.norm(dim=1)
                bound = DIVERGENCE_FACTOR * (t + 2) * v_norm
                if not bool(torch.isfinite(norm).all()) or bool((norm > bound).any()):
                    warnings.warn(
                        f"LiSSA diverged after {t + 1} steps: scale={s:g} is below "
                        "the top eigenvalue of the mini-batch Hessians (plus "
                        f"damping={lam:g}). Increase scale (e.g. scale="
                        f"{4 * s:.3g}), use a larger batch_size, or add damping.",
                        SolverConvergenceWarning,
                        # The caller of solve(), in the one-thread case.
                        stacklevel=6 if mini_batches else 5,
                    )
                    break
        return h / s

"""Top-k Hessian eigenpairs by Lanczos (Arnoldi on a symmetric operator)."""

import numbers
import warnings
from contextlib import nullcontext

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ...exceptions import SingularHessianError
from ...utils._torch import make_generator, rademacher
from ._base import BaseSolver, RowSample, product_dtype, resolve_damping, sample_rows
from ._lanczos import _ritz_pairs

__all__ = ["ArnoldiSolver"]

# Default Krylov vectors per pass over the data (see ``block_size``).
BLOCK = 1
# Largest relative error of a reduced-precision Rayleigh quotient (against
# full precision) at which the reduced-precision fit is kept, and the rows
# the check uses (see ``precision``).
PRECISION_TOLERANCE = 0.1
PRECISION_CHECK_ROWS = 512


def _checked(pairs, rank, damping):
    """Ritz pairs where reduced precision is least accurate or matters
    most: the kept one of least magnitude, the kept smallest (the same on a
    positive-definite Hessian) and, with ``damping="auto"``, which looks at
    it, the smallest of all."""
    evals = pairs.values
    order = pairs.top(rank)
    picks = {int(order[-1]), int(order[torch.argmin(evals[order])])}
    if isinstance(damping, str):
        picks.add(int(torch.argmin(evals)))
    return sorted(picks)


def _agree(values, exact, damping):
    floor = 0.0 if isinstance(damping, str) else float(damping)
    scale = exact.abs().clamp_min(floor)
    return bool(((values - exact).abs() <= PRECISION_TOLERANCE * scale).all())


def _quotients(problem, V):
    return (problem.hvp(V) * V).sum(1).to(torch.float64)


def _precision_holds(problem, full, pairs, rank, damping, dtype):
    """Whether a Krylov space built from products in ``dtype`` holds, at the
    Ritz values of :func:`_checked`: each within ``PRECISION_TOLERANCE`` of
    its Rayleigh quotient in ``dtype`` on the same rows (the recurrence lost
    no accuracy), and those quotients within it of full-precision ones on
    the Hessian of at most ``PRECISION_CHECK_ROWS`` random rows (a fixed
    draw; the products themselves hold), relative to the quotient or to a
    numeric damping if larger."""
    picks = _checked(pairs, rank, damping)
    V = pairs.vectors(picks).T.to(full.dtype)
    rows = sample_rows(full, PRECISION_CHECK_ROWS, make_generator(0))
    with full.products_in(dtype):
        if not _agree(pairs.values[picks], _quotients(problem, V), damping):
            return False
        low = _quotients(rows, V)
    return _agree(low, _quotients(rows, V), damping)


class ArnoldiSolver(BaseSolver):
    """Invert the damped Hessian in its top-``rank`` eigenspace.

    A Krylov basis of ``rank + oversampling`` Hessian-vector products (Lanczos
    with full re-orthogonalisation, in the problem's dtype) gives Ritz pairs; the
    ``rank`` of largest magnitude are kept, as in Schioppa et al. The inverse
    is then

        ``U diag(1 / (lambda + damping)) U^T + (I - U U^T) / (c + damping)``

    with ``c`` the eigenvalue assumed on the rest of the space.
    ``tail="gradient"`` takes the Rayleigh quotient ``sum_k r_k^T H r_k /
    sum_k |r_k|^2`` of probes ``r_k = (I - U U^T) sum_i s_ik g_i``: random
    signed sums of the training rows' loss gradients ``g_i``, projected off
    ``U``. Their second moment is ``sum_i g_i g_i^T``, so ``c`` is the
    curvature of the remaining space *as the gradients see it*, which is
    what the influence ``g_q^T (H + damping I)^{-1} g_j`` is made of. Loss
    gradients lie mostly in directions of high curvature (for
    cross-entropy the Gauss-Newton matrix is their expected outer product),
    so this ``c`` is far above the plain mean eigenvalue of the rest, and
    the scores come closer to a converged solve with the same eigenpairs
    (``benchmarks/speed_if.py`` measures it). ``tail="layer"`` (the
    default) takes the same quotient on every Linear layer separately (and
    on all other parameters together), so that the rest of the space is

        ``(I - U U^T) S (I - U U^T)``,  ``S = 1 / (c_l + damping)`` on layer ``l``

    from the same probes and products: layers differ in curvature (the last
    layer's is typically the largest), and one ``c`` for all of them blurs
    that. It was made the default on the mean Pearson correlation of the
    scores (``rank=50``) with an exact solve over 30 queries (for the
    first MLP, with a float64 CG solve over 20 queries), where it was never
    more than 0.0003 below ``"gradient"``:

    ===========================================  =======  ==========  =======
    problem                                      damping  "gradient"  "layer"
    ===========================================  =======  ==========  =======
    MLP 64-256-256-10, 2,000 rows (speed_if.py)  0.5      0.9844      0.9916
    the same, 8,000 rows                         0.5      0.9843      0.9929
    digits, ``MLPClassifier((64,))``             0.01     0.9868      0.9869
    digits, ``MLPClassifier((32, 32))``          0.01     0.9687      0.9686
    4-class synthetic, ``MLPClassifier((50,))``  0.1      0.9246      0.9259
    ===========================================  =======  ==========  =======

    (at damping 0.1 both give 0.9997-0.9999 on the digits MLPs, and a
    single-layer model such as logistic regression has one segment, where
    the two are the same). ``tail="mean"`` estimates the plain mean eigenvalue there
    (Rademacher probes projected off ``U``), a number sets ``c``, and
    ``tail="drop"`` drops the rest of the space (the original Arnoldi
    influence, which ignores gradient components outside the basis).
    Because the operator is "low rank plus a block scalar",
    :class:`~skinfluence.InfluenceFunction` caches every training row's
    coordinates (``rank`` of them, ``2 * rank`` with ``tail="layer"``) once:
    each later query is a small matrix product plus a gradient inner product
    weighted per layer, and self-influence costs O(n_train * rank).

    Parameters
    ----------
    rank : int >= 1, default=50
        Eigenpairs kept (capped at the number of parameters).
    oversampling : int >= 0, default=10
        Extra Krylov vectors that sharpen the kept Ritz pairs.
    tail : {"layer", "gradient", "mean", "drop"} or float >= 0, \
            default="layer"
        Eigenvalue used outside the kept eigenspace (see above).
    n_probes : int >= 1, default=4
        Probes of the ``"gradient"`` and ``"mean"`` estimates (one
        Hessian-vector product each).
    hessian_rows : int >= 1 or None, default=4096
        Estimate the eigenpairs (and the tail) from the Hessian of at most
        this many training rows, drawn at random without replacement
        (rescaled to the mean objective), as LiSSA samples its mini-batches;
        ``None`` uses every row, and so does any training set of at most
        ``hessian_rows`` rows. Each Hessian-vector product then costs
        ``hessian_rows / n_train`` of a full one; the training rows'
        coordinates and the influence scores still use every row. The
        default keeps the cost of the fit from growing with ``n_train``
        past 4,096 rows at a small loss of agreement with a converged
        solve, measured as the mean Pearson correlation over 20 queries
        (``rank=50``):

        =====================================  =======  ======  ======  ======
        problem                                damping  all     4,096   2,048
        =====================================  =======  ======  ======  ======
        speed_if.py MLP, 8,000 rows            0.5      0.9929  0.9927
        speed_if.py MLP, 32,000 rows           0.5              0.9925
        16,000-row ``MLPClassifier((64,))``    0.01     0.6894  0.6834  0.6750
        the same                               0.1      0.9337  0.9327  0.9260
        =====================================  =======  ======  ======  ======

        (the reference is a float64 CG solve on the speed_if.py MLP, an
        exact solve on the 4-class ``make_classification`` problem of the
        third row, where rank 50 rather than the sample limits the
        agreement). 2,048 rows cost up to twice as much agreement.
    block_size : int >= 1, default=1
        Krylov vectors added per pass over the data (block Lanczos, with a
        Rayleigh-Ritz step on the whole basis): their Hessian-vector
        products share one pass over the data. ``1`` is the plain Lanczos
        recurrence, the default: on the MLP of ``benchmarks/speed_if.py``
        (2,000 rows, one CPU thread) a batched pass of 8 products cost 34 ms
        per product against 40 ms for single ones when every product redid
        its forward pass, and a block Krylov space of the same size agreed
        slightly less with a converged solve (Pearson 0.9899 against
        0.9916). Now the products of a fit share one forward and first
        backward pass (``HessianProblem.reuse_graph``), which brought a
        single product there to about 24 ms, so blocks pay off only where one
        product leaves the hardware idle (small batches of rows, many cores
        or a GPU).

    start : {"random", "gradient"}, default="random"
        The Krylov space's first vector: a random direction, or a random
        signed sum of the (sampled) training rows' loss gradients (as for the
        tail's probes), which starts the space where the gradients lie. Mean
        Pearson correlation with an exact solve over 30 queries (a float64
        CG solve over 20 on the speed_if.py MLP), ``"random"`` /
        ``"gradient"``:

        =====================================  =======  ===============  ===============
        problem                                damping  rank=50          rank=40,
                                                        (default)        oversampling=0
        =====================================  =======  ===============  ===============
        speed_if.py MLP, 2,000 rows            0.5      0.9916 / 0.9922  0.9893 / 0.9907
        the same, 8,000 rows                   0.5      0.9927 / 0.9934  0.9917 / 0.9917
        digits, ``MLPClassifier((64,))``       0.01     0.9869 / 0.9858  0.9715 / 0.9769
        digits, ``MLPClassifier((32, 32))``    0.01     0.9686 / 0.9657  0.9430 / 0.9478
        4-class synthetic, ``MLPClassifier``   0.1      0.9259 / 0.9288  0.9063 / 0.9110
        =====================================  =======  ===============  ===============

        (at damping 0.1 the digits MLPs agree at 0.9991-0.9999 either way).
        The gradient start helps the smaller space on every problem and is
        mixed at the default size, so ``"random"`` stays the default. In
        these runs agreement followed the size of the Krylov space,
        ``rank + oversampling``, whichever of the two made it up: on the
        2,000-row MLP ``(50, 10)`` and ``(60, 0)`` both gave 0.9916, and
        ``(40, 10)`` and ``(50, 0)`` both 0.9908.

    precision : {"auto", "full", "bfloat16"}, default="auto"
        Arithmetic of the fit's Hessian-vector products (the Krylov space's
        and the tail's), which are most of its cost, and of its gradient
        probes (``start="gradient"``, the tail's). ``"bfloat16"`` runs
        their matrix multiplications in bfloat16 (``torch.autocast``; the
        loss and its derivatives stay in float32, and so do the results),
        about twice as fast where the hardware has bfloat16 arithmetic, at a
        relative error of about 1e-2 per product. ``"full"`` keeps the
        problem's dtype. ``"auto"`` is ``"bfloat16"`` on a CPU with AVX-512
        BF16 or AMX and ``"full"`` elsewhere (GPUs included, where it is
        unmeasured), and also ``"full"`` when the Krylov space spans every
        parameter (an exact eigendecomposition). The training rows'
        coordinates and the scores always run at full precision, and a
        float64 problem is never autocast. A reduced-precision fit is
        checked before it is kept, at the kept Ritz vectors of least
        magnitude and of least value (one vector on a positive-definite
        Hessian) and, with ``damping="auto"``, the smallest of all (which
        sets the damping of an indefinite Hessian): each Ritz value must lie
        within 10% of its Rayleigh quotient in bfloat16 (the recurrence kept
        its accuracy), and that quotient within 10% of the full-precision
        one on the Hessian of 512 random rows (the products keep theirs),
        relative to the quotient or to a numeric damping if larger.
        Otherwise the fit is redone at full precision (``product_dtype_``
        says which was kept): bfloat16 keeps about three significant
        digits, so, for example, features far from zero (a mean of 100 with
        unit spread) lose their spread and fail the check. Mean Pearson
        correlation with an exact solve, ``"full"`` / ``"bfloat16"``
        (speed_if.py: float64 CG over 20 queries; the others:
        ``solver="exact"`` over 30 held-out queries, ``MLPClassifier``
        fitted with ``random_state=0`` on 1,500 standardised digits rows or
        on 2,500 rows of a 4-class ``make_classification`` problem with 20
        features):

        =====================================  =======  ===============  ===============
        problem                                damping  rank=50          rank=40,
                                                        (default)        oversampling=0,
                                                                         start="gradient"
        =====================================  =======  ===============  ===============
        speed_if.py MLP, 2,000 rows            0.5      0.9916 / 0.9916  0.9907 / 0.9907
        the same, 8,000 rows                   0.5      0.9927 / 0.9927  0.9917 / 0.9917
        digits, ``MLPClassifier((64,))``       0.01     0.9930 / 0.9924  0.9834 / 0.9824
        digits, ``MLPClassifier((32, 32))``    0.01     0.9844 / 0.9837  0.9697 / 0.9705
        4-class, ``MLPClassifier((50,))``      0.1      0.9485 / 0.9482  0.9296 / 0.9302
        =====================================  =======  ===============  ===============

        The changes (-0.0010 to +0.0008) are below the gap between the two
        configurations and far below the gap to a converged solve. On the
        speed_if.py MLP (one thread of a CPU with AVX-512 BF16) a product
        fell from 33 ms to 17 ms at 2,000 rows, and the default fit and
        scores from 2.9 s to 1.8 s (8.3 s to 4.9 s at 8,000 rows; one run
        each, on a machine whose speed varied by about 30% over the day).
        With the tail's products at full precision the changes at the
        default were smaller (-0.0002 to -0.0003) for about 0.2 s more at
        2,000 rows.

    Attributes
    ----------
    damping_ : float
    eigenvalues_ : ndarray of shape (rank,)
        Kept Ritz values, largest magnitude first.
    tail_eigenvalue_ : float
        ``c`` above, over all parameters (``nan`` with ``tail="drop"``).
    tail_eigenvalues_ : ndarray of shape (n_segments,)
        The value used on every Linear layer and (last, if any) on the other
        parameters together: ``c_l`` with ``tail="layer"``, else ``c``
        repeated.
    n_hvp_ : int
        Hessian-vector products used.
    product_dtype_ : torch.dtype
        The dtype of the fit's products that was kept (see ``precision``).
    hessian_indices_ : ndarray of int or None
        Training rows of the ``hessian_rows`` sample (``None``: all rows).

    References
    ----------
    .. [1] Schioppa, Zablotskaia, Vilar, Sokolov. "Scaling Up Influence
       Functions." AAAI 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import ArnoldiSolver, InfluenceFunction, InfluenceScorer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> method = InfluenceFunction(solver=ArnoldiSolver(rank=10), damping=0.01)
    >>> scorer = InfluenceScorer(LogisticRegression(), method=method).fit(X, y)
    >>> scorer.method_.solver_.eigenvalues_.shape
    (10,)
    """

    _parameter_constraints = {
        "rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "oversampling": [Interval(numbers.Integral, 0, None, closed="left")],
        "block_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "start": [StrOptions({"random", "gradient"})],
        "tail": [
            StrOptions({"layer", "gradient", "mean", "drop"}),
            Interval(numbers.Real, 0, None, closed="left"),
        ],
        "n_probes": [Interval(numbers.Integral, 1, None, closed="left")],
        "hessian_rows": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "precision": [StrOptions({"auto", "full", "bfloat16"})],
    }

    def __init__(
        self,
        rank=50,
        oversampling=10,
        tail="layer",
        n_probes=4,
        hessian_rows=4096,
        block_size=BLOCK,
        start="random",
        precision="auto",
    ):
        self.start = start
        self.precision = precision
        self.rank = rank
        self.oversampling = oversampling
        self.block_size = block_size
        self.tail = tail
        self.n_probes = n_probes
        self.hessian_rows = hessian_rows

    low_rank = True

    def _fit(self, problem, damping, ctx):
        generator = getattr(ctx, "generator", None)
        start = problem.n_hvp
        full = problem
        p = problem.p
        rank = min(self.rank, p)
        problem = sample_rows(full, self.hessian_rows, generator)
        self.hessian_indices_ = None
        if isinstance(problem, RowSample):
            self.hessian_indices_ = problem.idx.cpu().numpy()
        m = min(p, rank + self.oversampling)
        self.product_dtype_ = product_dtype(full, self.precision)
        if self.precision == "auto" and m >= p:
            # A Krylov space of every direction is an exact eigendecomposition.
            self.product_dtype_ = full.dtype
        reduced = self.product_dtype_ != full.dtype
        seed = probes = None
        if self.start == "gradient":
            # The tail's gradient probes come from the same pass over the
            # data; random probes need no more precision than the products.
            extra = self.n_probes if self.tail in ("gradient", "layer") else 0
            context = (
                full.products_in(self.product_dtype_) if reduced else nullcontext()
            )
            with context:
                drawn = problem.signed_gradients(self.block_size + extra, generator)
            seed = drawn[: self.block_size]
            probes = drawn[self.block_size :] if extra else None
        state = generator.get_state() if reduced and generator is not None else None
        fits = None
        with problem.reuse_graph():
            if reduced:
                fits = self._reduced_fit(
                    problem, full, damping, generator, m, rank, seed, probes
                )
                if fits is None:
                    # Reduced precision lost too much here (e.g. features far
                    # from zero, whose spread bfloat16 rounds away): start over.
                    self.product_dtype_ = full.dtype
                    if state is not None:
                        generator.set_state(state)
            if fits is None:
                pairs = _ritz_pairs(problem, m, generator, self.block_size, seed)
                fits = self._fit_tail(
                    problem, full, damping, generator, pairs, rank, probes
                )
        evals, U, c, tails, shifts = fits
        self.eigenvalues_ = evals.cpu().numpy()
        self.tail_eigenvalue_ = c
        self.tail_eigenvalues_ = tails.numpy()
        self._U = U.to(problem.dtype)
        self._inverse = 1.0 / (evals + self.damping_)
        self._shifts = shifts
        self._segments = full.layout.segments
        uniform = bool((shifts == shifts[0]).all())
        self._shift = float(shifts[0]) if uniform else None
        self._weights = None
        if uniform:
            self._weights = (self._inverse - self._shift).to(problem.dtype)
        self.n_hvp_ = problem.n_hvp - start

    def _reduced_fit(self, problem, full, damping, generator, m, rank, seed, probes):
        """``_fit_tail``'s result from products in ``product_dtype_``, or
        ``None`` where they fail :func:`_precision_holds` (or leave the
        system indefinite); its warnings are raised only if it is kept."""
        dtype = self.product_dtype_
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with full.products_in(dtype):
                pairs = _ritz_pairs(problem, m, generator, self.block_size, seed)
                try:
                    fits = self._fit_tail(
                        problem, full, damping, generator, pairs, rank, probes
                    )
                except SingularHessianError:
                    return None
            if not _precision_holds(problem, full, pairs, rank, damping, dtype):
                return None
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return fits

    def _fit_tail(self, problem, full, damping, generator, pairs, rank, probes=None):
        """The damping, the top ``rank`` Ritz pairs (of :class:`RitzPairs`
        ``pairs``) and the tail eigenvalues (with the tail's shifts),
        checked for a positive-definite system; ``probes``: the gradient
        probes of the tail, if already drawn."""
        p = problem.p
        # The Krylov space's extreme Ritz values decide whether "auto" damping
        # must be lifted above an indefinite Hessian's smallest eigenvalue;
        # its trace estimate comes from the same ``hessian_rows`` sample, so
        # that no product runs over every training row.
        self.damping_ = resolve_damping(
            problem,
            damping,
            generator=generator,
            spectrum=(float(pairs.values.min()), float(pairs.values.max())),
        )
        order = pairs.top(rank)
        evals, U = pairs.values[order], pairs.vectors(order)
        k = U.shape[1]
        segments = full.layout.segments
        if self.tail == "drop" or k == p:
            c = float("nan")
            tails = torch.full((len(segments),), c, dtype=torch.float64)
            shifts = torch.zeros(len(segments), dtype=torch.float64)
        else:
            c, tails = self._tail_eigenvalues(problem, U, generator, segments, probes)
            if float((tails + self.damping_).min()) <= 0:
                lowest = float(tails.min())
                raise SingularHessianError(
                    f"The damped Hessian is singular or indefinite outside its top "
                    f"{k} eigenvectors (eigenvalue there {lowest:.3g}, damping "
                    f"{self.damping_:g}). Add damping (method__damping)."
                )
            shifts = 1.0 / (tails + self.damping_)
        lo = float((evals + self.damping_).min())
        if lo <= 1e-12 * max(float(evals.abs().max()), 1.0):
            raise SingularHessianError(
                f"The damped Hessian (damping={self.damping_:g}) has eigenvalue "
                f"{lo:.3g} <= 0 in its top {k} eigenvectors: it is singular or "
                f"indefinite. Add damping: set damping above "
                f"{max(-float(evals.min()), 0):.3g} (method__damping)."
            )
        return evals, U, c, tails, shifts

    def _tail_eigenvalues(self, problem, U, generator, segments, probes=None):
        """``c`` (the eigenvalue assumed outside the basis ``U``, see above)
        and its value on every segment of the layout."""
        n_seg = len(segments)
        if not isinstance(self.tail, str):
            c = float(self.tail)
            return c, torch.full((n_seg,), c, dtype=torch.float64)
        if self.tail == "mean":
            z = rademacher(
                (self.n_probes, problem.p), generator, torch.float64, U.device
            )
        elif probes is not None:
            z = probes.to(torch.float64)
        else:
            z = problem.signed_gradients(self.n_probes, generator).to(torch.float64)
        U = U.to(torch.float64)
        z = z - (z @ U) @ U.T
        Hz = problem.hvp(z.to(problem.dtype)).to(torch.float64)
        if self.tail == "mean":
            c = float((Hz * z).sum(1).mean()) / (problem.p - U.shape[1])
            return c, torch.full((n_seg,), c, dtype=torch.float64)
        c = float((Hz * z).sum() / (z * z).sum().clamp_min(1e-300))
        tails = torch.full((n_seg,), c, dtype=torch.float64)
        if self.tail == "layer":
            for i, sl in enumerate(segments):
                norm = float((z[:, sl] ** 2).sum())
                if norm > 0:
                    tails[i] = float((Hz[:, sl] * z[:, sl]).sum()) / norm
        return c, tails

    def low_rank_factors(self):
        """``(U, w, s)`` with ``(H + damping I)^{-1} = U diag(w) U^T + s I``
        (a tail that is one number on every segment; see :meth:`core` for
        the general form)."""
        if self._weights is None:
            raise ValueError(
                "With tail='layer' the inverse is not 'low rank plus a multiple "
                "of the identity'; use coordinates(), core() and shift_dot()."
            )
        return self._U, self._weights, self._shift

    # -- the general low-rank form ------------------------------------------
    # (H + damping I)^{-1} = C(g)^T K C(g') + g^T S g' for a per-row
    # coordinate map C, a small symmetric core K and the block-scalar S that
    # is the tail's 1 / (c_l + damping) on segment l.
    def coordinates(self, G):
        """Per-row coordinates ``(n, r)`` of the gradients ``G`` (RowGrads)."""
        U = self._U.to(G._any().dtype)
        if self._weights is not None:
            return G.dot_flat(U.T)
        parts = G.dot_flat(U.T, per_segment=True)
        e = sum(parts[1:], parts[0].clone())
        f = sum(p * float(s) for p, s in zip(parts, self._shifts))
        return torch.cat([e, f], dim=1)

    def core(self):
        """The symmetric core ``K`` (r, r), float64."""
        if self._weights is not None:
            return torch.diag(self._weights.to(torch.float64))
        U = self._U.to(torch.float64)
        k = U.shape[1]
        UsU = sum(
            float(s) * (U[sl].T @ U[sl]) for sl, s in zip(self._segments, self._shifts)
        )
        eye = torch.eye(k, dtype=torch.float64, device=U.device)
        top = torch.cat([torch.diag(self._inverse.to(U)) + UsU, -eye], dim=1)
        bottom = torch.cat([-eye, torch.zeros_like(eye)], dim=1)
        return torch.cat([top, bottom], dim=0)

    @property
    def has_shift(self):
        """Whether ``S`` is nonzero (``tail="drop"`` or a full-rank basis
        leave it zero)."""
        return bool((self._shifts != 0).any())

    def shift_dot(self, Q, G):
        """``g_q^T S g_j`` for the rows of two RowGrads, or ``None`` when
        ``S`` is zero."""
        if not self.has_shift:
            return None
        if self._weights is not None:
            return Q.dot(G) * self._shift
        return Q.dot(G, weights=self._shifts.tolist())

    def shift_sq_norms(self, G):
        """``g_j^T S g_j`` for the rows of a RowGrads, or ``None``."""
        if not self.has_shift:
            return None
        if self._weights is not None:
            return self._shift * G.sq_norms()
        parts = G.segment_sq_norms()
        return (parts * self._shifts.to(parts)[:, None]).sum(0)

    def _solve(self, V):
        U = self._U
        W = V.to(device=U.device, dtype=U.dtype)
        if self._weights is not None:
            return ((W @ U) * self._weights) @ U.T + self._shift * W
        low = ((W @ U) * self._inverse.to(W)) @ U.T
        R = W - (W @ U) @ U.T
        R = R * self._segments_vector(R)
        return low + R - (R @ U) @ U.T

    def _segments_vector(self, like):
        vec = torch.empty(like.shape[-1], dtype=like.dtype, device=like.device)
        for sl, s in zip(self._segments, self._shifts):
            vec[sl] = float(s)
        return vec

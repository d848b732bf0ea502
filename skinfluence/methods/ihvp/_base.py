"""The solver protocol: damping, ``solve``, capabilities, binding, pickling."""

import contextlib
import math
import numbers
import warnings

import torch
from sklearn.base import BaseEstimator

from ...exceptions import SkinfluenceWarning
from ...utils._torch import CPUStateMixin, rademacher
from ._lanczos import _ritz_pairs

__all__ = [
    "AUTO_DAMPING_FRACTION",
    "INDEFINITE_FACTOR",
    "BaseSolver",
    "RowSample",
    "check_damping",
    "extreme_eigenvalues",
    "indefinite_damping",
    "product_dtype",
    "resolve_damping",
    "sample_rows",
]

# damping="auto": this fraction of the Hessian's mean eigenvalue (trace / p).
AUTO_DAMPING_FRACTION = 1e-5
# damping="auto" on an indefinite Hessian: this multiple of the magnitude of
# its smallest eigenvalue (see resolve_damping for how it was chosen).
INDEFINITE_FACTOR = 3.0
# Lanczos steps of the smallest-eigenvalue estimate when H is not formed.
SPECTRUM_STEPS = 40


def check_damping(damping):
    """Raise unless ``damping`` is ``"auto"`` or a finite number >= 0."""
    if isinstance(damping, str) and damping == "auto":
        return
    ok = isinstance(damping, numbers.Real) and not isinstance(damping, bool)
    if not ok or not math.isfinite(damping) or damping < 0:
        raise ValueError(
            f"damping must be 'auto' or a finite number >= 0; got {damping!r}. "
            "Pass e.g. damping=0.01 (InfluenceFunction(damping=...), or "
            "method__damping in a grid)."
        )


def extreme_eigenvalues(problem, generator=None, n_steps=SPECTRUM_STEPS):
    """``(smallest, largest)`` Ritz values of the mean Hessian from a Lanczos
    run of ``n_steps`` Hessian-vector products. Ritz values lie inside the
    spectrum, so the smallest overestimates the true smallest eigenvalue (on
    the digits MLP of ``benchmarks/lds.py``, 40 steps found 80-90% of the
    most negative eigenvalue's magnitude); the margin of
    :func:`resolve_damping` covers the rest.
    """
    with reusing_graphs(problem):
        evals = _ritz_pairs(problem, min(problem.p, n_steps), generator).values
    return float(evals.min()), float(evals.max())


def native_bfloat16(device):
    """Whether ``device`` runs bfloat16 matrix products natively: a CPU with
    AVX-512 BF16 or AMX (as PyTorch reports them). GPUs answer ``False``:
    bfloat16 products there are unmeasured here."""
    if torch.device(device).type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def product_dtype(problem, precision):
    """The dtype that Hessian-vector products are autocast to
    (:meth:`HessianProblem.products_in`) for a solver's ``precision``:
    ``"full"`` the problem's own, ``"bfloat16"`` bfloat16, and ``"auto"``
    bfloat16 on hardware that runs it natively (:func:`native_bfloat16`),
    else the problem's own. Only float32 problems that can autocast their
    products are: a float64 problem (reference numbers) keeps float64 either
    way."""
    own = problem.dtype
    if own != torch.float32 or precision == "full":
        return own
    if not hasattr(problem, "products_in"):
        return own
    if precision == "bfloat16" or native_bfloat16(problem.device):
        return torch.bfloat16
    return own


def reusing_graphs(problem):
    """``problem.reuse_graph()`` (repeated products share one forward and
    first backward pass per chunk) where the problem has it, else a null
    context."""
    reuse = getattr(problem, "reuse_graph", None)
    return contextlib.nullcontext() if reuse is None else reuse()


def indefinite_damping(smallest, convex=0.0):
    """The damping of ``damping="auto"`` for a Hessian whose smallest
    eigenvalue ``smallest`` is negative: ``3 * |smallest|`` (at least the
    convex default ``convex``), which leaves the damped spectrum at or above
    ``2 * |smallest|``. See :func:`resolve_damping`."""
    return max(INDEFINITE_FACTOR * -float(smallest), float(convex))


def resolve_damping(
    problem, damping, H=None, generator=None, n_probes=8, spectrum=None
):
    """The numeric damping for ``damping`` ("auto" or a number >= 0).

    ``"auto"`` is the *convex default* ``1e-5 * trace(H) / p``: small beside
    the curvature the data and penalty provide, yet enough to make a Hessian
    with exact null directions (e.g. softmax intercepts) invertible. The trace
    is exact when ``H`` is given, otherwise a Hutchinson estimate from
    ``n_probes`` Rademacher vectors.

    A non-convex model (a neural net away from a strict minimum, ReLU kinks)
    has an indefinite Hessian, for which that default leaves ``H + damping I``
    indefinite. So ``"auto"`` also looks at the ends of the spectrum: the
    exact eigenvalues when ``H`` is given, ``spectrum=(smallest, largest)``
    when the caller has them (Arnoldi's Ritz values), otherwise a Lanczos
    estimate (:func:`extreme_eigenvalues`). When the smallest eigenvalue is
    below ``-max(convex default, 100 * eps * largest)`` (negative beyond
    rounding), the damping is lifted to ``3 * |smallest|``
    (:func:`indefinite_damping`), which makes the system positive definite
    with every eigenvalue at least ``2 * |smallest|`` (about ``2.4 *
    |smallest|`` at worst with a Lanczos estimate), and a
    :class:`~skinfluence.exceptions.SkinfluenceWarning` says so. The rule
    depends only on the spectrum, so no value has to be known in advance.

    The factor was chosen by the linear datamodeling score (LDS, 100
    half-size retrains with their own seeds, 50 test rows; exact Hessians,
    mean over 5 independently trained members) on three MLPs: the digits
    MLP of ``benchmarks/lds.py`` (skorch, 64-32-10), a skorch MLP 30-32-2
    on breast_cancer and a scikit-learn ``MLPClassifier((64,))`` on a
    4-class synthetic problem. LDS for ``damping = c * |smallest|``:

    ======================  ======  =============  =========  =====
    rule                    digits  breast_cancer  synthetic  mean
    ======================  ======  =============  =========  =====
    ``2 |s|``               0.580   0.685          0.579      0.615
    ``3 |s|`` (default)     0.579   0.723          0.587      0.630
    ``4 |s|``               0.574   0.731          0.588      0.631
    ``6 |s|``               0.564   0.728          0.586      0.626
    ``|s| + 1e-2 largest``  0.577   0.561          0.588      0.575
    ``|s| + 1e-1 largest``  0.489   0.731          0.541      0.587
    ======================  ======  =============  =========  =====

    A margin relative to the largest eigenvalue is best on one problem and
    poor on another; a multiple of ``|smallest|`` between 3 and 4 is within
    0.005 of the best on all three (3 is the smaller, closer to the model's
    own curvature).
    """
    if not (isinstance(damping, str) and damping == "auto"):
        return float(damping)
    if H is not None:
        tr = float(torch.diagonal(H).sum())
        if spectrum is None:
            evals = torch.linalg.eigvalsh(H.to(torch.float64))
            spectrum = float(evals[0]), float(evals[-1])
    # The trace probes and the Lanczos run share one forward and first
    # backward pass over the data where the problem can keep them.
    with contextlib.nullcontext() if H is not None else reusing_graphs(problem):
        if H is None:
            z = rademacher(
                (n_probes, problem.p), generator, problem.dtype, problem.device
            )
            tr = float((problem.hvp(z) * z).sum(1).mean())
        convex = max(AUTO_DAMPING_FRACTION * abs(tr) / problem.p, 0.0)
        if spectrum is not None:
            lo, hi = map(float, spectrum)
        else:
            lo, hi = extreme_eigenvalues(problem, generator)
    rounding = 100 * torch.finfo(problem.dtype).eps * max(abs(hi), abs(lo))
    if lo >= -max(convex, rounding):
        return convex
    lifted = indefinite_damping(lo, convex)
    warnings.warn(
        f"The Hessian is indefinite (smallest eigenvalue about {lo:.3g}, largest "
        f"{hi:.3g}): damping='auto' lifted the damping from the convex default "
        f"{convex:.3g} to {lifted:.3g} so that H + damping*I is positive "
        "definite. Pass damping=<float> to choose it yourself.",
        SkinfluenceWarning,
        stacklevel=3,
    )
    return lifted


class BaseSolver(CPUStateMixin, BaseEstimator):
    """Base class of the inverse-Hessian-vector-product solvers.

    A solver is a small estimator holding its numerical settings.
    :meth:`fit` validates them and calls the subclass's ``_fit(problem,
    damping, ctx)``, which resolves ``damping`` (with
    :func:`resolve_damping`, the rule every solver shares) into
    ``damping_`` and prepares the operator; :meth:`solve` applies
    ``(H + damping_ I)^{-1}`` row-wise through the subclass's ``_solve``.

    Capabilities are declared, not probed:

    - ``low_rank = True``: :meth:`low_rank_factors` gives ``(U, w, s)`` with
      ``(H + damping I)^{-1} = U diag(w) U^T + s I``, so a method can cache
      every training row's coordinates ``g_j U`` once.
    - ``uses_problem = True``: :meth:`solve` keeps computing Hessian-vector
      products (CG, LiSSA), so it needs the
      :class:`~skinfluence.gradients.HessianProblem`.
    - :meth:`quadratic` gives ``g_i^T P g_i`` for a block of per-row
      gradients; the default materialises the block and solves, a solver
      with a cheaper form overrides it.

    The Hessian problem holds the model and the training data, so it is not
    pickled, and every fitted tensor is pickled on the CPU. :meth:`rebind`
    is the one way to attach a problem again (the methods call it with the
    problem of their context); it also moves the fitted tensors to the
    problem's device.
    """

    low_rank = False
    uses_problem = False
    _parameter_constraints = {}
    _transient_state = ("_problem",)

    def fit(self, problem, damping, ctx=None, **fit_params):
        """Prepare ``(H + damping I)^{-1}`` for ``problem``.

        Parameters
        ----------
        problem : HessianProblem
        damping : float >= 0 or "auto"
            ``"auto"`` follows :func:`resolve_damping`.
        ctx : InfluenceContext, optional
            Supplies the random generator and ``n_jobs``.
        **fit_params : dict
            Passed to the subclass's ``_fit`` (e.g. LiSSA's ``top_eigenvalue``).

        Returns
        -------
        self
        """
        self._validate_params()
        check_damping(damping)
        self._problem = problem
        self._fit(problem, damping, ctx, **fit_params)
        self._state_device = problem.device
        return self

    def _fit(self, problem, damping, ctx, **fit_params):
        raise NotImplementedError

    def rebind(self, problem):
        """Attach ``problem`` (e.g. after unpickling) and move the fitted
        tensors to its device."""
        self._move_state(problem.device)
        self._problem = problem
        return self

    @property
    def is_bound(self):
        """Whether a Hessian problem is attached."""
        return getattr(self, "_problem", None) is not None

    def solve(self, V):
        """``(H + damping I)^{-1} V^T`` row-wise for V (m, p), on V's device
        and in its dtype."""
        if self.uses_problem and not self.is_bound:
            raise ValueError(
                f"This {type(self).__name__} has no Hessian problem (solvers are "
                "pickled without their training data); attach one with "
                "rebind(problem), or fit again."
            )
        return self._solve(V).to(device=V.device, dtype=V.dtype)

    def _solve(self, V):
        raise NotImplementedError

    def quadratic(self, G):
        """``g_i^T P g_i`` for the rows of a :class:`RowGrads`."""
        M = G.materialise()
        return (M * self.solve(M)).sum(1)

    def low_rank_factors(self):
        """``(U, w, s)`` with ``(H + damping I)^{-1} = U diag(w) U^T + s I``
        (solvers with ``low_rank = True``)."""
        raise NotImplementedError(
            f"{type(self).__name__} is not a low-rank solver (low_rank=False)."
        )


def sample_rows(problem, max_rows, generator=None):
    """The Hessian of at most ``max_rows`` training rows of ``problem``,
    drawn at random without replacement (a :class:`RowSample`), or
    ``problem`` itself when it has no more rows or ``max_rows`` is ``None``."""
    n = problem.X.shape[0]
    if max_rows is None or n <= max_rows:
        return problem
    idx = torch.randperm(n, generator=generator)[:max_rows]
    return RowSample(problem, idx.to(problem.device))


class RowSample:
    """The Hessian of the rows ``idx`` of ``problem``, rescaled to the mean
    objective."""

    def __init__(self, problem, idx):
        self._problem, self.idx = problem, idx
        self.p, self.dtype, self.device = problem.p, problem.dtype, problem.device
        self.layout = problem.layout

    @property
    def n_hvp(self):
        return self._problem.n_hvp

    def reuse_graph(self):
        return self._problem.reuse_graph()

    def hvp(self, V):
        return self._problem.hvp(V, idx=self.idx)

    def signed_gradients(self, n_probes, generator=None):
        return self._problem.signed_gradients(n_probes, generator, idx=self.idx)

"""IP ensemble: inner products summed over perturbed copies of the model."""

import contextlib
import numbers
import warnings

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..exceptions import SkinfluenceWarning
from ..utils._torch import draw_seed, make_generator
from ._base import BaseInfluenceMethod
from ._projected import PROJECTION_CONSTRAINT, PROJECTION_DIM_DOC

__all__ = ["IPEnsemble", "damping_lift_recorder", "warn_damping_lifts"]


def _is_lift(record):
    """Whether a recorded warning is the indefinite-Hessian damping lift of
    ``damping="auto"`` (``skinfluence.methods.ihvp.resolve_damping``)."""
    text = str(record.message)
    return (
        issubclass(record.category, SkinfluenceWarning)
        and "indefinite" in text
        and "lifted" in text
    )


@contextlib.contextmanager
def damping_lift_recorder(lifted, say_lift):
    """Fit one member of an ensemble and note whether its damping was lifted.

    Appends ``True`` to ``lifted`` when the code in the block warned that
    ``damping="auto"`` lifted the damping of an indefinite Hessian, else
    ``False``. Every other warning is passed on unchanged, and so is the
    lift warning when ``say_lift`` (a single model); an ensemble says its
    members' lifts once, with :func:`warn_damping_lifts`.
    """
    records = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Record everything, whatever the caller's filters: they apply
            # when the warnings are passed on below.
            warnings.simplefilter("always")
            records = caught
            yield
        lifted.append(any(_is_lift(r) for r in records))
    finally:
        for r in records:
            if say_lift or not _is_lift(r):
                warnings.warn_explicit(r.message, r.category, r.filename, r.lineno)


def warn_damping_lifts(lifted, dampings, stacklevel=2):
    """One warning for the members of an ensemble whose ``damping="auto"``
    was lifted above an indefinite Hessian's smallest eigenvalue: how many,
    and the range of the lifted dampings (each ``3 * |smallest|``)."""
    values = [d for d, up in zip(dampings, lifted) if up]
    if not values:
        return
    lo, hi = min(values), max(values)
    span = f"{lo:.3g}" if f"{lo:.3g}" == f"{hi:.3g}" else f"{lo:.3g} to {hi:.3g}"
    warnings.warn(
        f"The Hessian is indefinite in {len(values)} of the {len(lifted)} models "
        f"averaged: damping='auto' lifted their damping to {span} (3 x the "
        "magnitude of each model's smallest eigenvalue; per model in dampings_, "
        "and which were lifted in lifted_) so that every H + damping*I is "
        "positive definite. Pass damping=<float> to choose it yourself.",
        SkinfluenceWarning,
        stacklevel=stacklevel + 1,
    )


def _local_generator(random_state, ctx):
    """A private generator: from ``random_state`` if given, else drawn from
    the estimator's generator (so its ``random_state`` decides)."""
    if random_state is not None:
        return make_generator(random_state)
    if ctx.generator is not None:
        return make_generator(ctx.generator)
    return make_generator(ctx.random_state)


def refit_members(ctx, n_estimators, random_state):
    """Parameters of ``n_estimators`` refits of the context's estimator, each
    with its own seed drawn from ``random_state``."""
    from ..callbacks import check_matches

    if ctx.adapter is None:
        raise ValueError(
            "An ensemble of refits needs the estimator to refit; use the method "
            "through InfluenceScorer (or, for IPEnsemble, choose kind='noise')."
        )
    gen = _local_generator(random_state, ctx)
    members = []
    for _ in range(n_estimators):
        refit = ctx.adapter.refit(ctx.X, ctx.T, draw_seed(gen))
        view = refit.view(ctx.view.n_train, ctx.view.device, ctx.view.dtype)
        check_matches(view.params, ctx.view.params, "of a refitted model")
        members.append(view.params)
    return members


class IPEnsemble(BaseInfluenceMethod):
    """Inner-product influence summed over an ensemble of models.

    ``score(q, j) = IP_base(q, j) + sum_m IP_m(q, j)``, with ``IP_m`` the
    inner product ``g_q . g_j`` taken at the parameters of member ``m``
    (query and training gradients at the *same* parameters). The Hessian-free
    influence paper's "enhance" step: members are copies of the fitted model
    with Gaussian noise ``N(0, sigma^2)`` on every parameter (defaults
    ``n_estimators=5``, ``sigma=0.01``). Other members, by ``kind``:

    - ``"noise"``: Gaussian parameter noise (the paper);
    - ``"dropout"``: dropout masks on the weights: every entry of each weight
      matrix (tensors of 2 or more dimensions) is kept with probability
      ``1 - dropout`` and rescaled by ``1 / (1 - dropout)``;
    - ``"checkpoints"``: the ``n_estimators`` latest training checkpoints
      (see :class:`TracInCP`; skorch nets);
    - ``"refits"``: the estimator refitted ``n_estimators`` times on the same
      rows with different seeds (for estimators whose fit is random: skorch
      nets, ``SGDClassifier``, MLPs; ``fit_params`` are not replayed).

    Positive = helpful; not on the leave-one-out scale.

    Measured by the linear datamodeling score (``benchmarks/lds.py``), no kind
    of inner-product ensemble adds much to :class:`TracIn`: on the digits MLP
    ``"noise"`` 0.298 and ``"refits"`` 0.308 against 0.295, on the logistic
    models a tie (refits of a convex model are the same model). The default
    stays the paper's cheap ``"noise"``; the ensemble that pays for its
    refits is :class:`InfluenceFunction`, which on a neural net averages 5
    independently refitted models by default (0.535 to 0.579 on that MLP).

    Parameters
    ----------
    n_estimators : int >= 1, default=5
        Members besides the fitted model.
    sigma : float >= 0, default=0.01
        Standard deviation of the parameter noise (``kind="noise"``).
    kind : {"noise", "dropout", "checkpoints", "refits"}, default="noise"
    dropout : float in [0, 1), default=0.1
        Drop probability of a weight (``kind="dropout"``).
    random_state : int, RandomState or None, default=None
        Seed of the noise, masks and refits; ``None`` draws one from the
        estimator's ``random_state``. Global seeds are never changed.
    %(projection_dim)s

    Attributes
    ----------
    param_sets_ : list of (dict, float)
        Parameters of the base model and of every member (weight 1 each).

    See Also
    --------
    TracIn : the inner product of the fitted model alone.
    TracInCP : inner products over checkpoints, weighted by learning rate.

    References
    ----------
    .. [1] Yang, Yue, Chen, Liu. "Revisit, Extend, and Enhance Hessian-Free
       Influence Functions." arXiv:2405.17490.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import InfluenceScorer, IPEnsemble
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> scorer = InfluenceScorer(
    ...     LogisticRegression(), method=IPEnsemble(n_estimators=3, random_state=0)
    ... ).fit(X, y)
    >>> len(scorer.method_.param_sets_)
    4
    >>> scorer.influence(X[:2], y[:2]).shape
    (2, 569)
    """

    _parameter_constraints = {
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "sigma": [Interval(numbers.Real, 0, None, closed="left")],
        "kind": [StrOptions({"noise", "dropout", "checkpoints", "refits"})],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
        **PROJECTION_CONSTRAINT,
    }

    __doc__ = __doc__.replace("%(projection_dim)s", PROJECTION_DIM_DOC)

    def __init__(
        self,
        n_estimators=5,
        *,
        sigma=0.01,
        kind="noise",
        dropout=0.1,
        random_state=None,
        projection_dim=None,
    ):
        self.n_estimators = n_estimators
        self.sigma = sigma
        self.kind = kind
        self.dropout = dropout
        self.random_state = random_state
        self.projection_dim = projection_dim

    @property
    def _needs_checkpoints(self):
        return self.kind == "checkpoints"

    def _param_sets(self, ctx):
        base = ctx.view.params
        sets = [(None, 1.0)]
        if self.kind == "checkpoints":
            from ._tracin_cp import checkpoint_params

            recorded = checkpoint_params(ctx, last=self.n_estimators)
            return sets + [(p, 1.0) for p, _ in recorded]
        if self.kind == "refits":
            members = refit_members(ctx, self.n_estimators, self.random_state)
            return sets + [(params, 1.0) for params in members]
        gen = _local_generator(self.random_state, ctx)
        for _ in range(self.n_estimators):
            member = {}
            for name, p in base.items():
                if self.kind == "noise":
                    eps = torch.randn(p.shape, generator=gen, dtype=torch.float64)
                    member[name] = p + (self.sigma * eps).to(p.device, p.dtype)
                elif p.dim() >= 2:
                    keep = torch.rand(p.shape, generator=gen) >= self.dropout
                    mask = keep.to(p.device, p.dtype) / (1.0 - self.dropout)
                    member[name] = p * mask
                else:
                    member[name] = p
            sets.append((member, 1.0))
        return sets

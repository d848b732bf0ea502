"""TracInCP: inner products summed over training checkpoints."""

from pathlib import Path

from ._base import BaseInfluenceMethod
from ._projected import PROJECTION_CONSTRAINT, PROJECTION_DIM_DOC

__all__ = ["TracInCP", "checkpoint_params"]


def _no_checkpoints(name, why):
    name = "the model" if name is None else name
    return ValueError(
        f"TracInCP needs parameter checkpoints recorded during training, and {name} "
        f"{why}. Fit a skorch net through InfluenceScorer (it adds "
        "skinfluence.callbacks.Checkpoints to its copy), train your net with "
        "callbacks=[Checkpoints()], pass TracInCP(checkpoints=[(params_or_path, lr), "
        "...]), or use method='tracin'."
    )


def _entries(checkpoints, ctx):
    """``(loader, lr)`` pairs from the method's ``checkpoints``."""
    from ..callbacks import Checkpoints, check_matches, load_checkpoint

    if checkpoints is None:
        adapter = ctx.adapter
        name = None if adapter is None else adapter.name
        if adapter is None or not adapter.records_checkpoints:
            raise _no_checkpoints(name, "records none (only skorch nets do)")
        checkpoints = adapter.checkpoints()
        if checkpoints is None:
            raise _no_checkpoints(name, "was trained without the Checkpoints callback")
    if isinstance(checkpoints, Checkpoints):
        recorded = getattr(checkpoints, "checkpoints_", [])
        if not recorded:
            raise _no_checkpoints(
                None,
                f"recorded no checkpoints (Checkpoints(every={checkpoints.every}) "
                "saw fewer epochs than that)",
            )
        return [
            (lambda ref, i=i: checkpoints.load(i, ref), e["lr"])
            for i, e in enumerate(recorded)
        ]
    entries = []
    for i, item in enumerate(checkpoints):
        if (
            isinstance(item, dict)
            and "lr" in item
            and ("params" in item or "path" in item)
        ):
            # An entry of a Checkpoints callback's ``checkpoints_``.
            item = (item.get("params", item.get("path")), item["lr"])
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise ValueError(
                f"checkpoints[{i}] is {item!r}; each entry must be a pair "
                "(params_dict_or_path, learning_rate)."
            )
        state, lr = item
        if isinstance(state, str | Path):
            entries.append((lambda ref, p=state: load_checkpoint(p, ref), float(lr)))
        else:

            def load(ref, s=state, i=i):
                check_matches(s, ref, f"checkpoints[{i}]")
                return s

            entries.append((load, float(lr)))
    if not entries:
        raise _no_checkpoints(None, "was given an empty checkpoints list")
    return entries


def checkpoint_params(ctx, checkpoints=None, last=None):
    """``[(params, lr)]``: every checkpoint (or the ``last`` ones), loaded
    once, on the view's device and dtype, checked against the model's
    parameters."""
    reference = ctx.view.params
    out = []
    entries = _entries(checkpoints, ctx)
    for load, lr in entries if last is None else entries[-last:]:
        state = load(reference)
        params = {
            k: state[k].to(device=v.device, dtype=v.dtype) for k, v in reference.items()
        }
        out.append((params, lr))
    return out


class TracInCP(BaseInfluenceMethod):
    """TracIn over training checkpoints: ``sum_c lr_c g_c(q)^T g_c(j)``.

    Gradients of the query and of every training row are taken at each
    recorded checkpoint ``c`` and their inner products summed with the
    learning rate ``lr_c`` in force at that checkpoint (Pruthi et al.'s
    TracInCP). Checkpoints are the outer loop, each loaded once; Linear
    layers use the factorised products of :class:`TracIn`. Positive =
    helpful (steps on row ``j`` lowered the query's loss). Not on the
    leave-one-out scale. Self-influence ``sum_c lr_c ||g_c(j)||^2`` is the
    classic mislabeled-row signal.

    Checkpoints come from the :class:`~skinfluence.callbacks.Checkpoints`
    skorch callback, which ``InfluenceScorer`` adds to its copy of a skorch
    net by itself; a net trained by hand with the callback can be passed
    frozen. scikit-learn estimators record no checkpoints: use a skorch
    net, pass them explicitly, or use :class:`TracIn`. Only parameters are
    recorded; buffers (e.g. batch-norm statistics) are the final model's.

    Parameters
    ----------
    checkpoints : None or list, default=None
        ``None`` reads the ``Checkpoints`` callback of the fitted skorch
        net. Otherwise a list of pairs (a dict of named parameter tensors or
        the path of a file saved with ``torch.save``, learning rate), or the
        ``checkpoints_`` list of a fitted ``Checkpoints`` callback.
    %(projection_dim)s

    Attributes
    ----------
    param_sets_ : list of (dict, float)
        The loaded checkpoints and their learning rates.

    See Also
    --------
    TracIn : the same at the final parameters only.
    skinfluence.callbacks.Checkpoints : records the checkpoints.

    References
    ----------
    .. [1] Pruthi, Liu, Kale, Sundararajan. "Estimating Training Data
       Influence by Tracing Gradient Descent." NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skorch import NeuralNetClassifier
    >>> from skinfluence import InfluenceScorer
    >>> from skinfluence.models import MLPModule
    >>> X = np.random.default_rng(0).normal(size=(80, 4))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> net = NeuralNetClassifier(
    ...     MLPModule, module__n_features=4, criterion=torch.nn.CrossEntropyLoss,
    ...     max_epochs=5, verbose=0,
    ... )
    >>> scorer = InfluenceScorer(net, method="tracin_cp").fit(X, y)
    >>> len(scorer.method_.param_sets_)  # one checkpoint per epoch
    5
    >>> scorer.influence(X[:3], y[:3]).shape
    (3, 80)
    """

    __doc__ = __doc__.replace("%(projection_dim)s", PROJECTION_DIM_DOC)

    _parameter_constraints = {
        "checkpoints": [None, list, tuple],
        **PROJECTION_CONSTRAINT,
    }

    _needs_checkpoints = True

    def __init__(self, checkpoints=None, *, projection_dim=None):
        self.checkpoints = checkpoints
        self.projection_dim = projection_dim

    def _param_sets(self, ctx):
        return checkpoint_params(ctx, self.checkpoints)

"""TracIn at the final parameters: the inner-product (IP) influence."""

from ._base import BaseInfluenceMethod
from ._projected import PROJECTION_CONSTRAINT, PROJECTION_DIM_DOC

__all__ = ["TracIn"]


class TracIn(BaseInfluenceMethod):
    """Inner-product influence ``g_q^T g_j`` at the fitted parameters.

    TracIn with a single checkpoint and no learning-rate weight, which the
    Hessian-free influence paper calls the inner product (IP): the inverse
    Hessian of the influence function replaced by the identity. Positive =
    helpful (a step on row ``j`` lowers the query's loss). The scores are
    *not* on the leave-one-out scale of :class:`InfluenceFunction`; they rank
    rows, and are cheap: no Hessian, and for Linear layers the products are
    computed from the factors ``(a, delta)`` without forming gradients.

    The parameter subset, device and batch size are set on the estimator
    that uses the method (e.g. ``InfluenceScorer(parameters=...)``).

    Parameters
    ----------
    %(projection_dim)s

    See Also
    --------
    TracInCP : sum over training checkpoints.
    IPEnsemble : average over perturbed copies of the model.
    InfluenceFunction : inverse-Hessian preconditioned influence.

    References
    ----------
    .. [1] Pruthi, Liu, Kale, Sundararajan. "Estimating Training Data
       Influence by Tracing Gradient Descent." NeurIPS 2020.
    .. [2] Yang, Yue, Chen, Liu. "Revisit, Extend, and Enhance Hessian-Free
       Influence Functions." arXiv:2405.17490.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import InfluenceScorer, TracIn
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> scorer = InfluenceScorer(LogisticRegression(), method=TracIn()).fit(X, y)
    >>> scorer.influence(X[:2], y[:2]).shape
    (2, 569)
    """

    __doc__ = __doc__.replace("%(projection_dim)s", PROJECTION_DIM_DOC)

    _parameter_constraints = dict(PROJECTION_CONSTRAINT)

    def __init__(self, projection_dim=None):
        self.projection_dim = projection_dim

    def fit(self, ctx):
        self._validate_params()
        return super().fit(ctx)

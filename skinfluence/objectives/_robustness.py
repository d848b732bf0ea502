"""Loss on adversarially perturbed queries."""

import numbers

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..gradients import Query
from ._base import BaseObjective

__all__ = ["RobustnessObjective", "is_linear_model"]

# Rows per pass of an attack (bounds the activations kept for backward).
_ATTACK_CHUNK = 4096


def is_linear_model(view, X):
    """Whether the model is a single Linear layer applied to the raw input."""
    linear = view.linear_modules()
    if len(linear) != 1:
        return False
    prefix = linear[0] + "." if linear[0] else ""
    if any(not name.startswith(prefix) for name in view.params):
        return False
    probe = X[:2]
    return bool(torch.equal(view.features(probe), probe.reshape(probe.shape[0], -1)))


def margin_attack(view, params, X, overshoot):
    """Push every row ``overshoot`` times its margin across the decision
    boundary of a linear classifier (towards the runner-up class)."""
    params = view.params if params is None else params
    name = view.linear_modules()[0]
    prefix = name + "." if name else ""
    W = params[prefix + "weight"].detach()
    b = params.get(prefix + "bias")
    z = X @ W.T
    if b is not None:
        z = z + b.detach()
    if W.shape[0] == 1:
        w = W[0].expand_as(X)
        margin = z[:, 0]
    else:
        top2 = z.topk(2, dim=1).indices
        w = W[top2[:, 0]] - W[top2[:, 1]]
        margin = z.gather(1, top2[:, :1])[:, 0] - z.gather(1, top2[:, 1:])[:, 0]
    norm2 = (w**2).sum(1).clamp_min(torch.finfo(X.dtype).tiny)
    return X - (overshoot * margin / norm2).unsqueeze(1) * w


def gradient_attack(view, params, X, T, epsilon, steps, step_size):
    """FGSM (``steps=1``, step ``epsilon``) or PGD in the L-infinity ball of
    radius ``epsilon``, ascending the per-row loss."""
    params = view.params if params is None else params
    params = {k: v.detach() for k, v in params.items()}
    parts = []
    for start in range(0, X.shape[0], _ATTACK_CHUNK):
        x0 = X[start : start + _ATTACK_CHUNK].detach()
        t = T[start : start + _ATTACK_CHUNK]
        x = x0.clone()
        for _ in range(steps):
            x.requires_grad_(True)
            with torch.enable_grad():
                loss = view.loss(view.forward(x, params), t).sum()
                (g,) = torch.autograd.grad(loss, x)
            x = x.detach() + step_size * g.sign()
            x = torch.minimum(torch.maximum(x, x0 - epsilon), x0 + epsilon)
        parts.append(x.detach())
    return torch.cat(parts) if parts else X


class RobustnessObjective(BaseObjective):
    """Loss on adversarially perturbed query rows.

    Every query row is attacked at the parameters its gradient is taken at
    (so an ensemble member or a checkpoint is attacked as itself), then the
    usual loss is measured on the perturbed rows, which are held fixed while
    differentiating with respect to the parameters. Per-row, like the loss:
    influence has shape (n_query, n_train), positive = removing the training
    row raises the adversarial loss (the row helps robustness).

    Attacks:

    - ``"margin"`` (linear classifiers, the Hessian-free influence paper):
      ``x_adv = x - overshoot * (w^T x + b) / ||w||^2 * w``, which puts
      every row ``overshoot`` times its margin on the other side of the
      decision boundary (multi-class: the boundary between the predicted and
      the runner-up class);
    - ``"fgsm"``: ``x + epsilon * sign(grad_x loss)``;
    - ``"pgd"``: ``steps`` signed-gradient steps of ``step_size``, projected
      on the L-infinity ball of radius ``epsilon`` around ``x``;
    - ``"auto"``: ``"margin"`` for a classifier that is one Linear layer on
      the raw input, ``"pgd"`` otherwise.

    Parameters
    ----------
    attack : {"auto", "margin", "fgsm", "pgd"}, default="auto"
    epsilon : float >= 0, default=0.1
        L-infinity radius of FGSM/PGD, in the units of ``X``.
    steps : int >= 1, default=10
        PGD steps.
    step_size : float > 0 or None, default=None
        PGD step; ``None`` is ``2.5 * epsilon / steps``.
    overshoot : float > 0, default=1.3
        How far past the boundary the margin attack goes, in margins.

    See Also
    --------
    LossObjective : the loss on the unperturbed rows.

    References
    ----------
    .. [1] Yang, Yue, Chen, Liu. "Revisit, Extend, and Enhance Hessian-Free
       Influence Functions." arXiv:2405.17490.
    .. [2] Madry, Makelov, Schmidt, Tsipras, Vladu. "Towards Deep Learning
       Models Resistant to Adversarial Attacks." ICLR 2018.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import InfluenceScorer, RobustnessObjective
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> scorer = InfluenceScorer(
    ...     LogisticRegression(), objective=RobustnessObjective(attack="margin")
    ... ).fit(X[:400], y[:400])
    >>> scorer.influence(X[400:403], y[400:403]).shape
    (3, 400)
    """

    per_row = True

    _parameter_constraints = {
        "attack": [StrOptions({"auto", "margin", "fgsm", "pgd"})],
        "epsilon": [Interval(numbers.Real, 0, None, closed="left")],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "step_size": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "overshoot": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(
        self, attack="auto", *, epsilon=0.1, steps=10, step_size=None, overshoot=1.3
    ):
        self.attack = attack
        self.epsilon = epsilon
        self.steps = steps
        self.step_size = step_size
        self.overshoot = overshoot

    def make_query(self, view, X, T, **params):
        self._validate_params()
        if params:
            raise TypeError(
                f"objective='robustness' takes no extra parameters; got "
                f"{sorted(params)}. Set the attack on RobustnessObjective(...)."
            )
        attack = self.attack
        linear = is_linear_model(view, X)
        if attack == "auto":
            attack = "margin" if linear and view.task == "classification" else "pgd"
        if attack == "margin" and not (linear and view.task == "classification"):
            raise ValueError(
                "attack='margin' needs a linear classifier (one Linear layer on the "
                "raw input); use attack='fgsm' or 'pgd' for this model."
            )
        if attack == "margin":
            overshoot = float(self.overshoot)

            def transform(view, params, X, T):
                return margin_attack(view, params, X, overshoot)

        else:
            epsilon = float(self.epsilon)
            steps = 1 if attack == "fgsm" else int(self.steps)
            if attack == "fgsm":
                step_size = epsilon
            elif self.step_size is None:
                step_size = 2.5 * epsilon / steps
            else:
                step_size = float(self.step_size)

            def transform(view, params, X, T):
                return gradient_attack(view, params, X, T, epsilon, steps, step_size)

        self.attack_ = attack
        return Query(X, T, measure=view.loss, transform=transform)

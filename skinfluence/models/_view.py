"""The model view: what every method needs to know about a fitted model."""

import torch
from torch.func import functional_call

__all__ = ["L2Penalty", "ModelView"]


class L2Penalty:
    """The penalty ``strength * sum ||params[name]||^2`` over ``names``.

    A plain callable as far as :class:`ModelView` is concerned; declaring
    the penalty this way also tells Hessian-vector products that its
    Hessian is the constant diagonal ``2 * strength`` on those parameters,
    which they then add directly instead of differentiating it twice at
    every product (about a sixth of a one-row LiSSA step on a small net).

    Parameters
    ----------
    names : list of str
        Names of the penalised parameters.
    strength : float
        Coefficient on the sum scale of the training objective.
    """

    def __init__(self, names, strength):
        self.names = list(names)
        self.strength = float(strength)

    def __call__(self, params):
        return self.strength * sum((params[n] ** 2).sum() for n in self.names)

    def hessian_diagonal(self, layout, like):
        """The penalty's (constant) Hessian diagonal in ``layout``'s flat
        order, a (p,) tensor with the dtype and device of ``like``;
        parameters outside the layout are held fixed and do not appear."""
        flat = torch.zeros(layout.p, dtype=like.dtype, device=like.device)
        parts = layout.unflatten(flat)
        for name in self.names:
            if name in parts:
                parts[name].fill_(2.0 * self.strength)
        return flat

    def __repr__(self):
        return f"L2Penalty(names={self.names!r}, strength={self.strength:g})"


class ModelView:
    """A fitted model seen as a differentiable torch function.

    The training objective the view reproduces is, on the *sum* scale,

        J(theta) = sum_i loss(f(x_i; theta), y_i) + penalty(theta)

    which is what the estimator minimised (up to a positive constant). The
    per-row gradients used for influence are those of ``loss`` alone; the
    Hessian is that of ``J / n_train``. ``penalty`` is held fixed when a row is
    left out, which is what leave-one-out retraining of every supported
    estimator does (for estimators whose penalty is written per row, such as
    ``SGDClassifier``, it is fixed at its fitted strength).

    Parameters
    ----------
    module : torch.nn.Module
        A private copy of the model, in evaluation mode.
    loss : callable
        ``loss(output, target) -> Tensor (n,)``, the per-row training loss.
    penalty : callable or None
        ``penalty(params) -> scalar`` on the sum scale, with ``params`` the
        dict of all named parameters. An :class:`L2Penalty` has its Hessian
        added in closed form by Hessian-vector products.
    n_train : int
        Number of rows the training objective sums over.
    task : {"classification", "regression"}
    encode_target : callable
        Maps encoded labels (class indices ``0..K-1``) or regression targets
        (NumPy) to the tensor ``loss`` expects.
    proba : callable or None
        Maps the model output to class probabilities (classifiers).
    """

    def __init__(
        self,
        module,
        loss,
        *,
        penalty=None,
        n_train,
        task,
        encode_target,
        proba=None,
        n_classes=None,
        name="model",
    ):
        self.module = module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.loss = loss
        self.penalty = penalty
        self.n_train = int(n_train)
        self.task = task
        self.encode_target = encode_target
        self.proba = proba
        self.n_classes = n_classes
        self.name = name
        self.params = {k: v.detach() for k, v in module.named_parameters()}

    @property
    def device(self):
        return next(iter(self.params.values())).device

    @property
    def dtype(self):
        return next(iter(self.params.values())).dtype

    def forward(self, X, params=None):
        """Model output for ``X`` under ``params`` (defaults to the fitted ones)."""
        params = self.params if params is None else params
        return functional_call(self.module, params, (X,))

    def linear_modules(self):
        """Names of the ``torch.nn.Linear`` modules, in registration order."""
        return [
            name
            for name, m in self.module.named_modules()
            if isinstance(m, torch.nn.Linear)
        ]

    def penalty_value(self, params):
        if self.penalty is None:
            return None
        return self.penalty(params)

    def features(self, X, params=None):
        """Penultimate representation: the input of the last Linear layer."""
        names = self.linear_modules()
        if not names:
            return X.reshape(X.shape[0], -1)
        last = dict(self.module.named_modules())[names[-1]]
        captured = {}

        def hook(mod, args, out):
            captured["x"] = args[0]

        handle = last.register_forward_hook(hook)
        try:
            with torch.no_grad():
                self.forward(X, params)
        finally:
            handle.remove()
        return captured["x"].reshape(X.shape[0], -1)

    def select(self, parameters):
        """Resolve a parameter subset to a list of parameter names.

        ``"all"``: every parameter; ``"last"``: the parameters of the last
        ``torch.nn.Linear`` module; a list of names or name prefixes.
        """
        names = list(self.params)
        if isinstance(parameters, str) and parameters == "all":
            return names
        if isinstance(parameters, str) and parameters == "last":
            linear = self.linear_modules()
            if not linear:
                raise ValueError(
                    "parameters='last' needs a torch.nn.Linear layer in the model; "
                    "this model has none. Use parameters='all' or a list of names."
                )
            prefix = linear[-1] + "." if linear[-1] else ""
            return [
                n for n in names if n.startswith(prefix) and "." not in n[len(prefix) :]
            ]
        if isinstance(parameters, str):
            parameters = [parameters]
        selected = []
        for item in parameters:
            hits = [n for n in names if n == item or n.startswith(item + ".")]
            if not hits:
                raise ValueError(
                    f"parameters contains {item!r}, which is not a parameter of the "
                    f"model. Available names: {names}."
                )
            selected.extend(h for h in hits if h not in selected)
        return [n for n in names if n in selected]

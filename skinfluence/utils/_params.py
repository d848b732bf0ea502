"""Parameters whose value is a component given by name or as an object."""

__all__ = ["NamedComponentsMixin"]


class NamedComponentsMixin:
    """``set_params`` that explains ``name__setting`` when ``name`` is a string.

    Methods, solvers and objectives may be given by name (``method="cg"``) or
    as objects; only an object has settings of its own, so
    ``method__damping`` needs ``method=InfluenceFunction()``. scikit-learn's
    ``set_params`` would fail on the string with an ``AttributeError`` that
    names neither the parameter nor the fix.
    """

    def set_params(self, **params):
        own = self.get_params(deep=False)
        for key in params:
            name, nested, _ = key.partition("__")
            value = params.get(name, own.get(name))
            if nested and isinstance(value, str):
                raise ValueError(
                    f"{key!r} sets a setting of {name}, but {name}={value!r} is "
                    f"given by name; pass {name} as an object to tune its settings "
                    "(e.g. method=InfluenceFunction(), solver=CGSolver(), "
                    "objective=LossObjective())."
                )
        return super().set_params(**params)

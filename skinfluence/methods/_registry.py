"""Method lookup by name."""

from sklearn.base import clone

from ._base import BaseInfluenceMethod
from ._ensemble import IPEnsemble
from ._fastif import FastIF
from ._influence_function import InfluenceFunction
from ._newton_loo import NewtonLOO
from ._tracin import TracIn
from ._tracin_cp import TracInCP

METHODS = {
    "tracin": TracIn,
    "influence_function": InfluenceFunction,
    "tracin_cp": TracInCP,
    "ip_ensemble": IPEnsemble,
    "fastif": FastIF,
    "newton_loo": NewtonLOO,
}


def register_method(name, cls):
    """Make ``cls`` selectable as ``method=name``."""
    METHODS[name] = cls


def get_method(method):
    """A fresh (unfitted) method object from a name or a method object."""
    if isinstance(method, str):
        try:
            return METHODS[method]()
        except KeyError:
            raise ValueError(
                f"method={method!r} is not a known method; choose one of "
                f"{sorted(METHODS)} or pass a method object."
            ) from None
    if isinstance(method, BaseInfluenceMethod):
        return clone(method)
    raise TypeError(
        f"method must be a string among {sorted(METHODS)} or a method object "
        f"(e.g. skinfluence.TracIn()); got {type(method).__name__}."
    )

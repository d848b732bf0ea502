"""Influence methods: ``influence(q, j) = g_q^T P g_j`` for different ``P``."""

from ._base import BaseInfluenceMethod, InfluenceContext, Query
from ._influence_function import InfluenceFunction
from ._newton_loo import NewtonLOO
from ._registry import METHODS, get_method, register_method
from ._tracin import TracIn
from .ihvp import ArnoldiSolver, CGSolver, EKFACSolver, ExactSolver

__all__ = [
    "ArnoldiSolver",
    "BaseInfluenceMethod",
    "CGSolver",
    "EKFACSolver",
    "ExactSolver",
    "InfluenceContext",
    "InfluenceFunction",
    "METHODS",
    "NewtonLOO",
    "Query",
    "TracIn",
    "get_method",
    "register_method",
]

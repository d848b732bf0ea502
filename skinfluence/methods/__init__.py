"""Influence methods: ``influence(q, j) = g_q^T P g_j`` for different ``P``."""

from ..gradients import Query
from ._base import BaseInfluenceMethod, InfluenceContext
from ._ensemble import IPEnsemble
from ._fastif import FastIF
from ._influence_function import InfluenceFunction
from ._newton_loo import NewtonLOO
from ._registry import METHODS, get_method, register_method
from ._tracin import TracIn
from ._tracin_cp import TracInCP
from .ihvp import (
    SOLVERS,
    ArnoldiSolver,
    BaseSolver,
    CGSolver,
    EKFACSolver,
    ExactSolver,
    LissaSolver,
)

__all__ = [
    "ArnoldiSolver",
    "BaseInfluenceMethod",
    "BaseSolver",
    "CGSolver",
    "EKFACSolver",
    "ExactSolver",
    "FastIF",
    "IPEnsemble",
    "InfluenceContext",
    "InfluenceFunction",
    "LissaSolver",
    "METHODS",
    "NewtonLOO",
    "Query",
    "SOLVERS",
    "TracIn",
    "TracInCP",
    "get_method",
    "register_method",
]

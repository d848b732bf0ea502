"""Toy problems whose ground truth is known (label noise, fairness bias)."""

from ._fairness import make_fairness_problem

__all__ = ["make_fairness_problem"]

"""Toy problems whose ground truth is known: noisy labels, fairness bias."""

from ._fairness import make_fairness_problem
from ._noisy import load_noisy, make_noisy_labels

__all__ = ["load_noisy", "make_fairness_problem", "make_noisy_labels"]

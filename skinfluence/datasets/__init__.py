"""Toy problems with known truth: noisy labels (and, where available, fairness)."""

from ._noisy import load_noisy, make_noisy_labels

__all__ = ["load_noisy", "make_noisy_labels"]

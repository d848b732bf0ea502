"""The public estimators."""

from ._scorer import InfluenceScorer

__all__ = ["InfluenceScorer"]

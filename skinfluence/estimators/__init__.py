"""The public estimators."""

from ._filter import NoisyLabelFilter
from ._scorer import InfluenceScorer

__all__ = ["InfluenceScorer", "NoisyLabelFilter"]

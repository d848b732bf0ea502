"""The public estimators."""

from ._filter import NoisyLabelFilter
from ._scorer import InfluenceScorer
from ._selector import InfluentialSubsetSelector

__all__ = ["InfluenceScorer", "InfluentialSubsetSelector", "NoisyLabelFilter"]

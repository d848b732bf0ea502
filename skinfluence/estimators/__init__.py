"""The public estimators."""

from ._filter import NoisyLabelFilter
from ._finetuner import InfluenceFineTuner
from ._scorer import InfluenceScorer
from ._selector import InfluentialSubsetSelector

__all__ = [
    "InfluenceFineTuner",
    "InfluenceScorer",
    "InfluentialSubsetSelector",
    "NoisyLabelFilter",
]

"""skinfluence: training-data influence for scikit-learn, skorch and torch.

Which training rows drove a prediction, which are mislabeled, which subset
helps a validation objective most -- as scikit-learn estimators.
"""

from .estimators import InfluenceScorer, InfluentialSubsetSelector, NoisyLabelFilter
from .methods import METHODS, ExactSolver, InfluenceFunction, TracIn

__version__ = "0.1.0.dev0"

__all__ = [
    "METHODS",
    "ExactSolver",
    "InfluenceFunction",
    "InfluenceScorer",
    "InfluentialSubsetSelector",
    "NoisyLabelFilter",
    "TracIn",
    "__version__",
]

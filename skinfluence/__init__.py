"""skinfluence: training-data influence for scikit-learn, skorch and torch.

Which training rows drove a prediction, which are mislabeled, which subset
helps a validation objective most -- as scikit-learn estimators.
"""

from .callbacks import Checkpoints
from .estimators import InfluenceScorer
from .methods import (
    METHODS,
    ExactSolver,
    InfluenceFunction,
    IPEnsemble,
    TracIn,
    TracInCP,
)
from .objectives import (
    CallableObjective,
    DemographicParity,
    EqualOpportunity,
    RobustnessObjective,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "CallableObjective",
    "Checkpoints",
    "DemographicParity",
    "EqualOpportunity",
    "IPEnsemble",
    "RobustnessObjective",
    "TracInCP",
    "METHODS",
    "ExactSolver",
    "InfluenceFunction",
    "InfluenceScorer",
    "TracIn",
    "__version__",
]

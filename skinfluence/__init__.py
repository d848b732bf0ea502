"""skinfluence: training-data influence for scikit-learn, skorch and torch.

Which training rows drove a prediction, which are mislabeled, which subset
helps a validation objective most -- as scikit-learn estimators.
"""

from .callbacks import Checkpoints
from .estimators import InfluenceScorer
from .methods import (
    METHODS,
    SOLVERS,
    ExactSolver,
    FastIF,
    InfluenceFunction,
    IPEnsemble,
    LissaSolver,
    TracIn,
    TracInCP,
)
from .objectives import (
    OBJECTIVES,
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
    "ExactSolver",
    "FastIF",
    "IPEnsemble",
    "InfluenceFunction",
    "InfluenceScorer",
    "LissaSolver",
    "METHODS",
    "OBJECTIVES",
    "RobustnessObjective",
    "SOLVERS",
    "TracIn",
    "TracInCP",
    "__version__",
]

"""skinfluence: training-data influence for scikit-learn, skorch and torch.

Which training rows drove a prediction, which are mislabeled, which subset
helps a validation objective most -- as scikit-learn estimators.
"""

from .callbacks import Checkpoints
from .estimators import InfluenceScorer, InfluentialSubsetSelector, NoisyLabelFilter
from .methods import (
    METHODS,
    SOLVERS,
    ArnoldiSolver,
    CGSolver,
    EKFACSolver,
    ExactSolver,
    FastIF,
    InfluenceFunction,
    IPEnsemble,
    LissaSolver,
    NewtonLOO,
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
    "ArnoldiSolver",
    "CGSolver",
    "CallableObjective",
    "Checkpoints",
    "DemographicParity",
    "EKFACSolver",
    "EqualOpportunity",
    "ExactSolver",
    "FastIF",
    "IPEnsemble",
    "InfluenceFunction",
    "InfluenceScorer",
    "LissaSolver",
    "METHODS",
    "NewtonLOO",
    "OBJECTIVES",
    "RobustnessObjective",
    "SOLVERS",
    "InfluentialSubsetSelector",
    "NoisyLabelFilter",
    "TracIn",
    "TracInCP",
    "__version__",
]

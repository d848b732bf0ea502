"""skinfluence: training-data influence for scikit-learn, skorch and torch.

Which training rows drove a prediction, which are mislabeled, which subset
helps a validation objective most -- as scikit-learn estimators.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "skinfluence needs torch, which is not installed in this Python. Install "
        "the package with its dependencies: pip install -c constraints.txt . "
        "(the constraints file pins the CPU build of torch)."
    ) from exc

from .callbacks import Checkpoints
from .estimators import (
    InfluenceFineTuner,
    InfluenceScorer,
    InfluentialSubsetSelector,
    NoisyLabelFilter,
)
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
    LossObjective,
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
    "InfluenceFineTuner",
    "InfluenceFunction",
    "InfluenceScorer",
    "LissaSolver",
    "LossObjective",
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

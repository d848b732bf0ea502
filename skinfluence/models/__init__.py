"""Model adapters: fit supported estimators and see them as differentiable views."""

from ._adapters import (
    FINE_TUNABLE,
    SUPPORTED,
    FrozenAdapter,
    ModelAdapter,
    SklearnLinearAdapter,
    SklearnMLPAdapter,
    SkorchAdapter,
    TorchModuleAdapter,
    adapt,
    adapter_for,
    default_estimator,
    task_of,
    unwrap,
)
from ._skorch import MLPModule
from ._view import L2Penalty, ModelView

__all__ = [
    "FINE_TUNABLE",
    "SUPPORTED",
    "FrozenAdapter",
    "L2Penalty",
    "MLPModule",
    "ModelAdapter",
    "ModelView",
    "SklearnLinearAdapter",
    "SklearnMLPAdapter",
    "SkorchAdapter",
    "TorchModuleAdapter",
    "adapt",
    "adapter_for",
    "default_estimator",
    "task_of",
    "unwrap",
]

"""Model adapters: turn estimators into differentiable model views."""

from ._adapt import SUPPORTED, adapt, default_estimator, kind_of, prepare, unwrap
from ._skorch import MLPModule
from ._view import ModelView

__all__ = [
    "SUPPORTED",
    "MLPModule",
    "ModelView",
    "adapt",
    "default_estimator",
    "kind_of",
    "prepare",
    "unwrap",
]

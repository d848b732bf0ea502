"""Shared estimator pieces: the resampler mixin (imbalanced-learn's shape)."""

import numbers
import warnings

import numpy as np
import torch
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions

from .exceptions import SkinfluenceWarning

__all__ = ["ENGINE_PARAMETER_CONSTRAINTS", "ResamplerMixin"]

# Constraints of the gradient-engine settings every estimator passes on to
# its InfluenceScorer.
ENGINE_PARAMETER_CONSTRAINTS = {
    "parameters": [StrOptions({"all", "last"}), list, tuple],
    "device": [str, torch.device],
    "dtype": [StrOptions({"float32", "float64"})],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "memory_budget": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


class ResamplerMixin:
    """Mixin for estimators that drop rows.

    Public :meth:`fit_resample` validates the parameters, then calls the
    subclass's ``_fit_resample(X, y, **params)``, which returns the indices
    of the kept rows and sets ``sample_indices_``; ``fit_resample`` returns
    exactly ``(X_kept, y_kept)`` in the caller's container types (imbalanced-
    learn's contract). imbalanced-learn's Pipeline recognises any step with
    ``fit_resample``, so no import of imbalanced-learn is needed.
    """

    _estimator_type = "sampler"

    def fit_resample(self, X, y, **params):
        """Judge the rows of ``(X, y)`` and return the kept ones.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        **params : dict
            Per-row metadata (e.g. ``sample_weight``, ``sensitive_features``);
            see the estimator's ``fit``.

        Returns
        -------
        X_resampled : array-like of shape (n_kept, n_features)
        y_resampled : array-like of shape (n_kept,)
        """
        self._validate_params()
        indices = self._fit_resample(X, y, **params)
        return take_rows(X, indices), take_rows(y, indices)


def take_rows(data, indices):
    """Rows of ``data`` in its own container type (arrays, frames, sparse,
    lists); objects that cannot be indexed are converted to arrays first."""
    try:
        return _safe_indexing(data, indices)
    except (TypeError, IndexError, KeyError):
        return np.asarray(data)[indices]


def check_row_metadata(name, value, n_rows):
    """Per-row metadata as an array of ``n_rows`` entries (or ``None``)."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.ndim == 0 or len(arr) != n_rows:
        got = "a scalar" if arr.ndim == 0 else f"{len(arr)} entries"
        raise ValueError(
            f"{name} has {got} but X has {n_rows} rows; pass one value per row."
        )
    if name == "sample_weight":
        arr = arr.astype(np.float64)
        if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(
                "sample_weight must be a 1-D array of finite non-negative numbers; "
                "fix or drop the offending entries."
            )
    return arr


def protect_classes(drop, y, order, what):
    """Un-drop the best row of every class that ``drop`` would remove entirely.

    ``order`` ranks rows from most to least worth keeping within the
    candidates; a warning names the classes kept this way.
    """
    drop = drop.copy()
    rescued = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        if drop[members].all():
            best = members[np.argmin(order[members])]
            drop[best] = False
            rescued.append(cls)
    if rescued:
        warnings.warn(
            f"{what} would remove every row of class(es) {rescued}; kept one row "
            "of each so that no class vanishes. Lower the amount dropped if this "
            "is unexpected.",
            SkinfluenceWarning,
            stacklevel=3,
        )
    return drop

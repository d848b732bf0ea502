"""Shared estimator pieces: the resampler mixin (imbalanced-learn's shape)."""

from sklearn.utils.validation import validate_data  # noqa: F401  (re-exported helper)

__all__ = ["ResamplerMixin"]


class ResamplerMixin:
    """Mixin for estimators that drop rows: public ``fit_resample`` returns
    ``(X_kept, y_kept)`` and sets ``sample_indices_``; subclasses implement
    ``_fit_resample``. imbalanced-learn's Pipeline recognises any step with
    ``fit_resample``, so no import of imbalanced-learn is needed."""

    _estimator_type = "sampler"

    def fit_resample(self, X, y, **params):
        """Resample ``(X, y)``; returns ``(X_kept, y_kept)``."""
        return self._fit_resample(X, y, **params)

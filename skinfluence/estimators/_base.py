"""What the estimators share: the resampler, the final estimator, fitting
the influence scorer, and shuffled cross-validation."""

import numbers
import warnings

import numpy as np
from sklearn.base import _fit_context, clone, is_classifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import KFold, StratifiedKFold, check_cv
from sklearn.utils import ClassifierTags, _safe_indexing
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _check_method_params, check_is_fitted

from ..exceptions import SkinfluenceWarning
from ..methods import get_method
from ..models import default_estimator
from ..utils._params import NamedComponentsMixin
from ..utils._torch import draw_seed
from ._scorer import InfluenceScorer

__all__ = [
    "FinalEstimatorMixin",
    "ResamplerMixin",
    "check_row_metadata",
    "detector_estimator",
    "fit_scorer",
    "protect_classes",
    "shuffled_cv",
    "take_rows",
]


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

    @_fit_context(prefer_skip_nested_validation=False)
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
        if n_rows and not np.any(arr > 0):
            raise ValueError(
                "sample_weight is zero for every row, which leaves nothing to fit; "
                "give some rows a positive weight."
            )
    return arr


def protect_classes(drop, y, order, what, labels=None):
    """Un-drop the best row of every class that ``drop`` would remove entirely.

    ``order`` ranks rows from most to least worth keeping within the
    candidates; a warning names the classes kept this way, as
    ``labels[y]`` when ``y`` holds indices into the caller's ``labels``
    (none with ``what=None``).
    """
    drop = drop.copy()
    rescued = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        if drop[members].all():
            best = members[np.argmin(order[members])]
            drop[best] = False
            rescued.append(cls)
    if rescued and what is not None:
        rescued = (np.asarray(rescued) if labels is None else labels[rescued]).tolist()
        warnings.warn(
            f"{what} would remove every row of class(es) {rescued}; kept one row "
            "of each so that no class vanishes. Lower the amount dropped if this "
            "is unexpected.",
            SkinfluenceWarning,
            stacklevel=3,
        )
    return drop


def shuffled_cv(cv, y, classifier, rng):
    """Folds for ``cv``: an integer is that many shuffled folds (stratified
    for classifiers) seeded from ``rng``; anything else goes through
    :func:`sklearn.model_selection.check_cv`."""
    if isinstance(cv, numbers.Integral):
        kind = StratifiedKFold if classifier else KFold
        return kind(int(cv), shuffle=True, random_state=draw_seed(rng))
    return check_cv(cv, y, classifier=classifier)


def detector_estimator(n_features, n_outputs):
    """The default detector: the package's small MLP, trained briefly (20
    epochs) with strong weight decay (1e-2), so that it learns the bulk of
    the data before it can memorise flipped labels."""
    return default_estimator("classification", n_features, n_outputs).set_params(
        max_epochs=20, optimizer__weight_decay=1e-2
    )


def fit_scorer(estimator, X, y, seed, **scorer_params):
    """An :class:`InfluenceScorer` fitted on ``(X, y)`` with the model's own
    randomness seeded by ``seed`` (its ``random_state``; the global torch
    state is restored)."""
    if estimator is None:
        estimator = detector_estimator(X.shape[1], len(np.unique(y)))
    return InfluenceScorer(estimator, random_state=seed, **scorer_params).fit(X, y)


def _final_has(attr):
    def check(self):
        if hasattr(self, "final_estimator_"):
            return hasattr(self.final_estimator_, attr)
        return self.final_estimator is not None and hasattr(self.final_estimator, attr)

    return check


class FinalEstimatorMixin(NamedComponentsMixin):
    """Shared by the filter and the selector: their scorers are fitted with
    the estimator's own settings; ``fit`` resamples then fits
    ``final_estimator``; prediction delegates."""

    def _check_method(self):
        """Fail before any fitting on a method name unknown at call time."""
        get_method(self.method)

    def _fit_scorer(self, X, y, rng, method=None, **scorer_params):
        """:func:`fit_scorer` on ``(X, y)`` with a seed drawn from ``rng`` and
        this estimator's ``method`` (unless ``method`` is given) and engine
        settings."""
        return fit_scorer(
            self.estimator,
            X,
            y,
            draw_seed(rng),
            method=self.method if method is None else method,
            parameters=self.parameters,
            device=self.device,
            dtype=self.dtype,
            batch_size=self.batch_size,
            memory_budget=self.memory_budget,
            verbose=self.verbose,
            **scorer_params,
        )

    def get_metadata_routing(self):
        router = MetadataRouter(owner=self).add_self_request(self)
        if self.final_estimator is not None:
            router.add(
                final_estimator=self.final_estimator,
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
        return router

    def _fit_final(self, X, y, indices, sample_weight, weights, fit_params):
        if self.final_estimator is None:
            if fit_params:
                raise TypeError(
                    f"fit got {sorted(fit_params)} but there is no final_estimator "
                    "to pass them to; set final_estimator or drop them."
                )
            return
        if _routing_enabled():
            routed = process_routing(
                self, "fit", sample_weight=sample_weight, **fit_params
            ).final_estimator.fit
            routed = dict(routed)
        else:
            routed = dict(fit_params)
            if sample_weight is not None:
                routed["sample_weight"] = sample_weight
        sw = routed.pop("sample_weight", None)
        # Per-row parameters (one entry per row of X) follow the kept rows.
        routed = _check_method_params(X, routed, indices)
        if sw is not None:
            sw = np.asarray(sw, dtype=np.float64)[indices]
        if weights is not None:
            sw = weights[indices] if sw is None else sw * weights[indices]
        if sw is not None:
            routed["sample_weight"] = sw
        self.final_estimator_ = clone(self.final_estimator).fit(
            take_rows(X, indices), take_rows(y, indices), **routed
        )

    @available_if(_final_has("predict"))
    def predict(self, X):
        """Predictions of ``final_estimator_``."""
        check_is_fitted(self, "final_estimator_")
        return self.final_estimator_.predict(X)

    @available_if(_final_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of ``final_estimator_``."""
        check_is_fitted(self, "final_estimator_")
        return self.final_estimator_.predict_proba(X)

    @available_if(_final_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of ``final_estimator_``."""
        check_is_fitted(self, "final_estimator_")
        return self.final_estimator_.predict_log_proba(X)

    @available_if(_final_has("decision_function"))
    def decision_function(self, X):
        """Decision function of ``final_estimator_``."""
        check_is_fitted(self, "final_estimator_")
        return self.final_estimator_.decision_function(X)

    @available_if(_final_has("predict"))
    def score(self, X, y, sample_weight=None):
        """``final_estimator_.score`` (accuracy for classifiers)."""
        check_is_fitted(self, "final_estimator_")
        if hasattr(self.final_estimator_, "score"):
            return self.final_estimator_.score(X, y, sample_weight=sample_weight)
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)

    @property
    def classes_(self):
        if hasattr(self, "final_estimator_"):
            return self.final_estimator_.classes_
        check_is_fitted(self, "labels_")
        return self.labels_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        final = self.final_estimator
        if hasattr(final, "fit") and is_classifier(final):
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_label=False)
        tags.target_tags.required = True
        tags.input_tags.allow_nan = False
        return tags

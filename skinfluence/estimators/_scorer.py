"""InfluenceScorer: per-row influence of training rows as an estimator."""

import contextlib
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import (
    ClassifierTags,
    RegressorTags,
    TransformerTags,
)
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _num_samples,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from .. import models
from ..exceptions import SkinfluenceWarning
from ..gradients import ParamLayout, Query
from ..methods import BaseInfluenceMethod, InfluenceContext, get_method
from ..objectives import BaseObjective, get_objective
from ..scoring import (
    Dense,
    TopK,
    check_output_path,
    memmap_output,
    stream_influence,
    stream_self_influence,
)
from ..utils._params import NamedComponentsMixin
from ..utils._torch import (
    draw_seed,
    make_generator,
    resolve_device,
    resolve_dtype,
    to_numpy,
)

__all__ = ["ENGINE_PARAMETER_CONSTRAINTS", "InfluenceScorer", "warn_if_unscaled"]

# Constraints of the gradient-engine settings, which the filter and the
# selector pass on to their scorers.
ENGINE_PARAMETER_CONSTRAINTS = {
    "parameters": [StrOptions({"all", "last"}), list, tuple],
    "device": [str, torch.device],
    "dtype": [StrOptions({"float32", "float64", "bfloat16"})],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "memory_budget": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def _check_2d(X, y=None):
    """Name ``X``/``y`` in shape errors (scikit-learn's own messages do not),
    and say how to avoid sparse input."""
    if sp.issparse(X):
        raise TypeError(
            "X is a sparse matrix, but influence needs dense rows. Pass "
            "X.toarray(); in a Pipeline, make the step before dense, e.g. "
            "OneHotEncoder(sparse_output=False) or ColumnTransformer(..., "
            "sparse_threshold=0)."
        )
    ndim = getattr(X, "ndim", None)
    if ndim is None and isinstance(X, list | tuple):
        ndim = np.ndim(X)
    if ndim is not None and ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features); got {ndim} dimension(s), shape "
            f"{np.shape(X)}. Reshape your data: X.reshape(-1, 1) for a single "
            "feature, X.reshape(1, -1) for a single row."
        )
    if y is None or X is None:
        return
    try:
        n_x, n_y = _num_samples(X), _num_samples(y)
    except TypeError:
        return  # left to validate_data, which explains what it expected
    if n_x != n_y:
        raise ValueError(
            f"y has {n_y} rows but X has {n_x}; pass one target per row of X."
        )


# Root mean square of a feature column above which the default network is
# warned to learn poorly (scikit-learn's digits reach 13, wine and breast
# cancer 810 and 1048).
UNSCALED_RMS = 100.0


def warn_if_unscaled(X, estimator_name):
    """Warn when a column of ``X`` is far off the unit scale that the default
    network (which sees the features as given) learns well from."""
    if len(X) == 0:
        return
    rms = np.sqrt(np.mean(np.square(X, dtype=np.float64), axis=0))
    col = int(np.argmax(rms))
    if rms[col] > UNSCALED_RMS:
        warnings.warn(
            f"X's column {col} has a root mean square of {rms[col]:.3g}: the default "
            "network sees the features as given and learns poorly from unscaled "
            "ones. Standardise them first, e.g. make_pipeline(StandardScaler(), "
            f"{estimator_name}(...)), or pass an estimator.",
            SkinfluenceWarning,
            stacklevel=4,
        )


def _warn_if_numeric_target(y):
    """Warn when class labels look like a regression target of whole numbers
    (many distinct numeric values, some on a single row), which a model
    without a declared kind would otherwise treat as classes."""
    if y.dtype.kind not in "iuf":
        return
    counts = np.unique(y, return_counts=True)[1]
    if len(counts) > 20 and counts.min() == 1:
        warnings.warn(
            f"y holds {len(counts)} distinct values over {len(y)} rows, "
            f"{int(np.sum(counts == 1))} of them on a single row, and is treated as "
            "class labels. If it is a regression target, pass a regressor, e.g. "
            "estimator=skinfluence.models.default_estimator('regression', "
            "n_features=X.shape[1], n_outputs=1).",
            SkinfluenceWarning,
            stacklevel=3,
        )


def _estimator_has(attr):
    def check(self):
        est = getattr(self, "estimator_", None)
        if est is not None:
            return hasattr(est, attr)
        if self.estimator is None or isinstance(self.estimator, torch.nn.Module):
            # Both become skorch nets.
            from skorch import NeuralNetClassifier

            return hasattr(NeuralNetClassifier, attr)
        return hasattr(self.estimator, attr)

    return check


class InfluenceScorer(NamedComponentsMixin, TransformerMixin, BaseEstimator):
    """Influence of every training row on predictions, as an estimator.

    ``fit`` clones and fits ``estimator`` (an already-fitted one comes in as
    :class:`sklearn.frozen.FrozenEstimator` and is used as is), turns it into
    a differentiable torch view, and fits the influence ``method`` on the
    training rows. Afterwards :meth:`influence` scores query rows against
    every training row, with **positive = helpful**: removing a
    positive-influence training row would raise the query's loss.

    Parameters
    ----------
    estimator : estimator, torch.nn.Module or None, default=None
        The differentiable model. Supported: skorch ``NeuralNetClassifier``/
        ``NeuralNetRegressor`` (any module; fitted on *all* given rows, with
        ``train_split=None`` on the clone), a bare ``torch.nn.Module``
        (wrapped in a skorch net with cross-entropy or MSE), scikit-learn
        ``LogisticRegression`` (L2), ``SGDClassifier(loss="log_loss")``,
        ``LinearRegression``, ``Ridge``, ``MLPClassifier``, ``MLPRegressor``.
        ``None`` is a small skorch MLP classifier (one hidden layer of 64
        units); for regression pass
        ``skinfluence.models.default_estimator("regression", n_features,
        n_outputs)``, its regressor twin.
    method : str or method object, default="tracin"
        ``"tracin"`` (inner product at the fitted parameters),
        ``"influence_function"``, or any name in ``skinfluence.METHODS``; or
        a method object such as ``InfluenceFunction(damping=0.01)`` (its
        settings are grid-searchable as ``method__damping``).
    objective : str, objective object or callable, default="loss"
        What the query gradient measures; ``"loss"`` is the query's loss.
    parameters : "all", "last" or list of str, default="all"
        Parameters the gradients are taken with respect to: all of them,
        those of the last ``torch.nn.Linear`` layer, or names/prefixes.
    top_k : int or None, default=None
        If set, :meth:`transform` returns a CSR matrix keeping, per query
        row, the ``top_k`` largest influences (proponents) and the ``top_k``
        smallest (opponents), computed by a running merge over training
        chunks (see :meth:`influence`).
    device : str or torch.device, default="auto"
        Where gradients, solvers and scoring run: ``"auto"`` (CUDA when
        present, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        Results are NumPy arrays on the host either way.
    dtype : {"float32", "float64", "bfloat16"}, default="float32"
        Precision of the model copy and the gradient computations.
        ``"bfloat16"`` halves memory and is fast on GPUs with bfloat16
        arithmetic (on CPUs without it, it is slower than float32); its
        TracIn scores keep a Pearson correlation of 0.99 with float64 ones on
        the MLP 64-256-256-10 of ``benchmarks/scale.py`` (97% of the same
        top-10 rows). ``"float64"`` for reference numbers.
    batch_size : int or None, default=None
        Rows per chunk of per-row gradient work; ``None`` sizes chunks from a
        memory budget.
    memory_budget : int or None, default=None
        Bytes of working memory: training gradients are cached when they fit
        in it, and each chunk of work is sized to a quarter of it. ``None``
        is 2 GiB, or half the memory available on the machine when that is
        less. A budget too small for one row's work raises an error that
        gives the minimum.
    n_jobs : int or None, default=None
        Parallel jobs for methods that run independent work (e.g. chains).
    random_state : int, RandomState or None, default=None
        Seed of the method's randomness (global seeds are never touched).
    verbose : int, default=0
        Show progress bars on long loops when > 0.

    Attributes
    ----------
    estimator_ : estimator
        The fitted model.
    method_ : method object
        The fitted influence method.
    objective_ : objective object
        The objective of :meth:`influence`; after a query it keeps what it
        measured (e.g. a fairness objective's ``gap_`` and ``pair_``).
    self_influence_ : ndarray of shape (n_train,)
        ``g_j^T P g_j`` of every training row; high values mark rows the
        model finds surprising (the classic mislabeled-row signal). Computed
        on first access and then kept.
    classes_ : ndarray
        Class labels (classifiers).
    n_train_ : int
        Number of training rows (the columns of :meth:`influence`).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has feature names.

    See Also
    --------
    NoisyLabelFilter : drops rows flagged by influence-based noise scores.
    InfluentialSubsetSelector : keeps the rows that help a validation objective.

    Notes
    -----
    TracIn scores are inner products, not on the leave-one-out scale;
    influence-function scores approximate ``loss_q(theta without j) -
    loss_q(theta)``.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import scale
    >>> from skinfluence import InfluenceScorer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = scale(X)
    >>> scorer = InfluenceScorer(LogisticRegression(), method="influence_function")
    >>> scorer = scorer.fit(X[:400], y[:400])
    >>> scores = scorer.influence(X[400:405], y[400:405])
    >>> scores.shape
    (5, 400)
    >>> scorer.self_influence_.shape
    (400,)
    """

    _parameter_constraints = {
        "estimator": [None, HasMethods(["fit"]), torch.nn.Module],
        # Names are checked when fitting, so that names registered after
        # import are accepted.
        "method": [str, BaseInfluenceMethod],
        "objective": [str, BaseObjective, callable],
        **ENGINE_PARAMETER_CONSTRAINTS,
        "top_k": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(
        self,
        estimator=None,
        *,
        method="tracin",
        objective="loss",
        parameters="all",
        top_k=None,
        device="auto",
        dtype="float32",
        batch_size=None,
        memory_budget=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.method = method
        self.objective = objective
        self.parameters = parameters
        self.top_k = top_k
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.memory_budget = memory_budget
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        task = (
            models.task_of(self.estimator)
            if self.estimator is not None
            else "classification"
        )
        if task == "regression":
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        elif task == "classification":
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_label=False)
        # transform() maps query rows to their influence on the training rows.
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        tags.input_tags.allow_nan = False
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit the estimator and the influence method on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        **fit_params : dict
            Passed to the estimator's ``fit``. A ``sample_weight`` weighs
            the rows in the model's fit only: the influence computations
            count every training row once.

        Returns
        -------
        self : InfluenceScorer
        """
        task = models.task_of(self.estimator)
        _check_2d(X, y)
        X, y = validate_data(
            self,
            X,
            y,
            reset=True,
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=task == "regression",
        )
        if self.estimator is None:
            # The default MLP is a classifier (and tagged one).
            try:
                check_classification_targets(y)
            except ValueError as exc:
                raise ValueError(
                    f"{exc} estimator=None is the default MLP classifier; for a "
                    "regression target pass a regressor, e.g. estimator="
                    "skinfluence.models.default_estimator('regression', "
                    "n_features=X.shape[1], n_outputs=1)."
                ) from None
            task = "classification"
        if task is None:
            kind = type_of_target(y)
            task = (
                "regression"
                if kind in ("continuous", "continuous-multioutput")
                else "classification"
            )
        # Fail early on an unavailable device or a bad dtype.
        resolve_device(self.device)
        resolve_dtype(self.dtype)

        adapter = models.adapter_for(self.estimator, task)
        if self.estimator is None:
            warn_if_unscaled(X, type(self).__name__)
        if task == "classification":
            check_classification_targets(y)
            if models.task_of(self.estimator) is None:
                _warn_if_numeric_target(y)
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
            if y.ndim != 1:
                raise ValueError(
                    f"y must be 1-D for classification; got shape {y.shape}."
                )
            y_enc = adapter.fit_labels(y)
            self.classes_ = adapter.classes_
        else:
            y_enc = np.asarray(y, dtype=np.float64)
        method = get_method(self.method)
        self.objective_ = get_objective(self.objective)
        seed = None if self.random_state is None else draw_seed(self.random_state)
        adapter.fit(
            X,
            y_enc,
            seed,
            record_checkpoints=bool(getattr(method, "_needs_checkpoints", False)),
            **fit_params,
        )
        self._adapter = adapter
        self.estimator_ = adapter.estimator_
        self._X_train = np.asarray(X)
        self._y_train = y_enc
        self.n_train_ = len(y_enc)
        self._ctx = None
        ctx = self._context()
        self.method_ = method
        self.method_.fit(ctx)
        self._self_influence = None
        return self

    @property
    def self_influence_(self):
        """Self-influence of every training row (computed on first access).

        For TracIn it comes from the pass that caches training gradients;
        for iterative solvers (CG, LiSSA) it costs one solve per row, so it
        is only computed when asked for, then kept.
        """
        check_is_fitted(self, "method_")
        if getattr(self, "_self_influence", None) is None:
            self._self_influence = to_numpy(
                stream_self_influence(self.method_, self._context())
            )
        return self._self_influence

    def _context(self):
        ctx = getattr(self, "_ctx", None)
        if ctx is not None:
            return ctx
        # Resolved again on first use after unpickling: a scorer fitted on
        # CUDA works on a machine without it (its tensors were pickled on
        # the CPU).
        device = resolve_device(self.device, fallback=True)
        dtype = resolve_dtype(self.dtype)
        view = self._adapter.view(len(self._X_train), device, dtype)
        Xt = torch.tensor(self._X_train, dtype=dtype, device=device)
        Tt = view.encode_target(self._y_train)
        layout = ParamLayout(view, view.select(self.parameters), Xt[:2])
        self._ctx = InfluenceContext(
            view=view,
            layout=layout,
            X=Xt,
            T=Tt,
            batch_size=self.batch_size,
            memory_budget=self.memory_budget,
            verbose=self.verbose,
            generator=make_generator(self.random_state),
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            adapter=self._adapter,
        )
        return self._ctx

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_ctx"] = None
        return state

    # ------------------------------------------------------------- queries
    def _check_query(self, X, y):
        check_is_fitted(self, "method_")
        _check_2d(X)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        ctx = self._context()
        Xt = torch.tensor(np.asarray(X), dtype=ctx.view.dtype, device=ctx.view.device)
        if y is None:
            return ctx, Xt, self._adapter.query_targets(ctx.view, Xt)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(
                f"y has {len(y)} rows but X has {len(X)}; pass one label per query row."
            )
        if self._adapter.task == "classification":
            T = ctx.view.encode_target(self._adapter.encode_labels(y))
        else:
            y = np.asarray(y, dtype=np.float64)
            if not np.all(np.isfinite(y)):
                raise ValueError("y contains NaN or infinity; pass finite targets.")
            T = ctx.view.encode_target(y)
        return ctx, Xt, T

    def influence(
        self,
        X,
        y=None,
        *,
        aggregate=False,
        top_k=None,
        out=None,
        overwrite=False,
        **objective_params,
    ):
        """Influence of every training row on the objective at ``X``.

        The training rows are walked in chunks and each block of scores is
        reduced as it arrives, so with ``top_k`` or ``aggregate`` memory stays
        bounded whatever the number of training rows; the full matrix is only
        formed when asked for, and then may go to a file (``out``).

        Parameters
        ----------
        X : array-like of shape (n_query, n_features)
        y : array-like of shape (n_query,), default=None
            Query labels; ``None`` uses the model's predicted labels.
        aggregate : bool, default=False
            Sum over the query rows (one vector, O(n_train) work per method
            pass) instead of one row per query.
        top_k : int >= 1 or None, default=None
            Keep, per query row, only the ``top_k`` largest influences
            (proponents) and the ``top_k`` smallest (opponents), ties broken
            by training-row index, by a running merge over training chunks:
            the dense block is never formed. Returns a CSR matrix.
        out : str or path-like, default=None
            Write the full (n_query, n_train) float64 matrix to this ``.npy``
            file as a ``numpy.memmap`` and return it opened read-only
            (``np.load(out, mmap_mode="r")`` reopens it). It is written under
            a temporary name in the same folder and renamed when complete, so
            an interrupted run never leaves a partial file under ``out``.
        overwrite : bool, default=False
            Allow ``out`` to replace an existing file.
        **objective_params : dict
            Passed to the objective (e.g. ``sensitive_features``).

        Returns
        -------
        influence : ndarray of shape (n_query, n_train), or (n_train,)
            Positive = helpful: removing the training row would raise the
            query's measured loss. Set-level objectives and ``aggregate=True``
            give shape (n_train,). With ``top_k``: a ``scipy.sparse``
            CSR matrix (n_query, n_train) with ``2 * top_k`` entries per row
            (fewer when ``2 * top_k > n_train``). With ``out``: a read-only
            ``numpy.memmap``.
        """
        if top_k is not None and (
            isinstance(top_k, bool)
            or not isinstance(top_k, numbers.Integral)
            or top_k < 1
        ):
            raise ValueError(
                f"top_k must be an integer >= 1 or None; got {top_k!r}. Pass e.g. "
                "top_k=10 for the 10 largest and 10 smallest influences per row."
            )
        if out is not None and (top_k is not None or aggregate):
            raise ValueError(
                "out= receives the full influence matrix; it cannot be combined "
                "with top_k or aggregate=True. Drop out= or those options."
            )
        path = None if out is None else check_output_path(out, overwrite)
        ctx, Xt, T = self._check_query(X, y)
        objective = self.objective_
        query = objective.make_query(ctx.view, Xt, T, **objective_params)
        if aggregate or not objective.per_row:
            query.aggregate = True
            if top_k is not None:
                return stream_influence(self.method_, ctx, query, TopK(top_k))
            if path is not None:
                # A set-level objective: one vector, written like the matrix.
                with memmap_output(path, (ctx.n_train,), overwrite=overwrite) as arr:
                    stream_influence(self.method_, ctx, query, Dense(arr[None]))
                return np.load(path, mmap_mode="r")
            return to_numpy(stream_influence(self.method_, ctx, query))[0]
        n_query, n_train = Xt.shape[0], ctx.n_train
        if path is not None:
            with memmap_output(path, (n_query, n_train), overwrite=overwrite) as arr:
                self._query_blocks(ctx, query, lambda sl: Dense(arr[sl]))
            return np.load(path, mmap_mode="r")
        if top_k is not None:
            parts = self._query_blocks(ctx, query, lambda sl: TopK(top_k))
            return sp.vstack(parts, format="csr")
        parts = self._query_blocks(ctx, query, lambda sl: Dense())
        return np.concatenate([to_numpy(p) for p in parts], axis=0)

    def _query_blocks(self, ctx, query, reducer_for):
        """Stream the query rows in blocks; one reducer (from
        ``reducer_for(rows)``) per block, results in order."""
        results = []
        n = query.X.shape[0]
        step = max(ctx.chunk, 1024)
        # A method whose scores of a row depend on the rows scored with it
        # (FastIF's shared candidates) sees the blocks as one query set.
        query_set = getattr(self.method_, "_query_set", None)
        if query_set is None or n <= step:
            scope = contextlib.nullcontext()
        else:
            scope = query_set(ctx, query, step)
        with scope:
            for start in range(0, n, step):
                sl = slice(start, min(n, start + step))
                sub = Query(
                    query.X[sl],
                    query.T[sl],
                    measure=query.measure,
                    weights=None if query.weights is None else query.weights[sl],
                    transform=query.transform,
                )
                results.append(
                    stream_influence(self.method_, ctx, sub, reducer_for(sl))
                )
        return results

    def features(self, X):
        """The model's penultimate representation of rows ``X``.

        The input of the model's last ``torch.nn.Linear`` layer (the raw
        input for a linear model), in the working ``dtype``: the space in
        which the last layer's influence is an inner product.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)

        Returns
        -------
        features : ndarray of shape (n_rows, n_penultimate)
        """
        check_is_fitted(self, "method_")
        _check_2d(X)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        view = self._context().view
        Xt = torch.tensor(np.asarray(X), dtype=view.dtype, device=view.device)
        return view.features(Xt).detach().cpu().numpy()

    def self_influence(self, X=None, y=None):
        """Self-influence ``g^T P g`` of rows (default: the training rows).

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features), default=None
            Rows to score; ``None`` returns ``self_influence_``.
        y : array-like of shape (n_rows,), default=None
            Their labels; ``None`` uses the model's predictions.

        Returns
        -------
        self_influence : ndarray of shape (n_rows,)
        """
        check_is_fitted(self, "method_")
        if X is None:
            if y is not None:
                raise ValueError("y was given without X; pass both or neither.")
            return self.self_influence_.copy()
        ctx, Xt, T = self._check_query(X, y)
        return to_numpy(self.method_.self_influence(ctx, Xt, T))

    def transform(self, X):
        """Influence of X's rows (at predicted labels) on every training row.

        Returns
        -------
        Xt : ndarray of shape (n_rows, n_train) or sparse matrix
            Dense, or with ``top_k`` set the CSR matrix of
            ``influence(X, top_k=top_k)``: per row the ``top_k`` largest and
            ``top_k`` smallest influences, streamed without the dense block
            (which pandas output, see :meth:`get_feature_names_out`, cannot
            hold).
        """
        return self.influence(X, top_k=self.top_k)

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then return the influence of X's rows on the training rows."""
        if y is None:
            raise ValueError("fit_transform needs y: influence is defined by a loss.")
        return self.fit(X, y, **fit_params).transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names of the columns of :meth:`transform`: one per training row.

        With ``set_output(transform="pandas")`` (also set on a ``Pipeline``)
        :meth:`transform` returns a DataFrame with these columns and the
        query rows' index.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored: the columns are the training rows, not the features.

        Returns
        -------
        feature_names_out : ndarray of str
            ``"train_row0"``, ``"train_row1"``, ...
        """
        check_is_fitted(self, "method_")
        return np.asarray([f"train_row{j}" for j in range(self.n_train_)], dtype=object)

    # ----------------------------------------------------------- delegation
    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predictions of ``estimator_``."""
        check_is_fitted(self, "estimator_")
        _check_2d(X)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._adapter.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of ``estimator_``."""
        check_is_fitted(self, "estimator_")
        _check_2d(X)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._adapter.predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of ``estimator_``."""
        check_is_fitted(self, "estimator_")
        _check_2d(X)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._adapter.decision_function(X)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers) or R^2 (regressors) of ``estimator_``."""
        pred = self.predict(X)
        if self._adapter.task == "classification":
            return accuracy_score(y, pred, sample_weight=sample_weight)
        return r2_score(y, pred, sample_weight=sample_weight)

"""NoisyLabelFilter: drop rows whose labels look wrong, judged by influence."""

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from tqdm.auto import tqdm

from ..exceptions import SkinfluenceWarning, UnsupportedEstimatorError
from ..models import task_of, unwrap
from ._base import (
    FinalEstimatorMixin,
    ResamplerMixin,
    check_row_metadata,
    protect_classes,
    shuffled_cv,
)
from ._noise_signals import (
    SIGNALS,
    VOTES,
    confident_joint_count,
    fit_sharpness,
    influence_vote,
    label_error_posterior,
    neighbor_vote,
    noise_transition,
    percentile_rank,
    predicted_proba,
    sharpen,
)
from ._scorer import (
    ENGINE_PARAMETER_CONSTRAINTS,
    InfluenceScorer,
    _check_2d,
    warn_if_unscaled,
)

__all__ = ["NoisyLabelFilter"]


def _warn_if_one_class_flagged(flag, y_idx, labels):
    """Warn when most rows are flagged, or when a class loses far more of its
    rows than the data as a whole (over 30%, and over twice the overall
    share): the sign of a detector that cannot separate the classes, or of
    clean but imbalanced or overlapping classes, rather than of label noise,
    which spreads over the classes."""
    overall = flag.mean()
    if overall > 0.5:
        warnings.warn(
            f"{int(flag.sum())} of {len(flag)} rows are flagged ({overall:.0%}): the "
            "held-out models get most labels wrong, which says more about the "
            "detector (too little data, features that do not predict the labels, "
            "or an unsuited estimator) than about label noise. Check the detector "
            "before dropping; contamination='confident_joint' or a float flags fewer.",
            SkinfluenceWarning,
            stacklevel=4,
        )
        return
    counts = np.bincount(y_idx, minlength=len(labels))
    shares = np.bincount(y_idx, weights=flag, minlength=len(labels)) / counts
    worst = int(np.argmax(shares))
    if shares[worst] > max(0.3, 2 * overall):
        warnings.warn(
            f"{int(round(shares[worst] * counts[worst]))} of the {counts[worst]} rows "
            f"of class {labels[worst : worst + 1].tolist()[0]!r} are flagged "
            f"({shares[worst]:.0%}, against {overall:.0%} of all rows): the held-out "
            "models prefer another class for much of it, as they do for a minority "
            "class or classes that overlap, even with clean labels. Check these rows "
            "before dropping them; contamination='confident_joint' (per-class "
            "thresholds) or a float flags fewer.",
            SkinfluenceWarning,
            stacklevel=4,
        )


class NoisyLabelFilter(
    FinalEstimatorMixin, ResamplerMixin, MetaEstimatorMixin, BaseEstimator
):
    """Find and drop mislabeled rows, judged by models that did not train on them.

    The detector is cross-fitted: the rows are split into ``cv`` stratified
    folds, and every row is judged by a copy of ``estimator`` fitted (through
    :class:`InfluenceScorer`) on the *other* folds, so a flipped label cannot
    have been memorised by the model that judges it. For each held-out row
    the fold model gives these signals (``signals``):

    - ``"proba"``: the model's probability of the row's given label. For the
      output layer's bias this is the cross-fitted self-influence itself:
      the bias gradient of a held-out row is ``p - e_y``, whose size grows as
      the probability of the given label falls.
    - ``"influence"``: an influence vote -- which label do the training rows
      that would most help it support? For every candidate label ``c`` of a
      held-out row ``i`` the fold scorer gives the influence
      ``I_c(i, j) = g_c(i)^T P g_j`` of each of its training rows ``j`` on
      the loss of ``(x_i, c)`` (``method`` over ``parameters``), and the
      self-influences ``g_c(i)^T P g_c(i)`` and ``g_j^T P g_j``. The
      normalised influence

      ``rho_c(i, j) = I_c(i, j) / sqrt(g_c(i)^T P g_c(i) * g_j^T P g_j)``

      is the cosine between the two gradients in the metric ``P``; without
      the normalisation the vote would follow the query's loss (large for
      every wrong label) and the training rows the model fits worst, which
      include the other flipped rows. The support of label ``c`` is the mean
      of the ``n_neighbors`` largest ``rho_c(i, j)``, and the vote is
      ``softmax_c(support_c / temperature)``. With the default TracIn on the
      last layer, ``rho`` factorises into the cosine of the penultimate
      activations ``[a_i, 1]`` times the cosine of the output residuals
      ``p_i - e_c`` and ``p_j - e_{y_j}``: the most helpful rows are similar
      inputs whose own label pulls the prediction the way label ``c`` does.
    - ``"neighbors"``: the distance-weighted vote of the row's nearest
      training rows in the model's penultimate feature space.
    - ``"input_neighbors"``: the same vote in the input space, which keeps
      the judgement anchored when the model's features are poor.
    - ``"self_influence"``: the held-out row's self-influence ``g^T P g``
      under ``method`` over ``parameters``.

    Each probability signal is averaged over the folds' models and repeats.
    The votes are then sharpened to the data (``sharpen_votes``): a vote
    ``V`` becomes ``V**a`` renormalised (after mixing in a 1e-3 uniform
    floor), with the power ``a`` in {1/4, 1/2, ..., 16} whose vote has the
    lowest Brier score against the given labels -- for the influence vote
    this fits its temperature (``temperature / a``), for the neighbour votes
    how much a split neighbourhood counts. A vote sharper or softer than the
    data supports would otherwise outweigh or vanish beside the model's own
    ``"proba"``, which is used as it is. The signals are averaged into
    ``P``. The noise score reads ``P`` two ways, mixed by
    ``posterior_weight`` (by default a quarter of the second, three
    quarters of the first):

    - the *margin* by which the most probable other class beats the given
      label, ``(1 + max_{c != y} P[row, c] - P[row, y]) / 2``: a row flipped
      between two confusable classes has most of its probability on one
      other class, whereas a correctly labelled but ambiguous row spreads it
      over several;
    - the *noise-aware posterior* that the given label is wrong,
      ``sum_{j != y} P[row, j] T[j, y] / sum_j P[row, j] T[j, y]``, with
      ``T[j, c]`` the estimated probability that a row of true class ``j``
      is labelled ``c`` (``noise_transition_``): the confident joint [2]_ of
      ``P`` and the given labels, each given label's row calibrated to its
      number of rows, one pseudo-row added to every cell, normalised over
      the given labels. Under symmetric flips it ranks like
      ``1 - P[row, y]``; under class-conditional flips it weighs each other
      class by how often that class is mislabelled as ``y``.

    Both are in [0, 1], and so is the score. The mix was chosen on 17
    problems off the benchmarks (iris, ``make_classification`` with 2, 3, 6
    and 10 classes, ``make_blobs``, ``make_gaussian_quantiles``; 150 to 2000
    rows; symmetric, pairs, confusion-matrix and instance-dependent flips of
    10-25%; seeds 0 and 1), scoring the same ``P`` each way. Mean average
    precision: margin 0.841, ``1 - P[row, y]`` 0.822, posterior 0.837,
    weight 0.1 0.845, 0.25 0.846, 0.5 0.845. From the margin to the
    default: symmetric flips 0.916 to 0.924, pairs 0.810 to 0.823,
    confusion-matrix 0.917 to 0.928, instance-dependent 0.731 to 0.718;
    better on 14 of the 17 problems, worst -0.052. The posterior alone loses
    most on instance-dependent flips (0.661): where the detector fits the
    classes poorly, the confident joint takes its confusions for label
    noise, which the margin's share of the score bounds. On 12 subsamples of
    150 to 450 rows the default went from 0.806 to 0.813 (better on 10).
    On the cells of the package's noisy-label benchmark, measured after the
    choice, the change per cell was -0.034 (instance-dependent flips, still
    0.108 above the best other detector there) to +0.012 (symmetric 10% on
    synthetic data; +0.011 on digits pairs). Measured the same way and
    rejected: per-class calibrated probabilities (each column of ``P``
    divided by its class's mean over its own rows before the margin; 0.839
    against the margin's 0.841), the posterior of forward-corrected
    probabilities (``P`` times the inverse of ``T``; 0.842, but -0.31 on
    one problem), a second cross-fitting whose fold models leave out the
    rows the first one flags (worse on 8 of 10 problems at seed 0), and 5
    repeats instead of 3 (0.849 against 0.846 on the 17 problems, 0.801
    against 0.798 on the 12 subsamples over 4 seeds, -0.001 to +0.006 per
    benchmark cell, for 5/3 of the time). Changes to the detector's ``P``
    at about the same cost were measured the same way (default score; 17
    problems, seeds 0 and 1, default 0.846; 12 subsamples over 4 seeds,
    default 0.798) and rejected: adding the ``"neighbors"`` vote (0.842,
    -0.054 on one problem), ``n_neighbors=20`` (0.844; 0.794), 10 folds and
    2 repeats (0.839, -0.09 on iris), weight decay 3e-3, 1e-2 and 3e-2 in
    the three repeats (0.843), weight decay 3e-3 (0.852, but worse on 13 of
    the 17), and 128 hidden units instead of 64 (0.851, better on 12 of the
    17; 0.801 on the subsamples). The wider net, like 40 epochs below, lost
    on the real data of the benchmark, measured after: wine's symmetric 10%
    and confusion-matrix cells 0.996 to 0.990 and 0.976 to 0.969, breast
    cancer and digits 0 to -0.002. Two more were measured on a second
    spread (``benchmarks/detector_spread.py``: 17 other problems, seeds 0
    to 3, default 0.8135) and rejected: the held-out probabilities averaged
    over each fold net's snapshots after epochs 10, 12, ..., 20 (0.8124;
    on the benchmark wine's confusion-matrix cell 0.976 to 0.982, the
    other digits and wine cells 0 to +0.003), and the three votes mixed
    with simplex weights fitted by Brier score against the given labels
    instead of equally (0.8161, but -0.033 and -0.044 on two pair-flip
    problems and, on the benchmark, breast cancer's symmetric 10% cell
    0.968 to 0.951): a fit to the given labels rewards the signal that has
    learnt their systematic flips.
    The sharpening of the votes was chosen before, the same way, with the
    margin as the score: on the same 17 problems the mean average precision
    went from 0.829 to 0.841 (0.783 to 0.810 on pair
    flips, 0.912 to 0.917 on confusion-matrix flips, 0.713 to 0.731 on
    instance-dependent flips, 0.918 to 0.916 on symmetric flips; changes
    -0.009 to +0.114 per problem, the gains largest where the detector MLP
    fits the classes worst). On 12 subsamples of 150 to 450 rows it went
    from 0.810 to 0.806 (-0.027 to +0.014): with so few rows the fitted power is
    less sure. On the cells of the package's noisy-label benchmark the
    change per cell was -0.002 to +0.045. Training the default detector for
    40 epochs instead of 20 was measured with it and rejected: better off
    the benchmarks (0.819 to 0.839 on the 17 problems at seed 0) but worse by
    0.005 to 0.013 on wine and breast_cancer. When ``"self_influence"`` is
    used, the score is the mean of the signals' percentile ranks. With
    ``cv=None`` every row is judged in-sample by one model fitted on all
    rows (the classic self-influence detector; the influence vote then
    leaves each row's influence on itself out).

    Parameters
    ----------
    estimator : estimator, torch.nn.Module or None, default=None
        The differentiable detector model (see :class:`InfluenceScorer` for
        the supported ones). ``None`` is the package's small skorch MLP,
        trained for 20 epochs with weight decay 1e-2 (short, strongly
        regularised training is what keeps flipped labels unlearnt). It
        sees the features as given: standardise them first (a warning says
        when a column is far off the unit scale).
    method : str or method object, default="tracin"
        Influence method of the fold scorers: the ``P`` of the
        ``"influence"`` vote and of the ``"self_influence"`` signal.
    contamination : "auto", "confident_joint" or float in (0, 0.5], \
            default="auto"
        How many rows are flagged. A float flags that fraction of rows with
        the highest noise scores. ``"auto"`` flags the rows whose given label
        is *not* the most probable class under the cross-fitted ``P``: the
        Bayes decision of the held-out models, so the number flagged follows
        the data rather than a fixed fraction. These are exactly the rows of
        margin above 1/2; the noise score also weighs the posterior, so a
        flagged row may rank below an unflagged one (with
        ``posterior_weight=0`` the flagged rows are the top of the
        ranking). ``"confident_joint"`` flags the rows of highest noise
        score, as many as confident learning [2]_ counts off the diagonal of
        the confident joint of ``P`` and the given labels: a row counts
        when, among the classes whose probability reaches that class's mean
        probability over its own labelled rows, the most probable is not its
        given label. It estimates the number of
        wrong labels, so its flags are more precise than ``"auto"``'s where
        classes overlap, and miss more.
    cv : int, cross-validation generator or None, default=5
        Folds of the cross-fitting (stratified, shuffled with
        ``random_state``); ``None`` judges rows in-sample.
    n_repeats : int, default=3
        Repetitions of the cross-fitting with fresh folds and seeds; the
        signals are averaged. Three repeats cost three times one and rank
        the rows more steadily; use 1 for speed, more where the fits are
        cheap: on ``benchmarks/detector_spread.py`` (seeds 0-3) the mean
        average precision was 0.8135 with 3 repeats, 0.8164 with 5 (better
        on 15 of the 17 problems) and 0.8190 with 10, for 1.9 and 3.6 times
        the time.
    signals : list of {"proba", "influence", "neighbors", "input_neighbors", \
            "self_influence"}, default=("proba", "influence", "input_neighbors")
        Signals combined into the noise score (see above); by default the
        influence vote takes the place of the penultimate-space
        ``"neighbors"`` vote.
    n_neighbors : int, default=10
        Training rows of the ``"influence"`` support and neighbours of the
        ``"neighbors"`` and ``"input_neighbors"`` votes.
    temperature : float > 0, default=0.1
        Softmax temperature of the ``"influence"`` vote (supports are
        cosines, in [-1, 1]); smaller is a harder vote.
    sharpen_votes : bool, default=True
        Fit each vote's sharpness to the given labels before averaging (see
        above); ``False`` averages the votes as they are.
    posterior_weight : float in [0, 1], default=0.25
        Share of the noise-aware posterior in the noise score, the rest
        being the margin (see above): 0 ranks by the margin alone, 1 by the
        posterior alone.
    final_estimator : estimator or None, default=None
        Fitted on the kept rows by :meth:`fit`; any estimator (it need not be
        differentiable). ``predict``, ``predict_proba``, ``score`` delegate.
    parameters : "all", "last" or list of str, default="last"
        Parameters of the ``"influence"`` and ``"self_influence"``
        gradients. The last layer's factorised gradients are cheap, and on
        digits its influence vote was as good as that of all parameters.
    device : str, default="auto"
    dtype : {"float32", "float64", "bfloat16"}, default="float32"
    batch_size : int or None, default=None
        Passed to the fold scorers.
    memory_budget : int or None, default=None
        Bytes of working memory, passed to the fold scorers; ``None`` is
        2 GiB, or half the available memory when that is less.
    random_state : int, RandomState or None, default=None
        Seeds the folds and the fold models' training (global seeds are
        left untouched).
    verbose : int, default=0
        Progress bars on stderr when > 0: one over the cross-fitted
        detectors, and their gradient passes.

    Attributes
    ----------
    noise_scores_ : ndarray of shape (n_samples,)
        Higher = more likely mislabeled.
    label_issues_ : ndarray of bool, shape (n_samples,)
        Rows flagged (and dropped).
    sample_indices_ : ndarray of int
        Indices of the kept rows.
    predicted_proba_ : ndarray of shape (n_samples, n_classes)
        The cross-fitted class probabilities ``P``.
    labels_ : ndarray
        Class labels, in the column order of ``predicted_proba_``.
    noise_transition_ : ndarray of shape (n_classes, n_classes)
        Estimated noise transition: entry ``[j, c]`` is the probability that
        a row of true class ``labels_[j]`` is labelled ``labels_[c]``; rows
        sum to 1.
    vote_sharpness_ : dict
        The power each vote was sharpened by, by signal name (empty when
        ``sharpen_votes=False`` or only ``"proba"`` is used).
    final_estimator_ : estimator
        ``final_estimator`` fitted on the kept rows (by :meth:`fit`).
    n_features_in_ : int

    See Also
    --------
    InfluenceScorer : the influence computations behind each fold.
    InfluentialSubsetSelector : keep the rows that help a validation objective.

    References
    ----------
    .. [1] Pruthi, Liu, Kale, Sundararajan. "Estimating Training Data
       Influence by Tracing Gradient Descent." NeurIPS 2020.
    .. [2] Northcutt, Jiang, Chuang. "Confident Learning: Estimating
       Uncertainty in Dataset Labels." JAIR 2021.
    .. [3] Barshan, Brunet, Dziugaite. "RelatIF: Identifying Explanatory
       Training Examples via Relative Influence." AISTATS 2020 (influence
       normalised by the training row's self-influence).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skinfluence import NoisyLabelFilter
    >>> from skinfluence.datasets import load_noisy
    >>> data = load_noisy("wine", rate=0.1, random_state=0)
    >>> filt = NoisyLabelFilter(LogisticRegression(C=0.1), random_state=0)
    >>> X_clean, y_clean = filt.fit_resample(data.data, data.target)
    >>> found = filt.label_issues_ & data.is_noisy
    >>> int(found.sum()), int(data.is_noisy.sum())
    (18, 18)
    """

    _parameter_constraints = {
        "estimator": InfluenceScorer._parameter_constraints["estimator"],
        "method": InfluenceScorer._parameter_constraints["method"],
        "contamination": [
            StrOptions({"auto", "confident_joint"}),
            Interval(numbers.Real, 0, 0.5, closed="right"),
        ],
        "cv": ["cv_object"],
        "n_repeats": [Interval(numbers.Integral, 1, None, closed="left")],
        "signals": [list, tuple],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "sharpen_votes": ["boolean"],
        "posterior_weight": [Interval(numbers.Real, 0, 1, closed="both")],
        "final_estimator": [None, HasMethods(["fit"])],
        **ENGINE_PARAMETER_CONSTRAINTS,
    }

    def __init__(
        self,
        estimator=None,
        *,
        method="tracin",
        contamination="auto",
        cv=5,
        n_repeats=3,
        signals=("proba", "influence", "input_neighbors"),
        n_neighbors=10,
        temperature=0.1,
        sharpen_votes=True,
        posterior_weight=0.25,
        final_estimator=None,
        parameters="last",
        device="auto",
        dtype="float32",
        batch_size=None,
        memory_budget=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.method = method
        self.contamination = contamination
        self.cv = cv
        self.n_repeats = n_repeats
        self.signals = signals
        self.n_neighbors = n_neighbors
        self.temperature = temperature
        self.sharpen_votes = sharpen_votes
        self.posterior_weight = posterior_weight
        self.final_estimator = final_estimator
        self.parameters = parameters
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.memory_budget = memory_budget
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None, sensitive_features=None, **fit_params):
        """Flag mislabeled rows, then fit ``final_estimator`` on the rest.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Resampled with the rows and passed to ``final_estimator.fit``.
        sensitive_features : array-like of shape (n_samples,), default=None
            Per-row metadata; checked and resampled with the rows (the filter
            itself does not use it).
        **fit_params : dict
            Other per-row or global parameters of ``final_estimator.fit``.

        Returns
        -------
        self : NoisyLabelFilter
        """
        indices = self._fit_resample(
            X, y, sample_weight=sample_weight, sensitive_features=sensitive_features
        )
        self._fit_final(X, y, indices, sample_weight, None, fit_params)
        return self

    def _fit_resample(self, X, y, sample_weight=None, sensitive_features=None):
        self._check_method()
        if task_of(self.estimator) == "regression":
            raise UnsupportedEstimatorError(
                f"estimator={type(unwrap(self.estimator)).__name__} is a regressor, "
                "but finding mislabeled rows needs a classifier that gives class "
                "probabilities; pass a classifier (e.g. LogisticRegression()) or "
                "None for the default network."
            )
        signals = list(self.signals)
        bad = [s for s in signals if s not in SIGNALS] or (not signals and ["(empty)"])
        if bad:
            raise ValueError(
                f"signals={self.signals!r} contains {bad}; choose a non-empty subset "
                f"of {sorted(SIGNALS)}."
            )
        _check_2d(X, y)
        Xv, yv = validate_data(
            self, X, y, reset=True, dtype=[np.float64, np.float32], ensure_min_samples=2
        )
        check_classification_targets(yv)
        if self.estimator is None:
            warn_if_unscaled(Xv, type(self).__name__)
        if isinstance(self.estimator, FrozenEstimator) and self.cv is not None:
            warnings.warn(
                "estimator is a FrozenEstimator, which is not refitted on each fold: "
                "every row is judged in-sample by the one fitted model, whose "
                "training may have memorised wrong labels. Pass the unfitted "
                "estimator to cross-fit, or cv=None to judge in-sample knowingly.",
                SkinfluenceWarning,
                stacklevel=4,
            )
        n = len(yv)
        check_row_metadata("sample_weight", sample_weight, n)
        check_row_metadata("sensitive_features", sensitive_features, n)
        labels, y_idx = np.unique(yv, return_inverse=True)
        if len(labels) < 2:
            raise ValueError(
                f"y has only one class ({labels[:1].tolist()[0]!r}); finding "
                "mislabeled rows needs at least two classes."
            )
        self.labels_ = labels
        P, extra = self._cross_fit(Xv, y_idx, signals)
        self.predicted_proba_ = P
        rows = np.arange(n)
        others = P.copy()
        others[rows, y_idx] = -np.inf
        margin = (1.0 + others.max(axis=1) - P[rows, y_idx]) / 2
        self.noise_transition_ = noise_transition(P, y_idx)
        vote_score = margin
        if self.posterior_weight > 0:
            posterior = label_error_posterior(P, y_idx, self.noise_transition_)
            w = float(self.posterior_weight)
            vote_score = (1.0 - w) * margin + w * posterior
        if extra is None:
            scores = vote_score
        else:
            parts = [extra]
            if VOTES & set(signals):
                parts.append(vote_score)
            scores = np.mean([percentile_rank(p) for p in parts], axis=0)
        self.noise_scores_ = scores

        if self.contamination == "auto":
            flag = others.max(axis=1) > P[rows, y_idx]
        else:
            if self.contamination == "confident_joint":
                k = confident_joint_count(P, y_idx)
            else:
                k = int(round(self.contamination * n))
            flag = np.zeros(n, dtype=bool)
            if k:
                flag[np.argsort(-scores, kind="stable")[:k]] = True
        if flag.all():
            warnings.warn(
                "Every row would be flagged as mislabeled; refusing to drop them all "
                "and keeping the data unchanged. The detector cannot separate the "
                "labels: check that y matches X, or use a float contamination.",
                SkinfluenceWarning,
                stacklevel=3,
            )
            flag[:] = False
        _warn_if_one_class_flagged(flag, y_idx, labels)
        flag = protect_classes(
            flag, y_idx, scores, "Dropping the flagged rows", labels=labels
        )
        self.label_issues_ = flag
        self.sample_indices_ = np.flatnonzero(~flag)
        return self.sample_indices_

    def _splits(self, X, y_idx, rng, warn=True):
        if self.cv is None:
            return None
        cv = self.cv
        if isinstance(cv, numbers.Integral):
            counts = np.bincount(y_idx)
            cv = min(int(cv), int(counts.min()))
            if cv < 2:
                if not warn:
                    return None
                warnings.warn(
                    f"A class has {counts.min()} row(s), too few for cv={self.cv}; "
                    "judging rows in-sample instead (cv=None).",
                    SkinfluenceWarning,
                    stacklevel=4,
                )
                return None
        return list(shuffled_cv(cv, y_idx, True, rng).split(X, y_idx))

    def _cross_fit(self, X, y_idx, signals):
        rng = check_random_state(self.random_state)
        n, k = len(y_idx), int(y_idx.max()) + 1
        # The probabilities also make the "auto" cut, so they are computed
        # whenever no other probability signal is asked for.
        votes = [s for s in signals if s in VOTES] or ["proba"]
        sums = {s: np.zeros((n, k)) for s in votes}
        counts = np.zeros(n)
        extra = np.zeros(n) if "self_influence" in signals else None
        bar = None
        for repeat in range(self.n_repeats):
            splits = self._splits(X, y_idx, rng, warn=repeat == 0)
            in_sample = splits is None
            if in_sample:
                splits = [(np.arange(n), np.arange(n))]
            if bar is None:
                bar = tqdm(
                    total=self.n_repeats * len(splits),
                    desc="cross-fitted detectors",
                    disable=not self.verbose,
                    leave=False,
                )
            for train, test in splits:
                bar.update()
                scorer = self._fit_scorer(X[train], y_idx[train], rng)
                cols = np.asarray(scorer.classes_, dtype=int)
                at = np.ix_(test, cols)
                counts[test] += 1
                if "proba" in sums:
                    sums["proba"][at] += predicted_proba(scorer, X[test])
                if "influence" in sums:
                    sums["influence"][at] += influence_vote(
                        scorer,
                        X[test],
                        self.n_neighbors,
                        self.temperature,
                        exclude=test if in_sample else None,
                    )
                if "neighbors" in sums:
                    sums["neighbors"][at] += neighbor_vote(
                        scorer.features(X[train]),
                        y_idx[train],
                        scorer.features(X[test]),
                        cols,
                        self.n_neighbors,
                        in_sample,
                    )
                if "input_neighbors" in sums:
                    sums["input_neighbors"][at] += neighbor_vote(
                        X[train],
                        y_idx[train],
                        X[test],
                        cols,
                        self.n_neighbors,
                        in_sample,
                    )
                if extra is not None:
                    extra[test] += scorer.self_influence(X[test], y_idx[test])
        bar.close()
        self.vote_sharpness_ = {}
        P = np.zeros((n, k))
        for name, total in sums.items():
            vote = total / np.maximum(counts, 1)[:, None]
            if self.sharpen_votes and name != "proba":
                power = fit_sharpness(vote, y_idx)
                self.vote_sharpness_[name] = power
                vote = sharpen(vote, power)
            P += vote
        return P / len(sums), extra

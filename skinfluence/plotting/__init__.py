"""Figures of influence results (matplotlib, the ``plot`` extra).

Every function draws on ``ax`` (a new figure when it is None) and returns
the axes, like the ``plot`` methods of scikit-learn's ``Display`` objects;
``LabelIssuesDisplay.from_estimator`` and ``RemovalCurveDisplay.from_estimator``
build a figure from a fitted estimator, as those objects do.
matplotlib is imported inside the functions, so ``import skinfluence`` never
needs it.
"""

from ._plots import (
    LabelIssuesDisplay,
    RemovalCurveDisplay,
    plot_influence_graph,
    plot_noise_scores,
    plot_precision_recall,
    plot_proponents_opponents,
    plot_removal_curve,
    removal_curve,
)

__all__ = [
    "LabelIssuesDisplay",
    "RemovalCurveDisplay",
    "plot_influence_graph",
    "plot_noise_scores",
    "plot_precision_recall",
    "plot_proponents_opponents",
    "plot_removal_curve",
    "removal_curve",
]

"""
Select the training rows that make a model fairer
=================================================

:func:`~skinfluence.datasets.make_fairness_problem` records biased labels:
some positive rows of one group were labelled negative. The
:class:`~skinfluence.InfluentialSubsetSelector` with
``objective="demographic_parity"`` scores every training row by its
influence on the validation rows' demographic-parity gap (the difference
between the groups' mean positive-class probability) and drops the rows
that widen it most.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skinfluence import InfluentialSubsetSelector
from skinfluence.datasets import make_fairness_problem

X, y, s = make_fairness_problem(n_samples=1200, random_state=0)
X_tr, X_te, y_tr, y_te, s_tr, s_te = train_test_split(X, y, s, random_state=0)


def gap(model):
    p = model.predict_proba(X_te)[:, 1]
    return p[s_te == 1].mean() - p[s_te == 0].mean()


fractions = [1.0, 0.95, 0.9, 0.85, 0.8]
gaps, accuracy = [], []
for fraction in fractions:
    if fraction == 1.0:
        model = LogisticRegression().fit(X_tr, y_tr)
    else:
        sel = InfluentialSubsetSelector(
            LogisticRegression(),
            objective="demographic_parity",
            fraction=fraction,
            final_estimator=LogisticRegression(),
            random_state=0,
        ).fit(X_tr, y_tr, sensitive_features=s_tr)
        model = sel.final_estimator_
    gaps.append(gap(model))
    accuracy.append(model.score(X_te, y_te))
    print(f"kept {fraction:.0%}: test gap {gaps[-1]:+.3f}, accuracy {accuracy[-1]:.3f}")

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
kept = 1 - np.array(fractions)
ax.plot(kept, np.abs(gaps), "o-", label="|demographic parity gap| (test)")
ax.plot(kept, accuracy, "s--", label="test accuracy")
ax.set_xlabel("fraction of training rows dropped")
ax.legend(frameon=False)
plt.show()

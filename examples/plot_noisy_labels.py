"""
Find and drop mislabeled rows
=============================

Flip 10% of the digits labels, let :class:`~skinfluence.NoisyLabelFilter`
rank the rows by how likely their label is wrong, and look at the ranking
three ways: the distribution of noise scores with the cut, the
precision-recall curve against the known flips, and a removal curve -- the
test accuracy of a model refitted after removing the rows of highest noise
score, against removing random rows.
"""

import matplotlib.pyplot as plt
from sklearn.linear_model import LogisticRegression

from skinfluence import NoisyLabelFilter
from skinfluence.datasets import load_noisy
from skinfluence.plotting import LabelIssuesDisplay, RemovalCurveDisplay

data = load_noisy("digits", rate=0.1, test_size=0.25, random_state=0)
X, y, truth = data.data, data.target, data.is_noisy

# %%
# A logistic regression judges every row from the folds that did not see it
# (one repeat of the 5-fold cross-fitting keeps the example quick).
filt = NoisyLabelFilter(LogisticRegression(max_iter=1000), n_repeats=1, random_state=0)
filt.fit(X, y)
flagged = filt.label_issues_
print(f"flagged {flagged.sum()} rows, {truth[flagged].sum()} of them truly flipped")

LabelIssuesDisplay.from_estimator(filt, is_noisy=truth)

# %%
# A logistic regression fitted on the noisy labels loses accuracy to them.
# Removing rows by noise score gives most of it back, up to about the share
# of flipped labels (10%); removing as many random rows does not.
display = RemovalCurveDisplay.from_estimator(
    LogisticRegression(max_iter=1000),
    X,
    y,
    filt.noise_scores_,
    X_test=data.data_test,
    y_test=data.target_test,
    fractions=(0.0, 0.05, 0.1, 0.15, 0.2),
    n_random=3,
    random_state=0,
    label="removed by noise score",
)
display.ax_.set_title("logistic regression on digits with 10% flipped labels")
plt.show()

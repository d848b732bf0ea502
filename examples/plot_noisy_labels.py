"""
Drop mislabeled rows before fitting
===================================

Flip 10% of the digits labels, let ``NoisyLabelFilter`` find them, and
compare a random forest fitted on the noisy and on the cleaned data, inside
one scikit-learn pipeline.
"""

import matplotlib.pyplot as plt
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import precision_recall_curve

from skinfluence import NoisyLabelFilter
from skinfluence.datasets import load_noisy

data = load_noisy("digits", rate=0.1, test_size=0.25, random_state=0)
X_train, y_train, noisy_train = data.data, data.target, data.is_noisy
X_test, y_test = data.data_test, data.target_test

clean = NoisyLabelFilter(final_estimator=RandomForestClassifier(random_state=0))
clean.fit(X_train, y_train)
plain = RandomForestClassifier(random_state=0).fit(X_train, y_train)
print(f"forest on noisy labels: {plain.score(X_test, y_test):.3f}")
print(f"forest after filtering: {clean.score(X_test, y_test):.3f}")

precision, recall, _ = precision_recall_curve(noisy_train, clean.noise_scores_)
plt.plot(recall, precision)
plt.xlabel("recall of flipped rows")
plt.ylabel("precision")
plt.title("NoisyLabelFilter on digits, 10% flipped")
plt.show()

"""
Explain a prediction by its proponents and opponents
====================================================

Fit a logistic regression on breast_cancer, score one test row against
every training row with the influence function, and plot the training rows
that helped (positive) and hurt (negative) that prediction most.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceScorer

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

scorer = InfluenceScorer(LogisticRegression(), method="influence_function")
scorer.fit(X_train, y_train)
scores = scorer.influence(X_test[:1], y_test[:1])[0]

order = np.argsort(scores)
top = np.concatenate([order[:10], order[-10:]])
fig, ax = plt.subplots(figsize=(6, 5))
ax.barh(range(len(top)), scores[top], color=np.where(scores[top] > 0, "C2", "C3"))
ax.set_yticks(range(len(top)), [f"row {j} (y={y_train[j]})" for j in top])
ax.set_xlabel("change of the test row's loss if the training row were removed")
ax.set_title("Opponents (red) and proponents (green)")
fig.tight_layout()
plt.show()

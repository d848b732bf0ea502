"""
Explain a prediction by its proponents and opponents
====================================================

Fit a logistic regression on the digits, score one test image against every
training row with the influence function, and show the training images that
helped (proponents) and hurt (opponents) its prediction most. Positive
influence means that removing the row would raise the test image's loss.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceScorer
from skinfluence.plotting import plot_proponents_opponents

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)

scorer = InfluenceScorer(
    LogisticRegression(C=0.1, max_iter=1000), method="influence_function"
)
scorer.fit(scaler.transform(X_train), y_train)
query = 3
scores = scorer.influence(
    scaler.transform(X_test[query : query + 1]), y_test[query : query + 1]
)[0]

# %%
# The raw pixels are drawn; the model saw them standardised.
fig, ax = plt.subplots(figsize=(9, 4.5))
plot_proponents_opponents(
    scores,
    y_train=y_train,
    X_train=X_train,
    image_shape=(8, 8),
    query=X_test[query],
    query_label=y_test[query],
    top=6,
    ax=ax,
)

# %%
# The same scores as a bar chart, for rows that are not images.
fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
plot_proponents_opponents(scores, y_train=y_train, top=6, ax=ax)
plt.show()

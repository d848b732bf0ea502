"""
Which training rows drive which predictions
===========================================

FastIF (Guo et al. 2021) draws queries and their most influential training
rows as a bipartite graph. Here a few iris test rows are joined to the three
training rows of largest influence on each: green edges help the
prediction, red edges hurt it, and thicker edges matter more.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skinfluence import InfluenceScorer
from skinfluence.plotting import plot_influence_graph

iris = load_iris()
X_train, X_test, y_train, y_test = train_test_split(
    StandardScaler().fit_transform(iris.data), iris.target, random_state=0
)
scorer = InfluenceScorer(LogisticRegression(), method="influence_function")
scorer.fit(X_train, y_train)

queries = np.array([0, 1, 2, 5, 8, 13])
infl = scorer.influence(X_test[queries], y_test[queries])
names = iris.target_names
fig, ax = plt.subplots(figsize=(7, 5))
plot_influence_graph(
    infl,
    top_k=3,
    query_names=[f"test {q} ({names[y_test[q]]})" for q in queries],
    train_names=[f"train {j} ({names[c]})" for j, c in enumerate(y_train)],
    ax=ax,
)
plt.show()

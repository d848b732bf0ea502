"""InfluenceFineTuner: correct a spurious-feature model's errors (FastIF §6).

A HANS-like problem built without downloads: ten *core* features carry the
label through a noisy linear teacher, and one *spurious* feature equals the
label's sign (plus noise) for a fraction ``agreement`` of the rows and its
opposite for the rest. A model trained where the spurious feature agrees on
90% of rows leans on it; on the *challenge* set it agrees on only 10% (it is
anti-correlated with the label), as HANS's examples defeat the lexical-overlap
heuristic of MultiNLI models.
"""

import numpy as np

N_CORE = 10


def make_spurious_problem(n, agreement, rng, *, core_strength=4.5, noise=0.5):
    """``(X, y)``: ``n`` rows with the spurious feature agreeing with the
    label on a fraction ``agreement`` of them (last column).

    The label is Bernoulli(sigmoid(core_strength * w . x)) of a fixed unit
    teacher ``w`` (the same for every call), so the core features alone reach
    only the Bayes accuracy of that noisy teacher.
    """
    teacher = np.random.default_rng(12345).normal(size=N_CORE)
    teacher /= np.linalg.norm(teacher)
    core = rng.normal(size=(n, N_CORE))
    logit = core_strength * (core @ teacher)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    sign = np.where(rng.random(n) < agreement, 1.0, -1.0)
    spurious = sign * (2 * y - 1) + noise * rng.normal(size=n)
    X = np.column_stack([core, spurious]).astype(np.float32)
    return X, y

"""The explained classifier's side of a fit: its checked probabilities and the training rows kept per component."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd

from .latent import Members

SUM_TOL = 1e-3
"""Tolerance of the probability checks: each row's sum within 1 +- SUM_TOL, no value below -SUM_TOL."""


def checked_proba(predict_proba: Any, X: pd.DataFrame, n_classes: Optional[int] = None, finite: Optional[str] = None) -> np.ndarray:
    """The classifier's probabilities ``(n, L)`` of raw rows ``X``, checked for shape and for being probabilities:
    non-negative, each row summing to 1 within :data:`SUM_TOL` (logits are refused with the hint to add a softmax).

    Parameters
    ----------
    predict_proba
        A callable ``DataFrame -> (n, L)``.
    X
        Raw rows.
    n_classes
        The number of columns expected (``None``: any, at least 2).
    finite
        What ``X`` is, for the message: non-finite probabilities are then an error; without it such rows keep them
        (and are never valid counterfactuals, :func:`lapace_plugin.rules.assigned_to`).
    """
    probs = np.array(predict_proba(X), dtype=np.float64)  # a copy: a DataFrame's values may be read-only
    if probs.ndim != 2 or probs.shape[0] != len(X) or probs.shape[1] < 2:
        raise ValueError(
            "predict_proba must return an array of shape (n_rows, n_classes>=2); got shape %s for %d rows" % (probs.shape, len(X))
        )
    if n_classes is not None and probs.shape[1] != n_classes:
        raise ValueError("predict_proba returned %d columns; the explainer was fitted with %d classes" % (probs.shape[1], n_classes))
    bad = ~np.isfinite(probs).all(1)
    if finite is not None and bad.any():
        raise ValueError(
            "predict_proba returned NaN or infinite probabilities for %d row(s) of %s (first: %s)"
            % (bad.sum(), finite, list(X.index[bad][:5]))
        )
    finite_rows = probs[~bad]
    sums = finite_rows.sum(1)
    if (finite_rows < -SUM_TOL).any() or (np.abs(sums - 1) > SUM_TOL).any():
        worst = int(np.argmax(np.abs(sums - 1) + (finite_rows < -SUM_TOL).any(1)))
        raise ValueError(
            "predict_proba must return probabilities (non-negative, each row summing to 1); got row %s summing to %.4g "
            "(values %s): if the model returns logits or scores, wrap it in a softmax"
            % (list(X.index[~bad])[worst], sums[worst], np.round(finite_rows[worst], 4).tolist()[:6])
        )
    return probs


def sample_members(
    x: np.ndarray, z: np.ndarray, component: np.ndarray, n_components: int, neighbours: int, random_state: Optional[int]
) -> Optional[Members]:
    """Up to ``neighbours`` distinct training rows per component (a seeded sample), with their latent means: the ends
    of ``path="neighbour"``; ``None`` when ``neighbours`` is 0."""
    if not neighbours:
        return None
    rng = np.random.RandomState(0 if random_state is None else random_state)
    keep = []
    for k in range(n_components):
        rows = np.flatnonzero(component == k)
        rows = rows[np.sort(np.unique(x[rows], axis=0, return_index=True)[1])]
        if len(rows) > neighbours:
            rows = np.sort(rng.choice(rows, neighbours, replace=False))
        keep.append(rows)
    rows = np.concatenate(keep)
    return Members(x[rows], z[rows].astype(np.float32), component[rows])

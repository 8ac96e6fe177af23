"""Closeness metrics: proximity (L1, L2), sparsity, features changed, diversity (SPEC section 4).

Every metric takes ``(schema, factuals, counterfactuals, ...)``; distances are :mod:`lapace_plugin.distance`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..constraints import CHANGE_TOL
from ..distance import feature_distances, pairwise, parts
from .frames import feature_frame, groups, matched_factuals, nan_mean


def _distances_to_factuals(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> np.ndarray:
    facts = matched_factuals(factuals, counterfactuals)
    return feature_distances(schema, feature_frame(facts, schema), feature_frame(counterfactuals, schema))


def proximity_l1(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean over counterfactuals of ``(1/d) * sum`` of per-feature distances to the factual (lower is closer)."""
    dist = _distances_to_factuals(schema, factuals, counterfactuals)
    return nan_mean(dist.sum(axis=1) / dist.shape[1])


def proximity_l2(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean over counterfactuals of ``(1/d) * ||per-feature distances||_2`` to the factual (lower is closer)."""
    dist = _distances_to_factuals(schema, factuals, counterfactuals)
    return nan_mean(np.sqrt((dist ** 2).sum(axis=1)) / dist.shape[1])


def changed(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> np.ndarray:
    """``(n_counterfactuals, d)``: which features each counterfactual changes (by more than ``CHANGE_TOL``)."""
    return _distances_to_factuals(schema, factuals, counterfactuals) > CHANGE_TOL


def sparsity(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean share of features that a counterfactual changes, in [0, 1] (lower is sparser)."""
    return nan_mean(changed(schema, factuals, counterfactuals).mean(axis=1))


def features_changed(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean number of features that a counterfactual changes (lower is sparser)."""
    return nan_mean(changed(schema, factuals, counterfactuals).sum(axis=1))


def diversity(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean pairwise ``(1/d)``-L1 distance among each query's counterfactuals (higher is more diverse).

    Averaged over the queries with at least two counterfactuals; NaN when none has two.
    """
    feats = feature_frame(counterfactuals, schema)
    per_query = []
    for rows in groups(counterfactuals).values():
        if len(rows) < 2:
            continue
        part = parts(schema, feats.iloc[rows])
        dist = pairwise(part, part) / len(schema.features)
        per_query.append(dist[np.triu_indices(len(rows), k=1)].mean())
    return nan_mean(np.asarray(per_query))

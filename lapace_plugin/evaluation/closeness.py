"""Closeness metrics: proximity (L1, L2), sparsity, features changed, diversity (SPEC section 4) and option diversity.

Every metric takes ``(schema, factuals, counterfactuals, ...)``; distances are :mod:`lapace_plugin.distance`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..distance import feature_distances, pairwise, parts
from ..options import jaccard_distance
from ..rules import changed_features
from .frames import feature_frame, groups, matched_factuals, nan_mean, query_ids


def _distances_to_factuals(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> np.ndarray:
    facts = matched_factuals(factuals, counterfactuals)
    return feature_distances(schema, feature_frame(facts, schema), feature_frame(counterfactuals, schema))


def proximity_l1_rows(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> np.ndarray:
    """``(1/d) * sum`` of per-feature distances from each counterfactual to its factual, ``(n_counterfactuals,)``."""
    dist = _distances_to_factuals(schema, factuals, counterfactuals)
    return dist.sum(axis=1) / dist.shape[1]


def proximity_l2_rows(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> np.ndarray:
    """``(1/d) * ||per-feature distances||_2`` from each counterfactual to its factual, ``(n_counterfactuals,)``."""
    dist = _distances_to_factuals(schema, factuals, counterfactuals)
    return np.sqrt((dist ** 2).sum(axis=1)) / dist.shape[1]


def proximity_l1(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean over counterfactuals of ``(1/d) * sum`` of per-feature distances to the factual (lower is closer)."""
    return nan_mean(proximity_l1_rows(schema, factuals, counterfactuals))


def proximity_l2(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean over counterfactuals of ``(1/d) * ||per-feature distances||_2`` to the factual (lower is closer)."""
    return nan_mean(proximity_l2_rows(schema, factuals, counterfactuals))


def changed(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> np.ndarray:
    """``(n_counterfactuals, d)``: which features each counterfactual changes (by more than ``CHANGE_TOL``)."""
    facts = matched_factuals(factuals, counterfactuals)
    return changed_features(schema, feature_frame(facts, schema), feature_frame(counterfactuals, schema))


def sparsity(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean share of features that a counterfactual changes, in [0, 1] (lower is sparser)."""
    return nan_mean(changed(schema, factuals, counterfactuals).mean(axis=1))


def features_changed(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean number of features that a counterfactual changes (lower is sparser)."""
    return nan_mean(changed(schema, factuals, counterfactuals).sum(axis=1))


def diversity_per_query(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> pd.Series:
    """Mean pairwise ``(1/d)``-L1 distance among each query's counterfactuals, indexed like ``factuals``.

    NaN for a query with fewer than two counterfactuals.
    """
    feats = feature_frame(counterfactuals, schema)
    values = pd.Series(np.nan, index=factuals.index, dtype=float, name="diversity")
    for query, rows in groups(counterfactuals).items():
        if len(rows) < 2:
            continue
        part = parts(schema, feats.iloc[rows])
        dist = pairwise(part, part) / len(schema.features)
        values[query] = dist[np.triu_indices(len(rows), k=1)].mean()
    return values


def diversity(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean pairwise ``(1/d)``-L1 distance among each query's counterfactuals (higher is more diverse).

    Averaged over the queries with at least two counterfactuals; NaN when none has two. ``factuals`` may be
    ``None`` (the queries are then those of the counterfactuals).
    """
    if factuals is None:
        factuals = pd.DataFrame(index=pd.Index(pd.unique(query_ids(counterfactuals))))
    per_query = diversity_per_query(schema, factuals, counterfactuals).dropna()
    return nan_mean(per_query.to_numpy())


def option_diversity_per_query(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> pd.Series:
    """Mean pairwise Jaccard distance between the changed-feature sets (:func:`changed`) of each query's
    counterfactuals, indexed like ``factuals``: 1 when no two options change a feature in common, 0 when all change the
    same features. NaN for a query with fewer than two counterfactuals."""
    sets = changed(schema, factuals, counterfactuals)
    values = pd.Series(np.nan, index=factuals.index, dtype=float, name="option_diversity")
    for query, rows in groups(counterfactuals).items():
        if len(rows) < 2:
            continue
        dist = jaccard_distance(sets[rows][:, None], sets[rows][None])
        values[query] = dist[np.triu_indices(len(rows), k=1)].mean()
    return values


def option_diversity(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean over queries with at least two counterfactuals of :func:`option_diversity_per_query` (higher: the options
    differ more in which features they change); NaN when none has two."""
    return nan_mean(option_diversity_per_query(schema, factuals, counterfactuals).dropna().to_numpy())

"""Validity, coverage and runtime (SPEC section 4). Every metric takes ``(schema, factuals, counterfactuals, ...)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..rules import assigned_to
from .frames import PredictProba, TargetClass, feature_frame, probabilities, query_ids, targets_per_row


def valid_rows(
    schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, predict_proba: PredictProba, target_class: TargetClass
) -> np.ndarray:
    """Whether the model assigns each counterfactual to its query's target class, ``(n_counterfactuals,)`` bool."""
    ids = query_ids(counterfactuals)
    if len(ids) == 0:
        return np.zeros(0, dtype=bool)
    targets = targets_per_row(target_class, ids, factuals)
    return assigned_to(probabilities(predict_proba, feature_frame(counterfactuals, schema)), targets)


def validity(
    schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, predict_proba: PredictProba, target_class: TargetClass
) -> float:
    """Share of counterfactuals that the model assigns to their query's target class; NaN without counterfactuals.

    ``target_class``: a class index, one per factual row, or a dict / Series keyed by query id.
    """
    valid = valid_rows(schema, factuals, counterfactuals, predict_proba, target_class)
    return float(np.mean(valid)) if len(valid) else float("nan")


def covered(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> np.ndarray:
    """Whether each query (row of ``factuals``) has at least one counterfactual, ``(n_factuals,)`` bool."""
    return np.asarray(factuals.index.isin(pd.Index(query_ids(counterfactuals))), dtype=bool)


def coverage(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Share of queries (rows of ``factuals``) with at least one counterfactual; NaN without factuals."""
    if len(factuals) == 0:
        return float("nan")
    return float(np.mean(covered(schema, factuals, counterfactuals)))


def runtime_per_query(seconds: float, n_queries: int) -> float:
    """Wall seconds per query: ``seconds / n_queries``."""
    if n_queries <= 0:
        raise ValueError("n_queries must be positive, got %r" % (n_queries,))
    return float(seconds) / n_queries

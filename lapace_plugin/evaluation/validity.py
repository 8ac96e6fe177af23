"""Validity, coverage and runtime (SPEC section 4). Every metric takes ``(schema, factuals, counterfactuals, ...)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .frames import PredictProba, TargetClass, feature_frame, predicted_class, query_ids, targets_per_row


def validity(
    schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, predict_proba: PredictProba, target_class: TargetClass
) -> float:
    """Share of counterfactuals that the model assigns to their query's target class; NaN without counterfactuals.

    ``target_class``: a class index, one per factual row, or a dict / Series keyed by query id.
    """
    ids = query_ids(counterfactuals)
    if len(ids) == 0:
        return float("nan")
    targets = targets_per_row(target_class, ids, factuals)
    return float(np.mean(predicted_class(predict_proba, feature_frame(counterfactuals, schema)) == targets))


def coverage(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Share of queries (rows of ``factuals``) with at least one counterfactual; NaN without factuals."""
    if len(factuals) == 0:
        return float("nan")
    return float(np.mean(factuals.index.isin(pd.Index(query_ids(counterfactuals)))))


def runtime_per_query(seconds: float, n_queries: int) -> float:
    """Wall seconds per query: ``seconds / n_queries``."""
    if n_queries <= 0:
        raise ValueError("n_queries must be positive, got %r" % (n_queries,))
    return float(seconds) / n_queries

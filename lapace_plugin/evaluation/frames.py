"""Frame helpers shared by the metrics: linking counterfactuals to their factuals, targets per row, predictions.

A metric gets a raw factual frame (its index holds the query ids) and a raw counterfactual frame that links each row
to its factual through a ``query`` column or an index level named ``query`` (LAPACE's
``Explanation.counterfactuals`` and the baselines' output both have the latter).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from ..classifier import checked_proba
from ..rules import check_unique_index
from ..targets import resolve_targets

QUERY = "query"
"""Name of the column or index level that links a counterfactual to its factual."""

PredictProba = Callable[[pd.DataFrame], Any]
TargetClass = Union[int, Sequence[int], Mapping[Any, int], pd.Series, np.ndarray]


def query_ids(counterfactuals: pd.DataFrame) -> np.ndarray:
    """Query id of every counterfactual row (the ``query`` column wins over an index level of that name)."""
    if QUERY in counterfactuals.columns:
        return counterfactuals[QUERY].to_numpy()
    if QUERY in list(counterfactuals.index.names):
        return counterfactuals.index.get_level_values(QUERY).to_numpy()
    raise ValueError(
        "counterfactuals must link each row to its factual through a 'query' column or an index "
        "level named 'query'; got columns %s and index names %s"
        % (list(counterfactuals.columns), list(counterfactuals.index.names))
    )


def feature_frame(frame: pd.DataFrame, schema: Any) -> pd.DataFrame:
    """``frame[schema.features]``; raises naming the missing features."""
    features = list(schema.features)
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError("column(s) %s are missing from the frame; expected the schema's features %s" % (missing, features))
    return frame[features]


def positions(index: pd.Index, ids: np.ndarray, what: str) -> np.ndarray:
    """Positions of ``ids`` in a unique ``index``; raises naming the ids that are absent."""
    check_unique_index(index, what)
    pos = index.get_indexer(pd.Index(ids))
    if (pos < 0).any():
        unknown = sorted({repr(v) for v in np.asarray(ids, dtype=object)[pos < 0]})
        raise ValueError("counterfactuals refer to queries that are not in the %s: %s" % (what, ", ".join(unknown[:10])))
    return pos


def matched_factuals(factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> pd.DataFrame:
    """The factual row of every counterfactual row, in counterfactual row order."""
    return factuals.iloc[positions(factuals.index, query_ids(counterfactuals), "factuals")]


def targets_per_row(target_class: TargetClass, ids: np.ndarray, factuals: Optional[pd.DataFrame] = None) -> np.ndarray:
    """Target class index for each counterfactual row (resolved by :func:`lapace_plugin.targets.resolve_targets`).

    ``target_class`` is one class index for every query; a dict or Series keyed by query id; or a sequence with one
    entry per factual row (``factuals`` then gives the query ids, in order).
    """
    keyed = isinstance(target_class, (Mapping, pd.Series))
    if not keyed and np.ndim(target_class) > 0 and factuals is None:
        raise ValueError(
            "a per-query target_class sequence needs `factuals` (one entry per factual row, in "
            "order); or pass a dict / Series keyed by query id"
        )
    index = pd.Index(pd.unique(ids)) if keyed or factuals is None else factuals.index
    per_query = resolve_targets(target_class, index=index)
    return per_query[positions(index, ids, "target_class keys")]


def probabilities(predict_proba: Any, frame: pd.DataFrame) -> np.ndarray:
    """Call a ``predict_proba`` callable (or an object with that method) and check it returns ``(n, L)``."""
    return checked_proba(getattr(predict_proba, "predict_proba", predict_proba), frame)


def predicted_class(predict_proba: Any, frame: pd.DataFrame) -> np.ndarray:
    """Class index (argmax of ``predict_proba``) of every row of ``frame``."""
    if len(frame) == 0:
        return np.zeros(0, dtype=int)
    return probabilities(predict_proba, frame).argmax(axis=1)


def nan_mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def groups(counterfactuals: pd.DataFrame) -> dict:
    """Row positions of each query's counterfactuals, in order of first appearance."""
    codes, uniques = pd.factorize(pd.Index(query_ids(counterfactuals)))
    return {uniques[c]: np.flatnonzero(codes == c) for c in range(len(uniques))}

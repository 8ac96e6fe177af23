"""The rules every module calls: when a counterfactual is valid, how raw values are rounded, when a feature counts
as changed, and which query index is acceptable.

Each rule is written once, here; the core, the adapters, the metrics and the apps call these functions instead of
restating them (``tests/test_architecture.py`` checks that no module defines them again).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd

from .distance import feature_distances

CHANGE_TOL = 1e-6
"""Share of a numeric feature's range within which a value counts as unchanged (or inside a bound)."""


def assigned_to(proba: np.ndarray, target: Any) -> np.ndarray:
    """Whether the classifier assigns each row to its target class: ``argmax(proba) == target``, ``(n,)`` bool.

    A row with a NaN or infinite probability is never assigned to any class.

    Parameters
    ----------
    proba
        Class probabilities, shape ``(n, L)``.
    target
        Target class index, one for all rows or one per row ``(n,)``.
    """
    proba = np.asarray(proba, dtype=float)
    if len(proba) == 0:
        return np.zeros(0, dtype=bool)
    return np.isfinite(proba).all(1) & (proba.argmax(1) == np.asarray(target))


def decimals_of(schema: Any, feature: str) -> Optional[int]:
    """Decimals a numeric feature's raw values are rounded to: 0 for integer features, else the schema's
    ``precision`` of the feature (``None``: the schema records none, values are not rounded)."""
    if feature in schema.integer:
        return 0
    precision = getattr(schema, "precision", {}) or {}
    return int(precision[feature]) if feature in precision else None


def round_to_precision(values: Any, schema: Any, feature: str, dtype: Any = None) -> np.ndarray:
    """A numeric feature's raw ``values`` rounded to the data's precision (:func:`decimals_of`), as ``dtype`` if given
    (an integer dtype only once rounded to units)."""
    out = np.asarray(values, dtype=float)
    decimals = decimals_of(schema, feature)
    if decimals is not None:
        out = np.round(out, decimals)
    if dtype is not None and (not pd.api.types.is_integer_dtype(dtype) or decimals == 0):
        out = out.astype(dtype)
    return out


def changed_features(schema: Any, before: pd.DataFrame, after: pd.DataFrame) -> np.ndarray:
    """Which features each row of ``after`` changes from the aligned row of ``before``, ``(n, d)`` bool in
    ``schema.features`` order: a numeric feature moved by more than :data:`CHANGE_TOL` of its range, a categorical
    one took another value."""
    return feature_distances(schema, before, after) > CHANGE_TOL


def repeated_labels(index: pd.Index, limit: int = 10) -> list:
    """Up to ``limit`` labels that ``index`` holds more than once, sorted (empty when its labels are unique)."""
    if index.is_unique:
        return []
    return sorted({v for v in index[index.duplicated()]}, key=str)[:limit]


def check_unique_index(index: pd.Index, what: str) -> None:
    """Raise ``ValueError`` when ``index`` (the labels identifying ``what``) is a MultiIndex or repeats labels."""
    if isinstance(index, pd.MultiIndex):
        raise ValueError("the %s' index is a MultiIndex; its labels identify them in the results: reset_index() first" % what)
    repeated = repeated_labels(index)
    if repeated:
        raise ValueError("the %s' index repeats label(s) %s; its labels identify them in the results" % (what, repeated))


def check_row_ids(ids: Any, what: str) -> None:
    """Raise ``ValueError`` when row ids (``what`` says where they come from, e.g. ``"id column 'app'"``) are null or
    repeated: each row's id identifies it in the results. ``ids``: an Index or array (rows named by position), or a
    Series whose index gives the rows' input positions."""
    ids = ids if isinstance(ids, pd.Series) else pd.Series(np.asarray(ids, dtype=object))
    null = ids.index[ids.isna().to_numpy()]
    if len(null):
        raise ValueError("%s holds no id (null) for %d row(s) at input position(s) %s; every row needs an id"
                         % (what, len(null), null[:10].tolist()))
    repeated = repeated_labels(pd.Index(ids))
    if repeated:
        raise ValueError("%s repeats id(s) %s; every row needs its own id" % (what, repeated))


__all__ = ["CHANGE_TOL", "assigned_to", "changed_features", "check_row_ids", "check_unique_index", "decimals_of",
           "repeated_labels", "round_to_precision"]

"""Target class resolution: the one place that turns a user's ``target_class`` into a class index per query."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd


def resolve_targets(target_class: Any, predicted: np.ndarray, classes: Sequence[Any], index: Optional[pd.Index] = None) -> np.ndarray:
    """Class index (column of ``predict_proba``) per query.

    Parameters
    ----------
    target_class
        ``None`` (binary models: the class each query is not predicted as), one class index, or one per query (a
        Series is aligned on the queries' ``index`` and must hold every query's label).
    predicted
        Predicted class index per query, shape ``(n,)``.
    classes
        Labels of the probability columns (for error messages; their number is the number of classes).
    index
        The queries' index labels, to align a ``target_class`` Series on.

    Returns
    -------
    numpy.ndarray
        Integer class index per query, shape ``(n,)``.
    """
    n_classes = len(classes)
    if target_class is None:
        if n_classes != 2:
            raise ValueError(
                "target_class is required for a model with %d classes: pass a class index in 0..%d (classes %s)"
                % (n_classes, n_classes - 1, list(classes))
            )
        return 1 - predicted
    if isinstance(target_class, pd.Series):
        if index is None:
            raise ValueError("a target_class Series needs the queries' index to align on")
        missing = [label for label in index if label not in target_class.index]
        if missing:
            raise ValueError("target_class (a Series) has no entry for query label(s) %s" % missing[:10])
        target_class = target_class.loc[index].to_numpy()
    if isinstance(target_class, (bool, np.bool_)) or (np.ndim(target_class) and np.asarray(target_class).dtype == bool):
        raise ValueError("target_class must be a class index in 0..%d (classes %s), got %r" % (n_classes - 1, list(classes), target_class))
    values = np.asarray(target_class)
    if values.ndim == 0:
        values = np.full(len(predicted), values.item())
    if values.shape != predicted.shape:
        raise ValueError("target_class has %d entries for %d queries" % (len(values), len(predicted)))
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            "target_class must be a class index in 0..%d (classes %s), got %r" % (n_classes - 1, list(classes), target_class)
        )
    bad = sorted(set(int(v) for v in values if not 0 <= v < n_classes))
    if bad:
        raise ValueError(
            "impossible target class %s: the model has %d classes, indices 0..%d (classes %s)"
            % (bad, n_classes, n_classes - 1, list(classes))
        )
    return values.astype(int)

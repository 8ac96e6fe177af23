"""Target class resolution: the one place that turns a user's ``target_class`` into a class index per query."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def resolve_targets(target_class: Any, predicted: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Class index (column of ``predict_proba``) per query.

    Parameters
    ----------
    target_class
        ``None`` (binary models: the class each query is not predicted as), one class index, or one per query.
    predicted
        Predicted class index per query, shape ``(n,)``.
    classes
        Labels of the probability columns (for error messages; their number is the number of classes).

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

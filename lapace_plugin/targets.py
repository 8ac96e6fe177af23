"""Target class resolution: the one place that turns a user's ``target_class`` into a class index per query.

``Lapace.explain``, the baselines, the metrics (:func:`lapace_plugin.evaluation.frames.targets_per_row`) and the
adapters all call :func:`resolve_targets`, so ``None``, a dict and a Series mean the same everywhere.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .errors import InvalidParameterError


def resolve_targets(
    target_class: Any,
    predicted: Optional[np.ndarray] = None,
    classes: Optional[Sequence[Any]] = None,
    index: Optional[pd.Index] = None,
) -> np.ndarray:
    """Class index (column of ``predict_proba``) per query.

    Parameters
    ----------
    target_class
        ``None`` (binary models: the class each query is not predicted as), one class index, or one per query (a
        Series or a dict is keyed by the queries' ``index`` labels and must hold every query's label).
    predicted
        Predicted class index per query, shape ``(n,)``; ``None`` when unknown (then ``target_class`` is required).
    classes
        Labels of the probability columns (their number is the number of classes); ``None`` when unknown (indices
        are then not checked against it).
    index
        The queries' index labels, to align a ``target_class`` Series or dict on (and the number of queries when
        ``predicted`` is ``None``).

    Returns
    -------
    numpy.ndarray
        Integer class index per query, shape ``(n,)``.
    """
    if predicted is None and index is None:
        raise ValueError("resolve_targets needs the predicted classes or the queries' index")
    n = len(predicted) if predicted is not None else len(index)
    known = "" if classes is None else " in 0..%d (classes %s)" % (len(classes) - 1, list(classes))
    if target_class is None:
        if predicted is None or classes is None or len(classes) != 2:
            shown = "" if classes is None else " for a model with %d classes" % len(classes)
            raise InvalidParameterError("target_class is required%s: pass a class index%s, or one per query" % (shown, known))
        return 1 - np.asarray(predicted)
    if isinstance(target_class, Mapping):
        target_class = pd.Series(list(target_class.values()), index=list(target_class.keys()), dtype=object)
    if isinstance(target_class, pd.Series):
        if index is None:
            raise InvalidParameterError("a target_class Series or dict needs the queries' index to align on")
        missing = [label for label in index if label not in target_class.index]
        if missing:
            raise InvalidParameterError("target_class (a Series or dict) has no entry for query label(s) %s" % missing[:10])
        target_class = target_class.loc[index].tolist()
    if isinstance(target_class, (bool, np.bool_)) or (np.ndim(target_class) and np.asarray(target_class).dtype == bool):
        raise InvalidParameterError("target_class must be a class index%s, got %r" % (known, target_class))
    values = np.asarray(target_class)
    if values.ndim == 0:
        values = np.full(n, values.item())
    if values.shape != (n,):
        raise InvalidParameterError("target_class has %d entries for %d queries" % (len(values), n))
    if not np.issubdtype(values.dtype, np.integer):
        raise InvalidParameterError("target_class must be a class index%s, got %r" % (known, target_class))
    if classes is not None:
        bad = sorted(set(int(v) for v in values if not 0 <= v < len(classes)))
        if bad:
            raise InvalidParameterError(
                "impossible target class %s: the model has %d classes, indices 0..%d (classes %s)"
                % (bad, len(classes), len(classes) - 1, list(classes))
            )
    return values.astype(int)

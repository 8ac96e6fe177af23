"""The one distance between rows, used to rank counterfactuals, by the metrics and by the baselines.

A row is seen as two parts: its numeric features min-max scaled with the schema's ranges and its ordinal features'
levels scaled to [0, 1] (``i / (K - 1)``), ``cont (n, n_numeric)``, and the category index of each categorical
feature, ``codes (n, n_categorical)``. A numeric feature contributes ``|a - b|`` in scaled units (an ordinal one the
number of steps over ``K - 1``), a categorical one 0 (same) or 1 (different); ``d`` is the number of raw features.
:meth:`lapace_plugin.encoding.TabularEncoder.parts` gives the same two parts for encoded rows.
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np
import pandas as pd

Parts = Tuple[np.ndarray, np.ndarray]


def span(schema: Any, feature: str) -> float:
    """Width of a numeric feature's range (1 when the range is a single value)."""
    lo, hi = schema.ranges[feature]
    width = float(hi) - float(lo)
    return width if width > 0 else 1.0


def scaled(schema: Any, frame: pd.DataFrame) -> np.ndarray:
    """Numeric features min-max scaled with the schema's ranges (not clipped), then ordinal levels over ``K - 1``:
    ``(n, len(schema.continuous) + len(schema.ordinal))``."""
    cols = [
        (np.asarray(frame[f].to_numpy(), dtype=float) - float(schema.ranges[f][0])) / span(schema, f)
        for f in schema.continuous
    ]
    for f, cats in getattr(schema, "ordinal", {}).items():
        cols.append(_positions(f, cats, frame[f].to_numpy()) / max(1.0, len(cats) - 1.0))
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0))


def _positions(feature: str, cats: Any, values: np.ndarray) -> np.ndarray:
    found = np.asarray(pd.Categorical(values, categories=list(cats)).codes, dtype=int)
    if (found < 0).any():
        bad = sorted({repr(v) for v in values[found < 0]})
        raise ValueError("feature %r has value(s) %s that are not among its categories %s" % (feature, ", ".join(bad[:10]), list(cats)))
    return found


def codes(schema: Any, frame: pd.DataFrame) -> np.ndarray:
    """Position of each categorical value in the schema's categories, ``(n, len(schema.categorical))``.

    Raises ``ValueError`` naming the feature and the values that are not among its categories.
    """
    cols = [_positions(f, cats, frame[f].to_numpy()) for f, cats in schema.categorical.items()]
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0), dtype=int)


def parts(schema: Any, frame: pd.DataFrame) -> Parts:
    """``(scaled numeric features, category codes)`` of raw rows."""
    return scaled(schema, frame), codes(schema, frame)


def per_feature(a: Parts, b: Parts) -> np.ndarray:
    """Per-feature distances ``(..., n_numeric + n_categorical)`` between broadcastable parts."""
    return np.concatenate([np.abs(a[0] - b[0]), (a[1] != b[1]).astype(a[0].dtype)], axis=-1)


def mean_l1(a: Parts, b: Parts) -> np.ndarray:
    """``(1/d)``-L1 distance (proximity and diversity) between broadcastable parts."""
    d = per_feature(a, b)
    return d.sum(-1) / float(d.shape[-1])


def feature_distances(schema: Any, a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Per-feature distances ``(n, d)`` between row-aligned raw frames, columns in ``schema.features`` order."""
    if len(a) != len(b):
        raise ValueError("feature_distances needs frames of equal length; got %d and %d" % (len(a), len(b)))
    dist = per_feature(parts(schema, a), parts(schema, b))
    order = list(schema.continuous) + list(getattr(schema, "ordinal", {})) + list(schema.categorical)
    return dist[:, [order.index(f) for f in schema.features]]


def pairwise(a: Parts, b: Parts, norm: int = 1) -> np.ndarray:
    """All pairwise L1 (``norm=1``) or L2 (``norm=2``) norms of per-feature distances, ``(n_a, n_b)``; not divided by d."""
    from scipy.spatial.distance import cdist

    if norm not in (1, 2):
        raise ValueError("norm must be 1 or 2, got %r" % (norm,))
    (cont_a, codes_a), (cont_b, codes_b) = a, b
    out = np.zeros((len(cont_a), len(cont_b)), dtype=float)
    if len(cont_a) == 0 or len(cont_b) == 0:
        return out
    if cont_a.shape[1]:
        out += cdist(cont_a, cont_b, "cityblock" if norm == 1 else "sqeuclidean")
    if codes_a.shape[1]:  # categorical distances are 0/1, so their squares are themselves
        out += cdist(codes_a.astype(float), codes_b.astype(float), "hamming") * codes_a.shape[1]
    return out if norm == 1 else np.sqrt(out)


def embedded_mean_l1(schema: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The ``(1/d)``-L1 distance (:func:`mean_l1`) between rows of :func:`embed`'s space, ``(...,)``: numeric and
    ordinal columns in scaled units, half the L1 over each category's one-hot block (1 per changed category)."""
    diff = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    n = len(schema.continuous) + len(getattr(schema, "ordinal", {}))
    return (diff[..., :n].sum(-1) + 0.5 * diff[..., n:].sum(-1)) / len(schema.features)


def embed(schema: Any, frame: pd.DataFrame) -> np.ndarray:
    """Rows as points of one Euclidean space: scaled numeric features then a one-hot block per categorical feature.

    The space of the neighbour-based metrics (LOF, yNN): its L1 distance is twice this module's for categories.
    """
    cont, cats = parts(schema, frame)
    blocks = [cont] + [np.eye(len(c))[cats[:, j]] for j, c in enumerate(schema.categorical.values())]
    return np.column_stack(blocks) if blocks else np.zeros((len(frame), 0))

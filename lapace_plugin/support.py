"""Pairwise support: which pairs of values occur together in real rows.

A row's *states* are its categorical and ordinal values and, for every point-mass feature, whether it sits at the
mass (e.g. capital gain 0) or not. :class:`PairSupport` counts, for every pair of such features, how many training
rows hold each pair of states. A row holding a pair that (almost) never occurs together, such as relationship
"Husband" with sex "Female" or a capital gain and a capital loss both non-zero, is one no real person has: the
explainer rejects such candidates (``Lapace(min_pair_count=...)``) and the metric ``support_violations`` counts them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd


def state_features(schema: Any, masses: bool = True) -> List[str]:
    """The features whose values are states: categorical, ordinal and (``masses``) point-mass features, in schema
    order. The paper's decoder has no point-mass head, so its explainer judges categorical and ordinal pairs only."""
    return [f for f in schema.features if f in schema.categorical or f in schema.ordinal or (masses and f in schema.point_mass)]


def states(schema: Any, frame: pd.DataFrame, masses: bool = True) -> np.ndarray:
    """State code of every state feature of raw rows, ``(n, len(state_features(schema, masses)))`` int.

    Categorical and ordinal values map to their category position (-1 when unknown); a point-mass feature to 0 at
    the mass and 1 off it.
    """
    cols = []
    for f in state_features(schema, masses):
        if f in schema.point_mass:
            cols.append((np.asarray(frame[f].to_numpy(), dtype=float) != schema.point_mass[f]).astype(int))
        else:
            cats = schema.categorical[f] if f in schema.categorical else schema.ordinal[f]
            cols.append(np.asarray(pd.Categorical(frame[f].to_numpy(), categories=list(cats)).codes, dtype=int))
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0), dtype=int)


class PairSupport:
    """Counts of training rows per pair of states of every two state features.

    Parameters
    ----------
    schema
        The feature schema (:func:`state_features` picks the features).
    counts
        ``{(i, j): (K_i, K_j) int array}`` for state features ``i < j``, as built by :meth:`fit`.
    masses
        Whether point-mass features are states (:func:`state_features`).
    """

    def __init__(self, schema: Any, counts: Mapping[Tuple[int, int], np.ndarray], masses: bool = True) -> None:
        self.schema, self.masses = schema, masses
        self.features = state_features(schema, masses)
        self.counts: Dict[Tuple[int, int], np.ndarray] = dict(counts)

    @classmethod
    def fit(cls, schema: Any, frame: pd.DataFrame, masses: bool = True) -> "PairSupport":
        """Count the state pairs of the raw rows ``frame``."""
        codes = states(schema, frame, masses)
        sizes = [2 if f in schema.point_mass else len(schema.categorical.get(f) or schema.ordinal[f])
                 for f in state_features(schema, masses)]
        counts = {}
        for i in range(len(sizes)):
            for j in range(i + 1, len(sizes)):
                table = np.zeros((sizes[i], sizes[j]), dtype=np.int64)
                np.add.at(table, (codes[:, i], codes[:, j]), 1)
                counts[(i, j)] = table
        return cls(schema, counts, masses)

    def rare(self, codes: np.ndarray, min_count: int = 1, own: Any = None, exempt: Optional[Sequence[str]] = None) -> np.ndarray:
        """Per row of state ``codes`` (:func:`states`), whether it holds a pair of states that fewer than
        ``min_count`` training rows hold.

        With ``own`` (the row-aligned factuals' codes), a pair equal to the factual's own pair is accepted: a
        counterfactual may keep what the real person already has; ``exempt`` limits that to pairs of the features it
        names (default: every feature).
        """
        out = np.zeros(len(codes), dtype=bool)
        may = [exempt is None or f in exempt for f in self.features]
        for (i, j), table in self.counts.items():
            a, b = codes[:, i], codes[:, j]
            rare = table[np.maximum(a, 0), np.maximum(b, 0)] < min_count
            rare |= (a < 0) | (b < 0)
            if own is not None and may[i] and may[j]:
                rare &= ~((a == own[:, i]) & (b == own[:, j]))
            out |= rare
        return out

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """Plain arrays for saving: ``"support.i.j"`` -> counts."""
        return {"support.%d.%d" % key: table for key, table in self.counts.items()}

    @classmethod
    def from_arrays(cls, schema: Any, arrays: Mapping[str, np.ndarray], masses: bool = True) -> "PairSupport":
        """Inverse of :meth:`to_arrays`."""
        counts = {}
        for name, table in arrays.items():
            _, i, j = name.split(".")
            counts[(int(i), int(j))] = np.asarray(table, dtype=np.int64)
        return cls(schema, counts, masses)

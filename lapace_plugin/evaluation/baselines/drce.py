"""DRCE: diverse robust nearest-neighbour counterfactual explanations."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ...distance import pairwise
from ...schema import FeatureSchema
from .base import Baseline

_EPS = 1e-9

class DRCE(Baseline):
    """Diverse robust nearest-neighbour counterfactual explanations (our implementation).

    With ``d*`` the distance from the query to its nearest valid training row, the candidates are
    the valid training rows within ``(1 + alpha) d*`` of the query.  Taken by increasing distance,
    a candidate is kept when it lies at least ``(1 + beta) d*`` from every candidate already kept,
    until ``n_counterfactuals`` are kept.  The first one is NNCE's counterfactual.

    Parameters
    ----------
    schema, immutable
        See :class:`Baseline`.
    alpha
        Radius of the candidate ball, relative to ``d*``.
    beta
        Minimum separation of kept counterfactuals, relative to ``d*``.
    """

    name = "drce"

    def __init__(
        self,
        schema: Optional[FeatureSchema] = None,
        immutable: Union[None, str, Sequence[str]] = None,
        alpha: float = 0.5,
        beta: float = 0.25,
    ) -> None:
        super().__init__(schema=schema, immutable=immutable)
        self.alpha = alpha
        self.beta = beta

    def _generate(self, queries: pd.DataFrame, targets: np.ndarray, k: int) -> Tuple[pd.DataFrame, np.ndarray]:
        picked, owner = [], []
        for start, dist in self._candidate_distances(queries, targets):
            for i, row in enumerate(dist):
                q = start + i
                if not np.isfinite(row).any():
                    self.failures[queries.index[q]] = self._no_candidate_reason(targets[q])
                    continue
                idx = self._diverse(row, k)
                picked.append(idx)
                owner.append(np.full(len(idx), q))
        picked_all = np.concatenate(picked) if picked else np.zeros(0, dtype=int)
        return self.X_train_.iloc[picked_all], np.concatenate(owner) if owner else np.zeros(0, dtype=int)

    def _diverse(self, dist: np.ndarray, k: int) -> np.ndarray:
        """Greedy selection of up to ``k`` training rows for one query's distance row."""
        d_star = float(np.min(dist))
        ball = np.flatnonzero(dist <= (1 + self.alpha) * d_star + _EPS)
        order = ball[np.lexsort((ball, dist[ball]))]
        separation = (1 + self.beta) * d_star - _EPS
        n_features = len(self.schema_.features)
        kept = np.zeros(len(order), dtype=bool)
        nearest_kept = np.full(len(order), np.inf)
        for _ in range(k):
            free = np.flatnonzero(~kept & (nearest_kept >= separation))
            if len(free) == 0:
                break
            j = free[0]
            kept[j] = True
            new = order[j:j + 1]
            gap = pairwise((self._cont[new], self._codes[new]), (self._cont[order], self._codes[order]))[0]
            nearest_kept = np.minimum(nearest_kept, gap / n_features)
        return order[kept]

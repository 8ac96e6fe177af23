"""NNCE: the nearest training row the model assigns to the target class."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import pandas as pd

from .base import Baseline


class NNCE(Baseline):
    """Nearest-neighbour counterfactual explanation (our implementation).

    The counterfactual is the training row nearest to the query, in the ``(1/d)``-L1 distance, that
    the model assigns to the target class; ``n_counterfactuals=k`` returns the ``k`` nearest such
    distinct rows.  See :class:`Baseline` for the parameters.
    """

    name = "nnce"

    def _generate(self, queries: pd.DataFrame, targets: np.ndarray, k: int) -> Tuple[pd.DataFrame, np.ndarray]:
        picked, owner = [], []
        for start, dist in self._candidate_distances(queries, targets):
            for i, row in enumerate(dist):
                q = start + i
                idx = self._sorted_candidates(row, limit=k)
                if len(idx) == 0:
                    self.failures[queries.index[q]] = self._no_candidate_reason(targets[q])
                picked.append(idx)
                owner.append(np.full(len(idx), q))
        picked_all = np.concatenate(picked) if picked else np.zeros(0, dtype=int)
        return self.X_train_.iloc[picked_all], np.concatenate(owner) if owner else np.zeros(0, dtype=int)

"""Typical plans (``max_lof``): the local outlier factor of a counterfactual among training rows of its target class.

``revert`` gives a change back whenever the plan stays valid. A plan that keeps some of the person's values and takes
the rest from the target class can then sit between the classes, unlike any real row of either: on german (the study's
random forest, 5 seeds) the reverted robust choice has a median local outlier factor of 1.07 where RobXCE's near-real
rows have 1.04. With ``max_lof``, the revert gives a change back only if the plan's local outlier factor (Breunig et
al., 2000; 10 neighbours) among the target class's kept training rows stays at most ``max_lof``: about 1 is as dense
as its neighbours, larger is an outlier. The rows are the explainer's ``neighbours`` (rows the classifier assigns to
the class, up to ``neighbours`` per component), encoded as the explainer encodes them (scaled numbers, one-hot
categories); the factor is computed in that space, so it is close to, not the same as, the study's LOF metric, which
embeds every training row the model assigns to the class.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
from threadpoolctl import threadpool_limits

N_NEIGHBORS = 10
"""Neighbours of the local outlier factor (the study's LOF metric uses 10 too)."""


class OutlierFactor:
    """Per target class, scikit-learn's ``LocalOutlierFactor(novelty=True)`` on the class's distinct kept training
    rows, fitted on first use and kept for the later calls of the same fitted explainer (not saved with it).

    ``members`` are the explainer's kept rows (:class:`lapace_plugin.latent.Members`); ``m`` its components per class.
    """

    def __init__(self) -> None:
        self._models: Dict[int, Any] = {}

    def __call__(self, members: Any, m: int, points: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Local outlier factor ``(N,)`` of encoded ``points (N, D)`` among the kept rows of their target class index
        ``target (N,)``; ``inf`` for a class with fewer than 2 distinct kept rows (no factor: never typical)."""
        out = np.full(len(points), np.inf)
        for t in np.unique(target):
            model = self._model(members, m, int(t))
            rows = target == t
            if model is not None:
                with threadpool_limits(1):  # many small calls: one thread is 15-20x faster when the cores are busy
                    out[rows] = -model.score_samples(np.asarray(points[rows], dtype=np.float64))
        return out

    def _model(self, members: Any, m: int, t: int) -> Any:
        if t not in self._models:
            from sklearn.neighbors import LocalOutlierFactor

            rows = np.unique(members.points[members.component // m == t].astype(np.float64), axis=0)
            self._models[t] = None if len(rows) < 2 else LocalOutlierFactor(
                n_neighbors=min(N_NEIGHBORS, len(rows) - 1), novelty=True).fit(rows)
        return self._models[t]

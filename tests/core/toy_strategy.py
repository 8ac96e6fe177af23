"""A toy strategy, added exactly as README "Architecture" says: one class satisfying
:class:`lapace_plugin.contracts.Strategy`, plus one registry line (at the bottom)."""

from __future__ import annotations

import numpy as np

from lapace_plugin.batch import Candidates, QueryBatch
from lapace_plugin.latent import LatentSpace
from lapace_plugin.strategies import STRATEGIES


class HalfwayStrategy:
    """Each path's counterfactual is the point halfway between the query and the path's decoded centroid (encoded
    space), judged like any other candidate."""

    refinable = True
    min_probability = 0.0  # the contract: no probability floor beyond being assigned to the target

    def candidates(self, space: LatentSpace, batch: QueryBatch) -> Candidates:
        n, m = batch.components.shape
        rows = np.repeat(np.arange(n), m)
        halfway = (batch.encoded[rows] + space.centroids.points[batch.components.reshape(-1)]) / 2
        points = space.judge(space.encoder.snap(halfway), batch.encoded[rows], batch.raw.iloc[rows], batch.target[rows], batch.constraints)
        return Candidates.of(points, (n, m, 1), np.full((n, m, 1), 0.5))


STRATEGIES.register("halfway", HalfwayStrategy)

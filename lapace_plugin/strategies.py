"""Strategies: which point of each path becomes its counterfactual.

``"first"`` (:class:`First`): the first point of the path that the classifier assigns to the target class, found by
a search (:mod:`lapace_plugin.search`) on a path kind (:mod:`lapace_plugin.paths`): close to the query.
``"last"`` (:class:`Last`): the decoded centroid itself, identical for every query (perfect input robustness); with
constraints, projected per query. ``"robust"`` (:class:`lapace_plugin.robust.Robust`): the first point with target
probability at least ``min_probability``, between the two. A new strategy is one class (here or in a file of its own)
plus one line in :data:`STRATEGIES`.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

import numpy as np
import pandas as pd

from .batch import Candidates, Points, QueryBatch
from .contracts import PathKind, Search, Strategy
from .latent import LatentSpace
from .paths import WalkingStrategy
from .registry import Registry
from .robust import Robust


class First(WalkingStrategy):
    """The first valid point on each path (proximal end of the spectrum)."""

    refinable = True  # refiners (revert) apply to its counterfactuals
    min_probability = 0.0  # assigned to the target class suffices

    def __init__(self, kind: PathKind, search: Search, n_steps: int) -> None:
        self.kind, self.search, self.n_steps = kind, search, n_steps


class Last:
    """The decoded centroid of each target component (tau 1); with constraints, projected onto each query's."""

    refinable = False
    min_probability = 0.0

    def candidates(self, space: LatentSpace, batch: QueryBatch) -> Candidates:
        n, m = batch.components.shape
        shape = (n, m, 1)
        comps = batch.components
        if batch.compiled is None:
            cents = space.centroids
            points = Points(
                encoded=cents.points[comps].reshape(n * m, -1),
                raw=cents.raw.iloc[comps.reshape(-1)].reset_index(drop=True),
                proba=cents.proba[comps, batch.target[:, None]].reshape(-1),
                valid=cents.valid[comps].reshape(-1),
                repaired=np.zeros(n * m, dtype=bool),
            )
            return Candidates.of(points, shape, np.ones(shape))
        entries = _projected_centroids(space, batch)
        points = Points(
            encoded=np.concatenate([e[0] for e in entries]),
            raw=pd.concat([e[4] for e in entries], ignore_index=True),
            proba=np.concatenate([e[1] for e in entries]),
            valid=np.concatenate([e[2] for e in entries]),
            repaired=np.concatenate([e[3] for e in entries]),
        )
        return Candidates.of(points, shape, np.ones(shape))


def _projected_centroids(space: LatentSpace, batch: QueryBatch) -> List[tuple]:
    """Target centroids projected onto each query's constraints, memoised per constrained signature.

    The projection depends only on the target class and the query's constrained (immutable and monotone) values,
    so queries sharing them share one entry: inputs that differ only in unconstrained features get bit-identical
    counterfactuals, within a call and across calls (``space.projections`` persists with the explainer). For the same
    reason the plausibility filter accepts the query's own rare pairs only among the constrained features.
    Each entry is ``(points (m, D), proba (m,), valid (m,), repaired (m,), raw (m rows))``.
    """
    cons, m = batch.constraints, batch.m
    sig_cols = cons.signature_features()
    base = json.dumps(cons.to_dict(), sort_keys=True, default=str)
    sig_values = batch.raw[sig_cols].itertuples(index=False, name=None) if sig_cols else iter([()] * batch.n)
    keys = [(base, space.min_pair_count, int(t), row) for t, row in zip(batch.target, sig_values)]
    cache = space.projections
    todo: Dict[Any, int] = {}
    for i, key in enumerate(keys):
        if key not in cache and key not in todo:
            todo[key] = i
    if todo:
        rows = np.repeat(np.fromiter(todo.values(), dtype=int), m)
        ends = batch.components[rows, np.tile(np.arange(m), len(todo))]
        x = batch.encoded[rows]
        points, repaired = space.realise(space.mu[ends], x, batch.compiled, exempt=sig_cols)
        raw_factuals = batch.raw.iloc[rows]
        raw = space.to_raw(points, x, raw_factuals, features=sig_cols)
        judged = space.judge_raw(points, raw, raw_factuals, batch.target[rows], cons, repaired, x, exempt=sig_cols)
        ok = judged.valid & space.centroids.valid[ends]
        for j, key in enumerate(todo):
            sl = slice(j * m, (j + 1) * m)
            cache[key] = (points[sl], judged.proba[sl], ok[sl], repaired[sl], raw.iloc[sl].reset_index(drop=True))
    return [cache[key] for key in keys]


STRATEGIES: Registry[Strategy] = Registry("strategy", ("first", First), ("last", Last), ("robust", Robust))

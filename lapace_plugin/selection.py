"""Selection: from each path's chosen point to a query's ranked, distinct counterfactuals, and failure reasons."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import pandas as pd

from .batch import Candidates, QueryBatch
from .centroids import contains
from .distance import mean_l1
from .latent import LatentSpace


def select(space: LatentSpace, batch: QueryBatch, candidates: Candidates, k: int, strategy: str) -> Tuple[pd.DataFrame, Dict[Any, str]]:
    """One row per (query, path) and the failures ``{query label: reason}``.

    Each path's counterfactual is its first valid step; a query keeps its ``k`` nearest distinct ones, ranked from
    0 (``rank`` -1: not kept). The frame has ``query, order, component, tau, valid, probability, repaired, reverted,
    rank`` and the point's raw features (NaN where the path found no valid point).
    """
    n, m = batch.components.shape
    step = candidates.first_valid(batch.usable)
    found = step >= 0
    chosen = candidates.at(step)
    points = chosen.encoded[:, :, 0]
    distance = mean_l1(space.encoder.parts(points), space.encoder.parts(batch.encoded[:, None, :]))
    rank = np.full((n, m), -1)
    failures: Dict[Any, str] = {}
    labels = list(batch.raw.index)
    for q in range(n):
        order = [c for c in np.argsort(distance[q], kind="stable") if found[q, c]]
        kept: List[np.ndarray] = []
        for c in order:
            if len(kept) == k:
                break
            if contains(kept, points[q, c]):
                continue
            rank[q, c] = len(kept)
            kept.append(points[q, c])
        if not kept:
            failures[labels[q]] = failure_reason(space, batch, q, strategy)
    rows_q = np.repeat(np.arange(n), m)
    frame = pd.DataFrame({
        "query": np.repeat(labels, m) if n else [],
        "order": rows_q,
        "component": [space.names[c] for c in batch.components.reshape(-1)],
        "tau": np.where(found, chosen.tau[:, :, 0], np.nan).reshape(-1),
        "valid": found.reshape(-1),
        "probability": chosen.proba.reshape(-1),
        "repaired": (chosen.repaired[:, :, 0] & found).reshape(-1),
        "reverted": np.where(found, chosen.reverted[:, :, 0], 0).reshape(-1),
        "rank": rank.reshape(-1),
    })
    raw = chosen.raw
    raw.loc[~found.reshape(-1), :] = np.nan
    return pd.concat([frame, raw], axis=1), failures


def failure_reason(space: LatentSpace, batch: QueryBatch, q: int, strategy: str) -> str:
    """Why query position ``q`` got no counterfactual."""
    classes = space.classes
    target = batch.target[q]
    if batch.predicted[q] == target:
        return "the query is already predicted as the target class %r" % (classes[target],)
    if not space.centroids.valid[batch.components[q]].any():
        return "no valid centroid for target class %r" % (classes[target],)
    if strategy == "last":
        return "no target centroid is valid for this query after applying the constraints"
    return "no point on any latent path to class %r is assigned to it (with the constraints applied)" % (classes[target],)

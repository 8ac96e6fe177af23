"""Greedy reversion: give changed features back their input values while the counterfactual stays valid.

A point found on a latent path usually changes more features than the classifier needs. Each round
tries, for every counterfactual at once, every feature it still changes set back to the input's value,
in one batched ``evaluate`` call; each counterfactual keeps the single reversion that leaves it valid
with the highest target probability (or, given a ``priority``, the valid reversion of the feature with the highest
priority, then the highest probability), and drops out once no reversion keeps it valid. A round reverts at
most one feature per counterfactual, so there are at most as many reverting rounds as features; a
counterfactual is never farther from its input than before, and every returned point was evaluated valid.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

# ``evaluate(rows, candidates) -> (valid, target probability)`` for candidate encoded rows of counterfactuals ``rows``
Evaluate = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


def feature_blocks(n_continuous: int, groups: List[Tuple[str, slice]]) -> List[slice]:
    """The encoded columns of each feature in a continuous-and-one-hot layout: one per continuous feature, one slice
    per one-hot group (:meth:`lapace_plugin.encoding.TabularEncoder.blocks` gives them for any layout)."""
    return [slice(j, j + 1) for j in range(n_continuous)] + [sl for _, sl in groups]


def revert_greedy(
    points: np.ndarray,
    factuals: np.ndarray,
    proba: np.ndarray,
    blocks: Sequence[Any],
    evaluate: Evaluate,
    priority: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Revert features of valid encoded ``points (N, D)`` to ``factuals (N, D)`` greedily (module docstring).

    ``proba (N,)`` is each point's target probability; ``blocks`` holds each feature's encoded columns (a slice or
    an index array); ``priority (N, features)``, if given, ranks the features each point should give back first
    (e.g. the features other options already change, :mod:`lapace_plugin.options`). Returns the reverted points,
    their target probabilities and the number of features reverted per point.
    """
    blocks = [np.arange(points.shape[1])[b] for b in blocks]
    points, proba = points.copy(), np.asarray(proba, dtype=float).copy()
    changed = np.stack([(points[:, b] != factuals[:, b]).any(1) for b in blocks], axis=1)
    reverted = np.zeros(len(points), dtype=int)
    active = changed.any(1)
    while active.any():
        rows, feats = np.nonzero(changed & active[:, None])
        candidates = points[rows].copy()
        for f in np.unique(feats):
            sel = np.flatnonzero(feats == f)
            candidates[np.ix_(sel, blocks[f])] = factuals[np.ix_(rows[sel], blocks[f])]
        valid, p = evaluate(rows, candidates)
        score = np.where(valid, p, -np.inf)
        rank = np.zeros(len(rows)) if priority is None else np.asarray(priority, dtype=float)[rows, feats]
        order = np.lexsort((-score, -rank, ~valid, rows))  # by row: valid first, then highest priority, then probability
        first = np.r_[True, rows[order][1:] != rows[order][:-1]]
        best = order[first]
        best = best[valid[best]]
        r = rows[best]
        points[r], proba[r] = candidates[best], p[best]
        changed[r, feats[best]] = False
        reverted[r] += 1
        active = np.zeros(len(points), dtype=bool)
        active[r] = changed[r].any(1)
    return points, proba, reverted

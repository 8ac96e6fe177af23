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

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# ``evaluate(rows, candidates) -> (valid, target probability)`` for candidate encoded rows of counterfactuals ``rows``
Evaluate = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]
# ``confirm(rows, candidates) -> valid``: a costly last check of validity, asked only about rows a point would keep
Confirm = Callable[[np.ndarray, np.ndarray], np.ndarray]


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
    confirm: Optional[Confirm] = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Revert features of valid encoded ``points (N, D)`` to ``factuals (N, D)`` greedily (module docstring).

    ``proba (N,)`` is each point's target probability; ``blocks`` holds each feature's encoded columns (a slice or
    an index array); ``priority (N, features)``, if given, ranks the features each point should give back first
    (e.g. the features other options already change, :mod:`lapace_plugin.options`). ``confirm``, if given, is a
    last check of validity that ``evaluate`` leaves out: it is asked about each point's reversions in the order the
    point would keep them, until one passes, so the result is that of an ``evaluate`` that includes it
    (:func:`first_confirmed`). Returns the reverted points, their target probabilities and the number of features
    reverted per point.
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
        best = first_confirmed(rows, candidates, order[valid[order]], confirm)
        r = rows[best]
        points[r], proba[r] = candidates[best], p[best]
        changed[r, feats[best]] = False
        reverted[r] += 1
        active = np.zeros(len(points), dtype=bool)
        active[r] = changed[r].any(1)
    return points, proba, reverted


def first_confirmed(rows: np.ndarray, candidates: np.ndarray, ranked: np.ndarray, confirm: Optional[Confirm] = None) -> np.ndarray:
    """Each row's first candidate of ``ranked`` (valid candidates' indices, grouped by ``rows``, the preferred first)
    that ``confirm`` accepts; without ``confirm``, each row's first. The rows' next candidates are asked together, one
    batched call per round, and a row's candidates after the one accepted are never asked about."""
    chosen = []
    while len(ranked):
        head = ranked[np.r_[True, rows[ranked][1:] != rows[ranked][:-1]]]  # each row's next candidate
        ok = np.ones(len(head), dtype=bool) if confirm is None else np.asarray(confirm(rows[head], candidates[head]), dtype=bool)
        chosen.append(head[ok])
        ranked = ranked[~np.isin(rows[ranked], rows[head[ok]]) & ~np.isin(ranked, head)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)

class Memo:
    """Verdicts of judged ``(owner, encoded row)`` pairs, so that judging the same rows again calls the judge only
    for pairs it has not seen; an owner is whatever a verdict depends on besides the row (a query: its factual,
    target and constraints).

    :class:`lapace_plugin.options.Diverse` reverts every open candidate of a query once per option it chooses, from
    the same start and mostly through the same rows: on credit's study setting (100 queries, the ``lapace-robust``
    settings) its three rounds ask about 2.33 million rows, of which 1.65 million are new to the memo. A pair's key
    is the bytes of its owner and row, built for a whole call in one array operation, and the verdicts are kept in
    arrays indexed through one dictionary, so a call costs a few dictionary operations per row.
    """

    def __init__(self) -> None:
        self.index: Dict[bytes, int] = {}  # key -> position in the verdict columns
        self.columns: List[np.ndarray] = []
        self.single = False  # whether the judge returns one array rather than a tuple

    def wrap(self, judge: Callable[[np.ndarray, np.ndarray], Any], owners: np.ndarray) -> Callable[[np.ndarray, np.ndarray], Any]:
        """``judge(rows, candidates)`` (an array, or a tuple of arrays, per row) for rows owned by ``owners[rows]``,
        called once per pair never judged before; the same return type."""

        def memoised(rows: np.ndarray, candidates: np.ndarray) -> Any:
            keys = pair_keys(owners[rows], candidates)
            first = dict(zip(keys, range(len(keys))))  # each distinct key, in order, at one of its positions
            new = [key for key in first if key not in self.index]
            if new or not keys:
                idx = np.array([first[key] for key in new], dtype=int)
                out = judge(rows[idx], candidates[idx])
                self.single = not isinstance(out, tuple)
                if not keys:
                    return out
                fresh = [np.asarray(c) for c in ((out,) if self.single else out)]
                self.index.update(zip(new, range(len(self.index), len(self.index) + len(new))))
                self.columns = fresh if not self.columns else [np.concatenate(p) for p in zip(self.columns, fresh)]
            at = np.fromiter(map(self.index.__getitem__, keys), dtype=np.int64, count=len(keys))
            columns = [c[at] for c in self.columns]
            return columns[0] if self.single else tuple(columns)

        return memoised


def pair_keys(owners: np.ndarray, rows: np.ndarray) -> List[bytes]:
    """One ``bytes`` key per ``(owner, row)`` pair: the owner's 8 bytes, then the row's."""
    rows = np.ascontiguousarray(rows).reshape(len(rows), -1)
    width = rows.shape[1] * rows.itemsize
    raw = np.empty((len(rows), 8 + width), dtype=np.uint8)
    raw[:, :8] = np.asarray(owners, dtype="<i8").reshape(-1, 1).view(np.uint8)
    raw[:, 8:] = rows.view(np.uint8).reshape(len(rows), width)
    return raw.view("V%d" % (8 + width)).ravel().tolist()

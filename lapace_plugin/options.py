"""Diverse options (``diverse=True``): a query's options differ in *which* features they change, not only in values.

With ``revert=True`` alone, the paths of a query often collapse onto one short plan (on adult: "raise your capital
gain"), and selection drops the repeats. :class:`Diverse` instead, for each query:

1. takes up to :data:`POOL` valid points of every path (its first valid point, then points spread evenly over the
   rest of its valid points up to the centroid), and up to :data:`MEMBERS` per path of the training rows of the target
   class (kept at fit, ``neighbours``) nearest to the query that are valid once projected onto the query's
   constraints (the :data:`SCANNED` nearest judged in one classifier call for the whole batch). These rows belong to
   no path: one fills any path still open (the one with the fewest own candidates; it reports that path's component
   and tau 1). So a query gets options also when constraints keep its paths' own points from the target class;
2. chooses the query's options one at a time. Before each choice, every candidate still open is reverted
   (:func:`lapace_plugin.revert.revert_greedy`) preferring to give back the features the options already chosen
   change. A candidate may be offered only if no option already offered asks no more of the person
   (:func:`asks_no_more`: "capital gain 0 -> 25,124" is no option beside "capital gain 0 -> 8,614"), if it is not the
   same option as one offered (closer than :data:`lapace_plugin.selection.SAME_OPTION`, which selection would drop:
   "capital gain 7,298 and 45 hours" beside "capital gain 8,614") and, with ``max_per_feature``, if it changes no
   feature that many options already change. Among those, short plans (at most :data:`SHORT` changes) come first, and
   the option chosen is the candidate whose changed-feature set is farthest (Jaccard distance) from the closest option
   already chosen, then the one changing the fewest features that earlier options change, then the nearest to the
   query. The first option is the nearest short candidate. Its path is then used. Last, an option that asks more than
   one chosen after it is dropped.

Each path still gives at most one option, so ``Explanation.to_frame()`` keeps one row per path, and every option is
valid, within the constraints, plausible and at least ``min_probability`` likely for the target class (the strategy's
floor). A path left without an option says why (:data:`NOTE_DOMINATED`, :data:`NOTE_REPEATED`, :data:`NOTE_CAPPED`, or
no valid point), and the query's shortfall reason repeats it.

Measured on the demo's setting (adult, random forest, 100 refused people, the demo's constraints; first / robust):
without the dominance rule 4.3 / 3.7 options per person, 22% of them asking more than another option of the same
person (mostly the same capital gain at larger amounts); with it 3.5 / 2.9 at :data:`POOL` 4 and :data:`MEMBERS` 8,
and 3.8 / 3.1 at 8 and 16. Since the time relation and the kept capital loss (fewer plans are possible), :data:`POOL`
8 and :data:`MEMBERS` 16 gave 3.14 / 2.52, :data:`MEMBERS` 32 gives 3.49 / 3.05 (64: 3.54 / 3.07; :data:`POOL` 16 or
32 changes nothing, the paths' own valid points are few under these constraints), at 0.06-0.09 s per person (16:
0.05-0.07), with the study's one-plan figures (``lapace-robust``, adult, german and wine, 2 seeds) within 0.002 of L1,
the same model robustness and median LOF within 0.003. For about half of these people no training row of the target
class, projected onto their constraints, is valid without a capital gain, so that feature stays in most options unless
``max_per_feature`` caps it (2: 2.9 / 2.4 options per person, capital gain in 49% / 58% of them). Choosing another
candidate where one would repeat an option (before, selection dropped the repeat and the path gave nothing) raised the
demo's 3.49 / 3.05 to 3.91 / 3.26, and through DiCE (adult, ``total_CFs=4``, six features to vary, 100 refused people)
the people with 4 distinct options from 79% to 95% (the other 5: 3 without any valid point, 2 whose remaining plans
ask more than one offered).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import pandas as pd

from .batch import Candidates, QueryBatch
from .distance import mean_l1
from .latent import LatentSpace
from .revert import Confirm, Evaluate, Memo, revert_greedy
from .selection import SAME_OPTION

NOTE_DOMINATED = "its options ask more of the person than an option already offered"
NOTE_CAPPED = "its options change %s, which max_per_feature=%d options already change"
NOTE_REPEATED = "its options repeat an option already offered"

POOL = 8
"""Valid points of each path tried as its option (module docstring: 8 rather than 4 gives more options that ask
no more than others)."""
MEMBERS = 32
"""Training rows of the target class tried per path of a query (pooled over its paths): the nearest that are valid
once projected onto the query's constraints, among the :data:`SCANNED` nearest."""
SHORT = 3
"""Options changing at most this many features are offered before longer ones, however different those are."""
SCANNED = 512
"""Target-class training rows nearest to a query that are projected and judged (on adult, scanning all of them
finds no more distinct options than 512)."""


def pool_steps(valid: np.ndarray, size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``size`` valid steps of every path of ``valid (n, m, s)``: the first, then ranks spread evenly over the
    rest (the last valid one included); flat ``(query, path, step)`` arrays, paths in order, steps rising."""
    count = valid.sum(-1)
    rank = np.cumsum(valid, -1) - 1  # rank of each valid step among its path's valid steps
    picks = []
    for j in range(size):
        want = np.round(j * (count - 1) / max(1, size - 1)).astype(int)
        picks.append(np.where(count > 0, (valid & (rank == want[..., None])).argmax(-1), -1))
    steps = np.stack(picks, -1)  # (n, m, size), repeats where a path has fewer valid steps
    keep = (steps >= 0) & np.concatenate([np.ones(steps.shape[:2] + (1,), bool), steps[..., 1:] != steps[..., :-1]], -1)
    q, c, j = np.nonzero(keep)
    return q, c, steps[q, c, j]


def asks_no_more(option: Tuple[np.ndarray, np.ndarray], other: Tuple[np.ndarray, np.ndarray],
                 query: Tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Whether ``option`` asks no more of the person than ``other`` (distance parts, broadcast over leading axes): every
    number it changes moves the same way as in ``other`` and no farther, every category it changes is ``other``'s too.
    Such an ``other`` is dominated: an easier plan with the same effect is already on offer."""
    mine, theirs = option[0] - query[0], other[0] - query[0]
    numbers = (mine == 0) | ((np.sign(mine) == np.sign(theirs)) & (np.abs(mine) <= np.abs(theirs)))
    return numbers.all(-1) & ((option[1] == query[1]) | (option[1] == other[1])).all(-1)


def jaccard_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - |a & b| / |a | b|`` of broadcastable boolean feature sets (last axis); 0 for two empty sets."""
    union = (a | b).sum(-1)
    return 1.0 - np.where(union > 0, (a & b).sum(-1) / np.maximum(union, 1), 1.0)


class Diverse:
    """Each path's option chosen among several of its valid points for distinct changed-feature sets (module
    docstring); reverted points keep a target probability of at least ``min_probability`` (and, given ``max_lof``, a
    local outlier factor of at most it: :mod:`lapace_plugin.typical`)."""

    def __init__(self, min_probability: float = 0.0, pool: int = POOL, members: int = MEMBERS,
                 max_per_feature: Optional[int] = None, max_lof: Optional[float] = None) -> None:
        self.min_probability, self.pool, self.members = min_probability, pool, members
        self.max_per_feature, self.max_lof = max_per_feature, max_lof

    def refine(self, space: LatentSpace, batch: QueryBatch, candidates: Candidates) -> Candidates:
        """Candidates ``(n, m, 1)``: each path's chosen option, reverted (invalid where the path has no valid point,
        with ``note`` saying why where the dominance rule or the cap left it empty)."""
        n, m, _ = candidates.shape
        pq, pc, ps = pool_steps(candidates.valid & batch.usable[:, :, None], self.pool)
        x, enc = batch.encoded, space.encoder
        names, blocks = space.revertible()
        blocks = [np.arange(x.shape[1])[b] for b in blocks]
        cap = self.max_per_feature or m  # m options can never exceed m per feature
        mq, member_points, member_proba = self._members(space, batch)
        start = np.concatenate([candidates.encoded[pq, pc, ps], member_points])
        start_proba = np.concatenate([candidates.proba[pq, pc, ps], member_proba])
        tau = np.concatenate([candidates.tau[pq, pc, ps], np.ones(len(mq))])
        repaired = np.concatenate([candidates.repaired[pq, pc, ps], np.zeros(len(mq), dtype=bool)])
        pq, pc = np.concatenate([pq, mq]), np.concatenate([pc, np.full(len(mq), -1)])  # -1: a member, any open path
        fillable = batch.predicted != batch.target
        own = np.zeros((n, m), dtype=int)  # own candidates of each path not yet chosen
        np.add.at(own, (pq[pc >= 0], pc[pc >= 0]), 1)
        unused = np.ones(len(pq), dtype=bool)
        query_parts = enc.parts(x)
        chosen = np.full((n, m), -1)  # pool index of each path's option
        points = x[np.repeat(np.arange(n), m)].copy()
        proba, reverted = np.zeros(n * m), np.zeros(n * m, dtype=int)
        sets = np.zeros((n, m, len(blocks)), dtype=bool)  # changed features of each query's options, in choice order
        kept = np.zeros((n, m) + x.shape[1:], dtype=x.dtype)
        slot_path = np.full((n, m), -1)  # the path each kept option fills
        n_kept = np.zeros(n, dtype=int)
        open_path = np.ones((n, m), dtype=bool)
        blocked = np.zeros((n, len(blocks)), dtype=bool)  # features whose cap kept a query's candidate out
        beaten = np.zeros(n, dtype=bool)  # a query's candidate was kept out as asking more than an option offered
        repeated = np.zeros(n, dtype=bool)  # ... or as the same option as one offered (selection's SAME_OPTION)
        judged, confirmed = Memo(), Memo()  # each round reverts the open candidates again, mostly through rows judged before
        for _ in range(m):
            live = np.flatnonzero(unused & np.where(pc >= 0, open_path[pq, pc], fillable[pq] & open_path[pq].any(1)))
            if not len(live):
                break
            q = pq[live]
            evaluate, confirm = judges(space, batch, q, self.min_probability, self.max_lof)
            moved, p, count = revert_greedy(
                start[live], x[q], start_proba[live], blocks, judged.wrap(evaluate, q), sets[q].any(1),
                confirm and confirmed.wrap(confirm, q),
            )
            changed = np.stack([(moved[:, b] != x[q][:, b]).any(1) for b in blocks], axis=1)
            earlier = np.arange(m)[None] < n_kept[q][:, None]  # (N, m) slots holding an option
            spread = np.where(earlier, jaccard_distance(sets[q], changed[:, None]), np.inf).min(1)
            spread[~earlier.any(1)] = 1.0
            mine, options = enc.parts(moved), enc.parts(kept[q])  # each candidate's and its query's options' parts
            near = mean_l1(mine, (query_parts[0][q], query_parts[1][q]))
            used = (changed & sets[q].any(1)).sum(1)  # features an earlier option already changes
            mine = (mine[0][:, None], mine[1][:, None])
            easier = asks_no_more(options, mine, (query_parts[0][q, None], query_parts[1][q, None]))
            twin = (earlier & (mean_l1(options, mine) < SAME_OPTION)).any(1)
            over = changed & (sets[q].sum(1) >= cap)
            capped, asks_more = over.any(1), (earlier & easier).any(1)
            np.logical_or.at(blocked, q[capped], over[capped])
            beaten[q[asks_more]] = True
            repeated[q[twin]] = True
            allowed = ~asks_more & ~capped & ~twin
            long = changed.sum(1) > SHORT
            order = np.lexsort((near, used, -spread, long, ~allowed, q))  # per query: allowed, short, farthest sets, ...
            best = order[np.r_[True, q[order][1:] != q[order][:-1]]]
            best = best[allowed[best]]
            open_path[np.setdiff1d(q, q[best])] = False  # nothing left this query may be offered
            bq, bc = q[best], pc[live[best]]
            member = bc < 0  # a member takes the open path with the fewest own candidates left
            bc[member] = np.where(open_path[bq[member]], own[bq[member]], np.iinfo(int).max).argmin(1)
            unused[live[best]] = False
            chosen[bq, bc] = live[best]
            flat = bq * m + bc
            points[flat], proba[flat], reverted[flat] = moved[best], p[best], count[best]
            slot = n_kept[bq]
            sets[bq, slot], kept[bq, slot], slot_path[bq, slot] = changed[best], moved[best], bc
            n_kept[bq] += 1
            open_path[bq, bc] = False
        easier = asks_no_more(enc.parts(kept[:, :, None]), enc.parts(kept[:, None]), (query_parts[0][:, None, None], query_parts[1][:, None, None]))
        slots = np.arange(m)
        qb, sb = np.nonzero((easier & (slots[:, None] > slots[None, :]) & (slots[:, None] < n_kept[:, None, None])).any(1))
        chosen[qb, slot_path[qb, sb]] = -1  # an option chosen before one that asks less of the person
        beaten[qb] = True
        found = chosen >= 0
        note = np.full((n, m), "", dtype=object)
        note[repeated] = NOTE_REPEATED
        note[beaten] = NOTE_DOMINATED
        for i in np.flatnonzero(blocked.any(1)):
            note[i] = NOTE_CAPPED % (", ".join(np.asarray(names)[blocked[i]]), cap)
        note[found] = ""
        pick = np.where(found, chosen, len(tau))  # a path without an option reads the appended blank
        tau, repaired = np.append(tau, 0.0), np.append(repaired, False)
        shape = (n, m, 1)
        rows = np.repeat(np.arange(n), m)
        return Candidates(
            encoded=points.reshape(shape + (-1,)),
            raw=space.to_raw(points, x[rows], batch.raw.iloc[rows]),
            proba=proba.reshape(shape),
            valid=found.reshape(shape),
            repaired=(repaired[pick] & found).reshape(shape),
            tau=tau[pick].reshape(shape),
            reverted=reverted.reshape(shape),
            note=note,
        )

    def _members(self, space: LatentSpace, batch: QueryBatch) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training rows of the query's target class projected onto its constraints: the nearest to the query that are
        then valid with the floor, among the :data:`SCANNED` nearest, up to :attr:`members` per path of every query not
        already predicted as its target (judged in one call); as ``(query, encoded rows, target probability)``."""
        kept, x, enc, m = space.members, batch.encoded, space.encoder, batch.m
        qs, rows = [], []
        wanted = np.flatnonzero(batch.predicted != batch.target)
        if kept is not None and self.members > 0 and len(wanted):
            query_parts = enc.parts(x)
            for t in np.unique(batch.target[wanted]):
                own = np.flatnonzero(kept.component // m == t)
                member_parts = enc.parts(kept.points[own])
                mine = wanted[batch.target[wanted] == t]
                for q in np.array_split(mine, len(mine) * len(own) // 2_000_000 + 1):  # bounded distance blocks
                    d = mean_l1((query_parts[0][q, None], query_parts[1][q, None]), (member_parts[0][None], member_parts[1][None]))
                    near = np.argsort(d, axis=1, kind="stable")[:, :SCANNED]
                    qs.append(np.repeat(q, near.shape[1]))
                    rows.append(kept.points[own[near.reshape(-1)]])
        if not qs:
            return np.zeros(0, int), np.zeros((0, x.shape[1]), x.dtype), np.zeros(0)
        q, points = np.concatenate(qs), np.concatenate(rows).astype(x.dtype)
        if batch.compiled is not None:
            points = batch.compiled.project(points, x[q])
        judged = space.judge(points, x[q], batch.raw.iloc[q], batch.target[q], batch.constraints)
        ok = judged.valid & (judged.proba >= self.min_probability)
        q, points, proba = q[ok], points[ok], judged.proba[ok]
        turn = pd.Series(np.ones(len(q), dtype=int)).groupby(q).cumsum().to_numpy() - 1  # nearest valid first
        keep = turn < self.members * m
        return q[keep], points[keep], proba[keep]


def judges(space: LatentSpace, batch: QueryBatch, q: np.ndarray, min_probability: float,
           max_lof: Optional[float] = None) -> Tuple[Evaluate, Optional[Confirm]]:
    """:func:`lapace_plugin.revert.revert_greedy`'s ``evaluate`` and ``confirm`` for candidates of queries ``q``:
    valid and at least ``min_probability`` likely for the target class; as ``confirm`` (the costliest checks, asked
    only about rows a point would keep) the learned consistency check and, given ``max_lof``, a local outlier factor
    among the target class's kept rows of at most ``max_lof`` (:mod:`lapace_plugin.typical`); ``None`` with neither."""

    def evaluate(rows: np.ndarray, moved: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        qq = q[rows]
        judged = space.judge(moved, batch.encoded[qq], batch.raw.iloc[qq], batch.target[qq], batch.constraints, learned=False)
        return judged.valid & (judged.proba >= min_probability), judged.proba

    def confirm(rows: np.ndarray, moved: np.ndarray) -> np.ndarray:
        qq = q[rows]
        ok = np.ones(len(rows), dtype=bool) if max_lof is None else space.outlier_factor(moved, batch.target[qq]) <= max_lof
        if ok.any():  # the consistency check, the costlier, only on typical rows
            ok[ok] = space.consistent(moved[ok], batch.encoded[qq[ok]], batch.raw.iloc[qq[ok]], batch.target[qq[ok]])
        return ok

    return evaluate, (confirm if space.inconsistent is not None or max_lof is not None else None)

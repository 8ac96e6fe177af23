"""Selection: from each path's candidates to a query's ranked, distinct counterfactuals, and the reasons for fewer.

Each path contributes its first valid point. When that point repeats an option another path of the same query
already gave (the same row, or one within :data:`SAME_OPTION` of it), the path contributes its next valid point that
is a new option (searches that classify every point keep them); a path whose valid points all repeat kept options
contributes nothing. A query keeps its ``k`` nearest distinct options.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .batch import CHECKS, Candidates, QueryBatch
from .distance import Parts, mean_l1
from .latent import LatentSpace
from .paths import PathWalk

SAME_OPTION = 0.01
"""Two counterfactuals of a query closer than this mean per-feature distance (:func:`lapace_plugin.distance.mean_l1`)
are one option: e.g. the same plan with 44 or 43 hours a week."""

NOTE_DUPLICATE = "same option as path %s"
NOTE_NO_POINT = "no valid point"
NOTE_NEARER = "not among the %d nearest"


class Selection:
    """What :func:`select` returns: one row per (query, path), failures and shortfalls.

    ``frame`` has ``query, order, component, tau, valid, probability, repaired, reverted, rank, note`` and the chosen
    point's raw features (NaN where the path gave no row); ``rank`` is -1 for rows not kept and ``note`` says why.
    ``failures`` maps a query label without any counterfactual to the reason, ``shortfalls`` one with fewer than
    asked to the reason.
    """

    def __init__(self, frame: pd.DataFrame, failures: Dict[Any, str], shortfalls: Dict[Any, str]) -> None:
        self.frame, self.failures, self.shortfalls = frame, failures, shortfalls


def select(space: LatentSpace, batch: QueryBatch, candidates: Candidates, k: int, strategy: str, distinct: bool = True,
           walk: Optional[Callable[[LatentSpace, QueryBatch], PathWalk]] = None) -> Selection:
    """The chosen point and rank of every path of ``batch`` (see the module docstring; ``distinct=False`` keeps each
    path's first valid point even when it repeats another path's row, which then gives nothing, and counts only equal
    rows as the same). Given the strategy's ``walk`` (:meth:`lapace_plugin.paths.WalkingStrategy.walk`), a failed
    query's reason counts which check each point of its paths failed (:func:`path_checks`)."""
    n, m = batch.components.shape
    valid = candidates.valid & batch.usable[:, :, None]
    step = np.where(valid.any(-1), valid.argmax(-1), -1)
    cont, codes = space.encoder.parts(candidates.encoded)  # every candidate's distance parts, (n, m, s, .), computed once
    query_parts = space.encoder.parts(batch.encoded[:, None, :])
    at_first = np.maximum(step, 0)[:, :, None, None]
    distance = mean_l1(
        (np.take_along_axis(cont, at_first, 2)[:, :, 0], np.take_along_axis(codes, at_first, 2)[:, :, 0]), query_parts
    )
    rank = np.full((n, m), -1)
    notes = np.full((n, m), "", dtype=object)
    failures: Dict[Any, str] = {}
    shortfalls: Dict[Any, str] = {}
    labels = list(batch.raw.index)
    failed: List[int] = []
    for q in range(n):
        kept: List[Tuple[int, int]] = []  # (path, step) of each kept option
        owner: List[int] = []
        gap: List[float] = []
        for c in np.argsort(distance[q], kind="stable"):
            if step[q, c] < 0:
                notes[q, c] = candidates.note[q, c] if candidates.note is not None and candidates.note[q, c] else NOTE_NO_POINT
                continue
            options = (cont[q][tuple(zip(*kept))], codes[q][tuple(zip(*kept))]) if kept else None
            s = _first_new((cont[q, c], codes[q, c]), valid[q, c], step[q, c], options, search=distinct)
            if s < 0:
                twin = int(np.argmin(mean_l1(options, (cont[q, c, step[q, c]], codes[q, c, step[q, c]]))))
                notes[q, c] = NOTE_DUPLICATE % space.names[batch.components[q, owner[twin]]]
                continue
            step[q, c] = s
            kept.append((c, s))
            owner.append(c)
            gap.append(float(mean_l1((cont[q, c, s], codes[q, c, s]), (query_parts[0][q, 0], query_parts[1][q, 0]))))
        for r, i in enumerate(np.argsort(gap, kind="stable")):
            if r < k:
                rank[q, owner[i]] = r
            else:
                notes[q, owner[i]] = NOTE_NEARER % k
        if not kept:
            failed.append(q)
        elif len(kept) < k:
            shortfalls[labels[q]] = shortfall_reason(notes[q], len(kept), k)
    open_paths = [q for q in failed if batch.usable[q].any() and batch.predicted[q] != batch.target[q]]  # paths to walk
    checked = {} if walk is None or not open_paths else dict(
        zip(open_paths, path_checks(walk(space, batch.take(np.asarray(open_paths))))))
    for q in failed:
        failures[labels[q]] = failure_reason(space, batch, q, strategy, checked.get(q))
    found = step >= 0
    chosen = candidates.at(step)
    frame = pd.DataFrame({
        "query": np.repeat(np.asarray(labels, dtype=object), m) if n else [],  # labels keep their types
        "order": np.repeat(np.arange(n), m),
        "component": [space.names[c] for c in batch.components.reshape(-1)],
        "tau": np.where(found, chosen.tau[:, :, 0], np.nan).reshape(-1),
        "valid": found.reshape(-1),
        "probability": chosen.proba.reshape(-1),
        "repaired": (chosen.repaired[:, :, 0] & found).reshape(-1),
        "reverted": np.where(found, chosen.reverted[:, :, 0], 0).reshape(-1),
        "rank": rank.reshape(-1),
        "note": notes.reshape(-1),
    })
    keep = np.repeat(found.reshape(-1, 1), chosen.raw.shape[1], axis=1)
    raw = chosen.raw.where(keep)  # NaN where a path gave no row (bool columns become object)
    return Selection(pd.concat([frame, raw], axis=1), failures, shortfalls)


def _first_new(path: Parts, valid: np.ndarray, start: int, kept: Any, *, search: bool) -> int:
    """The first valid step from ``start`` on whose point is a new option; without ``search`` only ``start``, and only a
    row equal to a kept one counts as the same (the paper's selection).

    ``path``: the parts of the path's points, ``(s, .)`` each; ``kept``: the parts of the options kept so far,
    ``(K, .)`` each, or ``None``.
    """
    stop = len(valid) if search else start + 1
    if kept is None:
        gap = np.full(stop - start, np.inf)
    else:
        gap = mean_l1((path[0][start:stop, None], path[1][start:stop, None]), (kept[0][None], kept[1][None])).min(1)
    new = valid[start:stop] & (gap >= SAME_OPTION if search else gap > 0)
    return start + int(new.argmax()) if new.any() else -1


def shortfall_reason(notes: np.ndarray, found: int, k: int) -> str:
    """Why a query got ``found < k`` distinct counterfactuals, from its paths' notes."""
    same = sum(1 for note in notes if note.startswith("same option"))
    empty = sum(1 for note in notes if note == NOTE_NO_POINT)
    parts = []
    if same:
        parts.append("%d of %d paths ended on an option another path gave" % (same, len(notes)))
    if empty:
        parts.append("%d of %d paths have no valid point" % (empty, len(notes)))
    told = {note for note in notes if note and note != NOTE_NO_POINT and not note.startswith(("same option", "not among"))}
    for note in sorted(told):  # a refiner's reason (lapace_plugin.options)
        parts.append("%d of %d paths: %s" % (sum(1 for other in notes if other == note), len(notes), note))
    return "%d distinct counterfactual%s of %d asked: %s" % (found, "" if found == 1 else "s", k, "; ".join(parts))


def path_checks(walk: PathWalk) -> List[str]:
    """Per query of ``walk``'s batch, how many points of its usable paths failed each check of
    :data:`lapace_plugin.batch.CHECKS` (the first failed), and the highest target probability among them: "of the 100
    points of its 5 paths: 91 assigned to another class, 9 under min_probability; the highest probability of class 1
    among them is 0.563". Every point is realised and judged again (a grid of the failed queries' paths)."""
    batch, s = walk.batch, len(walk.taus)
    start = 1 if walk.starts_at_input else 0  # a path that starts at the query holds it at tau 0
    usable, steps = np.flatnonzero(batch.usable.reshape(-1)), np.arange(start, s)
    paths = np.repeat(usable, len(steps))
    points = walk(paths, np.tile(steps, len(usable)))
    owner = batch.of_paths(paths)
    out = []
    for q in range(batch.n):
        mine = owner == q
        counts = np.bincount(points.failed[mine] + 1, minlength=len(CHECKS) + 1)
        parts = ["%d %s" % (c, check) for c, check in zip(counts[1:], CHECKS) if c]
        if counts[0]:  # valid on its path, yet no option (a plan a refiner's check refused, a point a fast search skipped)
            parts.append("%d valid but giving no option" % counts[0])
        out.append("of the %d points of its %d paths: %s; the highest probability of class %r among them is %.3f" % (
            mine.sum(), batch.usable[q].sum(), ", ".join(parts), walk.space.classes[batch.target[q]], points.proba[mine].max()))
    return out


def failure_reason(space: LatentSpace, batch: QueryBatch, q: int, strategy: str, checked: Optional[str] = None) -> str:
    """Why query position ``q`` got no counterfactual (``checked``: what :func:`path_checks` found on its paths)."""
    classes = space.classes
    target = batch.target[q]
    if batch.predicted[q] == target:
        return "the query is already predicted as the target class %r" % (classes[target],)
    if not space.centroids.valid[batch.components[q]].any():
        return "no valid centroid for target class %r" % (classes[target],)
    if strategy == "last":
        return "no target centroid is valid for this query after applying the constraints"
    floor = ", or under min_probability" if strategy == "robust" else ""
    return "no point on any latent path to class %r is a valid counterfactual for it: %s" % (
        classes[target], checked or "each is assigned to another class, implausible or outside the constraints" + floor)

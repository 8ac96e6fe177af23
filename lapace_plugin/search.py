"""Searches: how the first valid point of each path is found.

``"grid"`` (:class:`GridSearch`) classifies every point of every path in one classifier call, as in the paper.
``"fast"`` (:class:`FastSearch`) finds it with few classifier calls: a coarse scan, then bisection
(:func:`first_valid_fast`). A new search is one class here plus one line in :data:`SEARCHES`.

The exhaustive search classifies every one of a path's ``S`` grid points. Along a LAPACE path the target
probability rises towards the centroid, so the valid points are usually a suffix of the grid. The fast
search scans every ``stride``-th point in rounds, stopping a path at its first valid coarse point, then
bisects the gap between the last invalid and the first valid point it saw. All paths advance together,
so each round is one batched classifier call.

On a path whose valid points form a suffix of the grid the result is exactly the exhaustive one. On
any path the returned point was classified valid, and it is no later on the grid than the first valid
coarse point; a valid island that lies wholly between two invalid coarse points can be missed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from .batch import Candidates, Points
from .contracts import Search
from .registry import Registry

if TYPE_CHECKING:  # the searches only call the walk they are given
    from .paths import PathWalk

Evaluate = Callable[[np.ndarray, np.ndarray], np.ndarray]


def default_stride(n_candidates: int) -> int:
    """Coarse stride minimising ``n / stride + log2(stride)`` calls: about the square root of ``n``."""
    return max(1, int(round(math.sqrt(n_candidates))))


def first_valid_fast(
    evaluate: Evaluate,
    n_paths: int,
    n_points: int,
    start: int = 0,
    end_valid: Optional[np.ndarray] = None,
    stride: Optional[int] = None,
) -> np.ndarray:
    """First valid grid index per path (``-1`` where none was found), found by coarse scan and bisection.

    Parameters
    ----------
    evaluate
        ``evaluate(paths, steps) -> valid``: classifies grid point ``steps[i]`` of path ``paths[i]``.
    n_paths, n_points
        Number of paths and of grid points per path (indices ``0 .. n_points - 1``).
    start
        Points before ``start`` are known to be invalid and never evaluated.
    end_valid
        Per path, whether the last point is already known to be valid (it is then not evaluated).
    stride
        Coarse stride; default :func:`default_stride` of the number of candidate points.
    """
    last = n_points - 1
    below = np.full(n_paths, start - 1)  # last index known invalid
    found = np.full(n_paths, -1)  # first index known valid
    if end_valid is not None:
        found[np.asarray(end_valid, dtype=bool)] = last
    stride = default_stride(n_points - start) if stride is None else int(stride)
    coarse = list(range(start + stride - 1, last, stride)) + [last]
    active = np.arange(n_paths)
    for step in coarse:
        todo = active if step < last else active[found[active] < 0]
        if not len(todo):
            break
        ok = evaluate(todo, np.full(len(todo), step))
        found[todo[ok]] = step
        below[todo[~ok]] = step
        active = todo[~ok]
    while True:
        gap = np.flatnonzero((found >= 0) & (found - below > 1))
        if not len(gap):
            return found
        mid = (below[gap] + found[gap]) // 2
        ok = evaluate(gap, mid)
        found[gap[ok]] = mid[ok]
        below[gap[~ok]] = mid[~ok]


class GridSearch:
    """Classify every one of the ``n_steps + 1`` points of every path, in one classifier call."""

    def run(self, walk: "PathWalk") -> Candidates:
        """Candidates ``(n, m, n_steps + 1)``: every point of every path."""
        n, m = walk.batch.components.shape
        s = len(walk.taus)
        points = walk(np.repeat(np.arange(n * m), s), np.tile(np.arange(s), n * m))
        return Candidates.of(points, (n, m, s), walk.taus)


class FastSearch:
    """The first valid point of each usable path by coarse scan and bisection (:func:`first_valid_fast`)."""

    def run(self, walk: "PathWalk") -> Candidates:
        """Candidates ``(n, m, 1)``: the first valid point found on each usable path (the query where none)."""
        batch, space, taus = walk.batch, walk.space, walk.taus
        n, m = batch.components.shape
        x = batch.encoded
        ends = batch.components.reshape(-1)
        q = np.repeat(np.arange(n), m)
        points = x[q].copy()
        proba = np.zeros(n * m)
        repaired = np.zeros(n * m, dtype=bool)
        todo = np.flatnonzero(batch.usable.reshape(-1))
        end_valid = None
        if batch.compiled is None and walk.kind.ends_at_centroid:  # the path ends at its valid decoded centroid
            points[todo] = space.centroids.points[ends[todo]]
            proba[todo] = space.centroids.proba[ends[todo], ends[todo] // m]
            end_valid = proba[todo] >= walk.min_probability

        def evaluate(sub: np.ndarray, steps: np.ndarray) -> np.ndarray:
            out = walk(todo[sub], steps)
            ok = out.valid
            hit = todo[sub[ok]]
            points[hit], proba[hit], repaired[hit] = out.encoded[ok], out.proba[ok], out.repaired[ok]
            return ok

        start = 1 if walk.starts_at_input else 0  # a path that starts at the query itself is never valid there
        found = np.full(n * m, -1)
        found[todo] = first_valid_fast(evaluate, len(todo), len(taus), start=start, end_valid=end_valid)
        points[found < 0] = x[q[found < 0]]
        raw = space.to_raw(points, x[q], batch.raw.iloc[q])
        chosen = Points(encoded=points, raw=raw, proba=proba, valid=found >= 0, repaired=repaired)
        return Candidates.of(chosen, (n, m, 1), taus[np.maximum(found, 0)].reshape(n, m, 1))


SEARCHES: Registry[Search] = Registry("search", ("grid", GridSearch), ("fast", FastSearch))

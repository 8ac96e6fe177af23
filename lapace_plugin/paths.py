"""Path kinds: how the points of a latent path from a query to a target centroid become candidate rows.

Every path is the straight latent segment ``z_tau = (1 - tau) z_x + tau mu_c``; a path kind decides how its points
are turned into rows (see :class:`LatentPath`, :class:`CorrectedPath`, :class:`SparsePath`). :func:`walk` binds a
path kind to a query batch and returns a :class:`PathWalk`, which realises and judges any ``(path, step)`` points;
the searches (:mod:`lapace_plugin.search`) decide which points to ask for. A new path kind is one class here plus
one line in :data:`PATH_KINDS`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import pandas as pd

from .batch import FLOOR, Candidates, Points, QueryBatch
from .contracts import PathKind, Search
from .distance import mean_l1
from .latent import Correction, LatentSpace
from .registry import Registry

EXACT_TOLERANCE = 1e-5  # scaled units: float32 noise of ``Dec(z_x) + (x - Dec(z_x))`` at tau 0


def interpolate(z_start: np.ndarray, z_end: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Latent points ``(1 - tau) z_start + tau z_end`` for broadcastable ``z_start``, ``z_end`` and ``tau`` (float32)."""
    t = np.asarray(tau).astype(np.float32)
    return (1.0 - t) * z_start + t * z_end


class Ends(NamedTuple):
    """Where a batch's paths end: latent points ``(n, m, latent_dim)`` and, for ends at real rows, the offset
    ``(n, m, D)`` that corrects their decoding to those rows exactly (added with weight tau), else ``None``."""

    latents: np.ndarray
    residual: Optional[np.ndarray]


class LatentPath:
    """The paper's path: every latent point is decoded and snapped (tau 0 is the query's reconstruction)."""

    starts_at_input = False
    ends_at_centroid = True

    def residual(self, space: LatentSpace, batch: QueryBatch, z_x: np.ndarray) -> Optional[np.ndarray]:
        """Per-query offset added to decodings, fading from full at tau 0 to none at tau 1 (none here)."""
        return None

    def ends(self, space: LatentSpace, batch: QueryBatch) -> Ends:
        """The paths' ends: the target components' centroids."""
        return Ends(space.mu[batch.components], None)

    def snapping(self) -> tuple:
        """``(margin, tolerance)`` of :class:`~lapace_plugin.latent.Correction` at tau 0."""
        return 0.0, EXACT_TOLERANCE


class CorrectedPath(LatentPath):
    """The default: add the query's reconstruction residual ``x - Dec(z_x)`` with weight ``1 - tau``.

    ``x_tau = snap(Dec(z_tau) + (1 - tau) (x - Dec(z_x)))`` (one-hot groups and point-mass gates are corrected on the
    decoder's probabilities), so tau 0 is exactly the query and tau 1 exactly the decoded centroid. The value of a
    point-mass feature the query holds at its mass is not corrected (the decoder's value is the one off the mass).
    """

    starts_at_input = True

    def residual(self, space: LatentSpace, batch: QueryBatch, z_x: np.ndarray) -> Optional[np.ndarray]:
        residual = batch.encoded - space.decode(z_x)
        for _, j, g in space.encoder.gates:  # a query at a point mass has no value for the decoder's value to correct
            residual[batch.encoded[:, g] < 0.5, j] = 0.0
        return residual


class SparsePath(CorrectedPath):
    """Corrected, and a feature keeps the query's value unless it changes by more than ``tolerance`` (continuous,
    scaled units) or another category beats the query's by more than ``margin``; both fade to zero at tau 1, so
    paths still end at the centroid."""

    def __init__(self, margin: float = 0.6, tolerance: float = 0.1) -> None:
        self.margin, self.tolerance = margin, tolerance

    def snapping(self) -> tuple:
        return self.margin, self.tolerance


class NeighbourPath(CorrectedPath):
    """Corrected, ending at the nearest real row of each target component instead of its centroid.

    The end of the path to component ``c`` is the training row nearest to the query (:mod:`lapace_plugin.distance`)
    among ``c``'s members (rows the classifier assigns to ``c``'s class whose most responsible component is ``c``)
    that satisfy the call's constraints; the path is the latent segment between their encodings, decoded with both
    reconstruction residuals (the query's fading out, the member's fading in), so tau 0 is exactly the query and tau 1
    exactly that real row. Paths whose component has no suitable member end at the centroid, as corrected paths do.
    """

    ends_at_centroid = False
    rounds = (64, 1024, None)  # nearest members checked against the constraints per round (None: all the rest)

    def ends(self, space: LatentSpace, batch: QueryBatch) -> Ends:
        members = space.members
        if members is None:
            raise ValueError("path='neighbour' needs the training rows kept at fit time; this explainer keeps none "
                             "(neighbours=0): use path='corrected'")
        enc, x = space.encoder, batch.encoded
        latents = space.mu[batch.components].copy()
        chosen = np.full(batch.components.shape, -1)
        query_parts = enc.parts(x)
        for k in np.unique(batch.components):
            rows, slots = np.nonzero(batch.components == k)
            own = np.flatnonzero(members.component == k)
            if not len(own):
                continue
            cont, codes = enc.parts(members.points[own])
            for start in range(0, len(rows), 256):
                r, c = rows[start : start + 256], slots[start : start + 256]
                d = mean_l1((query_parts[0][r, None], query_parts[1][r, None]), (cont[None], codes[None]))
                pos = self._first_allowed(np.argsort(d, axis=1, kind="stable"), members.points[own], x[r], batch)
                chosen[r, c] = np.where(pos >= 0, own[pos], -1)
        found = chosen >= 0
        residual = np.zeros(batch.components.shape + (x.shape[1],), dtype=np.float32)
        if found.any():
            picked = chosen[found]
            latents[found] = members.latents[picked]
            residual[found] = members.points[picked] - space.decode(members.latents[picked])
            for _, j, g in enc.gates:  # a member at a point mass has no value for the decoder's value to correct
                at_mass = np.zeros(batch.components.shape, dtype=bool)
                at_mass[found] = members.points[picked, g] < 0.5
                residual[at_mass, j] = 0.0
        return Ends(latents, residual)

    def _first_allowed(self, order: np.ndarray, points: np.ndarray, x: np.ndarray, batch: QueryBatch) -> np.ndarray:
        """Per query (row of ``order``: member positions by distance), the nearest member within the constraints
        (position into ``points``), or -1; members are checked in rounds of :attr:`rounds`."""
        out = np.full(len(order), -1)
        if batch.compiled is None:
            out[:] = order[:, 0]
            return out
        start = 0
        for size in self.rounds:
            todo = np.flatnonzero(out < 0)
            stop = order.shape[1] if size is None else min(order.shape[1], start + size)
            if not len(todo) or start >= stop:
                break
            block = order[todo, start:stop]
            ok = ~batch.compiled.needs_repair(points[block.reshape(-1)], np.repeat(x[todo], block.shape[1], 0))
            ok = ok.reshape(block.shape)
            has = ok.any(1)
            out[todo[has]] = block[has, ok[has].argmax(1)]
            start = stop
        return out


PATH_KINDS: Registry[PathKind] = Registry(
    "path", ("latent", LatentPath), ("corrected", CorrectedPath), ("sparse", SparsePath), ("neighbour", NeighbourPath)
)


class PathWalk:
    """Realise and judge points of a batch's paths: ``walk(paths, steps) -> Points``.

    ``paths`` are flat path indices ``q * m + c`` and ``steps`` indices into ``taus``, both ``(N,)``. A point is
    valid when :meth:`LatentSpace.judge` says so and its target probability is at least ``min_probability``.
    """

    def __init__(self, space: LatentSpace, batch: QueryBatch, kind: LatentPath, taus: np.ndarray, min_probability: float = 0.0) -> None:
        self.space, self.batch, self.kind, self.taus, self.min_probability = space, batch, kind, taus, min_probability
        self.starts_at_input = kind.starts_at_input
        self.z_x = space.latent_means(batch.encoded, batch.predicted)[0]
        self.residual = kind.residual(space, batch, self.z_x)
        ends = kind.ends(space, batch)
        self.end_latents = ends.latents.reshape(-1, ends.latents.shape[-1])
        self.end_residual = None if ends.residual is None else ends.residual.reshape(-1, ends.residual.shape[-1])

    def __call__(self, paths: np.ndarray, steps: np.ndarray) -> Points:
        space, batch, taus = self.space, self.batch, self.taus
        x = batch.encoded
        q, ends = batch.of_paths(paths), batch.components.reshape(-1)[paths]
        points = np.empty((len(paths), x.shape[1]), dtype=np.float32)
        repaired = np.zeros(len(paths), dtype=bool)
        # without constraints the last point of a path to a centroid is exactly the cached decoded centroid
        at_end = (steps == len(taus) - 1) & (batch.compiled is None) & self.kind.ends_at_centroid
        points[at_end] = space.centroids.points[ends[at_end]]
        rest = np.flatnonzero(~at_end)
        if len(rest):
            tau = taus[steps[rest]]
            z = interpolate(self.z_x[q[rest]], self.end_latents[paths[rest]], tau[:, None])
            correction = None
            if self.residual is not None:
                fade = 1.0 - tau
                margin, tolerance = self.kind.snapping()
                offset = self.residual[q[rest]] * fade[:, None].astype(np.float32)
                if self.end_residual is not None:
                    offset = offset + self.end_residual[paths[rest]] * tau[:, None].astype(np.float32)
                correction = Correction(offset, margin * fade, tolerance * fade)
            points[rest], repaired[rest] = space.realise(z, x[q[rest]], batch.compiled, correction)
        judged = space.judge(points, x[q], batch.raw.iloc[q], batch.target[q], batch.constraints, repaired)
        low = judged.valid & (judged.proba < self.min_probability)
        judged.valid &= ~low
        judged.failed[low] = FLOOR
        return judged


def walk(space: LatentSpace, batch: QueryBatch, kind: LatentPath, n_steps: int, min_probability: float = 0.0) -> PathWalk:
    """Bind path kind ``kind`` to ``batch`` with ``n_steps + 1`` points per path (valid: target probability at least
    ``min_probability``)."""
    return PathWalk(space, batch, kind, np.linspace(0.0, 1.0, n_steps + 1), min_probability)


class WalkingStrategy:
    """A strategy whose candidates are points of its paths, found by its search: ``kind``, ``search``, ``n_steps`` and
    ``min_probability`` are the subclass's."""

    kind: LatentPath
    search: Search
    n_steps: int
    min_probability: float

    def walk(self, space: LatentSpace, batch: QueryBatch) -> PathWalk:
        """Every point of ``batch``'s paths, realised and judged on demand (also what a failed query is diagnosed from,
        :func:`lapace_plugin.selection.select`)."""
        return walk(space, batch, self.kind, self.n_steps, self.min_probability)

    def candidates(self, space: LatentSpace, batch: QueryBatch) -> Candidates:
        return self.search.run(self.walk(space, batch))


def path_frame(space: LatentSpace, batch: QueryBatch, kind: LatentPath, n_steps: int, min_probability: float = 0.0) -> pd.DataFrame:
    """Every point of every path: ``query, component, step, tau, distance`` (mean per-feature distance to the query,
    :func:`lapace_plugin.distance.mean_l1`), ``probability`` (of the target class), ``valid`` (for the call's strategy)
    and the raw features: the proximity/robustness curve along tau."""
    from .search import GridSearch

    grid = GridSearch().run(walk(space, batch, kind, n_steps, min_probability))
    n, m, s = grid.shape
    enc = space.encoder
    distance = mean_l1(enc.parts(grid.encoded), enc.parts(batch.encoded[:, None, None, :]))
    q, c, t = np.meshgrid(np.arange(n), np.arange(m), np.arange(s), indexing="ij")
    meta = pd.DataFrame({
        "query": np.asarray(batch.raw.index)[q.reshape(-1)],
        "component": [space.names[k] for k in batch.components[q, c].reshape(-1)],
        "step": t.reshape(-1),
        "tau": grid.tau.reshape(-1),
        "distance": distance.reshape(-1),
        "probability": grid.proba.reshape(-1),
        "valid": (grid.valid & batch.usable[:, :, None]).reshape(-1),
    })
    return pd.concat([meta, grid.raw], axis=1)

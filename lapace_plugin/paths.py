"""Path kinds: how the points of a latent path from a query to a target centroid become candidate rows.

Every path is the straight latent segment ``z_tau = (1 - tau) z_x + tau mu_c``; a path kind decides how its points
are turned into rows (see :class:`LatentPath`, :class:`CorrectedPath`, :class:`SparsePath`). :func:`walk` binds a
path kind to a query batch and returns a :class:`PathWalk`, which realises and judges any ``(path, step)`` points;
the searches (:mod:`lapace_plugin.search`) decide which points to ask for. A new path kind is one class here plus
one line in :data:`PATH_KINDS`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from .batch import Points, QueryBatch
from .latent import Correction, LatentSpace
from .registry import Registry

EXACT_TOLERANCE = 1e-5  # scaled units: float32 noise of ``Dec(z_x) + (x - Dec(z_x))`` at tau 0


def interpolate(z_start: np.ndarray, z_end: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Latent points ``(1 - tau) z_start + tau z_end`` for broadcastable ``z_start``, ``z_end`` and ``tau`` (float32)."""
    t = np.asarray(tau).astype(np.float32)
    return (1.0 - t) * z_start + t * z_end


class LatentPath:
    """The paper's path: every latent point is decoded and snapped (tau 0 is the query's reconstruction)."""

    starts_at_input = False

    def __init__(self, margin: float = 0.0, tolerance: float = 0.0) -> None:
        pass

    def residual(self, space: LatentSpace, batch: QueryBatch, z_x: np.ndarray) -> Optional[np.ndarray]:
        """Per-query offset added to decodings, fading from full at tau 0 to none at tau 1 (none here)."""
        return None

    def snapping(self) -> tuple:
        """``(margin, tolerance)`` of :class:`~lapace_plugin.latent.Correction` at tau 0."""
        return 0.0, EXACT_TOLERANCE


class CorrectedPath(LatentPath):
    """The default: add the query's reconstruction residual ``x - Dec(z_x)`` with weight ``1 - tau``.

    ``x_tau = snap(Dec(z_tau) + (1 - tau) (x - Dec(z_x)))`` (one-hot groups are corrected on the decoder's
    probabilities), so tau 0 is exactly the query and tau 1 exactly the decoded centroid.
    """

    starts_at_input = True

    def residual(self, space: LatentSpace, batch: QueryBatch, z_x: np.ndarray) -> Optional[np.ndarray]:
        return batch.encoded - space.decode(z_x)


class SparsePath(CorrectedPath):
    """Corrected, and a feature keeps the query's value unless it changes by more than ``tolerance`` (continuous,
    scaled units) or another category beats the query's by more than ``margin``; both fade to zero at tau 1, so
    paths still end at the centroid."""

    def __init__(self, margin: float = 0.6, tolerance: float = 0.1) -> None:
        self.margin, self.tolerance = margin, tolerance

    def snapping(self) -> tuple:
        return self.margin, self.tolerance


PATH_KINDS = Registry("path", ("latent", LatentPath), ("corrected", CorrectedPath), ("sparse", SparsePath))


class PathWalk:
    """Realise and judge points of a batch's paths: ``walk(paths, steps) -> Points``.

    ``paths`` are flat path indices ``q * m + c`` and ``steps`` indices into ``taus``, both ``(N,)``.
    """

    def __init__(self, space: LatentSpace, batch: QueryBatch, kind: LatentPath, taus: np.ndarray) -> None:
        self.space, self.batch, self.kind, self.taus = space, batch, kind, taus
        self.starts_at_input = kind.starts_at_input
        self.z_x = space.latent_means(batch.encoded, batch.predicted)[0]
        self.mu = space.mu
        self.residual = kind.residual(space, batch, self.z_x)

    def __call__(self, paths: np.ndarray, steps: np.ndarray) -> Points:
        space, batch, taus = self.space, self.batch, self.taus
        x = batch.encoded
        q, ends = batch.of_paths(paths), batch.components.reshape(-1)[paths]
        points = np.empty((len(paths), x.shape[1]), dtype=np.float32)
        repaired = np.zeros(len(paths), dtype=bool)
        # without constraints the last point is exactly the cached decoded centroid
        at_end = (steps == len(taus) - 1) if batch.compiled is None else np.zeros(len(paths), dtype=bool)
        points[at_end] = space.centroids.points[ends[at_end]]
        rest = np.flatnonzero(~at_end)
        if len(rest):
            tau = taus[steps[rest]]
            z = interpolate(self.z_x[q[rest]], self.mu[ends[rest]], tau[:, None])
            correction = None
            if self.residual is not None:
                fade = 1.0 - tau
                margin, tolerance = self.kind.snapping()
                correction = Correction(self.residual[q[rest]] * fade[:, None].astype(np.float32), margin * fade, tolerance * fade)
            points[rest], repaired[rest] = space.realise(z, x[q[rest]], batch.compiled, correction)
        return space.judge(points, x[q], batch.raw.iloc[q], batch.target[q], batch.constraints, repaired)


def walk(space: LatentSpace, batch: QueryBatch, kind: LatentPath, n_steps: int) -> PathWalk:
    """Bind path kind ``kind`` to ``batch`` with ``n_steps + 1`` points per path."""
    return PathWalk(space, batch, kind, np.linspace(0.0, 1.0, n_steps + 1))


def path_frame(space: LatentSpace, batch: QueryBatch, kind: LatentPath, n_steps: int) -> pd.DataFrame:
    """Every point of every path: ``query, component, step, tau, probability, valid`` and the raw features."""
    from .search import GridSearch

    grid = GridSearch().run(walk(space, batch, kind, n_steps))
    n, m, s = grid.shape
    q, c, t = np.meshgrid(np.arange(n), np.arange(m), np.arange(s), indexing="ij")
    meta = pd.DataFrame({
        "query": np.asarray(batch.raw.index)[q.reshape(-1)],
        "component": [space.names[k] for k in batch.components[q, c].reshape(-1)],
        "step": t.reshape(-1),
        "tau": grid.tau.reshape(-1),
        "probability": grid.proba.reshape(-1),
        "valid": (grid.valid & batch.usable[:, :, None]).reshape(-1),
    })
    return pd.concat([meta, grid.raw], axis=1)

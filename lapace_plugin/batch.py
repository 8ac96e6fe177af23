"""The typed objects that flow through ``Lapace.explain``: the query batch, judged points and candidates.

Shapes: ``n`` queries, ``m`` target components (one path each), ``s`` steps per path, ``D`` encoded width.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import pandas as pd

from .constraints import Constraints, EncodedConstraints


@dataclass
class QueryBatch:
    """The queries of one explain call, in every form the pipeline needs.

    Attributes
    ----------
    raw
        Validated raw queries ``(n, features)``, with the caller's index.
    encoded
        Encoded queries ``(n, D)``.
    predicted, target
        Predicted and target class index per query ``(n,)``.
    components
        Target components per query ``(n, m)``: the ends of its paths.
    usable
        ``(n, m)``: the path's centroid is valid and the query is not already predicted as the target.
    constraints, compiled
        The call's constraints (``None`` for none) and their encoded form.
    """

    raw: pd.DataFrame
    encoded: np.ndarray
    predicted: np.ndarray
    target: np.ndarray
    components: np.ndarray
    usable: np.ndarray
    constraints: Optional[Constraints] = None
    compiled: Optional[EncodedConstraints] = None

    @property
    def n(self) -> int:
        return len(self.encoded)

    @property
    def m(self) -> int:
        return self.components.shape[1]

    def of_paths(self, paths: np.ndarray) -> np.ndarray:
        """Query position of flat path indices ``q * m + c``."""
        return paths // self.m

    def take(self, rows: np.ndarray) -> "QueryBatch":
        """The batch restricted to query positions ``rows``."""
        return replace(
            self, raw=self.raw.iloc[rows], encoded=self.encoded[rows], predicted=self.predicted[rows],
            target=self.target[rows], components=self.components[rows], usable=self.usable[rows],
        )


CHECKS = (
    "assigned to another class",
    "holding a pair of values no training row holds",
    "breaking the constraints",
    "with numbers the consistency check rejects",
    "under min_probability",
)
"""The checks a candidate row must pass, in the order they are run (:meth:`lapace_plugin.latent.LatentSpace.judge_raw`,
then a strategy's probability floor), as a failed query's reason counts the points that failed each first: "of the
100 points of its 5 paths: 62 assigned to another class, ..."."""
CLASS, PAIR, CONSTRAINT, CONSISTENCY, FLOOR = range(len(CHECKS))


@dataclass
class Points:
    """Judged candidate rows, flat ``(N,)``: encoded and raw rows, target probability, validity, repair flag and, where
    recorded, the first check of :data:`CHECKS` each row failed (its index; -1 for a valid row)."""

    encoded: np.ndarray  # (N, D) snapped encoded rows
    raw: pd.DataFrame  # N raw rows, RangeIndex
    proba: np.ndarray  # (N,) probability of the target class
    valid: np.ndarray  # (N,) assigned to the target class and within the constraints
    repaired: np.ndarray  # (N,) broke a constraint: projected onto it (with gradient steps first where needed)
    failed: Optional[np.ndarray] = None  # (N,) index into CHECKS of the first check failed, -1 where valid


@dataclass
class Candidates:
    """Candidate counterfactuals per query, path and step: arrays ``(n, m, s)`` (``encoded`` is ``(n, m, s, D)``).

    ``raw`` holds the ``n * m * s`` raw rows in C order; ``reverted`` counts features a refiner set back; ``note``
    ``(n, m)``, if given, says why a refiner left a path without a point (``""`` where it did not).
    """

    encoded: np.ndarray
    raw: pd.DataFrame
    proba: np.ndarray
    valid: np.ndarray
    repaired: np.ndarray
    tau: np.ndarray
    reverted: np.ndarray
    note: Optional[np.ndarray] = None

    @classmethod
    def of(cls, points: Points, shape: tuple, tau: np.ndarray, reverted: Optional[np.ndarray] = None) -> "Candidates":
        """Reshape flat judged points to ``shape = (n, m, s)``."""
        return cls(
            encoded=points.encoded.reshape(shape + (-1,)),
            raw=points.raw,
            proba=points.proba.reshape(shape),
            valid=points.valid.reshape(shape),
            repaired=points.repaired.reshape(shape),
            tau=np.broadcast_to(tau, shape),
            reverted=np.zeros(shape, dtype=int) if reverted is None else reverted.reshape(shape),
        )

    @property
    def shape(self) -> tuple:
        return self.valid.shape

    def first_valid(self, usable: Optional[np.ndarray] = None) -> np.ndarray:
        """Index of the first valid step of each path ``(n, m)``, ``-1`` where there is none (or the path is unusable)."""
        valid = self.valid if usable is None else self.valid & usable[:, :, None]
        return np.where(valid.any(-1), valid.argmax(-1), -1)

    def at(self, step: np.ndarray) -> "Candidates":
        """The point at ``step (n, m)`` (``-1`` reads step 0) of every path, as candidates with one step."""
        n, m, s = self.shape
        q, c = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
        s_ = np.maximum(step, 0)
        flat = ((q * m + c) * s + s_).reshape(-1)
        return Candidates(
            encoded=self.encoded[q, c, s_][:, :, None],
            raw=self.raw.iloc[flat].reset_index(drop=True),
            proba=self.proba[q, c, s_][:, :, None],
            valid=self.valid[q, c, s_][:, :, None],
            repaired=self.repaired[q, c, s_][:, :, None],
            tau=self.tau[q, c, s_][:, :, None],
            reverted=self.reverted[q, c, s_][:, :, None],
        )

"""Everything ``Lapace.fit`` learns, in one object: :class:`FittedState`.

``fit`` builds it, :mod:`lapace_plugin.persistence` writes it and reads it back whole, and
:class:`~lapace_plugin.latent.LatentSpace` takes it; ``Lapace``'s fitted attributes (``schema_``, ``model_``,
``centroids_``...) read from it (:func:`expose`). Its caches (:class:`ProjectionCache`, bounded, and the
:class:`~lapace_plugin.typical.OutlierFactor` of each class) are not saved.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd
import torch

from .consistency import ConsistencyCheck
from .encoding import TabularEncoder
from .latent import Centroids, Members
from .lgmvae import LGMVAE
from .schema import FeatureSchema
from .support import PairSupport
from .typical import OutlierFactor

MAX_PROJECTIONS = 100_000
"""Most constrained signatures whose projected centroids (the ``last`` strategy) are kept between explain calls."""


class ProjectionCache:
    """Target centroids projected onto a query's constraints, keyed by the constrained signature (the ``last``
    strategy, :func:`lapace_plugin.strategies._projected_centroids`); shared by the calls of one fitted explainer so
    that inputs differing only in unconstrained features get identical counterfactuals across calls.

    Bounded: :meth:`trim` (called when each explain call starts) keeps the ``max_entries`` most recently used
    entries; within a call nothing is dropped. Not saved with the explainer; refitting or loading starts empty.
    """

    def __init__(self, max_entries: int = MAX_PROJECTIONS) -> None:
        self.max_entries = max_entries
        self._entries: "OrderedDict[Any, Any]" = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __getitem__(self, key: Any) -> Any:
        self._entries.move_to_end(key)
        return self._entries[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)

    def __len__(self) -> int:
        return len(self._entries)

    def trim(self) -> None:
        """Drop the least recently used entries beyond ``max_entries``."""
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class FittedState:
    """What a fit learned (or a load read): the encoder, network, classes, pair support, decoded centroids and kept
    training rows, plus how the centroids were settled. ``centroids`` is ``None`` only while ``fit`` settles them;
    ``history`` (validation loss per epoch) is empty after a load; ``consistency`` (the learned consistency check,
    :mod:`lapace_plugin.consistency`) is ``None`` for explainers saved before it existed."""

    schema: FeatureSchema
    encoder: TabularEncoder
    classes: List[Any]
    model: LGMVAE
    device: torch.device
    support: PairSupport
    history: List[float] = field(default_factory=list)
    members: Optional[Members] = None
    centroids: Optional[Centroids] = None
    centroid_validity_initial: float = float("nan")
    centroids_moved: List[str] = field(default_factory=list)
    fit_time: float = 0.0
    projections: ProjectionCache = field(default_factory=ProjectionCache)
    outlier_factor: OutlierFactor = field(default_factory=OutlierFactor)
    consistency: Optional[ConsistencyCheck] = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> List[str]:
        """Component names ``"label/index"``, one per component."""
        m = self.model.m
        return ["%s/%d" % (self.classes[k // m], k % m) for k in range(self.model.n_components)]

    def inconsistent(self, rows: pd.DataFrame, labels: Any) -> np.ndarray:
        """Whether raw ``rows`` (validated) score above the consistency threshold of their class index ``labels``
        (one or one per row); all False without a check."""
        if self.consistency is None or not len(rows):
            return np.zeros(len(rows), dtype=bool)
        labels = np.array(np.broadcast_to(np.asarray(labels, dtype=np.int64), (len(rows),)))
        return self.consistency.inconsistent(self.model, self.encoder.encode(rows), labels, self.device)

    def set_centroids(self, points: np.ndarray, proba: np.ndarray, valid: np.ndarray) -> None:
        """Store the decoded centroids (and their raw rows); projections of older centroids are dropped."""
        raw = self.encoder.decode(points, index=pd.Index(self.names, name="component"))
        self.centroids = Centroids(points, proba, valid, raw)
        self.projections.clear()

    # the decoded centroids and what derives from them, as ``Lapace`` exposes them
    @property
    def centroid_points(self) -> np.ndarray:
        return self.centroids.points

    @property
    def centroid_proba(self) -> np.ndarray:
        return self.centroids.proba

    @property
    def centroid_valid(self) -> np.ndarray:
        return self.centroids.valid

    @property
    def centroid_class(self) -> np.ndarray:
        return np.arange(self.model.n_components) // self.model.m

    @property
    def centroid_validity(self) -> float:
        return float(self.centroids.valid.mean())

    @property
    def distinct_centroids(self) -> Dict[Any, int]:
        points, valid, owner = self.centroids.points, self.centroids.valid, self.centroid_class
        return {self.classes[c]: int(len(np.unique(points[(owner == c) & valid], axis=0))) for c in range(self.n_classes)}

    @property
    def centroids_frame(self) -> pd.DataFrame:
        return self.centroids.raw


EXPOSED = {
    "schema_": "schema", "encoder_": "encoder", "model_": "model", "classes_": "classes", "n_classes_": "n_classes",
    "device_": "device", "support_": "support", "history_": "history", "members_": "members", "fit_time_": "fit_time",
    "centroid_points_": "centroid_points", "centroid_proba_": "centroid_proba", "centroid_valid_": "centroid_valid",
    "centroid_class_": "centroid_class", "centroid_validity_": "centroid_validity",
    "centroid_validity_initial_": "centroid_validity_initial", "centroids_moved_": "centroids_moved",
    "distinct_centroids_": "distinct_centroids", "centroids_": "centroids_frame",
}
"""``Lapace``'s fitted attributes and the :class:`FittedState` fields they read."""


def expose(cls: Any) -> Any:
    """Class decorator: each of :data:`EXPOSED` as a read-only attribute reading ``self._fitted()``'s field (which
    raises ``NotFittedError``, an ``AttributeError``, before a fit, so ``hasattr`` says whether it is fitted)."""
    for attribute, name in EXPOSED.items():
        setattr(cls, attribute, property(lambda self, name=name: getattr(self._fitted(), name), doc="``state_.%s``" % name))
    return cls

"""The declared contracts of LAPACE's building blocks: path kinds, searches, strategies and refiners.

Each building block kind has one contract here and one :class:`~lapace_plugin.registry.Registry` typed by it
(``PATH_KINDS``, ``SEARCHES``, ``STRATEGIES``, ``REFINERS``). A new building block is one class that satisfies its
contract, in a file of its own or beside its peers, plus one registry line (README "Architecture").

The contracts are ``typing.Protocol`` classes (structural: a class needs not inherit from them). Python 3.7 has no
``typing.Protocol``; there they are plain documented classes, so the package still imports, and only Python 3.8+
can check a class against them with ``isinstance``.

How a registry builds a block: ``Registry.build(name, **settings)`` passes a builder only the settings its
signature names, so an option reaches only the pieces that use it (``sparse_margin`` and ``sparse_tolerance``
reach the sparse path kind alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from .batch import Candidates, QueryBatch
    from .latent import LatentSpace
    from .paths import Ends, PathWalk

try:
    from typing import Protocol, runtime_checkable
except ImportError:  # Python 3.7: documentation-only contracts
    Protocol = object  # type: ignore[assignment]

    def runtime_checkable(cls: Any) -> Any:  # type: ignore[no-redef]
        return cls


@runtime_checkable
class PathKind(Protocol):
    """How the points of a latent path become candidate rows (:mod:`lapace_plugin.paths`).

    Attributes
    ----------
    starts_at_input
        Whether tau 0 decodes exactly to the query (the searches then skip it).
    ends_at_centroid
        Whether tau 1 is the target component's decoded centroid.
    """

    starts_at_input: bool
    ends_at_centroid: bool

    def residual(self, space: "LatentSpace", batch: "QueryBatch", z_x: np.ndarray) -> Optional[np.ndarray]:
        """Per-query offset ``(n, D)`` added to decodings, fading from full at tau 0 to none at tau 1 (or ``None``)."""
        ...

    def ends(self, space: "LatentSpace", batch: "QueryBatch") -> "Ends":
        """The latent ends of the batch's ``(n, m)`` paths (and their residuals, if any)."""
        ...

    def snapping(self) -> tuple:
        """``(margin, tolerance)`` of :class:`~lapace_plugin.latent.Correction` at tau 0."""
        ...


@runtime_checkable
class Search(Protocol):
    """Which points of a batch's paths to realise and judge (:mod:`lapace_plugin.search`)."""

    def run(self, walk: "PathWalk") -> "Candidates":
        """Candidates ``(n, m, s)`` of the walk's paths; every valid point a path's first valid one or later."""
        ...


@runtime_checkable
class Strategy(Protocol):
    """Which point of each path becomes its counterfactual (:mod:`lapace_plugin.strategies`).

    Attributes
    ----------
    refinable
        Whether refiners (``revert=True``) apply to its counterfactuals.
    min_probability
        Target-class probability every counterfactual of it reaches (0: being assigned to the target class suffices);
        the searches and refiners treat points below it as invalid.
    """

    refinable: bool
    min_probability: float

    def candidates(self, space: "LatentSpace", batch: "QueryBatch") -> "Candidates":
        """Candidates ``(n, m, s)`` for the batch's paths; selection keeps each path's first valid one."""
        ...


@runtime_checkable
class Refiner(Protocol):
    """A step after a strategy that moves each counterfactual back towards its query while it stays valid
    (:mod:`lapace_plugin.refine`)."""

    def refine(self, space: "LatentSpace", batch: "QueryBatch", candidates: "Candidates") -> "Candidates":
        """Refined candidates ``(n, m, 1)``: each path's first valid point, refined."""
        ...


__all__ = ["PathKind", "Refiner", "Search", "Strategy"]

"""``strategy="robust"``: the first point of each path the classifier gives at least ``min_probability``.

Between ``"first"`` (the first point assigned to the target class: close, but often just across the boundary, so a
retrained classifier may flip it) and ``"last"`` (the decoded centroid: robust, far), ``"robust"`` walks each path
until the target class's probability reaches ``min_probability`` (a per-call parameter, default 0.6) and stops there.

What it guarantees: every counterfactual it returns is assigned to the target class, satisfies the constraints and the
plausibility filter, and has a target probability of at least ``min_probability`` under the explained classifier;
``revert=True`` and ``diverse=True`` keep that floor while they move points back towards the query. It is the
closest point of its path with that margin (on the path's grid; ``search="fast"`` may miss a valid island between
two coarse points, as for ``"first"``). A margin is a proxy for robustness to retraining, not a proof: the study's
``model robustness`` measures it (README "Strategies"). ``Explanation.paths`` holds every point of every path with
its target probability and its distance to the query: the whole proximity/robustness curve along tau, for users who
choose their own point.
"""

from __future__ import annotations

from .contracts import PathKind, Search
from .paths import WalkingStrategy


class Robust(WalkingStrategy):
    """The first point on each path with target probability at least ``min_probability``."""

    refinable = True  # refiners keep the floor (``min_probability``)

    def __init__(self, kind: PathKind, search: Search, n_steps: int, min_probability: float = 0.6) -> None:
        self.kind, self.search, self.n_steps, self.min_probability = kind, search, n_steps, float(min_probability)

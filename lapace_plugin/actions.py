"""Actions: one readable rule applied to many people's own rows, and the check of whom it gives recourse.

An :class:`Action` is a few :class:`Change` s ("occupation -> Prof-specialty", "education_num +2",
"capital_gain -> ~7,000"). :func:`apply_action` applies it to each person's own row (numbers rounded to the data's
precision and kept inside the learnt ranges, ordinal levels inside their categories); :func:`action_outcomes` then
says, per person, whether the changed row respects that person's constraints, holds no pair of states real rows
(almost) never hold (the support filter, :class:`lapace_plugin.support.PairSupport`) and is assigned to the target
class by the classifier (:func:`lapace_plugin.classifier.checked_proba`, :func:`lapace_plugin.rules.assigned_to`),
and what it costs: the ``(1/d)``-L1 distance of :mod:`lapace_plugin.distance` and the features changed
(:func:`lapace_plugin.rules.changed_features`). The global explainer and the AReS / GLOBE-CE baselines all judge
their actions with this one function.
"""

from __future__ import annotations

from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .classifier import checked_proba
from .constraints import Constraints
from .distance import feature_distances
from .relations import derive
from .rules import CHANGE_TOL, assigned_to, changed_features, round_to_precision
from .support import PairSupport, states

KINDS = ("to", "by")
"""``"to"``: set the feature to ``value``; ``"by"``: add ``value`` (raw units; levels for an ordinal feature)."""


class Change(NamedTuple):
    """One feature's part of an action: ``kind`` (:data:`KINDS`) and its ``value``."""

    feature: str
    kind: str
    value: Any

    def describe(self) -> str:
        if self.kind == "to":
            shown = _number(self.value) if isinstance(self.value, (int, float, np.number)) else str(self.value)
            return "%s -> %s%s" % (self.feature, "~" if isinstance(self.value, (float, np.floating)) else "", shown)
        return "%s %s%s" % (self.feature, "+" if self.value >= 0 else "-", _number(abs(self.value)))


class Action(NamedTuple):
    """A rule a person can read, applied to each person's own row: a tuple of :class:`Change` s on distinct features,
    and where it came from (``source``, e.g. ``"centroid 0/2 -> 1/4"``)."""

    changes: Tuple[Change, ...]
    source: str = ""

    @property
    def features(self) -> List[str]:
        return [c.feature for c in self.changes]

    def describe(self) -> str:
        """E.g. ``"occupation -> Prof-specialty and education_num +2"``."""
        return " and ".join(c.describe() for c in self.changes) or "(no change)"

    def key(self) -> Tuple[Any, ...]:
        """Identity of the rule (its changes, not its source): equal keys are the same action."""
        return tuple(sorted((c.feature, c.kind, str(c.value)) for c in self.changes))

    def scaled(self, factor: float, schema: Any) -> "Action":
        """The same rule with every numeric ``"by"`` change times ``factor`` (rounded to the data's precision;
        ordinal levels to whole steps); ``"to"`` changes are kept."""
        out = []
        for c in self.changes:
            if c.kind == "by":
                value = float(np.round(c.value * factor)) if c.feature in schema.ordinal else float(
                    round_to_precision([c.value * factor], schema, c.feature)[0])
                if value == 0:
                    continue
                c = Change(c.feature, "by", value)
            out.append(c)
        return Action(tuple(out), self.source)


class Outcome(NamedTuple):
    """Per person (rows of the people given), what one action does for them."""

    covered: np.ndarray  # (n,) bool: respects the constraints, plausible, assigned to the target class
    cost: np.ndarray  # (n,) float: (1/d)-L1 distance from the person's row (NaN where not covered)
    changed: np.ndarray  # (n,) int: features the action changes on the person's row
    broken: np.ndarray  # (n,) bool: breaks the person's constraints (or changes nothing)
    rare: np.ndarray  # (n,) bool: holds a pair of states real rows (almost) never hold


def apply_action(action: Action, X: pd.DataFrame, schema: Any) -> pd.DataFrame:
    """Each row of raw ``X`` with the action applied: numbers rounded (:func:`lapace_plugin.rules.round_to_precision`)
    and kept within the schema's ranges, ordinal levels within their categories, derived features computed again."""
    out = X.copy()
    for c in action.changes:
        if c.kind not in KINDS:
            raise ValueError("unknown change kind %r of %r; known: %s" % (c.kind, c.feature, KINDS))
        if c.feature in schema.ordinal:
            cats = list(schema.ordinal[c.feature])
            if c.kind == "to":
                out[c.feature] = c.value
            else:
                level = pd.Categorical(X[c.feature].to_numpy(), categories=cats).codes + int(round(c.value))
                out[c.feature] = np.asarray(cats, dtype=object)[np.clip(level, 0, len(cats) - 1)]
        elif c.feature in schema.categorical:
            if c.kind != "to":
                raise ValueError("categorical feature %r can only be set ('to'), not shifted" % c.feature)
            out[c.feature] = c.value
        else:
            lo, hi = schema.ranges[c.feature]
            base = np.asarray(X[c.feature].to_numpy(), dtype=float)
            values = np.full(len(X), float(c.value)) if c.kind == "to" else base + float(c.value)
            out[c.feature] = round_to_precision(np.clip(values, lo, hi), schema, c.feature, X[c.feature].dtype)
    return derive(schema, out)  # derived features follow the changed ones (lapace_plugin.relations)


def action_outcomes(
    actions: Sequence[Action],
    X: pd.DataFrame,
    target: np.ndarray,
    schema: Any,
    predict_proba: Callable[[pd.DataFrame], Any],
    constraints: Optional[Constraints] = None,
    support: Optional[PairSupport] = None,
    min_pair_count: int = 1,
) -> List[Outcome]:
    """What each action does for each person of raw ``X`` (the refused), one classifier call for all of them.

    Parameters
    ----------
    actions
        The actions to judge.
    X
        The people's own raw rows, shape ``(n, features)``.
    target
        Target class index per person ``(n,)``.
    schema, predict_proba
        The explainer's schema and the explained classifier.
    constraints
        Each person's constraints, judged against their own row (:meth:`Constraints.broken`).
    support, min_pair_count
        The support filter: a changed row holding a pair of states fewer than ``min_pair_count`` training rows hold,
        which the person does not hold already, is not plausible (``support=None``: off).
    """
    if not len(actions):
        return []
    n = len(X)
    changed_rows = pd.concat([apply_action(a, X, schema) for a in actions], ignore_index=True)
    factual = X.iloc[np.tile(np.arange(n), len(actions))].reset_index(drop=True)
    moved = changed_features(schema, factual, changed_rows)
    broken = ~moved.any(1)
    if constraints is not None:
        broken |= constraints.broken(factual, changed_rows, schema)
    rare = np.zeros(len(changed_rows), dtype=bool)
    if support is not None and min_pair_count > 0:
        rare = support.rare(states(schema, changed_rows, support.masses), min_pair_count, own=states(schema, factual, support.masses))
    ok = ~broken & ~rare
    proba = np.full((len(changed_rows), 2), np.nan)
    if ok.any():
        proba = checked_proba(predict_proba, changed_rows[ok])
        assigned = np.zeros(len(changed_rows), dtype=bool)
        assigned[np.flatnonzero(ok)] = assigned_to(proba, np.tile(np.asarray(target), len(actions))[ok])
    else:
        assigned = np.zeros(len(changed_rows), dtype=bool)
    covered = ok & assigned
    cost = feature_distances(schema, factual, changed_rows).sum(1) / float(len(schema.features))
    out = []
    for a in range(len(actions)):
        rows = slice(a * n, (a + 1) * n)
        out.append(Outcome(covered[rows], np.where(covered[rows], cost[rows], np.nan), moved[rows].sum(1),
                           broken[rows], rare[rows]))
    return out


def numeric_change(schema: Any, feature: str, before: float, after: float, at_mass: bool) -> Optional[Change]:
    """The change of a numeric or ordinal feature from a typical ``before`` to ``after``: ``"to"`` the value when the
    feature has a point mass the people sit at (``capital_gain -> ~7,000``), else ``"by"`` the difference; ``None``
    when it is within :data:`lapace_plugin.rules.CHANGE_TOL` of the range."""
    if feature in schema.ordinal:
        steps = int(round(after - before))
        return Change(feature, "by", float(steps)) if steps else None
    lo, hi = schema.ranges[feature]
    if abs(after - before) <= CHANGE_TOL * max(hi - lo, 1e-12):
        return None
    if at_mass:
        value = float(round_to_precision([after], schema, feature)[0])
        return Change(feature, "to", value) if value != schema.point_mass.get(feature) else None
    delta = float(round_to_precision([after - before], schema, feature)[0])
    return Change(feature, "by", delta) if delta else None


def _number(value: float) -> str:
    value = float(value)
    if value == int(value):
        return "{:,}".format(int(value))
    return "{:,.3g}".format(value) if abs(value) < 1 else "{:,.1f}".format(value)


__all__ = ["Action", "Change", "KINDS", "Outcome", "action_outcomes", "apply_action", "numeric_change"]

"""Candidate actions from the L-GMVAE's structure, the two constructions :func:`lapace_plugin.global_recourse.explain_global`
chooses among.

``"centroid"``: for every pair (refused component ``c``, target component ``k``), decode points of the latent segment
``mu_c -> mu_k`` at a few fractions ``tau``; the features that differ between the decoded ``mu_c`` (the typical
refused person of ``c``) and each point, largest first, give actions of 1 to ``max_features`` changes whose size grows
with ``tau``. ``"counterfactual"``: LAPACE's local counterfactuals of a sample of the refused, grouped by target
component and by which features they change (and to which category); each group gives an action whose numeric
changes take the group's quartiles (a ladder of sizes the selection picks the smallest useful one from).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .actions import Action, Change, numeric_change
from .constraints import Constraints
from .distance import feature_distances
from .rules import changed_features, round_to_precision

TAUS = (0.25, 0.5, 0.75, 1.0)
"""Fractions of the latent segment from a refused centroid to a target centroid (``"centroid"``)."""

QUANTILES = (0.25, 0.5, 0.75, 0.9)
"""Sizes of a counterfactual group's numeric changes (``"counterfactual"``): these quantiles of its members'."""

MIN_GROUP = 2
"""Counterfactuals a group needs to give an action."""


def allowed_change(change: Change, constraints: Optional[Constraints]) -> bool:
    """Whether a change can respect ``constraints`` for someone: not on an immutable feature, a monotone feature
    moved its way only (a ``"to"`` is judged per person), a category among the allowed ones."""
    if constraints is None:
        return True
    f = change.feature
    if f in constraints.immutable:
        return False
    if change.kind == "by" and ((f in constraints.increase and change.value < 0) or (f in constraints.decrease and change.value > 0)):
        return False
    if change.kind == "to" and f in constraints.categories and change.value not in constraints.categories[f]:
        return False
    return True


Found = Tuple[float, Change, Change]
"""A change with its scaled size and its twin: for a numeric ``"by"`` change, ``"to"`` the value it reached (a rule
that asks less of people already close to it), else the change itself."""


def changes_between(schema: Any, before: pd.DataFrame, after: pd.DataFrame, constraints: Optional[Constraints]) -> List[List[Found]]:
    """Per row, the allowed changes turning row-aligned ``before`` into ``after`` with their scaled sizes and twins,
    largest first."""
    before, after = before.reset_index(drop=True), after.reset_index(drop=True)
    sizes = feature_distances(schema, before, after)
    moved = changed_features(schema, before, after)
    cols = {f: (before[f].to_numpy(), after[f].to_numpy()) for f in schema.features}
    out = []
    for i in range(len(before)):
        found = []
        for j in np.flatnonzero(moved[i]):
            f = schema.features[j]
            a, b = cols[f][0][i], cols[f][1][i]
            if f in schema.categorical:
                change: Optional[Change] = Change(f, "to", b)
            elif f in schema.ordinal:
                cats = list(schema.ordinal[f])
                change = numeric_change(schema, f, cats.index(a), cats.index(b), False)
            else:
                at_mass = f in schema.point_mass and float(a) == schema.point_mass[f]
                change = numeric_change(schema, f, float(a), float(b), at_mass)
            if change is not None and allowed_change(change, constraints):
                twin = Change(f, "to", _rounded(schema, f, float(b))) if change.kind == "by" and f not in schema.ordinal else change
                found.append((float(sizes[i, j]), change, twin))
        out.append(sorted(found, key=lambda sc: -sc[0]))
    return out


def _prefixes(changes: Sequence[Found], max_features: int, source: str) -> List[Action]:
    """Actions of the 1, 2, ... ``max_features`` largest changes, and their twins."""
    return [Action(tuple(found[k] for found in changes[:j]), source) for j in range(1, min(max_features, len(changes)) + 1) for k in (1, 2)]


def centroid_actions(explainer: Any, target: int, sources: Sequence[int], constraints: Optional[Constraints], max_features: int) -> List[Action]:
    """Actions from decoded centroid-directed moves: refused components (of classes ``sources``) to the valid
    components of class ``target`` (see the module docstring)."""
    space, m = explainer._space(), explainer.model_.m
    mu = explainer.centroid_latents_
    targets = [k for k in range(target * m, (target + 1) * m) if explainer.centroid_valid_[k]]
    refused = [c for s in sources for c in range(s * m, (s + 1) * m)]
    pairs = [(c, k, tau) for c in refused for k in targets for tau in TAUS]
    z = np.array([mu[c] for c in refused] + [(1 - tau) * mu[c] + tau * mu[k] for c, k, tau in pairs], dtype=np.float32)
    raw = explainer.encoder_.decode(explainer.encoder_.snap(space.decode(z)))
    before = raw.iloc[[refused.index(c) for c, _, _ in pairs]]
    found = changes_between(explainer.schema_, before, raw.iloc[len(refused):], constraints)
    out: List[Action] = []
    for (c, k, tau), changes in zip(pairs, found):
        out.extend(_prefixes(changes, max_features, "centroid %s -> %s (tau %.2f)" % (space.names[c], space.names[k], tau)))
    return out


def counterfactual_actions(
    explainer: Any, people: pd.DataFrame, target: np.ndarray, constraints: Optional[Constraints], max_features: int
) -> List[Action]:
    """Actions from LAPACE's local counterfactuals of ``people`` grouped by target component and changed features
    (see the module docstring)."""
    schema = explainer.schema_
    # unconstrained paths (constraint repair is slow): changes a person's constraints forbid are dropped below, and
    # every action is judged against each person's constraints afterwards
    found = explainer.explain(people, target_class=target, strategy="first")
    cfs = found.counterfactuals_with_paths()
    if not len(cfs):
        return []
    found = changes_between(schema, people.loc[cfs["query"].to_numpy()], cfs[list(schema.features)], constraints)
    groups: Dict[Tuple[Any, ...], List[List[Found]]] = {}
    for i, changes in enumerate(found):
        for j in range(1, min(max_features, len(changes)) + 1):
            top = changes[:j]
            key = (str(cfs["component"].iloc[i]),) + tuple(
                (c.feature, c.kind, c.value if c.kind == "to" and c.feature in schema.categorical else c.value > 0) for _, c, _ in top)
            groups.setdefault(key, []).append(top)
    out = []
    for key, members in groups.items():
        if len(members) < MIN_GROUP:
            continue
        source = "counterfactuals to %s (%d)" % (key[0], len(members))
        for q in QUANTILES:
            for k in (1, 2):
                changes = []
                for j, found_j in enumerate(members[0]):
                    first = found_j[k]
                    values = np.array([float(m[j][k].value) for m in members]) if first.feature not in schema.categorical else None
                    if values is None:
                        value = first.value
                    elif first.kind == "to":
                        value = float(np.quantile(values, q))
                    else:
                        value = float(np.quantile(np.abs(values), q)) * np.sign(values[0])
                    if first.kind == "by" and first.feature in schema.ordinal:
                        value = float(np.round(value))
                    changes.append(Change(first.feature, first.kind, value if values is None else _rounded(schema, first.feature, value)))
                changes = [c for c in changes if not (c.kind == "by" and c.value == 0)]
                if changes:
                    out.append(Action(tuple(changes), source))
    return out


def _rounded(schema: Any, feature: str, value: float) -> float:
    return float(round_to_precision([value], schema, feature)[0])


def unique(actions: Sequence[Action]) -> List[Action]:
    """The actions without repeats (the first source kept)."""
    seen: Dict[Tuple[Any, ...], Action] = {}
    for a in actions:
        if a.changes and a.key() not in seen:
            seen[a.key()] = a
    return list(seen.values())


__all__ = ["MIN_GROUP", "QUANTILES", "TAUS", "allowed_change", "centroid_actions", "changes_between", "counterfactual_actions", "unique"]

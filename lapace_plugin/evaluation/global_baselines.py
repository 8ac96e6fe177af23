"""AReS- and GLOBE-CE-style global counterfactual summaries, the baselines of ``lapace study --global``.

Both are written here from their papers, simplified as documented below, and judged exactly like LAPACE's actions:
every action is applied to each person's own row and counts for them only when it respects their constraints, passes
the support filter and flips the classifier (:func:`lapace_plugin.actions.action_outcomes`); each person takes the
cheapest action that works for them. They select from their candidate pools with the same greedy objective as LAPACE
(:func:`lapace_plugin.global_recourse.select_actions`: coverage first, then mean cost), so that the comparison is one
of candidate actions.

**AReS** (Rawal and Lakkaraju, "Beyond Individualized Recourse: Interpretable and Interactive Summaries of Actionable
Recourses", NeurIPS 2020) builds two-level recourse sets from frequent itemsets: an outer subgroup descriptor, inner
"if feature = a then feature = b" rules over discretised features, chosen by submodular maximisation of coverage less
cost and size terms. Simplifications: numeric features are discretised into their favourable-class training quartiles
and an action sets a feature to the median of a bin ("to"), categorical features to one of their frequent values
among favourable-class training rows (share at least :data:`ARES_MIN_SUPPORT`); itemsets are single actions and pairs
of the :data:`ARES_PAIR_POOL` singles covering most people; no subgroup descriptor (with the cheapest action per
person a descriptor only narrows whom an action applies to); the greedy objective above replaces the weighted one.

**GLOBE-CE** (Ley, Mishra and Magazzeni, "GLOBE-CE: A Translation-Based Approach for Global Counterfactual
Explanations", ICML 2023) learns one global translation direction ``delta`` and gives each person the smallest scalar
``k`` for which ``x + k * delta`` flips them; ``n`` actions are ``n`` scalars. Simplifications: ``delta`` is the mean
difference between the refused and their nearest-neighbour counterfactuals (:class:`~.baselines.nnce.NNCE`, respecting
the immutable features), in scaled numeric units, restricted to its 1 to ``max_features`` largest features (the paper
learns a sparse ``delta`` by optimisation); a categorical feature whose counterfactuals move to one category in most
cases is set to it; the direction and the ``n`` scalars (from :data:`GLOBE_SCALES`) are chosen by the greedy objective.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pandas as pd

from ..actions import Action, Change, action_outcomes
from ..constraints import Constraints
from ..distance import span
from ..global_candidates import allowed_change, unique
from ..global_recourse import select_actions
from ..rules import round_to_precision
from .baselines.nnce import NNCE

ARES_MIN_SUPPORT = 0.05
"""AReS: least share of favourable-class training rows holding a categorical value for it to be an action's value."""

ARES_PAIR_POOL = 20
"""AReS: pairs are built from this many single actions, those covering the most people."""

GLOBE_SCALES = tuple(float(k) for k in np.round(np.geomspace(0.25, 16.0, 25), 3))
"""GLOBE-CE: the scalars ``k`` of the translation the ``n`` actions are chosen from."""

GLOBAL_METHODS = ("lapace", "ares", "globe")
"""Methods of ``lapace study --global``."""


class Judge:
    """The one judgement of candidate actions on a set of refused people: coverage and cost matrices."""

    def __init__(self, schema: Any, predict_proba: Callable[[pd.DataFrame], Any], people: pd.DataFrame, target: np.ndarray,
                 constraints: Optional[Constraints], support: Any, min_pair_count: int) -> None:
        self.schema, self.people, self.target = schema, people, np.asarray(target)
        self.kw = dict(schema=schema, predict_proba=predict_proba, constraints=constraints, support=support, min_pair_count=min_pair_count)

    def matrices(self, actions: List[Action]) -> Any:
        out = action_outcomes(actions, self.people, self.target, **self.kw)
        n = len(self.people)
        return (np.array([o.covered for o in out]).reshape(len(actions), n), np.array([o.cost for o in out]).reshape(len(actions), n))

    def select(self, pool: List[Action], n_actions: int) -> List[Action]:
        pool = unique(pool)
        if not pool:
            return []
        covered, cost = self.matrices(pool)
        return [pool[i] for i in select_actions(covered, cost, n_actions)]


def ares_actions(judge: Judge, X_train: pd.DataFrame, favourable: np.ndarray, n_actions: int,
                 constraints: Optional[Constraints], max_features: int = 2) -> List[Action]:
    """AReS-style actions (see the module docstring) for ``judge``'s people; ``favourable`` marks the training rows
    the classifier assigns to the target class."""
    schema, good = judge.schema, X_train[favourable]
    singles: List[Action] = []
    for f in schema.features:
        if f in schema.categorical or f in schema.ordinal:
            share = good[f].value_counts(normalize=True)
            values = [v for v, s in share.items() if s >= ARES_MIN_SUPPORT]
        else:
            values = sorted(set(round_to_precision(good[f].quantile([0.125, 0.375, 0.625, 0.875]).to_numpy(), schema, f)))
            values = [float(v) for v in values]
        for v in values:
            change = Change(f, "to", v)
            if allowed_change(change, constraints):
                singles.append(Action((change,), "AReS itemset"))
    singles = unique(singles)
    if not singles:
        return []
    pool = list(singles)
    if max_features > 1:
        covered, _ = judge.matrices(singles)
        top = [singles[i] for i in np.argsort(-covered.sum(1), kind="stable")[:ARES_PAIR_POOL]]
        pool += [Action(a.changes + b.changes, "AReS itemset") for a, b in combinations(top, 2) if a.features[0] != b.features[0]]
    return judge.select(pool, n_actions)


def globe_actions(judge: Judge, X_train: pd.DataFrame, predict_proba: Callable[[pd.DataFrame], Any], n_actions: int,
                  constraints: Optional[Constraints], max_features: int = 3) -> List[Action]:
    """GLOBE-CE-style actions (see the module docstring): ``n_actions`` scalings of one translation."""
    schema, people = judge.schema, judge.people
    immutable = [] if constraints is None else list(constraints.immutable)
    nn = NNCE(schema, immutable=immutable).fit(X_train, predict_proba)
    found = nn.explain(people, target_class=judge.target, n_counterfactuals=1)
    if not len(found):
        return []
    own = people.loc[found.index.get_level_values("query")].reset_index(drop=True)
    cfs = found.reset_index(drop=True)
    sizes: Dict[str, float] = {}
    steps: List[Change] = []
    for f in schema.features:
        if f in schema.categorical:
            moved = cfs[f].to_numpy() != own[f].to_numpy()
            if moved.mean() > 0.5:
                value = pd.Series(cfs[f].to_numpy()[moved]).mode().iloc[0]
                steps.append(Change(f, "to", value))
                sizes[f] = float(moved.mean())
            continue
        if f in schema.ordinal:
            cats = list(schema.ordinal[f])
            diff = pd.Categorical(cfs[f], categories=cats).codes - pd.Categorical(own[f], categories=cats).codes
            delta, unit = float(np.mean(diff)), float(max(1, len(cats) - 1))
        else:
            delta = float(np.mean(cfs[f].to_numpy(dtype=float) - own[f].to_numpy(dtype=float)))
            unit = span(schema, f)
        if delta != 0:
            steps.append(Change(f, "by", delta))
            sizes[f] = abs(delta) / unit
    steps = [c for c in steps if allowed_change(c, constraints)]
    steps.sort(key=lambda c: -sizes[c.feature])
    best: List[Action] = []
    best_score = (-1, 0.0)
    for j in range(1, min(max_features, len(steps)) + 1):
        direction = Action(tuple(steps[:j]), "GLOBE-CE translation")
        ladder = unique([direction.scaled(k, schema) for k in GLOBE_SCALES])
        covered, cost = judge.matrices(ladder)
        picked = select_actions(covered, cost, n_actions)
        if not picked:
            continue
        hit = covered[picked].any(0)
        mean = float(np.where(covered[picked], cost[picked], np.inf).min(0)[hit].mean()) if hit.any() else 0.0
        score = (int(hit.sum()), -mean)
        if score > best_score:
            best, best_score = [ladder[i] for i in picked], score
    return best


__all__ = ["ARES_MIN_SUPPORT", "ARES_PAIR_POOL", "GLOBAL_METHODS", "GLOBE_SCALES", "Judge", "ares_actions", "globe_actions"]

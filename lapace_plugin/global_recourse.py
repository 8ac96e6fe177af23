"""Global recourse: a few actions that cover the refused, built from LAPACE's latent structure.

:func:`explain_global` builds candidate actions (:mod:`lapace_plugin.global_candidates`: centroid-directed moves and
clustered local counterfactuals), judges every candidate on a sample of the refused with
:func:`lapace_plugin.actions.action_outcomes` (each person's own row, their constraints, the support filter, the
classifier), selects ``n_actions`` of them greedily (:func:`select_actions`: most people newly covered, then lowest
mean cost; then single swaps that keep the coverage and lower the cost, which picks the smallest magnitude that still
works) and finally judges the chosen actions on every refused person: each takes the cheapest action that gives them
recourse.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .actions import Action, Outcome, action_outcomes
from .constraints import Constraints
from .errors import InvalidParameterError
from .global_candidates import centroid_actions, counterfactual_actions, unique
from .params import Integer
from .rules import check_unique_index
from .targets import resolve_targets

CONSTRUCTIONS = ("centroid", "counterfactual", "both")
"""Candidate pools :func:`explain_global` selects from: decoded centroid-directed moves, clustered local
counterfactuals, or both."""


class GlobalExplanation:
    """A few actions for a population of refused people.

    Attributes
    ----------
    actions
        The chosen :class:`~lapace_plugin.actions.Action` s, in the order they were selected.
    people
        The refused people (raw rows) the actions were judged on.
    target_class
        Target class index per person.
    assignment
        Per person (index of ``people``), the position of the cheapest action that gives them recourse; -1: none.
    cost
        Per person, that action's ``(1/d)``-L1 cost (NaN when uncovered); ``changed``: the features it changes.
    coverage, mean_cost, mean_changed
        Share of the people covered, and the mean cost and features changed over the covered.
    uncovered
        Index labels of the people no action gives recourse to.
    summary
        One row per action: its rule, the share it covers alone, the share it adds to the ones before, the share
        assigned to it and their mean cost.
    constructions
        The evidence for the candidate pool: coverage and mean cost on the selection sample of the actions selected
        from each pool (``"centroid"``, ``"counterfactual"``, ``"both"``), with the pool's size.
    curve
        Coverage and mean cost of the first 1, 2, ... actions, on every person.
    action_costs
        ``(actions, people)``: each action's cost for each person, ``inf`` where it gives them no recourse.
    """

    def __init__(self, actions: List[Action], people: pd.DataFrame, target: np.ndarray, outcomes: List[Outcome],
                 constructions: pd.DataFrame, meta: Dict[str, Any]) -> None:
        self.actions, self.people, self.target_class = actions, people, target
        self.constructions, self.meta = constructions, meta
        n = len(people)
        covered = np.array([o.covered for o in outcomes]).reshape(len(outcomes), n)
        costs = np.array([np.where(o.covered, o.cost, np.inf) for o in outcomes]).reshape(len(outcomes), n)
        changed = np.array([o.changed for o in outcomes]).reshape(len(outcomes), n)
        self.action_costs = costs
        best = costs.argmin(0) if len(outcomes) else np.zeros(n, dtype=int)
        hit = covered.any(0)
        self.assignment = pd.Series(np.where(hit, best, -1), index=people.index, name="action")
        self.cost = pd.Series(np.where(hit, costs[best, np.arange(n)] if len(outcomes) else np.nan, np.nan), index=people.index, name="cost")
        self.changed = pd.Series(np.where(hit, changed[best, np.arange(n)] if len(outcomes) else 0, 0), index=people.index, name="changed")
        self.coverage = float(hit.mean()) if n else float("nan")
        self.mean_cost = float(self.cost[hit].mean()) if hit.any() else float("nan")
        self.mean_changed = float(self.changed[hit].mean()) if hit.any() else float("nan")
        self.uncovered = people.index[~hit]
        rows, curve, before = [], [], np.zeros(n, dtype=bool)
        for a, action in enumerate(actions):
            mine = self.assignment.to_numpy() == a
            rows.append({"action": action.describe(), "coverage_alone": float(covered[a].mean()),
                         "coverage_added": float((covered[a] & ~before).mean()), "assigned": float(mine.mean()),
                         "mean_cost": float(self.cost[mine].mean()) if mine.any() else float("nan"), "source": action.source})
            before |= covered[a]
            first = costs[: a + 1].min(0)
            curve.append({"n_actions": a + 1, "coverage": float(before.mean()),
                          "mean_cost": float(first[before].mean()) if before.any() else float("nan")})
        self.summary = pd.DataFrame(rows, columns=["action", "coverage_alone", "coverage_added", "assigned", "mean_cost", "source"])
        self.curve = pd.DataFrame(curve, columns=["n_actions", "coverage", "mean_cost"])

    def to_frame(self) -> pd.DataFrame:
        """Per person: the action assigned (its rule; empty when none), its cost and the features it changes."""
        text = np.array([a.describe() for a in self.actions] + [""], dtype=object)
        return pd.DataFrame({"action": text[self.assignment.to_numpy()], "cost": self.cost, "changed": self.changed},
                            index=self.people.index)

    def __repr__(self) -> str:
        lines = ["GlobalExplanation: %d action(s) cover %.1f%% of %d refused people, mean cost %.3f (L1), %.1f feature(s) changed"
                 % (len(self.actions), 100 * self.coverage, len(self.people), self.mean_cost, self.mean_changed)]
        lines += ["  %d. %s  (covers %.1f%% alone)" % (i + 1, r.action, 100 * r.coverage_alone) for i, r in enumerate(self.summary.itertuples())]
        return "\n".join(lines)


def merge_features_to_vary(constraints: Optional[Constraints], features_to_vary: Any, schema: Any) -> Optional[Constraints]:
    """``constraints`` with every feature outside DiCE's ``features_to_vary`` (``None`` or ``"all"``: no limit)
    added to the immutable ones."""
    if features_to_vary is None or features_to_vary == "all":
        return constraints
    if isinstance(features_to_vary, str):
        features_to_vary = [features_to_vary]
    schema.check_features(features_to_vary, what="feature in features_to_vary")
    fixed = [f for f in schema.features if f not in set(features_to_vary)]
    base = constraints or Constraints()
    return Constraints(
        immutable=list(dict.fromkeys(base.immutable + fixed)), increase=base.to_dict()["increase"], decrease=base.to_dict()["decrease"],
        ranges=base.ranges, categories=base.categories,
    )


def select_actions(covered: np.ndarray, cost: np.ndarray, n_actions: int, swaps: int = 3) -> List[int]:
    """Indices of up to ``n_actions`` candidates: greedily the one covering most people not yet covered (ties: the
    lowest mean cost of the set, each person taking their cheapest action), then up to ``swaps`` rounds replacing one
    chosen action by another candidate when the coverage stays at least the same and the mean cost falls.

    Parameters
    ----------
    covered
        ``(candidates, people)`` bool: the candidate gives the person recourse.
    cost
        ``(candidates, people)``: its cost for the person (ignored where not covered).
    """
    cost = np.where(covered, cost, np.inf)

    def score(cov: np.ndarray, best: np.ndarray) -> Tuple[int, float]:
        hit = cov.sum()
        return int(hit), float(best[cov].sum() / hit) if hit else 0.0

    chosen: List[int] = []
    cov, best = np.zeros(covered.shape[1], dtype=bool), np.full(covered.shape[1], np.inf)
    for _ in range(min(n_actions, len(covered))):
        new_cov = cov[None, :] | covered
        new_best = np.minimum(best[None, :], cost)
        hits = new_cov.sum(1)
        means = np.where(new_cov, new_best, 0.0).sum(1) / np.maximum(hits, 1)
        hits[chosen] = -1
        order = np.lexsort((means, -hits))
        pick = int(order[0])
        if hits[pick] <= cov.sum() and not means[pick] < score(cov, best)[1]:
            break
        chosen.append(pick)
        cov, best = new_cov[pick], new_best[pick]
    for _ in range(swaps):
        improved = False
        for slot in range(len(chosen)):
            rest = [c for i, c in enumerate(chosen) if i != slot]
            r_cov = covered[rest].any(0) if rest else np.zeros(covered.shape[1], dtype=bool)
            r_best = cost[rest].min(0) if rest else np.full(covered.shape[1], np.inf)
            new_cov, new_best = r_cov[None, :] | covered, np.minimum(r_best[None, :], cost)
            hits = new_cov.sum(1)
            means = np.where(new_cov, new_best, 0.0).sum(1) / np.maximum(hits, 1)
            hits[rest] = -1
            now = score(covered[chosen].any(0), cost[chosen].min(0))
            ok = (hits >= now[0]) & (means < now[1] - 1e-12)
            if ok.any():
                cand = np.flatnonzero(ok)
                chosen[slot] = int(cand[np.lexsort((means[cand], -hits[cand]))[0]])
                improved = True
        if not improved:
            break
    return chosen


def explain_global(
    explainer: Any,
    X: pd.DataFrame,
    target_class: Any = None,
    n_actions: int = 5,
    constraints: Any = None,
    features_to_vary: Any = None,
    construction: str = "both",
    max_features: int = 3,
    n_sample: int = 600,
    random_state: Optional[int] = None,
) -> GlobalExplanation:
    """A few actions that give most of the refused rows of ``X`` recourse, at low cost.

    Parameters
    ----------
    explainer
        A fitted :class:`~lapace_plugin.explainer.Lapace`.
    X
        Raw rows; those the classifier does not assign to their target class are the refused people explained.
    target_class
        As in ``Lapace.explain`` (``None``: the other class of a binary model).
    n_actions
        Actions wanted (fewer when fewer add coverage or lower the cost).
    constraints
        As in ``Lapace.explain``: each action must respect each person's constraints to count for them.
    features_to_vary
        DiCE's list of the only features an action may change (``None`` or ``"all"``: any).
    construction
        Candidate pool (:data:`CONSTRUCTIONS`).
    max_features
        Most features one action changes.
    n_sample
        Refused people the candidates are built and selected on (a seeded sample); the chosen actions are then
        judged on everyone.
    random_state
        Seed of the sample (default: the explainer's ``random_state``, else 0).
    """
    explainer._check_fitted()
    n_actions = Integer(1, 100).check("n_actions", n_actions)
    max_features = Integer(1, 20).check("max_features", max_features)
    n_sample = Integer(1, None).check("n_sample", n_sample)
    if construction not in CONSTRUCTIONS:
        raise InvalidParameterError("construction must be one of %s, got %r" % (CONSTRUCTIONS, construction))
    schema = explainer.schema_
    X = schema.validate(X, name="people")
    check_unique_index(X.index, "people")
    cons = merge_features_to_vary(Constraints.coerce(constraints, schema), features_to_vary, schema)
    predicted = explainer._predict(X, finite="the people").argmax(1)
    target = resolve_targets(target_class, predicted, explainer.classes_, X.index)
    m = explainer.model_.m
    for t in np.unique(target):
        if not explainer.centroid_valid_[t * m : (t + 1) * m].any():
            raise InvalidParameterError("target class %r has no valid decoded centroid: no action can be built towards it"
                                        % (explainer.classes_[t],))
    refused = target != predicted
    people, target, predicted = X[refused], target[refused], predicted[refused]
    seed = random_state if random_state is not None else (explainer.random_state if explainer.random_state is not None else 0)
    rng = np.random.RandomState(int(seed))
    take = np.sort(rng.choice(len(people), min(n_sample, len(people)), replace=False)) if len(people) else np.zeros(0, dtype=int)
    sample, sample_target = people.iloc[take], target[take]
    judge = dict(schema=schema, predict_proba=explainer._predict, constraints=cons, support=explainer.support_,
                 min_pair_count=max(1, int(explainer.min_pair_count)))
    pools: Dict[str, List[Action]] = {"centroid": [], "counterfactual": []}
    if len(sample):
        for t in np.unique(sample_target):
            mine = sample_target == t
            if construction in ("centroid", "both"):
                sources = sorted(set(int(p) for p in predicted[take][mine]))
                pools["centroid"] += centroid_actions(explainer, int(t), sources, cons, max_features)
            if construction in ("counterfactual", "both"):
                pools["counterfactual"] += counterfactual_actions(explainer, sample[mine], sample_target[mine], cons, max_features)
    pools = {k: unique(v) for k, v in pools.items()}
    pools["both"] = unique(pools["centroid"] + pools["counterfactual"])
    pool = pools[construction]
    outcomes = action_outcomes(pool, sample, sample_target, **judge)
    covered = np.array([o.covered for o in outcomes]).reshape(len(pool), len(sample))
    costs = np.array([o.cost for o in outcomes]).reshape(len(pool), len(sample))
    evidence, chosen = [], []
    keys = [a.key() for a in pool]
    for name in ([construction] if construction != "both" else list(CONSTRUCTIONS)):
        rows = [keys.index(a.key()) for a in pools[name]]
        picked = [rows[i] for i in select_actions(covered[rows], costs[rows], n_actions)] if rows else []
        hit = covered[picked].any(0) if picked else np.zeros(len(sample), dtype=bool)
        best = np.where(covered[picked], costs[picked], np.inf).min(0) if picked else np.full(len(sample), np.inf)
        evidence.append({"construction": name, "candidates": len(rows), "actions": len(picked),
                         "coverage": float(hit.mean()) if len(sample) else float("nan"),
                         "mean_cost": float(best[hit].mean()) if hit.any() else float("nan")})
        if name == construction:
            chosen = picked
    actions = [pool[i] for i in chosen]
    final = action_outcomes(actions, people, target, **judge)
    meta = dict(n_actions=n_actions, construction=construction, max_features=max_features, n_sample=len(sample),
                random_state=int(seed), constraints=None if cons is None else cons.to_dict(), n_people=len(people))
    return GlobalExplanation(actions, people, target, final, pd.DataFrame(evidence), meta)


__all__ = ["CONSTRUCTIONS", "GlobalExplanation", "explain_global", "merge_features_to_vary", "select_actions"]

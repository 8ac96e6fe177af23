"""Recourse burden by group: how the coverage and cost of recourse differ between groups of a protected attribute.

For the refused people of a :class:`~lapace_plugin.global_recourse.GlobalExplanation` and a protected attribute (e.g.
adult's ``sex``), :func:`burden_table` gives per group the share the actions cover and their mean cost over the
covered, and the same for **individual recourse** (each person's nearest LAPACE counterfactual under the same
constraints, :func:`individual_recourse`); :func:`burden_gaps` gives the gap between the groups with the highest and
the lowest coverage (groups of at least ``min_group`` people) with a 95% percentile bootstrap interval over people
(the people are resampled, the two groups kept). :func:`plot_burden` draws both.

What it means: under this classifier and these constraints, the actions (or the nearest counterfactuals) flip a
smaller share of one group's refused members, or ask more of them. What it does not mean: it says nothing about
whether the refusals themselves are fair, about groups' sizes among the refused, or about what the changes would cost
a real person (the cost is a distance between rows, not effort or money); and a group gap can come from the groups'
different starting rows (e.g. more of one group already near a threshold), not from the classifier treating the
attribute itself differently.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, List, Optional

import numpy as np
import pandas as pd

from ..distance import feature_distances

KINDS = ("actions", "individual")


def individual_recourse(explainer: Any, people: pd.DataFrame, target_class: Any = None, constraints: Any = None) -> pd.DataFrame:
    """Per person: whether LAPACE finds a counterfactual (``covered``) and the ``(1/d)``-L1 cost of the nearest one
    (NaN when none)."""
    found = explainer.explain(people, target_class=target_class, constraints=constraints, n_counterfactuals=1)
    nearest = found.counterfactuals.reset_index(level="rank", drop=True)
    cost = pd.Series(np.nan, index=people.index)
    if len(nearest):
        cost.loc[nearest.index] = feature_distances(explainer.schema_, people.loc[nearest.index], nearest).mean(1)
    return pd.DataFrame({"covered": cost.notna(), "cost": cost}, index=people.index)


def _kinds(result: Any, individual: Optional[pd.DataFrame]) -> dict:
    out = {"actions": pd.DataFrame({"covered": result.assignment >= 0, "cost": result.cost})}
    if individual is not None:
        out["individual"] = individual.loc[result.people.index]
    return out


def _stats(covered: np.ndarray, cost: np.ndarray) -> tuple:
    n = covered.sum()
    return covered.mean() if len(covered) else np.nan, cost[covered].mean() if n else np.nan


def burden_table(result: Any, groups: pd.Series, individual: Optional[pd.DataFrame] = None, n_boot: int = 1000,
                 random_state: int = 0) -> pd.DataFrame:
    """Per kind (``actions``, ``individual``) and group: people, coverage and mean cost with 95% bootstrap intervals
    (people resampled within the group)."""
    groups = groups.loc[result.people.index]
    rng = np.random.RandomState(random_state)
    rows = []
    for kind, frame in _kinds(result, individual).items():
        for group in sorted(groups.unique(), key=str):
            mine = frame[(groups == group).to_numpy()]
            covered, cost = mine["covered"].to_numpy(bool), mine["cost"].to_numpy(float)
            point = _stats(covered, cost)
            draws = np.array([_stats(covered[i], cost[i]) for i in rng.randint(len(mine), size=(n_boot, len(mine)))])
            low, high = np.nanpercentile(draws, [2.5, 97.5], axis=0) if len(mine) else (np.full(2, np.nan),) * 2
            rows.append({"kind": kind, "group": group, "people": len(mine), "coverage": point[0], "coverage_low": low[0],
                         "coverage_high": high[0], "mean_cost": point[1], "mean_cost_low": low[1], "mean_cost_high": high[1]})
    return pd.DataFrame(rows)


def burden_gaps(result: Any, groups: pd.Series, individual: Optional[pd.DataFrame] = None, n_boot: int = 1000,
                random_state: int = 0, min_group: int = 20) -> pd.DataFrame:
    """Per kind: the coverage gap (highest minus lowest group, among groups of at least ``min_group`` people) and the
    cost gap between the same two groups, with 95% bootstrap intervals over people."""
    groups = groups.loc[result.people.index]
    sizes = groups.value_counts()
    kept = [g for g in sizes.index if sizes[g] >= min_group]
    rng = np.random.RandomState(random_state)
    rows = []
    for kind, frame in _kinds(result, individual).items():
        covered, cost = frame["covered"].to_numpy(bool), frame["cost"].to_numpy(float)
        g = groups.to_numpy()
        if len(kept) < 2:
            continue
        shares = {k: covered[g == k].mean() for k in kept}
        high, low = max(kept, key=lambda k: shares[k]), min(kept, key=lambda k: shares[k])

        def gap(idx: np.ndarray) -> tuple:
            a, b = _stats(covered[idx][g[idx] == high], cost[idx][g[idx] == high]), _stats(covered[idx][g[idx] == low], cost[idx][g[idx] == low])
            return a[0] - b[0], b[1] - a[1]

        point = gap(np.arange(len(g)))
        draws = np.array([gap(rng.randint(len(g), size=len(g))) for _ in range(n_boot)])
        lo, hi = np.nanpercentile(draws, [2.5, 97.5], axis=0)
        rows.append({"kind": kind, "higher_group": high, "lower_group": low, "coverage_gap": point[0], "coverage_gap_low": lo[0],
                     "coverage_gap_high": hi[0], "cost_gap": point[1], "cost_gap_low": lo[1], "cost_gap_high": hi[1]})
    return pd.DataFrame(rows)


def plot_burden(table: pd.DataFrame, title: str, path: Optional[str] = None) -> Any:
    """Coverage and mean cost per group, actions beside individual recourse, with 95% intervals; saved to ``path``
    when given; returns the figure."""
    from ..apps.plots import figure

    fig, _ = figure(9, 3.6)
    fig.clf()
    axes = fig.subplots(1, 2)
    groups = sorted(table["group"].unique(), key=str)
    width = 0.8 / max(1, table["kind"].nunique())
    for ax, measure in zip(axes, ("coverage", "mean_cost")):
        for j, (kind, part) in enumerate(table.groupby("kind", sort=False)):
            part = part.set_index("group").reindex(groups)
            x = np.arange(len(groups)) + j * width
            err = [part[measure] - part[measure + "_low"], part[measure + "_high"] - part[measure]]
            ax.bar(x, part[measure], width, yerr=err, capsize=2, label=kind)
        ax.set_xticks(np.arange(len(groups)) + width * (table["kind"].nunique() - 1) / 2)
        ax.set_xticklabels([str(g) for g in groups], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(measure.replace("_", " ") + (" ((1/d)-L1)" if measure == "mean_cost" else ""))
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m lapace_plugin.evaluation.burden --dataset adult --attributes sex race``: the burden tables and
    figures of one bundled dataset (split seed, random forest, LAPACE, the schema's constraints)."""
    from .. import datasets
    from ..explainer import Lapace
    from ..rules import assigned_to
    from .models import make_classifier, split

    p = argparse.ArgumentParser(prog="python -m lapace_plugin.evaluation.burden", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="adult", choices=datasets.names())
    p.add_argument("--attributes", nargs="+", required=True, help="protected attributes (features of the dataset)")
    p.add_argument("--n-people", type=int, default=1000, help="refused test rows (default: %(default)s)")
    p.add_argument("--n-actions", type=int, default=5)
    p.add_argument("--max-train-rows", type=int, default=4000)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="lapace-burden")
    args = p.parse_args(argv)
    ds = datasets.load(args.dataset)
    X_train, X_test, y_train, _ = split(ds, random_state=args.seed)
    X_train, y_train = X_train.iloc[: args.max_train_rows], y_train.iloc[: args.max_train_rows]
    model = make_classifier(ds.schema, "rf", random_state=args.seed).fit(X_train, y_train)
    explainer = Lapace(schema=ds.schema, random_state=args.seed, epochs=args.epochs, verbose=False)
    explainer.fit(X_train, model.predict_proba, classes=model.classes_)
    favourable = list(model.classes_).index(ds.favourable)
    people = X_test[~assigned_to(model.predict_proba(X_test), favourable)].iloc[: args.n_people]
    result = explainer.explain_global(people, target_class=favourable, n_actions=args.n_actions, constraints="schema",
                                      random_state=args.seed)
    individual = individual_recourse(explainer, people, target_class=favourable, constraints="schema")
    os.makedirs(args.out, exist_ok=True)
    print(result)
    for attribute in args.attributes:
        table = burden_table(result, people[attribute], individual)
        gaps = burden_gaps(result, people[attribute], individual)
        stem = os.path.join(args.out, "%s-%s" % (args.dataset, attribute))
        table.to_csv(stem + ".csv", index=False)
        gaps.to_csv(stem + "-gaps.csv", index=False)
        plot_burden(table, "%s: recourse by %s (95%% bootstrap intervals)" % (args.dataset, attribute), stem + ".png")
        print(table.round(3).to_string(index=False))
        print(gaps.round(3).to_string(index=False))
    return 0


__all__ = ["KINDS", "burden_gaps", "burden_table", "individual_recourse", "main", "plot_burden"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

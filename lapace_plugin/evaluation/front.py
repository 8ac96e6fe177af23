"""The study's front: which methods no other method beats on proximity, model robustness and plausibility at once.

A method *dominates* another when it is at least as good on every objective of :data:`OBJECTIVES` (L1 proximity,
lower; model-change robustness, higher; median LOF, lower) and strictly better on one; the *front* of a dataset is
its non-dominated methods. No single number ranks "close" against "robust": the front shows which trade-offs exist.

Two readings, both pure functions of numbers:

- on the means over seeds (:func:`front_table`, the table and the figure of ``report.html``);
- on the seeds' 95% intervals of the paired per-seed differences (:func:`at_least_as_good`, :func:`escapes`), which
  the claims "a LAPACE setting is non-dominated" and "a LAPACE setting dominates RobXCE" use
  (:mod:`lapace_plugin.evaluation.claims`).
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import numpy as np
import pandas as pd

from .intervals import Interval
from .metrics import METRICS

OBJECTIVES = ("proximity_l1", "model_robustness", "lof_median")
"""The front's objectives (columns of ``summary.csv``); each metric's direction is its ``METRICS`` entry's."""
TIE = 1e-12
COLUMNS = ("dataset", "method") + OBJECTIVES + ("non_dominated", "dominated_by")


def dominates(a: Sequence[float], b: Sequence[float], better: Sequence[int]) -> bool:
    """Whether point ``a`` dominates point ``b``: at least as good on every objective and strictly better on one.

    Parameters
    ----------
    a, b
        One value per objective.
    better
        ``+1`` where higher is better, ``-1`` where lower is better.
    """
    gain = np.asarray(better, dtype=float) * (np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    return bool(np.all(gain >= -TIE) and np.any(gain > TIE))


def dominators(points: Mapping[str, Sequence[float]], better: Sequence[int]) -> Dict[str, List[str]]:
    """For each named point, the names of the points that dominate it (empty: it is on the front)."""
    return {name: [other for other, q in points.items() if other != name and dominates(q, p, better)]
            for name, p in points.items()}


def front_table(summary: pd.DataFrame, objectives: Sequence[str] = OBJECTIVES) -> pd.DataFrame:
    """Per dataset and method, the means of the objectives, whether the method is on the front and what dominates it.

    Methods without a value for every objective (failed, not installed, no counterfactual) are left out of the
    comparison: ``non_dominated`` is empty for them and ``dominated_by`` says why.

    Parameters
    ----------
    summary
        ``summary.csv``: one row per dataset and method, the means over seeds in the objectives' columns.
    objectives
        Columns compared (directions from :data:`lapace_plugin.evaluation.metrics.METRICS`).
    """
    better = [METRICS[c].better for c in objectives]
    rows = []
    for dataset, part in summary.groupby("dataset", sort=False):
        values = part.set_index("method")[list(objectives)].apply(pd.to_numeric, errors="coerce")
        complete = values.dropna()
        beaten = dominators({m: complete.loc[m].to_numpy() for m in complete.index}, better)
        for method, row in values.iterrows():
            out = {"dataset": dataset, "method": method, **{c: row[c] for c in objectives}}
            if method in beaten:
                out.update(non_dominated=not beaten[method], dominated_by=", ".join(beaten[method]))
            else:
                missing = [c for c in objectives if pd.isna(row[c])]
                out.update(non_dominated=None, dominated_by="not compared: no %s" % ", ".join(missing))
            rows.append(out)
    return pd.DataFrame(rows, columns=["dataset", "method"] + list(objectives) + ["non_dominated", "dominated_by"])


def at_least_as_good(differences: Sequence[Interval]) -> str:
    """Verdict that a method is at least as good as another on every objective, from the 95% intervals of the
    paired per-seed differences (one per objective, oriented so that positive favours the method).

    ``"holds"``: every interval lies at or above 0 (a difference of exactly 0 in every seed is a tie and counts);
    ``"fails"``: some interval lies entirely below 0; ``"inconclusive"``: otherwise, or fewer than 2 seeds.
    """
    if any(ci.n < 2 for ci in differences):
        return "inconclusive"
    if any(ci.high < -TIE for ci in differences):
        return "fails"
    if all(ci.low >= -TIE for ci in differences):
        return "holds"
    return "inconclusive"


def escapes(differences: Sequence[Interval]) -> bool:
    """Whether a method is surely better than another on some objective (an interval of the paired differences,
    oriented as in :func:`at_least_as_good`, entirely above 0), so that the other cannot dominate it."""
    return any(ci.n >= 2 and ci.low > TIE for ci in differences)


def surely_dominates(differences: Sequence[Interval]) -> bool:
    """Whether a method surely dominates another: at least as good on every objective (:func:`at_least_as_good`
    holds) and better on average on one."""
    return at_least_as_good(differences) == "holds" and any(ci.mean > TIE for ci in differences)

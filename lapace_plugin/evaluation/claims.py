"""The paper's claims, checked per dataset with a verdict that the seeds' intervals must support.

Verdicts:

- **holds**: an exact claim (validity 100%, set distance 0) met by every seed; a comparison whose 95% interval of the
  paired per-seed difference lies entirely on the claimed side (ties, a difference of exactly 0 in every seed, count
  as "at least as good");
- **fails**: an exact claim missed by some seed; a comparison whose interval lies entirely on the other side;
- **inconclusive**: the interval straddles 0, or only one seed is available;
- **not run**: a method or value the claim needs is missing (the detail says why).

The front claims (:mod:`lapace_plugin.evaluation.front`) judge dominance on (L1 proximity, model robustness, median
LOF) with the same paired intervals: "a LAPACE setting is non-dominated" holds when some LAPACE method is surely
better than every method that is not LAPACE on at least one objective, and fails when every LAPACE method is surely
dominated by such a method; "a LAPACE setting dominates RobXCE" holds when some LAPACE method is at least as good as RobXCE on
all three objectives, and fails when every LAPACE method is surely worse on one.

A claim about a method the study was not asked to run is left out. "Best" compares with every method that is not
LAPACE (the paper's claim is about LAPACE against its baselines).

See :mod:`lapace_plugin.evaluation.intervals` for the interval.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from .front import OBJECTIVES, at_least_as_good, escapes, surely_dominates
from .intervals import Interval, paired, t_interval
from .metrics import METRICS

LAST_METHODS = ("lapace-last", "lapace-last-paper")  # this package's LAPACE-last and the paper's
EXACT_CLAIMS = (("centroid validity 100%", None, "centroid_validity", 1.0),) + tuple(  # (title, method or None for
    # datasets.csv, column, required value)
    claim for last in LAST_METHODS for claim in (
        ("%s validity 100%%" % last, last, "validity", 1.0),
        ("%s input robustness 0" % last, last, "input_robustness", 0.0),
    )
)
BEST_CLAIMS = tuple(  # (title, method, column): at least as good as every other method that ran
    ("%s %s best" % (last, what), last, column)
    for last in LAST_METHODS for what, column in (("model robustness", "model_robustness"), ("LOF median", "lof_median"))
)
VERSUS_CLAIMS = tuple(  # (title, method, other, column): at least as good as the other method
    ("%s %s at least as good as NNCE" % (method, METRICS[column].label), method, "nnce", column)
    for method in ("lapace-first", "lapace-first-neighbour", "lapace-first-revert", "lapace-first-paper")
    for column in ("proximity_l1", "lof_median")
)
NON_DOMINATED = "a LAPACE setting is non-dominated"
DOMINATES_ROBXCE = "a LAPACE setting dominates RobXCE"
COLUMNS = ("dataset", "claim", "verdict", "estimate", "low", "high", "n_seeds", "detail")


def check_claims(results: pd.DataFrame, facts: pd.DataFrame, generative: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """One row per (dataset, claim): ``verdict``, ``estimate`` with its interval ``low``/``high`` (for comparisons:
    the paired difference, oriented so that positive favours the claim), ``n_seeds`` and ``detail``.

    ``results``: per-seed rows (``results.csv``); ``facts``: ``datasets.csv``; ``generative``: ``generative.csv``.
    """
    out: List[Dict[str, Any]] = []
    for dataset, part in results.groupby("dataset", sort=False):
        table = _by_method(part)
        dfacts = facts[facts["dataset"] == dataset].set_index("seed") if len(facts) else pd.DataFrame()
        for title, method, column, value in EXACT_CLAIMS:
            if method is None:
                series = dfacts[column] if column in dfacts else pd.Series(dtype=float)
                missing = "no LAPACE fit" if series.dropna().empty else ""
            elif method not in table:
                continue
            else:
                series, missing = _series(table, method, column)
            out.append(_exact(dataset, title, series, value, missing))
        for title, method, column in BEST_CLAIMS:
            if method in table:
                out.append(_best(dataset, title, table, method, column))
        for title, method, other, column in VERSUS_CLAIMS:
            if method in table and other in table:
                out.append(_versus(dataset, title, table, method=method, other=other, column=column))
        lapace = [m for m in table if m.startswith("lapace")]
        if lapace and len(table) > len(lapace):
            out.append(_non_dominated(dataset, table, lapace))
        if lapace and "robxce" in table:
            out.append(_dominates(dataset, table, lapace, "robxce"))
        if generative is not None and len(generative):
            gen = generative[generative["dataset"] == dataset]
            if len(gen) and gen["paper_gap"].notna().any():
                out.append(_gap(dataset, gen))
    return pd.DataFrame(out, columns=list(COLUMNS))


def _by_method(part: pd.DataFrame) -> Dict[str, pd.DataFrame]:
    return {method: rows.set_index("seed") for method, rows in part.groupby("method", sort=False)}


def _usable(rows: pd.DataFrame) -> bool:
    return bool(rows["status"].astype(str).str.match(r"^(ok|timeout)").all())


def _series(table: Dict[str, pd.DataFrame], method: str, column: str) -> Any:
    if method not in table:
        return pd.Series(dtype=float), "%s did not run" % method
    rows = table[method]
    if not _usable(rows):
        return pd.Series(dtype=float), "%s: %s" % (method, "; ".join(pd.unique(rows["status"].astype(str))))
    return pd.to_numeric(rows[column], errors="coerce"), ""


def _row(dataset: str, claim: str, verdict: str, ci: Interval, detail: str) -> Dict[str, Any]:
    return {"dataset": dataset, "claim": claim, "verdict": verdict, "estimate": ci.mean, "low": ci.low, "high": ci.high,
            "n_seeds": ci.n, "detail": detail}


def _exact(dataset: str, title: str, series: pd.Series, value: float, missing: str) -> Dict[str, Any]:
    values = series.dropna()
    ci = t_interval(values)
    if missing or values.empty:
        return _row(dataset, title, "not run", ci, missing or "no value")
    ok = np.isclose(values.to_numpy(dtype=float), value, rtol=0, atol=1e-12)
    verdict = "holds" if ok.all() else "fails"
    detail = "every seed" if ok.all() else "seeds %s: %s" % (
        list(values.index[~ok]), ", ".join("%.4g" % v for v in values[~ok]))
    return _row(dataset, title, verdict, ci, detail)


def _compare(ci: Interval) -> str:
    if ci.n < 2:
        return "inconclusive" if ci.n == 1 else "not run"
    if ci.low >= -1e-12:
        return "holds"
    if ci.high < 0:
        return "fails"
    return "inconclusive"


def _difference(table: Dict[str, pd.DataFrame], method: str, other: str, column: str) -> Any:
    """Paired per-seed difference oriented so that positive means ``method`` is better on ``column``."""
    a, missing_a = _series(table, method, column)
    b, missing_b = _series(table, other, column)
    if missing_a or missing_b:
        return None, missing_a or missing_b
    sign = METRICS[column].better
    return paired(sign * a, sign * b), ""


def _versus(dataset: str, title: str, table: Dict[str, pd.DataFrame], *, method: str, other: str, column: str) -> Dict[str, Any]:
    ci, missing = _difference(table, method, other, column)
    if ci is None:
        return _row(dataset, title, "not run", Interval(np.nan, np.nan, np.nan, 0), missing)
    a, _ = _series(table, method, column)
    b, _ = _series(table, other, column)
    detail = "%s %.4g vs %s %.4g (means over seeds)" % (method, a.mean(), other, b.mean())
    return _row(dataset, title, _compare(ci), ci, detail)


def _best(dataset: str, title: str, table: Dict[str, pd.DataFrame], method: str, column: str) -> Dict[str, Any]:
    others = [m for m in table if not m.startswith("lapace") and _usable(table[m])]
    if method not in table or not _usable(table[method]) or not others:
        return _row(dataset, title, "not run", Interval(np.nan, np.nan, np.nan, 0), "%s or its competitors did not run" % method)
    diffs = {}
    for other in others:
        ci, missing = _difference(table, method, other, column)
        if ci is not None and ci.n:
            diffs[other] = ci
    if not diffs:
        return _row(dataset, title, "not run", Interval(np.nan, np.nan, np.nan, 0), "no competitor has a value")
    verdicts = {o: _compare(ci) for o, ci in diffs.items()}
    closest = min(diffs, key=lambda o: diffs[o].mean)
    if all(v == "holds" for v in verdicts.values()):
        verdict = "holds"
    elif any(v == "fails" for v in verdicts.values()):
        verdict = "fails"
    else:
        verdict = "inconclusive"
    worse = [o for o, v in verdicts.items() if v != "holds"]
    detail = "closest: %s (difference %.4g)%s" % (closest, diffs[closest].mean, "; not beaten: %s" % ", ".join(worse) if worse else "")
    return _row(dataset, title, verdict, diffs[closest], detail)


def _objective_differences(table: Dict[str, pd.DataFrame], method: str, other: str) -> Optional[List[Interval]]:
    """Paired intervals of ``method`` minus ``other`` on each front objective (positive: ``method`` better), or
    ``None`` when either lacks a value."""
    out = []
    for column in OBJECTIVES:
        ci, missing = _difference(table, method, other, column)
        if ci is None or ci.n == 0:
            return None
        out.append(ci)
    return out


_NO_INTERVAL = Interval(np.nan, np.nan, np.nan, 0)


def _non_dominated(dataset: str, table: Dict[str, pd.DataFrame], lapace: List[str]) -> Dict[str, Any]:
    """Some LAPACE method escapes every method that is not LAPACE (surely better on an objective): holds; every one is
    surely dominated by such a method: fails. Dominance is transitive, so a LAPACE method that no other method beats
    except LAPACE ones leaves some LAPACE method on the front: the rivals are the methods that are not LAPACE."""
    free, beaten, open_ = [], [], []
    n = 0
    for method in lapace:
        rivals = {}
        for other in table:
            if other in lapace:
                continue
            mine = _objective_differences(table, method, other)
            if mine is not None:
                rivals[other] = mine
                n = max(n, min(ci.n for ci in mine))
        if not rivals:
            continue
        by = [o for o, d in rivals.items() if surely_dominates([Interval(-c.mean, -c.high, -c.low, c.n) for c in d])]
        if by:
            beaten.append("%s by %s" % (method, by[0]))
        elif all(escapes(d) for d in rivals.values()):
            free.append(method)
        else:
            open_.append(method)
    if not (free or beaten or open_):
        return _row(dataset, NON_DOMINATED, "not run", _NO_INTERVAL, "no LAPACE method and rival with all of %s" % ", ".join(OBJECTIVES))
    verdict = "holds" if free else ("fails" if not open_ else "inconclusive")
    detail = "; ".join(part for part in (
        "non-dominated: %s" % ", ".join(free) if free else "",
        "undecided: %s" % ", ".join(open_) if open_ else "",
        "dominated: %s" % ", ".join(beaten) if beaten else "",
    ) if part)
    return _row(dataset, NON_DOMINATED, verdict, Interval(np.nan, np.nan, np.nan, n), detail)


def _dominates(dataset: str, table: Dict[str, pd.DataFrame], lapace: List[str], other: str) -> Dict[str, Any]:
    """Some LAPACE method at least as good as ``other`` on every objective: holds; every one surely worse on one:
    fails."""
    verdicts = {}
    for method in lapace:
        diffs = _objective_differences(table, method, other)
        if diffs is not None:
            verdicts[method] = (at_least_as_good(diffs), diffs)
    if not verdicts:
        return _row(dataset, DOMINATES_ROBXCE, "not run", _NO_INTERVAL, "%s or every LAPACE method lacks a value" % other)
    found = [m for m, (v, _) in verdicts.items() if v == "holds"]
    if found:
        verdict = "holds"
    elif all(v == "fails" for v, _ in verdicts.values()):
        verdict = "fails"
    else:
        verdict = "inconclusive"
    n = max(min(ci.n for ci in d) for _, d in verdicts.values())
    detail = "paired mean differences, positive = LAPACE better: " + "; ".join(
        "%s %s (%s)" % (m, v, ", ".join("%s %+.3g" % (c, ci.mean) for c, ci in zip(OBJECTIVES, d))) for m, (v, d) in verdicts.items())
    return _row(dataset, DOMINATES_ROBXCE, verdict, Interval(np.nan, np.nan, np.nan, n), detail)


def _gap(dataset: str, gen: pd.DataFrame) -> Dict[str, Any]:
    """The train-on-synthetic gap is at most the paper's: holds when the interval's upper end is below it."""
    paper = float(gen["paper_gap"].dropna().iloc[0])
    title = "TSTR accuracy gap at most the paper's %.1f%%" % (100 * paper)
    if "gap" not in gen or gen["gap"].dropna().empty:
        return _row(dataset, title, "not run", Interval(np.nan, np.nan, np.nan, 0), "; ".join(pd.unique(gen["status"].astype(str))))
    ci = t_interval(gen["gap"])
    if ci.n < 2:
        verdict = "inconclusive" if ci.n == 1 else "not run"
    elif ci.high <= paper:
        verdict = "holds"
    elif ci.low > paper:
        verdict = "fails"
    else:
        verdict = "inconclusive"
    return _row(dataset, title, verdict, ci, "train-on-real minus train-on-synthetic test accuracy (%s)" % gen["paper_dataset"].iloc[0])

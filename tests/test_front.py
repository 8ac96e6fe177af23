"""The study's front (``evaluation/front.py``) and its two claims, on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lapace_plugin.evaluation.claims import DOMINATES_ROBXCE, NON_DOMINATED, check_claims
from lapace_plugin.evaluation.front import at_least_as_good, dominates, dominators, escapes, front_table
from lapace_plugin.evaluation.intervals import Interval

BETTER = (-1, 1, -1)  # proximity lower, robustness higher, LOF lower


def test_dominance_needs_every_objective_at_least_as_good_and_one_strictly_better() -> None:
    assert dominates((0.1, 0.9, 1.0), (0.2, 0.9, 1.0), BETTER)
    assert not dominates((0.1, 0.9, 1.0), (0.1, 0.9, 1.0), BETTER)  # identical points do not dominate each other
    assert not dominates((0.1, 0.8, 1.0), (0.2, 0.9, 1.0), BETTER)  # closer but less robust: a trade-off
    assert dominates((0.1, 0.95, 0.9), (0.2, 0.9, 1.0), BETTER)


def test_dominators_lists_who_beats_each_point() -> None:
    points = {"close": (0.05, 0.80, 1.2), "robust": (0.30, 0.99, 1.0), "middle": (0.10, 0.95, 1.1),
              "worse": (0.20, 0.90, 1.2)}
    beaten = dominators(points, BETTER)
    assert beaten == {"close": [], "robust": [], "middle": [], "worse": ["middle"]}


def test_front_table_marks_the_non_dominated_methods_per_dataset_and_leaves_out_missing_values() -> None:
    summary = pd.DataFrame([
        {"dataset": "a", "method": "nnce", "proximity_l1": 0.08, "model_robustness": 0.97, "lof_median": 1.1},
        {"dataset": "a", "method": "lapace-first", "proximity_l1": 0.22, "model_robustness": 0.95, "lof_median": 1.2},
        {"dataset": "a", "method": "lapace-last", "proximity_l1": 0.30, "model_robustness": 1.00, "lof_median": 1.0},
        {"dataset": "a", "method": "dice-random", "proximity_l1": np.nan, "model_robustness": 0.5, "lof_median": 2.0},
        {"dataset": "b", "method": "nnce", "proximity_l1": 0.30, "model_robustness": 0.90, "lof_median": 1.5},
        {"dataset": "b", "method": "lapace-first", "proximity_l1": 0.20, "model_robustness": 0.95, "lof_median": 1.2},
    ])
    front = front_table(summary).set_index(["dataset", "method"])
    assert front.loc[("a", "nnce"), "non_dominated"] and front.loc[("a", "lapace-last"), "non_dominated"]
    assert not front.loc[("a", "lapace-first"), "non_dominated"]
    assert front.loc[("a", "lapace-first"), "dominated_by"] == "nnce"
    assert pd.isna(front.loc[("a", "dice-random"), "non_dominated"])
    assert front.loc[("a", "dice-random"), "dominated_by"] == "not compared: no proximity_l1"
    assert front.loc[("b", "lapace-first"), "non_dominated"] and front.loc[("b", "nnce"), "dominated_by"] == "lapace-first"


def _ci(low: float, high: float, n: int = 5) -> Interval:
    return Interval((low + high) / 2, low, high, n)


def test_interval_verdicts_count_ties_and_need_the_whole_interval() -> None:
    assert at_least_as_good([_ci(0.0, 0.0), _ci(0.01, 0.03), _ci(0.0, 0.2)]) == "holds"
    assert at_least_as_good([_ci(-0.02, 0.03), _ci(0.01, 0.03), _ci(0.0, 0.2)]) == "inconclusive"
    assert at_least_as_good([_ci(-0.05, -0.01), _ci(0.01, 0.03), _ci(0.0, 0.2)]) == "fails"
    assert at_least_as_good([Interval(0.1, np.nan, np.nan, 1)] * 3) == "inconclusive"
    assert escapes([_ci(-0.2, -0.1), _ci(0.01, 0.02), _ci(-1, 1)]) and not escapes([_ci(-0.2, 0.1), _ci(0.0, 0.0)])


def _results(values: dict) -> pd.DataFrame:
    """Per-seed results.csv rows from {method: [(l1, robustness, lof) per seed]}."""
    rows = []
    for method, seeds in values.items():
        for seed, (l1, rob, lof) in enumerate(seeds):
            rows.append({"dataset": "d", "seed": seed, "method": method, "status": "ok", "proximity_l1": l1,
                         "model_robustness": rob, "lof_median": lof})
    return pd.DataFrame(rows)


def _verdict(claims: pd.DataFrame, title: str) -> str:
    return claims.set_index("claim").loc[title, "verdict"]


def test_front_claims_hold_when_a_lapace_setting_is_surely_ahead_of_robxce_and_everyone() -> None:
    results = _results({
        "robxce": [(0.10, 0.98, 1.10), (0.11, 0.97, 1.12), (0.12, 0.98, 1.11)],
        "nnce": [(0.05, 0.90, 1.05), (0.06, 0.91, 1.06), (0.05, 0.92, 1.04)],
        "lapace-robust": [(0.08, 0.99, 1.00), (0.09, 0.99, 1.01), (0.10, 0.995, 1.00)],
    })
    claims = check_claims(results, pd.DataFrame())
    assert _verdict(claims, DOMINATES_ROBXCE) == "holds"
    assert _verdict(claims, NON_DOMINATED) == "holds"  # more robust than NNCE in every seed, closer than RobXCE


def test_front_claims_fail_when_every_lapace_setting_is_surely_dominated() -> None:
    results = _results({
        "robxce": [(0.10, 0.98, 1.10), (0.11, 0.97, 1.12), (0.12, 0.98, 1.11)],
        "lapace-first": [(0.20, 0.90, 1.30), (0.22, 0.91, 1.32), (0.21, 0.92, 1.31)],
    })
    claims = check_claims(results, pd.DataFrame())
    assert _verdict(claims, DOMINATES_ROBXCE) == "fails"
    assert _verdict(claims, NON_DOMINATED) == "fails"
    assert "lapace-first by robxce" in claims.set_index("claim").loc[NON_DOMINATED, "detail"]


def test_front_claims_are_inconclusive_when_the_seeds_disagree() -> None:
    results = _results({
        "robxce": [(0.10, 0.98, 1.10), (0.11, 0.97, 1.12), (0.12, 0.98, 1.11)],
        "lapace-first": [(0.05, 0.99, 1.00), (0.20, 0.90, 1.30), (0.08, 0.99, 1.05)],
    })
    claims = check_claims(results, pd.DataFrame())
    assert _verdict(claims, DOMINATES_ROBXCE) == "inconclusive"
    assert _verdict(claims, NON_DOMINATED) == "inconclusive"

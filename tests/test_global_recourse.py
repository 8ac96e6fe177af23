"""Global recourse (lapace_plugin.global_recourse, actions, global_candidates) and its AReS / GLOBE-CE baselines, on
real compas with a real random forest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lapace_plugin import datasets
from lapace_plugin.actions import Action, Change, apply_action
from lapace_plugin.constraints import Constraints
from lapace_plugin.distance import feature_distances
from lapace_plugin.errors import InvalidParameterError
from lapace_plugin.evaluation.global_baselines import Judge, ares_actions, globe_actions
from lapace_plugin.global_recourse import explain_global, select_actions
from lapace_plugin.support import states

from fitted import unfavourable

CONS = Constraints(immutable=["race", "sex"], increase=["age", "priors_count"])


@pytest.fixture(scope="module")
def people(compas):
    return unfavourable(compas, 150)


@pytest.fixture(scope="module")
def result(compas, people):
    return compas.explainer.explain_global(people, target_class=1, n_actions=3, constraints=CONS, n_sample=100, random_state=0)


def test_every_covered_person_gets_an_action_within_their_constraints_and_the_support(compas, result):
    schema, support = compas.ds.schema, compas.explainer.support_
    assert result.coverage > 0.2
    for i, action in enumerate(result.actions):
        assert not set(action.features) & {"race", "sex"}
        mine = result.people[result.assignment.to_numpy() == i]
        if not len(mine):
            continue
        after = apply_action(action, mine, schema)
        assert not CONS.broken(mine, after, schema).any()
        own = states(schema, mine, support.masses)
        assert not support.rare(states(schema, after, support.masses), compas.explainer.min_pair_count, own=own).any()


def test_coverage_and_cost_recomputed_independently_match(compas, result):
    schema, people = compas.ds.schema, result.people
    best = np.full(len(people), np.inf)
    for action in result.actions:
        after = apply_action(action, people, schema)
        flips = compas.model.predict(after) == 1
        ok = flips & ~CONS.broken(people, after, schema)
        ok &= ~compas.explainer.support_.rare(states(schema, after), compas.explainer.min_pair_count, own=states(schema, people))
        cost = feature_distances(schema, people, after).mean(1)
        best = np.where(ok, np.minimum(best, cost), best)
    covered = np.isfinite(best)
    assert result.coverage == pytest.approx(covered.mean())
    assert result.mean_cost == pytest.approx(best[covered].mean())
    assert list(result.uncovered) == list(people.index[~covered])
    assert result.curve["coverage"].iloc[-1] == pytest.approx(result.coverage)
    assert result.curve["coverage"].is_monotonic_increasing


def test_same_random_state_gives_the_same_actions_and_assignment(compas, people, result):
    again = explain_global(compas.explainer, people, target_class=1, n_actions=3, constraints=CONS, n_sample=100, random_state=0)
    assert [a.describe() for a in again.actions] == [a.describe() for a in result.actions]
    pd.testing.assert_series_equal(again.assignment, result.assignment)


def test_features_to_vary_limits_every_action(compas, people):
    vary = ["age", "c_charge_degree"]
    g = compas.explainer.explain_global(people, target_class=1, n_actions=2, features_to_vary=vary, n_sample=60, random_state=0)
    assert g.actions
    assert all(set(a.features) <= set(vary) for a in g.actions)


def test_construction_evidence_lists_each_pool(result):
    table = result.constructions.set_index("construction")
    assert list(table.index) == ["centroid", "counterfactual", "both"]
    assert (table["candidates"] > 0).all()
    assert table.loc["both", "coverage"] >= table[["coverage"]].min().iloc[0]


@pytest.mark.parametrize("bad", [dict(target_class=2), dict(target_class=1, n_actions=0), dict(target_class=1, construction="all")])
def test_impossible_settings_are_parameter_errors(compas, people, bad):
    with pytest.raises(InvalidParameterError):
        compas.explainer.explain_global(people.iloc[:5], **bad)


def test_greedy_selection_covers_most_then_swaps_to_the_cheaper_equal_action():
    covered = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1], [1, 1, 1, 0]], dtype=bool)
    cost = np.array([[1, 1, 1, 1], [5, 5, 5, 5], [2, 2, 2, 2], [3, 3, 3, 3]], dtype=float)
    assert sorted(select_actions(covered, cost, 2)) == [2, 3]
    assert select_actions(covered, cost, 1) == [3]


def test_actions_round_clip_and_read():
    schema = datasets.load("adult").schema
    X = datasets.load("adult").X.iloc[:50]
    after = apply_action(Action((Change("capital_gain", "to", 7000.4), Change("age", "by", 200.0))), X, schema)
    assert (after["capital_gain"] == 7000).all() and (after["age"] == schema.ranges["age"][1]).all()
    assert Action((Change("capital_gain", "to", 7000.0), Change("education_num", "by", 2.0))).describe() == \
        "capital_gain -> ~7,000 and education_num +2"
    with pytest.raises(ValueError, match="categorical"):
        apply_action(Action((Change("sex", "by", 1.0),)), X, schema)


def test_baselines_respect_the_immutable_features(compas, people):
    favourable = compas.model.predict(compas.X_train) == 1
    judge = Judge(compas.ds.schema, compas.model.predict_proba, people, np.ones(len(people), dtype=int), CONS,
                  compas.explainer.support_, compas.explainer.min_pair_count)
    for actions in (ares_actions(judge, compas.X_train, favourable, 3, CONS), globe_actions(judge, compas.X_train, compas.model.predict_proba, 3, CONS)):
        assert 1 <= len(actions) <= 3
        assert not any({"race", "sex"} & set(a.features) for a in actions)


def test_cli_explain_global_writes_the_actions_and_every_refused_row(compas, people, tmp_path):
    import subprocess
    import sys

    import joblib

    compas.explainer.save(str(tmp_path / "explainer"))
    joblib.dump(compas.model, str(tmp_path / "model.joblib"))
    rows = people.iloc[:60].reset_index(drop=True).rename_axis("person").reset_index()
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "actions"
    done = subprocess.run(
        [sys.executable, "-m", "lapace_plugin.apps.cli", "explain", "--global", "--explainer", str(tmp_path / "explainer"),
         "--model", str(tmp_path / "model.joblib"), "--input", str(tmp_path / "rows.csv"), "--output", str(out),
         "--id-column", "person", "--n-actions", "2", "--constraints", "schema", "--n-sample", "60"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    actions = pd.read_csv(out / "actions.csv")
    assigned = pd.read_csv(out / "people.csv")
    assert 1 <= len(actions) <= 2
    assert sorted(assigned["person"]) == list(range(60))
    assert set(assigned["action"].dropna()) <= set(actions["action"])
    assert "refused" in done.stdout


def test_burden_by_race_matches_the_assignment_and_brackets_the_gap(compas, result):
    from lapace_plugin.evaluation.burden import burden_gaps, burden_table, individual_recourse

    people = result.people
    individual = individual_recourse(compas.explainer, people.iloc[:40], target_class=1)
    assert individual["covered"].equals(individual["cost"].notna())
    table = burden_table(result, people["race"], n_boot=100)
    for _, row in table.iterrows():
        mine = (people["race"] == row["group"]).to_numpy()
        assert row["people"] == mine.sum()
        assert row["coverage"] == pytest.approx((result.assignment.to_numpy()[mine] >= 0).mean())
        assert row["coverage_low"] <= row["coverage"] + 1e-12 <= row["coverage_high"] + 2e-12
    gaps = burden_gaps(result, people["race"], n_boot=100, min_group=10)
    assert len(gaps) == 1
    gap = gaps.iloc[0]
    assert gap["coverage_gap"] >= 0
    assert gap["coverage_gap_low"] <= gap["coverage_gap"] <= gap["coverage_gap_high"]

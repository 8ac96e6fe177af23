"""Relations between numeric features, derived features and changes that move together, on the self-generated
credit-card-like table ``tests/data/cardlike.csv`` (known relations) with a real random forest."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lapace_plugin import Constraints, FeatureSchema, InvalidParameterError, Lapace, Relation
from lapace_plugin.consistency import scores
from lapace_plugin.evaluation.metrics import consistency_violations, heldout_consistency_violations
from lapace_plugin.evaluation.models import make_classifier
from lapace_plugin.lgmvae import validation_split
from lapace_plugin.relations import derive, expression

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
from make_cardlike import DERIVED, MOVE_TOGETHER, RELATIONS, load, make  # noqa: E402

SHARE = "share == 12 * (expenditure + 1) / (10000 * income)"
EVERY = [SHARE, RELATIONS[0], MOVE_TOGETHER]
"""Every known relation of the table, checked on results (also where the explainer was not told them)."""


@pytest.fixture(scope="module")
def card():
    data = load()
    y = data.pop("card")
    X_train, X_test = data.iloc[:960], data.iloc[960:]
    declared = FeatureSchema.infer(X_train, derived=DERIVED, relations=RELATIONS)
    model = make_classifier(declared, "rf", random_state=0).fit(X_train, y.iloc[:960])
    explainers = {}
    for name, schema in (("plain", FeatureSchema.infer(X_train)), ("declared", declared)):
        explainers[name] = Lapace(schema=schema, random_state=0, verbose=False, epochs=40).fit(
            X_train, model.predict_proba, classes=model.classes_)
    queries = X_test[model.predict(X_test) == 0].iloc[:25]
    return declared, model, explainers, queries, X_test


def _broken(schema, queries, explanation):
    cf = explanation.counterfactuals
    factual = queries.loc[cf.index.get_level_values("query")]
    return Constraints(relations=EVERY, increase=["age"]).violations(factual, cf[queries.columns], schema)


def test_the_published_table_is_what_the_script_makes():
    pd.testing.assert_frame_equal(load(), make(), check_dtype=False)
    data = load()
    assert (data["months"] <= 12 * data["age"]).all()
    np.testing.assert_allclose(data["share"], 12 * (data["expenditure"] + 1) / (10000 * data["income"]), atol=5e-7)


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('true')", "calls other than change"),
    ("age.real", "attribute access is not allowed"),
    ("abs(age)", "calls other than change"),
    ("age ** 2", "the operator ** is not allowed"),
    ("(lambda: 1)()", "calls other than change"),
    ("'age' + 1", "the constant 'age' is not allowed"),
    ("change(age, months)", "change() takes one column"),
    ("salary * 2", "unknown column 'salary'"),
    ("age +", "does not parse"),
])
def test_expressions_are_parsed_safely_and_errors_name_the_expression(text, message):
    with pytest.raises(InvalidParameterError) as info:
        expression(text, ["age", "months"], allow_change=True)
    assert message in str(info.value) and repr(text) in str(info.value)


def test_relations_must_compare_and_read_numeric_columns():
    frame = load().drop(columns="card")
    with pytest.raises(InvalidParameterError, match="one comparison"):
        FeatureSchema.infer(frame, relations=["months + 12 * age"])
    with pytest.raises(InvalidParameterError, match="unknown column 'owner'"):
        FeatureSchema.infer(frame, relations=["owner <= 1"])
    with pytest.raises(InvalidParameterError, match="change\\(\\) compares with the query"):
        FeatureSchema.infer(frame, derived={"share": "change(income)"})
    with pytest.raises(InvalidParameterError, match="must be a continuous feature"):
        FeatureSchema.infer(frame, derived={"owner": "income"})
    with pytest.raises(InvalidParameterError, match="tolerance must be a number >= 0"):
        Relation("months <= 12 * age", tolerance=-1)


def test_schema_round_trips_its_relations_and_derive_recomputes():
    frame = load().drop(columns="card")
    schema = FeatureSchema.infer(frame, derived=DERIVED, relations=[RELATIONS[0], Relation("income >= 0.0001 * expenditure", 0.1)])
    back = FeatureSchema.from_dict(schema.to_dict())
    assert back == schema and back.relations[1].tolerance == 0.1
    rows = frame.iloc[:5].copy()
    rows["share"] = 0.9
    np.testing.assert_allclose(derive(schema, rows)["share"], frame["share"].iloc[:5], atol=5e-7)


def test_infer_suggests_the_tables_relations_and_applies_none():
    schema = FeatureSchema.infer(load().drop(columns="card"))
    assert "months <= 12 * age" in schema.suggested_relations
    assert "share == (0.0012 * expenditure + 0.0012) / income" in schema.suggested_relations
    assert not schema.relations and not schema.derived


def test_infer_suggests_a_linear_formula_and_no_relation_on_independent_columns():
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"a": rng.uniform(0, 10, 300), "c": rng.uniform(5, 9, 300)})
    assert FeatureSchema.infer(frame).suggested_relations == []
    frame["b"] = 2 * frame["a"] + 3
    assert FeatureSchema.infer(frame).suggested_relations in (["b == 2 * a + 3"], ["a == 0.5 * b - 1.5"])


def test_constraints_report_a_broken_relation_by_name_and_kind():
    frame = load().drop(columns="card").iloc[:4]
    schema = FeatureSchema.infer(frame)
    moved = frame.copy()
    moved["months"] = moved["months"] + np.array([0, 13, 12 * 300, 0])
    cons = Constraints(relations=["months <= 12 * age", MOVE_TOGETHER])
    cons.check(schema)
    broken = cons.violations(frame, moved, schema)
    assert broken[MOVE_TOGETHER].tolist() == [False, True, True, False]
    assert broken["months <= 12 * age"].tolist() == [False, False, True, False]
    assert cons.violations_by_kind(frame, moved, schema)["relation"].tolist() == [False, True, True, False]
    assert Constraints.coerce({"relations": ["months <= 12 * age"]}, schema).to_dict()["relations"] == ["months <= 12 * age"]


def test_decoded_rows_carry_their_derived_features(card):
    schema, _, explainers, _, _ = card
    ex = explainers["declared"]
    for rows in (ex.centroids_, ex.sample(50, 1)):
        np.testing.assert_allclose(rows["share"], 12 * (rows["expenditure"] + 1) / (10000 * rows["income"]), atol=5e-7)


@pytest.mark.parametrize("revert", [False, True], ids=["plain", "revert"])
def test_counterfactuals_never_break_a_declared_relation(card, revert):
    schema, _, explainers, queries, _ = card
    told = explainers["declared"].explain(queries, constraints={"increase": ["age"], "relations": [MOVE_TOGETHER]}, revert=revert)
    broken = _broken(schema, queries, told)
    assert len(broken) >= 2 * len(queries) and not broken.any().any(), broken.mean()
    assert told.counterfactuals.index.get_level_values("query").nunique() >= 0.9 * len(queries)
    untold = _broken(schema, queries, explainers["plain"].explain(queries, constraints={"increase": ["age"]}, revert=revert))
    assert untold[SHARE].mean() > 0.3 and untold[MOVE_TOGETHER].any()  # what the declarations prevent


def test_a_saved_explainer_keeps_its_relations(card, tmp_path):
    schema, model, explainers, queries, _ = card
    explainers["declared"].save(str(tmp_path / "ex"))
    back = Lapace.load(str(tmp_path / "ex"), model.predict_proba)
    assert back.schema_ == schema and [r.text for r in back.schema_.relations] == RELATIONS


_TERMS = st.sampled_from(["age", "income", "months", "expenditure", "reports", "1", "12", "0.5", "change(age)", "change(months)"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(left=_TERMS, right=st.lists(st.tuples(st.sampled_from(["+", "-", "*", "/"]), _TERMS), min_size=1, max_size=3),
       op=st.sampled_from(["<=", ">=", "<", ">"]))
def test_any_relation_gives_counterfactuals_that_keep_it_or_a_clear_error(card, left, right, op):
    schema, _, explainers, queries, _ = card
    text = "%s %s %s" % (left, op, " ".join(["0"] + ["%s %s" % pair for pair in right]))
    try:
        explanation = explainers["declared"].explain(queries.iloc[:6], constraints={"relations": [text]})
    except InvalidParameterError as exc:
        assert repr(text) in str(exc)
        return
    cf = explanation.counterfactuals
    factual = queries.loc[cf.index.get_level_values("query")]
    assert not Constraints(relations=[text]).violations(factual, cf[queries.columns], schema).any().any()


def test_the_consistency_threshold_rejects_about_one_percent_of_held_out_real_rows(card):
    schema, model, explainers, queries, X_test = card
    ex = explainers["declared"]
    X_train = load().drop(columns="card").iloc[:960]
    held = validation_split(len(X_train), 0)[0]
    labels = model.predict(X_train.iloc[held])
    share = ex.state_.inconsistent(X_train.iloc[held], labels).mean()
    assert share <= 0.01
    assert heldout_consistency_violations(schema, X_test, model.predict(X_test), ex) < 0.1
    odd = X_test.iloc[:3].assign(age=18, months=0, income=12.8, expenditure=1838.92, reports=4, dependents=5)
    assert ex.state_.inconsistent(derive(schema, odd), 1).all()


def test_a_row_scores_the_same_alone_and_among_repeats(card):
    schema, model, explainers, queries, X_test = card
    state = explainers["declared"].state_
    check = state.consistency
    x = state.encoder.encode(derive(schema, X_test.iloc[:5]))
    repeated, labels = x[[0, 1, 0, 2, 1, 0, 3, 4]], np.array([1, 0, 1, 1, 0, 0, 1, 1])
    together = scores(state.model, repeated, labels, check.continuous_weight, check.kl_weight, state.device)
    alone = [scores(state.model, repeated[i : i + 1], labels[i : i + 1], check.continuous_weight, check.kl_weight,
                    state.device)[0] for i in range(len(labels))]
    np.testing.assert_allclose(together, alone, rtol=1e-5)
    assert together[0] == together[2] and together[0] != together[5]  # same row, same class; same row, other class


def test_counterfactuals_pass_the_consistency_check_and_it_is_saved(card, tmp_path):
    schema, model, explainers, queries, _ = card
    ex = explainers["declared"]
    explanation = ex.explain(queries)
    targets = pd.Series(explanation.target_class, index=queries.index)
    assert consistency_violations(schema, queries, explanation.counterfactuals, targets, ex) == 0.0
    ex.save(str(tmp_path / "ex"))
    back = Lapace.load(str(tmp_path / "ex"), model.predict_proba)
    np.testing.assert_array_equal(back.state_.consistency.thresholds, ex.state_.consistency.thresholds)


def test_the_centroids_last_returns_pass_the_consistency_check(card):
    _, _, explainers, _, _ = card
    state = explainers["declared"].state_
    labels = np.repeat(np.arange(len(state.classes)), state.model.m)
    valid = state.centroids.valid
    assert valid.any() and not state.inconsistent(state.centroids.raw[valid], labels[valid]).any()


def test_valid_samples_pass_the_consistency_check_too(card):
    schema, model, explainers, _, _ = card
    ex = explainers["declared"]
    check = ex.state_.consistency
    saved = check.thresholds.copy()
    drawn = ex.sample(400, target_class=1, valid_only=False)
    try:  # a stricter check (the median of the draws' scores) so that about half of the draws fail it
        check.thresholds = np.full_like(saved, np.finfo(np.float64).max)
        check.thresholds[1] = np.median(scores_of(ex, drawn))
        assert ex.state_.inconsistent(drawn, 1).mean() > 0.3
        rows = ex.sample(200, target_class=1)
        assert len(rows) == 200 and not ex.state_.inconsistent(rows, 1).any()
        assert (model.predict(rows) == 1).all()
    finally:
        check.thresholds = saved


def scores_of(ex, rows):
    """The consistency check's scores of raw rows of class 1."""
    from lapace_plugin.consistency import scores

    state = ex.state_
    return scores(state.model, state.encoder.encode(rows), np.ones(len(rows), dtype=int), state.consistency.continuous_weight,
                  state.consistency.kl_weight, state.device)

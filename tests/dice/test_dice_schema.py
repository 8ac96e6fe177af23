"""The DiCE swap keeps the schema: inferred types, monotone constraints, ordinal features both ways, and relations
and derived features kept through DiCE's post-hoc sparsity step (real dice-ml 0.12, bundled and test data)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, _dice, _pipeline

from lapace_plugin import Constraints, Lapace, datasets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))
from make_cardlike import DERIVED, MOVE_TOGETHER, RELATIONS, load  # noqa: E402

EVERY = ["share == 12 * (expenditure + 1) / (10000 * income)", RELATIONS[0], MOVE_TOGETHER]


def _rows(cfs, sparse):
    """Every query's returned rows (final or post-hoc sparse) with the query row repeated beside them."""
    found, queries = [], []
    for ex in cfs.cf_examples_list:
        df = ex.final_cfs_df_sparse if sparse else ex.final_cfs_df
        if df is not None:
            found.append(df)
            queries.append(pd.concat([ex.test_instance_df] * len(df), ignore_index=True))
    return pd.concat(found, ignore_index=True), pd.concat(queries, ignore_index=True)


def test_the_swap_infers_discrete_and_point_mass_types(adult):
    schema = adult.explainer.explainer.schema_
    assert "capital_gain" in schema.point_mass and schema.discrete
    assert set(schema.categorical) == set(adult.categorical)


def test_the_swap_applies_monotone_constraints(adult):
    _, LapaceDice = _dice()
    exp = LapaceDice(adult.data, adult.model, epochs=15, monotone={"age": "increase"}, immutable=["sex"], **FAST)
    assert exp.explainer.schema_.monotone == {"age": "increase"}
    cfs = exp.generate_counterfactuals(adult.queries.iloc[:25], total_CFs=3, desired_class="opposite")
    for sparse in (False, True):
        rows, queries = _rows(cfs, sparse)
        assert len(rows) >= 25
        assert (rows["age"].to_numpy(float) >= queries["age"].to_numpy(float)).all()
        assert (rows["sex"].astype(str).to_numpy() == queries["sex"].astype(str).to_numpy()).all()


@pytest.fixture(scope="module")
def german():
    dice_ml, LapaceDice = _dice()
    from sklearn.linear_model import LogisticRegression

    ds = datasets.load("german")
    frame = ds.frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = frame.iloc[:800].reset_index(drop=True), frame.iloc[800:].reset_index(drop=True)
    cont = list(ds.schema.continuous)
    cat = [f for f in ds.features if f not in cont]
    clf = _pipeline(cont, cat, LogisticRegression(max_iter=2000)).fit(train[ds.features], train[ds.target])
    d = dice_ml.Data(dataframe=train, continuous_features=cont, outcome_name=ds.target)
    m = dice_ml.Model(model=clf, backend="sklearn")
    return ds, d, m, clf, train, test[ds.features].iloc[:20].reset_index(drop=True)


def test_ordinal_features_both_ways(german):
    ds, d, m, clf, train, queries = german
    _, LapaceDice = _dice()
    name = "present_employment_since"
    levels = ds.schema.ordinal[name]
    fitted = Lapace(schema=ds.schema, epochs=10, **FAST).fit(train[ds.features], clf.predict_proba, classes=clf.classes_)
    inferred = LapaceDice(d, m, epochs=10, ordinal={name: levels}, **FAST)
    assert inferred.explainer.schema_.ordinal == {name: [str(v) for v in levels]}
    for exp in (LapaceDice(d, m, explainer=fitted), inferred):  # the fitted one crashed with KeyError before
        rows, _ = _rows(exp.generate_counterfactuals(queries, total_CFs=2, desired_class="opposite"), sparse=True)
        assert len(rows) and rows[name].astype(str).isin([str(v) for v in levels]).all()


@pytest.fixture(scope="module")
def card():
    dice_ml, LapaceDice = _dice()
    from sklearn.ensemble import RandomForestClassifier

    data = load()
    train, test = data.iloc[:960].reset_index(drop=True), data.iloc[960:].reset_index(drop=True)
    features = [c for c in data.columns if c != "card"]
    cont = [c for c in features if c != "owner"]
    clf = _pipeline(cont, ["owner"], RandomForestClassifier(n_estimators=60, random_state=0, n_jobs=1))
    clf.fit(train[features], train["card"])
    d = dice_ml.Data(dataframe=train, continuous_features=cont, outcome_name="card")
    m = dice_ml.Model(model=clf, backend="sklearn")
    queries = test[features][clf.predict(test[features]) == 0].iloc[:20].reset_index(drop=True)
    return d, m, queries


@pytest.mark.parametrize("revert", [False, True], ids=["plain", "revert"])
def test_relations_and_derived_features_hold_through_dice(card, revert):
    d, m, queries = card
    _, LapaceDice = _dice()
    exp = LapaceDice(d, m, epochs=40, derived=DERIVED, relations=RELATIONS + [MOVE_TOGETHER], monotone={"age": "increase"}, **FAST)
    cfs = exp.generate_counterfactuals(queries, total_CFs=3, desired_class="opposite", revert=revert)
    schema = exp.explainer.schema_
    check = Constraints(relations=EVERY, increase=["age"])
    for sparse in (False, True):
        rows, factual = _rows(cfs, sparse)
        assert len(rows) >= len(queries)
        broken = check.violations(factual[schema.features], rows[schema.features], schema)
        assert not broken.any().any(), broken.mean()
    assert np.mean([ex.final_cfs_df is not None for ex in cfs.cf_examples_list]) >= 0.8

"""Greedy reversion of unneeded changes (``revert=True``), on real bundled data with real classifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lapace_plugin import Lapace
from lapace_plugin.revert import feature_blocks, revert_greedy
from lapace_plugin.support import states

from fitted import ADULT_CONSTRAINTS, feasible, fitted, unfavourable


def _changed(cf: pd.DataFrame, queries: pd.DataFrame) -> pd.DataFrame:
    factual = queries.loc[cf.index.get_level_values("query")]
    return pd.DataFrame(cf.to_numpy() != factual[cf.columns].to_numpy(), columns=cf.columns, index=cf.index)


def test_revert_greedy_keeps_exactly_the_needed_features():
    # 5 continuous features and one group of 3; a point is valid iff features 1 and 3 both keep their change
    blocks = feature_blocks(5, [("g", slice(5, 8))])
    rng = np.random.RandomState(0)
    factuals = np.zeros((30, 8), dtype=np.float32)
    factuals[:, 5] = 1.0
    points = rng.uniform(0.1, 1.0, size=(30, 8)).astype(np.float32)
    points[:, 5:] = 0.0
    points[:, 6] = 1.0
    calls = []

    def evaluate(rows, candidates):
        calls.append(len(rows))
        ok = (candidates[:, 1] != 0) & (candidates[:, 3] != 0)
        return ok, candidates[:, :5].sum(1)  # higher probability with more change: the worst greedy order

    out, proba, reverted = revert_greedy(points, factuals, np.ones(30), blocks, evaluate)
    np.testing.assert_array_equal(out[:, [1, 3]], points[:, [1, 3]])
    np.testing.assert_array_equal(np.delete(out, [1, 3], axis=1), np.delete(factuals, [1, 3], axis=1))
    assert (reverted == 4).all()  # features 0, 2, 4 and the group
    np.testing.assert_allclose(proba, out[:, :5].sum(1))
    assert len(calls) == 5  # four reverting rounds and one that finds nothing more to revert


def test_revert_greedy_leaves_a_point_whose_every_change_is_needed():
    blocks = feature_blocks(3, [])
    points = np.array([[0.5, 0.5, 0.5]], dtype=np.float32)
    factuals = np.zeros_like(points)
    out, _, reverted = revert_greedy(points, factuals, np.ones(1), blocks, lambda r, c: (np.zeros(len(r), bool), np.zeros(len(r))))
    np.testing.assert_array_equal(out, points)
    assert reverted.tolist() == [0]


@pytest.mark.parametrize("name", ["adult", "compas", "german"])
@pytest.mark.parametrize("min_pair_count", [0, 2], ids=["no-filter", "plausibility-filter"])
def test_reverted_counterfactuals_are_valid_closer_and_every_remaining_change_is_needed(name, min_pair_count):
    f = fitted(name)
    ex = f.explainer
    queries = unfavourable(f, 30)
    plain = ex.explain(queries, revert=False, min_pair_count=min_pair_count)
    res = ex.explain(queries, revert=True, min_pair_count=min_pair_count)
    cf = res.counterfactuals
    assert res.coverage == plain.coverage == 1.0
    assert (f.model.predict(cf) == 1).all()
    changed = _changed(cf, queries)
    before = _changed(plain.counterfactuals, queries).sum(1).mean()
    # with the filter, features that only change together (married and "Husband") cannot be set back one by one
    assert changed.sum(1).mean() < (0.75 if min_pair_count == 0 else 0.9) * before
    frame = res.to_frame()
    assert (frame.loc[frame["rank"] >= 0, "reverted"] > 0).mean() > 0.5
    # local minimality: setting back any single remaining change loses the target class, makes a row the learned
    # consistency check rejects, or (with the filter) a pair of values that fewer than min_pair_count training rows
    # hold and the query does not
    rows, owners = [], []
    for i, (key, row) in enumerate(cf.iterrows()):
        for feature in cf.columns[changed.iloc[i].to_numpy()]:
            candidate = row.copy()
            candidate[feature] = queries.loc[key[0], feature]
            rows.append(candidate)
            owners.append(key[0])
    again = ex.schema_.validate(pd.DataFrame(rows).reset_index(drop=True))
    lost = f.model.predict(again) == 0
    lost |= ex.state_.inconsistent(again, 1)  # or the learned consistency check rejects the row (consistency=True)
    if min_pair_count:
        own = states(ex.schema_, queries.loc[owners])
        lost |= ex.support_.rare(states(ex.schema_, again), min_pair_count, own)
    assert lost.all()


def test_reversion_respects_constraints_and_every_path_and_search(adult):
    queries = unfavourable(adult, 30)
    queries = queries[queries["hours_per_week"].between(30, 50)]
    possible = feasible(adult, queries, ADULT_CONSTRAINTS)  # some high-income training row meets the constraints
    for path in ("latent", "corrected", "sparse", "neighbour"):
        for search in ("grid", "fast"):
            res = adult.explainer.explain(queries, path=path, search=search, revert=True, constraints=ADULT_CONSTRAINTS)
            cf = res.counterfactuals
            explained = possible[list(set(cf.index.get_level_values("query")))].sum() / possible.sum()
            assert explained >= 0.7, (path, search)
            assert (adult.model.predict(cf) == 1).all(), (path, search)
            factuals = res.queries.loc[cf.index.get_level_values("query")]
            assert not ADULT_CONSTRAINTS.violations(factuals, cf).to_numpy().any(), (path, search)


def test_a_query_outside_a_range_constraint_keeps_the_counterfactuals_allowed_value(adult):
    # reverting hours_per_week to the query's 60 would break the range, so it must stay inside
    queries = unfavourable(adult, 40)
    queries = queries[queries["hours_per_week"] > 50].iloc[:5]
    assert len(queries)
    res = adult.explainer.explain(queries, revert=True, constraints={"ranges": {"hours_per_week": (30, 50)}})
    assert res.counterfactuals["hours_per_week"].between(30, 50).all()


def test_last_ignores_revert_and_the_setting_is_saved(compas, tmp_path):
    queries = unfavourable(compas, 10)
    ex = compas.explainer
    pd.testing.assert_frame_equal(
        ex.explain(queries, strategy="last", revert=True).counterfactuals,
        ex.explain(queries, strategy="last").counterfactuals,
    )
    ex.revert = True
    try:
        ex.save(str(tmp_path / "saved"))
    finally:
        ex.revert = False
    loaded = Lapace.load(str(tmp_path / "saved"), compas.model.predict_proba)
    assert loaded.revert is True
    pd.testing.assert_frame_equal(loaded.explain(queries).counterfactuals, ex.explain(queries, revert=True).counterfactuals)


def test_revert_must_be_a_boolean(compas):
    with pytest.raises(ValueError, match="revert must be True or False, got 'yes'"):
        compas.explainer.explain(unfavourable(compas, 2), revert="yes")
    with pytest.raises(ValueError, match="revert must be True or False"):
        Lapace(revert=1).fit(compas.X_train.iloc[:50], compas.model.predict_proba)

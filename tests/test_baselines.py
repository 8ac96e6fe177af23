"""Baselines (NNCE, DRCE, RobXCE) on the bundled real data, checked against brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from lapace_plugin import datasets
from lapace_plugin.evaluation import metrics
from lapace_plugin.evaluation.baselines import BASELINES, CCHVAE, DRCE, NNCE, ElliCE, Revise, RobXCE


def forest(ds: datasets.Dataset, n_rows: int = None):
    """A small random forest behind a one-hot pipeline, taking raw frames."""
    X, y = ds.X, ds.y
    if n_rows is not None:
        X, y = X.iloc[:n_rows], y.iloc[:n_rows]
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), list(ds.schema.categorical)), remainder="passthrough"
    )
    rf = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0)
    return make_pipeline(encode, rf).fit(X, y)


@pytest.fixture(scope="module")
def compas():
    ds = datasets.load("compas")
    return ds, forest(ds), ds.X.sample(25, random_state=1)


def brute_distances(schema, query: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """(1/d)-L1 distance of one query row to every row, feature by feature."""
    repeated = query.iloc[np.zeros(len(rows), dtype=int)]
    return metrics.feature_distances(schema, repeated, rows).mean(axis=1)


def as_tuples(frame: pd.DataFrame) -> set:
    return set(map(tuple, frame.to_numpy(dtype=object)))


# ------------------------------------------------------------------ interface


def test_explain_before_fit_is_a_clear_error(compas):
    ds, model, queries = compas
    with pytest.raises(RuntimeError, match="not fitted"):
        NNCE(schema=ds.schema).explain(queries)


def test_output_has_query_rank_index_and_training_dtypes(compas):
    ds, model, queries = compas
    cf = NNCE(schema=ds.schema).fit(ds.X, model.predict_proba).explain(queries, n_counterfactuals=3)
    assert cf.index.names == ["query", "rank"]
    assert list(cf.columns) == ds.schema.features
    assert (cf.dtypes == ds.X.dtypes).all()
    ranks = cf.index.to_frame(index=False).groupby("query")["rank"].apply(list)
    assert all(r == list(range(len(r))) for r in ranks)
    assert set(cf.index.get_level_values("query")) == set(queries.index)


def test_default_target_is_the_other_class_for_a_binary_model(compas):
    ds, model, queries = compas
    method = NNCE(schema=ds.schema).fit(ds.X, model.predict_proba)
    method.explain(queries)
    np.testing.assert_array_equal(method.target_class_, 1 - model.predict_proba(queries).argmax(axis=1))


def test_multiclass_model_needs_a_target_class():
    ds = datasets.load("wine")
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(ds.X, ds.y)
    method = NNCE(schema=ds.schema).fit(ds.X, model.predict_proba)
    with pytest.raises(ValueError, match="target_class is required"):
        method.explain(ds.X.iloc[:3])
    cf = method.explain(ds.X.iloc[:3], target_class=2)
    assert metrics.validity(ds.schema, None, cf, model.predict_proba, 2) == 1.0


def test_unreachable_target_is_reported_as_a_failure(compas):
    ds, _, queries = compas

    def always_class_0(frame: pd.DataFrame) -> np.ndarray:
        return np.tile([0.9, 0.1], (len(frame), 1))

    for cls in (NNCE, DRCE, RobXCE):
        method = cls(schema=ds.schema).fit(ds.X, always_class_0)
        cf = method.explain(queries, target_class=1)
        assert len(cf) == 0 and cf.index.names == ["query", "rank"]
        assert set(method.failures) == set(queries.index)
        assert "no training row is predicted as class 1" in method.failures[queries.index[0]]


def test_registry_names_every_baseline():
    assert BASELINES == {"nnce": NNCE, "drce": DRCE, "robxce": RobXCE, "cchvae": CCHVAE, "revise": Revise, "ellice": ElliCE}


# ------------------------------------------------------------------ NNCE


def test_nnce_returns_the_nearest_valid_training_row(compas):
    ds, model, queries = compas
    method = NNCE(schema=ds.schema).fit(ds.X, model.predict_proba)
    cf = method.explain(queries)
    train_pred = model.predict_proba(ds.X).argmax(axis=1)
    training_rows = as_tuples(ds.X)
    assert metrics.validity(method.schema_, queries, cf, model.predict_proba, method.target_class_) == 1.0
    for (q, rank), row in cf.iterrows():
        target = method.target_class_[queries.index.get_loc(q)]
        best = brute_distances(ds.schema, queries.loc[[q]], ds.X[train_pred == target]).min()
        assert tuple(row.to_numpy(dtype=object)) in training_rows
        assert brute_distances(ds.schema, queries.loc[[q]], cf.loc[[(q, rank)]])[0] == pytest.approx(best)


def test_nnce_k_counterfactuals_are_the_k_nearest_distinct_valid_rows(compas):
    ds, model, queries = compas
    method = NNCE(schema=ds.schema).fit(ds.X, model.predict_proba)
    cf = method.explain(queries, n_counterfactuals=4)
    train_pred = model.predict_proba(ds.X).argmax(axis=1)
    for q in queries.index[:5]:
        mine = cf.xs(q, level="query")
        target = method.target_class_[queries.index.get_loc(q)]
        valid = ds.X[train_pred == target].drop_duplicates()
        expected = np.sort(brute_distances(ds.schema, queries.loc[[q]], valid))[:4]
        got = brute_distances(ds.schema, queries.loc[[q]], mine)
        np.testing.assert_allclose(got, expected)
        assert len(as_tuples(mine)) == 4


def test_nnce_with_schema_immutables_keeps_them(compas):
    ds, model, queries = compas
    method = NNCE(schema=ds.schema, immutable="schema").fit(ds.X, model.predict_proba)
    cf = method.explain(queries)
    assert metrics.constraint_violations(ds.schema, queries, cf, {"immutable": ds.schema.immutable}) == 0
    free = NNCE(schema=ds.schema).fit(ds.X, model.predict_proba).explain(queries)
    assert metrics.proximity_l1(ds.schema, queries, cf) >= metrics.proximity_l1(ds.schema, queries, free) - 1e-12


def test_nnce_on_adult_is_the_brute_force_nearest():
    ds = datasets.load("adult")
    model = forest(ds, n_rows=5000)
    queries = ds.X.sample(10, random_state=2)
    method = NNCE(schema=ds.schema).fit(ds.X, model.predict_proba)
    cf = method.explain(queries)
    train_pred = model.predict_proba(ds.X).argmax(axis=1)
    assert len(cf) == len(queries)
    for q, rank in cf.index:
        target = method.target_class_[queries.index.get_loc(q)]
        best = brute_distances(ds.schema, queries.loc[[q]], ds.X[train_pred == target]).min()
        assert brute_distances(ds.schema, queries.loc[[q]], cf.loc[[(q, rank)]])[0] == pytest.approx(best)


# ------------------------------------------------------------------ DRCE


def test_drce_counterfactuals_respect_the_alpha_and_beta_rules(compas):
    ds, model, queries = compas
    alpha, beta = 0.5, 0.25
    method = DRCE(schema=ds.schema, alpha=alpha, beta=beta).fit(ds.X, model.predict_proba)
    cf = method.explain(queries, n_counterfactuals=5)
    nnce = NNCE(schema=ds.schema).fit(ds.X, model.predict_proba).explain(queries)
    train_pred = model.predict_proba(ds.X).argmax(axis=1)
    assert metrics.validity(method.schema_, queries, cf, model.predict_proba, method.target_class_) == 1.0
    for q in queries.index:
        mine = cf.xs(q, level="query")
        target = method.target_class_[queries.index.get_loc(q)]
        valid = ds.X[train_pred == target].drop_duplicates()
        to_query = brute_distances(ds.schema, queries.loc[[q]], valid)
        d_star = to_query.min()
        own = brute_distances(ds.schema, queries.loc[[q]], mine)
        # the first is NNCE's, and every one lies within (1 + alpha) d* of the query
        assert own[0] == pytest.approx(d_star)
        assert own[0] == pytest.approx(brute_distances(ds.schema, queries.loc[[q]], nnce.xs(q, level="query"))[0])
        assert (own <= (1 + alpha) * d_star + 1e-9).all()
        # kept counterfactuals are pairwise at least (1 + beta) d* apart
        for i in range(len(mine)):
            apart = brute_distances(ds.schema, mine.iloc[[i]], mine.drop(index=mine.index[i]))
            assert (apart >= (1 + beta) * d_star - 1e-9).all()
        # greedy: with fewer than 5 kept, every other candidate in the ball is too close to a kept one
        if len(mine) < 5:
            ball = valid[to_query <= (1 + alpha) * d_star + 1e-9]
            for i in range(len(ball)):
                gaps = brute_distances(ds.schema, ball.iloc[[i]], mine)
                assert gaps.min() < (1 + beta) * d_star + 1e-9


def test_drce_gives_more_diverse_sets_than_nnce(compas):
    ds, model, queries = compas
    drce = DRCE(schema=ds.schema).fit(ds.X, model.predict_proba).explain(queries, n_counterfactuals=3)
    nnce = NNCE(schema=ds.schema).fit(ds.X, model.predict_proba).explain(queries, n_counterfactuals=3)
    assert metrics.diversity(ds.schema, None, drce) > metrics.diversity(ds.schema, None, nnce)


# ------------------------------------------------------------------ RobXCE


@pytest.fixture(scope="module")
def robx(compas):
    ds, model, queries = compas
    method = RobXCE(schema=ds.schema, n_perturbations=50, random_state=0).fit(ds.X, model.predict_proba)
    return method, method.explain(queries.iloc[:10], n_counterfactuals=2)


def test_robxce_counterfactuals_are_valid_and_stable(compas, robx):
    ds, model, queries = compas
    method, cf = robx
    targets = pd.Series(method.target_class_, index=queries.index[:10])
    assert len(cf) > 0
    assert metrics.validity(method.schema_, None, cf, model.predict_proba, targets) == 1.0
    # stability recomputed by hand from the method's noise: mean - std of the target probability
    for q, rank in cf.index:
        copies = cf.loc[[(q, rank)] * method.n_perturbations].reset_index(drop=True)
        for j, f in enumerate(ds.schema.continuous):
            lo, hi = ds.schema.ranges[f]
            copies[f] = copies[f].to_numpy(dtype=float) + method.noise_[:, j] * (hi - lo)
        prob = model.predict_proba(copies)[:, targets[q]]
        assert prob.mean() - prob.std() > method.threshold


def test_robxce_counterfactuals_are_raw_rows_between_query_and_a_stable_training_row(compas, robx):
    ds, model, queries = compas
    method, cf = robx
    assert (cf.dtypes == ds.X.dtypes).all()
    assert set(cf.index.get_level_values("query")) | set(method.failures) == set(queries.index[:10])
    for f in ds.schema.continuous:
        lo, hi = ds.schema.ranges[f]
        assert cf[f].between(lo, hi).all()
    for f, cats in ds.schema.categorical.items():
        assert cf[f].isin(cats).all()


def test_robxce_is_reproducible_with_a_seed(compas, robx):
    ds, model, queries = compas
    _, cf = robx
    again = RobXCE(schema=ds.schema, n_perturbations=50, random_state=0).fit(ds.X, model.predict_proba)
    pd.testing.assert_frame_equal(again.explain(queries.iloc[:10], n_counterfactuals=2), cf)


def test_robxce_walks_ordinal_levels_on_german():
    # german's employment length is ordinal: interpolated points take its levels (rounded positions), never a string
    # that cannot be classified, and every counterfactual is valid
    from lapace_plugin.evaluation.models import make_classifier

    ds = datasets.load("german")
    X, y = ds.X.iloc[:400], ds.y.iloc[:400]
    model = make_classifier(ds.schema, "rf", random_state=0).fit(X, y)
    queries = X[model.predict(X) == 0].iloc[:3]
    cf = RobXCE(schema=ds.schema, n_perturbations=50, random_state=0).fit(X, model.predict_proba).explain(
        queries, target_class=1, n_counterfactuals=2)
    levels = ds.schema.ordinal["present_employment_since"]
    assert len(cf) and cf["present_employment_since"].isin(levels).all()
    assert metrics.validity(ds.schema, queries, cf, model.predict_proba, 1) == 1.0

"""Properties of the L-GMVAE and of LAPACE on real bundled data with real classifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lapace_plugin import Constraints, Lapace
from lapace_plugin.encoding import TabularEncoder

from fitted import ADULT_CONSTRAINTS, fitted, unfavourable


@pytest.mark.parametrize("name", ["adult", "compas", "german", "wine"])
def test_decoded_centroids_are_assigned_to_their_own_class(name):
    f = fitted(name)
    ex = f.explainer
    assert ex.centroid_validity_ == 1.0
    predicted = f.model.predict_proba(ex.centroids_).argmax(1)
    assert (predicted == ex.centroid_class_).all()
    # Validity through collapse does not count: each class keeps several distinct decoded centroids.
    assert all(count >= 3 for count in ex.distinct_centroids_.values()), ex.distinct_centroids_


def test_counterfactuals_are_valid_rows_of_the_raw_format(adult):
    ex = adult.explainer
    res = ex.explain(unfavourable(adult), strategy="first")
    cf = res.counterfactuals
    assert list(cf.columns) == adult.ds.schema.features
    assert (cf.dtypes == adult.X_train.dtypes).all()
    for name, cats in adult.ds.schema.categorical.items():
        assert cf[name].isin(cats).all()
    for name, (lo, hi) in adult.ds.schema.ranges.items():
        assert cf[name].between(lo, hi).all()
    assert (cf["age"] == cf["age"].round()).all()


@pytest.mark.parametrize("strategy", ["first", "last"])
def test_every_returned_counterfactual_is_valid(compas, strategy):
    queries = unfavourable(compas)
    res = compas.explainer.explain(queries, strategy=strategy)
    assert not res.failures
    assert (compas.model.predict(res.counterfactuals) == 1).all()
    assert set(res.counterfactuals.index.get_level_values("query")) == set(queries.index)


@pytest.mark.parametrize("path", ["neighbour", "corrected"])
def test_first_strategy_returns_the_first_valid_point_on_each_path(compas, path):
    queries = unfavourable(compas, 10)
    res = compas.explainer.explain(queries, strategy="first", search="grid", path=path, distinct=False)
    paths = res.paths
    assert len(paths) == len(queries) * 5 * (compas.explainer.n_steps + 1)
    chosen = res.to_frame()
    for _, row in chosen[chosen["valid"]].iterrows():
        path = paths[(paths["query"] == row["query"]) & (paths["component"] == row["component"])]
        assert row["tau"] == path.loc[path["valid"], "tau"].min()
        earlier = path[path["tau"] < row["tau"]]
        assert not earlier["valid"].any()


def test_paths_give_distinct_rows_and_say_why_when_they_cannot(compas):
    queries = unfavourable(compas, 30)
    res = compas.explainer.explain(queries, search="grid")
    frame = res.to_frame()
    kept = frame[frame["rank"] >= 0]
    features = list(compas.ds.schema.features)
    assert not kept.duplicated(["query"] + features).any()
    per_query = kept.groupby("query").size()
    assert per_query.mean() >= 4
    short = per_query[per_query < 5].index
    assert set(short) == set(res.shortfalls)
    for q in short:
        notes = frame.loc[(frame["query"] == q) & (frame["rank"] < 0), "note"]
        assert (notes != "").all() and res.shortfalls[q].startswith("%d distinct counterfactual" % per_query[q])
    # a repeated first point is replaced by a later point of its own path, so that path's tau is past its first valid
    plain = compas.explainer.explain(queries, search="grid", distinct=False).to_frame()
    assert (plain["rank"] >= 0).sum() <= (frame["rank"] >= 0).sum()


def assert_same_counterfactual_sets(a, b):
    """Same counterfactual from every path of every query (the rank by proximity may differ)."""
    fa, fb = a.to_frame().drop(columns="rank"), b.to_frame().drop(columns="rank")
    # under constraints some projected centroids hold a pair of values no real row has (e.g. a Female "Husband"):
    # the plausibility filter rejects them
    assert fa["valid"].mean() > 0.6
    pd.testing.assert_frame_equal(fa, fb)


def test_last_strategy_is_identical_for_perturbed_inputs(adult):
    queries = unfavourable(adult, 20)
    perturbed = queries.copy()
    perturbed["hours_per_week"] = np.clip(perturbed["hours_per_week"] + 3, 1, 99)
    perturbed["capital_loss"] = perturbed["capital_loss"] + 10
    a = adult.explainer.explain(queries, strategy="last")
    b = adult.explainer.explain(perturbed, strategy="last")
    assert_same_counterfactual_sets(a, b)


def test_constrained_last_strategy_is_identical_when_only_unconstrained_features_differ(adult):
    queries = unfavourable(adult, 20)
    perturbed = queries.copy()
    perturbed["hours_per_week"] = np.clip(perturbed["hours_per_week"] - 5, 1, 99)
    a = adult.explainer.explain(queries, strategy="last", constraints="schema")
    b = adult.explainer.explain(perturbed, strategy="last", constraints="schema")
    assert_same_counterfactual_sets(a, b)
    assert a.n_repaired > 0


@pytest.mark.parametrize("strategy", ["first", "last"])
def test_constraints_are_never_violated(adult, strategy):
    queries = unfavourable(adult, 30)
    constraints = ADULT_CONSTRAINTS
    res = adult.explainer.explain(queries[queries["hours_per_week"].between(30, 50)], strategy=strategy, constraints=constraints)
    cf = res.counterfactuals
    assert len(cf) > 0
    factuals = res.queries.loc[cf.index.get_level_values("query")]
    assert not constraints.violations(factuals, cf).to_numpy().any()
    assert res.n_repaired > 0
    assert (adult.model.predict(cf) == 1).all()


def test_dict_constraints_equal_constraint_objects(compas):
    queries = unfavourable(compas, 10)
    as_dict = compas.explainer.explain(queries, constraints={"immutable": ["race", "sex"], "increase": ["age"]})
    as_obj = compas.explainer.explain(queries, constraints=Constraints(immutable=["race", "sex"], increase=["age"]))
    pd.testing.assert_frame_equal(as_dict.counterfactuals, as_obj.counterfactuals)


def test_fewer_counterfactuals_are_the_nearest_ones(compas):
    queries = unfavourable(compas, 10)
    all_cfs = compas.explainer.explain(queries, n_counterfactuals=5).to_frame()
    two = compas.explainer.explain(queries, n_counterfactuals=2)
    assert two.counterfactuals.groupby(level="query").size().max() <= 2
    kept = all_cfs[all_cfs["rank"].between(0, 1)]
    assert len(kept) == len(two.counterfactuals)


def test_query_already_in_target_class_is_reported_as_failed(compas):
    favoured = compas.X_test[compas.model.predict(compas.X_test) == 1].iloc[:3]
    res = compas.explainer.explain(favoured, target_class=1)
    assert set(res.failures) == set(favoured.index)
    assert all("already predicted" in reason for reason in res.failures.values())
    assert len(res.counterfactuals) == 0
    assert res.coverage == 0.0


def test_multiclass_targets_each_class(wine):
    queries = wine.X_test.iloc[:10]
    predicted = wine.model.predict(queries)
    with pytest.raises(ValueError, match="target_class is required"):
        wine.explainer.explain(queries)
    for target in range(3):
        res = wine.explainer.explain(queries, target_class=target)
        assert (wine.model.predict(res.counterfactuals) == target).all()
        assert set(res.failures) == set(queries.index[predicted == target])
    per_query = (predicted + 1) % 3
    res = wine.explainer.explain(queries, target_class=per_query)
    assert not res.failures
    targets = pd.Series(per_query, index=queries.index).loc[res.counterfactuals.index.get_level_values("query")]
    assert (wine.model.predict(res.counterfactuals) == targets.to_numpy()).all()


def test_save_and_load_reproduce_explanations_exactly(compas, tmp_path):
    queries = unfavourable(compas, 15)
    compas.explainer.save(str(tmp_path / "lapace"))
    loaded = Lapace.load(str(tmp_path / "lapace"), predict_proba=compas.model.predict_proba)
    for strategy in ("first", "last"):
        a = compas.explainer.explain(queries, strategy=strategy, constraints="schema")
        b = loaded.explain(queries, strategy=strategy, constraints="schema")
        pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    pd.testing.assert_frame_equal(loaded.centroids_, compas.explainer.centroids_)
    assert "pickle" not in open(str(tmp_path / "lapace" / "lapace.json")).read()


def test_fixed_random_state_reproduces_a_fit(wine):
    kwargs = dict(schema=wine.ds.schema, random_state=3, epochs=30, verbose=False)
    a = Lapace(**kwargs).fit(wine.X_train, wine.model.predict_proba)
    b = Lapace(**kwargs).fit(wine.X_train, wine.model.predict_proba)
    for (name, pa), pb in zip(a.model_.state_dict().items(), b.model_.state_dict().values()):
        assert np.array_equal(pa.numpy(), pb.numpy()), name
    queries = wine.X_test.iloc[:5]
    pd.testing.assert_frame_equal(a.explain(queries, target_class=0).to_frame(), b.explain(queries, target_class=0).to_frame())
    c = Lapace(**dict(kwargs, random_state=4)).fit(wine.X_train, wine.model.predict_proba)
    assert not np.array_equal(c.model_.prior_mean.detach().numpy(), a.model_.prior_mean.detach().numpy())


def test_encoder_round_trips_raw_rows(adult):
    enc = TabularEncoder(adult.ds.schema)
    X = adult.X_test.iloc[:500]
    decoded = enc.decode(enc.encode(X), index=X.index)
    pd.testing.assert_frame_equal(decoded, X, check_exact=False, rtol=1e-5)
    assert (enc.snap(enc.encode(X)) == enc.encode(X)).all()


def test_result_exports_json_and_frame(compas):
    import json

    res = compas.explainer.explain(unfavourable(compas, 5))
    payload = json.loads(res.to_json())
    assert len(payload["counterfactuals"]) == len(res.counterfactuals)
    frame = res.to_frame()
    assert {"query", "component", "tau", "valid", "probability", "repaired", "rank"} <= set(frame.columns)
    assert (frame.loc[frame["valid"], "probability"] > 0.5).all()


@pytest.mark.parametrize("strategy", ["first", "last"])
def test_a_capped_increase_bounds_the_change(adult, strategy):
    queries = unfavourable(adult, 40)
    constraints = Constraints(immutable=["race", "sex", "native_country"], increase={"age": 5, "education_num": None})
    res = adult.explainer.explain(queries, strategy=strategy, constraints=constraints)
    cf = res.counterfactuals
    assert len(cf) > 0
    change = cf["age"].to_numpy() - queries.loc[cf.index.get_level_values("query"), "age"].to_numpy()
    assert ((change >= 0) & (change <= 5)).all()
    factuals = queries.loc[cf.index.get_level_values("query")]
    assert not constraints.violations(factuals, cf, adult.ds.schema).to_numpy().any()
    broken = cf.assign(age=factuals["age"].to_numpy() + 6)
    assert constraints.violations(factuals, broken, adult.ds.schema)["age"].all()
    assert constraints.to_dict()["increase"] == {"age": 5.0, "education_num": None}


def test_the_whole_fit_runs_on_n_threads_and_torch_keeps_its_own_afterwards():
    """Training and the centroid settling after it (which encodes every training row) run on ``n_threads``: on a busy
    2-core machine torch's own two threads made the settling 2-5x slower."""
    f = fitted("german")
    seen = []

    def proba(frame: pd.DataFrame) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return f.model.predict_proba(frame)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        Lapace(schema=f.ds.schema, epochs=1, n_threads=1, verbose=False).fit(f.X_train, proba, f.model.classes_)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen[0] == 2  # the labels, before the fit's torch work
    assert len(seen) > 1 and set(seen[1:]) == {1}  # the settling's classifier calls
    assert after == 2

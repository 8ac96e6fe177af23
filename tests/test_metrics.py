"""Metrics (SPEC section 4) on small cases whose answers are worked out by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lapace_plugin.constraints import Constraints
from lapace_plugin.evaluation import metrics
from lapace_plugin.schema import FeatureSchema

# Two raw features: x continuous on the training range [0, 10] (so a move of 1 counts 0.1) and c
# categorical with categories a, b, c. d = 2.


@pytest.fixture
def schema() -> FeatureSchema:
    return FeatureSchema(continuous=["x"], categorical={"c": ["a", "b", "c"]}, ranges={"x": (0.0, 10.0)})


@pytest.fixture
def factuals() -> pd.DataFrame:
    # q3 has no counterfactual (coverage 2/3).
    return pd.DataFrame({"x": [2.0, 5.0, 3.0], "c": ["a", "b", "a"]}, index=pd.Index(["q1", "q2", "q3"]))


@pytest.fixture
def cfs() -> pd.DataFrame:
    # per-feature distances to the factual (x, c):
    #   q1/0 (4, a): (0.2, 0)    q1/1 (1, c): (0.1, 1)
    #   q2/0 (10, b): (0.5, 0)   q2/1 (8, a): (0.3, 1)
    index = pd.MultiIndex.from_tuples([("q1", 0), ("q1", 1), ("q2", 0), ("q2", 1)], names=["query", "rank"])
    return pd.DataFrame({"x": [4.0, 1.0, 10.0, 8.0], "c": ["a", "c", "b", "a"]}, index=index)


def threshold_model(threshold: float = 5.0):
    """Class 1 exactly when x >= threshold (probability 0.9), else class 0."""

    def predict_proba(frame: pd.DataFrame) -> np.ndarray:
        p = np.where(frame["x"].to_numpy(dtype=float) >= threshold, 0.9, 0.1)
        return np.column_stack([1 - p, p])

    return predict_proba


class ThresholdModel:
    def __init__(self, threshold: float) -> None:
        self.predict_proba = threshold_model(threshold)


# ------------------------------------------------------------------ distances


def test_feature_distances_scale_continuous_by_range_and_count_category_changes(schema, factuals, cfs):
    facts = metrics.matched_factuals(factuals, cfs)
    dist = metrics.feature_distances(schema, facts, cfs)
    np.testing.assert_allclose(dist, [[0.2, 0], [0.1, 1], [0.5, 0], [0.3, 1]])


def test_pairwise_l1_is_mean_feature_distance(schema, cfs):
    # (4, a) vs (1, c): (0.3 + 1) / 2 = 0.65; (4, a) vs (8, a): 0.4 / 2 = 0.2
    dist = metrics.pairwise(metrics.parts(schema, cfs), metrics.parts(schema, cfs)) / len(schema.features)
    assert dist.shape == (4, 4)
    assert dist[0, 1] == pytest.approx(0.65)
    assert dist[0, 3] == pytest.approx(0.2)
    np.testing.assert_allclose(np.diag(dist), 0)


def test_query_ids_come_from_index_level_or_column(cfs):
    from_index = metrics.query_ids(cfs)
    from_column = metrics.query_ids(cfs.reset_index())
    assert list(from_index) == list(from_column) == ["q1", "q1", "q2", "q2"]


def test_missing_query_link_is_explained(cfs):
    with pytest.raises(ValueError, match="'query' column or an index level"):
        metrics.query_ids(cfs.reset_index(drop=True))


def test_counterfactual_of_unknown_query_is_an_error(schema, factuals, cfs):
    with pytest.raises(ValueError, match="not in the factuals: 'q2'"):
        metrics.proximity_l1(schema, factuals.drop(index="q2"), cfs)


# ------------------------------------------------------------------ validity, proximity, sparsity


def test_validity_with_one_target_class(schema, factuals, cfs):
    # class 1 needs x >= 5: x = 4, 1, 10, 8 -> 2 of 4 valid
    assert metrics.validity(schema, factuals, cfs, threshold_model(), 1) == 0.5


def test_validity_with_per_query_targets_in_every_form(schema, cfs, factuals):
    # q1 targets class 0 (x = 4 and 1 are below 5), q2 class 1 (x = 10 and 8): all 4 valid
    model = threshold_model()
    assert metrics.validity(schema, None, cfs, model, {"q1": 0, "q2": 1}) == 1.0
    assert metrics.validity(schema, None, cfs, model, pd.Series([0, 1], index=["q1", "q2"])) == 1.0
    assert metrics.validity(schema, factuals, cfs, model, [0, 1, 1]) == 1.0
    assert metrics.validity(schema, factuals, cfs.reset_index(), model, [0, 1, 1]) == 1.0
    with pytest.raises(ValueError, match="needs `factuals`"):
        metrics.validity(schema, None, cfs, model, [0, 1, 1])


def test_validity_of_no_counterfactuals_is_nan(schema, factuals, cfs):
    assert math.isnan(metrics.validity(schema, factuals, cfs.iloc[:0], threshold_model(), 1))


def test_proximity_l1(schema, factuals, cfs):
    # (1/2) * sum per row: 0.1, 0.55, 0.25, 0.65 -> mean 1.55 / 4
    assert metrics.proximity_l1(schema, factuals, cfs) == pytest.approx(1.55 / 4)


def test_proximity_l2(schema, factuals, cfs):
    # (1/2) * sqrt(sum of squares) per row: 0.1, sqrt(1.01)/2, 0.25, sqrt(1.09)/2
    expected = (0.1 + math.sqrt(1.01) / 2 + 0.25 + math.sqrt(1.09) / 2) / 4
    assert metrics.proximity_l2(schema, factuals, cfs) == pytest.approx(expected)


def test_sparsity_is_mean_share_of_changed_features(schema, factuals, cfs):
    # changed features per row: 1, 2, 1, 2 of 2 -> (0.5 + 1 + 0.5 + 1) / 4
    assert metrics.sparsity(schema, factuals, cfs) == pytest.approx(0.75)


def test_features_changed_is_mean_count_of_changed_features(schema, factuals, cfs):
    # changed features per row: 1, 2, 1, 2 -> 1.5
    assert metrics.features_changed(schema, factuals, cfs) == pytest.approx(1.5)


def test_query_column_and_index_level_give_the_same_metrics(schema, factuals, cfs):
    flat = cfs.reset_index()
    assert metrics.proximity_l1(schema, factuals, flat) == metrics.proximity_l1(schema, factuals, cfs)
    assert metrics.sparsity(schema, factuals, flat) == metrics.sparsity(schema, factuals, cfs)
    assert metrics.diversity(schema, factuals, flat) == metrics.diversity(schema, factuals, cfs)


# ------------------------------------------------------------------ diversity, coverage, runtime


def test_diversity_averages_pairwise_distance_over_queries_with_two_or_more(schema, cfs):
    # q1: (4, a) vs (1, c) = (0.3 + 1) / 2 = 0.65; q2: (10, b) vs (8, a) = (0.2 + 1) / 2 = 0.6
    # q9 has a single counterfactual and is skipped -> (0.65 + 0.6) / 2
    single_index = pd.MultiIndex.from_tuples([("q9", 0)], names=["query", "rank"])
    single = pd.DataFrame({"x": [7.0], "c": ["c"]}, index=single_index)
    assert metrics.diversity(schema, None, pd.concat([cfs, single])) == pytest.approx(0.625)


def test_diversity_of_three_counterfactuals_is_mean_of_three_pairs(schema):
    # x = 0, 5, 10 with the same category: pairs 0.25, 0.5, 0.25 (already halved) -> 1/3
    cf = pd.DataFrame({"query": ["q"] * 3, "x": [0.0, 5.0, 10.0], "c": ["a"] * 3})
    assert metrics.diversity(schema, None, cf) == pytest.approx(1 / 3)


def test_diversity_without_any_pair_is_nan(schema, cfs):
    assert math.isnan(metrics.diversity(schema, None, cfs.iloc[[0, 2]]))


def test_coverage_counts_queries_with_a_counterfactual(schema, factuals, cfs):
    assert metrics.coverage(schema, factuals, cfs) == pytest.approx(2 / 3)
    assert metrics.coverage(schema, factuals, cfs.iloc[:0]) == 0.0


def test_runtime_per_query():
    assert metrics.runtime_per_query(10.0, 4) == 2.5
    with pytest.raises(ValueError):
        metrics.runtime_per_query(1.0, 0)


# ------------------------------------------------------------------ plausibility


@pytest.fixture
def lof_train() -> pd.DataFrame:
    # class 0 (x < 5): x = 0, 1, 3 -> scaled 0.0, 0.1, 0.3; x = 7, 9 are class 1 and not used for target 0
    return pd.DataFrame({"x": [0.0, 1.0, 3.0, 7.0, 9.0], "c": ["a"] * 5})


def test_lof_matches_hand_computed_local_outlier_factor(schema, lof_train):
    # n_neighbors = 1 on scaled points A = 0, B = 0.1, C = 0.3:
    #   k-distance: A 0.1, B 0.1, C 0.2;  lrd = 1 / reach-dist: A 10, B 10, C 1 / max(0.1, 0.2) = 5
    #   x = 6 (0.6): neighbour C, reach = max(0.2, 0.3) = 0.3, lrd 10/3, LOF = 5 / (10/3) = 1.5
    #   x = 0.4 (0.04): neighbour A, reach = max(0.1, 0.04) = 0.1, lrd 10, LOF = 10 / 10 = 1
    #   x = 3 (0.3): neighbour C, reach = max(0.2, 0) = 0.2, lrd 5, LOF = 5 / 5 = 1
    cf = pd.DataFrame({"query": ["q"] * 3, "x": [6.0, 0.4, 3.0], "c": ["a"] * 3})
    score = metrics.plausibility_lof(schema, None, cf, lof_train, threshold_model(), 0, n_neighbors=1)
    assert score.median == pytest.approx(1.0)
    assert score.mean == pytest.approx((1.5 + 1 + 1) / 3)


def test_lof_deduplicates_training_rows(schema, lof_train):
    # Three more copies of A (x = 0): without de-duplication A's k-distance is 0, its lrd about 1e10,
    # and x = 0.4 scores 1e10 / 25 = 4e8; with de-duplication the score stays the hand-computed 1.
    duplicated = pd.concat([lof_train, lof_train.iloc[[0, 0, 0]]], ignore_index=True)
    cf = pd.DataFrame({"query": ["q"], "x": [0.4], "c": ["a"]})
    kept = metrics.plausibility_lof(schema, None, cf, duplicated, threshold_model(), 0, n_neighbors=1)
    raw = metrics.plausibility_lof(schema, None, cf, duplicated, threshold_model(), 0, n_neighbors=1, deduplicate=False)
    assert kept.mean == pytest.approx(1.0)
    assert raw.mean > 1e8


def test_lof_default_neighbourhood_runs_with_few_rows(schema, lof_train):
    # n_neighbors=10 is capped at the 3 - 1 = 2 reference rows available
    cf = pd.DataFrame({"query": ["q"], "x": [1.0], "c": ["a"]})
    score = metrics.plausibility_lof(schema, None, cf, lof_train, threshold_model(), 0)
    assert np.isfinite(score.median)


def test_ynn_share_of_five_nearest_training_rows_in_target_class(schema):
    # training x = 0, 1.5, 2.5, 4, 6.5, 7, 8.2, 9, 10 (class 1 iff x >= 5)
    # cf x = 5: nearest 4, 6.5, 7, 2.5, 8.2 -> 3 of 5 in class 1
    # cf x = 9.5: nearest 9, 10, 8.2, 7, 6.5 -> 5 of 5 -> mean (0.6 + 1) / 2
    train = pd.DataFrame({"x": [0, 1.5, 2.5, 4, 6.5, 7, 8.2, 9, 10], "c": ["a"] * 9})
    cf = pd.DataFrame({"query": ["q", "r"], "x": [5.0, 9.5], "c": ["a", "a"]})
    assert metrics.ynn(schema, None, cf, train, threshold_model(), 1) == pytest.approx(0.8)


def test_training_predictions_can_be_passed_in(schema):
    train = pd.DataFrame({"x": [0, 1.5, 2.5, 4, 6.5, 7, 8.2, 9, 10], "c": ["a"] * 9})
    cf = pd.DataFrame({"query": ["q"], "x": [5.0], "c": ["a"]})
    everything_class_1 = np.ones(len(train), dtype=int)
    assert metrics.ynn(schema, None, cf, train, None, 1, train_pred=everything_class_1) == 1.0


# ------------------------------------------------------------------ input robustness


def test_set_distance_by_hand(schema):
    # S = {(0, a), (10, a)}, S' = {(0, b)}: S -> S' minima 1 and sqrt(1 + 1); S' -> S minimum 1
    # (1 / 4) * (1 + sqrt(2)) + (1 / 2) * 1
    s = pd.DataFrame({"x": [0.0, 10.0], "c": ["a", "a"]})
    s_prime = pd.DataFrame({"x": [0.0], "c": ["b"]})
    assert metrics.set_distance(schema, s, s_prime) == pytest.approx((1 + math.sqrt(2)) / 4 + 0.5)
    assert metrics.set_distance(schema, s, s) == 0.0


def test_perturbation_moves_only_mutable_continuous_features_within_range():
    schema = FeatureSchema(
        continuous=["x", "age"], categorical={"c": ["a", "b"]}, immutable=["age"],
        ranges={"x": (0.0, 10.0), "age": (0.0, 100.0)}, integer=["x"],
    )
    facts = pd.DataFrame({"x": np.arange(1000) % 11, "age": 50, "c": "a"})
    moved = metrics.perturb_factuals(schema, facts, sigma=0.1, random_state=3)
    assert (moved["age"] == 50).all() and (moved["c"] == "a").all()
    assert moved["x"].between(0, 10).all() and moved["x"].dtype == facts["x"].dtype
    assert (moved["x"] != facts["x"]).mean() > 0.5
    pd.testing.assert_frame_equal(moved, metrics.perturb_factuals(schema, facts, sigma=0.1, random_state=3))


def test_input_robustness_is_zero_for_a_method_that_ignores_its_input(schema, factuals):
    def fixed(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"query": frame.index, "x": 9.0, "c": "c"})

    assert metrics.input_robustness(schema, factuals, None, fixed, random_state=0) == 0.0


def test_input_robustness_of_the_identity_is_the_mean_perturbation(schema, factuals):
    # the counterfactual is the query itself, so each set distance is |x' - x| / 10
    def identity(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(query=frame.index)

    moved = metrics.perturb_factuals(schema, factuals, random_state=7)
    expected = np.mean(np.abs(moved["x"] - factuals["x"]) / 10)
    assert expected > 0
    assert metrics.input_robustness(schema, factuals, None, identity, random_state=7) == pytest.approx(expected)


def test_input_robustness_skips_queries_without_counterfactuals(schema, factuals):
    def only_q1(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"query": ["q1"], "x": [9.0], "c": ["c"]})

    per_query = metrics.input_robustness_per_query(schema, factuals, None, only_q1)
    assert per_query["q1"] == 0.0 and per_query[["q2", "q3"]].isna().all()
    assert metrics.input_robustness(schema, factuals, None, only_q1) == 0.0


# ------------------------------------------------------------------ model robustness


def test_model_robustness_counts_valid_pairs_and_all_valid_counterfactuals(schema, factuals, cfs):
    # target 1, x = 4, 1, 10, 8. Threshold 5: F F T T; threshold 9: F F T F
    # pairs: 3 of 8; valid under both: only x = 10 -> 1 of 4
    models = [ThresholdModel(5), threshold_model(9)]
    assert metrics.model_robustness(schema, factuals, cfs, models, 1) == pytest.approx(3 / 8)
    assert metrics.model_robustness_all(schema, factuals, cfs, models, 1) == pytest.approx(1 / 4)


class RecordingModel:
    fitted = []

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, X, y):
        RecordingModel.fitted.append((self.seed, np.asarray(X).ravel().copy()))
        return self


def test_retrain_models_uses_bootstrap_then_leave_one_percent_out_with_new_seeds():
    RecordingModel.fitted = []
    X = pd.DataFrame({"x": np.arange(200)})
    y = np.arange(200) % 2
    models = metrics.retrain_models(RecordingModel, X, y, n=4, random_state=0)
    assert len(models) == 4
    seeds = [s for s, _ in RecordingModel.fitted]
    assert len(set(seeds)) == 4
    boot = [rows for _, rows in RecordingModel.fitted[:2]]
    left_out = [rows for _, rows in RecordingModel.fitted[2:]]
    for rows in boot:  # a bootstrap of 200 rows repeats some
        assert len(rows) == 200 and len(np.unique(rows)) < 200
    for rows in left_out:  # 1% of 200 = 2 rows left out, no repeats
        assert len(rows) == 198 and len(np.unique(rows)) == 198


def test_retrain_models_clones_an_sklearn_template_with_new_seeds():
    from sklearn.tree import DecisionTreeClassifier

    X = pd.DataFrame({"x": np.arange(100.0)})
    y = (X["x"] > 50).astype(int)
    template = DecisionTreeClassifier(max_depth=2, random_state=0)
    models = metrics.retrain_models(template, X, y, n=3, random_state=1)
    assert len({m.random_state for m in models}) == 3
    assert all(m.max_depth == 2 for m in models)
    assert metrics.retrain_models(template, X, y, n=3, random_state=1)[0].random_state == models[0].random_state


# ------------------------------------------------------------------ constraints


def test_constraint_violations_from_a_dict(schema, factuals, cfs):
    # immutable c, increase-only x: (4, a) ok; (1, c) breaks both (counted once); (10, b) ok; (8, a) changes c
    spec = {"immutable": ["c"], "increase": ["x"]}
    table = metrics.constraint_table(schema, factuals, cfs, spec)
    assert table["immutable"].tolist() == [False, True, False, True]
    assert table["increase"].tolist() == [False, True, False, False]
    assert metrics.constraint_violations(schema, factuals, cfs, spec) == 2


def test_constraint_violations_for_ranges_and_categories(schema, factuals, cfs):
    # x <= 9 is broken by (10, b); category c is not allowed for (1, c)
    spec = {"ranges": {"x": (None, 9)}, "categories": {"c": ["a", "b"]}}
    table = metrics.constraint_table(schema, factuals, cfs, spec)
    assert table["range"].tolist() == [False, False, True, False]
    assert table["category"].tolist() == [False, True, False, False]
    assert metrics.constraint_violations(schema, factuals, cfs, spec) == 2


def test_constraint_violations_from_the_schema_and_a_constraints_object(factuals, cfs):
    # schema: c immutable, x decrease-only: (4, a) raises x from 2; (1, c) changes c; (10, b) raises x
    # from 5; (8, a) both -> all 4. Constraints(immutable=[c]) alone: rows 2 and 4.
    schema = FeatureSchema(
        continuous=["x"], categorical={"c": ["a", "b", "c"]}, ranges={"x": (0.0, 10.0)},
        immutable=["c"], monotone={"x": "decrease"},
    )
    assert metrics.constraint_violations(schema, factuals, cfs, schema) == 4
    assert metrics.constraint_violations(schema, factuals, cfs, "schema") == 4
    assert metrics.constraint_violations(schema, factuals, cfs, Constraints(immutable=["c"])) == 2


def test_unknown_constraint_kind_is_an_error(schema, factuals, cfs):
    with pytest.raises(ValueError, match="unknown constraint kind"):
        metrics.constraint_violations(schema, factuals, cfs, {"frozen": ["c"]})


# ------------------------------------------------------------------ support violations


@pytest.fixture
def support_schema() -> FeatureSchema:
    # x has a point mass at 0 (states: 0 = at the mass, 1 = off it); a and b are categorical
    return FeatureSchema(
        continuous=["x"], categorical={"a": ["p", "q"], "b": ["u", "v"]}, ranges={"x": (0.0, 10.0)}, point_mass={"x": 0.0}
    )


@pytest.fixture
def support_train() -> pd.DataFrame:
    # pairs seen:  (a, b): (p, u) (p, v) (q, v)          -> (q, u) never
    #              (x, a): (at, p) (off, p) (at, q) (off, q) -> all four
    #              (x, b): (at, u) (off, v) (at, v)      -> (off, u) never
    return pd.DataFrame({"x": [0.0, 5.0, 0.0, 3.0], "a": ["p", "p", "q", "q"], "b": ["u", "v", "v", "v"]})


def test_support_violations_count_pairs_never_seen_together_in_training(support_schema, support_train):
    # cf1 (0, q, u): (a, b) = (q, u) never seen       -> violation
    # cf2 (7, p, u): (x, b) = (off, u) never seen     -> violation
    # cf3 (0, p, v): (p, v), (at, p), (at, v) all seen -> fine
    # cf4 (2, q, v): (q, v), (off, q), (off, v) seen   -> fine      => 2 of 4
    cfs = pd.DataFrame({"query": ["q1", "q1", "q2", "q2"], "x": [0.0, 7.0, 0.0, 2.0], "a": ["q", "p", "p", "q"],
                        "b": ["u", "u", "v", "v"]})
    assert metrics.support_violations(support_schema, None, cfs, support_train) == pytest.approx(0.5)
    assert metrics.support_violation_rows(support_schema, cfs, support_train).tolist() == [True, True, False, False]


def test_support_violations_use_the_point_mass_state_only_when_declared(support_train):
    # without the point mass, x is no state: only cf1's (q, u) is unseen -> 1 of 4
    plain = FeatureSchema(continuous=["x"], categorical={"a": ["p", "q"], "b": ["u", "v"]}, ranges={"x": (0.0, 10.0)})
    cfs = pd.DataFrame({"query": ["q1", "q1", "q2", "q2"], "x": [0.0, 7.0, 0.0, 2.0], "a": ["q", "p", "p", "q"],
                        "b": ["u", "u", "v", "v"]})
    assert metrics.support_violations(plain, None, cfs, support_train) == pytest.approx(0.25)


def test_support_violations_pair_ordinal_levels_with_categories():
    # ordinal o (low < mid < high) with categorical a: training holds (low, p), (mid, p), (high, q)
    # rows: (high, p) unseen, (mid, p) seen, (low, q) unseen -> 2 of 3; no rows -> NaN
    schema = FeatureSchema(categorical={"a": ["p", "q"]}, ordinal={"o": ["low", "mid", "high"]}, order=["o", "a"])
    train = pd.DataFrame({"o": ["low", "mid", "high"], "a": ["p", "p", "q"]})
    rows = pd.DataFrame({"query": [0, 1, 2], "o": ["high", "mid", "low"], "a": ["p", "p", "q"]})
    assert metrics.support_violations(schema, None, rows, train) == pytest.approx(2 / 3)
    assert math.isnan(metrics.support_violations(schema, None, rows.iloc[:0], train))


def test_registry_columns_are_the_metric_functions_aggregated(support_schema, support_train):
    # the study's table cell (registry: rows then aggregate) equals the plain metric function
    factuals = pd.DataFrame({"x": [0.0, 5.0], "a": ["p", "q"], "b": ["u", "v"]}, index=pd.Index(["q1", "q2"]))
    cfs = pd.DataFrame({"query": ["q1", "q1", "q2", "q2"], "x": [0.0, 7.0, 0.0, 2.0], "a": ["q", "p", "p", "q"],
                        "b": ["u", "u", "v", "v"]})
    model = threshold_model(5.0)
    e = metrics.Evaluation(
        schema=support_schema, factuals=factuals, counterfactuals=cfs, predict_proba=model,
        targets=pd.Series([1, 0], index=["q1", "q2"]), X_train=support_train, train_pred=np.array([0, 1, 0, 0]),
        retrained=[ThresholdModel(5.0)],
    )
    assert "features_changed" in metrics.METRICS and "support_violations" in metrics.METRICS
    assert metrics.METRICS["support_violations"].compute(e) == pytest.approx(0.5)
    assert metrics.METRICS["features_changed"].compute(e) == metrics.features_changed(support_schema, factuals, cfs)
    assert metrics.METRICS["validity"].compute(e) == metrics.validity(support_schema, factuals, cfs, model, e.targets)
    assert metrics.METRICS["constraint_violations"].compute(e) == metrics.constraint_violations(support_schema, factuals, cfs)
    assert metrics.METRICS["model_robustness"].compute(e) == metrics.model_robustness(
        support_schema, factuals, cfs, e.retrained, e.targets)

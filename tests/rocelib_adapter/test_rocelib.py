"""The RoCELib adapter against the real ``rocelib`` 0.2.3 (modern environment, ``pip install --no-deps rocelib==0.2.3``).

- this package's NNCE returns RoCELib's NNCE counterfactual row for row on the same data and model once RoCELib uses
  this package's distance, and every difference under RoCELib's default Euclidean distance is that distance's;
- this package's DRCE and RoCELib's DiverseRobustCE agree on the first counterfactual in their own distances and
  differ, as explained, in how they spread the others;
- LAPACE runs as a RoCELib ``RecourseGenerator`` inside RoCELib's own evaluators, beside RoCELib's methods.

No skip: the adapter's import fails, naming the install command, when rocelib is missing.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pandas as pd
import pytest
from rocelib.evaluations.DistanceEvaluator import DistanceEvaluator
from rocelib.evaluations.robustness_evaluations.IC_Robustness_Implementations.SetDistanceRobustnessEvaluator import (
    SetDistanceRobustnessEvaluator,
)
from rocelib.evaluations.ValidityEvaluator import ValidityEvaluator

from lapace_plugin import Lapace, datasets
from lapace_plugin.adapters import rocelib as adapter
from lapace_plugin.distance import embed
from lapace_plugin.evaluation import metrics
from lapace_plugin.evaluation.baselines import DRCE, NNCE
from lapace_plugin.evaluation.models import make_classifier, split


def _case(name: str, n_train: int, n_queries: int) -> Dict[str, Any]:
    ds = datasets.load(name)
    X_train, X_test, y_train, _ = split(ds, 0.2, 0)
    X_train, y_train = X_train.iloc[:n_train], y_train.iloc[:n_train]
    schema = ds.schema.with_data(X_train)
    model = make_classifier(schema, "rf", random_state=0).fit(X_train, y_train)
    queries = X_test[model.predict(X_test) == 0].iloc[:n_queries]
    task = adapter.make_task(schema, X_train, y_train, model.predict_proba)
    return dict(schema=schema, X=X_train, y=y_train, model=model, queries=queries, task=task)


@pytest.fixture(scope="module", params=["compas", "german"])
def case(request: pytest.FixtureRequest) -> Dict[str, Any]:
    return _case(request.param, 500, 5)


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    return (a.reset_index(drop=True).astype(object).to_numpy() == b.reset_index(drop=True).astype(object).to_numpy()).all(axis=1)


def test_encoding_round_trips_raw_rows_with_their_dtypes(case: Dict[str, Any]) -> None:
    encoding = case["task"].encoding
    back = encoding.decode(encoding.encode(case["X"]))
    assert _same_rows(back, case["X"]).all()
    assert (back.dtypes == case["X"].dtypes).all()
    assert case["task"].dataset.X.shape == (len(case["X"]), len(encoding.columns))


def test_nnce_matches_rocelib_nnce_row_for_row_with_this_packages_distance(case: Dict[str, Any]) -> None:
    queries, task = case["queries"], case["task"]
    ours = NNCE(schema=case["schema"]).fit(case["X"], case["model"].predict_proba).explain(queries, target_class=1)
    theirs = adapter.explain(adapter.generator("NNCE")(task), queries, [1] * len(queries), distance_func=task.encoding.distance)
    assert theirs.failures == {} and len(ours) == len(theirs.counterfactuals) == len(queries)
    assert _same_rows(ours, theirs.counterfactuals).all()


def test_with_rocelibs_euclidean_distance_every_difference_is_the_distances(case: Dict[str, Any]) -> None:
    # RoCELib's default: Euclidean in its encoded space, where a changed category counts sqrt(2) (two one-hot
    # columns differ) and numeric features count squared. Its row is the Euclidean nearest valid training row (and
    # KDTreeNNCE finds the same row); ours is the (1/d)-L1 nearest. Where they differ, each is nearest in its own.
    queries, task, schema = case["queries"], case["task"], case["schema"]
    theirs = adapter.explain(adapter.generator("NNCE")(task), queries, [1] * len(queries)).counterfactuals
    kdtree = adapter.explain(adapter.generator("KDTreeNNCE")(task), queries, [1] * len(queries)).counterfactuals
    ours = NNCE(schema=schema).fit(case["X"], case["model"].predict_proba).explain(queries, target_class=1)
    assert _same_rows(theirs, kdtree).all()
    valid = case["X"][case["model"].predict(case["X"]) == 1]
    points = embed(schema, valid)
    for i, (label, query) in enumerate(queries.iterrows()):
        euclid = np.sqrt(((points - embed(schema, queries.loc[[label]])) ** 2).sum(axis=1))
        l1 = metrics.feature_distances(schema, queries.loc[[label] * len(valid)], valid).mean(axis=1)
        mine, rocelibs = ours.iloc[[i]], theirs.iloc[[i]]
        assert np.sqrt(((embed(schema, rocelibs) - embed(schema, queries.loc[[label]])) ** 2).sum()) == pytest.approx(euclid.min())
        assert metrics.feature_distances(schema, queries.loc[[label]], mine).mean() == pytest.approx(l1.min())


def test_drce_and_diverse_robust_ce_share_the_nearest_and_differ_only_in_spreading(case: Dict[str, Any]) -> None:
    # Both start from the nearest valid row d* away and keep candidates within (1 + alpha) d*. This package's DRCE
    # keeps a candidate at least (1 + beta) d* from every kept one (SPEC section 4); RoCELib's keeps one at least
    # (1 + beta) d* from the QUERY (and measures everything in Euclidean distance).
    queries, task, schema = case["queries"], case["task"], case["schema"]
    theirs = adapter.explain(adapter.generator("DiverseRobustCE")(task), queries, [1] * len(queries), n_ces=3).counterfactuals
    nearest = adapter.explain(adapter.generator("KDTreeNNCE")(task), queries, [1] * len(queries)).counterfactuals
    ours = DRCE(schema=schema).fit(case["X"], case["model"].predict_proba).explain(queries, target_class=1, n_counterfactuals=3)
    our_nnce = NNCE(schema=schema).fit(case["X"], case["model"].predict_proba).explain(queries, target_class=1)
    for label in queries.index:
        mine, rocelibs = ours.xs(label, level="query"), theirs.xs(label, level="query")
        assert _same_rows(rocelibs.iloc[[0]], nearest.xs(label, level="query")).all()
        assert _same_rows(mine.iloc[[0]], our_nnce.xs(label, level="query")).all()
        q = embed(schema, queries.loc[[label]])
        d = np.sqrt(((embed(schema, rocelibs) - q) ** 2).sum(axis=1))
        assert (d[1:] >= 1.25 * d[0] - 1e-9).all() and (d <= 1.5 * d[0] + 1e-9).all()
        gaps = metrics.feature_distances(schema, mine.iloc[[0] * len(mine)], mine).mean(axis=1)
        d_star = metrics.feature_distances(schema, queries.loc[[label]], mine.iloc[[0]]).mean()
        assert (gaps[1:] >= 1.25 * d_star - 1e-9).all()


@pytest.fixture(scope="module")
def lapace_task() -> Dict[str, Any]:
    # labels are the classifier's predictions, so RoCELib's "negative instances" are the refused individuals
    c = _case("compas", 600, 0)
    predicted = c["model"].predict(c["X"])
    c["task"] = adapter.make_task(c["schema"], c["X"], predicted, c["model"].predict_proba)
    c["explainer"] = Lapace(schema=c["schema"], components_per_class=3, epochs=10, random_state=0, verbose=False).fit(
        c["X"], c["model"].predict_proba, classes=list(c["model"].classes_))
    task = c["task"]
    task.methods["LAPACE"] = adapter.lapace_generator(c["explainer"], task.encoding, strategy="last")
    negatives = task.dataset.get_negative_instances().iloc[:12]
    for name in ("LAPACE", "KDTreeNNCE"):
        ces = task.methods[name](task).generate(negatives, neg_value=0, column_name="target")
        task._CEs[name] = [ces, 0.0]
    c["negatives"] = negatives
    return c


def test_lapace_runs_in_rocelibs_own_evaluators_beside_its_methods(lapace_task: Dict[str, Any]) -> None:
    task, negatives = lapace_task["task"], lapace_task["negatives"]
    ces = task._CEs["LAPACE"][0]
    assert len(ces) == len(negatives) and list(ces.columns) == task.encoding.columns
    validity = ValidityEvaluator(task).evaluate("LAPACE", valid_val=1)
    raw = task.encoding.decode(ces).assign(query=range(len(ces)))
    assert validity == pytest.approx(metrics.validity(lapace_task["schema"], None, raw, lapace_task["model"], 1))
    assert validity == 1.0  # lapace-last: decoded centroids of valid components
    assert ValidityEvaluator(task).evaluate("KDTreeNNCE", valid_val=1) == 1.0
    distance = DistanceEvaluator(task).evaluate("LAPACE", subset=negatives)
    expected = np.sqrt(((ces.to_numpy() - negatives.to_numpy()) ** 2).sum(axis=1)).mean()
    assert distance == pytest.approx(expected)


def test_lapace_last_is_input_robust_in_rocelibs_set_distance_evaluator(lapace_task: Dict[str, Any]) -> None:
    # RoCELib adds N(0, 0.1^2) to every encoded column and compares the one counterfactual before and after. LAPACE-last
    # returns the nearest of its class-1 decoded centroids for any input, so the set distance is the distance between
    # two centroids (0 when the same one is nearest), except where the perturbed query is already predicted as the
    # target (LAPACE then returns the query itself, RoCELib's "no counterfactual").
    task, negatives, explainer = lapace_task["task"], lapace_task["negatives"], lapace_task["explainer"]
    centroids = explainer.centroids_[(explainer.centroid_class_ == 1) & explainer.centroid_valid_]
    encoded = task.encoding.encode(centroids.reset_index(drop=True)).to_numpy()
    evaluator = SetDistanceRobustnessEvaluator(task)
    ces = task._CEs["LAPACE"][0]
    zeros = 0
    for i, (_, instance) in enumerate(negatives.iterrows()):
        np.random.seed(i)
        distance = evaluator.evaluate_single_instance(instance, ces.iloc[i], "LAPACE")
        np.random.seed(i)
        perturbed = instance + np.random.normal(0, 0.1, instance.shape)
        if task.model.predict_single(perturbed) == 1:
            assert distance > 0
            continue
        between = np.sqrt(((encoded - ces.iloc[i].to_numpy(dtype=float)) ** 2).sum(axis=1))
        assert np.isclose(between, distance).any(), (distance, between)
        zeros += distance == 0.0
    assert zeros >= len(negatives) // 2

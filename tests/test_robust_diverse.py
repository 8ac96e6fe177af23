"""strategy="robust" and diverse=True on real bundled data with a real classifier (adult, a small sample)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from lapace_plugin.batch import CHECKS
from lapace_plugin.distance import mean_l1
from lapace_plugin.evaluation import metrics
from lapace_plugin.options import asks_no_more
from lapace_plugin.selection import SAME_OPTION

from fitted import fitted, unfavourable


def test_robust_returns_each_paths_first_point_with_the_probability_floor():
    f = fitted("adult")
    queries = unfavourable(f, 20)
    res = f.explainer.explain(queries, strategy="robust", min_probability=0.7, distinct=False)  # first points as they come
    chosen = res.counterfactuals_with_paths()
    assert len(chosen) > 0 and (chosen["probability"] >= 0.7).all()
    assert (f.model.predict_proba(res.counterfactuals)[:, 1] >= 0.7).all()
    paths = res.paths  # the proximity/robustness curve: every point with its distance and target probability
    assert {"tau", "distance", "probability", "valid"} <= set(paths.columns)
    assert (paths.loc[paths["valid"], "probability"] >= 0.7).all()
    for _, row in chosen.iterrows():
        same = paths[(paths["query"] == row["query"]) & (paths["component"] == row["component"])]
        assert same.loc[same["valid"], "tau"].min() == row["tau"]  # no earlier point of its path reaches 0.7
    first = f.explainer.explain(queries, strategy="first", distinct=False).counterfactuals_with_paths()
    both = first.merge(chosen, on=["query", "component"], suffixes=("_first", "_robust"))
    assert len(both) and (both["tau_robust"] >= both["tau_first"]).all()
    assert (both["probability_robust"] > both["probability_first"]).mean() > 0.5


def test_a_failed_query_says_which_check_each_point_of_its_paths_failed():
    f = fitted("adult")
    queries = unfavourable(f, 30)
    res = f.explainer.explain(queries, strategy="robust", min_probability=0.9)
    assert res.failures  # a floor this high leaves some people without an option
    paths = res.paths
    for label, reason in res.failures.items():
        found = re.search(r"of the (\d+) points of its (\d+) paths: (.*); the highest probability of class 1 among them "
                          r"is ([0-9.]+)$", reason)
        assert found, reason
        n_points, n_paths = int(found.group(1)), int(found.group(2))
        counts = {check: int(c) for c, check in re.findall(r"(\d+) ([a-z_ ]+?)(?:,|$)", found.group(3))}
        assert set(counts) <= set(CHECKS) and sum(counts.values()) == n_points and n_points % n_paths == 0
        highest = float(found.group(4))
        mine = paths[paths["query"] == label]
        assert highest <= mine["probability"].max() + 0.005 and not mine["valid"].any()
        if set(counts) <= {"assigned to another class", "under min_probability"}:
            assert highest <= 0.9  # nothing else stopped its points: none reached the floor (shown to 3 decimals)
    plain = f.explainer.explain(queries.iloc[:5], strategy="last", min_probability=0.9).failures
    assert all("of the" not in reason for reason in plain.values())  # a centroid is no path: the short reason stays


def test_reverting_a_robust_counterfactual_keeps_its_floor():
    f = fitted("adult")
    queries = unfavourable(f, 20)
    res = f.explainer.explain(queries, strategy="robust", min_probability=0.65, revert=True)
    chosen = res.counterfactuals_with_paths()
    assert (chosen["reverted"] > 0).any()
    assert (f.model.predict_proba(res.counterfactuals)[:, 1] >= 0.65).all()


def test_diverse_options_differ_in_which_features_they_change():
    f = fitted("adult")
    queries = unfavourable(f, 30)
    schema = f.ds.schema
    reverted = f.explainer.explain(queries, revert=True)
    diverse = f.explainer.explain(queries, diverse=True)
    per_person = len(diverse.counterfactuals) / len(queries)
    assert per_person >= 3.0 and per_person > len(reverted.counterfactuals) / len(queries)
    targets = pd.Series(diverse.target_class, index=queries.index)
    assert metrics.validity(schema, queries, diverse.counterfactuals, f.model.predict_proba, targets) == 1.0
    assert metrics.option_diversity(schema, queries, diverse.counterfactuals) > 0.5
    assert (diverse.counterfactuals_with_paths()["reverted"] > 0).any()
    changed = metrics.changed(schema, queries, diverse.counterfactuals)
    labels = diverse.counterfactuals.index.get_level_values("query")
    distinct_sets = [len({tuple(r) for r in changed[labels == q]}) / float((labels == q).sum()) for q in np.unique(labels)]
    assert np.mean(distinct_sets) > 0.8  # most options of a person change a set of features no other option changes


def test_diverse_never_spends_a_path_on_an_option_it_already_offers():
    # selection counts two options closer than SAME_OPTION as one; diverse chooses another candidate instead
    f = fitted("adult")
    queries = unfavourable(f, 30)
    res = f.explainer.explain(queries, strategy="robust", diverse=True, constraints="schema")
    assert not [r for r in res.shortfalls.values() if "ended on an option another path gave" in r], res.shortfalls
    notes = res.to_frame()["note"].fillna("")
    assert not notes.str.startswith("same option").any()
    cfs, encoder = res.counterfactuals, f.explainer.state_.encoder
    for label in np.unique(cfs.index.get_level_values("query")):
        parts = encoder.parts(encoder.encode(cfs.loc[label]))
        gaps = mean_l1((parts[0][:, None], parts[1][:, None]), (parts[0][None], parts[1][None]))
        assert (gaps[~np.eye(len(gaps), dtype=bool)] >= SAME_OPTION).all(), label


def test_option_diversity_is_the_mean_pairwise_jaccard_distance_of_changed_features():
    f = fitted("adult")
    q = f.X_test.iloc[:1]
    a, b, c = q.copy(), q.copy(), q.copy()
    a["hours_per_week"] += 10
    b["hours_per_week"] += 5
    b["capital_gain"] += 5000
    c["capital_gain"] += 3000
    cfs = pd.concat([a, b, c])
    cfs.index = pd.MultiIndex.from_arrays([[q.index[0]] * 3, [0, 1, 2]], names=["query", "rank"])
    # {h} vs {h, g}: 1/2; {h} vs {g}: 1; {h, g} vs {g}: 1/2
    assert abs(metrics.option_diversity(f.ds.schema, q, cfs) - 2.0 / 3.0) < 1e-9


def _asks_no_more(option: pd.Series, other: pd.Series, query: pd.Series, schema) -> bool:
    """Raw-row reading of lapace_plugin.options.asks_no_more: every change of ``option`` is one of ``other``'s, in the
    same direction and no larger (numbers) or to the same category."""
    for name in schema.features:
        if option[name] == query[name]:
            continue
        if isinstance(option[name], str) or not np.isscalar(option[name]) or isinstance(query[name], str):
            if option[name] != other[name]:
                return False
        else:
            mine, theirs = float(option[name]) - float(query[name]), float(other[name]) - float(query[name])
            if np.sign(mine) != np.sign(theirs) or abs(mine) > abs(theirs):
                return False
    return True


def test_no_diverse_option_asks_more_of_the_person_than_another_of_their_options():
    f = fitted("adult")
    queries = unfavourable(f, 30)
    res = f.explainer.explain(queries, strategy="robust", diverse=True)
    cfs, schema = res.counterfactuals, f.ds.schema
    assert len(cfs) >= 2 * len(queries)
    for label in queries.index:
        if label not in cfs.index.get_level_values("query"):
            continue
        mine = cfs.loc[label]
        for i in range(len(mine)):
            for j in range(len(mine)):
                if i != j:
                    assert not _asks_no_more(mine.iloc[i], mine.iloc[j], queries.loc[label], schema), (label, i, j)


def test_asks_no_more_compares_directions_sizes_and_categories():
    query = (np.array([[0.0, 0.4]]), np.array([[2]]))  # scaled capital gain, hours; an occupation code
    small_gain = (np.array([[0.08, 0.4]]), np.array([[2]]))
    large_gain = (np.array([[0.25, 0.4]]), np.array([[2]]))
    gain_and_job = (np.array([[0.05, 0.4]]), np.array([[5]]))
    fewer_hours = (np.array([[0.25, 0.3]]), np.array([[2]]))
    assert asks_no_more(small_gain, large_gain, query).all() and not asks_no_more(large_gain, small_gain, query).any()
    assert not asks_no_more(small_gain, gain_and_job, query).any()  # a smaller gain with a new job: a real choice
    assert not asks_no_more(gain_and_job, small_gain, query).any()
    assert asks_no_more(large_gain, fewer_hours, query).all() and not asks_no_more(fewer_hours, large_gain, query).any()
    assert asks_no_more(query, small_gain, query).all()  # no change asks nothing


def test_max_per_feature_caps_the_options_of_a_person_that_change_one_feature_and_says_so():
    f = fitted("adult")
    queries = unfavourable(f, 30)
    schema = f.ds.schema
    free = f.explainer.explain(queries, diverse=True)
    capped = f.explainer.explain(queries, diverse=True, max_per_feature=1)
    labels = capped.counterfactuals.index.get_level_values("query")
    changed = metrics.changed(schema, queries, capped.counterfactuals)
    for q in np.unique(labels):
        assert changed[labels == q].sum(0).max() <= 1  # no feature in two options of one person
    free_changed = metrics.changed(schema, queries, free.counterfactuals)
    free_labels = free.counterfactuals.index.get_level_values("query")
    assert max(free_changed[free_labels == q].sum(0).max() for q in np.unique(free_labels)) >= 2
    assert len(capped.counterfactuals) < len(free.counterfactuals)
    told = [reason for reason in capped.shortfalls.values() if "max_per_feature=1" in reason]
    assert told and all("already change" in reason for reason in told)
    assert set(capped.failures) == set(free.failures)  # the cap never leaves a person without an option

"""Corrected and sparse paths, and the fast search along a path, on real bundled data with real classifiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lapace_plugin import Lapace
from lapace_plugin.apps.bench import CountingClassifier
from lapace_plugin.search import first_valid_fast

from fitted import ADULT_CONSTRAINTS, feasible, fitted, unfavourable

OPTIONS = [(path, search) for path in ("latent", "corrected", "sparse", "neighbour") for search in ("grid", "fast")]


@pytest.mark.parametrize("name", ["adult", "german", "wine"])
@pytest.mark.parametrize("path", ["corrected", "sparse"])
def test_corrected_path_starts_at_the_input_and_ends_at_the_decoded_centroid(name, path):
    f = fitted(name)
    ex = f.explainer
    queries = f.X_test.iloc[:15]
    target = (f.model.predict_proba(queries).argmax(1) + 1) % ex.n_classes_
    paths = ex.explain(queries, target_class=target, path=path).paths
    features = list(ex.schema_.features)
    start = paths[paths["step"] == 0]
    expected = queries.loc[start["query"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(start[features].reset_index(drop=True), expected, check_dtype=False)
    end = paths[paths["step"] == ex.n_steps]
    centroids = ex.centroids_.loc[end["component"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(end[features].reset_index(drop=True), centroids, check_dtype=False)


def test_the_papers_latent_path_starts_at_the_reconstruction_not_the_input(adult):
    queries = unfavourable(adult, 20)
    start = adult.explainer.explain(queries, path="latent").paths.query("step == 0")
    features = list(adult.ds.schema.features)
    same = start[features].reset_index(drop=True) == queries.loc[start["query"], features].reset_index(drop=True)
    assert not same.all(axis=1).all()  # decoding z_x already moves the input: what corrected paths fix


@pytest.mark.parametrize("name", ["adult", "compas", "german"])
def test_corrected_paths_are_closer_to_the_input_than_the_papers(name):
    f = fitted(name)
    queries = unfavourable(f, 40)
    ex = f.explainer
    distance = {}
    for path in ("latent", "corrected"):
        frame = ex.explain(queries, path=path).to_frame()
        chosen = frame[frame["rank"] >= 0]
        encoded = ex.encoder_.encode(chosen[ex.schema_.features])
        factual = ex.encoder_.encode(queries.loc[chosen["query"]])
        distance[path] = np.abs(encoded - factual).sum(1).mean()
    assert distance["corrected"] < 0.9 * distance["latent"], distance


@pytest.mark.parametrize("path,search", OPTIONS)
@pytest.mark.parametrize("constraints", [None, ADULT_CONSTRAINTS], ids=["free", "constrained"])
def test_every_option_returns_valid_counterfactuals_within_the_constraints(adult, path, search, constraints):
    queries = unfavourable(adult, 40)
    queries = queries[queries["hours_per_week"].between(30, 50)]
    res = adult.explainer.explain(queries, path=path, search=search, constraints=constraints)
    cf = res.counterfactuals
    assert (adult.model.predict(cf) == 1).all()
    if constraints is None:
        assert res.coverage == 1.0
        return
    factuals = res.queries.loc[cf.index.get_level_values("query")]
    assert not constraints.violations(factuals, cf).to_numpy().any()
    # about half of these queries have no high-income training row that meets the constraints (an immutable
    # "Never-married", say): coverage counts among the queries that do
    possible = feasible(adult, queries, constraints)
    explained = possible[list(set(cf.index.get_level_values("query")))].sum() / possible.sum()
    assert explained >= (1.0 if path == "neighbour" else 0.75), explained


@pytest.mark.parametrize("name", ["adult", "compas", "german"])
@pytest.mark.parametrize("path", ["latent", "corrected"])
def test_fast_search_returns_the_grid_point_on_every_monotone_path(name, path):
    f = fitted(name)
    ex = f.explainer
    queries = unfavourable(f, 30)
    grid = ex.explain(queries, path=path, search="grid", distinct=False)
    fast = ex.explain(queries, path=path, search="fast", distinct=False).to_frame().set_index(["query", "component"])
    steps = grid.paths.pivot_table(index=["query", "component"], columns="step", values="valid", aggfunc="first")
    valid = steps.to_numpy(dtype=bool)
    monotone = (np.diff(valid.astype(int), axis=1) >= 0).all(axis=1)  # invalid ... invalid, valid ... valid
    assert monotone.mean() > 0.5
    keys = steps.index[monotone]
    expected = grid.to_frame().set_index(["query", "component"]).loc[keys]
    got = fast.loc[keys]
    np.testing.assert_array_equal(got["tau"].fillna(-1), expected["tau"].fillna(-1))
    pd.testing.assert_frame_equal(got[ex.schema_.features], expected[ex.schema_.features])


def test_fast_search_classifies_far_fewer_rows(adult):
    ex = adult.explainer
    queries = unfavourable(adult, 40)
    counter = CountingClassifier(ex.predict_proba_)
    rows = {}
    ex.predict_proba_ = counter
    try:
        for search in ("grid", "fast"):
            counter.rows = 0
            ex.explain(queries, path="corrected", search=search)
            rows[search] = counter.rows
    finally:
        ex.predict_proba_ = counter.predict_proba
    assert rows["grid"] == len(queries) * (1 + ex.components_per_class * (ex.n_steps + 1))
    assert rows["fast"] * 3 <= rows["grid"], rows


def test_fast_search_matches_exhaustive_search_on_monotone_validity():
    rng = np.random.default_rng(0)
    for n_points in (2, 3, 8, 21, 101):
        for start in (0, 1):
            first = rng.integers(start, n_points + 1, 300)  # n_points: no valid point
            valid = np.arange(n_points)[None, :] >= first[:, None]
            calls = []

            def evaluate(paths, steps):
                assert (steps >= start).all()
                calls.append(len(paths))
                return valid[paths, steps]

            found = first_valid_fast(evaluate, len(first), n_points, start=start)
            np.testing.assert_array_equal(found, np.where(first < n_points, first, -1))
            known = first < n_points
            again = first_valid_fast(lambda p, s: valid[p, s], len(first), n_points, start=start, end_valid=known)
            np.testing.assert_array_equal(again, found)
            if n_points >= 21:
                assert sum(calls) * 3 <= len(first) * (n_points - start)


def test_fast_search_result_is_valid_and_not_beyond_the_first_valid_coarse_point_on_any_path():
    rng = np.random.default_rng(1)
    valid = rng.random((500, 21)) < 0.3
    found = first_valid_fast(lambda p, s: valid[p, s], 500, 21, stride=5)
    has = found >= 0
    assert valid[np.flatnonzero(has), found[has]].all()
    coarse = valid[:, [4, 9, 14, 19, 20]]
    first_coarse = np.where(coarse.any(1), np.array([4, 9, 14, 19, 20])[coarse.argmax(1)], -1)
    assert (found[first_coarse >= 0] <= first_coarse[first_coarse >= 0]).all()
    assert (found[first_coarse >= 0] >= 0).all()


def test_sparse_snapping_keeps_the_factuals_values_within_margin_and_tolerance(adult):
    enc = adult.explainer.encoder_
    x = enc.encode(adult.X_test.iloc[:2])
    moved = x.copy()
    moved[:, 0] += np.array([0.01, 0.2], dtype=np.float32)  # age: a negligible and a real change
    for _, sl in enc.groups[:1]:
        own = x[:, sl].argmax(1)
        other = (own + 1) % (sl.stop - sl.start)
        moved[:, sl] = 0.0
        moved[np.arange(2), sl.start + own] = 0.45
        moved[np.arange(2), sl.start + other] = np.array([0.55, 0.55], dtype=np.float32)
    margin = np.array([0.2, 0.05])
    out = enc.snap_near(moved, x, margin, np.array([0.02, 0.02]))
    assert out[0, 0] == x[0, 0] and out[1, 0] != x[1, 0]
    sl = enc.groups[0][1]
    np.testing.assert_array_equal(out[0, sl], x[0, sl])  # 0.55 does not beat 0.45 by more than 0.2
    assert out[1, sl].argmax() != x[1, sl].argmax()  # ... but does by more than 0.05
    plain = enc.snap_near(moved, x, np.zeros(2), np.zeros(2))
    np.testing.assert_array_equal(plain, enc.snap(moved))


def test_sparse_paths_change_fewer_features_than_corrected_ones(adult):
    ex = adult.explainer
    queries = unfavourable(adult, 40)
    changed = {}
    for path in ("corrected", "sparse"):
        cf = ex.explain(queries, path=path).counterfactuals
        factual = queries.loc[cf.index.get_level_values("query")].reset_index(drop=True)
        changed[path] = (cf.reset_index(drop=True) != factual).sum(1).mean()
    assert changed["sparse"] < changed["corrected"], changed


@pytest.mark.parametrize("option,value,message", [
    ("path", "straight", "path must be one of 'latent', 'corrected', 'sparse'"),
    ("search", "binary", "search must be one of 'grid', 'fast'"),
])
def test_unknown_path_or_search_is_named(compas, option, value, message):
    with pytest.raises(ValueError, match=message):
        compas.explainer.explain(unfavourable(compas, 2), **{option: value})
    with pytest.raises(ValueError, match=message):
        Lapace(**{option: value}).fit(compas.X_train.iloc[:50], compas.model.predict_proba)


def test_sparse_margin_out_of_range_is_named(compas):
    with pytest.raises(ValueError, match="sparse_margin must be in"):
        Lapace(sparse_margin=1.5).fit(compas.X_train.iloc[:50], compas.model.predict_proba)

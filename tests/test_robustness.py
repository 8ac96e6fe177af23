"""Reliability: no silently wrong counterfactual, a clear error for every bad input, safe and atomic persistence.

Each class of input named in the reliability issue has a test here; the property-based tests at the end draw random
schemas, values, index labels, column names and constraints: every call either returns counterfactuals that are
valid and within the constraints, or raises a ValueError / TypeError whose message names the offending column or
argument.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lapace_plugin import Constraints, FeatureSchema, InvalidParameterError, Lapace
from lapace_plugin.persistence import LoadError

from fitted import fitted, unfavourable

SMALL = dict(components_per_class=2, latent_dim=4, hidden=(16, 16), epochs=4, n_steps=6, verbose=False)


@pytest.fixture(scope="module")
def german():
    return fitted("german")


# ------------------------------------------------------------------ silently wrong results, now correct or an error


def test_a_range_the_training_data_never_reached_is_an_error(german):
    queries = unfavourable(german, 5)
    with pytest.raises(ValueError, match=r"range \(20000.0, 30000.0\) for 'credit_amount' lies outside the values"):
        german.explainer.explain(queries, constraints={"ranges": {"credit_amount": (20000, 30000)}})
    hi = german.ds.schema.ranges["credit_amount"][1]
    res = german.explainer.explain(queries, constraints={"ranges": {"credit_amount": (hi - 3000, 30000)}})
    assert len(res.counterfactuals) and res.counterfactuals["credit_amount"].between(hi - 3000, 30000).all()


def test_loading_with_a_stricter_classifier_never_trusts_the_saved_validity(german, tmp_path):
    german.explainer.save(str(tmp_path / "saved"))

    def strict(X):  # class 1 only above 0.8
        p = german.model.predict_proba(X)[:, 1]
        p = np.where(p > 0.8, p, np.minimum(p, 0.49))
        return np.column_stack([1 - p, p])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "centroid(s) ... are not assigned to their class ..."
        loaded = Lapace.load(str(tmp_path / "saved"), predict_proba=strict)
    queries = unfavourable(german, 30)
    queries = queries[strict(queries).argmax(1) == 0]
    for settings_ in (dict(strategy="last"), dict(search="fast"), dict(strategy="last", constraints="schema")):
        cf = loaded.explain(queries, target_class=1, **settings_).counterfactuals
        assert (strict(cf).argmax(1) == 1).all(), settings_
    assert (strict(loaded.centroids_).argmax(1) == loaded.centroid_class_)[loaded.centroid_valid_].all()


def test_nan_probabilities_never_count_as_a_class(compas):
    def holes(X):  # the classifier cannot score rows with more than 5 priors
        p = compas.model.predict_proba(X)
        p[X["priors_count"].to_numpy() > 5] = np.nan
        return p

    ex = Lapace.load(_saved(compas), predict_proba=holes)
    queries = unfavourable(compas, 40)
    queries = queries[queries["priors_count"] <= 5]
    frame = ex.explain(queries).to_frame()
    chosen = frame[frame["valid"]]
    assert len(chosen) and np.isfinite(chosen["probability"]).all()
    assert (chosen["priors_count"] <= 5).all()
    with pytest.raises(ValueError, match="NaN or infinite probabilities for 1 row"):
        ex.explain(unfavourable(compas, 60).pipe(lambda q: q[q["priors_count"] > 5].iloc[:1]))


def _saved(f, folder=None):
    folder = folder or os.path.join(os.environ.get("PYTEST_TMP", "/tmp"), "lapace-robustness-%s-%d" % (f.ds.name, os.getpid()))
    if not os.path.exists(folder):
        f.explainer.save(folder)
    return folder


def test_non_finite_training_values_are_rejected(compas):
    X = compas.X_train.iloc[:200].copy()
    X["age"] = X["age"].astype(float)
    X.iloc[3, X.columns.get_loc("age")] = np.inf
    with pytest.raises(ValueError, match="'age' has infinite value"):
        Lapace(schema=compas.ds.schema, **SMALL).fit(X, compas.model.predict_proba)
    with pytest.raises(ValueError, match="contain NaN|infinite"):
        FeatureSchema.infer(X.assign(age=np.nan))


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e300])
def test_non_finite_or_absurd_query_values_are_rejected(german, value):
    q = unfavourable(german, 3).copy()
    q["credit_amount"] = q["credit_amount"].astype(float)
    q.iloc[1, q.columns.get_loc("credit_amount")] = value
    with pytest.raises(ValueError, match="'credit_amount'"):
        german.explainer.explain(q, revert=True)


def test_duplicate_or_multi_index_query_labels_are_rejected(german):
    q = unfavourable(german, 4)
    with pytest.raises(ValueError, match=r"repeats label\(s\) \[7\]"):
        german.explainer.explain(q.set_axis([7, 7, 8, 9]))
    with pytest.raises(ValueError, match="MultiIndex"):
        german.explainer.explain(q.set_axis(pd.MultiIndex.from_tuples([(0, 1), (0, 2), (1, 1), (1, 2)])))


# ------------------------------------------------------------------ inputs that crashed: now work or fail clearly


@pytest.mark.parametrize("bound", [None, np.inf])
def test_open_range_ends_on_integer_features_work(german, bound):
    res = german.explainer.explain(unfavourable(german, 8), constraints={"ranges": {"credit_amount": (1000, bound)}})
    assert len(res.counterfactuals) and (res.counterfactuals["credit_amount"] >= 1000).all()


def test_a_nan_range_bound_is_named(german):
    with pytest.raises(ValueError, match="range for 'credit_amount' has a NaN bound; use None"):
        german.explainer.explain(unfavourable(german, 2), constraints={"ranges": {"credit_amount": (1000, np.nan)}})


def test_boolean_columns_work(compas):
    X = compas.X_train.iloc[:600].assign(felony=lambda d: d["c_charge_degree"] == "F").drop(columns="c_charge_degree")

    def proba(frame):
        p = 1 / (1 + np.exp(-(40 - frame["age"].to_numpy(float)) / 5 - 0.5 * frame["felony"].to_numpy(float)))
        return np.column_stack([p, 1 - p])

    ex = Lapace(**SMALL).fit(X, proba)
    assert "felony" in ex.schema_.categorical
    queries = X[proba(X).argmax(1) == 0].iloc[:5]
    cf = ex.explain(queries).counterfactuals
    assert len(cf) and cf["felony"].dtype == bool


def test_features_named_like_result_columns_are_refused_clearly(compas):
    X = compas.X_train.iloc[:100].rename(columns={"age": "rank"})
    with pytest.raises(ValueError, match=r"feature name\(s\) \['rank'\] are taken by LAPACE's result columns"):
        Lapace(**SMALL).fit(X, lambda frame: compas.model.predict_proba(frame.rename(columns={"rank": "age"})))


def test_predict_proba_returning_a_dataframe_works(compas):
    def frame_proba(X):
        return pd.DataFrame(compas.model.predict_proba(X), columns=["no", "yes"])

    ex = Lapace(schema=compas.ds.schema, components_per_class=2, epochs=5, verbose=False).fit(compas.X_train, frame_proba)
    assert len(ex.explain(unfavourable(compas, 5)).counterfactuals)


def test_integer_column_names_survive_save_and_load(compas, tmp_path):
    X = compas.X_train.iloc[:400].copy()
    X.columns = list(range(X.shape[1]))

    def proba(frame):
        renamed = frame.copy()
        renamed.columns = compas.X_train.columns
        return compas.model.predict_proba(renamed)

    ex = Lapace(**SMALL).fit(X, proba)
    ex.save(str(tmp_path / "ints"))
    loaded = Lapace.load(str(tmp_path / "ints"), predict_proba=proba)
    assert loaded.schema_ == ex.schema_
    queries = X[proba(X).argmax(1) == 0].iloc[:4]
    pd.testing.assert_frame_equal(loaded.explain(queries).to_frame(), ex.explain(queries).to_frame())


def test_duplicate_column_names_are_named(compas):
    q = unfavourable(compas, 2)
    doubled = pd.concat([q, q[["age"]]], axis=1)
    with pytest.raises(ValueError, match=r"duplicate column\(s\) \['age'\]"):
        compas.explainer.explain(doubled)
    with pytest.raises(ValueError, match=r"duplicate column\(s\) \['age'\]"):  # fitting without a schema infers one first
        Lapace(epochs=1, verbose=False).fit(pd.concat([compas.X_train, compas.X_train[["age"]]], axis=1), compas.model.predict_proba)


@pytest.mark.parametrize("name,value,kind", [
    ("n_steps", 0, ValueError), ("batch_size", 0, ValueError), ("components_per_class", 2.5, TypeError),
    ("latent_dim", 0, ValueError), ("hidden", (0, 8), ValueError), ("learning_rate", float("nan"), ValueError),
    ("path", "straight", ValueError), ("random_state", -1, ValueError), ("epochs", True, TypeError),
])
def test_bad_parameters_are_refused_at_construction(name, value, kind):
    with pytest.raises(kind, match=name):
        Lapace(**{name: value})


@pytest.mark.parametrize("value", [2.7, "3", True])
def test_n_counterfactuals_is_not_converted_silently(compas, value):
    with pytest.raises(InvalidParameterError, match="n_counterfactuals"):
        compas.explainer.explain(unfavourable(compas, 2), n_counterfactuals=value)


def test_a_mixed_dtype_series_is_one_query(compas):
    row = unfavourable(compas, 1).iloc[0]
    assert row.dtype == object
    res = compas.explainer.explain(row)
    assert res.n_queries == 1 and len(res.counterfactuals) > 0


def test_a_target_class_series_aligns_on_the_queries_index(wine):
    queries = wine.X_test.iloc[:6]
    targets = pd.Series((wine.model.predict(queries) + 1) % 3, index=queries.index)
    shuffled = targets.iloc[::-1]
    a = wine.explainer.explain(queries, target_class=targets)
    b = wine.explainer.explain(queries, target_class=shuffled)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    with pytest.raises(ValueError, match="no entry for query label"):
        wine.explainer.explain(queries, target_class=targets.iloc[1:])


# ------------------------------------------------------------------ persistence


def test_a_failed_save_leaves_the_explainer_already_there(compas, tmp_path):
    folder = str(tmp_path / "explainer")
    compas.explainer.save(folder)
    X = compas.X_train.iloc[:300].assign(age=lambda d: pd.cut(d["age"], 4))  # Interval categories: not JSON
    bad = Lapace(schema=FeatureSchema.infer(X, categorical=["sex", "race", "c_charge_degree", "age"]), **SMALL)
    bad.fit(X, lambda frame: np.tile([0.4, 0.6], (len(frame), 1)) if len(frame) % 2 else np.tile([0.6, 0.4], (len(frame), 1)))
    with pytest.raises(ValueError, match="cannot save: the explainer's (categorical|ordinal) hold a value JSON cannot store"):
        bad.save(folder)
    loaded = Lapace.load(folder, predict_proba=compas.model.predict_proba)
    assert loaded.schema_ == compas.explainer.schema_
    assert sorted(os.listdir(str(tmp_path))) == ["explainer"]  # no temporary folder left behind


def test_saving_refuses_to_clobber_a_folder_with_other_files(compas, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds other files"):
        compas.explainer.save(str(tmp_path))


def _tamper(folder, **arrays):
    path = os.path.join(folder, "weights.npz")
    with np.load(path) as data:
        content = {k: data[k] for k in data.files}
    for name, value in arrays.items():
        if value is None:
            content.pop(name)
        else:
            content[name] = value
    np.savez(path, **content)


@pytest.mark.parametrize("change,message", [
    (lambda d: _tamper(d, extra=np.zeros(3)), r"weights.npz: unexpected array\(s\) \['extra'\]"),
    (lambda d: _tamper(d, centroid_proba=np.zeros((3, 2))), "weights.npz: array 'centroid_proba' has shape"),
    (lambda d: _tamper(d, centroid_points=np.full(_shape(d, "centroid_points"), np.nan, np.float32)),
     "'centroid_points' must hold finite floats"),
    (lambda d: _tamper(d, centroid_valid=None), r"missing array\(s\) \['centroid_valid'\]"),
    (lambda d: open(os.path.join(d, "weights.npz"), "wb").write(b"garbage"), "weights.npz: not a NumPy .npz archive"),
    (lambda d: _edit_json(d, format=99), "lapace.json: unknown format 99"),
    (lambda d: _edit_json(d, params=dict(_json(d)["params"], hidden=[15000, 15000])), "lapace.json: hidden width"),
    (lambda d: _edit_json(d, params=dict(_json(d)["params"], latent_dim=4000, hidden=[4000, 4000, 4000])),
     "lapace.json: the network would have"),
    (lambda d: open(os.path.join(d, "lapace.json"), "w").write("{not json"), "lapace.json: not valid JSON"),
    (lambda d: _edit_json(d, classes=["only"]), "lapace.json: classes must be at least two"),
])
def test_a_damaged_saved_explainer_fails_naming_the_file_and_the_problem(compas, tmp_path, change, message):
    folder = str(tmp_path / "saved")
    shutil.copytree(_saved(compas), folder)
    change(folder)
    with pytest.raises(LoadError, match=message):
        Lapace.load(folder, predict_proba=compas.model.predict_proba)


def test_altered_validity_flags_are_checked_again(compas, tmp_path):
    folder = str(tmp_path / "saved")
    shutil.copytree(_saved(compas), folder)
    with np.load(os.path.join(folder, "weights.npz")) as data:
        proba = data["centroid_proba"]
    # claim every centroid valid, and swap the classes' centroids so none decodes to its own class
    with np.load(os.path.join(folder, "weights.npz")) as data:
        points = data["centroid_points"][::-1].copy()
    _tamper(folder, centroid_valid=np.ones(len(proba), dtype=bool), centroid_points=points)
    with pytest.warns(UserWarning, match="are not assigned to their class by the classifier given to load"):
        loaded = Lapace.load(folder, predict_proba=compas.model.predict_proba)
    res = loaded.explain(unfavourable(compas, 10), strategy="last")
    assert len(res.counterfactuals) == 0  # the swapped centroids decode to the other class: none is a target
    assert all("no valid centroid" in reason for reason in res.failures.values()) and len(res.failures) == 10


def _shape(folder, name):
    with np.load(os.path.join(folder, "weights.npz")) as data:
        return data[name].shape


def _json(folder):
    with open(os.path.join(folder, "lapace.json")) as fh:
        return json.load(fh)


def _edit_json(folder, **changes):
    meta = _json(folder)
    meta.update(changes)
    with open(os.path.join(folder, "lapace.json"), "w") as fh:
        json.dump(meta, fh)


# ------------------------------------------------------------------ property-based: random tables, constraints, damage

NAMES = st.one_of(st.text(alphabet="abcxyz_", min_size=1, max_size=5), st.integers(0, 9))
ARGUMENTS = ("constraints", "range", "target_class", "n_counterfactuals", "query", "queries", "columns", "NaN", "index")


@st.composite
def tables(draw):
    """A random raw table (1-3 numeric and 0-2 categorical columns of random names), a model and random constraints."""
    n_num = draw(st.integers(1, 3))
    n_cat = draw(st.integers(0, 2))
    names = draw(st.lists(NAMES, min_size=n_num + n_cat, max_size=n_num + n_cat, unique_by=str))
    n = draw(st.integers(40, 80))
    rng = np.random.RandomState(draw(st.integers(0, 10**6)))
    columns = {}
    for name in names[:n_num]:
        scale = draw(st.sampled_from([1.0, 100.0, 1e4]))
        integer = draw(st.booleans())
        values = rng.normal(0, scale, n)
        columns[name] = np.round(values).astype(int) if integer else np.round(values, 2)
    for name in names[n_num:]:
        columns[name] = rng.choice(["p", "q", "r"][: draw(st.integers(2, 3))], n)
    X = pd.DataFrame(columns)
    labels = draw(st.lists(st.one_of(st.integers(-50, 50), st.text(alphabet="lm", min_size=1, max_size=3)),
                           min_size=n, max_size=n, unique_by=repr))
    X.index = pd.Index(labels, dtype=object)
    weights = rng.normal(0, 1, n_num)
    numbers = X[names[:n_num]].to_numpy(float)
    centre, spread = numbers.mean(0), numbers.std(0) + 1e-9

    def proba(frame):
        score = ((frame[names[:n_num]].to_numpy(float) - centre) / spread) @ weights
        p = 1 / (1 + np.exp(-np.clip(score, -30, 30)))
        return np.column_stack([1 - p, p])

    cons = {}
    if draw(st.booleans()):
        cons["immutable"] = draw(st.lists(st.sampled_from(names), max_size=2, unique_by=str))
    if draw(st.booleans()):
        cons["increase"] = draw(st.lists(st.sampled_from(names[:n_num]), max_size=1, unique_by=str))
    if draw(st.booleans()):
        name = draw(st.sampled_from(names[:n_num]))
        lo = float(np.quantile(X[name], draw(st.floats(0.0, 0.8))) if draw(st.booleans()) else X[name].min() - 1e6)
        cons["ranges"] = {name: (lo, draw(st.sampled_from([None, lo + abs(lo) + 10.0])))}
    return X, proba, cons, names


def _names_the_problem(exc, names):
    text = str(exc)
    return any(repr(n) in text or str(n) in text for n in names) or any(a in text for a in ARGUMENTS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables(), st.sampled_from(["first", "last"]), st.sampled_from(["none", "nan", "inf", "unknown", "missing", "extra"]))
def test_random_tables_give_valid_constrained_counterfactuals_or_a_named_error(table, strategy, damage):
    X, proba, cons, names = table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # centroid warnings on tables a small net cannot separate
        ex = Lapace(**SMALL).fit(X, proba)
    queries = X.iloc[:6].copy()
    column = names[0] if damage in ("nan", "inf") else (names[-1] if damage == "unknown" else names[0])
    if damage == "nan":
        queries[column] = queries[column].astype(float)
        queries.iloc[0, queries.columns.get_loc(column)] = np.nan
    elif damage == "inf":
        queries[column] = queries[column].astype(float)
        queries.iloc[0, queries.columns.get_loc(column)] = np.inf
    elif damage == "unknown":
        queries[column] = queries[column].astype(object)
        queries.iloc[0, queries.columns.get_loc(column)] = "never seen" if column in ex.schema_.categorical else np.inf
    elif damage == "missing":
        queries = queries.drop(columns=[column])
    elif damage == "extra":
        queries["zz_extra"] = 1
    try:
        res = ex.explain(queries, strategy=strategy, constraints=cons or None)
    except (ValueError, TypeError) as exc:
        assert _names_the_problem(exc, list(names) + ["zz_extra"]), str(exc)
        return
    assert damage == "none"
    cf = res.counterfactuals
    if len(cf):
        assert (proba(cf).argmax(1) == 1 - proba(queries.loc[cf.index.get_level_values("query")]).argmax(1)).all()
        if cons:
            factuals = queries.loc[cf.index.get_level_values("query")]
            assert not Constraints(**cons).violations(factuals, cf, ex.schema_).to_numpy().any()
    explained = set(cf.index.get_level_values("query")) | set(res.failures)
    assert explained == set(queries.index)  # every query explained or failed with a reason

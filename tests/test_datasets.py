from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from lapace_plugin import datasets
from lapace_plugin.schema import FeatureSchema

EXPECTED = {
    # name: (rows, features, target, favourable, positive rate)
    "adult": (45222, 12, "income_over_50k", 1, 0.248),
    "compas": (6172, 8, "no_recidivism", 1, 0.545),
    "german": (1000, 20, "good_credit", 1, 0.700),
    "credit": (30000, 23, "no_default", 1, 0.779),
    "breast_cancer": (569, 30, "benign", 1, 0.627),
    "wine": (178, 13, "cultivar", None, None),
}

IMMUTABLE = {
    "adult": {"race", "sex", "native_country"},
    "compas": {"race", "sex"},
    "german": {"personal_status_and_sex", "foreign_worker"},
    "credit": {"sex"},
    "breast_cancer": set(),
    "wine": set(),
}

MONOTONE = {
    "adult": {"age": "increase", "education_num": "increase"},
    "compas": {
        "age": "increase",
        "juv_fel_count": "increase",
        "juv_misd_count": "increase",
        "juv_other_count": "increase",
        "priors_count": "increase",
    },
    "german": {"age_in_years": "increase"},
    "credit": {"age": "increase"},
    "breast_cancer": {},
    "wine": {},
}

CATEGORICAL = {
    "adult": {"workclass", "marital_status", "occupation", "relationship", "race", "sex", "native_country"},
    "compas": {"sex", "race", "c_charge_degree"},
    "credit": {"sex", "education", "marriage"},
    "breast_cancer": set(),
    "wine": set(),
}

ALL = sorted(EXPECTED)


def test_names_lists_the_six_datasets_sorted():
    assert datasets.names() == ["adult", "breast_cancer", "compas", "credit", "german", "wine"]


@pytest.mark.parametrize("name", ALL)
def test_shape_target_and_favourable_class(name):
    rows, n_features, target, favourable, _ = EXPECTED[name]
    ds = datasets.load(name)
    assert ds.name == name
    assert ds.target == target
    assert ds.favourable == favourable
    assert ds.frame.shape == (rows, n_features + 1)
    assert ds.X.shape == (rows, n_features)
    assert target not in ds.X.columns
    assert ds.y.name == target and len(ds.y) == rows
    assert list(ds.X.columns) == ds.schema.features == ds.features
    assert isinstance(ds.schema, FeatureSchema)


@pytest.mark.parametrize("name", [n for n in ALL if EXPECTED[n][3] is not None])
def test_binary_target_is_01_int_with_expected_balance(name):
    *_, rate = EXPECTED[name]
    y = datasets.load(name).y
    assert y.dtype == np.int64
    assert set(y.unique()) == {0, 1}
    assert abs(y.mean() - rate) < 0.005


def test_wine_has_three_cultivars():
    y = datasets.load("wine").y
    assert sorted(y.unique()) == [0, 1, 2]
    assert y.value_counts().sort_index().tolist() == [59, 71, 48]


@pytest.mark.parametrize("name", ALL)
def test_no_missing_values(name):
    frame = datasets.load(name).frame
    assert not frame.isna().any().any()
    strings = [c for c in frame.columns if frame[c].dtype == object]
    for c in strings:
        assert not frame[c].isin(["", "?", "nan", "NaN", "None"]).any(), c


@pytest.mark.parametrize("name", ALL)
def test_every_categorical_value_is_a_schema_category(name):
    ds = datasets.load(name)
    for col, cats in ds.schema.categorical.items():
        assert set(ds.X[col].unique()) <= set(cats), col
    # the schema accepts the dataset's own rows
    ds.schema.validate(ds.X, name=name)


@pytest.mark.parametrize("name", [n for n in ALL if n in CATEGORICAL])
def test_categorical_columns_are_strings_and_the_rest_numeric(name):
    ds = datasets.load(name)
    assert set(ds.schema.categorical) == CATEGORICAL[name]
    for col in ds.schema.categorical:
        assert ds.X[col].dtype == object
        assert all(isinstance(v, str) for v in ds.X[col].unique())
    for col in ds.schema.continuous:
        assert ds.X[col].dtype.kind in "if", col


def test_german_has_twelve_categorical_one_ordinal_and_seven_integer_features():
    schema = datasets.load("german").schema
    assert len(schema.categorical) == 12
    assert schema.ordinal == {
        "present_employment_since": ["unemployed", "... < 1 year", "1 <= ... < 4 years", "4 <= ... < 7 years", "... >= 7 years"]
    }
    assert len(schema.continuous) == 7
    assert set(schema.integer) == set(schema.continuous)


def test_bundled_feature_types_are_detected():
    adult, compas = datasets.load("adult").schema, datasets.load("compas").schema
    assert adult.point_mass == {"capital_gain": 0.0, "capital_loss": 0.0}  # 92% and 95% of rows at 0
    assert list(adult.discrete) == ["education_num"]  # 16 observed levels
    assert adult.discrete["education_num"] == list(range(1, 17))
    assert compas.point_mass == {"priors_count": 0.0}  # 34% at 0, 36 values
    assert set(compas.discrete) == {"juv_fel_count", "juv_misd_count", "juv_other_count"}


@pytest.mark.parametrize("name", ["adult", "compas", "german", "credit"])
def test_bundled_numeric_features_are_int64(name):
    ds = datasets.load(name)
    for col in ds.schema.continuous:
        assert ds.X[col].dtype == np.int64, col
    assert set(ds.schema.integer) == set(ds.schema.continuous)


@pytest.mark.parametrize("name", ALL)
def test_declared_immutable_and_monotone_features(name):
    schema = datasets.load(name).schema
    assert set(schema.immutable) == IMMUTABLE[name]
    assert schema.monotone == MONOTONE[name]


def test_readable_levels():
    adult = datasets.load("adult").X
    assert set(adult["sex"]) == {"Female", "Male"}
    assert "United-States" in set(adult["native_country"])
    compas = datasets.load("compas").X
    assert set(compas["c_charge_degree"]) == {"F", "M"}
    credit = datasets.load("credit").X
    assert set(credit["sex"]) == {"female", "male"}
    assert set(credit["education"]) == {"graduate school", "university", "high school", "others", "unknown"}
    assert set(credit["marriage"]) == {"married", "single", "others", "unknown"}
    assert (credit["sex"] == "female").sum() == 18112
    german = datasets.load("german").X
    assert set(german["foreign_worker"]) == {"yes", "no"}


def test_adult_drops_fnlwgt_and_education_and_uses_snake_case():
    cols = datasets.load("adult").X.columns
    assert "fnlwgt" not in cols and "education" not in cols
    for c in ("marital_status", "native_country", "capital_gain", "hours_per_week", "education_num"):
        assert c in cols
    for name in ALL:
        for c in datasets.load(name).frame.columns:
            assert c == c.lower() and " " not in c and "/" not in c and "-" not in c, (name, c)


def test_compas_ages_and_counts_are_non_negative():
    X = datasets.load("compas").X
    assert X["age"].min() >= 18
    for c in ("juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count"):
        assert X[c].min() >= 0


def test_unknown_name_error_lists_valid_names():
    with pytest.raises(ValueError) as info:
        datasets.load("heloc")
    message = str(info.value)
    assert "heloc" in message
    for name in datasets.names():
        assert name in message


@pytest.mark.parametrize("name", ["adult", "wine"])
def test_load_returns_independent_copies(name):
    first = datasets.load(name)
    col = first.schema.continuous[0]
    original = first.frame[col].iloc[0]
    first.frame.loc[first.frame.index[0], col] = original + 1000
    first.frame["extra"] = 0
    first.schema.immutable.append(first.schema.features[-1])
    second = datasets.load(name)
    assert second.frame[col].iloc[0] == original
    assert len(second.frame) == EXPECTED[name][0]
    assert "extra" not in second.frame.columns
    assert set(second.schema.immutable) == IMMUTABLE[name]
    assert second.frame is not first.frame


def test_schema_ranges_match_the_data():
    ds = datasets.load("credit")
    for col in ds.schema.continuous:
        assert ds.schema.ranges[col] == (float(ds.X[col].min()), float(ds.X[col].max()))


@pytest.mark.parametrize("name", ALL)
def test_provenance_is_filled_in(name):
    ds = datasets.load(name)
    assert ds.source and ds.licence and ds.description and ds.citation
    if name == "compas":
        assert "no explicit licence" in ds.licence
    else:
        assert "CC BY 4.0" in ds.licence
    assert name in repr(ds) and "DataFrame" not in repr(ds)


def test_credit_is_documented_as_heloc_stand_in():
    assert "HELOC" in datasets.load("credit").source
    readme = os.path.join(os.path.dirname(datasets.__file__), "data", "README.md")
    with open(readme) as fh:
        assert "stand-in for HELOC" in fh.read()


def test_bundled_files_are_small():
    data_dir = os.path.join(os.path.dirname(datasets.__file__), "data")
    for fname in ("adult.csv.gz", "compas.csv.gz", "german.csv.gz", "credit.csv.gz"):
        assert os.path.getsize(os.path.join(data_dir, fname)) < 2 * 1024 * 1024


def test_frame_round_trips_through_pandas():
    # the stored CSV reads back identically without the loader's dtype handling
    data_dir = os.path.join(os.path.dirname(datasets.__file__), "data")
    raw = pd.read_csv(os.path.join(data_dir, "german.csv.gz"), keep_default_na=False)
    frame = datasets.load("german").frame
    assert list(raw.columns) == list(frame.columns)
    assert (raw.astype(str).values == frame.astype(str).values).all()

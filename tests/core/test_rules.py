"""The shared rules (lapace_plugin.rules): validity, rounding, "changed" and the unique index, on tiny inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tiny

from lapace_plugin.rules import CHANGE_TOL, assigned_to, changed_features, check_unique_index, decimals_of, round_to_precision


def test_assigned_to_is_argmax_equal_to_target_and_never_for_non_finite_rows():
    proba = np.array([[0.2, 0.8], [0.7, 0.3], [np.nan, 1.0], [0.5, np.inf]])
    assert assigned_to(proba, 1).tolist() == [True, False, False, False]
    assert assigned_to(proba, np.array([1, 0, 1, 1])).tolist() == [True, True, False, False]
    assert assigned_to(np.zeros((0, 2)), 1).shape == (0,)


def test_values_round_to_units_for_integers_and_to_the_schemas_precision_otherwise():
    assert decimals_of(tiny.SCHEMA, "age") == 0 and decimals_of(tiny.SCHEMA, "income") == 1
    assert round_to_precision([30.6, 41.2], tiny.SCHEMA, "age", dtype="int64").tolist() == [31, 41]
    assert round_to_precision([12.34, 56.78], tiny.SCHEMA, "income").tolist() == [12.3, 56.8]


def test_a_feature_without_recorded_precision_keeps_its_values_and_its_float_dtype():
    schema = tiny.SCHEMA
    assert decimals_of(schema, "job") is None
    assert round_to_precision([1.234], schema, "job", dtype="int64").dtype.kind == "f"  # not truncated to an integer


def test_changed_uses_one_tolerance_of_the_features_range():
    before = pd.DataFrame({"income": [50.0, 50.0], "age": [30, 30], "job": ["clerk", "clerk"]})
    after = pd.DataFrame({"income": [50.0 + 0.5 * CHANGE_TOL * 100, 51.0], "age": [30, 30], "job": ["clerk", "manager"]})
    assert changed_features(tiny.SCHEMA, before, after).tolist() == [[False, False, False], [True, False, True]]


def test_the_unique_index_check_names_repeated_labels_and_refuses_a_multiindex():
    check_unique_index(pd.Index([1, 2, 3]), "queries")
    with pytest.raises(ValueError, match=r"repeats label\(s\) \[2\]"):
        check_unique_index(pd.Index([1, 2, 2]), "queries")
    with pytest.raises(ValueError, match="MultiIndex"):
        check_unique_index(pd.MultiIndex.from_tuples([(1, 2)]), "queries")

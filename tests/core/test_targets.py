"""Target resolution (lapace_plugin.targets): one meaning of None, a scalar, a sequence, a Series and a dict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lapace_plugin import InvalidParameterError
from lapace_plugin.evaluation.frames import targets_per_row
from lapace_plugin.targets import resolve_targets

INDEX = pd.Index(["a", "b", "c"])


def test_none_means_the_other_class_of_a_binary_model_and_is_required_otherwise():
    assert resolve_targets(None, np.array([0, 1, 0]), [0, 1], INDEX).tolist() == [1, 0, 1]
    with pytest.raises(InvalidParameterError, match="target_class is required for a model with 3 classes"):
        resolve_targets(None, np.array([0, 1, 2]), [0, 1, 2], INDEX)
    with pytest.raises(InvalidParameterError, match="target_class is required"):
        resolve_targets(None, index=INDEX)  # the metrics know no predictions


def test_a_series_and_a_dict_are_keyed_by_the_query_labels():
    expected = [2, 0, 1]
    series = pd.Series([1, 2, 0], index=["c", "a", "b"])
    assert resolve_targets(series, np.zeros(3, int), [0, 1, 2], INDEX).tolist() == expected
    assert resolve_targets({"c": 1, "a": 2, "b": 0}, np.zeros(3, int), [0, 1, 2], INDEX).tolist() == expected
    with pytest.raises(InvalidParameterError, match=r"no entry for query label\(s\) \['c'\]"):
        resolve_targets({"a": 1, "b": 0}, np.zeros(3, int), [0, 1, 2], INDEX)


def test_impossible_and_boolean_targets_are_refused():
    with pytest.raises(InvalidParameterError, match="impossible target class"):
        resolve_targets(5, np.zeros(3, int), [0, 1], INDEX)
    with pytest.raises(InvalidParameterError, match="class index"):
        resolve_targets(True, np.zeros(3, int), [0, 1], INDEX)


def test_the_metrics_resolve_targets_per_counterfactual_row_with_the_same_function():
    ids = np.array(["b", "b", "c"])
    factuals = pd.DataFrame(index=INDEX)
    assert targets_per_row(1, ids).tolist() == [1, 1, 1]
    assert targets_per_row({"b": 0, "c": 1}, ids).tolist() == [0, 0, 1]
    assert targets_per_row([1, 0, 1], ids, factuals).tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="target_class is required"):
        targets_per_row(None, ids, factuals)

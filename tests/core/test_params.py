"""The parameter table (lapace_plugin.params): rules, one error class, and what derives from the table."""

from __future__ import annotations

import inspect

import pytest

from lapace_plugin import InvalidParameterError, Lapace
from lapace_plugin import params as parameters
from lapace_plugin.explainer import CallSettings


@pytest.mark.parametrize("rule, value", [
    (parameters.Integer(1, 5), 2.7), (parameters.Integer(1, 5), True), (parameters.Integer(1, 5), 6),
    (parameters.Real(0.0, 1.0), float("nan")), (parameters.Real(0.0, 1.0), "x"), (parameters.Flag(), 1),
    (parameters.Widths(8, 2), (4, 4, 4)), (parameters.Options(("a", "b"), kind="letter"), "c"),
])
def test_every_rule_raises_the_one_parameter_error_naming_the_parameter(rule, value):
    with pytest.raises(InvalidParameterError, match="x_param|letter"):
        rule.check("x_param", value)


def test_the_parameter_error_is_both_a_value_error_and_a_type_error():
    assert issubclass(InvalidParameterError, ValueError) and issubclass(InvalidParameterError, TypeError)


def test_unknown_parameters_are_refused_at_construction_and_per_call():
    with pytest.raises(InvalidParameterError, match="unknown Lapace parameter"):
        parameters.check_params({"epoch": 3})
    with pytest.raises(InvalidParameterError, match=r"explain\(\) got unknown parameter\(s\) \['epochs'\]"):
        parameters.check_call({"epochs": 3})
    assert parameters.check_call({"n_steps": None, "path": "sparse"}) == {"path": "sparse"}


def test_the_per_call_parameters_of_explain_and_call_settings_come_from_the_table():
    per_call = list(parameters.per_call_names())
    assert {"n_steps", "path", "search", "revert", "max_points", "min_pair_count", "distinct"} <= set(per_call)
    keywords = [p.name for p in inspect.signature(Lapace.explain).parameters.values() if p.kind == p.KEYWORD_ONLY]
    assert keywords == per_call
    assert list(CallSettings._fields) == ["strategy", "n_counterfactuals"] + per_call
    assert all(name in Lapace.explain.__doc__ for name in per_call)


def test_call_settings_split_queries_into_chunks_within_max_points():
    values = dict(parameters.defaults())
    settings = CallSettings(strategy="first", n_counterfactuals=2, **{n: values[n] for n in parameters.per_call_names()})
    settings = settings._replace(n_steps=4, max_points=25)
    assert [c.tolist() for c in settings.chunks(5, 2)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(InvalidParameterError, match="raise max_points"):
        settings._replace(max_points=9).chunks(5, 2)


def test_the_constructors_signature_lists_every_parameter_of_the_table():
    assert list(inspect.signature(Lapace).parameters) == list(parameters.PARAMETERS)

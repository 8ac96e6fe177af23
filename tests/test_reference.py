"""Explanations on every bundled dataset equal those of the code before the redesign (saved reference outputs).

``tests/reference/build.py`` wrote, at commit 1b13f5b, a small fitted explainer per dataset (``Lapace.save``), the
weights of a linear classifier, the queries and ``to_frame()`` of every setting in ``reference_cases.CASES``. Here the
current code loads that explainer and must give the same counterfactual from every path: the same features, validity,
tau, rank and repair flags, up to float32 noise (see ``_same``). Saved explainers of that format load with the paper's
decoder and no plausibility filter; ``distinct=False`` keeps the selection of that time (a path whose first valid point
repeats another path's row gives nothing).
"""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd
import pytest

from lapace_plugin import Lapace

from reference_cases import CASES, DATASETS, LinearClassifier

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")


def _load(name):
    folder = os.path.join(REFERENCE, name)
    weights = np.load(os.path.join(folder, "classifier.npz"))
    explainer = Lapace.load(os.path.join(folder, "explainer"))
    model = LinearClassifier(weights["coef"], weights["intercept"], explainer.schema_.to_dict())
    explainer = Lapace.load(os.path.join(folder, "explainer"), predict_proba=model.predict_proba)
    queries = pd.read_csv(os.path.join(folder, "queries.csv"), index_col=0)
    queries = queries.astype({c: t for c, t in explainer.schema_.dtypes.items() if t != "object"})
    for c in explainer.schema_.categorical:
        queries[c] = queries[c].astype(str).astype(object)
    return folder, explainer, queries


def _same(frame: pd.DataFrame, path: str, schema) -> None:
    """``frame`` equals the saved CSV once both went through CSV.

    Non-numeric columns must match exactly. Numbers may differ by float32 noise: 1e-5 of a feature's range, one unit
    where float32 noise rounds an integer feature the other way at a half (torch 1.7 in the CARLA environment), and a
    relative 1e-4 for probabilities and tau.
    """
    expected = pd.read_csv(path)
    actual = pd.read_csv(io.StringIO(frame.to_csv(index=False)))
    assert set(expected.columns) <= set(actual.columns)
    actual = actual[list(expected.columns)]  # columns added later (such as `note`) are not in the reference
    assert len(actual) == len(expected)
    for column in expected.columns:
        a, b = actual[column], expected[column]
        if b.dtype.kind not in "iuf" or a.dtype.kind not in "iuf":
            assert a.astype(str).tolist() == b.astype(str).tolist(), column
            continue
        a, b = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        assert (np.isnan(a) == np.isnan(b)).all(), column
        if column in schema.ranges:
            lo, hi = schema.ranges[column]
            tolerance = 1e-5 * (hi - lo) + (1.0 if column in schema.integer else 0.0)
        else:
            tolerance = 1e-4 * np.abs(b) + 1e-6
        assert (np.abs(a - b) <= tolerance)[~np.isnan(b)].all(), (column, a, b)


@pytest.mark.parametrize("name", DATASETS)
def test_explanations_equal_the_pre_redesign_reference(name):
    folder, explainer, queries = _load(name)
    for case, settings in CASES.items():
        res = explainer.explain(queries, distinct=False, **settings(explainer, queries))
        _same(res.to_frame(), os.path.join(folder, "%s.csv" % case), explainer.schema_)
    paths = explainer.explain(queries.iloc[:3], **CASES["corrected"](explainer, queries.iloc[:3])).paths
    _same(paths, os.path.join(folder, "paths.csv"), explainer.schema_)

"""Explanations on every bundled dataset equal those of the code before the redesign (saved reference outputs).

``tests/reference/build.py`` wrote, at commit 1b13f5b, a small fitted explainer per dataset (``Lapace.save``), the
weights of a linear classifier, the queries and ``to_frame()`` of every setting in ``reference_cases.CASES``. Here the
current code loads that explainer and must give the same counterfactual from every path: the same features, validity,
tau, rank and repair flags, up to float32 noise (see ``_same``). Saved explainers of that format load with the paper's
decoder and no plausibility filter; ``distinct=False`` keeps the selection of that time (a path whose first valid point
repeats another path's row gives nothing).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from lapace_plugin import Lapace

from frames import assert_frames_close
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
    """``frame`` equals the saved CSV up to float32 noise (:func:`frames.assert_frames_close`)."""
    assert_frames_close(frame, pd.read_csv(path), schema)


@pytest.mark.parametrize("name", DATASETS)
def test_explanations_equal_the_pre_redesign_reference(name):
    folder, explainer, queries = _load(name)
    for case, settings in CASES.items():
        res = explainer.explain(queries, distinct=False, **settings(explainer, queries))
        _same(res.to_frame(), os.path.join(folder, "%s.csv" % case), explainer.schema_)
    paths = explainer.explain(queries.iloc[:3], **CASES["corrected"](explainer, queries.iloc[:3])).paths
    _same(paths, os.path.join(folder, "paths.csv"), explainer.schema_)

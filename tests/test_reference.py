"""Explanations on every bundled dataset equal those of the code before the redesign (saved reference outputs).

``tests/reference/build.py`` wrote, at commit 1b13f5b, a small fitted explainer per dataset (``Lapace.save``), the
weights of a linear classifier, the queries and ``to_frame()`` of every setting in ``reference_cases.CASES``. Here the
current code loads that explainer and must give the same counterfactual from every path: the same features, validity,
tau, rank and repair flags, up to float32 noise (see ``_same``). Saved explainers of that format load with the paper's
decoder and no plausibility filter; ``distinct=False`` keeps the selection of that time (a path whose first valid point
repeats another path's row gives nothing).

Constrained settings (``schema_*``, ``rich_*``) are the exception, since repair lets a point leave once it needs no
more (``latent.REPAIR_CHECK``): a point neither explanation repaired is computed the same way and must be the same
row; a repaired one may differ, but every constraint must hold and no setting may lose a valid counterfactual.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from lapace_plugin import Lapace
from lapace_plugin.evaluation import metrics

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


def _same_unrepaired(res, queries: pd.DataFrame, constraints, path: str, schema) -> int:
    """Rows (query, component) unrepaired at the same tau in ``res`` and the saved CSV are equal; every counterfactual
    of ``res`` keeps its constraints, and ``res`` has at least the saved valid counterfactuals. Returns how many rows
    were compared. A row's ``rank`` orders it among its query's other rows, which may have been repaired, so it is not
    compared."""
    frame, saved = res.to_frame(), pd.read_csv(path)
    assert frame["valid"].sum() >= saved["valid"].sum()
    assert metrics.constraint_violations(schema, queries, res.counterfactuals, constraints) == 0
    key = ["query", "component"]
    both = frame.assign(query=frame["query"].astype(str)).merge(
        saved.assign(query=saved["query"].astype(str))[key + ["tau", "repaired"]], on=key, suffixes=("", "_saved")
    )
    same = ~both["repaired"].astype(bool) & ~both["repaired_saved"].astype(bool) & np.isclose(both["tau"], both["tau_saved"])
    rows = both[same].drop(columns=["tau_saved", "repaired_saved", "rank"])
    expected = saved.assign(query=saved["query"].astype(str)).merge(rows[key], on=key).drop(columns="rank")
    assert_frames_close(rows.reset_index(drop=True), expected, schema)
    return int(same.sum())


@pytest.mark.parametrize("name", DATASETS)
def test_explanations_equal_the_pre_redesign_reference(name):
    folder, explainer, queries = _load(name)
    compared = 0
    for case, settings in CASES.items():
        chosen = settings(explainer, queries)
        res = explainer.explain(queries, distinct=False, **chosen)
        saved = os.path.join(folder, "%s.csv" % case)
        if case.startswith(("schema_", "rich_")):
            compared += _same_unrepaired(res, queries, chosen["constraints"], saved, explainer.schema_)
        else:
            _same(res.to_frame(), saved, explainer.schema_)
    assert compared > 0
    paths = explainer.explain(queries.iloc[:3], **CASES["corrected"](explainer, queries.iloc[:3])).paths
    _same(paths, os.path.join(folder, "paths.csv"), explainer.schema_)

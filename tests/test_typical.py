"""max_lof: the revert gives a change back only while the plan stays typical of its target class (real compas data,
a real random forest); the factor itself is tested in core/test_outlier_factor.py."""

from __future__ import annotations

import numpy as np
import pytest

from lapace_plugin.errors import InvalidParameterError

from fitted import fitted, unfavourable

ROBUST = dict(strategy="robust", min_probability=0.7)


def _factors(f, res):
    """Each counterfactual's local outlier factor among its target class's kept rows, beside its path row."""
    chosen = res.counterfactuals_with_paths()
    space = f.explainer._space()
    points = f.explainer.encoder_.encode(res.counterfactuals.reset_index(drop=True))
    target = np.asarray(res.target_class)[chosen["query"].map({q: i for i, q in enumerate(res.queries.index)}).to_numpy()]
    return chosen, space.outlier_factor(points, target)


@pytest.mark.parametrize("diverse", [False, True])
def test_every_change_given_back_leaves_the_plan_within_max_lof(diverse):
    f = fitted("compas")
    queries = unfavourable(f, 40)
    free = f.explainer.explain(queries, revert=True, diverse=diverse, **ROBUST)
    typical = f.explainer.explain(queries, revert=True, diverse=diverse, max_lof=1.0, **ROBUST)
    chosen, lof = _factors(f, typical)
    reverted = chosen["reverted"].to_numpy() > 0
    assert reverted.any() and (lof[reverted] <= 1.0 + 1e-9).all()  # the last change given back passed the check
    free_chosen, free_lof = _factors(f, free)
    assert (free_lof[free_chosen["reverted"].to_numpy() > 0] > 1.0).any()  # without it, some reverted plan is atypical
    assert (f.model.predict_proba(typical.counterfactuals)[:, 1] >= 0.7).all()
    assert typical.meta["max_lof"] == 1.0 and free.meta["max_lof"] is None


def test_a_max_lof_no_row_meets_gives_nothing_back():
    f = fitted("compas")
    queries = unfavourable(f, 20)
    kept = f.explainer.explain(queries, revert=True, max_lof=1e-6, **ROBUST).counterfactuals_with_paths()
    first = f.explainer.explain(queries, distinct=False, **ROBUST).counterfactuals_with_paths()  # each path's first point
    assert len(kept) and (kept["reverted"] == 0).all()
    both = kept.merge(first, on=["query", "component"], suffixes=("", "_first"))
    assert len(both) == len(kept)
    for name in f.X_test.columns:
        assert (both[name] == both[name + "_first"]).all(), name


def test_max_lof_must_be_positive():
    f = fitted("compas")
    with pytest.raises(InvalidParameterError, match="max_lof"):
        f.explainer.explain(unfavourable(f, 2), revert=True, max_lof=0)

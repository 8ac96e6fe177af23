"""Bad input gets a clear error naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from lapace_plugin import FeatureSchema, Lapace, NotFittedError

from fitted import unfavourable


def test_missing_column_is_named(compas):
    with pytest.raises(ValueError, match="missing column.*priors_count"):
        compas.explainer.explain(unfavourable(compas, 3).drop(columns=["priors_count"]))


def test_extra_column_is_named(compas):
    with pytest.raises(ValueError, match="unexpected column.*shoe_size"):
        compas.explainer.explain(unfavourable(compas, 3).assign(shoe_size=42))


def test_unknown_category_is_named(compas):
    q = unfavourable(compas, 3).copy()
    q.loc[q.index[0], "race"] = "Martian"
    with pytest.raises(ValueError, match="'race' has unknown category.*Martian"):
        compas.explainer.explain(q)


def test_nan_is_named(compas):
    q = unfavourable(compas, 3).copy()
    q["age"] = q["age"].astype(float)
    q.loc[q.index[1], "age"] = np.nan
    with pytest.raises(ValueError, match="NaN in column.*age"):
        compas.explainer.explain(q)


def test_empty_frame_is_rejected(compas):
    with pytest.raises(ValueError, match="empty"):
        compas.explainer.explain(unfavourable(compas, 3).iloc[:0])


def test_impossible_target_class_is_named(compas):
    with pytest.raises(ValueError, match="impossible target class \\[5\\]"):
        compas.explainer.explain(unfavourable(compas, 3), target_class=5)


def test_unfitted_explainer_says_so(compas):
    with pytest.raises(NotFittedError, match="not fitted"):
        Lapace(schema=compas.ds.schema).explain(unfavourable(compas, 3))


def test_constraint_on_unknown_feature_is_named(compas):
    with pytest.raises(ValueError, match="unknown feature.*'height'"):
        compas.explainer.explain(unfavourable(compas, 3), constraints={"immutable": ["height"]})


def test_unknown_constraint_kind_is_named(compas):
    with pytest.raises(ValueError, match="unknown constraint kind.*frozen"):
        compas.explainer.explain(unfavourable(compas, 3), constraints={"frozen": ["age"]})


def test_wrong_predict_proba_shape_is_named(compas):
    with pytest.raises(ValueError, match="shape \\(n_rows, n_classes>=2\\)"):
        Lapace(schema=compas.ds.schema, epochs=1, verbose=False).fit(compas.X_train, lambda X: np.zeros(len(X)))


def test_bad_strategy_and_count_are_named(compas):
    q = unfavourable(compas, 3)
    with pytest.raises(ValueError, match="strategy must be one of"):
        compas.explainer.explain(q, strategy="middle")
    with pytest.raises(ValueError, match="n_counterfactuals must be between 1 and"):
        compas.explainer.explain(q, n_counterfactuals=9)


def test_schema_rejects_inconsistent_declarations():
    with pytest.raises(ValueError, match="no range"):
        FeatureSchema(continuous=["a"])
    with pytest.raises(ValueError, match="immutable features \\['b'\\] are not in the schema"):
        FeatureSchema(continuous=["a"], ranges={"a": (0, 1)}, immutable=["b"])

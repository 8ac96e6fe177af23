"""ElliCE (the ``ellice`` package, modern environment only) on the study's logistic classifier and real german credit."""

from __future__ import annotations

import pandas as pd
import pytest

from lapace_plugin import Constraints, datasets
from lapace_plugin.evaluation.baselines import ElliCE
from lapace_plugin.evaluation.models import make_classifier, split


@pytest.fixture(scope="module")
def german():
    ds = datasets.load("german")
    X_train, X_test, y_train, _ = split(ds, test_size=0.2, random_state=0)
    schema = ds.schema.with_data(X_train)
    model = make_classifier(schema, "logistic", random_state=0).fit(X_train, y_train)
    queries = X_test[model.predict(X_test) == 0].iloc[:8]
    return schema, X_train, model, queries


def _fitted(german):
    schema, X_train, model, _ = german
    return ElliCE(schema=schema, immutable="schema", logistic=model.named_steps["model"], max_iterations=300,
                  random_state=0).fit(X_train, model.predict_proba)


def test_ellice_returns_valid_raw_rows_that_keep_the_immutables(german):
    schema, _, model, queries = german
    method = _fitted(german)
    cfs = method.explain(queries, target_class=1)
    assert len(cfs) == len(queries) and not method.failures
    assert list(cfs.columns) == schema.features
    assert (model.predict(cfs) == 1).all()
    factuals = queries.loc[cfs.index.get_level_values("query")]
    assert not Constraints(immutable=schema.immutable).broken(factuals, cfs, schema).any()
    for f, cats in schema.categorical.items():
        assert cfs[f].isin(cats).all()


def test_ellice_is_reproducible(german):
    _, _, _, queries = german
    pd.testing.assert_frame_equal(_fitted(german).explain(queries.iloc[:3], target_class=1),
                                  _fitted(german).explain(queries.iloc[:3], target_class=1))


def test_ellice_needs_a_logistic_regression_on_the_papers_encoding(german):
    schema, X_train, model, _ = german
    forest = make_classifier(schema, "rf", random_state=0).fit(X_train, model.predict(X_train))
    with pytest.raises(ValueError, match="LogisticRegression"):
        ElliCE(schema=schema, logistic=forest.named_steps["model"]).fit(X_train, forest.predict_proba)

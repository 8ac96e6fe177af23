"""Real bundled datasets with real classifiers and fitted explainers, built once per test session."""

from __future__ import annotations

from typing import Any, Dict, NamedTuple

import pandas as pd

from lapace_plugin import Constraints, Lapace, datasets
from lapace_plugin.evaluation.models import make_classifier, split

# Every kind of constraint on adult: immutables, both monotone directions, a range and allowed categories.
ADULT_CONSTRAINTS = Constraints(
    immutable=["race", "sex", "native_country", "marital_status"],
    increase=["age", "education_num"],
    decrease=["capital_loss"],
    ranges={"hours_per_week": (30, 50)},
    categories={"workclass": ["Private", "Self-emp-not-inc", "Local-gov"]},
)

# Rows of training data per dataset: adult is subsampled to keep the suite fast on 2 cores.
TRAIN_ROWS = {"adult": 6000, "compas": None, "german": None, "wine": None}


class Fitted(NamedTuple):
    ds: Any
    model: Any
    explainer: Lapace
    X_train: pd.DataFrame
    X_test: pd.DataFrame


_CACHE: Dict[str, Fitted] = {}


def fitted(name: str) -> Fitted:
    """A random-forest pipeline and a Lapace fitted on bundled dataset ``name`` (cached per session)."""
    if name not in _CACHE:
        ds = datasets.load(name)
        X_train, X_test, y_train, _ = split(ds, test_size=0.2, random_state=0)
        rows = TRAIN_ROWS.get(name)
        if rows is not None:
            X_train, y_train = X_train.iloc[:rows], y_train.iloc[:rows]
        model = make_classifier(ds.schema, "rf", random_state=0).fit(X_train, y_train)
        explainer = Lapace(schema=ds.schema, random_state=0, verbose=False)
        explainer.fit(X_train, predict_proba=model.predict_proba, classes=model.classes_)
        _CACHE[name] = Fitted(ds, model, explainer, X_train, X_test)
    return _CACHE[name]


def unfavourable(f: Fitted, n: int = 40) -> pd.DataFrame:
    """Test rows the classifier assigns to the unfavourable class 0."""
    X = f.X_test
    return X[f.model.predict(X) == 0].iloc[:n]


def feasible(f: Fitted, queries: pd.DataFrame, constraints: Constraints, target: int = 1) -> pd.Series:
    """Per query, whether some training row the classifier assigns to ``target`` satisfies the constraints.

    A query without such a row may have no plausible counterfactual at all (e.g. an immutable "Never-married" with
    every high-income training row married): coverage is measured against these.
    """
    good = f.X_train[f.model.predict(f.X_train) == target]
    out = {}
    for label, row in queries.iterrows():
        factual = pd.DataFrame([row] * len(good), columns=queries.columns)
        out[label] = bool((~constraints.broken(factual, good, f.ds.schema)).any())
    return pd.Series(out)

"""Reference classifiers and splits used by the demo, the benchmarks, the study and the tests."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder

from ..datasets import Dataset
from ..encoding import TabularEncoder
from ..schema import FeatureSchema

CLASSIFIERS = ("rf", "mlp", "logistic")


class PaperEncoding(BaseEstimator, TransformerMixin):
    """Raw frames to the paper's encoding (:class:`~lapace_plugin.encoding.TabularEncoder` with ``typed=False``:
    continuous features min-max scaled with the schema's ranges, categorical and ordinal features one-hot): the
    input space of the ``"logistic"`` classifier, which ElliCE explains in that space."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.schema = schema

    def fit(self, X: pd.DataFrame, y: object = None) -> "PaperEncoding":
        self.encoder_ = TabularEncoder(self.schema, typed=False)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        return self.encoder_.encode(X)


def make_classifier(schema: FeatureSchema, kind: str = "rf", random_state: int = 0, n_jobs: int = 1) -> Pipeline:
    """An unfitted sklearn pipeline on raw frames: one-hot categoricals, ordinal features as their level, then a
    random forest or an MLP; or the paper's encoding then a logistic regression.

    ``"rf"``: 100 trees, ``min_samples_leaf=5``; ``"mlp"``: min-max scaled inputs, two hidden layers of 64;
    ``"logistic"``: :class:`PaperEncoding`, then ``LogisticRegression(max_iter=1000)`` (the classifier ElliCE can
    explain; its steps are named ``prepare`` and ``model`` like the others').
    """
    if kind not in CLASSIFIERS:
        raise ValueError("classifier must be one of %s, got %r" % (CLASSIFIERS, kind))
    if kind == "logistic":
        return Pipeline([("prepare", PaperEncoding(schema)), ("model", LogisticRegression(max_iter=1000, random_state=random_state))])
    onehot = OneHotEncoder(categories=[schema.categorical[c] for c in schema.categorical], handle_unknown="ignore")
    steps = [("categorical", onehot, list(schema.categorical))]
    if schema.ordinal:
        steps.append(("ordinal", OrdinalEncoder(categories=[schema.ordinal[c] for c in schema.ordinal]), list(schema.ordinal)))
    if kind == "rf":
        prep = ColumnTransformer(steps, remainder="passthrough")
        model = RandomForestClassifier(n_estimators=100, min_samples_leaf=5, n_jobs=n_jobs, random_state=random_state)
    else:
        prep = ColumnTransformer(steps + [("continuous", MinMaxScaler(), list(schema.continuous))])
        model = MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=300, early_stopping=True, random_state=random_state)
    return Pipeline([("prepare", prep), ("model", model)])


def split(ds: Dataset, test_size: float = 0.2, random_state: int = 0) -> Tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Shuffled train/test split of a bundled dataset: ``X_train, X_test, y_train, y_test``."""
    order = np.random.RandomState(random_state).permutation(len(ds.frame))
    n_test = int(round(test_size * len(order)))
    X, y = ds.X, ds.y
    test, train = order[:n_test], order[n_test:]
    return X.iloc[train], X.iloc[test], y.iloc[train], y.iloc[test]

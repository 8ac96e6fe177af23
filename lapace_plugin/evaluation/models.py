"""Reference classifiers and splits used by the demo, the benchmarks, the study and the tests."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder

from ..datasets import Dataset
from ..schema import FeatureSchema

CLASSIFIERS = ("rf", "mlp")


def make_classifier(schema: FeatureSchema, kind: str = "rf", random_state: int = 0, n_jobs: int = 1) -> Pipeline:
    """An unfitted sklearn pipeline on raw frames: one-hot categoricals, ordinal features as their level, then a
    random forest or an MLP.

    ``"rf"``: 100 trees, ``min_samples_leaf=5``; ``"mlp"``: min-max scaled inputs, two hidden layers of 64.
    """
    if kind not in CLASSIFIERS:
        raise ValueError("classifier must be one of %s, got %r" % (CLASSIFIERS, kind))
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

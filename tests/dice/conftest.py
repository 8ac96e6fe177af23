"""Shared, session-scoped fixtures for the DiCE adapter tests (real dice-ml 0.12, bundled data).

Training frames are subsampled and LAPACE is fitted with few epochs so the whole stage stays fast; the
tests check the adapter's translation of DiCE's arguments and objects, not LAPACE's quality.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, List

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# No skip: the adapter's import fails loudly (naming the fix) unless dice-ml 0.12 is installed, which is what this
# stage needs. The CARLA environment (dice-ml 0.5) does not run it.
import lapace_plugin.adapters.dice  # noqa: E402,F401
from lapace_plugin import datasets  # noqa: E402

FAST = dict(random_state=0, verbose=False)


def _dice():
    """dice_ml and the adapter, imported when a fixture needs them (never under another dice-ml version)."""
    import dice_ml

    from lapace_plugin.adapters.dice import LapaceDice

    return dice_ml, LapaceDice


@contextlib.contextmanager
def one_torch_thread():
    """Small L-GMVAEs train as fast on one thread, and far faster when the cores are shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def _torch_threads():
    with one_torch_thread():
        yield


@dataclass
class Setup:
    """A DiCE data/model pair, the fitted LAPACE-backed explainer and some queries."""

    data: Any  # dice_ml.Data
    model: Any  # dice_ml.Model
    explainer: Any  # lapace_plugin.adapters.dice.LapaceDice
    train: pd.DataFrame
    queries: pd.DataFrame
    target: str
    continuous: List[str]
    categorical: List[str]

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The explained model's probabilities on DiCE-format rows (features only)."""
        return self.explainer._predict_proba(frame[self.data.feature_names])


def _pipeline(continuous: List[str], categorical: List[str], estimator: Any) -> Pipeline:
    pre = ColumnTransformer([("num", StandardScaler(), continuous), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    return Pipeline([("pre", pre), ("clf", estimator)])


@pytest.fixture(autouse=True)
def _no_registration_leaks():
    """Every test starts and ends with dice_ml's own dispatch."""
    from lapace_plugin.adapters.dice import unregister

    unregister()
    yield
    unregister()


@pytest.fixture(scope="session")
def adult_data():
    return datasets.load("adult")


@pytest.fixture(scope="session")
def adult(adult_data) -> Setup:
    """Binary: sklearn Pipeline(ColumnTransformer, RandomForest) on 2,000 adult rows."""
    dice_ml, LapaceDice = _dice()
    ds = adult_data
    frame = ds.frame.sample(2200, random_state=0).reset_index(drop=True)
    train, test = frame.iloc[:2000].reset_index(drop=True), frame.iloc[2000:].reset_index(drop=True)
    cont, cat = list(ds.schema.continuous), list(ds.schema.categorical)
    clf = _pipeline(cont, cat, RandomForestClassifier(n_estimators=40, max_depth=10, random_state=0, n_jobs=1))
    clf.fit(train[ds.features], train[ds.target])
    d = dice_ml.Data(dataframe=train, continuous_features=cont, outcome_name=ds.target)
    m = dice_ml.Model(model=clf, backend="sklearn")
    with one_torch_thread():
        exp = LapaceDice(d, m, epochs=15, **FAST)
    return Setup(d, m, exp, train, test[ds.features].iloc[:40].reset_index(drop=True), ds.target, cont, cat)


class AgeRule(BaseEstimator, ClassifierMixin):
    """A transparent binary model: P(class 1) rises with age only (logistic around 40 years)."""

    def fit(self, X, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        age = pd.to_numeric(X["age"]).to_numpy(float)
        p1 = 1.0 / (1.0 + np.exp(-(age - 40.0) / 2.0))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X):
        return self.predict_proba(X).argmax(1)


@pytest.fixture(scope="session")
def rule(adult_data) -> Setup:
    """Binary model that depends on age alone: which counterfactuals exist is known in advance."""
    dice_ml, LapaceDice = _dice()
    ds = adult_data
    train = ds.frame.sample(800, random_state=1).reset_index(drop=True)
    model = AgeRule().fit(train[ds.features])
    train[ds.target] = model.predict(train[ds.features])
    d = dice_ml.Data(dataframe=train, continuous_features=list(ds.schema.continuous), outcome_name=ds.target)
    m = dice_ml.Model(model=model, backend="sklearn")
    with one_torch_thread():
        exp = LapaceDice(d, m, epochs=25, **FAST)
    queries = pd.DataFrame(
        [dict(ds.X.iloc[0], age=28), dict(ds.X.iloc[1], age=55), dict(ds.X.iloc[2], age=33), dict(ds.X.iloc[3], age=62)]
    )[ds.features]
    return Setup(d, m, exp, train, queries, ds.target, list(ds.schema.continuous), list(ds.schema.categorical))


@pytest.fixture(scope="session")
def wine() -> Setup:
    """Multiclass (3 cultivars): Pipeline(StandardScaler, LogisticRegression), all features continuous."""
    dice_ml, LapaceDice = _dice()
    ds = datasets.load("wine")
    frame = ds.frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = frame.iloc[:150].reset_index(drop=True), frame.iloc[150:].reset_index(drop=True)
    cont = list(ds.schema.continuous)
    clf = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=1000))])
    clf.fit(train[ds.features], train[ds.target])
    d = dice_ml.Data(dataframe=train, continuous_features=cont, outcome_name=ds.target)
    m = dice_ml.Model(model=clf, backend="sklearn")
    with warnings.catch_warnings(), one_torch_thread():
        warnings.simplefilter("ignore")
        exp = LapaceDice(d, m, components_per_class=3, epochs=150, **FAST)
    return Setup(d, m, exp, train, test[ds.features].iloc[:12].reset_index(drop=True), ds.target, cont, [])


@pytest.fixture(scope="session")
def german_torch() -> Setup:
    """Binary torch model fed by DiCE's own encoding (backend="PYT", func="ohe-min-max")."""
    dice_ml, LapaceDice = _dice()
    import torch
    ds = datasets.load("german")
    frame = ds.frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = frame.iloc[:900].reset_index(drop=True), frame.iloc[900:].reset_index(drop=True)
    cont = list(ds.schema.continuous)
    d = dice_ml.Data(dataframe=train, continuous_features=cont, outcome_name=ds.target)
    encoded = d.get_ohe_min_max_normalized_data(train[ds.features]).to_numpy(np.float32)
    labels = train[ds.target].to_numpy(np.float32)[:, None]
    with torch.random.fork_rng(devices=[]), one_torch_thread():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(encoded.shape[1], 32), torch.nn.ReLU(), torch.nn.Linear(32, 1), torch.nn.Sigmoid()
        )
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        x, y = torch.from_numpy(encoded), torch.from_numpy(labels)
        for _ in range(150):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy(net(x), y)
            loss.backward()
            opt.step()
    net.eval()
    m = dice_ml.Model(model=net, backend="PYT", func="ohe-min-max")
    with one_torch_thread():
        exp = LapaceDice(d, m, epochs=20, **FAST)
    return Setup(
        d, m, exp, train, test[ds.features].iloc[:15].reset_index(drop=True), ds.target, cont, list(ds.schema.categorical)
    )

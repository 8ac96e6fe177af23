"""Fixtures for the CARLA stage: runs only in the CARLA environment (Python 3.7, carla-recourse 0.0.5).

``import carla`` is unconditional on purpose: outside that environment this stage must fail loudly,
never skip. Build the environment with ``bash .ci/carla_env.sh DIR`` and run
``DIR/bin/python -m pytest tests/carla``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Dict, List

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

import carla  # noqa: E402,F401  (unconditional: a missing carla is an error, not a skip)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from carla.models.api import MLModel  # noqa: E402

from lapace_plugin import datasets  # noqa: E402
from lapace_plugin.adapters.carla import LapaceCarla  # noqa: E402
from lapace_plugin.adapters.carla_benchmark import benchmark_methods, make_methods, select_factuals  # noqa: E402
from lapace_plugin.adapters.carla_data import TabularData, train_torch_mlp  # noqa: E402

# One torch thread: the stage runs on 2 shared cores, where more threads make torch 1.7 much slower.
torch.set_num_threads(1)
logging.getLogger().setLevel(logging.WARNING)  # CARLA configures its root logger at INFO

DATASETS = ("adult", "compas")
MAX_ROWS = 2000  # stratified subsample per dataset, so the whole stage fits in a few minutes
N_FACTUALS = 12
LAPACE_PARAMS: Dict[str, Any] = {"epochs": 40, "random_state": 0}


class CarlaSetup:
    """Data, model, factuals and LAPACE (first/last sharing one fit) for one bundled dataset."""

    def __init__(self, name: str) -> None:
        np.random.seed(0)
        torch.manual_seed(0)
        self.name = name
        self.data = TabularData.from_dataset(datasets.load(name), max_rows=MAX_ROWS, random_state=0)
        self.model = train_torch_mlp(self.data, epochs=20, random_state=0)
        self.factuals = select_factuals(self.model, N_FACTUALS, random_state=0)
        self.first = LapaceCarla(self.model, dict(LAPACE_PARAMS, strategy="first"))
        self.last = LapaceCarla(self.model, dict(LAPACE_PARAMS, strategy="last"), explainer=self.first.lapace_)


_CACHE: Dict[str, CarlaSetup] = {}


def get_setup(name: str) -> CarlaSetup:
    """One ``CarlaSetup`` per dataset for the whole session (LAPACE fits are the slow part)."""
    if name not in _CACHE:
        _CACHE[name] = CarlaSetup(name)
    return _CACHE[name]


@pytest.fixture(scope="session", params=DATASETS)
def carla_setup(request: Any) -> CarlaSetup:
    return get_setup(request.param)


@pytest.fixture(scope="session")
def adult() -> CarlaSetup:
    return get_setup("adult")


@pytest.fixture(scope="session")
def compas() -> CarlaSetup:
    return get_setup("compas")


@pytest.fixture(scope="session")
def benchmark_results(carla_setup: CarlaSetup) -> Dict[str, Any]:
    """CARLA's ``Benchmark(...).run_benchmark()`` for LAPACE first/last and four CARLA baselines."""
    s = carla_setup
    methods = [("LAPACE (first)", lambda: s.first), ("LAPACE (last)", lambda: s.last)]
    methods += make_methods(s.model, ["wachter", "growing-spheres", "cchvae", "face"], cchvae_epochs=2)
    summary, per_factual = benchmark_methods(s.model, s.factuals, methods, seed=0)
    return {"summary": summary, "per_factual": per_factual, "setup": s}


class GatedModel(MLModel):
    """Wraps a CARLA model and grants the favourable class only to rows whose ``race`` is White.

    ``race`` is immutable in the bundled Adult data, so a factual with another race has no reachable
    counterfactual at all: an honest "no valid point" case for the NaN-row contract.
    """

    def __init__(self, inner: Any, gate_column: str) -> None:
        super().__init__(inner.data)
        self._inner = inner
        self._gate = list(inner.feature_input_order).index(gate_column)

    @property
    def feature_input_order(self) -> List[str]:
        return self._inner.feature_input_order

    @property
    def backend(self) -> str:
        return "sklearn"

    @property
    def raw_model(self) -> Any:
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        if isinstance(x, pd.DataFrame):
            x = self.get_ordered_features(x)
        arr = np.asarray(x, dtype=np.float32)
        base = np.asarray(self._inner.predict_proba(arr), dtype=float)
        p1 = base[:, 1] * (arr[:, self._gate] > 0.5)
        return np.stack([1.0 - p1, p1], axis=1)

    def predict(self, x: Any) -> np.ndarray:
        return self.predict_proba(x)[:, 1].reshape((-1, 1))


class GatedSetup:
    """LAPACE on the gated model; factuals: 5 White (reachable) and 5 non-White (unreachable)."""

    def __init__(self, base: CarlaSetup) -> None:
        self.model = GatedModel(base.model, "race_White")
        test = base.data.df_test
        negative = test[self.model.predict_proba(test[self.model.feature_input_order]).argmax(axis=1) == 0]
        white = negative[negative["race_White"] == 1].head(5)
        other = negative[negative["race_White"] == 0].head(5)
        self.factuals = pd.concat([white, other]).reset_index(drop=True)
        self.unreachable = (self.factuals["race_White"] == 0).to_numpy()
        self.method = LapaceCarla(self.model, dict(LAPACE_PARAMS))


@pytest.fixture(scope="session")
def gated(adult: CarlaSetup) -> GatedSetup:
    return GatedSetup(adult)

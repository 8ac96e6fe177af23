"""Tiny hand-made inputs for the core's unit tests: a three-feature schema, an untrained (seeded) L-GMVAE, a fitted
state whose centroids are hand-made rows, a classifier rule, and query batches and candidates built by hand. No
training: each test runs in milliseconds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lapace_plugin.batch import Candidates, QueryBatch
from lapace_plugin.encoding import TabularEncoder
from lapace_plugin.fitted import FittedState
from lapace_plugin.latent import LatentSpace
from lapace_plugin.lgmvae import LGMVAE
from lapace_plugin.schema import FeatureSchema
from lapace_plugin.support import PairSupport

SCHEMA = FeatureSchema(
    continuous=["income", "age"], categorical={"job": ["clerk", "manager"]}, ranges={"income": (0.0, 100.0), "age": (18.0, 68.0)},
    integer=["age"], order=["income", "age", "job"], precision={"income": 1},
)
TRAIN = pd.DataFrame({
    "income": [10.0, 20.0, 30.0, 60.0, 80.0, 90.0], "age": [20, 30, 40, 35, 45, 60],
    "job": ["clerk", "clerk", "manager", "clerk", "manager", "manager"],
})
CENTROIDS = pd.DataFrame({"income": [15.0, 25.0, 70.0, 85.0], "age": [25, 35, 40, 50], "job": ["clerk", "clerk", "manager", "manager"]})
"""Components 0/0, 0/1 (class 0) and 1/0, 1/1 (class 1)."""


def predict_proba(frame: pd.DataFrame) -> np.ndarray:
    """Class 1 when income is at least 50."""
    p = (np.asarray(frame["income"], dtype=float) >= 50).astype(float)
    return np.column_stack([1 - p, p])


def state() -> FittedState:
    """A fitted state with an untrained seeded network and the hand-made centroids (all valid)."""
    encoder = TabularEncoder(SCHEMA, typed=True)
    torch.manual_seed(0)
    model = LGMVAE(encoder.layout, 2, 2, latent_dim=2, hidden=(8,))
    fitted = FittedState(SCHEMA, encoder, [0, 1], model, torch.device("cpu"), PairSupport.fit(SCHEMA, TRAIN, masses=encoder.typed))
    fitted.set_centroids(encoder.encode(CENTROIDS).astype(np.float32), predict_proba(CENTROIDS), np.ones(4, dtype=bool))
    fitted.centroid_validity_initial = 1.0
    return fitted


def space(min_pair_count: int = 0) -> LatentSpace:
    return LatentSpace(state(), predict_proba, min_pair_count)


def batch(queries: pd.DataFrame) -> QueryBatch:
    """Queries predicted 0, asking for class 1 (components 2 and 3)."""
    encoder = TabularEncoder(SCHEMA, typed=True)
    n = len(queries)
    predicted = predict_proba(queries).argmax(1)
    target = np.ones(n, dtype=int)
    return QueryBatch(
        raw=queries, encoded=encoder.encode(queries), predicted=predicted, target=target,
        components=np.tile([2, 3], (n, 1)), usable=np.tile(target != predicted, (2, 1)).T,
    )


def candidates(rows: pd.DataFrame, shape: tuple, valid: np.ndarray) -> Candidates:
    """Candidates of shape ``(n, m, s)`` from raw ``rows`` (C order), with the given validity."""
    encoder = TabularEncoder(SCHEMA, typed=True)
    proba = predict_proba(rows)[:, 1].reshape(shape)
    return Candidates(
        encoded=encoder.encode(rows).reshape(shape + (-1,)), raw=rows.reset_index(drop=True), proba=proba,
        valid=np.asarray(valid, dtype=bool).reshape(shape), repaired=np.zeros(shape, dtype=bool),
        tau=np.broadcast_to(np.linspace(0, 1, shape[2]), shape), reverted=np.zeros(shape, dtype=int),
    )

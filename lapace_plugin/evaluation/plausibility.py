"""Plausibility metrics: LOF among the target class's training rows, yNN, support and consistency violations (SPEC
section 4).

Every metric takes ``(schema, factuals, counterfactuals, ...)``. Rows are compared in
:func:`lapace_plugin.distance.embed`'s space (scaled numeric features, one-hot categories).
"""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional

import numpy as np
import pandas as pd

from ..distance import embed
from .frames import PredictProba, TargetClass, feature_frame, predicted_class, query_ids, targets_per_row


class LOFScore(NamedTuple):
    """Median and mean of ``-score_samples`` of the counterfactuals (about 1 = inlier)."""

    median: float
    mean: float


def training_predictions(schema: Any, X_train: pd.DataFrame, predict_proba: PredictProba, train_pred: Optional[np.ndarray]) -> np.ndarray:
    """The model's class index per training row (``train_pred`` when given, checked for length)."""
    if train_pred is not None:
        train_pred = np.asarray(train_pred, dtype=int)
        if len(train_pred) != len(X_train):
            raise ValueError("train_pred has %d entries for %d training rows" % (len(train_pred), len(X_train)))
        return train_pred
    return predicted_class(predict_proba, feature_frame(X_train, schema))


def lof_scores(
    schema: Any,
    factuals: Optional[pd.DataFrame],
    counterfactuals: pd.DataFrame,
    X_train: pd.DataFrame,
    predict_proba: PredictProba,
    target_class: TargetClass,
    n_neighbors: int = 10,
    train_pred: Optional[np.ndarray] = None,
    deduplicate: bool = True,
    cache: Optional[Dict[Any, Any]] = None,
) -> np.ndarray:
    """LOF outlier score (``-score_samples``) of each counterfactual row; see :func:`plausibility_lof`.

    ``cache``: a dict that keeps the fitted LOF model of each target class, for callers that score several sets of
    counterfactuals against the same training rows (the caller keeps one dict per training set).
    """
    from sklearn.neighbors import LocalOutlierFactor

    ids = query_ids(counterfactuals)
    scores = np.full(len(ids), np.nan)
    if len(ids) == 0:
        return scores
    targets = targets_per_row(target_class, ids, factuals)
    train = embed(schema, feature_frame(X_train, schema))
    train_pred = training_predictions(schema, X_train, predict_proba, train_pred)
    points = embed(schema, feature_frame(counterfactuals, schema))
    for t in np.unique(targets):
        key = (int(t), n_neighbors, deduplicate)
        lof = cache.get(key) if cache is not None else None
        if lof is None:
            reference = train[train_pred == t]
            if deduplicate:
                reference = np.unique(reference, axis=0)
            if len(reference) < 2:
                raise ValueError(
                    "plausibility_lof needs at least 2 distinct training rows predicted as class %d; got %d" % (t, len(reference))
                )
            lof = LocalOutlierFactor(n_neighbors=min(n_neighbors, len(reference) - 1), novelty=True).fit(reference)
            if cache is not None:
                cache[key] = lof
        rows = targets == t
        scores[rows] = -lof.score_samples(points[rows])
    return scores


def plausibility_lof(
    schema: Any,
    factuals: Optional[pd.DataFrame],
    counterfactuals: pd.DataFrame,
    X_train: pd.DataFrame,
    predict_proba: PredictProba,
    target_class: TargetClass,
    n_neighbors: int = 10,
    train_pred: Optional[np.ndarray] = None,
    deduplicate: bool = True,
) -> LOFScore:
    """Local outlier factor of the counterfactuals among training rows of their target class.

    ``LocalOutlierFactor(n_neighbors=10, novelty=True)`` is fitted, per target class, on the **de-duplicated**
    training rows that the model assigns to that class; a counterfactual's score is ``-score_samples`` (about 1 for
    an inlier, larger is worse). ``factuals`` is needed only when ``target_class`` is a per-row sequence;
    ``train_pred`` (the model's class per training row) skips recomputing it; keep ``deduplicate``: duplicate rows
    make LOF explode. Returns ``(median, mean)``, NaN without counterfactuals.
    """
    scores = lof_scores(
        schema, factuals, counterfactuals, X_train, predict_proba, target_class,
        n_neighbors=n_neighbors, train_pred=train_pred, deduplicate=deduplicate,
    )
    if len(scores) == 0:
        return LOFScore(float("nan"), float("nan"))
    return LOFScore(float(np.median(scores)), float(np.mean(scores)))


def ynn_rows(
    schema: Any,
    factuals: Optional[pd.DataFrame],
    counterfactuals: pd.DataFrame,
    X_train: pd.DataFrame,
    predict_proba: PredictProba,
    target_class: TargetClass,
    k: int = 5,
    train_pred: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Share of each counterfactual's ``k`` nearest training rows (Euclidean) that the model assigns to its target."""
    from sklearn.neighbors import NearestNeighbors

    ids = query_ids(counterfactuals)
    if len(ids) == 0:
        return np.zeros(0)
    targets = targets_per_row(target_class, ids, factuals)
    train = embed(schema, feature_frame(X_train, schema))
    train_pred = training_predictions(schema, X_train, predict_proba, train_pred)
    nn = NearestNeighbors(n_neighbors=min(k, len(train))).fit(train)
    neighbours = nn.kneighbors(embed(schema, feature_frame(counterfactuals, schema)), return_distance=False)
    return np.mean(train_pred[neighbours] == targets[:, None], axis=1)


def ynn(
    schema: Any,
    factuals: Optional[pd.DataFrame],
    counterfactuals: pd.DataFrame,
    X_train: pd.DataFrame,
    predict_proba: PredictProba,
    target_class: TargetClass,
    k: int = 5,
    train_pred: Optional[np.ndarray] = None,
) -> float:
    """Mean share of a counterfactual's ``k`` nearest training rows (Euclidean) that the model assigns to its target."""
    shares = ynn_rows(schema, factuals, counterfactuals, X_train, predict_proba, target_class, k=k, train_pred=train_pred)
    return float(np.mean(shares)) if len(shares) else float("nan")


def support_violation_rows(schema: Any, rows: pd.DataFrame, X_train: pd.DataFrame) -> np.ndarray:
    """Whether each raw row holds a pair of states that no training row holds, ``(n_rows,)`` bool.

    A row's states are its categorical and ordinal values and, for each point-mass feature, whether it sits at the
    mass or off it (:mod:`lapace_plugin.support`); every pair of two such features is checked.
    """
    from ..support import PairSupport, states

    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    support = PairSupport.fit(schema, feature_frame(X_train, schema))
    return support.rare(states(schema, feature_frame(rows, schema)), min_count=1)


def support_violations(schema: Any, factuals: Optional[pd.DataFrame], counterfactuals: pd.DataFrame, X_train: pd.DataFrame) -> float:
    """Share of counterfactuals holding a pair of values that never occur together in the training rows ``X_train``.

    Pairs are taken over the categorical values, the ordinal values and the at-mass / off-mass state of the
    point-mass features (``schema.point_mass``); see :func:`support_violation_rows`. ``factuals`` is not used (the
    argument keeps the metrics' common order). NaN without counterfactuals. Compare it with the same share among
    real held-out rows (``support_violations(schema, None, X_test, X_train)``): real people also hold rare pairs.
    """
    flags = support_violation_rows(schema, counterfactuals, X_train)
    return float(np.mean(flags)) if len(flags) else float("nan")


def consistency_violation_rows(
    schema: Any, factuals: Optional[pd.DataFrame], counterfactuals: pd.DataFrame, target_class: TargetClass, explainer: Any
) -> np.ndarray:
    """Whether each counterfactual scores above its target class's threshold under a fitted LAPACE's learned
    consistency check (:mod:`lapace_plugin.consistency`; ``explainer``: a fitted ``Lapace`` or its ``state_``), ``(n,)``
    bool; NaN for every row without an explainer. Compare with :func:`heldout_consistency_violations`."""
    if explainer is None:
        return np.full(len(counterfactuals), np.nan)
    if len(counterfactuals) == 0:
        return np.zeros(0, dtype=bool)
    targets = targets_per_row(target_class, query_ids(counterfactuals), factuals)
    rows = schema.validate(feature_frame(counterfactuals, schema), name="counterfactuals")
    return getattr(explainer, "state_", explainer).inconsistent(rows, targets)


def consistency_violations(
    schema: Any, factuals: Optional[pd.DataFrame], counterfactuals: pd.DataFrame, target_class: TargetClass, explainer: Any
) -> float:
    """Share of counterfactuals the learned consistency check rejects (:func:`consistency_violation_rows`)."""
    flags = consistency_violation_rows(schema, factuals, counterfactuals, target_class, explainer)
    return float(np.mean(flags)) if len(flags) else float("nan")


def heldout_consistency_violations(schema: Any, rows: pd.DataFrame, classes: Any, explainer: Any) -> float:
    """The same share among real held-out ``rows`` with their class indices ``classes``: the reference (about 1% by
    construction of the thresholds, more on rows the fit never saw)."""
    if explainer is None or not len(rows):
        return float("nan")
    return float(np.mean(getattr(explainer, "state_", explainer).inconsistent(schema.validate(feature_frame(rows, schema)), classes)))

"""The metrics of SPEC section 4, in one place: every metric function, and the registry the study loops over.

Every metric takes ``(schema, factuals, counterfactuals, ...)``: a :class:`~lapace_plugin.FeatureSchema`, the raw
factual frame (its index holds the query ids) and the raw counterfactual frame (a ``query`` column or index level
links each row to its factual), then what the metric needs (the classifier, targets, training rows, ...). They work
on the output of any method. Metrics that average over nothing return NaN.

``METRICS`` maps a result column to its label, its direction and how to compute it from an :class:`Evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

from ..constraints import CHANGE_TOL, KINDS
from ..distance import feature_distances, pairwise, parts
from .closeness import changed, diversity, features_changed, proximity_l1, proximity_l2, sparsity
from .frames import (
    QUERY,
    PredictProba,
    TargetClass,
    feature_frame,
    matched_factuals,
    predicted_class,
    query_ids,
    targets_per_row,
)
from .plausibility import LOFScore, lof_scores, plausibility_lof, ynn
from .robustness import (
    input_robustness,
    input_robustness_per_query,
    model_robustness,
    model_robustness_all,
    perturb_factuals,
    retrain_models,
    set_distance,
)
from .validity import coverage, runtime_per_query, validity
from .violations import constraint_table, constraint_violations

__all__ = [
    "CHANGE_TOL", "KINDS", "QUERY", "LOFScore", "METRICS", "Evaluation", "Metric", "PredictProba", "TargetClass",
    "changed", "constraint_table", "constraint_violations", "coverage", "diversity", "feature_distances",
    "feature_frame", "features_changed", "input_robustness", "input_robustness_per_query", "lof_scores",
    "matched_factuals", "model_robustness", "model_robustness_all", "pairwise", "parts", "perturb_factuals",
    "plausibility_lof", "predicted_class", "proximity_l1", "proximity_l2", "query_ids", "retrain_models",
    "runtime_per_query", "set_distance", "sparsity", "targets_per_row", "validity", "ynn",
]


@dataclass
class Evaluation:
    """What the registry's metrics need about one method's run on one dataset."""

    schema: Any
    factuals: pd.DataFrame
    counterfactuals: pd.DataFrame
    predict_proba: PredictProba
    targets: pd.Series  # target class index per query id
    X_train: pd.DataFrame
    train_pred: np.ndarray
    retrained: Sequence[Any] = ()
    regenerate: Optional[Callable[[pd.DataFrame], pd.DataFrame]] = None  # counterfactuals of perturbed queries
    seed: int = 0
    sigma: float = 0.1
    extra: Dict[str, Any] = field(default_factory=dict)


class Metric(NamedTuple):
    """A result column: its label, direction (+1 higher is better, -1 lower is better) and computation.

    ``compute`` is ``None`` for columns the study fills itself (LOF scores every method with one model, runtime).
    """

    label: str
    better: int
    compute: Optional[Callable[[Evaluation], float]] = None


METRICS: Dict[str, Metric] = {
    "validity": Metric("validity", +1, lambda e: validity(e.schema, e.factuals, e.counterfactuals, e.predict_proba, e.targets)),
    "proximity_l1": Metric("proximity (L1)", -1, lambda e: proximity_l1(e.schema, e.factuals, e.counterfactuals)),
    "proximity_l2": Metric("proximity (L2)", -1, lambda e: proximity_l2(e.schema, e.factuals, e.counterfactuals)),
    "sparsity": Metric("sparsity (share changed)", -1, lambda e: sparsity(e.schema, e.factuals, e.counterfactuals)),
    "lof_median": Metric("LOF median", -1),
    "lof_mean": Metric("LOF mean", -1),
    "ynn": Metric("yNN", +1, lambda e: ynn(e.schema, e.factuals, e.counterfactuals, e.X_train, e.predict_proba, e.targets, train_pred=e.train_pred)),
    "diversity": Metric("diversity", +1, lambda e: diversity(e.schema, e.factuals, e.counterfactuals)),
    "input_robustness": Metric(
        "input robustness (0 best)", -1,
        lambda e: input_robustness(e.schema, e.factuals, e.counterfactuals, e.regenerate, sigma=e.sigma, random_state=e.seed),
    ),
    "model_robustness": Metric(
        "model robustness (pairs)", +1, lambda e: model_robustness(e.schema, e.factuals, e.counterfactuals, e.retrained, e.targets)
    ),
    "model_robustness_all": Metric(
        "model robustness (all R)", +1, lambda e: model_robustness_all(e.schema, e.factuals, e.counterfactuals, e.retrained, e.targets)
    ),
    "constraint_violations": Metric(
        "constraint violations", -1, lambda e: constraint_violations(e.schema, e.factuals, e.counterfactuals, "schema")
    ),
    "coverage": Metric("coverage", +1, lambda e: coverage(e.schema, e.factuals, e.counterfactuals)),
    "runtime_per_query": Metric("seconds per query (log)", -1),
}

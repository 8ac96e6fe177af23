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

from ..constraints import KINDS
from ..distance import feature_distances, pairwise, parts
from ..rules import CHANGE_TOL
from .closeness import (
    changed,
    diversity,
    diversity_per_query,
    features_changed,
    option_diversity,
    option_diversity_per_query,
    proximity_l1,
    proximity_l1_rows,
    proximity_l2,
    proximity_l2_rows,
    sparsity,
)
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
from .plausibility import (
    LOFScore,
    consistency_violation_rows,
    consistency_violations,
    heldout_consistency_violations,
    lof_scores,
    plausibility_lof,
    support_violation_rows,
    support_violations,
    ynn,
    ynn_rows,
)
from .robustness import (
    input_robustness,
    input_robustness_per_query,
    model_robustness,
    model_robustness_all,
    perturb_factuals,
    retrain_models,
    retrained_predictions,
    set_distance,
    validity_matrix,
)
from .validity import coverage, covered, runtime_per_query, valid_rows, validity
from .violations import constraint_table, constraint_violation_rows, constraint_violations

__all__ = [
    "CHANGE_TOL", "KINDS", "QUERY", "LOFScore", "METRICS", "Evaluation", "Metric", "PredictProba", "TargetClass",
    "changed", "constraint_table", "constraint_violation_rows", "constraint_violations", "coverage", "covered",
    "diversity", "diversity_per_query", "feature_distances", "feature_frame", "features_changed", "input_robustness",
    "input_robustness_per_query", "lof_scores", "matched_factuals", "model_robustness", "model_robustness_all",
    "option_diversity", "option_diversity_per_query",
    "pairwise", "parts", "perturb_factuals", "plausibility_lof", "predicted_class", "proximity_l1",
    "proximity_l1_rows", "proximity_l2", "proximity_l2_rows", "query_ids", "retrain_models", "retrained_predictions",
    "runtime_per_query", "set_distance", "sparsity", "support_violation_rows", "support_violations",
    "consistency_violation_rows", "consistency_violations", "heldout_consistency_violations",
    "targets_per_row", "valid_rows", "validity", "validity_matrix", "ynn", "ynn_rows",
]

COUNTERFACTUAL, QUERY_LEVEL, RUN = "counterfactual", "query", "run"
AGGREGATES: Dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"),
    "median": lambda v: float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan"),
    "sum": lambda v: float(np.nansum(v)),
}


@dataclass
class Evaluation:
    """What the registry's metrics need about one method's run on one dataset.

    ``regenerated`` holds the counterfactuals of the perturbed queries (:func:`perturb_factuals` with ``seed`` and
    ``sigma``) once made; otherwise ``regenerate`` makes them on first use. ``shared`` keeps fitted reference models
    (LOF per target class): pass one dict to every evaluation on the same training rows and model. ``judge``: the
    fitted ``Lapace`` whose learned consistency check judges every method's counterfactuals (``None``: that metric is
    NaN). ``cache`` holds this evaluation's own intermediate results.
    """

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
    regenerated: Optional[pd.DataFrame] = None
    shared: Dict[Any, Any] = field(default_factory=dict)
    judge: Any = None
    cache: Dict[Any, Any] = field(default_factory=dict)

    def perturbed(self) -> pd.DataFrame:
        """The perturbed copies of the factuals (same index)."""
        return perturb_factuals(self.schema, self.factuals, sigma=self.sigma, random_state=self.seed)

    def regenerated_counterfactuals(self) -> pd.DataFrame:
        """Counterfactuals of the perturbed factuals (made once, then kept in ``regenerated``)."""
        if self.regenerated is None:
            if self.regenerate is None:
                raise ValueError("input robustness needs the counterfactuals of the perturbed queries: pass regenerate or regenerated")
            self.regenerated = self.regenerate(self.perturbed())
        return self.regenerated

    def retrained_validity(self) -> np.ndarray:
        """``(n_counterfactuals, R)`` validity under the retrained models (computed once)."""
        if "retrained_validity" not in self.cache:
            self.cache["retrained_validity"] = validity_matrix(
                self.schema, self.factuals, self.counterfactuals, self.retrained, self.targets
            )
        return self.cache["retrained_validity"]


def _input_robustness_rows(e: Evaluation) -> np.ndarray:
    again = e.regenerated_counterfactuals()
    per_query = input_robustness_per_query(e.schema, e.factuals, e.counterfactuals, lambda _: again, e.sigma, e.seed)
    return per_query.to_numpy(dtype=float)


class Metric(NamedTuple):
    """A result column: its label, direction (+1 higher is better, -1 lower is better) and computation.

    ``rows`` gives one value per counterfactual (``level`` ``"counterfactual"``) or per factual (``"query"``; NaN
    where the metric is undefined for that query); the column is ``aggregate`` (``"mean"``, ``"median"`` or
    ``"sum"``, NaN values left out) of them. ``rows`` is ``None`` for the runtime, which the study measures itself.
    """

    label: str
    better: int
    level: str
    rows: Optional[Callable[[Evaluation], np.ndarray]] = None
    aggregate: str = "mean"

    def compute(self, e: Evaluation) -> float:
        """The column's value for one evaluation: ``aggregate`` of ``rows``."""
        if self.rows is None:
            raise ValueError("%s is measured by the caller, not computed from an Evaluation" % self.label)
        values = np.asarray(self.rows(e), dtype=float)
        if len(values) == 0:
            return float("nan") if self.aggregate != "sum" else 0.0
        return AGGREGATES[self.aggregate](values)


def _changed(e: Evaluation) -> np.ndarray:
    return changed(e.schema, e.factuals, e.counterfactuals)


METRICS: Dict[str, Metric] = {
    "validity": Metric(
        "validity", +1, COUNTERFACTUAL, lambda e: valid_rows(e.schema, e.factuals, e.counterfactuals, e.predict_proba, e.targets)
    ),
    "proximity_l1": Metric("proximity (L1)", -1, COUNTERFACTUAL, lambda e: proximity_l1_rows(e.schema, e.factuals, e.counterfactuals)),
    "proximity_l2": Metric("proximity (L2)", -1, COUNTERFACTUAL, lambda e: proximity_l2_rows(e.schema, e.factuals, e.counterfactuals)),
    "sparsity": Metric("sparsity (share changed)", -1, COUNTERFACTUAL, lambda e: _changed(e).mean(axis=1)),
    "features_changed": Metric("features changed", -1, COUNTERFACTUAL, lambda e: _changed(e).sum(axis=1)),
    "lof_median": Metric(
        "LOF median", -1, COUNTERFACTUAL,
        lambda e: lof_scores(e.schema, e.factuals, e.counterfactuals, e.X_train, e.predict_proba, e.targets,
                             train_pred=e.train_pred, cache=e.shared),
        "median",
    ),
    "lof_mean": Metric(
        "LOF mean", -1, COUNTERFACTUAL,
        lambda e: lof_scores(e.schema, e.factuals, e.counterfactuals, e.X_train, e.predict_proba, e.targets,
                             train_pred=e.train_pred, cache=e.shared),
    ),
    "ynn": Metric(
        "yNN", +1, COUNTERFACTUAL,
        lambda e: ynn_rows(e.schema, e.factuals, e.counterfactuals, e.X_train, e.predict_proba, e.targets, train_pred=e.train_pred),
    ),
    "support_violations": Metric(
        "support violations (share)", -1, COUNTERFACTUAL, lambda e: support_violation_rows(e.schema, e.counterfactuals, e.X_train)
    ),
    "consistency_violations": Metric(  # the cell's typed Lapace (Setup.fit_lapace) judges every method's rows
        "consistency violations (share)", -1, COUNTERFACTUAL,
        lambda e: consistency_violation_rows(e.schema, e.factuals, e.counterfactuals, e.targets, e.judge),
    ),
    "diversity": Metric(
        "diversity", +1, QUERY_LEVEL, lambda e: diversity_per_query(e.schema, e.factuals, e.counterfactuals).to_numpy(dtype=float)
    ),
    "option_diversity": Metric(
        "option diversity (Jaccard)", +1, QUERY_LEVEL,
        lambda e: option_diversity_per_query(e.schema, e.factuals, e.counterfactuals).to_numpy(dtype=float),
    ),
    "input_robustness": Metric("input robustness (0 best)", -1, QUERY_LEVEL, _input_robustness_rows),
    "model_robustness": Metric("model robustness (pairs)", +1, COUNTERFACTUAL, lambda e: e.retrained_validity().mean(axis=1)),
    "model_robustness_all": Metric("model robustness (all R)", +1, COUNTERFACTUAL, lambda e: e.retrained_validity().all(axis=1)),
    "constraint_violations": Metric(
        "constraint violations", -1, COUNTERFACTUAL,
        lambda e: constraint_violation_rows(e.schema, e.factuals, e.counterfactuals, "schema"), "sum",
    ),
    "coverage": Metric("coverage", +1, QUERY_LEVEL, lambda e: covered(e.schema, e.factuals, e.counterfactuals)),
    "runtime_per_query": Metric("seconds per query (log)", -1, RUN),
}
"""The study's metric columns, in table order."""

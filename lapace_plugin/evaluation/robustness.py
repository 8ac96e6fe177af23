"""Robustness metrics: to input perturbation (set distance) and to model retraining (SPEC section 4).

Every metric takes ``(schema, factuals, counterfactuals, ...)``.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import numpy as np
import pandas as pd

from ..distance import pairwise, parts, span
from ..rules import round_to_precision
from .frames import TargetClass, feature_frame, groups, predicted_class, query_ids, targets_per_row

Generate = Callable[[pd.DataFrame], pd.DataFrame]


def perturb_factuals(schema: Any, factuals: pd.DataFrame, sigma: float = 0.1, random_state: Any = None) -> pd.DataFrame:
    """A copy of ``factuals`` whose mutable continuous features get ``N(0, sigma^2)`` noise (scaled units).

    Each perturbed value is clipped to [0, 1] in scaled units, mapped back to raw units and rounded for integer
    features; immutable and categorical features are left untouched. The index is kept.
    """
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    immutable = set(schema.immutable)
    mutable = [f for f in schema.continuous if f not in immutable]
    out = factuals.copy()
    noise = rng.normal(0.0, sigma, size=(len(factuals), len(mutable)))
    for j, f in enumerate(mutable):
        lo, width = float(schema.ranges[f][0]), span(schema, f)
        scaled = np.clip((np.asarray(factuals[f].to_numpy(), dtype=float) - lo) / width + noise[:, j], 0.0, 1.0)
        out[f] = round_to_precision(lo + scaled * width, schema, f, dtype=factuals[f].dtype)
    return out


def set_distance(schema: Any, s: pd.DataFrame, s_prime: pd.DataFrame) -> float:
    """``(1/2|S|) sum_s min_s' ||s - s'||_2 + (1/2|S'|) sum_s' min_s ||s - s'||_2`` (per-feature distance vectors).

    0 when the two sets are equal; NaN when either is empty.
    """
    if len(s) == 0 or len(s_prime) == 0:
        return float("nan")
    dist = pairwise(parts(schema, feature_frame(s, schema)), parts(schema, feature_frame(s_prime, schema)), norm=2)
    return float(0.5 * dist.min(axis=1).mean() + 0.5 * dist.min(axis=0).mean())


def input_robustness_per_query(
    schema: Any,
    factuals: pd.DataFrame,
    counterfactuals: Optional[pd.DataFrame],
    generate: Generate,
    sigma: float = 0.1,
    random_state: Any = 0,
) -> pd.Series:
    """Set distance between each query's counterfactuals and those of its perturbed copy.

    ``generate`` maps a raw query frame to counterfactuals whose query ids are its index labels (e.g.
    ``lambda X: explainer.explain(X).counterfactuals``); ``counterfactuals`` are generated when ``None``. The result
    is indexed like ``factuals``, NaN for a query without counterfactuals before or after.
    """
    if counterfactuals is None:
        counterfactuals = generate(factuals)
    regenerated = generate(perturb_factuals(schema, factuals, sigma=sigma, random_state=random_state))
    before, after = groups(counterfactuals), groups(regenerated)
    values = [
        set_distance(schema, counterfactuals.iloc[before[q]], regenerated.iloc[after[q]]) if q in before and q in after else float("nan")
        for q in factuals.index
    ]
    return pd.Series(values, index=factuals.index, dtype=float, name="input_robustness")


def input_robustness(
    schema: Any,
    factuals: pd.DataFrame,
    counterfactuals: Optional[pd.DataFrame],
    generate: Generate,
    sigma: float = 0.1,
    random_state: Any = 0,
) -> float:
    """Mean of :func:`input_robustness_per_query` over queries with counterfactuals before and after (0 is perfect)."""
    per_query = input_robustness_per_query(schema, factuals, counterfactuals, generate, sigma, random_state).dropna()
    return float(per_query.mean()) if len(per_query) else float("nan")


def retrain_models(make_model: Any, X: Any, y: Any, n: int = 10, leave_out: float = 0.01, random_state: Any = None) -> List[Any]:
    """Retrain a model family ``n`` times with new seeds on perturbed training sets.

    The first ``ceil(n/2)`` models are fitted on bootstrap resamples of ``(X, y)``, the others on ``(X, y)`` with a
    random ``leave_out`` share of the rows (at least one) left out. ``make_model`` is a callable
    ``seed -> unfitted estimator`` or an unfitted sklearn estimator template (cloned, with ``random_state`` set).
    """
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    n_rows = len(X)
    n_boot = (n + 1) // 2
    n_out = max(1, int(round(leave_out * n_rows)))
    models = []
    for i in range(n):
        seed = int(rng.randint(0, 2 ** 31 - 1))
        if i < n_boot:
            rows = rng.randint(0, n_rows, size=n_rows)
        else:
            rows = np.sort(rng.choice(n_rows, size=n_rows - n_out, replace=False))
        model = _new_model(make_model, seed)
        model.fit(_take(X, rows), _take(y, rows))
        models.append(model)
    return models


def _new_model(make_model: Any, seed: int) -> Any:
    if hasattr(make_model, "fit") and hasattr(make_model, "get_params"):
        from sklearn.base import clone

        model = clone(make_model)
        if "random_state" in model.get_params():
            model.set_params(random_state=seed)
        return model
    return make_model(seed)


def _take(data: Any, rows: np.ndarray) -> Any:
    if isinstance(data, (pd.DataFrame, pd.Series)):
        return data.iloc[rows]
    return np.asarray(data)[rows]


def retrained_predictions(schema: Any, counterfactuals: pd.DataFrame, retrained_models: Sequence[Any]) -> np.ndarray:
    """``(n_counterfactuals, R)`` int: the class index each retrained model assigns to each counterfactual."""
    if len(retrained_models) == 0:
        raise ValueError("model robustness needs at least one retrained model")
    frame = feature_frame(counterfactuals, schema)
    out = np.zeros((len(frame), len(retrained_models)), dtype=int)
    if len(frame):
        for r, model in enumerate(retrained_models):
            out[:, r] = predicted_class(model, frame)
    return out


def validity_matrix(
    schema: Any, factuals: Optional[pd.DataFrame], counterfactuals: pd.DataFrame, retrained_models: Sequence[Any], target_class: TargetClass
) -> np.ndarray:
    """``(n_counterfactuals, R)``: whether counterfactual i stays valid under retrained model r."""
    predictions = retrained_predictions(schema, counterfactuals, retrained_models)
    targets = targets_per_row(target_class, query_ids(counterfactuals), factuals)
    return predictions == targets[:, None]


def model_robustness(
    schema: Any, factuals: Optional[pd.DataFrame], counterfactuals: pd.DataFrame, retrained_models: Sequence[Any], target_class: TargetClass
) -> float:
    """Share of (counterfactual, retrained model) pairs where the counterfactual stays valid; NaN without any."""
    valid = validity_matrix(schema, factuals, counterfactuals, retrained_models, target_class)
    return float(valid.mean()) if valid.size else float("nan")


def model_robustness_all(
    schema: Any, factuals: Optional[pd.DataFrame], counterfactuals: pd.DataFrame, retrained_models: Sequence[Any], target_class: TargetClass
) -> float:
    """Share of counterfactuals valid under every retrained model; NaN without any."""
    valid = validity_matrix(schema, factuals, counterfactuals, retrained_models, target_class)
    return float(valid.all(axis=1).mean()) if len(valid) else float("nan")

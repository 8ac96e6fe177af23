"""Explain settings, classifier and queries shared by ``tests/reference/build.py`` and ``tests/test_reference.py``."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping

import numpy as np
import pandas as pd

DATASETS = ("adult", "compas", "german", "credit", "wine", "breast_cancer")


def design(X: pd.DataFrame, schema: Mapping[str, Any]) -> np.ndarray:
    """Min-max scaled numeric columns and one-hot categories, from a schema's JSON form."""
    cols = []
    for name in schema["order"]:
        if name in schema["categorical"]:
            values = X[name].astype(str).to_numpy()
            cols += [(values == str(c)).astype(float) for c in schema["categorical"][name]]
        else:
            lo, hi = schema["ranges"][name]
            cols.append((X[name].to_numpy(dtype=float) - lo) / ((hi - lo) or 1.0))
    return np.column_stack(cols)


class LinearClassifier:
    """A softmax-linear classifier on :func:`design`, from stored weights (no training code needed)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, schema: Mapping[str, Any]) -> None:
        self.coef, self.intercept, self.schema = coef, intercept, schema

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        logits = design(X, self.schema) @ self.coef.T + self.intercept
        logits -= logits.max(1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(1, keepdims=True)


def query_rows(ds: Any, model: LinearClassifier, n: int = 12) -> pd.DataFrame:
    """``n`` rows from the end of the dataset (outside the training subsample's usual reach), mixed classes."""
    X = ds.X.iloc[-400:]
    pred = model.predict_proba(X).argmax(1)
    picked = list(np.flatnonzero(pred == 0)[: n - 2]) + list(np.flatnonzero(pred != 0)[:2])
    return X.iloc[sorted(picked)]


def _targets(explainer: Any, queries: pd.DataFrame) -> Any:
    if explainer.n_classes_ == 2:
        return None
    return (explainer.predict_proba(queries).argmax(1) + 1) % explainer.n_classes_


def _rich(explainer: Any, queries: pd.DataFrame) -> Dict[str, Any]:
    """A range on the first continuous feature and allowed categories of the first categorical one."""
    schema = explainer.schema_
    out: Dict[str, Any] = {}
    if schema.continuous:
        name = schema.continuous[0]
        lo, hi = schema.ranges[name]
        out["ranges"] = {name: (lo + 0.1 * (hi - lo), lo + 0.9 * (hi - lo))}
    if schema.categorical:
        name, cats = next(iter(schema.categorical.items()))
        out["categories"] = {name: cats[: max(1, (len(cats) + 1) // 2)]}
    return out


def _case(**fixed: Any) -> Callable[[Any, pd.DataFrame], Dict[str, Any]]:
    def settings(explainer: Any, queries: pd.DataFrame) -> Dict[str, Any]:
        out = dict(target_class=_targets(explainer, queries), strategy="first", path="corrected", search="grid", revert=False)
        out.update(fixed)
        if out.get("constraints") == "rich":
            out["constraints"] = _rich(explainer, queries)
        if isinstance(out["target_class"], str):  # "fixed": one class for every query
            out["target_class"] = 1 if explainer.n_classes_ == 2 else 0
        if out["strategy"] == "last":
            for key in ("path", "search", "revert"):
                out.pop(key)
        return out

    return settings


CASES: Dict[str, Callable[[Any, pd.DataFrame], Dict[str, Any]]] = {
    "latent": _case(path="latent"),
    "corrected": _case(),
    "sparse": _case(path="sparse"),
    "fast": _case(search="fast"),
    "latent_fast": _case(path="latent", search="fast"),
    "revert": _case(revert=True),
    "last": _case(strategy="last"),
    "schema_first": _case(constraints="schema"),
    "schema_fast": _case(constraints="schema", search="fast"),
    "schema_revert": _case(constraints="schema", revert=True),
    "schema_last": _case(strategy="last", constraints="schema"),
    "rich_first": _case(constraints="rich"),
    "rich_last": _case(strategy="last", constraints="rich"),
    "two": _case(n_counterfactuals=2),
    "fixed_target": _case(target_class="fixed"),
    "steps": _case(n_steps=5, path="sparse"),
}

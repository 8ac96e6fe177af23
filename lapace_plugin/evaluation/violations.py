"""Constraint violations of any method's counterfactuals, judged by the package's one checker
(:meth:`lapace_plugin.constraints.Constraints.violations`). Every metric takes ``(schema, factuals, counterfactuals, ...)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..constraints import KINDS, Constraints
from .frames import matched_factuals


def constraint_table(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, constraints: Any = "schema") -> pd.DataFrame:
    """Which counterfactual breaks which kind of constraint: a boolean frame, one column per kind in ``KINDS``.

    ``constraints``: ``"schema"`` (the schema's immutable and monotone features), a ``FeatureSchema``, a
    ``Constraints`` or a dict ``{"immutable": [...], "increase": [...], "decrease": [...], "ranges": {f: (lo, hi)},
    "categories": {f: [...]}}``.
    """
    checked = Constraints.coerce(constraints, schema)
    if checked is None:
        return pd.DataFrame(False, index=counterfactuals.index, columns=list(KINDS))
    return checked.violations_by_kind(matched_factuals(factuals, counterfactuals), counterfactuals, schema)


def constraint_violation_rows(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, constraints: Any = "schema") -> np.ndarray:
    """Whether each counterfactual breaks at least one constraint, ``(n_counterfactuals,)`` bool."""
    return constraint_table(schema, factuals, counterfactuals, constraints).any(axis=1).to_numpy(dtype=bool)


def constraint_violations(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, constraints: Any = "schema") -> int:
    """Number of counterfactuals that break at least one constraint (0 is perfect); see :func:`constraint_table`."""
    return int(constraint_violation_rows(schema, factuals, counterfactuals, constraints).sum())

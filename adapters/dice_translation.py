"""The DiCE adapter's argument translation: DiCE's queries and arguments to LAPACE's, LAPACE's counterfactuals back.

:class:`DiceTranslation` is a mixin of :class:`lapace_plugin.adapters.dice.LapaceDice`: it reads the adapter's
``data_interface``, ``explainer`` and feature lists (``_features``, ``_continuous``, ``_categorical``, ``_outcome``,
``_default_ranges``, ``_precision`` and the category maps) and holds no state of its own. How each DiCE argument is
translated is in :mod:`lapace_plugin.adapters.dice`'s docstring.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from lapace_plugin import Constraints
from lapace_plugin.refine import PosthocSparsity
from lapace_plugin.relations import derive
from lapace_plugin.rules import assigned_to


class DiceTranslation:
    """Translate DiCE's arguments to LAPACE's and LAPACE's counterfactuals to DiCE's format (module docstring)."""

    __slots__ = ()  # a mixin: DiCE reassigns __class__, so the instance layout stays ExplainerBase's

    def _query_frame(self, query_instances: Any) -> Tuple[pd.DataFrame, Optional[List[pd.DataFrame]]]:
        """All queries in one frame in the caller's format, and, unless they came as one DataFrame, each
        query's own one-row frame (whose dtypes DiCE gives that query's results)."""
        if isinstance(query_instances, pd.DataFrame):
            rows = None
            frame = query_instances.reset_index(drop=True)
        else:
            if isinstance(query_instances, dict):
                parts = [self.data_interface.query_instance_to_df(query_instances)]
            elif isinstance(query_instances, Iterable) and not isinstance(query_instances, str):
                parts = [
                    self.data_interface.query_instance_to_df(q.to_frame().T if isinstance(q, pd.Series) else q)
                    for q in query_instances
                ]
            else:
                raise ValueError("Query instance should be a dict, a pandas dataframe, a list, or a list of dicts")
            rows = [part.iloc[i : i + 1] for part in parts for i in range(len(part))]
            frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        if len(frame) == 0:
            raise ValueError("no query instances given; pass a DataFrame with at least one row")
        return frame, rows

    def _check_arguments(
        self, features_to_vary: Any, permitted_range: Optional[Mapping[str, Sequence[Any]]], query: pd.DataFrame
    ) -> List[str]:
        """DiCE's checks of ``setup``/``check_query_instance_validity``, for all queries at once."""
        if isinstance(features_to_vary, str) and features_to_vary != "all":
            features_to_vary = [features_to_vary]
        self.data_interface.check_features_to_vary(features_to_vary=features_to_vary)
        for f, allowed in (permitted_range or {}).items():
            if f in self._continuous and (isinstance(allowed, str) or len(list(allowed)) != 2):
                raise ValueError("permitted_range for %r must be [low, high], got %r" % (f, allowed))
        self.data_interface.check_permitted_range(permitted_range)
        varying = list(self._features) if features_to_vary == "all" else list(features_to_vary)
        for column in query.columns:
            if column == self._outcome:
                raise ValueError("Target", self._outcome, "present in query instance")
            if column not in self._features:
                raise ValueError("Feature", column, "not present in training data!")
        missing = [f for f in self._features if f not in query.columns]
        if missing:
            raise ValueError("query instances lack feature(s) %s; expected columns: %s" % (missing, self._features))
        for f in self._categorical:
            known = {str(c) for c in self._default_ranges[f]}
            if not query[f].astype(str).isin(known).all():
                raise ValueError("Feature", f, "has a value outside the dataset.")
        for f, allowed in (permitted_range or {}).items():
            if f in varying:
                continue
            if f in self._continuous:
                values = pd.to_numeric(query[f])
                inside = (values >= allowed[0]) & (values <= allowed[1])
            else:
                inside = query[f].astype(str).isin({str(c) for c in allowed})
            if not inside.all():
                raise ValueError("Feature:", f, "is outside the permitted range and isn't allowed to vary.")
        return varying

    def _dice_format(self, query: pd.DataFrame) -> pd.DataFrame:
        """Feature columns in DiCE's order, categories as str, continuous values numeric."""
        out = pd.DataFrame(index=range(len(query)))
        for f in self._features:
            values = query[f].to_numpy()
            if f in self._categorical:
                out[f] = pd.Series([str(v) for v in values], dtype=object)
            else:
                out[f] = pd.to_numeric(pd.Series(values))
        return out

    def _explainer_format(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[list(self.explainer.schema_.features)].copy()
        for f in self._categorical:
            out[f] = out[f].map(self._to_explainer_cats[f]).astype(object)
        return out

    def _counterfactuals(self, result: Any) -> Tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """LAPACE's counterfactuals in DiCE's format, the query position of each, and its target probability."""
        cf = result.counterfactuals
        qpos = cf.index.get_level_values("query").to_numpy().astype(int)
        target_proba = np.array(result.counterfactuals_with_paths()["probability"].to_numpy(dtype=float))  # writable copy
        out = cf[self._features].reset_index(drop=True)
        for f in self._categorical:
            out[f] = pd.Series([self._from_explainer_cats[f].get(v, str(v)) for v in out[f]], dtype=object)
        return out, qpos, target_proba

    def _constraints(
        self, varying: List[str], permitted_range: Optional[Mapping[str, Sequence[Any]]]
    ) -> Optional[Dict[str, Any]]:
        """DiCE's ``features_to_vary`` and ``permitted_range`` as a LAPACE constraint dict, with the schema's immutable
        and monotone features (its relations and derived features are added by the core)."""
        schema = self.explainer.schema_
        constraints: Dict[str, Any] = {}
        fixed = [f for f in self._features if f not in varying or f in schema.immutable]
        for direction in ("increase", "decrease"):
            moving = [f for f, d in schema.monotone.items() if d == direction and f not in fixed]
            if moving:
                constraints[direction] = moving
        if fixed:
            constraints["immutable"] = fixed
        ranges = {}
        categories = {}
        for f, allowed in (permitted_range or {}).items():
            if f in fixed:
                continue
            if f in self._continuous:
                ranges[f] = (float(allowed[0]), float(allowed[1]))
            else:
                categories[f] = [self._to_explainer_cats[f][str(c)] for c in allowed]
        if ranges:
            constraints["ranges"] = ranges
        if categories:
            constraints["categories"] = categories
        return constraints or None

    def _round(self, cfs: pd.DataFrame) -> Tuple[pd.DataFrame, np.ndarray]:
        """Continuous values at DiCE's decimal precision of each feature, and the rows that rounding changed."""
        cfs = cfs.copy()
        changed = np.zeros(len(cfs), dtype=bool)
        for f in self._continuous:
            if pd.api.types.is_float_dtype(cfs[f]):
                rounded = cfs[f].round(self._precision.get(f, 0))
                changed |= (rounded != cfs[f]).to_numpy()
                cfs[f] = rounded
        return cfs, changed

    def _respects(self, cfs: pd.DataFrame, queries: pd.DataFrame, constraints: Optional[Dict[str, Any]]) -> np.ndarray:
        """Rows that satisfy ``features_to_vary`` and ``permitted_range`` (a guard on the core's output after rounding)."""
        checked = Constraints.coerce(constraints, self.explainer.schema_)
        if checked is None:
            return np.ones(len(cfs), dtype=bool)
        ok = ~checked.broken(self._explainer_format(queries), self._explainer_format(cfs), self.explainer.schema_)
        bad = int((~ok).sum())
        if bad:
            warnings.warn(
                "%d LAPACE counterfactual(s) broke features_to_vary/permitted_range after rounding to DiCE's "
                "precision and were dropped" % bad,
                RuntimeWarning,
                stacklevel=3,
            )
        return ok

    def _consistent(
        self, sparse: pd.DataFrame, cfs: pd.DataFrame, factuals: pd.DataFrame, targets: np.ndarray,
        constraints: Optional[Dict[str, Any]], threshold: float,
    ) -> pd.DataFrame:
        """Sparser rows with their derived features computed again; a row that then breaks a constraint (relations
        included) or falls below ``threshold`` keeps its LAPACE values ``cfs``."""
        schema = self.explainer.schema_
        if not len(sparse) or (not schema.derived and not schema.relations and not constraints):
            return sparse
        derived = derive(schema, self._explainer_format(sparse))
        sparse = sparse.copy()
        for f in schema.derived:
            sparse[f] = derived[f].to_numpy()
        proba = self._predict_proba(sparse)
        good = assigned_to(proba, targets) & (proba[np.arange(len(sparse)), targets] >= threshold)
        checked = Constraints.coerce(constraints, schema)
        if checked is not None:
            good &= ~checked.broken(self._explainer_format(factuals), self._explainer_format(sparse), schema)
        sparse.loc[~good] = cfs.loc[~good]
        return sparse

    # ------------------------------------------------------------------ DiCE's post-hoc sparsity
    def _posthoc_sparsity(self, param: float, algorithm: str, limit_steps: int, threshold: float) -> PosthocSparsity:
        """DiCE's post-hoc step as the core refiner: DiCE's limits (``min(quantile, MAD)``) and decimal precisions."""
        quantiles = self.data_interface.get_quantiles_from_training_data(quantile=param)
        mads = self.data_interface.get_valid_mads()
        limits = {f: min(quantiles[f], mads[f]) for f in quantiles}
        return PosthocSparsity(limits, self._precision, threshold=threshold, algorithm=algorithm, limit_steps=limit_steps)

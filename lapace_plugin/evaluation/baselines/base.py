"""The baselines' common interface (:class:`Baseline`) and the nearest-row search NNCE, DRCE and RobXCE share.

The baselines are **our implementations**, written from the published descriptions (SPEC section 4 and each
module's docstring), not the authors' code.  They share one interface::

    method = NNCE().fit(X_train, predict_proba)
    cfs = method.explain(X, target_class=None, n_counterfactuals=1)   # MultiIndex (query, rank)
    method.failures                                                  # {query: reason}

``explain`` returns raw rows (the training data's columns and dtypes) indexed like LAPACE's
``Explanation.counterfactuals``: ``query`` is the query's index label in ``X`` and ``rank`` (from
0) orders a query's counterfactuals by proximity.  Distances are the ``(1/d)``-L1 distance of
:mod:`lapace_plugin.distance` (continuous features scaled by the schema's ranges, categorical 0/1).
Immutable features are judged by the core's :class:`~lapace_plugin.constraints.Constraints`, the package's one
constraint checker.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ...constraints import Constraints
from ...distance import codes, pairwise, scaled
from ...rules import check_unique_index
from ...schema import FeatureSchema
from ...targets import resolve_targets
from ..frames import predicted_class, probabilities

__all__ = ["Baseline", "assemble"]


class Baseline:
    """Common interface of the baselines: ``fit(X_train, predict_proba)`` then ``explain(X)``.

    Parameters
    ----------
    schema
        Feature schema; inferred from ``X_train`` when ``None``.
    immutable
        ``None`` (no constraint), ``"schema"`` (the schema's immutable features) or a list of
        features: counterfactuals then match their query on these features.

    Attributes
    ----------
    schema_
        The schema used.
    X_train_
        De-duplicated raw training rows (the candidate pool).
    train_pred_
        The model's class index for each row of ``X_train_``.
    n_classes_
        Number of columns of ``predict_proba``.
    failures
        After ``explain``: ``{query label: reason}`` for queries without a counterfactual.
    predicted_class_, target_class_
        After ``explain``: class index per query.
    """

    name = "baseline"

    def __init__(
        self, schema: Optional[FeatureSchema] = None, immutable: Union[None, str, Sequence[str]] = None
    ) -> None:
        self.schema = schema
        self.immutable = immutable
        self.failures: Dict[Any, str] = {}

    # ------------------------------------------------------------------ fitting
    def fit(self, X_train: pd.DataFrame, predict_proba: Any) -> "Baseline":
        """Store the de-duplicated training rows and the model's predictions on them.

        Parameters
        ----------
        X_train
            Raw training features.
        predict_proba
            Classifier callable (raw DataFrame -> (n, L) probabilities).

        Returns
        -------
        Baseline
            ``self``.
        """
        schema = self.schema if self.schema is not None else FeatureSchema.infer(X_train)
        X = schema.validate(X_train, name="X_train").reset_index(drop=True)
        proba = probabilities(predict_proba, X)
        cont, cats = scaled(schema, X), codes(schema, X)
        _, keep = np.unique(np.column_stack([cont, cats]), axis=0, return_index=True)
        keep = np.sort(keep)
        self.schema_ = schema
        self.predict_proba_ = predict_proba
        self.n_classes_ = proba.shape[1]
        self.X_train_ = X.iloc[keep].reset_index(drop=True)
        self.train_pred_ = proba.argmax(axis=1)[keep]
        self._cont, self._codes = cont[keep], cats[keep]
        self.immutable_ = self._immutable_features(schema)
        self.constraints_ = Constraints(immutable=self.immutable_)
        self._allowed_cache: Dict[Tuple[Any, ...], np.ndarray] = {}
        return self

    def _immutable_features(self, schema: FeatureSchema) -> List[str]:
        if self.immutable is None:
            return []
        if isinstance(self.immutable, str):
            if self.immutable != "schema":
                raise ValueError("immutable must be None, 'schema' or a list of features; got %r" % self.immutable)
            return list(schema.immutable)
        schema.check_features(self.immutable, what="immutable feature")
        return list(self.immutable)

    def immutable_broken(self, queries: pd.DataFrame, counterfactuals: pd.DataFrame) -> np.ndarray:
        """Per row of ``counterfactuals`` (aligned with ``queries``), whether it changes an immutable feature."""
        return self.constraints_.broken(queries, counterfactuals, self.schema_)

    def _allowed(self, query: pd.DataFrame) -> np.ndarray:
        """Training rows that keep the one-row ``query``'s immutable features (cached by their values)."""
        key = tuple(query[self.immutable_].iloc[0].tolist())
        if key not in self._allowed_cache:
            factual = query[self.immutable_].iloc[np.zeros(len(self.X_train_), dtype=int)].reset_index(drop=True)
            self._allowed_cache[key] = ~self.immutable_broken(factual, self.X_train_[self.immutable_])
        return self._allowed_cache[key]

    def _check_fitted(self) -> None:
        if not hasattr(self, "X_train_"):
            raise RuntimeError("%s is not fitted yet; call fit(X_train, predict_proba) first" % type(self).__name__)

    # ------------------------------------------------------------------ explaining
    def explain(
        self, X: pd.DataFrame, target_class: Any = None, n_counterfactuals: int = 1
    ) -> pd.DataFrame:
        """Counterfactuals for every row of ``X``.

        Parameters
        ----------
        X
            Raw queries; the index labels are the query ids (must be unique).
        target_class
            Class index in ``predict_proba``'s columns, or one per query; ``None`` means, for a
            binary model, the class each query is not predicted as.
        n_counterfactuals
            Counterfactuals wanted per query (fewer are returned when fewer exist).

        Returns
        -------
        pandas.DataFrame
            Raw rows with a ``(query, rank)`` MultiIndex; failed queries are in ``self.failures``.
        """
        self._check_fitted()
        if int(n_counterfactuals) < 1:
            raise ValueError("n_counterfactuals must be at least 1, got %r" % (n_counterfactuals,))
        queries = self.schema_.validate(X, name="X")
        check_unique_index(queries.index, "queries")
        self.predicted_class_ = predicted_class(self.predict_proba_, queries)
        self.target_class_ = resolve_targets(target_class, self.predicted_class_, list(range(self.n_classes_)))
        self.failures = {}
        rows, owner = self._generate(queries, self.target_class_, int(n_counterfactuals))
        return assemble(rows, owner, queries.index, self.schema_.features)

    def _generate(self, queries: pd.DataFrame, targets: np.ndarray, k: int) -> Tuple[pd.DataFrame, np.ndarray]:
        """Counterfactual rows grouped by query in rank order, and the query position of each row."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared search
    def _candidate_distances(
        self, queries: pd.DataFrame, targets: np.ndarray, chunk: int = 256
    ) -> Iterator[Tuple[int, np.ndarray]]:
        """Yield ``(start, D)``: ``(1/d)``-L1 distances from queries to training rows, ``inf`` where
        the row is not predicted as the query's target or differs on an immutable feature."""
        cont, cats = scaled(self.schema_, queries), codes(self.schema_, queries)
        d = len(self.schema_.features)
        for start in range(0, len(queries), chunk):
            stop = start + chunk
            dist = pairwise((cont[start:stop], cats[start:stop]), (self._cont, self._codes)) / d
            dist[self.train_pred_[None, :] != targets[start:stop, None]] = np.inf
            if self.immutable_:
                for i in range(len(dist)):
                    dist[i, ~self._allowed(queries.iloc[start + i : start + i + 1])] = np.inf
            yield start, dist

    def _no_candidate_reason(self, target: int) -> str:
        if not (self.train_pred_ == target).any():
            return "no training row is predicted as class %d" % target
        return "no training row predicted as class %d has the query's immutable features %s" % (target, self.immutable_)

    def _sorted_candidates(self, dist: np.ndarray, limit: Optional[int] = None) -> np.ndarray:
        """Indices of finite entries of ``dist`` by increasing distance (ties by index), at most ``limit``."""
        finite = np.flatnonzero(np.isfinite(dist))
        if limit is not None and limit < len(finite):
            part = np.argpartition(dist[finite], limit - 1)[:limit]
            finite = np.sort(finite[part])
        return finite[np.lexsort((finite, dist[finite]))]


def assemble(rows: pd.DataFrame, owner: np.ndarray, query_index: pd.Index, features: Sequence[str]) -> pd.DataFrame:
    """Attach the ``(query, rank)`` MultiIndex to rows already grouped by query in rank order."""
    owner = np.asarray(owner, dtype=int)
    rank = pd.Series(owner).groupby(owner).cumcount().to_numpy()
    out = rows[list(features)].reset_index(drop=True)
    out.index = pd.MultiIndex.from_arrays([query_index[owner], rank], names=["query", "rank"])
    return out



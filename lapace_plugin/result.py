"""The result of ``Lapace.explain``: counterfactuals, per-path selections, failures and the paths."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pandas as pd


class Explanation:
    """Counterfactuals for a batch of queries.

    Attributes
    ----------
    counterfactuals
        Valid counterfactuals in the caller's raw format, ranked by proximity to their query, with a
        ``(query, rank)`` MultiIndex; ``query`` is the query's index label.
    queries
        The raw queries.
    predicted_class, target_class
        Class index per query (columns of ``predict_proba``); ``classes`` maps indices to labels.
    failures
        ``{query label: reason}`` for every query without a valid counterfactual.
    shortfalls
        ``{query label: reason}`` for every query with fewer distinct counterfactuals than asked (e.g. "3 of 5 paths
        ended on an option another path gave").
    strategy, n_repaired
        The selection strategy, and how many selected candidates needed constraint repair.
    schema
        The explainer's :class:`~lapace_plugin.schema.FeatureSchema` (``None`` when not given).
    meta
        The settings the explanation was made with (strategy, number of counterfactuals, path resolution, path
        kind, search, reversion, constraints), as alibi's ``Explanation.meta``.
    """

    def __init__(
        self,
        queries: pd.DataFrame,
        selections: pd.DataFrame,
        predicted_class: np.ndarray,
        target_class: np.ndarray,
        classes: List[Any],
        failures: Dict[Any, str],
        strategy: str,
        paths: Callable[[], pd.DataFrame],
        restore_dtypes: Callable[[pd.DataFrame], pd.DataFrame],
        meta: Optional[Dict[str, Any]] = None,
        shortfalls: Optional[Dict[Any, str]] = None,
        schema: Any = None,
    ) -> None:
        self.schema = schema
        self.queries = queries
        self.predicted_class = predicted_class
        self.target_class = target_class
        self.classes = classes
        self.failures = failures
        self.shortfalls: Dict[Any, str] = dict(shortfalls or {})
        self.strategy = strategy
        self.meta: Dict[str, Any] = dict(meta or {})
        self._selections = selections
        self._paths_fn = paths
        self._paths: Optional[pd.DataFrame] = None
        chosen = selections[selections["rank"] >= 0].sort_values(["order", "rank"])
        cf = restore_dtypes(chosen[list(queries.columns)].copy())
        cf.index = pd.MultiIndex.from_arrays([chosen["query"].to_numpy(), chosen["rank"].to_numpy()], names=["query", "rank"])
        self.counterfactuals = cf
        self.n_repaired = int(chosen["repaired"].sum())

    def to_frame(self) -> pd.DataFrame:
        """One row per (query, target component) path: ``query, component, tau, valid, probability,
        repaired, reverted, rank`` (-1 when not returned), ``note`` (why a path's row is not returned: it repeats
        another path's option, the path has no valid point, it is not among the nearest asked for, or the reason a refiner
        gave, :mod:`lapace_plugin.options`) and the selected
        point's features (NaN when the path found no valid point). ``reverted`` counts the features ``revert=True``
        set back to the query's values."""
        return self._selections.drop(columns=["order"]).reset_index(drop=True)

    def counterfactuals_with_paths(self) -> pd.DataFrame:
        """One row per counterfactual, in ``counterfactuals``' order: ``query, rank``, the features (the caller's
        dtypes) and the other :meth:`to_frame` columns of the path that gave it (``component, tau, probability``...)."""
        counterfactuals = self.counterfactuals.reset_index()
        frame = self.to_frame()
        chosen = frame[frame["rank"] >= 0].drop(columns=list(self.counterfactuals.columns))
        chosen = chosen.astype({"query": counterfactuals["query"].dtype, "rank": counterfactuals["rank"].dtype})
        return counterfactuals.merge(chosen, on=["query", "rank"], how="left", validate="one_to_one").reset_index(drop=True)

    @property
    def paths(self) -> pd.DataFrame:
        """Every decoded path point: ``query, component, step, tau, distance`` (to the query), ``probability`` (of the
        target class), ``valid`` (for the call's strategy) and the features: the proximity/robustness curve along tau."""
        if self._paths is None:
            self._paths = self._paths_fn()
        return self._paths

    @property
    def n_queries(self) -> int:
        return len(self.queries)

    @property
    def coverage(self) -> float:
        """Share of queries with at least one valid counterfactual."""
        return 1.0 - len(self.failures) / float(max(1, self.n_queries))

    def for_query(self, query: Any) -> pd.DataFrame:
        """Counterfactuals of one query (empty frame if it failed)."""
        cf = self.counterfactuals
        if query not in set(cf.index.get_level_values("query")):
            return cf.iloc[:0].droplevel("query")
        return cf.xs(query, level="query")

    def to_json(self) -> str:
        """JSON with the queries, their counterfactuals, per-path selections and failures."""
        def records(df: pd.DataFrame) -> List[Dict[str, Any]]:
            return json.loads(df.to_json(orient="records"))

        queries = self.queries.reset_index()
        queries = queries.rename(columns={queries.columns[0]: "query"})
        payload = {
            "strategy": self.strategy,
            "meta": self.meta,
            "classes": [_plain(c) for c in self.classes],
            "queries": records(queries),
            "predicted_class": [int(c) for c in self.predicted_class],
            "target_class": [int(c) for c in self.target_class],
            "counterfactuals": records(self.counterfactuals.reset_index()),
            "paths": records(self.to_frame()),
            "failures": [{"query": _plain(k), "reason": v} for k, v in self.failures.items()],
            "shortfalls": [{"query": _plain(k), "reason": v} for k, v in self.shortfalls.items()],
        }
        return json.dumps(payload)

    def __repr__(self) -> str:
        return "Explanation(%d queries, %d counterfactuals, strategy=%r, %d failed, %d repaired)" % (
            self.n_queries,
            len(self.counterfactuals),
            self.strategy,
            len(self.failures),
            self.n_repaired,
        )


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v

"""Baseline counterfactual methods for the comparative study: NNCE, DRCE and RobXCE.

These are **our implementations**, written from the published descriptions summarised in SPEC
section 4, not the authors' code.  They share one interface::

    method = NNCE().fit(X_train, predict_proba)
    cfs = method.explain(X, target_class=None, n_counterfactuals=1)   # MultiIndex (query, rank)
    method.failures                                                  # {query: reason}

``explain`` returns raw rows (the training data's columns and dtypes) indexed like LAPACE's
``Explanation.counterfactuals``: ``query`` is the query's index label in ``X`` and ``rank`` (from
0) orders a query's counterfactuals by proximity.  Distances are the ``(1/d)``-L1 distance of
:mod:`lapace_plugin.distance` (continuous features scaled by the schema's ranges, categorical 0/1).
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ..distance import codes, feature_distances, pairwise, scaled, span
from ..schema import FeatureSchema
from ..targets import resolve_targets
from .frames import predicted_class, probabilities

__all__ = ["Baseline", "NNCE", "DRCE", "RobXCE", "BASELINES"]

_EPS = 1e-9


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
        self._train_keys = self._immutable_keys(self.X_train_)
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

    def _immutable_keys(self, frame: pd.DataFrame) -> np.ndarray:
        """Immutable feature values as floats (category or level positions for categorical and ordinal features)."""
        cols = []
        levels = getattr(self.schema_, "ordinal", {})
        for f in self.immutable_:
            if f in self.schema_.categorical or f in levels:
                cats = self.schema_.categorical[f] if f in self.schema_.categorical else levels[f]
                cols.append(pd.Categorical(frame[f].to_numpy(), categories=cats).codes)
            else:
                cols.append(frame[f].to_numpy(dtype=float))
        return np.column_stack(cols).astype(float) if cols else np.zeros((len(frame), 0))

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
        if not queries.index.is_unique:
            raise ValueError("the index of X holds the query ids and must be unique")
        self.predicted_class_ = predicted_class(self.predict_proba_, queries)
        self.target_class_ = resolve_targets(target_class, self.predicted_class_, list(range(self.n_classes_)))
        self.failures = {}
        rows, owner = self._generate(queries, self.target_class_, int(n_counterfactuals))
        return _assemble(rows, owner, queries.index, self.schema_.features)

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
        keys = self._immutable_keys(queries)
        d = len(self.schema_.features)
        for start in range(0, len(queries), chunk):
            stop = start + chunk
            dist = pairwise((cont[start:stop], cats[start:stop]), (self._cont, self._codes)) / d
            dist[self.train_pred_[None, :] != targets[start:stop, None]] = np.inf
            if keys.shape[1]:
                differs = (keys[start:stop, None, :] != self._train_keys[None, :, :]).any(axis=2)
                dist[differs] = np.inf
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


def _assemble(rows: pd.DataFrame, owner: np.ndarray, query_index: pd.Index, features: Sequence[str]) -> pd.DataFrame:
    """Attach the ``(query, rank)`` MultiIndex to rows already grouped by query in rank order."""
    owner = np.asarray(owner, dtype=int)
    rank = pd.Series(owner).groupby(owner).cumcount().to_numpy()
    out = rows[list(features)].reset_index(drop=True)
    out.index = pd.MultiIndex.from_arrays([query_index[owner], rank], names=["query", "rank"])
    return out


class NNCE(Baseline):
    """Nearest-neighbour counterfactual explanation (our implementation).

    The counterfactual is the training row nearest to the query, in the ``(1/d)``-L1 distance, that
    the model assigns to the target class; ``n_counterfactuals=k`` returns the ``k`` nearest such
    distinct rows.  See :class:`Baseline` for the parameters.
    """

    name = "nnce"

    def _generate(self, queries: pd.DataFrame, targets: np.ndarray, k: int) -> Tuple[pd.DataFrame, np.ndarray]:
        picked, owner = [], []
        for start, dist in self._candidate_distances(queries, targets):
            for i, row in enumerate(dist):
                q = start + i
                idx = self._sorted_candidates(row, limit=k)
                if len(idx) == 0:
                    self.failures[queries.index[q]] = self._no_candidate_reason(targets[q])
                picked.append(idx)
                owner.append(np.full(len(idx), q))
        picked_all = np.concatenate(picked) if picked else np.zeros(0, dtype=int)
        return self.X_train_.iloc[picked_all], np.concatenate(owner) if owner else np.zeros(0, dtype=int)


class DRCE(Baseline):
    """Diverse robust nearest-neighbour counterfactual explanations (our implementation).

    With ``d*`` the distance from the query to its nearest valid training row, the candidates are
    the valid training rows within ``(1 + alpha) d*`` of the query.  Taken by increasing distance,
    a candidate is kept when it lies at least ``(1 + beta) d*`` from every candidate already kept,
    until ``n_counterfactuals`` are kept.  The first one is NNCE's counterfactual.

    Parameters
    ----------
    schema, immutable
        See :class:`Baseline`.
    alpha
        Radius of the candidate ball, relative to ``d*``.
    beta
        Minimum separation of kept counterfactuals, relative to ``d*``.
    """

    name = "drce"

    def __init__(
        self,
        schema: Optional[FeatureSchema] = None,
        immutable: Union[None, str, Sequence[str]] = None,
        alpha: float = 0.5,
        beta: float = 0.25,
    ) -> None:
        super().__init__(schema=schema, immutable=immutable)
        self.alpha = alpha
        self.beta = beta

    def _generate(self, queries: pd.DataFrame, targets: np.ndarray, k: int) -> Tuple[pd.DataFrame, np.ndarray]:
        picked, owner = [], []
        for start, dist in self._candidate_distances(queries, targets):
            for i, row in enumerate(dist):
                q = start + i
                if not np.isfinite(row).any():
                    self.failures[queries.index[q]] = self._no_candidate_reason(targets[q])
                    continue
                idx = self._diverse(row, k)
                picked.append(idx)
                owner.append(np.full(len(idx), q))
        picked_all = np.concatenate(picked) if picked else np.zeros(0, dtype=int)
        return self.X_train_.iloc[picked_all], np.concatenate(owner) if owner else np.zeros(0, dtype=int)

    def _diverse(self, dist: np.ndarray, k: int) -> np.ndarray:
        """Greedy selection of up to ``k`` training rows for one query's distance row."""
        d_star = float(np.min(dist))
        ball = np.flatnonzero(dist <= (1 + self.alpha) * d_star + _EPS)
        order = ball[np.lexsort((ball, dist[ball]))]
        separation = (1 + self.beta) * d_star - _EPS
        n_features = len(self.schema_.features)
        kept = np.zeros(len(order), dtype=bool)
        nearest_kept = np.full(len(order), np.inf)
        for _ in range(k):
            free = np.flatnonzero(~kept & (nearest_kept >= separation))
            if len(free) == 0:
                break
            j = free[0]
            kept[j] = True
            new = order[j:j + 1]
            gap = pairwise((self._cont[new], self._codes[new]), (self._cont[order], self._codes[order]))[0]
            nearest_kept = np.minimum(nearest_kept, gap / n_features)
        return order[kept]


class RobXCE(Baseline):
    """RobX-style robust counterfactual explanations (our implementation).

    Counterfactual stability of a point ``x`` for target ``t`` is ``mean - std`` of the model's
    probability of ``t`` over ``n_perturbations`` copies of ``x`` whose continuous features get
    ``N(0, sigma^2)`` noise in scaled units (categorical features are not perturbed; one fixed,
    seeded noise matrix is used for every point).  For each query, the ``n_candidates`` nearest
    valid training rows with stability above ``threshold`` are found; from the query towards each
    of them, points are interpolated in steps of ``step`` in the scaled/one-hot space and snapped to
    valid raw rows (integers rounded, ordinal levels rounded, a categorical feature switching at the midpoint); the first
    point that is valid and stable is that candidate's counterfactual (the candidate itself at the
    end).  The ``n_counterfactuals`` closest distinct results are returned.

    Parameters
    ----------
    schema, immutable
        See :class:`Baseline`.
    n_perturbations
        Perturbed copies per stability estimate (the published setting is 1000).
    sigma
        Noise standard deviation in scaled units.
    threshold
        Required stability.
    step
        Interpolation step.
    n_candidates
        Stable training rows to move towards, per query (at least ``n_counterfactuals``).
    max_search
        Nearest valid training rows examined per query when looking for stable ones (``None``: all,
        examined lazily from the nearest outwards; stabilities are cached across queries).
    batch_rows
        Rows per ``predict_proba`` call when estimating stability.
    random_state
        Seed of the noise.
    """

    name = "robxce"

    def __init__(
        self,
        schema: Optional[FeatureSchema] = None,
        immutable: Union[None, str, Sequence[str]] = None,
        n_perturbations: int = 1000,
        sigma: float = 0.1,
        threshold: float = 0.5,
        step: float = 0.05,
        n_candidates: int = 5,
        max_search: Optional[int] = None,
        batch_rows: int = 200000,
        random_state: Any = None,
    ) -> None:
        super().__init__(schema=schema, immutable=immutable)
        self.n_perturbations = n_perturbations
        self.sigma = sigma
        self.threshold = threshold
        self.step = step
        self.n_candidates = n_candidates
        self.max_search = max_search
        self.batch_rows = batch_rows
        self.random_state = random_state

    def fit(self, X_train: pd.DataFrame, predict_proba: Any) -> "RobXCE":
        """See :meth:`Baseline.fit`; also draws the fixed noise matrix ``noise_``."""
        super().fit(X_train, predict_proba)
        rng = np.random.RandomState(self.random_state)
        self.noise_ = rng.normal(0.0, self.sigma, size=(self.n_perturbations, len(self.schema_.continuous)))
        self._stability_cache: Dict[Tuple[Any, int], float] = {}
        return self

    # ------------------------------------------------------------------ stability
    def counterfactual_stability(self, points: pd.DataFrame, target_class: Any) -> np.ndarray:
        """Stability (mean minus std of the target probability under noise) of raw points.

        Parameters
        ----------
        points
            Raw rows.
        target_class
            Class index, or one per row.

        Returns
        -------
        numpy.ndarray
            One stability value per row.
        """
        self._check_fitted()
        targets = np.broadcast_to(np.asarray(target_class, dtype=int), (len(points),))
        n = self.n_perturbations
        per_batch = max(1, self.batch_rows // n)
        out = np.zeros(len(points))
        for s in range(0, len(points), per_batch):
            part = points.iloc[s:s + per_batch]
            proba = probabilities(self.predict_proba_, self._perturbed(part))
            columns = np.repeat(targets[s:s + per_batch], n)
            prob = proba[np.arange(len(columns)), columns].reshape(len(part), n)
            out[s:s + len(part)] = prob.mean(axis=1) - prob.std(axis=1)
        return out

    def _perturbed(self, part: pd.DataFrame) -> pd.DataFrame:
        """``n_perturbations`` noisy copies of each row, row-major (all copies of row 0 first)."""
        n = self.n_perturbations
        big = part.iloc[np.repeat(np.arange(len(part)), n)].reset_index(drop=True)
        for j, f in enumerate(self.schema_.continuous):
            noise = np.tile(self.noise_[:, j], len(part)) * span(self.schema_, f)
            big[f] = big[f].to_numpy(dtype=float) + noise
        return big

    def _cached_stability(self, frame: pd.DataFrame, targets: np.ndarray) -> np.ndarray:
        """Stability with a cache keyed by (raw row, target)."""
        keys = [(row, int(t)) for row, t in zip(map(tuple, frame.to_numpy(dtype=object)), targets)]
        todo = [i for i, key in enumerate(keys) if key not in self._stability_cache]
        todo_unique = list({keys[i]: i for i in todo}.values())
        if todo_unique:
            values = self.counterfactual_stability(frame.iloc[todo_unique], targets[todo_unique])
            for i, v in zip(todo_unique, values):
                self._stability_cache[keys[i]] = float(v)
        return np.array([self._stability_cache[key] for key in keys])

    # ------------------------------------------------------------------ search
    def _generate(self, queries: pd.DataFrame, targets: np.ndarray, k: int) -> Tuple[pd.DataFrame, np.ndarray]:
        n_cand = max(self.n_candidates, k)
        anchors = self._stable_anchors(queries, targets, n_cand)
        pairs = [(q, a) for q in range(len(queries)) for a in anchors[q]]
        for q in range(len(queries)):
            if len(anchors[q]) == 0 and queries.index[q] not in self.failures:
                self.failures[queries.index[q]] = (
                    "no training row predicted as class %d has stability above %g%s"
                    % (targets[q], self.threshold, "" if self.max_search is None else
                       " among the %d nearest" % self.max_search)
                )
        if not pairs:
            return self.X_train_.iloc[:0], np.zeros(0, dtype=int)
        q_pos = np.array([p[0] for p in pairs])
        a_pos = np.array([p[1] for p in pairs])
        points = self._walk(queries.iloc[q_pos], self.X_train_.iloc[a_pos], targets[q_pos])
        return self._closest(queries, q_pos, points, k)

    def _stable_anchors(self, queries: pd.DataFrame, targets: np.ndarray, n_cand: int) -> List[List[int]]:
        """Per query, the ``n_cand`` nearest valid training rows whose stability exceeds the threshold."""
        order = []
        for start, dist in self._candidate_distances(queries, targets):
            for i, row in enumerate(dist):
                idx = self._sorted_candidates(row, limit=self.max_search)
                if len(idx) == 0:
                    self.failures[queries.index[start + i]] = self._no_candidate_reason(targets[start + i])
                order.append(idx)
        anchors: List[List[int]] = [[] for _ in order]
        pointer = np.zeros(len(order), dtype=int)
        chunk = 2 * n_cand
        while True:
            active = [q for q in range(len(order)) if len(anchors[q]) < n_cand and pointer[q] < len(order[q])]
            if not active:
                return anchors
            chunk *= 2  # look further at each round: fewer, larger stability batches
            rows = [order[q][pointer[q]:pointer[q] + chunk] for q in active]
            flat = np.concatenate(rows)
            owners = np.concatenate([np.full(len(r), q) for q, r in zip(active, rows)])
            stability = self._cached_stability(self.X_train_.iloc[flat], targets[owners])
            for q, r, s in zip(active, rows, np.split(stability, np.cumsum([len(r) for r in rows])[:-1])):
                stable = r[s > self.threshold]
                anchors[q].extend(stable[: n_cand - len(anchors[q])].tolist())
                pointer[q] += len(r)

    def _interpolate(self, start: pd.DataFrame, end: pd.DataFrame, lam: np.ndarray) -> pd.DataFrame:
        """Snapped raw points ``start + lam (end - start)`` (rows aligned, ``lam`` per row)."""
        out = end.reset_index(drop=True).copy()
        levels = getattr(self.schema_, "ordinal", {})
        for f in self.schema_.features:
            a, b = start[f].to_numpy(), end[f].to_numpy()
            if f in self.schema_.categorical:
                out[f] = pd.Series(np.where(lam >= 0.5, b, a)).astype(end[f].dtype)
                continue
            if f in levels:  # ordered levels: interpolate the level positions and round to a level
                pa, pb = (np.asarray(pd.Categorical(v, categories=levels[f]).codes, dtype=float) for v in (a, b))
                out[f] = pd.Series(np.asarray(levels[f], dtype=object)[np.round(pa + lam * (pb - pa)).astype(int)]).astype(end[f].dtype)
                continue
            values = a.astype(float) + lam * (b.astype(float) - a.astype(float))
            if f in self.schema_.integer or pd.api.types.is_integer_dtype(end[f].dtype):
                values = np.round(values)
            out[f] = values.astype(end[f].dtype) if pd.api.types.is_integer_dtype(end[f].dtype) else values
        return out

    def _walk(self, starts: pd.DataFrame, anchors: pd.DataFrame, targets: np.ndarray) -> pd.DataFrame:
        """For each (query, anchor) pair, the first valid and stable interpolated point."""
        n_steps = int(round(1.0 / self.step))
        lams = np.arange(1, n_steps) * self.step  # 0.05 .. 0.95; the anchor (1.0) is the fallback
        n_pairs, n_lams = len(starts), len(lams)
        rep = np.repeat(np.arange(n_pairs), n_lams)
        grid = self._interpolate(starts.iloc[rep], anchors.iloc[rep], np.tile(lams, n_pairs))
        valid = (predicted_class(self.predict_proba_, grid) == targets[rep]).reshape(n_pairs, n_lams)
        chosen = np.full(n_pairs, -1)  # grid row chosen per pair, -1 = the anchor itself
        pointer = np.zeros(n_pairs, dtype=int)
        candidates = [np.flatnonzero(v) for v in valid]
        while True:
            active = [p for p in range(n_pairs) if chosen[p] < 0 and pointer[p] < len(candidates[p])]
            if not active:
                break
            rows = np.array([p * n_lams + candidates[p][pointer[p]] for p in active])
            stable = self._cached_stability(grid.iloc[rows], targets[rows // n_lams]) > self.threshold
            for p, row, ok in zip(active, rows, stable):
                if ok:
                    chosen[p] = row
                else:
                    pointer[p] += 1
        both = pd.concat([grid, anchors.reset_index(drop=True)], ignore_index=True)
        source = np.where(chosen >= 0, chosen, len(grid) + np.arange(n_pairs))
        return both.iloc[source].reset_index(drop=True)

    def _closest(
        self, queries: pd.DataFrame, q_pos: np.ndarray, points: pd.DataFrame, k: int
    ) -> Tuple[pd.DataFrame, np.ndarray]:
        """Up to ``k`` distinct points per query, by increasing distance to the query."""
        dist = feature_distances(self.schema_, queries.iloc[q_pos], points).mean(axis=1)
        keys = list(map(tuple, points.to_numpy(dtype=object)))
        keep: List[int] = []
        for q in np.unique(q_pos):
            mine = np.flatnonzero(q_pos == q)
            mine = mine[np.lexsort((mine, dist[mine]))]
            seen = set()
            for i in mine:
                if keys[i] not in seen and len(seen) < k:
                    seen.add(keys[i])
                    keep.append(i)
        keep_arr = np.array(keep, dtype=int)
        return points.iloc[keep_arr], q_pos[keep_arr]


BASELINES = {"nnce": NNCE, "drce": DRCE, "robxce": RobXCE}
"""Baseline classes by the method names used in the study."""

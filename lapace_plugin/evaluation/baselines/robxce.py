"""RobXCE: counterfactuals moved towards training rows whose counterfactual stability exceeds a threshold (RobX)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ...distance import feature_distances, span
from ...schema import FeatureSchema
from ..frames import predicted_class, probabilities
from .base import Baseline


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

"""Refiners: steps after a strategy that move each counterfactual back towards its query while it stays valid.

:class:`Revert` sets whole features back to the query's value (:func:`lapace_plugin.revert.revert_greedy`);
:class:`lapace_plugin.options.Diverse` does so for several points per path and keeps options that change different
features (``diverse=True``).
:class:`PosthocSparsity` is DiCE's post-hoc sparsity step, batched: continuous features move back towards the
query in steps of their precision; it works on raw frames for the DiCE adapter and is not a :class:`Refiner` of
candidates, so it is not in :data:`REFINERS`. A new refiner is one class satisfying
:class:`lapace_plugin.contracts.Refiner` plus one line in :data:`REFINERS`.
"""

from __future__ import annotations

from typing import Any, Callable, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .batch import Candidates, QueryBatch
from .contracts import Refiner, Strategy
from .latent import LatentSpace
from .options import Diverse, judges
from .registry import Registry
from .revert import revert_greedy
from .rules import assigned_to

Predict = Callable[[pd.DataFrame], np.ndarray]


class Revert:
    """Revert unneeded changes of the first valid point of each usable path (``revert=True``); a reverted point keeps
    a target probability of at least ``min_probability`` (the strategy's floor) and, given ``max_lof``, a local outlier
    factor of at most it (:mod:`lapace_plugin.typical`)."""

    def __init__(self, min_probability: float = 0.0, max_lof: Optional[float] = None) -> None:
        self.min_probability, self.max_lof = min_probability, max_lof

    def refine(self, space: LatentSpace, batch: QueryBatch, candidates: Candidates) -> Candidates:
        """Candidates ``(n, m, 1)``: each path's first valid point with features set back while it stays valid."""
        n, m = batch.components.shape
        step = candidates.first_valid(batch.usable)
        found = (step >= 0).reshape(-1)
        chosen = candidates.at(step)
        points = chosen.encoded.reshape(n * m, -1).copy()
        proba = chosen.proba.reshape(-1).copy()
        x = batch.encoded
        q = np.repeat(np.arange(n), m)
        todo = np.flatnonzero(found)
        evaluate, confirm = judges(space, batch, q[todo], self.min_probability, self.max_lof)
        reverted = np.zeros(n * m, dtype=int)
        _, blocks = space.revertible()
        points[todo], proba[todo], reverted[todo] = revert_greedy(
            points[todo], x[q[todo]], proba[todo], blocks, evaluate, confirm=confirm
        )
        shape = (n, m, 1)
        return Candidates(
            encoded=points.reshape(shape + (-1,)),
            raw=space.to_raw(points, x[q], batch.raw.iloc[q]),
            proba=proba.reshape(shape),
            valid=found.reshape(shape),
            repaired=chosen.repaired,
            tau=chosen.tau,
            reverted=reverted.reshape(shape),
        )


class PosthocSparsity:
    """DiCE's post-hoc sparsity step on raw counterfactuals, with one classifier call per feature.

    Features are visited by decreasing ``limits`` (DiCE: ``min(quantile, MAD)`` of each continuous feature); a
    counterfactual's feature is eligible when its distance to the query is at most its limit. All candidate values of
    one feature (steps of ``10 ** -precision``, at most ``limit_steps`` per counterfactual) are scored for all
    counterfactuals in one call. ``"linear"`` keeps the longest valid run of steps from the counterfactual,
    ``"binary"`` the valid candidate closest to the query.

    Parameters
    ----------
    limits
        ``{continuous feature: largest eligible change}``, in raw units; the visiting order follows it.
    precision
        ``{feature: decimals}`` of each feature's values (0 for integers).
    threshold
        Minimum probability of the target class for a moved counterfactual to stay valid.
    algorithm
        ``"linear"`` or ``"binary"``.
    limit_steps
        Most candidate values per counterfactual and feature.
    """

    def __init__(
        self,
        limits: Mapping[str, float],
        precision: Mapping[str, int],
        threshold: float = 0.5,
        algorithm: str = "linear",
        limit_steps: int = 10000,
    ) -> None:
        if algorithm not in ("linear", "binary"):
            raise ValueError("algorithm must be 'linear' or 'binary', got %r" % (algorithm,))
        self.limits, self.precision = dict(limits), dict(precision)
        self.threshold, self.algorithm, self.limit_steps = threshold, algorithm, int(limit_steps)

    def apply(
        self,
        cfs: pd.DataFrame,
        queries: pd.DataFrame,
        targets: np.ndarray,
        predict: Predict,
        features: Optional[Sequence[str]] = None,
        ranges: Optional[Mapping[str, Sequence[Any]]] = None,
    ) -> pd.DataFrame:
        """Sparser copies of raw ``cfs``, row-aligned with their ``queries`` and ``targets``.

        ``features`` limits the features that may move (default: every feature in ``limits``); ``ranges`` are
        ``{feature: (low, high)}`` values a moved feature must stay within.
        """
        order = [f for f, _ in sorted(self.limits.items(), key=lambda kv: kv[1], reverse=True)]
        cfs = cfs.copy()
        for f in order:
            if features is not None and f not in features:
                continue
            decimals = self.precision.get(f, 0)
            step = 10.0 ** -decimals
            current = cfs[f].to_numpy(float)
            diff = queries[f].to_numpy(float) - current
            eligible = (np.abs(diff) <= self.limits[f]) & (np.abs(diff) > 1e-3)
            if not eligible.any():
                continue
            n = np.where(eligible, np.minimum(np.ceil(np.abs(diff) / step - 1e-9), self.limit_steps), 0).astype(int)
            rows = np.repeat(np.arange(len(cfs)), n)
            k = np.arange(len(rows)) - np.repeat(np.cumsum(n) - n, n) + 1
            moved = np.minimum(k * step, np.abs(diff[rows]))
            values = np.round(current[rows] + np.sign(diff[rows]) * moved, decimals)
            inside = np.ones(len(rows), dtype=bool)
            if ranges and f in ranges:
                lo, hi = float(ranges[f][0]), float(ranges[f][1])
                inside = (values >= lo) & (values <= hi)
            candidates = cfs.iloc[rows].reset_index(drop=True)
            candidates[f] = values.astype(cfs[f].dtype)  # integer steps for integer features
            good = is_valid(predict(candidates), targets[rows], self.threshold) & inside
            starts = np.cumsum(n) - n
            groups = np.flatnonzero(n > 0)
            if self.algorithm == "linear":  # longest run of valid steps away from the counterfactual
                key = np.where(good, np.iinfo(np.int64).max, k - 1)
                best = np.minimum.reduceat(key, starts[groups])
                best = np.where(best == np.iinfo(np.int64).max, n[groups], best)
            else:  # "binary": the valid candidate closest to the query
                best = np.maximum.reduceat(np.where(good, k, 0), starts[groups])
            moved_groups = groups[best > 0]
            chosen = starts[moved_groups] + best[best > 0] - 1
            if len(chosen):
                cfs.iloc[moved_groups, cfs.columns.get_loc(f)] = candidates[f].to_numpy()[chosen]
        return cfs


def is_valid(proba: np.ndarray, targets: np.ndarray, threshold: float) -> np.ndarray:
    """Predicted as the target class with at least ``threshold`` probability."""
    if len(proba) == 0:
        return np.zeros(0, dtype=bool)
    own = proba[np.arange(len(proba)), targets]
    return assigned_to(proba, targets) & (own >= threshold)


REFINERS: Registry[Refiner] = Registry("refiner", ("revert", Revert), ("diverse", Diverse))


def refiners_for(settings: Any, strategy: Strategy) -> List[Refiner]:
    """An explain call's refiners: ``diverse`` (which reverts too) or ``revert`` when its ``settings`` ask and the
    strategy takes refiners; they keep the strategy's probability floor and the call's ``max_lof``."""
    if not strategy.refinable or not (settings.diverse or settings.revert):
        return []
    if settings.diverse:
        return [REFINERS.build("diverse", min_probability=strategy.min_probability, max_per_feature=settings.max_per_feature,
                               max_lof=settings.max_lof)]
    return [REFINERS.build("revert", min_probability=strategy.min_probability, max_lof=settings.max_lof)]

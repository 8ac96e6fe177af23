"""Encoding of raw rows into the model's columns and back into valid raw rows.

Layout of an encoded row (``typed=True``, the default decoder):

1. the *numeric block*, ``n_continuous`` columns: every continuous feature min-max scaled to [0, 1] with its range
   (a point-mass feature's value; at the mass, the scaled mass), then every ordinal feature's level ``i / (K - 1)``;
2. one *gate* column per point-mass feature: 1 off the mass, 0 at it;
3. one one-hot group per categorical feature.

With ``typed=False`` (the paper's decoder) every numeric feature is plain continuous, ordinal features are one-hot
groups like categorical ones and there are no gates. :attr:`TabularEncoder.layout` tells the L-GMVAE which decoder
head each column gets.
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Tuple

import numpy as np
import pandas as pd

from .relations import derive
from .rules import decimals_of
from .schema import FeatureSchema


class Layout(NamedTuple):
    """Which decoder head each encoded column gets (see :class:`lapace_plugin.lgmvae.LGMVAE`)."""

    width: int  # encoded row width D
    scalar: Tuple[int, ...]  # numeric columns with one sigmoid output each (squared error)
    masked: Tuple[Tuple[int, int], ...]  # (value column, gate column) of point-mass features: error only off the mass
    gates: Tuple[int, ...]  # gate columns (sigmoid, binary cross-entropy)
    ordinal: Tuple[Tuple[int, int], ...]  # (column, number of levels): cumulative-link head
    groups: Tuple[Tuple[int, int], ...]  # one-hot groups (start, stop): softmax, cross-entropy

    @property
    def plain(self) -> bool:
        """Only the paper's heads: continuous columns first, then one-hot groups."""
        return not (self.masked or self.gates or self.ordinal) and self.scalar == tuple(range(len(self.scalar)))


class TabularEncoder:
    """Encode raw frames as float matrices and decode any matrix back into valid raw rows.

    Parameters
    ----------
    schema
        The feature schema.
    typed
        Give point-mass, discrete and ordinal features their own handling (see the module docstring); ``False`` is the
        paper's encoding (continuous and one-hot only).

    Attributes
    ----------
    numeric
        Features of the numeric block, in column order.
    n_continuous
        Width of the numeric block (its columns come first).
    gates
        ``[(feature, value column, gate column)]`` of point-mass features.
    groups
        ``[(feature, slice)]`` of one-hot groups.
    width
        Encoded row width.
    """

    def __init__(self, schema: FeatureSchema, typed: bool = True) -> None:
        self.schema, self.typed = schema, typed
        ordinal = list(schema.ordinal) if typed else []
        self.numeric: List[str] = list(schema.continuous) + ordinal
        self.n_continuous = nc = len(self.numeric)
        lo = [schema.ranges[c][0] for c in schema.continuous] + [0.0] * len(ordinal)
        hi = [schema.ranges[c][1] for c in schema.continuous] + [len(schema.ordinal[c]) - 1.0 for c in ordinal]
        self._lo = np.array(lo, dtype=np.float64)
        self._span = np.where(np.array(hi) > self._lo, np.array(hi) - self._lo, 1.0)
        self._integer = np.array([c in schema.integer or c in ordinal for c in self.numeric], dtype=bool)
        # numbers are rounded to the data's own precision (typed only, so the paper's encoding stays as it was)
        self._decimals = {j: decimals_of(schema, c) for j, c in enumerate(schema.continuous)
                          if typed and c not in schema.integer and decimals_of(schema, c) is not None}
        self._discrete: Dict[int, np.ndarray] = (
            {self.numeric.index(c): np.asarray(v, dtype=np.float64) for c, v in schema.discrete.items()} if typed else {}
        )
        masses = list(schema.point_mass.items()) if typed else []
        self.gates: List[Tuple[str, int, int]] = [(c, self.numeric.index(c), nc + k) for k, (c, _) in enumerate(masses)]
        self._mass_raw = np.array([m for _, m in masses], dtype=np.float64)
        self._mass_scaled = [np.float32((m - self._lo[j]) / self._span[j]) for (_, j, _), (_, m) in zip(self.gates, masses)]
        start = nc + len(self.gates)
        self.groups: List[Tuple[str, slice]] = []
        for name, cats in list(schema.categorical.items()) + ([] if typed else list(schema.ordinal.items())):
            self.groups.append((name, slice(start, start + len(cats))))
            start += len(cats)
        self.width = start
        self._categories = dict(schema.categorical, **schema.ordinal)
        self.feature_names: List[str] = (
            list(self.numeric) + ["%s!=%g" % (c, m) for c, m in masses]
            + ["%s=%s" % (name, cat) for name, sl in self.groups for cat in self._categories[name]]
        )
        self.layout = Layout(
            width=self.width,
            scalar=tuple(j for j in range(len(schema.continuous)) if j not in {v for _, v, _ in self.gates}),
            masked=tuple((v, g) for _, v, g in self.gates),
            gates=tuple(g for _, _, g in self.gates),
            ordinal=tuple((self.numeric.index(c), len(schema.ordinal[c])) for c in ordinal),
            groups=tuple((sl.start, sl.stop) for _, sl in self.groups),
        )

    # ------------------------------------------------------------------ raw -> encoded
    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """Raw frame (validated, any column order) -> float32 array of shape ``(n, width)``."""
        out = np.zeros((len(df), self.width), dtype=np.float32)
        if self.n_continuous:
            raw = np.column_stack([self._numbers(df, c) for c in self.numeric])
            out[:, : self.n_continuous] = (raw - self._lo) / self._span
        for k, (name, _, g) in enumerate(self.gates):
            out[:, g] = df[name].to_numpy(dtype=np.float64) != self._mass_raw[k]
        rows = np.arange(len(df))
        for name, sl in self.groups:
            out[rows, sl.start + self._codes(df, name)] = 1.0
        return out

    def _numbers(self, df: pd.DataFrame, name: str) -> np.ndarray:
        """A numeric-block feature's raw numbers (an ordinal feature's level)."""
        if name in self.schema.ordinal:
            return self._codes(df, name).astype(np.float64)
        return df[name].to_numpy(dtype=np.float64)

    def _codes(self, df: pd.DataFrame, name: str) -> np.ndarray:
        codes = pd.Categorical(df[name], categories=self._categories[name]).codes
        if (codes < 0).any():
            raise ValueError("column %r has values outside its categories %s" % (name, self._categories[name]))
        return np.asarray(codes)

    # ------------------------------------------------------------------ encoded -> valid encoded
    def unscale(self, cont: np.ndarray) -> np.ndarray:
        """Scaled numeric block ``(n, n_continuous)`` -> raw numbers: clipped to the range, rounded to the data's
        precision (integers to units), discrete features at their nearest observed value (ordinal: their level)."""
        raw = np.clip(cont.astype(np.float64), 0.0, 1.0) * self._span + self._lo
        raw[:, self._integer] = np.round(raw[:, self._integer])
        for j, decimals in self._decimals.items():
            raw[:, j] = np.round(raw[:, j], decimals)
        for j, values in self._discrete.items():
            raw[:, j] = _nearest(values, raw[:, j])
        return raw

    def scale(self, raw: np.ndarray) -> np.ndarray:
        """Raw numbers of the numeric block -> scaled values (float32)."""
        return ((raw - self._lo) / self._span).astype(np.float32)

    def _raw_numeric(self, arr: np.ndarray) -> np.ndarray:
        """Raw numbers of encoded rows, point-mass features at their mass where the gate is below one half."""
        raw = self.unscale(arr[:, : self.n_continuous])
        for k, (_, j, g) in enumerate(self.gates):
            raw[:, j] = np.where(arr[:, g] < 0.5, self._mass_raw[k], raw[:, j])
        return raw

    def snap(self, arr: np.ndarray) -> np.ndarray:
        """Project encoded rows onto valid ones: valid numbers (clipped, rounded, observed values, the mass where the
        gate is closed), gates that agree with them, one-hot argmax per group."""
        arr = np.asarray(arr, dtype=np.float32)
        out = np.zeros_like(arr)
        if self.n_continuous:
            out[:, : self.n_continuous] = self.scale(self._raw_numeric(arr))
        rows = np.arange(len(arr))
        for _, sl in self.groups:
            out[rows, sl.start + arr[:, sl].argmax(axis=1)] = 1.0
        return self.settle(out)

    def settle(self, points: np.ndarray) -> np.ndarray:
        """Set every gate from its feature's value (open off the mass), in place; returns ``points``."""
        for (_, j, g), mass in zip(self.gates, self._mass_scaled):
            points[:, g] = points[:, j] != mass
        return points

    def snap_near(self, arr: np.ndarray, factuals: np.ndarray, margin: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
        """``snap``, keeping the factual's value wherever the change would be negligible.

        A gate or group keeps the factual's state unless another state's value beats it by more than ``margin`` (per
        row); then a numeric value within ``tolerance`` (per row, scaled units) of the factual's becomes exactly the
        factual's, where the gate state agrees. With zero margin and tolerance this is ``snap`` with ties going to the
        factual.
        """
        arr = np.array(arr, dtype=np.float32)
        rows = np.arange(len(arr))
        for _, _, g in self.gates:
            own = np.where(factuals[:, g] > 0.5, arr[:, g], 1.0 - arr[:, g])
            keep = own + margin >= 1.0 - own
            arr[keep, g] = factuals[keep, g]
        out = self.snap(arr)
        nc = self.n_continuous
        if nc:
            keep = np.abs(arr[:, :nc] - factuals[:, :nc]) <= tolerance[:, None]
            for _, j, g in self.gates:
                keep[:, j] &= out[:, g] == factuals[:, g]
            out[:, :nc] = np.where(keep, factuals[:, :nc], out[:, :nc])
        for _, sl in self.groups:
            block = arr[:, sl]
            own = block[rows, factuals[:, sl].argmax(1)]
            keep = own + margin >= block.max(1)
            out[keep, sl] = factuals[keep, sl]
        return self.settle(out)

    # ------------------------------------------------------------------ views of encoded rows
    def category_codes(self, arr: np.ndarray) -> np.ndarray:
        """Argmax category index per one-hot group, shape ``(..., n_groups)``."""
        arr = np.asarray(arr)
        codes = np.zeros(arr.shape[:-1] + (len(self.groups),), dtype=np.int64)
        for j, (_, sl) in enumerate(self.groups):
            codes[..., j] = arr[..., sl].argmax(axis=-1)
        return codes

    def parts(self, arr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Snapped encoded rows ``(..., width)`` as :mod:`lapace_plugin.distance` parts: (scaled numbers, codes)."""
        arr = np.asarray(arr)
        return arr[..., : self.n_continuous], self.category_codes(arr)

    def states(self, points: np.ndarray) -> np.ndarray:
        """State codes of snapped rows (:func:`lapace_plugin.support.states`, same columns), ``(n, n_states)``."""
        from .support import state_features

        codes = self.category_codes(points)
        group = {name: j for j, (name, _) in enumerate(self.groups)}
        gate = {name: g for name, _, g in self.gates}
        cols = []
        for f in state_features(self.schema, masses=self.typed):
            if f in gate:
                cols.append(points[:, gate[f]] > 0.5)
            elif f in group:
                cols.append(codes[:, group[f]])
            else:  # a typed ordinal feature's level
                j = self.numeric.index(f)
                cols.append(np.round(points[:, j] * self._span[j]))
        return np.column_stack(cols).astype(np.int64) if cols else np.zeros((len(points), 0), dtype=np.int64)

    def blocks(self) -> List[np.ndarray]:
        """The encoded columns of each feature (a point-mass feature's value and gate together)."""
        gate = {j: g for _, j, g in self.gates}
        out = [np.array([j] + ([gate[j]] if j in gate else [])) for j in range(self.n_continuous)]
        return out + [np.arange(sl.start, sl.stop) for _, sl in self.groups]

    def column(self, name: str) -> Any:
        """A feature's encoded place: its numeric-block column index, or its one-hot group's slice."""
        if name in self.numeric:
            return self.numeric.index(name)
        return dict(self.groups)[name]

    # ------------------------------------------------------------------ encoded -> raw
    def decode(self, arr: np.ndarray, index: object = None) -> pd.DataFrame:
        """Any encoded matrix -> raw DataFrame with the schema's column order and dtypes."""
        arr = np.asarray(arr)
        columns: Dict[str, Any] = {}
        if self.n_continuous:
            raw = self._raw_numeric(arr)
            for j, name in enumerate(self.numeric):
                if name in self.schema.ordinal:
                    columns[name] = np.asarray(self._categories[name], dtype=object)[raw[:, j].astype(int)]
                else:
                    columns[name] = raw[:, j]
        codes = self.category_codes(arr)
        for j, (name, _) in enumerate(self.groups):
            columns[name] = np.asarray(self._categories[name], dtype=object)[codes[:, j]]
        df = pd.DataFrame({name: columns[name] for name in self.schema.features}, index=index)
        return self.restore_dtypes(derive(self.schema, df))

    def restore_dtypes(self, df: pd.DataFrame) -> pd.DataFrame:
        """Cast decoded columns back to the raw dtypes recorded in the schema."""
        for name, dtype in self.schema.dtypes.items():
            if name not in df.columns or str(df[name].dtype) == dtype:
                continue
            if dtype == "category":
                cats = self._categories[name]
                df[name] = pd.Categorical(df[name], categories=cats, ordered=name in self.schema.ordinal)
            else:
                try:
                    df[name] = df[name].astype(dtype)
                except (TypeError, ValueError):
                    pass  # e.g. a pandas extension dtype name numpy does not know: keep the decoded values
        return df


def _nearest(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each ``x`` replaced by the nearest of the sorted ``values`` (ties to the lower one)."""
    i = np.clip(np.searchsorted(values, x), 1, len(values) - 1) if len(values) > 1 else np.zeros(len(x), dtype=int)
    if len(values) == 1:
        return np.full(len(x), values[0])
    lower, upper = values[i - 1], values[i]
    return np.where(x - lower <= upper - x, lower, upper)

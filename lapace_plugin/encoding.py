"""Encoding of raw rows into the model's [0, 1] / one-hot space and back into valid raw rows."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import pandas as pd

from .schema import FeatureSchema


class TabularEncoder:
    """Encode raw frames as float matrices and decode any matrix back into valid raw rows.

    Layout of an encoded row: the continuous features min-max scaled to [0, 1] (in
    ``schema.continuous`` order), then one one-hot group per categorical feature (in
    ``schema.categorical`` order). Binary features are one-hot groups of two.
    """

    def __init__(self, schema: FeatureSchema) -> None:
        self.schema = schema
        self.n_continuous = len(schema.continuous)
        lo = np.array([schema.ranges[c][0] for c in schema.continuous], dtype=np.float64)
        hi = np.array([schema.ranges[c][1] for c in schema.continuous], dtype=np.float64)
        self._lo = lo
        self._span = np.where(hi > lo, hi - lo, 1.0)
        self._integer = np.array([c in schema.integer for c in schema.continuous], dtype=bool)
        self.groups: List[Tuple[str, slice]] = []
        start = self.n_continuous
        for name, cats in schema.categorical.items():
            self.groups.append((name, slice(start, start + len(cats))))
            start += len(cats)
        self.width = start
        self.feature_names: List[str] = list(schema.continuous) + [
            "%s=%s" % (name, cat) for name, cats in schema.categorical.items() for cat in cats
        ]

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """Raw frame (validated, any column order) -> float32 array of shape ``(n, width)``."""
        out = np.zeros((len(df), self.width), dtype=np.float32)
        if self.n_continuous:
            raw = df[self.schema.continuous].to_numpy(dtype=np.float64)
            out[:, : self.n_continuous] = (raw - self._lo) / self._span
        rows = np.arange(len(df))
        for name, sl in self.groups:
            codes = pd.Categorical(df[name], categories=self.schema.categorical[name]).codes
            if (codes < 0).any():
                raise ValueError("column %r has values outside its categories %s" % (name, self.schema.categorical[name]))
            out[rows, sl.start + codes] = 1.0
        return out

    def snap(self, arr: np.ndarray) -> np.ndarray:
        """Project encoded rows onto valid ones: one-hot argmax per group, clipped and rounded continuous."""
        arr = np.asarray(arr, dtype=np.float32)
        out = np.zeros_like(arr)
        if self.n_continuous:
            out[:, : self.n_continuous] = self.scale(self.unscale(arr[:, : self.n_continuous]))
        rows = np.arange(len(arr))
        for _, sl in self.groups:
            out[rows, sl.start + arr[:, sl].argmax(axis=1)] = 1.0
        return out

    def snap_near(self, arr: np.ndarray, factuals: np.ndarray, margin: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
        """``snap``, keeping the factual's value wherever the change would be negligible.

        A continuous value within ``tolerance`` (per row, scaled units) of the factual's becomes exactly the
        factual's, and a group keeps the factual's category unless another category's value beats it by more
        than ``margin`` (per row). With zero margin and tolerance this is ``snap`` with ties going to the factual.
        """
        arr = np.asarray(arr, dtype=np.float32)
        out = self.snap(arr)
        nc = self.n_continuous
        if nc:
            keep = np.abs(arr[:, :nc] - factuals[:, :nc]) <= tolerance[:, None]
            out[:, :nc] = np.where(keep, factuals[:, :nc], out[:, :nc])
        rows = np.arange(len(arr))
        for _, sl in self.groups:
            block = arr[:, sl]
            own = block[rows, factuals[:, sl].argmax(1)]
            keep = own + margin >= block.max(1)
            out[keep, sl] = factuals[keep, sl]
        return out

    def unscale(self, cont: np.ndarray) -> np.ndarray:
        """Scaled continuous block ``(n, n_continuous)`` -> raw values, clipped to the training range and rounded."""
        raw = np.clip(cont.astype(np.float64), 0.0, 1.0) * self._span + self._lo
        raw[:, self._integer] = np.round(raw[:, self._integer])
        return raw

    def scale(self, raw: np.ndarray) -> np.ndarray:
        """Raw continuous block -> scaled values (float32)."""
        return ((raw - self._lo) / self._span).astype(np.float32)

    def category_codes(self, arr: np.ndarray) -> np.ndarray:
        """Argmax category index per categorical group, shape ``(..., n_groups)``."""
        arr = np.asarray(arr)
        codes = np.zeros(arr.shape[:-1] + (len(self.groups),), dtype=np.int64)
        for j, (_, sl) in enumerate(self.groups):
            codes[..., j] = arr[..., sl].argmax(axis=-1)
        return codes

    def parts(self, arr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Snapped encoded rows ``(..., width)`` as :mod:`lapace_plugin.distance` parts: (scaled numbers, codes)."""
        arr = np.asarray(arr)
        return arr[..., : self.n_continuous], self.category_codes(arr)

    def decode(self, arr: np.ndarray, index: object = None) -> pd.DataFrame:
        """Any encoded matrix -> raw DataFrame with the schema's column order and dtypes."""
        arr = np.asarray(arr)
        columns = {}
        if self.n_continuous:
            raw = self.unscale(arr[:, : self.n_continuous])
            for j, name in enumerate(self.schema.continuous):
                columns[name] = raw[:, j]
        codes = self.category_codes(arr)
        for j, (name, _) in enumerate(self.groups):
            cats = np.asarray(self.schema.categorical[name], dtype=object)
            columns[name] = cats[codes[:, j]]
        df = pd.DataFrame({name: columns[name] for name in self.schema.features}, index=index)
        return self.restore_dtypes(df)

    def restore_dtypes(self, df: pd.DataFrame) -> pd.DataFrame:
        """Cast decoded columns back to the raw dtypes recorded in the schema."""
        for name, dtype in self.schema.dtypes.items():
            if name not in df.columns or str(df[name].dtype) == dtype:
                continue
            if dtype == "category":
                df[name] = pd.Categorical(df[name], categories=self.schema.categorical[name])
            else:
                try:
                    df[name] = df[name].astype(dtype)
                except (TypeError, ValueError):
                    pass  # e.g. a pandas extension dtype name numpy does not know: keep the decoded values
        return df

"""Explanation frames compared up to float32 noise, for results that must be the same computed two ways."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd


def assert_frames_close(actual: pd.DataFrame, expected: pd.DataFrame, schema) -> None:
    """``actual`` equals ``expected`` once both went through CSV (``expected``'s columns only).

    Non-numeric columns must match exactly. Numbers may differ by float32 noise: 1e-5 of a feature's range, one unit
    where float32 noise rounds an integer feature the other way at a half, and a relative 1e-4 for probabilities and
    tau. The noise is real: torch 1.7's matrix products (the CARLA environment) round a row differently in batches of
    different sizes (about 1e-7), so a decoded row depends slightly on the rows decoded with it.
    """
    expected = pd.read_csv(io.StringIO(expected.to_csv(index=False)))
    actual = pd.read_csv(io.StringIO(actual.to_csv(index=False)))
    assert set(expected.columns) <= set(actual.columns)
    actual = actual[list(expected.columns)]  # columns added later (such as `note`) are not in a saved reference
    assert len(actual) == len(expected)
    for column in expected.columns:
        a, b = actual[column], expected[column]
        if b.dtype.kind not in "iuf" or a.dtype.kind not in "iuf":
            assert a.astype(str).tolist() == b.astype(str).tolist(), column
            continue
        a, b = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        assert (np.isnan(a) == np.isnan(b)).all(), column
        if column in schema.ranges:
            lo, hi = schema.ranges[column]
            tolerance = 1e-5 * (hi - lo) + (1.0 if column in schema.integer else 0.0)
        else:
            tolerance = 1e-4 * np.abs(b) + 1e-6
        assert (np.abs(a - b) <= tolerance)[~np.isnan(b)].all(), (column, a, b)

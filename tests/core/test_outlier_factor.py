"""The local outlier factor of max_lof (lapace_plugin.typical) on hand-made rows."""

from __future__ import annotations

import numpy as np
import pytest
import tiny
from hypothesis import given, settings
from hypothesis import strategies as st

from lapace_plugin.errors import InvalidParameterError
from lapace_plugin.latent import Members
from lapace_plugin.typical import OutlierFactor


def test_outlier_factor_is_about_one_inside_the_class_larger_far_from_it_and_infinite_without_rows():
    rng = np.random.RandomState(0)
    rows = rng.uniform(size=(200, 3))
    members = Members(np.concatenate([rows, [[0.5, 0.5, 0.5]]]), np.zeros((201, 2), np.float32), np.r_[np.zeros(200, int), 2])
    factor = OutlierFactor()
    inside = factor(members, 2, rows[:50], np.zeros(50, int))
    far = factor(members, 2, rows[:5] + 5.0, np.zeros(5, int))
    assert 0.8 < np.median(inside) < 1.3 and (far > 10).all()
    assert np.isinf(factor(members, 2, rows[:3], np.ones(3, int))).all()  # class 1 keeps a single row


def test_an_explainer_without_kept_rows_says_max_lof_needs_them():
    with pytest.raises(InvalidParameterError, match="neighbours > 0"):
        tiny.space().outlier_factor(np.zeros((1, 4)), np.ones(1, int))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_rows=st.integers(0, 40), d=st.integers(1, 5), n=st.integers(1, 20))
def test_a_rows_factor_does_not_depend_on_the_rows_judged_with_it(seed, n_rows, d, n):
    """The revert memoises each row's verdict, so a row's factor must be the same alone or in any batch."""
    rng = np.random.RandomState(seed)
    rows = np.round(rng.uniform(size=(n_rows, d)), 1)  # repeats: distinct rows are what count
    members = Members(rows, np.zeros((n_rows, 1), np.float32), rng.randint(0, 4, size=n_rows))  # 2 classes of 2 components
    points, target = rng.uniform(-1, 2, size=(n, d)), rng.randint(0, 2, size=n)
    factor = OutlierFactor()
    together = factor(members, 2, points, target)
    alone = np.array([factor(members, 2, points[i:i + 1], target[i:i + 1])[0] for i in range(n)])
    np.testing.assert_allclose(together, alone, rtol=1e-9)
    for t in (0, 1):
        distinct = len(np.unique(rows[members.component // 2 == t], axis=0))
        mine = together[target == t]
        assert np.isinf(mine).all() if distinct < 2 else (np.isfinite(mine) & (mine > 0)).all()

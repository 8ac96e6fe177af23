"""Diverse options (lapace_plugin.options) and reversion with a priority, on hand-made arrays."""

from __future__ import annotations

import numpy as np

from lapace_plugin.options import jaccard_distance, pool_steps
from lapace_plugin.revert import feature_blocks, revert_greedy


def test_pool_steps_take_the_first_valid_step_and_spread_the_rest_up_to_the_last():
    valid = np.zeros((1, 3, 9), dtype=bool)
    valid[0, 0, 2:] = True  # seven valid steps: 2..8
    valid[0, 1, [4, 6]] = True  # two valid steps
    q, c, s = pool_steps(valid, 4)
    assert q.tolist() == [0] * 6
    assert c.tolist() == [0, 0, 0, 0, 1, 1]
    assert s.tolist() == [2, 4, 6, 8, 4, 6]  # path 2 has no valid step and gives nothing


def test_jaccard_distance_of_feature_sets():
    a = np.array([[True, True, False], [True, False, False], [False, False, False]])
    b = np.array([[True, False, False], [False, True, False], [False, False, False]])
    np.testing.assert_allclose(jaccard_distance(a, b), [0.5, 1.0, 0.0])


def test_revert_priority_gives_back_the_prioritised_feature_first():
    # valid while feature 0 or feature 1 keeps its change; probability prefers keeping feature 0
    blocks = feature_blocks(3, [])
    points = np.array([[1.0, 1.0, 1.0]] * 2, dtype=np.float32)
    factuals = np.zeros_like(points)

    def evaluate(rows, moved):
        return (moved[:, 0] != 0) | (moved[:, 1] != 0), 0.5 + 0.3 * (moved[:, 0] != 0) + 0.1 * (moved[:, 1] != 0)

    plain, _, _ = revert_greedy(points, factuals, np.ones(2), blocks, evaluate)
    priority = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # row 0: feature 0 is used by another option
    steered, proba, reverted = revert_greedy(points, factuals, np.ones(2), blocks, evaluate, priority)
    np.testing.assert_array_equal(plain, [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(steered, [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(proba, [0.6, 0.8])
    assert reverted.tolist() == [2, 2]

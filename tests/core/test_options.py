"""Diverse options (lapace_plugin.options) and reversion with a priority, on hand-made arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lapace_plugin.options import jaccard_distance, pool_steps
from lapace_plugin.revert import Memo, feature_blocks, first_confirmed, revert_greedy


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


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), d=st.integers(1, 7), prioritised=st.booleans())
def test_a_confirmed_check_gives_the_reversion_of_the_check_folded_into_evaluate(seed, n, d, prioritised):
    # random points, a cheap check and a costly one; asked only where it decides, the costly one changes nothing
    rng = np.random.RandomState(seed)
    blocks = feature_blocks(d, [])
    points = rng.randint(1, 4, size=(n, d)).astype(np.float32)
    factuals = np.zeros_like(points)
    weights, cut = rng.uniform(-1, 1, size=(2, d)), rng.uniform(-0.5, 0.5, size=2)
    priority = rng.randint(0, 2, size=(n, d)).astype(float) if prioritised else None
    asked, accepted = [], []

    def cheap(rows, moved):
        accepted.append(int((moved @ weights[0] >= cut[0]).sum()))
        return moved @ weights[0] >= cut[0], np.tanh(moved @ weights[0] + rows)  # ties in probability happen

    def costly(rows, moved):
        asked.append(len(rows))
        return moved @ weights[1] >= cut[1]

    def folded(rows, moved):
        valid, p = cheap(rows, moved)
        return valid & (moved @ weights[1] >= cut[1]), p

    expected = revert_greedy(points, factuals, np.ones(n), blocks, folded, priority)
    asked.clear()
    accepted.clear()
    got = revert_greedy(points, factuals, np.ones(n), blocks, cheap, priority, confirm=costly)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
    assert sum(asked) <= sum(accepted)  # only about candidates the cheap check accepts, each at most once


def test_first_confirmed_walks_each_rows_ranking_until_a_candidate_passes():
    rows = np.array([0, 0, 0, 1, 1, 2])
    ranked = np.array([2, 0, 1, 4, 3, 5])  # row 0 prefers candidate 2, then 0, then 1
    asked = []

    def confirm(r, c):
        asked.append(c[:, 0].tolist())
        return np.isin(c[:, 0], [0, 3])  # candidates 0 and 3 pass

    candidates = np.arange(6, dtype=np.float32)[:, None]
    assert first_confirmed(rows, candidates, ranked, confirm).tolist() == [0, 3]
    assert asked == [[2, 4, 5], [0, 3]]  # candidate 1 (after row 0's accepted one) is never asked about
    assert first_confirmed(rows, candidates, ranked).tolist() == [2, 4, 5]


def test_a_memo_asks_its_judge_once_per_owner_and_row():
    calls = []

    def judge(rows, rows_seen):
        calls.append(len(rows))
        return rows_seen[:, 0] > 1, rows_seen[:, 0] * 0.1

    memo, owners = Memo(), np.array([7, 7, 8])
    wrapped = memo.wrap(judge, owners)
    x = np.array([[1.0], [2.0], [2.0]], dtype=np.float32)
    valid, p = wrapped(np.array([0, 1, 2]), x)  # rows 1 and 2: the same row of two owners, both asked
    assert valid.tolist() == [False, True, True] and calls == [3]
    np.testing.assert_allclose(p, [0.1, 0.2, 0.2])
    valid, p = wrapped(np.array([1, 1, 0]), np.array([[2.0], [3.0], [1.0]], dtype=np.float32))
    assert calls == [3, 1] and valid.tolist() == [True, True, False]  # only (7, 3.0) is new
    single = Memo().wrap(lambda r, c: c[:, 0] > 1, owners)
    assert single(np.array([0, 1]), x[:2]).tolist() == [False, True]
    assert single(np.array([1]), x[1:2]).tolist() == [True]

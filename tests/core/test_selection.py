"""Selection (lapace_plugin.selection) on hand-made candidates: ranks, distinct options, notes and reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import tiny

from lapace_plugin.selection import NOTE_DUPLICATE, NOTE_NO_POINT, select

QUERY = pd.DataFrame({"income": [20.0], "age": [30], "job": ["clerk"]})


def rows(*values):
    return pd.DataFrame([dict(zip(("income", "age", "job"), v)) for v in values])


def test_the_nearer_paths_point_ranks_first():
    far, near = (90.0, 60, "manager"), (55.0, 30, "clerk")
    found = tiny.candidates(rows(far, far, near, near), (1, 2, 2), [[[True, True], [True, True]]])
    chosen = select(tiny.space(), tiny.batch(QUERY), found, 2, "first").frame
    assert chosen["rank"].tolist() == [1, 0]
    assert chosen["income"].tolist() == [90.0, 55.0]


def test_a_path_without_a_valid_point_gives_nothing_and_says_so():
    point = (55.0, 30, "clerk")
    found = tiny.candidates(rows(point, point, point, point), (1, 2, 2), [[[False, False], [False, True]]])
    selection = select(tiny.space(), tiny.batch(QUERY), found, 2, "first")
    assert selection.frame["rank"].tolist() == [-1, 0]
    assert selection.frame["note"].tolist()[0] == NOTE_NO_POINT
    assert "1 distinct counterfactual of 2" in selection.shortfalls[0]


def test_a_repeated_option_takes_the_paths_next_new_point_when_distinct():
    same, other = (55.0, 30, "clerk"), (75.0, 30, "clerk")
    found = tiny.candidates(rows(same, same, same, other), (1, 2, 2), np.ones((1, 2, 2), dtype=bool))
    chosen = select(tiny.space(), tiny.batch(QUERY), found, 2, "first", distinct=True).frame
    assert sorted(chosen["income"].tolist()) == [55.0, 75.0] and (chosen["rank"] >= 0).all()


def test_a_repeated_row_gives_nothing_without_distinct():
    same, other = (55.0, 30, "clerk"), (75.0, 30, "clerk")
    found = tiny.candidates(rows(same, same, same, other), (1, 2, 2), np.ones((1, 2, 2), dtype=bool))
    chosen = select(tiny.space(), tiny.batch(QUERY), found, 2, "first", distinct=False).frame
    assert (chosen["rank"] >= 0).sum() == 1
    assert chosen["note"].str.startswith(NOTE_DUPLICATE.split("%")[0]).sum() == 1


def test_a_query_without_any_point_fails_with_the_reason():
    point = (55.0, 30, "clerk")
    found = tiny.candidates(rows(point, point), (1, 2, 1), np.zeros((1, 2, 1), dtype=bool))
    selection = select(tiny.space(), tiny.batch(QUERY), found, 2, "first")
    assert selection.failures[0].startswith("no point on any latent path to class 1 is a valid counterfactual for it: "
                                            "each is assigned to another class, implausible or outside the constraints")
    assert "min_probability" not in selection.failures[0]
    robust = select(tiny.space(), tiny.batch(QUERY), found, 2, "robust")
    assert robust.failures[0].endswith("outside the constraints, or under min_probability")
    assert (selection.frame["rank"] == -1).all()

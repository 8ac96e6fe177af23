"""Large batches are explained in chunks of queries: the same results (up to float32 noise), and a clear error when one
query is too big."""

from __future__ import annotations

import pytest

from fitted import ADULT_CONSTRAINTS, unfavourable
from frames import assert_frames_close

SETTINGS = [
    dict(),
    dict(search="fast"),
    dict(revert=True),
    dict(strategy="last", constraints="schema"),
    dict(constraints=ADULT_CONSTRAINTS, search="fast"),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=["grid", "fast", "revert", "last-constrained", "constrained-fast"])
def test_chunked_explanations_equal_one_batch(adult, settings):
    queries = unfavourable(adult, 120)
    whole = adult.explainer.explain(queries, **settings)
    chunked = adult.explainer.explain(queries, max_points=777, **settings)  # 7 queries of 5 x 21 points per chunk
    assert_frames_close(chunked.to_frame(), whole.to_frame(), adult.explainer.schema_)  # float32 noise of torch 1.7
    assert whole.failures == chunked.failures


def test_paths_of_a_chunked_call_are_complete(compas):
    queries = unfavourable(compas, 10)
    paths = compas.explainer.explain(queries, max_points=250).paths
    assert len(paths) == 10 * 5 * 21
    assert paths["query"].drop_duplicates().tolist() == list(queries.index)


def test_a_query_whose_grid_exceeds_the_budget_is_refused_clearly(compas):
    with pytest.raises(ValueError, match="one query's path grid has 105 points.*max_points=100"):
        compas.explainer.explain(unfavourable(compas, 2), max_points=100)

"""The fitted state (lapace_plugin.fitted): derived centroid facts, attributes read from it, the bounded cache."""

from __future__ import annotations

import numpy as np
import pytest
import tiny

from lapace_plugin import Lapace, NotFittedError
from lapace_plugin.fitted import ProjectionCache


def test_centroid_facts_derive_from_the_stored_centroids():
    state = tiny.state()
    assert state.names == ["0/0", "0/1", "1/0", "1/1"]
    assert state.centroid_class.tolist() == [0, 0, 1, 1] and state.centroid_validity == 1.0
    assert state.distinct_centroids == {0: 2, 1: 2}
    state.set_centroids(state.centroid_points, state.centroid_proba, np.array([True, False, True, True]))
    assert state.centroid_validity == 0.75 and state.distinct_centroids == {0: 1, 1: 2}


def test_the_estimators_fitted_attributes_read_the_state():
    explainer = Lapace(components_per_class=2, latent_dim=2, hidden=(8,))
    assert not hasattr(explainer, "centroids_")
    with pytest.raises(NotFittedError, match="not fitted"):
        explainer.transform(tiny.TRAIN)
    explainer.state_ = tiny.state()
    assert explainer.centroids_ is explainer.state_.centroids.raw and explainer.n_classes_ == 2


def test_the_projection_cache_keeps_the_most_recently_used_entries_when_trimmed():
    cache = ProjectionCache(max_entries=2)
    for key in "abc":
        cache[key] = key.upper()
    assert len(cache) == 3  # nothing is dropped within a call
    assert cache["a"] == "A"  # a use makes it recent
    cache.trim()
    assert len(cache) == 2 and "a" in cache and "c" in cache and "b" not in cache

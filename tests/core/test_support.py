"""Pair support (lapace_plugin.support) on a hand-made frame: counts, rare pairs, the factual's own pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lapace_plugin.schema import FeatureSchema
from lapace_plugin.support import PairSupport, state_features, states

SCHEMA = FeatureSchema(
    continuous=["gain"], categorical={"sex": ["F", "M"], "role": ["wife", "husband"]}, ranges={"gain": (0.0, 10.0)},
    point_mass={"gain": 0.0}, order=["sex", "role", "gain"],
)
TRAIN = pd.DataFrame({"sex": ["F", "F", "M", "M", "M"], "role": ["wife", "wife", "husband", "husband", "husband"],
                      "gain": [0.0, 5.0, 0.0, 0.0, 3.0]})


def test_states_are_category_positions_and_point_mass_sides():
    assert state_features(SCHEMA) == ["sex", "role", "gain"] and state_features(SCHEMA, masses=False) == ["sex", "role"]
    assert states(SCHEMA, TRAIN).tolist() == [[0, 0, 0], [0, 0, 1], [1, 1, 0], [1, 1, 0], [1, 1, 1]]


def test_a_pair_no_training_row_holds_is_rare_unless_the_factual_holds_it():
    support = PairSupport.fit(SCHEMA, TRAIN)
    rows = pd.DataFrame({"sex": ["F", "F"], "role": ["husband", "wife"], "gain": [0.0, 0.0]})
    codes = states(SCHEMA, rows)
    assert support.rare(codes, min_count=1).tolist() == [True, False]
    assert support.rare(codes, min_count=2).tolist() == [True, True]  # (F, gain at its mass) is held by one row
    assert support.rare(codes, min_count=1, own=codes).tolist() == [False, False]


def test_counts_survive_the_plain_array_round_trip():
    support = PairSupport.fit(SCHEMA, TRAIN)
    again = PairSupport.from_arrays(SCHEMA, support.to_arrays())
    assert support.counts.keys() == again.counts.keys()
    assert all(np.array_equal(support.counts[k], again.counts[k]) for k in support.counts)

"""Feature types (point mass, discrete, ordinal): detection, encoding, decoder heads and what counterfactuals hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lapace_plugin import FeatureSchema, Lapace, datasets
from lapace_plugin.encoding import TabularEncoder
from lapace_plugin.support import PairSupport, states

from fitted import fitted, unfavourable


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Columns of every type: a 0-inflated amount, a coded answer, an ordered rating, a category, a plain number."""
    rng = np.random.RandomState(seed)
    return pd.DataFrame({
        "amount": np.where(rng.rand(n) < 0.8, 0.0, np.round(rng.lognormal(8, 1, n), 2)),
        "educ": rng.choice([9, 12, 14, 16, 17, 20], n),
        "rating": pd.Categorical(rng.choice(["low", "mid", "high"], n), categories=["low", "mid", "high"], ordered=True),
        "colour": rng.choice(["red", "blue"], n),
        "height": np.round(rng.normal(170, 10, n), 1),
    })


def test_infer_detects_types_with_overridable_thresholds():
    df = _frame()
    schema = FeatureSchema.infer(df)
    assert schema.point_mass == {"amount": 0.0}
    assert schema.discrete == {"educ": [9.0, 12.0, 14.0, 16.0, 17.0, 20.0]}
    assert schema.ordinal == {"rating": ["low", "mid", "high"]}  # an ordered pandas Categorical
    assert schema.categorical == {"colour": ["blue", "red"]}
    assert schema.precision["height"] == 1 and schema.precision["amount"] == 2
    assert schema.kind("height") == "continuous" and schema.kind("educ") == "discrete"
    off = FeatureSchema.infer(df, discrete_max_values=None, point_mass_min_share=None)
    assert off.point_mass == {} and off.discrete == {}
    strict = FeatureSchema.infer(df, point_mass_min_share=0.9, discrete_max_values=3)
    assert strict.point_mass == {} and strict.discrete == {}
    declared = FeatureSchema.infer(df.assign(rating=df["rating"].astype(str)), ordinal={"rating": ["low", "mid", "high"]})
    assert declared.ordinal == schema.ordinal
    assert FeatureSchema.from_dict(schema.to_dict()) == schema


def test_schema_rejects_inconsistent_type_declarations():
    with pytest.raises(ValueError, match="point_mass features must be continuous"):
        FeatureSchema(continuous=["a"], ranges={"a": (0, 1)}, categorical={"b": ["x"]}, point_mass={"b": 0})
    with pytest.raises(ValueError, match="both ordinal and|both categorical and ordinal"):
        FeatureSchema(categorical={"b": ["x"]}, ordinal={"b": ["x"]})
    with pytest.raises(ValueError, match="ordinal column 'r' has values"):
        FeatureSchema.infer(pd.DataFrame({"r": ["a", "z"]}), ordinal={"r": ["a", "b"]})


def test_encoding_round_trips_every_type_and_snaps_to_valid_values():
    df = _frame()
    schema = FeatureSchema.infer(df)
    enc = TabularEncoder(schema)
    x = enc.encode(df)
    assert enc.width == 3 + 1 + 1 + 2  # amount, educ, height, rating level, amount's gate, colour one-hot
    decoded = enc.decode(x, index=df.index)
    pd.testing.assert_frame_equal(decoded.astype(str), df.astype(str))
    noisy = np.clip(x + np.random.RandomState(1).normal(0, 0.2, x.shape).astype(np.float32), 0, 1)
    raw = enc.decode(enc.snap(noisy))
    assert raw["educ"].isin(schema.discrete["educ"]).all()  # only observed codes
    assert raw["rating"].isin(["low", "mid", "high"]).all()
    assert (raw["height"] == raw["height"].round(1)).all() and (raw["amount"] == raw["amount"].round(2)).all()
    snapped = enc.snap(noisy)
    gate, value = snapped[:, enc.gates[0][2]], snapped[:, enc.gates[0][1]]
    assert ((gate == 0) == (value == snapped[:, enc.gates[0][1]].min())).all() and ((raw["amount"] == 0) == (gate == 0)).all()


def test_paper_encoding_keeps_continuous_and_one_hot_only():
    schema = FeatureSchema.infer(_frame())
    enc = TabularEncoder(schema, typed=False)
    assert enc.gates == [] and enc.layout.plain
    assert enc.width == 3 + 3 + 2  # three numbers, rating and colour one-hot


@pytest.mark.parametrize("typed", [True, False])
def test_state_codes_of_encoded_rows_match_those_of_the_raw_rows_they_decode_to(typed):
    df = _frame()
    schema = FeatureSchema.infer(df, point_mass_min_share=0.5)
    enc = TabularEncoder(schema, typed=typed)
    noisy = enc.encode(df) + np.random.RandomState(1).normal(0, 0.05, (len(df), enc.width)).astype(np.float32)
    points = enc.snap(noisy)
    assert (enc.states(points) == states(schema, enc.decode(points), masses=typed)).all()
    if typed:  # the amount is a state, at its mass in some rows and off it in others
        assert set(np.unique(enc.states(points)[:, 0])) == {0, 1}
    else:  # the paper's decoder has no point-mass head: only categorical and ordinal values are states
        assert enc.states(points).shape[1] == len(schema.categorical) + len(schema.ordinal)


def test_the_papers_decoder_with_default_settings_explains_data_with_point_masses(compas, tmp_path):
    assert compas.ds.schema.point_mass
    ex = Lapace(schema=compas.explainer.schema_, decoder="paper", epochs=20, verbose=False)
    ex.fit(compas.X_train, compas.model.predict_proba, classes=compas.model.classes_)
    queries = unfavourable(compas, 20)
    result = ex.explain(queries)
    assert ex.centroid_validity_ > 0 and result.coverage > 0.5
    assert not set(ex.support_.features) & set(compas.ds.schema.point_mass)
    ex.save(str(tmp_path / "paper"))
    loaded = Lapace.load(str(tmp_path / "paper"), predict_proba=compas.model.predict_proba)
    pd.testing.assert_frame_equal(loaded.explain(queries).to_frame(), result.to_frame())


def _decoded(f, rows):
    with torch.no_grad():
        return f.explainer.model_.decode(torch.as_tensor(f.explainer.transform(rows))).numpy()


def test_the_hurdle_gate_learns_who_is_at_the_point_mass(adult):
    rows = adult.X_train
    out = _decoded(adult, rows)
    for name, value_col, gate_col in adult.explainer.encoder_.gates:
        off = (rows[name] != 0).to_numpy()
        gate = out[:, gate_col]
        assert gate[~off].mean() < 0.5 < gate[off].mean(), name
        assert ((gate > 0.5) == off).mean() > 0.9, name


def test_the_cumulative_link_head_follows_the_ordered_levels():
    german = fitted("german")
    ex = german.explainer
    assert ex.model_.layout.ordinal  # present_employment_since
    col, k = ex.model_.layout.ordinal[0]
    level = _decoded(german, german.X_train)[:, col] * (k - 1)
    truth = pd.Categorical(german.X_train["present_employment_since"], categories=german.ds.schema.ordinal["present_employment_since"]).codes
    assert np.corrcoef(level, truth)[0, 1] > 0.7
    assert np.abs(level - truth).mean() < 0.75  # within a step on average


def test_adult_counterfactuals_hold_no_pair_of_values_real_rows_lack(adult):
    queries = unfavourable(adult, 60)
    for strategy in ("first", "last"):
        for constraints in (None, "schema"):
            cf = adult.explainer.explain(queries, strategy=strategy, constraints=constraints).counterfactuals
            assert len(cf) > 0
            assert not ((cf["capital_gain"] > 0) & (cf["capital_loss"] > 0)).any()
            contradictions = ((cf["relationship"] == "Husband") & (cf["sex"] == "Female")) | (
                (cf["relationship"] == "Wife") & (cf["sex"] == "Male"))
            assert not contradictions.any(), (strategy, constraints)
            owners = queries.loc[cf.index.get_level_values("query")]
            rare = adult.explainer.support_.rare(states(adult.ds.schema, cf), 2, states(adult.ds.schema, owners))
            assert not rare.any()
            assert cf["education_num"].isin(adult.ds.schema.discrete["education_num"]).all()


def test_pair_support_counts_training_pairs_and_accepts_the_querys_own():
    schema = datasets.load("adult").schema
    X = datasets.load("adult").X.iloc[:5000]
    support = PairSupport.fit(schema, X)
    rows = X.iloc[:3].copy()
    rows["capital_gain"], rows["capital_loss"] = 5000, 300  # both off their mass: no real row does that
    codes = states(schema, rows)
    assert support.rare(codes, 1).all()
    assert not support.rare(codes, 1, own=codes).any()  # a person who already holds them may keep them
    assert not support.rare(states(schema, X.iloc[:200]), 1).any()  # training rows hold only seen pairs


def test_discrete_and_ordinal_features_only_take_existing_values(compas):
    german = fitted("german")
    res = german.explainer.explain(unfavourable(german, 30))
    cf = res.counterfactuals
    schema = german.ds.schema
    assert cf["present_employment_since"].isin(schema.ordinal["present_employment_since"]).all()
    for name, values in schema.discrete.items():
        assert cf[name].isin(values).all(), name
    cf = compas.explainer.explain(unfavourable(compas, 30)).counterfactuals
    for name, values in compas.ds.schema.discrete.items():
        assert cf[name].isin(values).all(), name


def test_sample_draws_valid_rows_of_the_class(compas):
    rows = compas.explainer.sample(200, target_class=1, random_state=3)
    assert len(rows) == 200 and list(rows.columns) == compas.ds.schema.features
    assert (compas.model.predict(rows) == 1).all()
    pd.testing.assert_frame_equal(rows, compas.explainer.sample(200, target_class=1, random_state=3))
    with pytest.raises(ValueError, match="target_class must be between 0 and 1"):
        compas.explainer.sample(5, target_class=2)

"""The offline CARLA helpers and the ``LapaceCarla`` RecourseMethod contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from carla.data.api import Data
from carla.models.api import MLModel
from carla.recourse_methods.api import RecourseMethod

from lapace_plugin.adapters.carla import LapaceCarla
from lapace_plugin.adapters.carla_benchmark import select_factuals
from lapace_plugin.adapters.carla_data import SklearnModel, TabularData, TorchModel, train_sklearn, train_torch_mlp


# ----------------------------------------------------------------------------------------- data
def test_tabular_data_is_a_carla_data_with_transformed_frames_and_raw_copies(carla_setup):
    data = carla_setup.data
    assert isinstance(data, Data)
    encoded = list(data.encoder.get_feature_names(data.categorical))
    assert data.encoded_features == data.continuous + encoded
    for frame in (data.df, data.df_train, data.df_test):
        assert set(frame.columns) == set(data.encoded_features) | {data.target}
        assert frame[data.encoded_features].to_numpy().min() >= 0.0
        assert frame[data.encoded_features].to_numpy().max() <= 1.0
    assert len(data.raw_train) == len(data.df_train) and len(data.raw_test) == len(data.df_test)
    assert set(data.raw_features) == set(data.continuous) | set(data.categorical)
    assert set(data.df[data.target].unique()) == {0, 1}


def test_tabular_data_inverse_transform_recovers_the_raw_rows(carla_setup):
    data = carla_setup.data
    back = data.inverse_transform(data.df_test)
    raw = data.raw_test
    for col in data.continuous:
        np.testing.assert_allclose(back[col].astype(float), raw[col].astype(float), rtol=0, atol=1e-6)
    for col in data.categorical:
        assert (back[col].astype(str).to_numpy() == raw[col].to_numpy()).all()


def test_from_dataset_binarises_categoricals_like_carla_catalogue(adult):
    data = adult.data
    assert data.immutables == ["race", "sex", "native_country"]
    for col in data.categorical:
        assert data.raw[col].nunique() <= 2
    assert len(data.encoded_features) == len(data.continuous) + len(data.categorical)


def test_tabular_data_rejects_non_binary_target_and_unknown_immutables():
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": ["x", "y", "x", "y"], "t": [0, 1, 2, 1]})
    with pytest.raises(ValueError, match="binary"):
        TabularData(frame, "t", ["a"], ["b"])
    frame["t"] = [0, 1, 0, 1]
    with pytest.raises(ValueError, match="nope"):
        TabularData(frame, "t", ["a"], ["b"], immutables=["nope"])


# --------------------------------------------------------------------------------------- models
def test_torch_model_returns_differentiable_tensors_for_tensor_input(adult):
    model = adult.model
    assert isinstance(model, TorchModel) and isinstance(model, MLModel) and model.backend == "pytorch"
    x = torch.tensor(adult.factuals[model.feature_input_order].to_numpy(), dtype=torch.float32, requires_grad=True)
    out = model.predict_proba(x)
    assert torch.is_tensor(out) and out.shape == (len(x), 2)
    out[:, 1].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    arr = model.predict_proba(adult.factuals)  # DataFrame (with the target column) -> numpy
    assert isinstance(arr, np.ndarray)
    np.testing.assert_allclose(arr.sum(axis=1), 1.0, atol=1e-5)
    assert model.predict(adult.factuals).shape == (len(adult.factuals), 1)
    assert isinstance(model.raw_model, torch.nn.Module)
    assert model.test_accuracy > 0.75


def test_sklearn_model_wraps_a_fitted_estimator(adult):
    model = train_sklearn(adult.data)
    assert isinstance(model, SklearnModel) and model.backend == "sklearn"
    proba = model.predict_proba(adult.factuals)
    assert proba.shape == (len(adult.factuals), 2)
    assert model.test_accuracy > 0.75


# --------------------------------------------------------------------------------- LapaceCarla
def test_lapace_carla_is_a_recourse_method_with_documented_defaults(adult):
    method = adult.first
    assert isinstance(method, RecourseMethod)
    defaults = {"strategy": "first", "path": "corrected", "search": "grid", "revert": False, "components_per_class": 5, "n_steps": 20, "random_state": 0}
    for key, value in defaults.items():
        assert method.hyperparams[key] == value
    assert method.constraints_["immutable"] == ["race", "sex", "native_country"]
    assert method.fit_time_ > 0


def test_unknown_hyperparameter_is_rejected_with_the_allowed_keys(adult):
    with pytest.raises(ValueError) as info:
        LapaceCarla(adult.model, {"stratgy": "last", "epochs": 1})
    message = str(info.value)
    assert "stratgy" in message and "strategy" in message and "components_per_class" in message
    with pytest.raises(ValueError, match="strategy"):
        LapaceCarla(adult.model, {"strategy": "middle"})
    with pytest.raises(ValueError, match="path must be one of 'latent', 'corrected', 'sparse'"):
        LapaceCarla(adult.model, {"path": "straight"}, explainer=adult.first.lapace_)
    with pytest.raises(ValueError, match="revert must be True or False, got 'yes'"):
        LapaceCarla(adult.model, {"revert": "yes"}, explainer=adult.first.lapace_)


def test_corrected_paths_are_closer_to_the_factuals_than_the_papers(adult):
    distance = {}
    for path in ("latent", "corrected"):
        method = LapaceCarla(adult.model, {"path": path, "search": "grid"}, explainer=adult.first.lapace_)
        cfs = method.get_counterfactuals(adult.factuals)
        found = ~cfs.isna().any(axis=1)
        assert found.mean() >= 0.9
        assert (adult.model.predict_proba(cfs[found]).argmax(axis=1) == 1).all()
        distance[path] = np.abs(cfs[found].to_numpy() - adult.factuals.loc[found, cfs.columns].to_numpy()).sum(1).mean()
    assert distance["corrected"] < distance["latent"], distance


def test_counterfactuals_keep_the_factuals_index_and_encoded_column_order(adult):
    shuffled = adult.factuals.sample(frac=1.0, random_state=1)
    shuffled.index = [1000 + 7 * i for i in range(len(shuffled))]
    cfs = adult.first.get_counterfactuals(shuffled)
    assert list(cfs.index) == list(shuffled.index)
    assert list(cfs.columns) == list(adult.model.feature_input_order)
    assert not cfs.isna().any().any()
    enc = cfs.to_numpy()
    assert enc.min() >= -1e-9 and enc.max() <= 1.0 + 1e-9
    onehot = list(adult.data.encoder.get_feature_names(adult.data.categorical))
    assert set(np.unique(cfs[onehot].to_numpy())) <= {0.0, 1.0}


def test_raw_factuals_give_the_same_counterfactuals_as_encoded_ones(adult):
    encoded = adult.factuals.head(5)
    raw = adult.data.inverse_transform(encoded)[adult.data.raw_features]
    for col in adult.data.continuous:
        raw[col] = raw[col].round().astype(adult.data.raw[col].dtype)
    a = adult.first.get_counterfactuals(encoded)
    b = adult.first.get_counterfactuals(raw)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-6)


def test_factuals_without_known_columns_are_rejected(adult):
    with pytest.raises(ValueError, match="encoded columns"):
        adult.first.get_counterfactuals(adult.factuals.drop(columns=["age"]).rename(columns={"sex_Male": "s"}))


@pytest.mark.parametrize("strategy", ["first", "last"])
def test_immutable_features_are_never_changed(adult, strategy):
    method = adult.first if strategy == "first" else adult.last
    cfs = method.get_counterfactuals(adult.factuals)
    found = ~cfs.isna().any(axis=1)  # `last` may fail a factual (a row of NaN), never change its immutables
    assert found.mean() >= 0.75
    raw_cf = adult.data.inverse_transform(cfs[found])
    raw_f = adult.data.inverse_transform(adult.factuals[found])
    for col in adult.data.immutables:
        assert (raw_cf[col].to_numpy() == raw_f[col].to_numpy()).all(), col


def test_monotone_option_keeps_increase_only_features_from_decreasing(adult):
    method = LapaceCarla(adult.model, {"monotone": True}, explainer=adult.first.lapace_)
    assert method.constraints_["increase"] == ["age", "education_num"]
    cfs = method.get_counterfactuals(adult.factuals)
    found = ~cfs.isna().any(axis=1)
    assert found.any()
    raw_cf = adult.data.inverse_transform(cfs[found])
    raw_f = adult.data.inverse_transform(adult.factuals[found])
    for col in ("age", "education_num"):
        assert (raw_cf[col].to_numpy() >= raw_f[col].to_numpy() - 1e-6).all(), col


def test_factual_with_no_reachable_counterfactual_gives_a_nan_row(gated):
    cfs = gated.method.get_counterfactuals(gated.factuals)
    missing = cfs.isna().all(axis=1).to_numpy()
    assert (cfs.isna().any(axis=1).to_numpy() == missing).all()  # whole rows, never partial
    np.testing.assert_array_equal(missing, gated.unreachable)
    assert list(cfs.index) == list(gated.factuals.index)
    found = cfs[~missing]
    assert (gated.model.predict_proba(found).argmax(axis=1) == 1).all()
    explanation = gated.method.last_explanation_
    assert len(explanation.failures) == int(gated.unreachable.sum())


def test_reusing_an_explainer_fitted_on_other_features_is_rejected(adult, compas):
    with pytest.raises(ValueError, match="fitted on features"):
        LapaceCarla(adult.model, {}, explainer=compas.first.lapace_)


def test_robust_strategy_and_its_floor_are_hyperparameters(adult):
    method = LapaceCarla(adult.model, {"strategy": "robust", "min_probability": 0.7}, explainer=adult.first.lapace_)
    cfs = method.get_counterfactuals(adult.factuals)
    found = ~cfs.isna().any(axis=1)
    assert found.any()
    proba = adult.model.predict_proba(cfs[found])
    proba = proba.detach().cpu().numpy() if hasattr(proba, "detach") else np.asarray(proba)
    assert (proba[:, 1] >= 0.7 - 1e-6).all()
    with pytest.raises(ValueError, match="min_probability"):
        LapaceCarla(adult.model, {"min_probability": 1.5}, explainer=adult.first.lapace_)


def test_derived_features_and_relations_hold_in_every_counterfactual():
    import os
    import sys

    from lapace_plugin import Constraints

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data"))
    from make_cardlike import DERIVED, MOVE_TOGETHER, RELATIONS, load

    data = TabularData(load(), "card", ["age", "income", "expenditure", "share", "months", "reports", "dependents"],
                       ["owner"], random_state=0)
    model = train_torch_mlp(data, epochs=20, random_state=0)
    factuals = select_factuals(model, 15, random_state=0)
    method = LapaceCarla(model, {"epochs": 40, "derived": DERIVED, "relations": RELATIONS + [MOVE_TOGETHER], "revert": True})
    cfs = method.get_counterfactuals(factuals)
    found = ~cfs.isna().any(axis=1)
    assert found.mean() >= 0.6
    raw_cf = method._decode(cfs[found]).reset_index(drop=True)
    raw_f = method._decode(factuals[found]).reset_index(drop=True)
    every = ["share == 12 * (expenditure + 1) / (10000 * income)", RELATIONS[0], MOVE_TOGETHER]
    broken = Constraints(relations=every).violations(raw_f, raw_cf, method.schema_)
    assert not broken.any().any(), broken.mean()

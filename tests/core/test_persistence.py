"""Persistence (lapace_plugin.persistence) writes the fitted state whole and reads it back, checking it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tiny
import torch

from lapace_plugin import Lapace
from lapace_plugin.persistence import META_FILE, LoadError


def explainer() -> Lapace:
    out = Lapace(components_per_class=2, latent_dim=2, hidden=(8,), verbose=False)
    out.state_, out.predict_proba_ = tiny.state(), tiny.predict_proba  # a fit, by hand
    out.state_.centroids_moved, out.state_.fit_time = ["1/0"], 1.5
    return out


def test_the_fitted_state_round_trips_whole(tmp_path):
    saved = explainer()
    saved.save(str(tmp_path / "e"))
    loaded = Lapace.load(str(tmp_path / "e"), tiny.predict_proba)
    a, b = saved.state_, loaded.state_
    assert b.classes == a.classes and b.schema.to_dict() == a.schema.to_dict()
    assert np.array_equal(b.centroid_points, a.centroid_points) and np.array_equal(b.centroid_valid, a.centroid_valid)
    assert b.centroids_moved == ["1/0"] and b.fit_time == 1.5
    assert all(torch.equal(a.model.state_dict()[k], v) for k, v in b.model.state_dict().items())
    assert loaded.get_params() == dict(saved.get_params(), schema=loaded.schema)


def test_a_centroid_the_given_classifier_rejects_is_no_target_after_loading(tmp_path):
    explainer().save(str(tmp_path / "e"))
    with pytest.warns(UserWarning, match="not assigned to their class"):
        loaded = Lapace.load(str(tmp_path / "e"), lambda frame: tiny.predict_proba(frame)[:, ::-1])
    assert not loaded.centroid_valid_.any()


def test_a_damaged_file_is_refused_naming_the_file(tmp_path):
    explainer().save(str(tmp_path / "e"))
    meta = os.path.join(str(tmp_path / "e"), META_FILE)
    with open(meta) as fh:
        content = json.load(fh)
    content["params"]["latent_dim"] = -1
    with open(meta, "w") as fh:
        json.dump(content, fh)
    with pytest.raises(LoadError, match="lapace.json.*latent_dim"):
        Lapace.load(str(tmp_path / "e"))

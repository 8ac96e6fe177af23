"""Saving and loading a fitted ``Lapace``: weights as plain arrays (npz) and JSON metadata; never pickles."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

MODEL_FILE = "weights.npz"
NOT_SAVED = ("schema", "device")
FORMAT = 2  # 1: the paper's decoder only, no pair support (loaded with decoder="paper", min_pair_count=0)  # saved separately (the schema) or chosen at load time (the device)
META_FILE = "lapace.json"


def save(explainer: Any, path: str) -> None:
    """Write a fitted explainer to directory ``path``."""
    os.makedirs(path, exist_ok=True)
    arrays = {"model." + k: v.detach().cpu().numpy() for k, v in explainer.model_.state_dict().items()}
    arrays.update({
        "centroid_points": explainer.centroid_points_,
        "centroid_proba": explainer.centroid_proba_,
        "centroid_valid": explainer.centroid_valid_,
    })
    arrays.update(explainer.support_.to_arrays())
    if explainer.members_ is not None:
        arrays.update({"members." + k: v for k, v in explainer.members_._asdict().items()})
    np.savez(os.path.join(path, MODEL_FILE), **arrays)
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in explainer.get_params().items() if k not in NOT_SAVED}
    meta = {
        "format": FORMAT,
        "params": params,
        "schema": explainer.schema_.to_dict(),
        "classes": explainer.classes_,
        "centroid_validity_initial": explainer.centroid_validity_initial_,
        "centroids_moved": explainer.centroids_moved_,
        "fit_time": explainer.fit_time_,
    }
    with open(os.path.join(path, META_FILE), "w") as fh:
        json.dump(meta, fh, indent=1)


def load(cls: Any, path: str, predict_proba: Optional[Callable[..., Any]], device: Union[str, torch.device]) -> Any:
    """Rebuild an explainer of class ``cls`` from directory ``path`` (``allow_pickle=False``)."""
    from .encoding import TabularEncoder
    from .latent import Members
    from .schema import FeatureSchema
    from .support import PairSupport

    meta_path = os.path.join(path, META_FILE)
    if not os.path.exists(meta_path):
        raise FileNotFoundError("no saved Lapace in %r (missing %s)" % (path, META_FILE))
    with open(meta_path) as fh:
        meta = json.load(fh)
    params = dict(meta["params"])
    params["hidden"] = tuple(params["hidden"])
    if meta["format"] == 1:
        params.update(decoder="paper", min_pair_count=0)
    self = cls(schema=FeatureSchema.from_dict(meta["schema"]), device=device, **params)
    self.schema_ = self.schema
    self.encoder_ = TabularEncoder(self.schema_, typed=self.decoder == "typed")
    self.device_ = torch.device(device)
    self.classes_ = meta["classes"]
    self.n_classes_ = len(self.classes_)
    self.predict_proba_ = predict_proba
    with np.load(os.path.join(path, MODEL_FILE), allow_pickle=False) as data:
        self.model_ = self._build_model()
        state = {k[len("model."):]: torch.as_tensor(data[k]) for k in data.files if k.startswith("model.")}
        self.model_.load_state_dict(state)
        self.model_.eval()
        self.support_ = PairSupport.from_arrays(self.schema_, {k: data[k] for k in data.files if k.startswith("support.")})
        self._set_centroids(data["centroid_points"], data["centroid_proba"], data["centroid_valid"])
        self.members_ = Members(*(data["members." + k] for k in Members._fields)) if "members.points" in data.files else None
    self.centroid_validity_initial_ = meta["centroid_validity_initial"]
    self.centroids_moved_ = meta["centroids_moved"]
    self.fit_time_ = meta["fit_time"]
    return self

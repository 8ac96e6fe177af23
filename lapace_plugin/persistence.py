"""Saving and loading a fitted ``Lapace``: weights as plain arrays (npz) and JSON metadata; never pickles.

Saving writes a new folder next to the target and renames it into place, so a save that fails leaves the explainer
already there intact. Loading trusts nothing: the format version, the parameters (checked by the parameter table,
network sizes bounded before anything is allocated), the schema, and every array's name, dtype, shape and
finiteness are checked, and an error names the file and the problem; with a classifier, the decoded centroids are
classified again, so a centroid the given classifier does not assign to its class is never a target.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
import zipfile
from typing import Any, Callable, Dict, Optional, Union

import numpy as np
import torch

from .rules import assigned_to

MODEL_FILE = "weights.npz"
META_FILE = "lapace.json"
FORMAT = 2
"""1: the paper's decoder only and no pair support (loaded with ``decoder="paper"``, ``min_pair_count=0``); 2: typed."""
NOT_SAVED = ("schema", "device")  # saved separately (the schema) or chosen at load time (the device)
MAX_PARAMETERS = 50_000_000  # a saved explainer asking for a larger network is refused before it is allocated


class LoadError(ValueError):
    """A saved explainer that cannot be loaded; the message names the file and the problem."""


def save(explainer: Any, path: str) -> None:
    """Write a fitted explainer to directory ``path`` (created, or replaced when it holds a saved explainer)."""
    text = _json(explainer)  # before touching any file: content JSON cannot hold is an error here
    state = explainer.state_  # the whole fit (lapace_plugin.fitted.FittedState) but its history and projection cache
    arrays = {"model." + k: v.detach().cpu().numpy() for k, v in state.model.state_dict().items()}
    arrays.update(centroid_points=state.centroid_points, centroid_proba=state.centroid_proba, centroid_valid=state.centroid_valid)
    arrays.update(state.support.to_arrays())
    if state.consistency is not None:
        arrays.update(state.consistency.to_arrays())
    if state.members is not None:
        arrays.update({"members." + k: v for k, v in state.members._asdict().items()})
    target = os.path.abspath(path)
    if os.path.exists(target):
        if not os.path.isdir(target):
            raise ValueError("cannot save into %r: it is a file" % path)
        other = sorted(set(os.listdir(target)) - {MODEL_FILE, META_FILE})
        if other:
            raise ValueError("cannot save into %r: it holds other files %s; save into a new or empty directory" % (path, other[:5]))
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    fresh = tempfile.mkdtemp(prefix=".lapace-saving-", dir=parent)
    try:
        np.savez(os.path.join(fresh, MODEL_FILE), **arrays)
        with open(os.path.join(fresh, META_FILE), "w") as fh:
            fh.write(text)
        if os.path.exists(target):
            old = tempfile.mkdtemp(prefix=".lapace-replaced-", dir=parent)
            os.rename(target, os.path.join(old, "explainer"))
            os.rename(fresh, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(fresh, target)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def _json(explainer: Any) -> str:
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in explainer.get_params().items() if k not in NOT_SAVED}
    state = explainer.state_
    meta = {
        "format": FORMAT,
        "params": params,
        "schema": state.schema.to_dict(),
        "classes": state.classes,
        "centroid_validity_initial": state.centroid_validity_initial,
        "centroids_moved": state.centroids_moved,
        "fit_time": state.fit_time,
    }
    try:
        return json.dumps(meta, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        for key, value in list(meta["schema"].items()) + [("classes", meta["classes"]), ("params", meta["params"])]:
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise ValueError(
                    "cannot save: the explainer's %s hold a value JSON cannot store (%s); use strings, numbers or booleans"
                    % (key, exc)
                ) from None
        raise ValueError("cannot save: %s" % exc) from None


def load(cls: Any, path: str, predict_proba: Optional[Callable[..., Any]], device: Union[str, torch.device]) -> Any:
    """Rebuild an explainer of class ``cls`` from directory ``path``, checking everything (module docstring)."""
    from .consistency import ConsistencyCheck
    from .encoding import TabularEncoder
    from .fitted import FittedState
    from .latent import Members
    from .lgmvae import count_parameters
    from .schema import FeatureSchema
    from .support import PairSupport

    meta = _read_meta(path)
    try:
        params = dict(meta["params"])
        params["hidden"] = tuple(params["hidden"])
        if meta["format"] == 1:
            params.update(decoder="paper", min_pair_count=0)
        schema = FeatureSchema.from_dict(meta["schema"])
        self = cls(schema=schema, device=device, **params)
        classes = list(meta["classes"])
        if len(classes) < 2 or len(set(map(repr, classes))) != len(classes):
            raise ValueError("classes must be at least two distinct labels, got %r" % (classes,))
        encoder = TabularEncoder(schema, typed=self.decoder == "typed")
        size = count_parameters(encoder.layout, len(classes), self.components_per_class, self.latent_dim, self.hidden)
        if size > MAX_PARAMETERS:
            raise ValueError("the network would have %d parameters, more than %d" % (size, MAX_PARAMETERS))
        centroid_validity_initial = float(meta["centroid_validity_initial"])
        centroids_moved = [str(c) for c in meta["centroids_moved"]]
        fit_time = float(meta["fit_time"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LoadError("%s: %s%s" % (os.path.join(path, META_FILE), "missing " if isinstance(exc, KeyError) else "", exc)) from None
    model = self._build_model(encoder, len(classes))
    arrays = _read_arrays(path)
    where = os.path.join(path, MODEL_FILE)
    try:
        state = {k: v for k, v in model.state_dict().items()}
        K, D, L = model.n_components, encoder.width, len(classes)
        expected: Dict[str, Any] = {"model." + k: (tuple(v.shape), "f") for k, v in state.items()}
        expected.update(centroid_points=((K, D), "f"), centroid_proba=((K, L), "f"), centroid_valid=((K,), "b"))
        masses = encoder.typed
        support = PairSupport.fit(schema, _empty_frame(schema), masses) if meta["format"] >= 2 else None
        if support is not None:
            expected.update({k: (v.shape, "i") for k, v in support.to_arrays().items()})
        if "members.points" in arrays:
            n = len(arrays["members.points"])
            expected.update({"members.points": ((n, D), "f"), "members.latents": ((n, self.latent_dim), "f"),
                             "members.component": ((n,), "i")})
        if "consistency.thresholds" in arrays:  # absent from explainers saved before the check existed
            expected.update({"consistency.thresholds": ((L,), "f"), "consistency.weights": ((2,), "f")})
        _check_arrays(arrays, expected)
        model.load_state_dict({k[len("model."):]: torch.as_tensor(arrays[k]) for k in expected if k.startswith("model.")})
        model.eval()
        support = PairSupport.from_arrays(schema, {k: arrays[k] for k in expected if k.startswith("support.")}, masses)
        if any((t < 0).any() for t in support.counts.values()):
            raise ValueError("pair counts must not be negative")
        points = arrays["centroid_points"].astype(np.float32)
        if not np.array_equal(encoder.snap(points), points):
            raise ValueError("centroid_points are not valid encoded rows")
        members = None
        if "members.points" in arrays:
            members = Members(arrays["members.points"].astype(np.float32), arrays["members.latents"].astype(np.float32),
                              arrays["members.component"].astype(np.int64))
            if ((members.component < 0) | (members.component >= K)).any():
                raise ValueError("members.component holds components outside 0..%d" % (K - 1))
    except ValueError as exc:
        raise LoadError("%s: %s" % (where, exc)) from None
    fitted = FittedState(
        schema, encoder, classes, model, torch.device(device), support, members=members,
        centroid_validity_initial=centroid_validity_initial, centroids_moved=centroids_moved, fit_time=fit_time,
        consistency=ConsistencyCheck.from_arrays(arrays) if "consistency.thresholds" in arrays else None,
    )
    fitted.set_centroids(points, arrays["centroid_proba"].astype(np.float64), arrays["centroid_valid"].astype(bool))
    self.state_, self.predict_proba_ = fitted, predict_proba
    if predict_proba is not None:
        _verify_centroids(self)
    return self


def _read_meta(path: str) -> Dict[str, Any]:
    where = os.path.join(path, META_FILE)
    if not os.path.exists(where):
        raise FileNotFoundError("no saved Lapace in %r (missing %s)" % (path, META_FILE))
    try:
        with open(where) as fh:
            meta = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoadError("%s: not valid JSON (%s)" % (where, exc)) from None
    if not isinstance(meta, dict):
        raise LoadError("%s: expected a JSON object, got %s" % (where, type(meta).__name__))
    if meta.get("format") not in (1, FORMAT):
        raise LoadError("%s: unknown format %r; this version reads formats 1 and %d" % (where, meta.get("format"), FORMAT))
    return meta


def _read_arrays(path: str) -> Dict[str, np.ndarray]:
    where = os.path.join(path, MODEL_FILE)
    try:
        with np.load(where, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise LoadError("%s: missing" % where) from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise LoadError("%s: not a NumPy .npz archive of plain arrays (%s)" % (where, exc)) from None


def _check_arrays(arrays: Dict[str, np.ndarray], expected: Dict[str, Any]) -> None:
    """Every expected array present with its shape and kind (f: finite floats, b: booleans, i: integers), no other."""
    extra = sorted(set(arrays) - set(expected))
    if extra:
        raise ValueError("unexpected array(s) %s" % extra[:10])
    missing = sorted(set(expected) - set(arrays))
    if missing:
        raise ValueError("missing array(s) %s" % missing[:10])
    for name, (shape, kind) in expected.items():
        a = arrays[name]
        if tuple(a.shape) != tuple(shape):
            raise ValueError("array %r has shape %s, expected %s" % (name, a.shape, tuple(shape)))
        if kind == "f" and (a.dtype.kind != "f" or not np.isfinite(a).all()):
            raise ValueError("array %r must hold finite floats (dtype %s)" % (name, a.dtype))
        if kind == "b" and a.dtype.kind != "b":
            raise ValueError("array %r must hold booleans, got dtype %s" % (name, a.dtype))
        if kind == "i" and a.dtype.kind not in "iu":
            raise ValueError("array %r must hold integers, got dtype %s" % (name, a.dtype))


def _empty_frame(schema: Any) -> Any:
    """A frame with no rows and the schema's columns (pair-count shapes depend on the schema only)."""
    import pandas as pd

    return pd.DataFrame({f: pd.Series([], dtype=object if f in schema.categorical or f in schema.ordinal else float)
                         for f in schema.features})


def _verify_centroids(explainer: Any) -> None:
    """Classify the decoded centroids with the explainer's classifier; keep as targets only those it assigns to
    their class (and that are plausible), warning about any that the saved file called valid."""
    space = explainer._space(settled=False)
    proba = explainer._predict(explainer.centroids_.reset_index(drop=True))
    valid = assigned_to(proba, explainer.centroid_class_) & ~space.rare(explainer.centroid_points_)
    lost = [space.names[k] for k in np.flatnonzero(explainer.centroid_valid_ & ~valid)]
    if lost:
        warnings.warn(
            "centroid(s) %s are not assigned to their class by the classifier given to load(); they are never used as "
            "counterfactual targets" % lost,
            stacklevel=3,
        )
    explainer.state_.set_centroids(explainer.centroid_points_, proba, valid)

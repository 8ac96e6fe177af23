"""Shipping the fitted explainer to Dask workers: as the bytes of its own save folder, loaded once per worker
process and classifier, and identified by a fingerprint of its fitted state."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Dict, List, Tuple

import numpy as np

from ..explainer import Lapace

_LOADED: Dict[Tuple[str, int], Lapace] = {}  # per worker process: (explainer fingerprint, classifier id) -> explainer


def saved_bytes(explainer: Lapace) -> Dict[str, bytes]:
    """The explainer's save folder as ``{relative path: bytes}``: opaque, whatever files the format has."""
    folder = tempfile.mkdtemp(prefix="lapace-explainer-")
    try:
        explainer.save(folder)
        files = {}
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as fh:
                    files[os.path.relpath(path, folder)] = fh.read()
        return files
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def loaded(fingerprint: str, files: Dict[str, bytes], predict_proba: Any) -> Lapace:
    """The explainer, loaded from its saved bytes once per worker process and classifier."""
    key = (fingerprint, id(predict_proba))
    if key not in _LOADED:
        folder = tempfile.mkdtemp(prefix="lapace-explainer-")
        try:
            for rel, data in files.items():
                path = os.path.join(folder, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as fh:
                    fh.write(data)
            explainer = Lapace.load(folder, predict_proba)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if len(_LOADED) >= 4:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = explainer
    return _LOADED[key]


def fingerprint(explainer: Lapace) -> str:
    """A hash of the fitted explainer's parameters, schema, classes, weights and centroids (stable across saves and
    processes)."""
    weights = [v.detach().cpu().numpy() for _, v in sorted(explainer.model_.state_dict().items())]
    params = {k: repr(v) for k, v in explainer.get_params().items() if k not in ("schema", "device")}
    text = json.dumps([params, explainer.schema_.to_dict(), repr(explainer.classes_)], sort_keys=True, default=str)
    return digest([text] + weights + [explainer.centroid_points_, explainer.centroid_valid_])


def digest(parts: List[Any]) -> str:
    """SHA-256 of strings and arrays (their dtype, shape and bytes)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            h.update(part.encode("utf-8"))
        else:
            array = np.ascontiguousarray(part)
            h.update(("%s%s" % (array.dtype.str, array.shape)).encode("ascii"))
            h.update(array.tobytes())
    return h.hexdigest()[:32]

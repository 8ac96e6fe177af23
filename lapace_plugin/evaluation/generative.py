"""The paper's generative evaluation: train on synthetic rows, test on real ones (TSTR).

For each class ``c`` the fitted explainer decodes as many rows from ``c``'s mixture prior
(``Lapace.sample(n, target_class=c)``) as the training split has rows labelled ``c``; a classifier of the study's
family is trained on those synthetic rows (labelled ``c``) and tested on the real test split. Its accuracy is
compared with the same classifier trained on the real training rows (TRTR). The gap ``TRTR - TSTR`` (in accuracy,
0.029 = 2.9 points) is shown beside the paper's reported gap on the same dataset: HELOC 2.9% (the project's stand-in
is ``credit``), wine 2.3%, adult 12.7%, COMPAS 5.8%.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

import numpy as np
import pandas as pd

from .frames import predicted_class
from .models import make_classifier

PAPER_GAPS = {"heloc": 0.029, "wine": 0.023, "adult": 0.127, "compas": 0.058}
"""Train-on-real minus train-on-synthetic accuracy reported in the paper, per dataset."""
PAPER_DATASET = {"adult": "adult", "compas": "compas", "wine": "wine", "credit": "heloc"}
"""The paper's dataset that each bundled one stands for (``credit`` replaces HELOC, which cannot be redistributed)."""


def train_on_synthetic(setup: Any, explainer: Any) -> Tuple[Dict[str, Any], Optional[pd.DataFrame]]:
    """TSTR against TRTR on one dataset and seed: the ``generative.csv`` row and the synthetic rows.

    Returns the row (``status`` says why when sampling is not available) and the synthetic rows (the features, then
    ``class``, the class index they were decoded for), or ``None``.
    """
    paper = PAPER_DATASET.get(setup.name)
    row: Dict[str, Any] = {
        "dataset": setup.name, "seed": setup.seed, "status": "ok", "trtr_accuracy": setup.accuracy,
        "paper_dataset": paper or "", "paper_gap": PAPER_GAPS.get(paper, np.nan) if paper else np.nan,
    }
    sample = getattr(explainer, "sample", None)
    if sample is None:
        row["status"] = "not available: this Lapace has no sample(n, target_class)"
        return row, None
    start = time.perf_counter()
    labels = np.asarray(setup.y_train)
    pieces = []
    for c, label in enumerate(setup.classes):
        n = int(np.sum(labels == label))
        if n:
            rows = sample(n, target_class=c)
            pieces.append(rows.assign(**{"class": c}))
    synthetic = pd.concat(pieces, ignore_index=True)
    features = synthetic[list(setup.schema.features)]
    decoded_for = synthetic["class"].to_numpy()
    model = make_classifier(setup.schema, setup.config.classifier, random_state=setup.seed, n_jobs=1)
    model.fit(features, np.asarray(setup.classes, dtype=object)[decoded_for].astype(labels.dtype))
    tstr = float(np.mean(model.predict(setup.X_test) == np.asarray(setup.y_test)))
    row.update({
        "synthetic_rows": len(synthetic),
        "synthetic_assigned_to_class": float(np.mean(predicted_class(setup.proba, features) == decoded_for)),
        "tstr_accuracy": tstr,
        "gap": setup.accuracy - tstr,
        "seconds": time.perf_counter() - start,
    })
    return row, synthetic

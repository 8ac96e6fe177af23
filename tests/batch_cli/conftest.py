"""Shared by the adversarial batch CLI cases: ONE real Dask LocalCluster (2 worker processes) and ONE tiny explainer
fitted once by ``lapace fit`` on a small sample of the bundled compas data, so the whole folder stays fast.

Modern environment only (needs the ``distributed`` extra: dask, distributed, pyarrow).
"""

from __future__ import annotations

from typing import Dict, List

import joblib
import numpy as np
import pytest

from lapace_plugin import datasets
from lapace_plugin.apps import cli
from lapace_plugin.evaluation.models import make_classifier


@pytest.fixture(scope="session")
def cluster():
    from lapace_plugin import distributed

    with distributed.connect(workers=2) as c:
        yield c


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Dict[str, object]:
    """Training table, classifier file, fitted explainer folder and 60 rows to explain (two of them bad)."""
    folder = tmp_path_factory.mktemp("tiny")
    ds = datasets.load("compas")
    X, y = ds.X.iloc[:400].reset_index(drop=True), ds.y.iloc[:400].reset_index(drop=True)
    model = make_classifier(ds.schema, "rf", random_state=0).fit(X, y)
    paths = {name: str(folder / name) for name in ("train.parquet", "model.joblib", "explainer", "rows.parquet")}
    X.assign(label=model.predict(X)).to_parquet(paths["train.parquet"])
    joblib.dump(model, paths["model.joblib"])
    assert cli.main(["fit", "--data", paths["train.parquet"], "--target", "label", "--model", paths["model.joblib"],
                     "--out", paths["explainer"], "--epochs", "2", "--quiet", "--trust-pickle"]) == 0
    rows = ds.X.iloc[400:460].reset_index(drop=True)
    rows["race"] = rows["race"].astype(object)
    rows.loc[4, "age"] = np.nan
    rows.loc[9, "race"] = "Martian"
    rows.to_parquet(paths["rows.parquet"], index=False)
    return dict(paths, rows=rows, model=model, ds=ds)


@pytest.fixture
def explain_args(tiny, cluster):
    """``lapace explain`` arguments on the shared cluster (more options appended by each case)."""

    def make(output: str, *extra: str, input: str = None) -> List[str]:
        return ["explain", "--explainer", tiny["explainer"], "--model", tiny["model.joblib"], "--input", input or tiny["rows.parquet"],
                "--output", output, "--partition-rows", "20", "--quiet", "--trust-pickle",
                "--scheduler", cluster.scheduler.address] + list(extra)

    return make

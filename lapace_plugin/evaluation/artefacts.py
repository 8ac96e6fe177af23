"""The files ``lapace study`` writes, and what each holds (listed by ``lapace study --help`` and the README).

Every table cell can be recomputed from these files: a cell of ``results.csv`` is the mean (the median for
``lof_median``, the sum for ``constraint_violations``) of one column of that method's ``per_counterfactual.csv`` or
``per_query.csv`` (NaN left out); a cell of ``summary.csv`` is the mean of the seeds' ``results.csv`` values with
the t-interval of :mod:`lapace_plugin.evaluation.intervals`; the claims follow from ``results.csv``,
``datasets.csv`` and ``generative.csv`` by :mod:`lapace_plugin.evaluation.claims`; ``front.csv`` follows from
``summary.csv`` by :mod:`lapace_plugin.evaluation.front`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, Iterable, Optional, Set

import pandas as pd

ARTEFACTS = (
    ("config.json", "the StudyConfig (rerun with: lapace study --config config.json) and the package versions"),
    ("results.csv", "one row per dataset x method x seed: status, counts (n_queries, n_covered, n_both_runs) and every metric"),
    ("summary.csv", "one row per dataset x method: each metric's mean over seeds, 95% t-interval (_low, _high) and seed count (_seeds)"),
    ("claims.csv", "the paper's claims per dataset: verdict (holds / fails / inconclusive / not run), estimate and interval"),
    ("front.csv", "per dataset x method: mean L1, model robustness and median LOF, whether no other method dominates it, and by what"),
    ("datasets.csv", "per dataset x seed: accuracy, fit times, centroid validity, queries' own LOF, held-out support violations"),
    ("generative.csv", "per dataset x seed: train-on-synthetic vs train-on-real test accuracy, beside the paper's gap"),
    ("results.md, report.html", "the tables with intervals, the claims and the figures (report.html is self-contained)"),
    ("figures/<dataset>.png", "one bar per method and metric, with its 95% interval"),
    ("figures/<dataset>-front.png", "L1 proximity against model robustness: one point per method with its 95% intervals, the front ringed"),
    ("cells/<dataset>/seed<k>/queries.csv", "the queries: id, target class index, predicted class index, features"),
    ("cells/<dataset>/seed<k>/perturbed_queries.csv", "the perturbed copies of the queries used for input robustness"),
    ("cells/<dataset>/seed<k>/synthetic.csv", "LAPACE's synthetic rows for the generative evaluation (class = decoded class)"),
    ("cells/<dataset>/seed<k>/<method>/counterfactuals.csv", "query, rank, features; LAPACE adds component, tau, probability"),
    ("cells/<dataset>/seed<k>/<method>/perturbed_counterfactuals.csv", "the same for the perturbed queries"),
    ("cells/<dataset>/seed<k>/<method>/failures.csv", "query, run (original / perturbed) and reason of every query without a counterfactual"),
    ("cells/<dataset>/seed<k>/<method>/per_counterfactual.csv", "every counterfactual-level metric per counterfactual"),
    ("cells/<dataset>/seed<k>/<method>/per_query.csv", "target, diversity, input robustness and coverage per query"),
    ("cells/<dataset>/seed<k>/<method>/retrained_predictions.csv", "the class index each retrained model gives each counterfactual"),
)


def describe() -> str:
    """The artefact list as indented text (for ``--help``)."""
    width = max(len(path) for path, _ in ARTEFACTS)
    return "\n".join("  %s  %s" % (path.ljust(width), text) for path, text in ARTEFACTS)


def owned(folder: str) -> Optional[Set[str]]:
    """The files of a study's output folder (a study writes only its artefacts' names there, never deleting): every
    file, when the folder holds a study's ``config.json``; ``None`` for any other folder."""
    from ..files import listing

    try:
        with open(os.path.join(folder, "config.json")) as fh:
            payload = json.load(fh)
    except (OSError, ValueError):
        return None
    return set(listing(folder)) if isinstance(payload, dict) and set(payload) == {"config", "versions"} else None


def cell_dir(out: str, dataset: str, seed: int, method: Optional[str] = None) -> str:
    """``out/cells/<dataset>/seed<k>[/<method>]``, created."""
    parts = [out, "cells", dataset, "seed%d" % seed] + ([method] if method else [])
    path = os.path.join(*parts)
    os.makedirs(path, exist_ok=True)
    return path


def write_config(config: Any, out: str) -> None:
    """``config.json``: the configuration and the versions of the packages that produced the results."""
    from importlib import metadata

    versions: Dict[str, str] = {}
    for package in ("lapace-plugin", "torch", "numpy", "pandas", "scikit-learn", "dice-ml", "rocelib", "dask"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    payload = {"config": dataclasses.asdict(config), "versions": versions}
    with open(os.path.join(out, "config.json"), "w") as fh:
        json.dump(payload, fh, indent=2, default=str)


def write_frames(directory: str, frames: Dict[str, Optional[pd.DataFrame]]) -> None:
    """Write each non-empty frame as ``<name>.csv`` in ``directory`` (without the index)."""
    for name, frame in frames.items():
        if frame is not None and len(frame.columns):
            frame.to_csv(os.path.join(directory, name + ".csv"), index=False)


def queries_frame(setup: Any) -> pd.DataFrame:
    """``query, target, predicted`` and the features of a cell's queries."""
    predicted = pd.Series(setup.test_pred, index=setup.X_test.index).loc[setup.queries.index]
    front = pd.DataFrame({"query": setup.queries.index, "target": setup.targets.to_numpy(), "predicted": predicted.to_numpy()})
    return pd.concat([front, setup.queries.reset_index(drop=True)], axis=1)


def rows_frame(rows: Iterable[Dict[str, Any]], columns: Iterable[str]) -> pd.DataFrame:
    """Rows as a frame with ``columns`` first (in order), then any others."""
    frame = pd.DataFrame(list(rows))
    first = [c for c in columns if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]

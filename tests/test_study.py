"""End-to-end tests of ``lapace study`` on a tiny configuration of bundled COMPAS."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from lapace_plugin.evaluation import study

pytestmark = pytest.mark.slow

TINY = [
    "--datasets",
    "compas",
    "--n-queries",
    "5",
    "--retrained",
    "2",
    "--epochs",
    "20",
    "--max-train-rows",
    "2500",
    "--no-progress",
]

NAMED_COLUMNS = [
    "dataset",
    "method",
    "status",
    "n_queries",
    "n_counterfactuals",
    "validity",
    "proximity_l1",
    "proximity_l2",
    "sparsity",
    "lof_median",
    "lof_mean",
    "ynn",
    "diversity",
    "input_robustness",
    "model_robustness",
    "model_robustness_all",
    "constraint_violations",
    "coverage",
    "runtime_per_query",
    "fit_time",
    "centroid_validity",
]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("study"))
    assert study.main(TINY + ["--methods", "nnce", "lapace-first", "lapace-last", "--out", out]) == 0
    return out


def _results(out: str) -> pd.DataFrame:
    return pd.read_csv(os.path.join(out, "results.csv"))


def test_study_writes_table_markdown_and_figures(tiny_study: str) -> None:
    for name in ("results.csv", "results.md", "datasets.csv", os.path.join("figures", "compas.png")):
        assert os.path.getsize(os.path.join(tiny_study, name)) > 0, name
    assert os.path.exists(os.path.join(tiny_study, "counterfactuals", "compas", "lapace-first.csv"))
    text = open(os.path.join(tiny_study, "results.md")).read()
    assert "| lapace-last | ok |" in text
    assert "The paper's claims" in text


def test_results_have_exactly_the_named_columns_and_one_row_per_method(tiny_study: str) -> None:
    results = _results(tiny_study)
    assert sorted(results.columns) == sorted(NAMED_COLUMNS)
    assert results["method"].tolist() == ["nnce", "lapace-first", "lapace-last"]
    assert (results["status"] == "ok").all(), results["status"].tolist()
    assert (results["n_queries"] == 5).all()


def test_lapace_last_is_valid_and_exactly_input_robust(tiny_study: str) -> None:
    last = _results(tiny_study).set_index("method").loc["lapace-last"]
    assert last["validity"] == 1.0
    assert last["input_robustness"] == 0.0
    assert last["coverage"] == 1.0


def test_counterfactual_counts_follow_k_and_lapace_rows_share_one_fit(tiny_study: str) -> None:
    results = _results(tiny_study).set_index("method")
    assert results.loc["nnce", "n_counterfactuals"] <= 5  # one per query
    assert results.loc["lapace-first", "n_counterfactuals"] <= 15  # k = 3 per query
    assert results.loc["lapace-first", "fit_time"] == results.loc["lapace-last", "fit_time"]
    assert 0.0 <= results.loc["lapace-first", "centroid_validity"] <= 1.0
    assert np.isnan(results.loc["nnce", "centroid_validity"])
    info = pd.read_csv(os.path.join(tiny_study, "datasets.csv"))
    assert info.loc[0, "n_train"] == 2500 and info.loc[0, "n_queries"] == 5
    assert info.loc[0, "query_lof_median"] > 0.5  # the unchanged queries scored by the same LOF models


def test_timeouts_failures_and_missing_dice_are_reported_not_dropped(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding(study.BASELINES["drce"]):
        def explain(self, *args, **kwargs):
            raise RuntimeError("boom")

    monkeypatch.setitem(study.BASELINES, "drce", Exploding)
    monkeypatch.setitem(sys.modules, "dice_ml", None)  # import dice_ml raises ImportError
    out = str(tmp_path)
    args = TINY + ["--methods", "robxce", "drce", "dice-random", "--time-budget", "0.0001", "--out", out]
    assert study.main(args) == 0
    results = _results(out).set_index("method")
    assert results.index.tolist() == ["robxce", "drce", "dice-random"]
    assert results.loc["robxce", "status"].startswith("timeout")
    assert results.loc["robxce", "n_queries"] == 1  # stopped after its first query
    assert results.loc["drce", "status"] == "failed: RuntimeError: boom"
    assert results.loc["dice-random", "status"].startswith("not installed")


def test_help_lists_the_options(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        study.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--datasets",
        "--methods",
        "--classifier",
        "--n-queries",
        "--retrained",
        "--seed",
        "--time-budget",
        "--out",
        "--max-train-rows",
        "--epochs",
    ):
        assert option in text

"""End-to-end tests of ``lapace study`` on a tiny configuration of bundled COMPAS (modern environment only)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

from lapace_plugin import datasets
from lapace_plugin.apps import study as study_cli
from lapace_plugin.evaluation import artefacts, intervals, methods, study
from lapace_plugin.evaluation.cells import Setup
from lapace_plugin.evaluation.metrics import AGGREGATES, METRICS
from lapace_plugin.evaluation.models import split

pytestmark = pytest.mark.slow

TINY = ["--datasets", "compas", "--n-queries", "6", "--retrained", "2", "--epochs", "15", "--max-train-rows", "1500",
        "--no-progress"]
METHODS = ["nnce", "lapace-first", "lapace-robust", "lapace-robust-typical", "lapace-last"]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("study"))
    assert study_cli.main(TINY + ["--seeds", "0", "1", "--methods"] + METHODS + ["--out", out]) == 0
    return out


def _csv(out: str, *path: str) -> pd.DataFrame:
    return pd.read_csv(os.path.join(out, *path))


def test_every_listed_artefact_is_written(tiny_study: str) -> None:
    for pattern, _ in artefacts.ARTEFACTS:
        for name in pattern.split(", "):
            for seed in (0, 1):
                for method in METHODS:
                    path = name.replace("<dataset>", "compas").replace("<k>", str(seed)).replace("<method>", method)
                    assert os.path.getsize(os.path.join(tiny_study, path)) > 0, path
    assert "<table" in open(os.path.join(tiny_study, "report.html")).read()
    generative = _csv(tiny_study, "generative.csv")
    assert (generative["status"] == "ok").all() and generative["tstr_accuracy"].between(0, 1).all()


def test_results_have_one_row_per_dataset_method_and_seed(tiny_study: str) -> None:
    results = _csv(tiny_study, "results.csv")
    assert list(results.columns) == list(study.COLUMNS)
    assert list(zip(results["seed"], results["method"])) == [(s, m) for s in (0, 1) for m in METHODS]
    assert (results["status"] == "ok").all(), results["status"].tolist()
    assert (results["n_queries"] == 6).all()
    last = results[results["method"] == "lapace-last"]
    assert (last["validity"] == 1.0).all() and (last["input_robustness"] == 0.0).all()
    for name in ("lapace-robust", "lapace-robust-typical"):  # the robust choice (kept typical): one plan per person, >= 0.7
        robust = results[results["method"] == name]
        assert (robust["n_counterfactuals"] == robust["n_covered"]).all() and (robust["validity"] == 1.0).all()
        for seed in (0, 1):
            chosen = _csv(tiny_study, "cells", "compas", "seed%d" % seed, name, "counterfactuals.csv")
            assert len(chosen) and (chosen["probability"] >= 0.7).all() and not chosen["query"].duplicated().any()


def test_the_lapace_methods_of_a_dataset_and_seed_share_one_fit(tiny_study: str) -> None:
    """One ``Lapace`` per (dataset, seed, decoder): every LAPACE method of a cell reports that one fit's seconds and
    centroid validity."""
    results = _csv(tiny_study, "results.csv")
    lapace = results[results["method"].str.startswith("lapace-")]
    per_seed = lapace.groupby("seed")[["fit_time", "centroid_validity"]].nunique()
    assert (per_seed == 1).all().all(), per_seed


def test_every_results_cell_is_recomputed_from_the_per_row_files(tiny_study: str) -> None:
    results = _csv(tiny_study, "results.csv")
    for _, row in results.iterrows():
        base = os.path.join("cells", "compas", "seed%d" % row["seed"], row["method"])
        per_cf = _csv(tiny_study, base, "per_counterfactual.csv")
        per_query = _csv(tiny_study, base, "per_query.csv")
        assert len(per_cf) == row["n_counterfactuals"] and len(per_query) == row["n_queries"]
        for name, metric in METRICS.items():
            if metric.rows is None:
                continue
            column = "lof" if name.startswith("lof_") else name
            frame = per_cf if metric.level == "counterfactual" else per_query
            assert AGGREGATES[metric.aggregate](frame[column].to_numpy(dtype=float)) == pytest.approx(
                row[name], nan_ok=True), (row["method"], name)
        assert row["n_covered"] == per_query["coverage"].sum()
        assert row["n_both_runs"] == per_query["input_robustness"].notna().sum()
        retrained = _csv(tiny_study, base, "retrained_predictions.csv")
        valid = retrained[["model_0", "model_1"]].to_numpy() == per_query.set_index("query").loc[retrained["query"], "target"].to_numpy()[:, None]
        assert valid.mean() == pytest.approx(row["model_robustness"])


def test_summary_is_mean_and_t_interval_over_seeds(tiny_study: str) -> None:
    results, summary = _csv(tiny_study, "results.csv"), _csv(tiny_study, "summary.csv")
    for _, row in summary.iterrows():
        per_seed = results[results["method"] == row["method"]]["proximity_l1"]
        ci = intervals.t_interval(per_seed)
        assert row["n_seeds"] == 2
        assert (row["proximity_l1"], row["proximity_l1_low"], row["proximity_l1_high"]) == pytest.approx((ci.mean, ci.low, ci.high))
        # two seeds: mean +- t(0.975, 1) * sd / sqrt(2), t = 12.706
        half = 12.7062047 * per_seed.std(ddof=1) / np.sqrt(2)
        assert row["proximity_l1_high"] - row["proximity_l1"] == pytest.approx(half, rel=1e-6)


def test_claims_hold_only_when_every_seed_or_the_interval_supports_them(tiny_study: str) -> None:
    claims = _csv(tiny_study, "claims.csv").set_index("claim")
    assert claims.loc["lapace-last validity 100%", "verdict"] == "holds"
    assert claims.loc["lapace-last input robustness 0", "verdict"] == "holds"
    results = _csv(tiny_study, "results.csv").set_index(["method", "seed"])
    row = claims.loc["lapace-first proximity (L1) at least as good as NNCE"]
    diff = results.loc["nnce", "proximity_l1"] - results.loc["lapace-first", "proximity_l1"]  # positive favours lapace-first
    ci = intervals.t_interval(diff)
    assert (row["estimate"], row["low"], row["high"]) == pytest.approx((ci.mean, ci.low, ci.high))
    expected = "holds" if ci.low >= 0 else "fails" if ci.high < 0 else "inconclusive"
    assert row["verdict"] == expected
    # claims about methods the study was not asked to run are left out; "best" is against the baselines only
    assert not [c for c in claims.index if "revert" in c or "-paper" in c or "neighbour" in c]
    best = claims.loc["lapace-last model robustness best"]
    diff = results.loc["lapace-last", "model_robustness"] - results.loc["nnce", "model_robustness"]
    assert best["estimate"] == pytest.approx(intervals.t_interval(diff).mean) and "lapace-first" not in best["detail"]


def test_lapace_counterfactuals_carry_path_metadata_and_failures_their_reason(tiny_study: str) -> None:
    base = os.path.join("cells", "compas", "seed0")
    cfs = _csv(tiny_study, base, "lapace-first", "counterfactuals.csv")
    assert {"query", "rank", "component", "tau", "probability"} <= set(cfs.columns)
    assert cfs["tau"].between(0, 1).all() and cfs["probability"].between(0, 1).all()
    queries = _csv(tiny_study, base, "queries.csv")
    assert set(cfs["query"]) <= set(queries["query"])
    failures = _csv(tiny_study, base, "lapace-first", "failures.csv")
    per_query = _csv(tiny_study, base, "lapace-first", "per_query.csv")
    # a query explained but missing input robustness failed in the perturbed run, and says why
    lost = per_query[(per_query["coverage"] == 1) & per_query["input_robustness"].isna()]["query"]
    assert set(lost) <= set(failures.loc[failures["run"] == "perturbed", "query"])
    assert failures["reason"].str.len().gt(0).all()


def test_config_json_reruns_the_same_study(tiny_study: str, tmp_path) -> None:
    saved = json.load(open(os.path.join(tiny_study, "config.json")))
    assert saved["config"]["seeds"] == [0, 1] and saved["versions"]["torch"]
    config = study.StudyConfig.from_json(os.path.join(tiny_study, "config.json"), out=str(tmp_path), seeds=[1],
                                         methods=["nnce"], generative=False, progress=False)
    again = study.run_study(config).results
    first = _csv(tiny_study, "results.csv")
    first = first[(first["seed"] == 1) & (first["method"] == "nnce")]
    for column in ("validity", "proximity_l1", "lof_median", "input_robustness", "model_robustness"):
        assert again[column].iloc[0] == pytest.approx(first[column].iloc[0])


def test_metrics_use_training_ranges_not_the_whole_dataset() -> None:
    config = study.StudyConfig(datasets=["compas"], methods=["nnce"], retrained=1, max_train_rows=1500)
    setup = Setup("compas", 0, config)
    X_train = split(datasets.load("compas"), 0.2, 0)[0].iloc[:1500]
    for f in setup.schema.continuous:
        assert setup.schema.ranges[f] == (X_train[f].min(), X_train[f].max())
    assert setup.schema.ranges["juv_fel_count"] != datasets.load("compas").schema.ranges["juv_fel_count"]


def test_timeouts_failures_and_missing_frameworks_are_reported_not_dropped(tmp_path, monkeypatch) -> None:
    class Exploding(methods.BASELINES["drce"]):
        def explain(self, *args, **kwargs):
            raise RuntimeError("boom")

    monkeypatch.setitem(methods.BASELINES, "drce", Exploding)
    monkeypatch.setitem(sys.modules, "dice_ml", None)  # import dice_ml raises ImportError
    out = str(tmp_path)
    args = TINY + ["--methods", "robxce", "drce", "dice-random", "rocelib-drce", "--time-budget", "0.0001",
                   "--no-generative", "--out", out]
    assert study_cli.main(args) == 0
    results = _csv(out, "results.csv").set_index("method")
    assert results.index.tolist() == ["robxce", "drce", "dice-random", "rocelib-drce"]
    assert results.loc["robxce", "status"].startswith("timeout")
    assert results.loc["robxce", "n_queries"] == 1  # stopped after its first query
    assert results.loc["drce", "status"] == "failed: RuntimeError: boom"
    assert results.loc["dice-random", "status"].startswith("not installed")
    assert results.loc["rocelib-drce", "status"].startswith("timeout")  # ran: rocelib is installed


def test_binary_only_rocelib_methods_are_not_applicable_to_wine(tmp_path) -> None:
    config = study.StudyConfig(datasets=["wine"], methods=["rocelib-kdtree-nnce"], n_queries=2, retrained=1,
                               generative=False, out=str(tmp_path), progress=False)
    status = study.run_study(config).results["status"].iloc[0]
    assert status.startswith("not applicable: RoCELib's generators handle binary tasks only")


def test_ellice_runs_beside_the_others_on_the_logistic_classifier_and_is_not_applicable_elsewhere(tmp_path) -> None:
    common = dict(datasets=["german"], n_queries=3, retrained=2, generative=False, progress=False)
    config = study.StudyConfig(methods=["nnce", "ellice"], classifier="logistic", out=str(tmp_path / "logistic"), **common)
    results = study.run_study(config).results.set_index("method")
    assert (results["status"] == "ok").all(), results["status"].tolist()
    assert results.loc["ellice", "n_queries"] == 3 and results.loc["ellice", "validity"] == 1.0
    forest = study.StudyConfig(methods=["ellice"], out=str(tmp_path / "rf"), **common)
    status = study.run_study(forest).results["status"].iloc[0]
    assert status.startswith("not applicable: ElliCE explains a logistic regression")


def test_config_rejects_bad_values_by_name() -> None:
    with pytest.raises(ValueError, match="unknown methods"):
        study.StudyConfig(methods=["wachter"])
    with pytest.raises(ValueError, match="seeds must be distinct"):
        study.StudyConfig(seeds=[0, 0])
    with pytest.raises(ValueError, match="either workers"):
        study.StudyConfig(workers=2, scheduler="tcp://localhost:8786")


def test_help_lists_the_options_and_the_files(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        study_cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--datasets", "--methods", "--seeds", "--config", "--slow-queries", "--workers", "--scheduler",
                   "--time-budget", "--out", "--max-train-rows", "--epochs", "--no-generative"):
        assert option in text
    for path, _ in artefacts.ARTEFACTS:
        assert path in text


def test_a_two_worker_dask_run_gives_the_serial_results(tiny_study: str, tmp_path) -> None:
    # the same cells as the serial fixture's seed 1, as Dask tasks on a local cluster of 2 worker processes
    methods = ["nnce", "lapace-first"]
    config = study.StudyConfig.from_json(os.path.join(tiny_study, "config.json"), out=str(tmp_path), seeds=[1], workers=2,
                                         methods=methods, generative=False, progress=False)
    on_dask = study.run_study(config).results.reset_index(drop=True)
    serial = _csv(tiny_study, "results.csv")
    serial = serial[(serial["seed"] == 1) & serial["method"].isin(methods)].reset_index(drop=True)
    timed = ["runtime_per_query", "fit_time"]
    pd.testing.assert_frame_equal(on_dask.drop(columns=timed), serial.drop(columns=timed), check_dtype=False)
    for method in methods:
        path = ("cells", "compas", "seed1", method, "counterfactuals.csv")
        pd.testing.assert_frame_equal(_csv(str(tmp_path), *path), _csv(tiny_study, *path))


def test_shared_fits_and_a_derived_method_give_what_each_method_gets_alone(tiny_study: str, tmp_path) -> None:
    # lapace-robust from lapace-robust-options' passes (DERIVED) and C-CHVAE and REVISE on one shared VAE, as Dask
    # tasks: the robust choice equals the serial fixture's, which explained on its own
    names = ["lapace-robust-options", "lapace-robust", "cchvae", "revise"]
    config = study.StudyConfig.from_json(os.path.join(tiny_study, "config.json"), out=str(tmp_path), seeds=[1], workers=2,
                                         methods=names, generative=False, progress=False)
    results = study.run_study(config).results.set_index("method")
    assert list(results.index) == names and (results["status"] == "ok").all(), results["status"].tolist()
    serial = _csv(tiny_study, "results.csv").set_index(["seed", "method"]).loc[(1, "lapace-robust")]
    timed = ["runtime_per_query", "fit_time", "seed"]
    pd.testing.assert_series_equal(results.loc["lapace-robust"].drop(timed), serial.drop(timed[:2]), check_dtype=False,
                                   check_names=False)
    path = ("cells", "compas", "seed1", "lapace-robust", "counterfactuals.csv")
    pd.testing.assert_frame_equal(_csv(str(tmp_path), *path), _csv(tiny_study, *path))
    same = ["runtime_per_query", "n_queries"]  # one explain for both: the same seconds per query
    assert results.loc["lapace-robust", same].tolist() == results.loc["lapace-robust-options", same].tolist()
    assert (results.loc[["cchvae", "revise"], "validity"] == 1.0).all()


def test_generative_evaluation_trains_on_synthetic_rows_and_tests_on_real_ones() -> None:
    from lapace_plugin.evaluation.generative import PAPER_GAPS, train_on_synthetic

    config = study.StudyConfig(datasets=["compas"], methods=["lapace-last"], retrained=1, max_train_rows=1200, epochs=10)
    setup = Setup("compas", 0, config)
    explainer = setup.fit_lapace()
    assert hasattr(explainer, "sample"), "Lapace.sample(n, target_class) is missing: the generative evaluation needs it"
    row, synthetic = train_on_synthetic(setup, explainer)
    assert row["status"] == "ok"
    # as many synthetic rows per class as the training split has labels of that class, each a valid raw row
    counts = synthetic["class"].value_counts().sort_index()
    assert counts.tolist() == setup.y_train.value_counts().sort_index().tolist()
    setup.schema.validate(synthetic[setup.schema.features], name="synthetic rows")
    assert row["synthetic_assigned_to_class"] == 1.0  # sample decodes rows the classifier assigns to the class
    assert 0.0 <= row["tstr_accuracy"] <= 1.0
    assert row["gap"] == pytest.approx(setup.accuracy - row["tstr_accuracy"])
    assert row["paper_gap"] == PAPER_GAPS["compas"] == 0.058


def test_config_option_reruns_the_saved_study_with_the_given_options_replacing_its_values(tiny_study: str) -> None:
    parser = study_cli.build_parser()
    args = parser.parse_args(["--config", os.path.join(tiny_study, "config.json"), "--seeds", "5", "--no-generative",
                              "--out", "elsewhere"])
    config = study_cli.config_from_args(args, "lapace study --config ...", parser)
    assert (config.seeds, config.generative, config.out) == ([5], False, "elsewhere")
    assert (config.methods, config.epochs, config.max_train_rows, config.n_queries) == (METHODS, 15, 1500, 6)  # saved
    assert config.progress is False  # saved (the fixture ran with --no-progress)

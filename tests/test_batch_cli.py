"""``lapace fit`` and ``lapace explain`` end to end on Parquet files against a real Dask LocalCluster (2 processes).

Modern environment only (needs the ``distributed`` extra: dask, distributed, pyarrow).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from lapace_plugin import Lapace, distributed
from lapace_plugin.apps import batch, cli


@pytest.fixture(scope="module")
def files(compas, tmp_path_factory):
    """Training table, classifier file, fitted explainer folder and rows to explain (two of them bad)."""
    folder = tmp_path_factory.mktemp("batch")
    paths = {name: str(folder / name) for name in ("train.parquet", "model.joblib", "explainer", "rows.parquet")}
    compas.X_train.assign(label=compas.model.predict(compas.X_train)).to_parquet(paths["train.parquet"])
    joblib.dump(compas.model, paths["model.joblib"])
    cli.main(["fit", "--data", paths["train.parquet"], "--target", "label", "--model", paths["model.joblib"],
              "--out", paths["explainer"], "--epochs", "3", "--quiet", "--trust-pickle"])
    rows = compas.X_test.iloc[:500].reset_index(drop=True)
    rows["race"] = rows["race"].astype(object)
    rows.loc[4, "age"] = np.nan
    rows.loc[9, "race"] = "Martian"
    rows.to_parquet(paths["rows.parquet"], index=False)
    paths["rows"] = rows
    return paths


def explain_args(files, output, *extra):
    return ["explain", "--explainer", files["explainer"], "--model", files["model.joblib"], "--input", files["rows.parquet"],
            "--output", output, "--partition-rows", "100", "--quiet", "--trust-pickle"] + list(extra)


def read(folder):
    frame = pd.read_parquet(folder)
    return frame.sort_values([c for c in ("query", "rank") if c in frame.columns]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(files, compas):
    """In-process explain of the valid rows by the saved explainer, as the workers load it."""
    explainer = Lapace.load(files["explainer"], compas.model.predict_proba)
    counterfactuals = explainer.explain(files["rows"].drop(index=[4, 9])).counterfactuals.reset_index()
    return counterfactuals.sort_values(["query", "rank"]).reset_index(drop=True)


def assert_matches_in_process(files, reference, output):
    """The written parts hold every row once, identical to in-process explain of the loaded explainer."""
    rows = files["rows"]
    counterfactuals, failures = read(distributed.counterfactuals_path(output)), read(distributed.failures_path(output))
    assert set(counterfactuals["query"]).isdisjoint(failures["query"])
    assert counterfactuals["query"].nunique() + len(failures) == len(rows)
    assert not counterfactuals.duplicated(["query", "rank"]).any() and not failures["query"].duplicated().any()
    assert failures.set_index("query").loc[[4, 9], "stage"].tolist() == ["validation", "validation"]
    assert "unknown category ['Martian']" in failures.set_index("query").loc[9, "reason"]
    pd.testing.assert_frame_equal(counterfactuals[list(reference.columns)], reference, check_dtype=False)


def test_fit_then_explain_writes_every_row_once_identical_to_in_process(client, files, reference, tmp_path, capsys):
    output = str(tmp_path / "cf.parquet")
    assert cli.main(explain_args(files, output, "--scheduler", client.scheduler.address)) == 0
    assert "500 rows: " in capsys.readouterr().out
    assert len([f for f in os.listdir(distributed.counterfactuals_path(output)) if f.startswith("part-")]) == 5
    assert_matches_in_process(files, reference, output)


def test_a_crashed_run_resumes_without_duplicating_rows(client, files, reference, tmp_path, capsys):
    output = str(tmp_path / "cf.parquet")
    command = [sys.executable, "-m", "lapace_plugin.apps.cli"] + explain_args(
        files, output, "--scheduler", client.scheduler.address, "--partition-rows", "20")
    crashed = subprocess.Popen(command, env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.isdir(distributed.counterfactuals_path(output))
                                           and any(f.startswith("part-") for f in os.listdir(distributed.counterfactuals_path(output)))):
        time.sleep(0.01)
    os.kill(crashed.pid, signal.SIGKILL)
    crashed.wait()
    written = len([f for f in os.listdir(distributed.counterfactuals_path(output)) if f.startswith("part-")])
    assert 0 < written < 25, "the crash must come mid-run"
    assert cli.main(explain_args(files, output, "--scheduler", client.scheduler.address, "--partition-rows", "20")) == 0
    assert "resumed from an earlier run" in capsys.readouterr().out
    assert len([f for f in os.listdir(distributed.counterfactuals_path(output)) if f.startswith("part-")]) == 25
    assert_matches_in_process(files, reference, output)


def test_csv_input_on_an_embedded_cluster_with_other_settings(files, compas, tmp_path):
    rows = files["rows"].drop(index=[4, 9]).iloc[:100]
    rows.to_csv(str(tmp_path / "rows.csv"), index=False)
    output = str(tmp_path / "cf.parquet")
    args = explain_args(files, output, "--workers", "1", "--strategy", "last", "--constraints", "schema",
                        "--n-counterfactuals", "2")
    args[args.index("--input") + 1] = str(tmp_path / "rows.csv")
    assert cli.main(args) == 0
    explainer = Lapace.load(files["explainer"], compas.model.predict_proba)
    reference = explainer.explain(rows.reset_index(drop=True), strategy="last", constraints="schema", n_counterfactuals=2)
    reference = reference.counterfactuals.reset_index()
    pd.testing.assert_frame_equal(read(distributed.counterfactuals_path(output))[list(reference.columns)], reference, check_dtype=False)


def test_a_different_run_into_the_same_output_is_refused(client, files, tmp_path, capsys):
    output = str(tmp_path / "cf.parquet")
    address = client.scheduler.address
    assert cli.main(explain_args(files, output, "--scheduler", address, "--partition-rows", "200")) == 0
    assert cli.main(explain_args(files, output, "--scheduler", address, "--partition-rows", "100")) == 2
    assert "different partition_rows, pieces" in capsys.readouterr().err
    assert cli.main(explain_args(files, output, "--scheduler", address, "--partition-rows", "100", "--overwrite")) == 0
    assert len([f for f in os.listdir(distributed.counterfactuals_path(output)) if f.startswith("part-")]) == 5


def test_help_warns_that_joblib_files_are_trusted_code(capsys):
    for command in ("fit", "explain"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "RUNS CODE from it, so load only files you trust" in " ".join(capsys.readouterr().out.split())


def test_skops_models_load_without_running_code(compas, tmp_path):
    import skops.io as sio

    path = str(tmp_path / "model.skops")
    sio.dump(compas.model, path)
    untrusted = sio.get_untrusted_types(file=path)
    if untrusted:
        with pytest.raises(ValueError, match="pass --trust"):
            batch.load_model(path, compas.ds.schema.features)
    predict_proba, classes = batch.load_model(path, compas.ds.schema.features, trust=untrusted)
    np.testing.assert_array_equal(predict_proba(compas.X_test), compas.model.predict_proba(compas.X_test))
    assert classes == list(compas.model.classes_)


def test_torchscript_models_load_and_travel_to_workers_as_bytes(tmp_path):
    torch.manual_seed(0)
    module = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(dim=1)))
    path = str(tmp_path / "model.pt")
    torch.jit.save(module, path)
    X = pd.DataFrame({"b": [0.5, -1.0, 2.0], "a": [1.0, 3.0, 0.0]})
    predict_proba, classes = batch.load_model(path, ["a", "b"])
    expected = module(torch.tensor(X[["a", "b"]].to_numpy(dtype=np.float32))).detach().numpy()
    np.testing.assert_allclose(predict_proba(X), expected, rtol=1e-6)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(predict_proba))(X), expected, rtol=1e-6)
    assert classes is None
    with pytest.raises(ValueError, match=r"numeric features only; column\(s\) \['a'\]"):
        predict_proba(X.assign(a=["x", "y", "z"]))

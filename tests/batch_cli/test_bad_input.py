"""Every bad input to ``lapace fit`` / ``lapace explain`` gets one line on stderr and exit code 2 (or, for an empty
input, a clear message, exit 0 and an empty but valid output); ids are checked across partitions."""

from __future__ import annotations

import os
import socket
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from cli_cases import read, refused

from lapace_plugin import FeatureSchema, InvalidParameterError, Lapace
from lapace_plugin.apps import batch, cli
from lapace_plugin.distributed import connect


def test_a_repeated_id_in_another_partition_is_refused_naming_it(tiny, tmp_path, capsys, explain_args):
    rows = tiny["rows"].assign(application=["app-%02d" % i for i in range(len(tiny["rows"]))])
    rows.loc[45, "application"] = "app-03"  # partition 2 repeats an id of partition 0
    path = str(tmp_path / "rows.parquet")
    rows.to_parquet(path, index=False, row_group_size=20)
    refused(capsys, explain_args(str(tmp_path / "out"), "--id-column", "application", input=path),
            "id column 'application' repeats id(s) ['app-03']")
    rows.loc[45, "application"] = None
    rows.to_parquet(path, index=False, row_group_size=20)
    refused(capsys, explain_args(str(tmp_path / "out"), "--id-column", "application", input=path),
            "id column 'application' holds no id (null) for 1 row(s) at input position(s) [45]")
    refused(capsys, explain_args(str(tmp_path / "out"), "--id-column", "age"), "id column 'age' is one of the explainer's features")
    assert not os.path.exists(str(tmp_path / "out"))  # refused before writing: not even the folder


def test_bad_explain_settings_are_refused_before_the_model_is_loaded(tmp_path, capsys):
    out = str(tmp_path / "out")
    base = ["explain", "--explainer", str(tmp_path / "none"), "--model", str(tmp_path / "none.joblib"), "--input",
            str(tmp_path / "none.csv"), "--output", out]
    refused(capsys, base + ["--max-lof", "0"], "max_lof must be in (0, 1e+06], got 0.0")
    refused(capsys, base + ["--min-probability", "2"], "min_probability")
    assert not os.path.exists(out)


def test_an_empty_input_says_so_and_writes_an_empty_valid_output(tiny, tmp_path, capsys, explain_args):
    for name, write in (("empty.parquet", lambda f, p: f.to_parquet(p, index=False)),
                        ("header.csv", lambda f, p: f.to_csv(p, index=False))):
        path, output = str(tmp_path / name), str(tmp_path / ("out-" + name))
        write(tiny["rows"].iloc[:0], path)
        assert cli.main(explain_args(output, input=path)) == 0
        captured = capsys.readouterr()
        assert "the input has no rows" in captured.err and "0 rows: 0 explained, 0 failed" in captured.out
        counterfactuals, failures = read(os.path.join(output, "counterfactuals")), read(os.path.join(output, "failures"))
        assert len(counterfactuals) == 0 and len(failures) == 0
        assert {"query", "rank", "age", "probability"} <= set(counterfactuals.columns)
        assert list(failures.columns) == ["query", "reason", "stage"]
        assert cli.main(explain_args(output, input=path)) == 0  # the rerun resumes the empty run


class Logits(torch.nn.Module):
    def forward(self, x):
        return torch.stack([x[:, 0] - 40.0, 40.0 - x[:, 0]], dim=1)


class Softmax(torch.nn.Module):
    def forward(self, x):
        return torch.softmax(torch.stack([x[:, 0] - 40.0, 40.0 - x[:, 0]], dim=1) / 5.0, dim=1)


def test_logits_and_a_torchscript_model_of_the_wrong_width_are_refused(tiny, tmp_path, capsys):
    features = list(tiny["ds"].schema.continuous[:3])
    numeric = tiny["rows"][features].dropna().iloc[:30]
    logits = str(tmp_path / "logits.pt")
    torch.jit.save(torch.jit.script(Logits()), logits)
    predict_proba, _ = batch.load_model(logits, features)
    with pytest.raises(ValueError, match="must return probabilities .* wrap it in a softmax"):
        Lapace(schema=FeatureSchema.infer(numeric), epochs=1, verbose=False).fit(numeric, predict_proba)
    wrong = str(tmp_path / "wide.pt")
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(5, 2), torch.nn.Softmax(dim=1))), wrong)
    with pytest.raises(ValueError, match=r"does not take a \(rows, 3\) float32 tensor"):
        batch.load_model(wrong, features)[0](numeric)
    train, softmax = str(tmp_path / "train.parquet"), str(tmp_path / "softmax.pt")
    numeric.assign(label=0).to_parquet(train)
    refused(capsys, ["fit", "--data", train, "--target", "label", "--model", logits, "--out", str(tmp_path / "e"), "--quiet"],
            "wrap it in a softmax")
    torch.jit.save(torch.jit.script(Softmax()), softmax)
    assert cli.main(["fit", "--data", train, "--target", "label", "--model", softmax, "--out", str(tmp_path / "e"), "--quiet",
                     "--epochs", "1"]) == 0
    numeric.to_parquet(str(tmp_path / "rows.parquet"))
    refused(capsys, ["explain", "--explainer", str(tmp_path / "e"), "--model", logits, "--input", str(tmp_path / "rows.parquet"),
                     "--output", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"], "wrap it in a softmax")


def test_pickle_models_warn_once_in_one_line_unless_trusted(tiny, capsys, monkeypatch):
    features = list(tiny["ds"].schema.features)
    with pytest.warns(UserWarning, match="runs code stored in it.*--trust-pickle"):
        batch.load_model(tiny["model.joblib"], features)
    with _no_warning():
        batch.load_model(tiny["model.joblib"], features, trust_pickle=True)
        monkeypatch.setenv("LAPACE_TRUST_PICKLE", "1")
        batch.load_model(tiny["model.joblib"], features)


class _no_warning:
    def __enter__(self):
        import warnings

        self.catcher = warnings.catch_warnings(record=True)
        self.seen = self.catcher.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self.catcher.__exit__(*exc)
        assert not [w for w in self.seen if "runs code" in str(w.message)]


def test_invalid_json_files_are_named(tiny, tmp_path, capsys, explain_args):
    bad = str(tmp_path / "constraints.json")
    with open(bad, "w") as fh:
        fh.write("{'immutable': [age]}")
    refused(capsys, explain_args(str(tmp_path / "out"), "--constraints", bad), "the constraints file", "constraints.json",
            "is not valid JSON")
    refused(capsys, ["fit", "--data", tiny["train.parquet"], "--target", "label", "--model", tiny["model.joblib"], "--out",
                     str(tmp_path / "e"), "--schema", bad], "the schema file", "is not valid JSON")
    refused(capsys, ["fit", "--data", tiny["train.parquet"], "--target", "nope", "--model", tiny["model.joblib"], "--out",
                     str(tmp_path / "e")], "column(s) ['nope'] are not in")


def test_too_many_workers_are_capped_with_a_warning():
    from lapace_plugin.distributed.cluster import embedded_workers, machine_workers

    with pytest.warns(UserWarning, match="workers=1000 is more than the %d CPU core" % machine_workers()):
        assert embedded_workers(1000) == machine_workers()
    with pytest.raises(InvalidParameterError, match="at least 1"):
        embedded_workers(0)


def test_a_scheduler_address_where_no_dask_answers_times_out_naming_it(capsys):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()  # accepts, never answers
    address = "tcp://127.0.0.1:%d" % server.getsockname()[1]
    try:
        with pytest.raises(TimeoutError, match="no Dask scheduler answered at %s within 2 s" % address):
            with connect(scheduler=address, timeout=2):
                pass
    finally:
        server.close()


def test_debug_shows_the_traceback_and_help_documents_the_exit_codes(tmp_path, capsys):
    args = ["explain", "--explainer", str(tmp_path / "none"), "--model", "m.joblib", "--input", "x.parquet", "--output",
            str(tmp_path / "out")]
    refused(capsys, args, "lapace explain: error: --input 'x.parquet' does not exist")
    with pytest.raises(FileNotFoundError, match="x.parquet"):
        cli.main(args + ["--debug"])
    refused(capsys, args + ["--failures", str(tmp_path / "f")], "--failures is gone", "failures")
    refused(capsys, args + ["--workers", "two"], "argument --workers: invalid int value: 'two' (see lapace explain --help)")
    for command in ("explain", "fit"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "Exit codes: 0 done" in capsys.readouterr().out


def test_infer_thresholds_and_sample_sizes_are_validated(tiny):
    X = tiny["rows"].dropna().iloc[:30]
    for name, value in (("point_mass_min_share", -1), ("point_mass_min_share", 1.5), ("point_mass_min_share", float("nan")),
                        ("discrete_max_values", -3), ("discrete_max_values", 2.5), ("discrete_max_values", True)):
        with pytest.raises(InvalidParameterError, match=name):
            FeatureSchema.infer(X, **{name: value})
    explainer = Lapace.load(tiny["explainer"], tiny["model"].predict_proba)
    with pytest.raises(InvalidParameterError, match="n must be between 1 and 1000000, got 1000000000"):
        explainer.sample(10 ** 9, 1)
    many = pd.DataFrame({"x": np.arange(2000.0), "code": ["c%d" % i for i in range(2000)]})
    with pytest.raises(ValueError, match="'code' has 2000 distinct values; more than 1000"):
        FeatureSchema.infer(many)

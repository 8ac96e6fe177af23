"""``--output`` / ``--out`` never change or delete a file the command did not write: the current directory, the
input, the explainer, a folder of the user's files are refused (with or without ``--overwrite``) with one line
naming the conflict, before any cluster starts; ``--overwrite`` deletes only an earlier run's own files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from cli_cases import read, refused, snapshot

from lapace_plugin.apps import cli
from lapace_plugin.evaluation import global_study, study

UNREACHABLE = "tcp://127.0.0.1:9"  # nothing listens: a path error must come before any connection


def with_scheduler(args, address):
    args = list(args)
    args[args.index("--scheduler") + 1] = address
    return args


def user_folder(path, **files):
    os.makedirs(path, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(path, name), "w") as fh:
            fh.write(text)
    return snapshot(path)


def test_output_dot_in_a_project_folder_is_refused_and_nothing_changes(tmp_path, monkeypatch, capsys, explain_args):
    before = user_folder(str(tmp_path), **{"analysis.py": "print(1)\n", "notes.txt": "mine"})
    monkeypatch.chdir(tmp_path)
    for extra in ((), ("--overwrite",)):
        refused(capsys, with_scheduler(explain_args(".", *extra), UNREACHABLE), "--output '.' is the current directory")
    refused(capsys, with_scheduler(explain_args("..", "--overwrite"), UNREACHABLE), "contains the current directory")
    global_args = explain_args(".")[:9] + ["--global"]  # explain, --explainer, --model, --input, --output .
    refused(capsys, global_args, "--output '.' is the current directory")
    assert snapshot(str(tmp_path)) == before


def test_output_equal_to_or_around_the_input_is_refused_and_the_input_is_unchanged(tiny, tmp_path, capsys, explain_args):
    folder = str(tmp_path / "data")
    os.makedirs(folder)
    shutil.copy(tiny["rows.parquet"], os.path.join(folder, "rows.parquet"))
    before = snapshot(str(tmp_path))
    args = dict(input=folder)
    refused(capsys, explain_args(folder, "--overwrite", **args), "is the --input")
    refused(capsys, explain_args(str(tmp_path), "--overwrite", **args), "contains the --input")
    refused(capsys, explain_args(os.path.join(folder, "out"), **args), "lies inside the --input")
    refused(capsys, explain_args(tiny["explainer"], "--overwrite"), "is the --explainer")
    refused(capsys, explain_args(tiny["model.joblib"], "--overwrite"), "is a file")
    assert snapshot(str(tmp_path)) == before


def test_a_folder_of_user_files_is_refused_even_with_overwrite(tmp_path, capsys, explain_args):
    mine = str(tmp_path / "mydata")
    before = user_folder(mine, **{"report.txt": "keep me"})
    for extra in ((), ("--overwrite",)):
        refused(capsys, with_scheduler(explain_args(mine, *extra), UNREACHABLE), "holds files lapace explain did not write",
                "report.txt")
    assert snapshot(mine) == before


def test_overwrite_deletes_only_the_earlier_runs_files(tiny, tmp_path, capsys, explain_args):
    output = str(tmp_path / "results")
    sibling = user_folder(str(tmp_path / "results-failures"), **{"budget.xlsx": "mine"})  # the old default name
    assert cli.main(explain_args(output)) == 0
    assert sorted(os.listdir(output)) == ["_lapace_run.json", "counterfactuals", "failures"]
    first = read(os.path.join(output, "counterfactuals"))
    assert cli.main(explain_args(output, "--overwrite", "--n-counterfactuals", "1")) == 0
    second = read(os.path.join(output, "counterfactuals"))
    assert second.groupby("query").size().max() == 1 and first.groupby("query").size().max() > 1
    with open(os.path.join(output, "counterfactuals", "summary.txt"), "w") as fh:  # a user file inside the run's layout
        fh.write("mine")
    capsys.readouterr()
    refused(capsys, explain_args(output, "--overwrite"), "did not write", "counterfactuals/summary.txt")
    assert os.path.exists(os.path.join(output, "counterfactuals", "summary.txt"))
    assert snapshot(str(tmp_path / "results-failures")) == sibling


def test_a_run_holding_the_folder_is_respected_and_a_dead_ones_lock_is_taken_over(tmp_path, capsys, explain_args):
    output = str(tmp_path / "results")
    os.makedirs(output)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock = {"pid": holder.pid, "host": os.uname().nodename, "started": "2026-01-01 00:00:00 UTC"}
        with open(os.path.join(output, "_lapace.lock"), "w") as fh:
            json.dump(lock, fh)
        refused(capsys, explain_args(output, "--overwrite"), "in use by another run (pid %d" % holder.pid, "2026-01-01")
        assert not os.path.exists(os.path.join(output, "_lapace_run.json"))
    finally:
        holder.kill()
        holder.wait()
    assert cli.main(explain_args(output)) == 0  # the holder is gone: its lock is stale
    assert not os.path.exists(os.path.join(output, "_lapace.lock"))


def test_resume_verifies_every_part_against_the_manifest(tiny, tmp_path, capsys, explain_args):
    output = str(tmp_path / "results")
    assert cli.main(explain_args(output)) == 0
    reference = read(os.path.join(output, "counterfactuals"))
    parts = os.path.join(output, "counterfactuals")
    shutil.copy(os.path.join(parts, "part-000000.parquet"), os.path.join(parts, "part-000001.parquet"))  # a wrong copy
    capsys.readouterr()
    assert cli.main(explain_args(output)) == 0
    assert "2 resumed from an earlier run" in capsys.readouterr().out
    pd_equal(read(parts), reference)
    shutil.copy(os.path.join(parts, "part-000000.parquet"), os.path.join(parts, "part-000007.parquet"))  # an extra part
    refused(capsys, explain_args(output, "--overwrite"), "counterfactuals/part-000007.parquet")
    os.remove(os.path.join(parts, "part-000007.parquet"))
    with open(os.path.join(output, "_lapace_run.json"), "w") as fh:
        fh.write("{not json")
    refused(capsys, explain_args(output), "the manifest", "_lapace_run.json", "is not valid JSON")


def pd_equal(a, b):
    import pandas as pd

    pd.testing.assert_frame_equal(a, b)


def test_fit_out_is_checked_before_fitting(tiny, tmp_path, monkeypatch, capsys):
    before = user_folder(str(tmp_path), **{"analysis.py": "print(1)\n"})
    monkeypatch.chdir(tmp_path)
    fit = ["fit", "--data", tiny["train.parquet"], "--target", "label", "--model", tiny["model.joblib"], "--quiet", "--trust-pickle",
           "--epochs", "1"]
    refused(capsys, fit + ["--out", "."], "--out '.' is the current directory")
    refused(capsys, fit + ["--out", os.path.dirname(tiny["train.parquet"])], "contains the --data")
    refused(capsys, fit + ["--out", str(tmp_path / "x"), "--sample", str(10 ** 9)], "--sample must be 1 to")
    assert snapshot(str(tmp_path)) == before


def test_the_study_out_is_checked_the_same_way(tmp_path, monkeypatch):
    before = user_folder(str(tmp_path / "mine"), **{"analysis.py": "print(1)\n"})
    monkeypatch.chdir(tmp_path / "mine")
    with pytest.raises(ValueError, match="out '.' is the current directory"):
        study.run_study(study.StudyConfig(out=".", datasets=["compas"], methods=["nnce"], seeds=[0]))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="holds files not written by lapace study"):
        study.run_study(study.StudyConfig(out="mine", datasets=["compas"], methods=["nnce"], seeds=[0]))
    with pytest.raises(ValueError, match="holds files not written by lapace study --global"):
        global_study.run_global_study(global_study.GlobalStudyConfig(out="mine", datasets=["compas"], seeds=[0]))
    assert snapshot(str(tmp_path / "mine")) == before

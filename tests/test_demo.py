"""``lapace demo`` end to end on a small bundled dataset: outputs, summary and the --revert option."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from lapace_plugin.apps import demo


def test_demo_writes_its_outputs_and_reverts_only_first_counterfactuals(tmp_path, capsys):
    out = str(tmp_path / "german")
    code = demo.main(["--dataset", "german", "--n-queries", "8", "--epochs", "20", "--out", out, "--revert", "--show", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "to be predicted" in printed and "summary" in printed
    for name in ("summary.csv", "summary.json", "counterfactuals_first.csv", "counterfactuals_last.json",
                 "latent_space.png", "feature_changes.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    summary = pd.read_csv(os.path.join(out, "summary.csv"), index_col="strategy")
    assert summary.loc["first", "validity"] == 1.0
    assert summary.loc["first", "constraint_violations"] == 0
    assert summary.loc["first", "sparsity"] < summary.loc["last", "sparsity"]
    first = pd.read_csv(os.path.join(out, "counterfactuals_first.csv"))
    last = pd.read_csv(os.path.join(out, "counterfactuals_last.csv"))
    assert (first.loc[first["rank"] >= 0, "reverted"] > 0).any()
    assert (last["reverted"] == 0).all()


def test_demo_help_names_the_revert_option(capsys):
    with pytest.raises(SystemExit) as info:
        demo.main(["--help"])
    assert info.value.code == 0
    assert "--revert" in capsys.readouterr().out

"""``lapace demo`` end to end on a small bundled dataset: outputs, summary, advice and the --no-revert option."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from lapace_plugin import datasets
from lapace_plugin.apps import demo

from fitted import fitted, unfavourable


def test_demo_writes_its_outputs_and_reverts_only_first_counterfactuals(tmp_path, capsys):
    out = str(tmp_path / "german")
    code = demo.main(["--dataset", "german", "--n-queries", "8", "--epochs", "20", "--out", out, "--show", "2", "--keep", "purpose"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "to be predicted" in printed and "summary" in printed
    assert "option 1 (probability" in printed
    assert "age_in_years': 5.0" in printed  # an age rises by at most five years
    # the advice names only changed features: a reverted option changes few
    advice = [line for line in printed.splitlines() if line.strip().startswith("option ")]
    assert advice and all(line.count("->") <= 4 for line in advice)
    assert "'purpose'" in printed and not [line for line in advice if "purpose " in line]  # --keep: never advised
    for name in ("summary.csv", "summary.json", "counterfactuals_first.csv", "counterfactuals_last.json",
                 "latent_space.png", "feature_changes.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    summary = pd.read_csv(os.path.join(out, "summary.csv"), index_col="strategy")
    assert summary.loc["first", "validity"] == 1.0
    assert summary.loc["first", "constraint_violations"] == 0
    assert summary.loc["first", "features_changed"] < summary.loc["last", "features_changed"]
    assert summary.loc["first", "unseen_pairs"] <= 0.1
    first = pd.read_csv(os.path.join(out, "counterfactuals_first.csv"))
    last = pd.read_csv(os.path.join(out, "counterfactuals_last.csv"))
    assert (first.loc[first["rank"] >= 0, "reverted"] > 0).any()
    assert (last["reverted"] == 0).all()
    robust = pd.read_csv(os.path.join(out, "counterfactuals_robust.csv"))
    assert (robust.loc[robust["rank"] >= 0, "probability"] >= 0.6).all()  # the default --min-probability
    assert summary.loc["robust", "validity"] == 1.0 and summary.loc["robust", "constraint_violations"] == 0
    for column in ("options_per_person", "option_diversity", "diversity_l1", "top_feature_share", "top_feature"):
        assert column in summary.columns, column
    assert 0 < summary.loc["first", "top_feature_share"] <= 1


def test_demo_help_names_the_revert_option(capsys):
    with pytest.raises(SystemExit) as info:
        demo.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "--no-revert" in text and "--age-limit" in text and "--no-diverse" in text and "--min-probability" in text


@pytest.mark.parametrize("option, value, name", [("--max-lof", "-1", "max_lof"), ("--min-probability", "1.5", "min_probability"),
                                                 ("--max-per-feature", "0", "max_per_feature")])
def test_a_bad_setting_is_refused_before_anything_is_trained_or_written(tmp_path, option, value, name):
    from lapace_plugin.errors import InvalidParameterError

    out = tmp_path / "out"
    with pytest.raises(InvalidParameterError, match=name):
        demo.main([option, value, "--out", str(out)])
    assert not out.exists()


def test_on_adult_family_status_is_not_advice():
    ds = datasets.load("adult")
    kept = demo.demo_constraints(ds.schema, 5.0, demo.NOT_ADVICE["adult"])
    assert {"marital_status", "relationship", "sex", "race"} <= set(kept.immutable)
    assert kept.limits["age"] == 5.0


def _rises(queries, res, feature):
    """How far each counterfactual of ``res`` raises ``feature`` above its query's value."""
    cf = res.counterfactuals
    return cf[feature].to_numpy() - queries.loc[cf.index.get_level_values("query"), feature].to_numpy()


def test_on_adult_education_takes_as_many_years_as_it_rises():
    f = fitted("adult")
    queries = unfavourable(f, 30)
    settings = dict(strategy="robust", min_probability=0.6, revert=True, diverse=True)
    timed = f.explainer.explain(queries, constraints=demo.demo_constraints(
        f.ds.schema, 5.0, demo.NOT_ADVICE["adult"], demo.TAKES_TIME["adult"]), **settings)
    rise, aged = _rises(queries, timed, "education_num"), _rises(queries, timed, "age")
    assert (rise > 0).any()  # education is still a lever
    assert (rise <= aged).all() and (aged <= 5.0).all()
    untimed = f.explainer.explain(queries, constraints=demo.demo_constraints(f.ds.schema, 5.0, demo.NOT_ADVICE["adult"]), **settings)
    assert (_rises(queries, untimed, "education_num") > _rises(queries, untimed, "age")).any()  # what the relation prevents


def test_no_revert_keeps_every_change(tmp_path):
    out = str(tmp_path / "compas")
    assert demo.main(["--dataset", "compas", "--n-queries", "6", "--epochs", "10", "--out", out, "--no-revert", "--show", "0"]) == 0
    first = pd.read_csv(os.path.join(out, "counterfactuals_first.csv"))
    assert (first["reverted"] == 0).all()

"""The DiCE adapter against the real dice-ml 0.12: construction, dispatch, arguments and result objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import dice_ml
import dice_ml.dice
import numpy as np
import pandas as pd
import pytest
from dice_ml.counterfactual_explanations import CounterfactualExplanations
from dice_ml.diverse_counterfactuals import CounterfactualExamples
from raiutils.exceptions import UserConfigValidationException

from lapace_plugin import Lapace
from lapace_plugin.adapters.dice import METHOD, LapaceDice, RegisteredLapaceDice, is_registered, register, unregister

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _frames(cfs: CounterfactualExplanations, sparse: bool = False):
    for ex in cfs.cf_examples_list:
        df = ex.final_cfs_df_sparse if sparse else ex.final_cfs_df
        yield ex, df


def _assert_valid(setup, cfs: CounterfactualExplanations, threshold: float = 0.5) -> int:
    """Every returned counterfactual (raw and sparse) is predicted as its desired class; returns the count."""
    total = 0
    labels = list(getattr(setup.model.model, "classes_", [0, 1]))
    for sparse in (False, True):
        for ex, df in _frames(cfs, sparse):
            if df is None:
                continue
            proba = setup.proba(df)
            target = labels.index(ex.desired_class)
            assert (proba.argmax(1) == target).all()
            assert (proba[:, target] >= threshold).all()
            assert (df[setup.target] == ex.desired_class).all()
            total += 0 if sparse else len(df)
    return total


# ---------------------------------------------------------------------- import and registration
def _run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=ROOT)


def test_import_without_dice_ml_names_the_extra_to_install():
    proc = _run_python(
        """
        import sys
        sys.modules["dice_ml"] = None  # as if dice-ml were not installed
        try:
            import lapace_plugin.adapters.dice
        except ImportError as exc:
            print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "lapace-plugin[dice]"' in proc.stdout


def test_importing_the_adapter_does_not_register_it():
    proc = _run_python(
        """
        import dice_ml.dice
        before = dice_ml.dice.decide
        import lapace_plugin.adapters.dice
        print(dice_ml.dice.decide is before, lapace_plugin.adapters.dice.is_registered())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False"]


def test_register_is_idempotent_and_dice_builds_a_lapace_explainer(adult):
    original = dice_ml.dice.decide
    register()
    register()
    assert is_registered()
    assert dice_ml.dice.decide.__wrapped__ is original  # wrapped exactly once
    exp = dice_ml.Dice(adult.data, adult.model, method=METHOD, explainer=adult.explainer.explainer)
    assert isinstance(exp, LapaceDice) and isinstance(exp, RegisteredLapaceDice)
    assert exp.explainer is adult.explainer.explainer
    # DiCE's own methods are untouched
    assert type(dice_ml.Dice(adult.data, adult.model, method="random")).__name__ == "DiceRandom"
    unregister()
    assert dice_ml.dice.decide is original
    with pytest.raises(UserConfigValidationException):
        dice_ml.Dice(adult.data, adult.model, method=METHOD)


def test_register_defaults_reach_the_explainer_and_dice_keywords_win(adult):
    register(explainer=adult.explainer.explainer, strategy="last")
    exp = dice_ml.Dice(adult.data, adult.model, method="lapace")
    assert exp.strategy == "last" and exp.explainer is adult.explainer.explainer
    assert dice_ml.Dice(adult.data, adult.model, method="lapace", strategy="first").strategy == "first"


def dice_script(d, m, method, query):
    """A user's DiCE script; only ``method`` changes between runs."""
    exp = dice_ml.Dice(d, m, method=method)
    cfs = exp.generate_counterfactuals(query, total_CFs=3, desired_class="opposite")
    cfs.visualize_as_dataframe(show_only_changes=True)
    return cfs


def test_unchanged_dice_script_runs_with_random_then_lapace(adult, capsys):
    query = adult.queries.iloc[:3]
    random_cfs = dice_script(adult.data, adult.model, "random", query)
    register(epochs=5, random_state=0, verbose=False)  # LAPACE's settings live outside the script
    lapace_cfs = dice_script(adult.data, adult.model, "lapace", query)
    for cfs in (random_cfs, lapace_cfs):
        assert isinstance(cfs, CounterfactualExplanations)
        assert len(cfs.cf_examples_list) == len(query)
        assert _assert_valid(adult, cfs) > 0
    assert "Diverse Counterfactual set" in capsys.readouterr().out


# ---------------------------------------------------------------------- construction
def test_private_data_without_training_frame_needs_a_fitted_explainer(adult):
    features = {f: [float(adult.train[f].min()), float(adult.train[f].max())] for f in adult.continuous}
    features.update({f: sorted(adult.train[f].astype(str).unique()) for f in adult.categorical})
    features = {f: features[f] for f in adult.data.feature_names}
    private = dice_ml.Data(features=features, outcome_name=adult.target)
    with pytest.raises(ValueError, match="training data"):
        LapaceDice(private, adult.model)
    exp = LapaceDice(private, adult.model, explainer=adult.explainer.explainer)
    cfs = exp.generate_counterfactuals(adult.queries.iloc[:5], total_CFs=2)
    assert _assert_valid(adult, cfs) > 0


def test_fitted_or_saved_explainer_is_reused(adult, wine, tmp_path):
    fitted = adult.explainer.explainer
    assert LapaceDice(adult.data, adult.model, explainer=fitted).explainer is fitted
    fitted.save(str(tmp_path / "lapace"))
    loaded = LapaceDice(adult.data, adult.model, explainer=str(tmp_path / "lapace"))
    cfs = loaded.generate_counterfactuals(adult.queries.iloc[:5], total_CFs=2, posthoc_sparsity_param=None)
    assert _assert_valid(adult, cfs) > 0
    with pytest.raises(ValueError, match="features"):
        LapaceDice(adult.data, adult.model, explainer=wine.explainer.explainer)
    with pytest.raises(ValueError, match="not fitted"):
        LapaceDice(adult.data, adult.model, explainer=Lapace())
    with pytest.raises(TypeError, match="already fitted"):
        LapaceDice(adult.data, adult.model, explainer=fitted, epochs=3)


def test_a_script_pays_the_fit_once_through_a_saved_explainer(adult, tmp_path, capsys):
    """The documented pattern: fit and save once, then every run of the script loads the folder through dice_ml."""
    fitted = adult.explainer.explainer
    folder = str(tmp_path / "lapace-adult")
    fitted.save(folder)
    register()
    capsys.readouterr()
    exp = dice_ml.Dice(adult.data, adult.model, method=METHOD, explainer=folder)
    assert "fitted on" not in capsys.readouterr().out  # loaded, not refitted
    assert exp.explainer is not fitted and np.array_equal(exp.explainer.centroid_latents_, fitted.centroid_latents_)
    queries = adult.queries.iloc[:5]
    loaded = exp.generate_counterfactuals(queries, total_CFs=2, posthoc_sparsity_param=None)
    original = adult.explainer.generate_counterfactuals(queries, total_CFs=2, posthoc_sparsity_param=None)
    for a, b in zip(loaded.cf_examples_list, original.cf_examples_list):
        assert (a.final_cfs_df is None) == (b.final_cfs_df is None)
        if a.final_cfs_df is not None:
            pd.testing.assert_frame_equal(a.final_cfs_df, b.final_cfs_df)
    assert _assert_valid(adult, loaded) > 0


def test_max_per_feature_reaches_lapace_through_generate_counterfactuals(adult):
    free = adult.explainer.generate_counterfactuals(adult.queries, total_CFs=4, desired_class="opposite", posthoc_sparsity_param=None)
    capped = adult.explainer.generate_counterfactuals(adult.queries, total_CFs=4, desired_class="opposite", posthoc_sparsity_param=None,
                                                      max_per_feature=1)
    features = adult.data.feature_names

    def most_options_on_one_feature(cfs):
        counts = []
        for query, ex in zip(adult.queries.itertuples(index=False), cfs.cf_examples_list):
            if ex.final_cfs_df is not None and len(ex.final_cfs_df):
                rows = ex.final_cfs_df[features].to_numpy()
                counts.append(int((rows != np.asarray(query, dtype=object)).sum(0).max()))
        return max(counts)

    assert most_options_on_one_feature(free) >= 2 and most_options_on_one_feature(capped) == 1


def test_max_lof_reaches_lapace_through_generate_counterfactuals(adult):
    """With a limit no plan meets, nothing is given back: the plans keep every change of their path points."""
    features = adult.data.feature_names

    def changed_per_plan(cfs):
        counts = [(ex.final_cfs_df[features].to_numpy() != np.asarray(query, dtype=object)).sum(1)
                  for query, ex in zip(adult.queries.itertuples(index=False), cfs.cf_examples_list)
                  if ex.final_cfs_df is not None and len(ex.final_cfs_df)]
        return np.concatenate(counts).mean()

    kwargs = dict(total_CFs=3, desired_class="opposite", posthoc_sparsity_param=None)
    free = adult.explainer.generate_counterfactuals(adult.queries, **kwargs)
    kept = adult.explainer.generate_counterfactuals(adult.queries, max_lof=1e-6, **kwargs)
    assert changed_per_plan(kept) > changed_per_plan(free) + 1


def test_regression_models_are_rejected(adult):
    m = dice_ml.Model(model=adult.model.model, backend="sklearn", model_type="regressor")
    with pytest.raises(ValueError, match="classifiers"):
        LapaceDice(adult.data, m, explainer=adult.explainer.explainer)


# ---------------------------------------------------------------------- generate_counterfactuals
def test_results_are_dice_objects_with_valid_counterfactuals(adult):
    cfs = adult.explainer.generate_counterfactuals(adult.queries, total_CFs=4, desired_class="opposite")
    assert isinstance(cfs, CounterfactualExplanations)
    assert len(cfs.cf_examples_list) == len(adult.queries)
    predicted = adult.model.model.predict(adult.queries)
    columns = adult.data.feature_names + [adult.target]
    found = 0
    for i, ex in enumerate(cfs.cf_examples_list):
        assert isinstance(ex, CounterfactualExamples)
        assert list(ex.test_instance_df.columns) == columns
        assert ex.test_instance_df[adult.target].iat[0] == predicted[i]
        assert ex.desired_class == 1 - predicted[i]
        if ex.final_cfs_df is not None:
            assert list(ex.final_cfs_df.columns) == columns
            assert 1 <= len(ex.final_cfs_df) <= 4
            assert not ex.final_cfs_df.duplicated().any()
            assert (ex.final_cfs_df.dtypes[adult.data.feature_names] == adult.queries.dtypes).all()
            found += 1
    assert found >= len(adult.queries) // 2
    assert _assert_valid(adult, cfs) > 0


def test_all_queries_go_through_one_lapace_call(adult, monkeypatch):
    calls = []
    explain = adult.explainer.explainer.explain

    def counting(X, **kwargs):
        calls.append(len(X))
        return explain(X, **kwargs)

    monkeypatch.setattr(adult.explainer.explainer, "explain", counting)
    adult.explainer.generate_counterfactuals(adult.queries.iloc[:12], total_CFs=2)
    assert calls == [12]


def test_dice_one_query_hook_is_served_by_the_batched_call(adult):
    one = adult.explainer._generate_counterfactuals(adult.queries.iloc[:1], total_CFs=2, posthoc_sparsity_param=None)
    batch = adult.explainer.generate_counterfactuals(adult.queries.iloc[:1], total_CFs=2, posthoc_sparsity_param=None)
    assert isinstance(one, CounterfactualExamples)
    a, b = one.final_cfs_df, batch.cf_examples_list[0].final_cfs_df
    assert (a is None and b is None) or a.equals(b)


def test_queries_as_dict_and_list_of_dicts(adult):
    rows = adult.queries.iloc[:3].to_dict("records")
    one = adult.explainer.generate_counterfactuals(rows[0], total_CFs=2, posthoc_sparsity_param=None)
    many = adult.explainer.generate_counterfactuals(rows, total_CFs=2, posthoc_sparsity_param=None)
    assert len(one.cf_examples_list) == 1 and len(many.cf_examples_list) == 3
    a, b = one.cf_examples_list[0].final_cfs_df, many.cf_examples_list[0].final_cfs_df
    assert (a is None and b is None) or a.equals(b)


BAD_CONFIGURATIONS = [
    (dict(total_CFs=0), UserConfigValidationException),
    (dict(features_to_vary=[]), UserConfigValidationException),
    (dict(features_to_vary=["no_such_feature"]), UserConfigValidationException),
    (dict(stopping_threshold=1.5), UserConfigValidationException),
    (dict(posthoc_sparsity_param=-0.1), UserConfigValidationException),
    (dict(posthoc_sparsity_algorithm="ternary"), UserConfigValidationException),
    (dict(desired_range=[0, 1]), UserConfigValidationException),
    (dict(desired_class="a class that does not exist"), UserConfigValidationException),
    (dict(desired_class=5), UserConfigValidationException),
    (dict(permitted_range={"occupation": ["Astronaut"]}), UserConfigValidationException),
]


@pytest.mark.parametrize("bad, error", BAD_CONFIGURATIONS, ids=[str(sorted(b)) for b, _ in BAD_CONFIGURATIONS])
def test_invalid_arguments_raise_as_in_dice_random(adult, bad, error):
    args = dict(total_CFs=2, desired_class="opposite")
    args.update(bad)
    query = adult.queries.iloc[:1]
    random = dice_ml.Dice(adult.data, adult.model, method="random")
    with pytest.raises(error):
        random.generate_counterfactuals(query, **args)
    with pytest.raises(error):
        adult.explainer.generate_counterfactuals(query, **args)


def test_invalid_queries_raise_as_in_dice(adult):
    nan_query = adult.queries.iloc[:2].copy()
    nan_query.loc[nan_query.index[0], "age"] = np.nan
    with pytest.raises(UserConfigValidationException, match="missing values"):
        adult.explainer.generate_counterfactuals(nan_query, total_CFs=2)
    with_outcome = adult.queries.iloc[:1].assign(**{adult.target: 0})
    with pytest.raises(ValueError, match="present in query instance"):
        adult.explainer.generate_counterfactuals(with_outcome, total_CFs=2)
    unknown = adult.queries.iloc[:1].assign(occupation="Astronaut")
    with pytest.raises(ValueError, match="outside the dataset"):
        adult.explainer.generate_counterfactuals(unknown, total_CFs=2)
    fixed_outside = dict(features_to_vary=["hours_per_week"], permitted_range={"age": [90, 90]})
    with pytest.raises(ValueError, match="isn't allowed to vary"):
        adult.explainer.generate_counterfactuals(adult.queries.iloc[:1], total_CFs=2, **fixed_outside)


def test_other_dice_keywords_are_accepted_and_ignored(adult):
    query = adult.queries.iloc[:6]
    plain = adult.explainer.generate_counterfactuals(query, total_CFs=3)
    other = adult.explainer.generate_counterfactuals(
        query,
        total_CFs=3,
        proximity_weight=0.5,
        diversity_weight=1.0,
        categorical_penalty=0.1,
        sparsity_weight=0.2,
        sample_size=500,
        random_seed=1,
        initialization="kdtree",
        maxiterations=10,
        feature_weights="inverse_mad",
        learning_rate=0.05,
        limit_steps_ls=10000,
    )
    for (_, a), (_, b) in zip(_frames(plain), _frames(other)):
        assert (a is None and b is None) or a.equals(b)
    with pytest.raises(TypeError, match="proximty_weight"):
        adult.explainer.generate_counterfactuals(query, total_CFs=3, proximty_weight=0.5)


def test_features_to_vary_and_permitted_range_hold_in_every_counterfactual(adult):
    vary = ["age", "education_num", "hours_per_week", "occupation", "workclass", "capital_gain"]
    allowed_jobs = ["Exec-managerial", "Prof-specialty", "Sales", "Tech-support"]
    permitted = {"age": [25, 60], "hours_per_week": [35, 60], "occupation": allowed_jobs}
    query = adult.queries[(adult.queries.age.between(25, 60))].iloc[:20]
    cfs = adult.explainer.generate_counterfactuals(query, total_CFs=4, features_to_vary=vary, permitted_range=permitted)
    checked = 0
    for sparse in (False, True):
        for i, (ex, df) in enumerate(_frames(cfs, sparse)):
            if df is None:
                continue
            q = query.iloc[i]
            for f in adult.data.feature_names:
                if f not in vary:
                    assert (df[f] == q[f]).all(), f
            assert df.age.between(25, 60).all()
            assert df.hours_per_week.between(35, 60).all()
            assert df.occupation.isin(allowed_jobs).all()
            checked += len(df)
    assert checked > 0
    _assert_valid(adult, cfs)


def test_stopping_threshold_is_the_minimum_target_probability(adult):
    cfs = adult.explainer.generate_counterfactuals(adult.queries, total_CFs=5, stopping_threshold=0.8)
    assert _assert_valid(adult, cfs, threshold=0.8) > 0


def test_strategy_is_chosen_at_construction_and_overridable_per_call(adult):
    query = adult.queries.iloc[:10]
    kwargs = dict(total_CFs=5, posthoc_sparsity_param=None)
    last = adult.explainer.generate_counterfactuals(query, strategy="last", **kwargs)
    by_target = {}
    for ex, df in _frames(last):
        if df is not None:  # "last" returns the decoded centroids: the same set for every query of a target
            rows = {tuple(r) for r in df.astype(str).to_numpy()}
            by_target.setdefault(ex.desired_class, rows)
            assert rows == by_target[ex.desired_class]
    assert by_target
    default_last = LapaceDice(adult.data, adult.model, explainer=adult.explainer.explainer, strategy="last")
    again = default_last.generate_counterfactuals(query, **kwargs)
    for (_, a), (_, b) in zip(_frames(last), _frames(again)):
        assert (a is None and b is None) or a.equals(b)
    with pytest.raises(ValueError, match="strategy"):
        adult.explainer.generate_counterfactuals(query, strategy="middle", **kwargs)
    with pytest.raises(ValueError, match="strategy"):
        LapaceDice(adult.data, adult.model, explainer=adult.explainer.explainer, strategy="middle")


def test_path_search_and_revert_are_chosen_per_call(adult):
    query = adult.queries.iloc[:10]
    kwargs = dict(total_CFs=3, posthoc_sparsity_param=None, diverse=False)  # diverse (the default) implies revert
    changed = {}
    for path, search, revert in (("latent", "grid", False), ("corrected", "fast", False), ("reverted", "grid", True)):
        cfs = adult.explainer.generate_counterfactuals(
            query, path="corrected" if revert else path, search=search, revert=revert, **kwargs
        )
        assert _assert_valid(adult, cfs) > 0
        diffs = []
        for ex, df in _frames(cfs):
            if df is not None:
                base = ex.test_instance_df.iloc[0]
                features = [c for c in df.columns if c != adult.target]
                diffs.append((df[features].astype(str) != base[features].astype(str)).sum(1).mean())
        changed[path] = np.mean(diffs)
    assert changed["corrected"] < changed["latent"], changed  # corrected paths start at the query itself
    assert changed["reverted"] < changed["corrected"], changed
    with pytest.raises(ValueError, match="path must be one of"):
        adult.explainer.generate_counterfactuals(query, path="straight", **kwargs)


# ---------------------------------------------------------------------- the age-only model: known answers
def test_query_without_counterfactual_is_reported_the_dice_way(rule, capsys):
    # Ages above 35 are forbidden: the young queries (class 0, wanting class 1 = age > 40) cannot flip,
    # the old ones (class 1) can.
    cfs = rule.explainer.generate_counterfactuals(rule.queries, total_CFs=2, permitted_range={"age": [17, 35]})
    out = capsys.readouterr().out
    young, old = [0, 2], [1, 3]
    for i in young:
        assert cfs.cf_examples_list[i].final_cfs_df is None
        assert cfs.cf_examples_list[i].final_cfs_df_sparse is None
    for i in old:
        assert cfs.cf_examples_list[i].final_cfs_df is not None
        assert (cfs.cf_examples_list[i].final_cfs_df.age <= 35).all()
    assert out.count("No Counterfactuals found for the given configuration") == 2
    cfs.cf_examples_list[0].visualize_as_dataframe()
    assert "No counterfactuals found!" in capsys.readouterr().out
    assert json.loads(cfs.to_json())["cfs_list"][0] is None
    with pytest.raises(UserConfigValidationException, match="No counterfactuals found for any of the query points"):
        rule.explainer.generate_counterfactuals(rule.queries.iloc[young], total_CFs=2, permitted_range={"age": [17, 35]})


@pytest.mark.parametrize("algorithm", ["linear", "binary"])
def test_posthoc_sparsity_reverts_irrelevant_changes_in_few_model_calls(rule, monkeypatch, algorithm):
    query = rule.queries
    calls = []
    predict = rule.explainer.predict_fn

    def counting(frame):
        calls.append(len(frame))
        return predict(frame)

    monkeypatch.setattr(rule.explainer, "predict_fn", counting)
    raw = rule.explainer.generate_counterfactuals(query, total_CFs=5, posthoc_sparsity_param=None)
    without = len(calls)
    sparse = rule.explainer.generate_counterfactuals(
        query, total_CFs=5, posthoc_sparsity_param=1.0, posthoc_sparsity_algorithm=algorithm
    )
    # the sparsity step costs at most one model call per continuous feature, whatever the number of
    # counterfactuals and of steps (DiCE makes one call per step)
    assert 0 < len(calls) - 2 * without <= len(rule.continuous)
    quantiles = rule.data.get_quantiles_from_training_data(quantile=1.0)
    mads = rule.data.get_valid_mads()
    checked = 0
    for i, ((_, before), (ex, after)) in enumerate(zip(_frames(raw), _frames(sparse, sparse=True))):
        if before is None:
            continue
        q = query.iloc[i]
        pd.testing.assert_frame_equal(ex.final_cfs_df, before)  # the unsparsified set is kept as well
        for f in rule.continuous:
            if f == "age":
                continue  # the only feature the model uses
            near = (before[f] - q[f]).abs() <= min(quantiles[f], mads[f])
            # DiCE's meaning: a change within the quantile that the model does not need is undone
            assert (after.loc[near, f] == q[f]).all(), f
            assert (after.loc[~near, f] == before.loc[~near, f]).all(), f
        lo, hi = np.minimum(before.age, q.age), np.maximum(before.age, q.age)
        assert after.age.between(lo, hi).all()
        checked += 1
    assert checked > 0
    _assert_valid(rule, sparse)


def test_posthoc_sparsity_never_leaves_the_permitted_range(rule):
    # The old queries' ages are outside the range; moving back toward them must stop at its edge.
    cfs = rule.explainer.generate_counterfactuals(
        rule.queries.iloc[[1, 3]], total_CFs=3, permitted_range={"age": [17, 35]}, posthoc_sparsity_param=1.0
    )
    for ex, df in _frames(cfs, sparse=True):
        assert df is not None and (df.age <= 35).all()


# ---------------------------------------------------------------------- backends and classes
def test_multiclass_desired_class_is_a_class_index(wine):
    with pytest.raises(UserConfigValidationException, match="opposite"):
        wine.explainer.generate_counterfactuals(wine.queries, total_CFs=2, desired_class="opposite")
    cfs = wine.explainer.generate_counterfactuals(wine.queries, total_CFs=3, desired_class=2)
    assert all(ex.desired_class == 2 for ex in cfs.cf_examples_list)
    predicted = wine.model.model.predict(wine.queries)
    for i, (ex, df) in enumerate(_frames(cfs)):
        if predicted[i] == 2:
            assert df is None  # already in the desired class: LAPACE has nothing to change
    assert _assert_valid(wine, cfs) > 0
    assert _assert_valid(wine, wine.explainer.generate_counterfactuals(wine.queries, total_CFs=2, desired_class=0)) > 0


def test_torch_model_with_dice_encoding(german_torch):
    exp = german_torch.explainer
    assert exp.explainer.n_classes_ == 2  # one sigmoid output seen as two classes
    cfs = exp.generate_counterfactuals(german_torch.queries, total_CFs=3, desired_class="opposite")
    assert _assert_valid(german_torch, cfs) > 0
    vary = ["duration_in_month", "credit_amount", "savings_account_and_bonds", "purpose"]
    cfs = exp.generate_counterfactuals(german_torch.queries, total_CFs=3, features_to_vary=vary)
    for ex, df in _frames(cfs):
        if df is not None:
            fixed = [f for f in german_torch.data.feature_names if f not in vary]
            assert (df[fixed].astype(str).to_numpy() == ex.test_instance_df[fixed].astype(str).to_numpy()).all()
    CounterfactualExplanations.from_json(cfs.to_json())


# ---------------------------------------------------------------------- DiCE's follow-ups
def test_visualize_as_dataframe_shows_only_changes(adult, capsys):
    import IPython  # noqa: F401  (the dice extra installs it; DiCE needs it to display)
    cfs = adult.explainer.generate_counterfactuals(adult.queries.iloc[:5], total_CFs=2)
    cfs.visualize_as_dataframe(show_only_changes=True)
    out = capsys.readouterr().out
    assert "Query instance (original outcome" in out
    assert "Diverse Counterfactual set (new outcome" in out
    assert " - " in out or " -\n" in out


def test_json_round_trip(adult):
    cfs = adult.explainer.generate_counterfactuals(adult.queries.iloc[:5], total_CFs=3)
    back = CounterfactualExplanations.from_json(cfs.to_json())
    assert len(back.cf_examples_list) == 5
    for ex, again in zip(cfs.cf_examples_list, back.cf_examples_list):
        expected = ex.final_cfs_df_sparse
        if expected is None:
            assert again.final_cfs_df is None
        else:
            assert again.final_cfs_df.astype(str).to_numpy().tolist() == expected.astype(str).to_numpy().tolist()


def test_feature_importance_through_the_registered_method(adult):
    register(explainer=adult.explainer.explainer)
    exp = dice_ml.Dice(adult.data, adult.model, method="lapace")
    local = exp.local_feature_importance(adult.queries.iloc[:3], total_CFs=10)
    assert len(local.local_importance) == 3
    assert set(local.local_importance[0]) == set(adult.data.feature_names)
    overall = exp.global_feature_importance(adult.queries.iloc[:10], total_CFs=10)
    importance = overall.summary_importance
    assert set(importance) == set(adult.data.feature_names)
    assert all(0.0 <= v <= 1.0 for v in importance.values()) and max(importance.values()) > 0
    CounterfactualExplanations.from_json(overall.to_json())


def test_default_fit_is_reproducible_and_announced_in_one_line(capsys, adult):
    register(epochs=5)  # no random_state: LAPACE's default seed makes two runs of a script agree
    first = dice_ml.Dice(adult.data, adult.model, method=METHOD)
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("LAPACE: fitted on 2000 training rows in "), lines  # no progress bar wall
    second = dice_ml.Dice(adult.data, adult.model, method=METHOD)
    queries = adult.queries.iloc[:6]
    a = first.generate_counterfactuals(queries, total_CFs=3, desired_class="opposite")
    b = second.generate_counterfactuals(queries, total_CFs=3, desired_class="opposite")
    for x, y in zip(a.cf_examples_list, b.cf_examples_list):
        pd.testing.assert_frame_equal(x.final_cfs_df, y.final_cfs_df)


def test_fewer_counterfactuals_than_asked_are_explained(capsys, adult):
    capsys.readouterr()
    res = adult.explainer.generate_counterfactuals(
        adult.queries.iloc[:20], total_CFs=5, desired_class="opposite", features_to_vary=["hours_per_week", "occupation"],
        posthoc_sparsity_param=None,
    )
    out = capsys.readouterr().out.splitlines()
    short = [i for i, ex in enumerate(res.cf_examples_list) if ex.final_cfs_df is not None and 0 < len(ex.final_cfs_df) < 5]
    assert short  # some queries get fewer than five distinct rows
    assert sum(line.startswith("Only ") for line in out) == len(short)
    reasons = [line for line in out if line.startswith("LAPACE: ") and "distinct counterfactual" in line]
    assert len(reasons) == len(short)
    for ex in res.cf_examples_list:  # and the rows a query gets are distinct
        if ex.final_cfs_df is not None:
            assert not ex.final_cfs_df.duplicated().any()


def test_four_options_that_differ_for_almost_every_person_with_six_features_to_vary(capsys, adult):
    capsys.readouterr()
    vary = ["age", "workclass", "education_num", "occupation", "hours_per_week", "capital_gain"]
    res = adult.explainer.generate_counterfactuals(adult.queries, total_CFs=4, desired_class="opposite", features_to_vary=vary)
    out = capsys.readouterr().out
    assert "ended on an option another path gave" not in out  # a candidate that repeats an option gives way to another
    counts = np.array([0 if ex.final_cfs_df is None else len(ex.final_cfs_df[adult.data.feature_names].drop_duplicates())
                       for ex in res.cf_examples_list])
    covered = counts > 0
    assert covered.mean() >= 0.9 and (counts[covered] == 4).mean() >= 0.75, counts


def test_a_permitted_range_with_one_bound_is_named(adult):
    with pytest.raises(ValueError, match=r"permitted_range for 'age' must be \[low, high\], got \[30\]"):
        adult.explainer.generate_counterfactuals(adult.queries.iloc[:2], total_CFs=2, permitted_range={"age": [30]})

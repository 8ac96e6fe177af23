"""Batch explain on a real Dask LocalCluster of 2 worker processes: identical to in-process explain, nothing lost.

Modern environment only (needs the ``distributed`` extra: dask, distributed, pyarrow).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import get_task_stream

from lapace_plugin import distributed


@pytest.fixture(scope="module")
def rows(compas):
    return compas.X_test.iloc[:600]


@pytest.fixture(scope="module")
def reference(compas, rows):
    return expected(compas.explainer, rows)


def expected(explainer, rows):
    """In-process ``Lapace.explain`` of the same rows: counterfactuals, their paths' other columns and failures."""
    explanation = explainer.explain(rows)
    paths = explanation.to_frame().drop(columns=list(rows.columns))
    paths = paths[paths["rank"] >= 0].astype({"query": rows.index.dtype}).sort_values(["query", "rank"]).reset_index(drop=True)
    counterfactuals = explanation.counterfactuals.reset_index().sort_values(["query", "rank"]).reset_index(drop=True)
    return counterfactuals, paths, explanation.failures


def assert_same(result, reference):
    counterfactuals, paths, failures = reference
    got = result.counterfactuals.compute().sort_values(["query", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[list(counterfactuals.columns)], counterfactuals)
    pd.testing.assert_frame_equal(got[list(paths.columns)], paths)
    explain_failures = result.failures.compute().query("stage == 'explain'")
    assert dict(zip(explain_failures["query"], explain_failures["reason"])) == failures


def test_batch_explain_is_identical_to_in_process_explain_and_uses_both_workers(client, compas, rows, reference):
    with get_task_stream(client) as stream:
        result = distributed.explain(compas.explainer, rows, client=client, partition_rows=75, progress=False)
    assert result.n_partitions == 8
    ran = [task["worker"] for task in stream.data if str(task["key"]).startswith("lapace-explain-")]
    assert len(ran) == 8 and min(ran.count(worker) for worker in client.scheduler_info()["workers"]) >= 2
    assert result.n_rows == len(rows) and result.n_explained + result.n_failed == len(rows)
    assert_same(result, reference)


def test_settings_reach_every_partition(client, compas):
    rows = compas.X_test.iloc[:150]
    settings = dict(strategy="last", constraints="schema", n_counterfactuals=2)
    result = distributed.explain(compas.explainer, rows, client=client, partition_rows=50, progress=False, **settings)
    counterfactuals = result.counterfactuals.compute().set_index(["query", "rank"]).sort_index()
    reference = compas.explainer.explain(rows, **settings).counterfactuals.sort_index()
    pd.testing.assert_frame_equal(counterfactuals[list(reference.columns)], reference)
    assert counterfactuals.index.get_level_values("rank").max() == 1


def test_rows_failing_validation_are_reported_and_the_others_explained(client, compas):
    rows = compas.X_test.iloc[:200].copy()
    rows["race"] = rows["race"].astype(object)
    rows.iloc[5, rows.columns.get_loc("age")] = np.nan
    rows.iloc[77, rows.columns.get_loc("race")] = "Martian"
    rows.iloc[100:110, rows.columns.get_loc("priors_count")] = np.nan  # a partition of bad rows only
    bad = [rows.index[5], rows.index[77]] + list(rows.index[100:110])
    result = distributed.explain(compas.explainer, rows, client=client, partition_rows=10, progress=False)
    failures = result.failures.compute().set_index("query")
    assert sorted(failures.index[failures["stage"] == "validation"]) == sorted(bad)
    assert "contains NaN in column(s) ['age']" in failures.loc[rows.index[5], "reason"]
    assert "unknown category ['Martian']" in failures.loc[rows.index[77], "reason"]
    assert result.n_explained + result.n_failed == len(rows) == result.n_rows
    assert_same(result, expected(compas.explainer, rows.drop(bad)))


def test_a_worker_killed_mid_run_loses_and_duplicates_no_row(client, compas, rows, reference):
    pids = client.run(os.getpid)
    outcome = {}

    def run():
        outcome["result"] = distributed.explain(compas.explainer, rows, client=client, partition_rows=30, progress=False)

    thread = threading.Thread(target=run)
    thread.start()
    victim, deadline = None, time.time() + 60
    while victim is None and time.time() < deadline:
        for worker, keys in client.processing().items():
            if any(str(k).startswith("lapace-explain-") for k in keys):
                victim = pids[worker]
                break
        time.sleep(0.01)
    assert victim is not None, "no explain task seen running"
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=300)
    result = outcome["result"]
    assert victim not in client.run(os.getpid).values()  # the worker really died (its nanny started a new one)
    assert result.n_rows == len(rows) and result.n_explained + result.n_failed == len(rows)
    assert_same(result, reference)


def test_dask_frames_and_parquet_files_take_row_positions_or_an_id_column(client, compas, tmp_path):
    rows = compas.X_test.iloc[:120].reset_index(drop=True)
    by_position = distributed.explain(compas.explainer, dd.from_pandas(rows, npartitions=3), client=client,
                                      partition_rows=25, progress=False)
    ids = rows.assign(application=["app-%03d" % i for i in range(len(rows))])
    ids.to_parquet(str(tmp_path / "rows.parquet"))
    by_id = distributed.explain(compas.explainer, str(tmp_path / "rows.parquet"), client=client, id_column="application",
                                partition_rows=50, progress=False)
    a = by_position.counterfactuals.compute().sort_values(["query", "rank"]).reset_index(drop=True)
    b = by_id.counterfactuals.compute().sort_values(["query", "rank"]).reset_index(drop=True)
    assert sorted(set(a["query"])) == sorted(set(range(len(rows))) - set(by_position.failures.compute()["query"]))
    assert (b["query"] == "app-" + a["query"].map("{:03d}".format)).all()
    pd.testing.assert_frame_equal(a.drop(columns="query"), b.drop(columns="query"), check_dtype=False)


def test_written_output_resumes_and_refuses_another_run(client, compas, tmp_path):
    rows = compas.X_test.iloc[:200]
    out = str(tmp_path / "cf.parquet")
    first = distributed.explain(compas.explainer, rows, client=client, partition_rows=50, output=out, progress=False)
    assert sorted(os.listdir(out)) == ["_lapace_run.json", "counterfactuals", "failures"]
    assert sorted(os.listdir(distributed.counterfactuals_path(out))) == ["part-%06d.parquet" % i for i in range(4)]
    os.remove(os.path.join(distributed.counterfactuals_path(out), "part-000002.parquet"))
    again = distributed.explain(compas.explainer, rows, client=client, partition_rows=50, output=out, progress=False)
    assert again.n_resumed == 3 and again.n_rows == len(rows)
    key = ["query", "rank"]
    pd.testing.assert_frame_equal(again.counterfactuals.compute().sort_values(key).reset_index(drop=True),
                                  first.counterfactuals.compute().sort_values(key).reset_index(drop=True))
    with pytest.raises(ValueError, match="different settings"):
        distributed.explain(compas.explainer, rows, client=client, partition_rows=50, output=out, progress=False,
                            strategy="last")


def test_bad_input_is_refused_before_any_task(client, compas):
    rows = compas.X_test.iloc[:20]
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        distributed.explain(compas.explainer, rows.assign(extra=1), client=client, progress=False)
    with pytest.raises(ValueError, match="DataFrame's index .* repeats id"):
        distributed.explain(compas.explainer, pd.concat([rows, rows]), client=client, progress=False)
    with pytest.raises(TypeError, match="one target_class for every row"):
        distributed.explain(compas.explainer, rows, client=client, progress=False, target_class=[1] * 20)
    with pytest.raises(ValueError, match="not both"):
        with distributed.connect(workers=1, scheduler=client):
            pass


def test_an_existing_cluster_is_used_by_address_and_left_running(client):
    with distributed.connect(scheduler=client.scheduler.address) as other:
        assert other is not client
        assert set(other.scheduler_info()["workers"]) == set(client.scheduler_info()["workers"])
    assert client.submit(sum, [1, 2]).result() == 3


def test_the_partition_function_runs_without_dask(compas):
    rows = compas.X_test.iloc[:60].reset_index().rename(columns={"index": "application"})
    rows.loc[3, "sex"] = "Unknown"
    counterfactuals, failures = distributed.explain_partition(compas.explainer, rows, id_column="application")
    reference = compas.explainer.explain(rows.drop(index=3).set_index("application")).counterfactuals
    pd.testing.assert_frame_equal(counterfactuals.set_index(["query", "rank"])[list(reference.columns)], reference,
                                  check_names=False)
    assert failures["query"].tolist() == [rows.loc[3, "application"]]
    assert failures["reason"].iloc[0].startswith("query column 'sex' has unknown category ['Unknown']")

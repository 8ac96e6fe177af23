"""The DiCE benchmark script runs end to end (its timings are for people, not for assertions)."""

from __future__ import annotations

import json

import pytest

from lapace_plugin.adapters import dice_benchmark


def test_help_describes_the_comparison(capsys):
    with pytest.raises(SystemExit) as exit_info:
        dice_benchmark.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "random, genetic and kdtree" in out and "--lapace-queries" in out


def test_tiny_run_prints_seconds_per_query_and_speedups(capsys, tmp_path):
    args = ["--train-rows", "400", "--trees", "10", "--epochs", "2", "--lapace-queries", "6", "--dice-queries", "2"]
    args += ["--methods", "random", "--json", str(tmp_path / "bench.json")]
    assert dice_benchmark.main(args) == 0
    out = capsys.readouterr().out
    assert "s/query" in out and "speed-up" in out and "lapace-first" in out and "random" in out
    results = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert [r["method"] for r in results] == ["lapace-first", "random"]
    first, random = results
    assert first["s_per_query"] > 0 and random["s_per_query"] > 0
    # the speed-up of a peer is its time per query over LAPACE's, measured in the same process
    assert random["lapace_speedup"] == pytest.approx(random["s_per_query"] / first["s_per_query"])
    assert first["validity"] == 1.0  # LAPACE returns only rows the model assigns to the desired class

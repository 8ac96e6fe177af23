"""``lapace bench --fit`` on bundled wine with a few epochs: one row per dataset with the fit, the floor and the quality
figures (the timings themselves are the benchmark's business, never a test's); plain ``lapace bench`` on german."""

from __future__ import annotations

from lapace_plugin.apps import cli


def test_bench_fit_prints_fit_floor_and_quality_per_dataset(capsys):
    assert cli.main(["bench", "--fit", "--datasets", "wine", "--epochs", "3", "--n-queries", "12"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split()[:4] == ["dataset", "rows", "epochs", "fit"]
    row = lines[2].split()
    assert row[:3] == ["wine", "142", "3"]  # 80% of 178 rows, the 3 epochs asked for
    fit_s, cpu_s, floor_s, ratio = float(row[3]), float(row[4]), float(row[5]), float(row[6].rstrip("x"))
    assert fit_s > 0 and cpu_s > 0 and floor_s > 0
    assert abs(ratio * floor_s - fit_s) <= 0.005 * ratio + 0.01 + 0.005 * floor_s  # fit / floor, up to the printed rounding
    assert row[7].endswith("%") and 0 <= float(row[7].rstrip("%")) <= 100  # centroid validity
    assert len(row[9:12]) == 3 and all(v.isdigit() for v in row[9:12])  # distinct centroids of each of wine's 3 classes
    assert all(0 <= float(v.rstrip("%")) <= 100 for v in row[12:14])  # last / first valid paths


def test_bench_prints_every_setting_against_the_floor(capsys):
    assert cli.main(["bench", "--dataset", "german", "--n-queries", "20", "--repeats", "2", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    floor = float(out.split("floor (decode once + classify once):")[1].split()[0])
    constrained = [line for line in out.splitlines() if "with the schema's constraints" in line]
    assert floor > 0 and len(constrained) == 2  # grid and fast
    for line in constrained:
        secs, ratio = float(line.split("search=")[1].split()[1]), float(line.split("= ")[1].split("x")[0])
        assert abs(ratio * floor - secs) <= 0.005 * floor + 0.0005 + 0.005 * ratio  # seconds / floor, up to rounding
        assert line.endswith(" 0 violations") and "coverage" in line
    robust = [line for line in out.splitlines() if line.startswith("explain robust")]
    assert len(robust) == 1
    secs, ratio = float(robust[0].split(")")[1].split()[0]), float(robust[0].split("= ")[1].split("x")[0])
    assert abs(ratio * floor - secs) <= 0.005 * floor + 0.0005 + 0.005 * ratio
    options = float(robust[0].split("rows/query; ")[1].split()[0])
    assert 0 < options <= 5  # german's 5 paths per class give at most 5 options

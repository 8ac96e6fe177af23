"""``lapace bench``: explain time against the bare decode-and-classify floor, measured in the same run.

``lapace bench --distributed``: batch explain on Dask (``lapace explain``) on adult rows: rows per second with 1 and 2
worker processes, peak memory per worker, the in-process peak for 20,000 rows and a capacity plan.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .. import datasets
from ..constraints import Constraints
from ..evaluation.methods import LAPACE_METHODS
from ..evaluation.models import make_classifier, split
from ..explainer import Lapace
from ..paths import interpolate
from ..rules import changed_features

ROBUST = LAPACE_METHODS["lapace-robust-options"][1]
"""The robust choice's settings, as the study runs them: reverted, diverse options at least 0.7 likely."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lapace bench",
        description=(
            "Time Lapace.explain on N queries x m paths x (n_steps+1) points and compare it with the floor: "
            "decoding every path point once plus classifying every point once (raw rows through the "
            "classifier pipeline), measured side by side in the same process. Also times fit."
        ),
    )
    parser.add_argument("--dataset", default="adult", choices=datasets.names(), help="bundled dataset (default: adult)")
    parser.add_argument("--n-queries", type=int, default=1000, help="queries to explain (default: 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats; the best is reported (default: 3; the robust choice, minutes long, runs once)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--epochs", type=int, default=None, help="maximum L-GMVAE epochs (default: chosen from data size)")
    parser.add_argument("--distributed", action="store_true",
                        help="benchmark batch explain on Dask instead (see 'lapace bench --distributed --help')")
    parser.add_argument("--fit", action="store_true",
                        help="benchmark the fit on every bundled dataset instead (see 'lapace bench --fit --help')")
    return parser.parse_args(argv)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest wall time of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def floor_work(explainer: Lapace, queries, target: int) -> Tuple[int, Callable[[], object]]:
    """The floor: decode all path points once and classify them once. Returns (points, callable)."""
    m, steps = explainer.components_per_class, explainer.n_steps
    z_x = explainer.transform(queries)
    comps = target * m + np.arange(m)
    ends = np.broadcast_to(explainer.centroid_latents_[comps], (len(queries), m, explainer.latent_dim))
    taus = np.linspace(0, 1, steps + 1).reshape(1, 1, -1, 1)
    z = interpolate(z_x[:, None, None, :], ends[:, :, None, :], taus).reshape(-1, explainer.latent_dim)
    space = explainer._space()

    def run() -> object:
        points = explainer.encoder_.snap(space.decode(z))
        return explainer.predict_proba_(explainer.encoder_.decode(points))

    return len(z), run


class CountingClassifier:
    """``predict_proba`` that counts the rows it classifies, for comparing searches by classifier calls."""

    def __init__(self, predict_proba: Callable[..., np.ndarray]) -> None:
        self.predict_proba, self.rows = predict_proba, 0

    def __call__(self, X) -> np.ndarray:
        self.rows += len(X)
        return self.predict_proba(X)


def counted_explain(explainer: Lapace, queries, repeats: int, **settings) -> Tuple[float, float, object]:
    """Best time of ``repeats`` runs of ``explain(queries, **settings)``, classified rows per query, and the last run's
    explanation (the runs are identical)."""
    counter = CountingClassifier(explainer.predict_proba_)
    explainer.predict_proba_ = counter
    results: List[object] = []
    try:
        seconds = best_time(lambda: results.append(explainer.explain(queries, **settings)), repeats)
    finally:
        explainer.predict_proba_ = counter.predict_proba
    return seconds, counter.rows / repeats / len(queries), results[-1]


def compare_searches(explainer: Lapace, queries, target: int, path: str, repeats: int) -> dict:
    """Grid against fast search on the same paths: time, classified rows per query and agreement."""
    out = {}
    for search in ("grid", "fast"):
        out[search + "_s"], out[search + "_rows"], out[search] = counted_explain(
            explainer, queries, repeats, target_class=target, path=path, search=search
        )
    grid, fast = (out[k].to_frame().set_index(["query", "component"]) for k in ("grid", "fast"))
    cols = list(explainer.schema_.features) + ["valid"]
    same = (grid[cols].fillna(-1).astype(str) == fast[cols].fillna(-1).astype(str)).all(axis=1)
    out["identical"] = float(same.mean())
    out["later"] = float((fast["tau"] > grid["tau"]).mean())
    return out


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--distributed" in argv:
        return distributed_main([a for a in argv if a != "--distributed"])
    if "--fit" in argv:
        from .fitbench import main as fit_main

        return fit_main([a for a in argv if a != "--fit"])
    args = parse_args(argv)
    ds = datasets.load(args.dataset)
    X_train, X_test, y_train, _ = split(ds, test_size=0.2, random_state=args.seed)
    model = make_classifier(ds.schema, "rf", random_state=args.seed).fit(X_train, y_train)
    t = time.perf_counter()
    explainer = Lapace(schema=ds.schema, random_state=args.seed, epochs=args.epochs)
    explainer.fit(X_train, predict_proba=model.predict_proba, classes=model.classes_)
    fit_seconds = time.perf_counter() - t
    predicted = model.predict_proba(X_test).argmax(1)
    target = 1 if ds.favourable is None else list(model.classes_).index(ds.favourable)
    pool = X_test[predicted != target]
    queries = pool.iloc[np.arange(args.n_queries) % len(pool)]
    queries.index = np.arange(len(queries))
    n_points, floor = floor_work(explainer, queries, target)
    floor_s = best_time(floor, args.repeats)
    last_s = best_time(lambda: explainer.explain(queries, target_class=target, strategy="last"), args.repeats)
    cons = {search: constrained(explainer, queries, target, search, args.repeats) for search in ("grid", "fast")}
    print("\n%s: %d training rows, %d queries x %d paths x %d steps = %d decoded points (random forest, 100 trees)"
          % (ds.name, len(X_train), len(queries), explainer.components_per_class, explainer.n_steps + 1, n_points))
    print("fit (L-GMVAE, %d epochs):                %8.2f s" % (len(explainer.history_), fit_seconds))
    print("floor (decode once + classify once):     %8.3f s" % floor_s)
    for path in ("latent", "corrected"):
        c = compare_searches(explainer, queries, target, path, args.repeats)
        for search in ("grid", "fast"):
            secs = c[search + "_s"]
            print("explain first, path=%-9s search=%-4s %8.3f s  = %.2fx floor, %.5f s/query, %6.1f classified rows/query"
                  % (path, search, secs, secs / floor_s, secs / len(queries), c[search + "_rows"]))
        print("  fast vs grid: %.2fx fewer classified rows, %.2fx the time; %.1f%% of paths give the identical point, "
              "%.1f%% a later one; coverage %.3f (grid) / %.3f (fast)"
              % (c["grid_rows"] / c["fast_rows"], c["fast_s"] / c["grid_s"], 100 * c["identical"], 100 * c["later"],
                 c["grid"].coverage, c["fast"].coverage))
    revert_s, revert_rows, reverted = counted_explain(explainer, queries, args.repeats, target_class=target, revert=True)
    plain = explainer.explain(queries, target_class=target).counterfactuals
    print("explain first, path=%-9s revert=True %8.3f s  = %.2fx floor, %.5f s/query, %6.1f classified rows/query; "
          "features changed per counterfactual %.2f -> %.2f"
          % (explainer.path, revert_s, revert_s / floor_s, revert_s / len(queries), revert_rows,
             _changed(explainer.schema_, plain, queries), _changed(explainer.schema_, reverted.counterfactuals, queries)))
    robust_s, robust_rows, robust = counted_explain(  # one run: minutes long, so noise is small beside it
        explainer, queries, 1, target_class=target, n_counterfactuals=explainer.components_per_class, **ROBUST
    )
    print("explain robust (the study's lapace-robust-options) %8.3f s  = %.2fx floor, %.5f s/query, %6.1f classified "
          "rows/query; %.2f options per query, %.2f features changed per option"
          % (robust_s, robust_s / floor_s, robust_s / len(queries), robust_rows,
             len(robust.counterfactuals) / len(queries), _changed(explainer.schema_, robust.counterfactuals, queries)))
    print("explain last:                            %8.3f s  = %.3fx floor, %.5f s/query" % (last_s, last_s / floor_s, last_s / len(queries)))
    for search, (secs, figures) in cons.items():
        print("explain first with the schema's constraints, path=%s search=%-4s %6.3f s  = %.2fx floor; %s"
              % (explainer.path, search, secs, secs / floor_s, figures))
    return 0


def constrained(explainer: Lapace, queries: pd.DataFrame, target: int, search: str, repeats: int) -> Tuple[float, str]:
    """Seconds of ``explain(constraints="schema")`` (the best of ``repeats``, like every other line) and its figures:
    coverage, valid paths, counterfactuals, paths that needed repair, and counterfactuals breaking a constraint
    (checked on raw rows)."""
    runs = []

    def run() -> None:
        runs.append(explainer.explain(queries, target_class=target, constraints="schema", search=search))

    secs = best_time(run, repeats)
    result = runs[-1]
    frame, cf = result.to_frame(), result.counterfactuals
    broken = Constraints.from_schema(explainer.schema_).broken(
        queries.loc[cf.index.get_level_values("query")], cf, explainer.schema_
    )
    return secs, "coverage %.3f, valid paths %.1f%%, %d counterfactuals (%d repaired), %d violations" % (
        result.coverage, 100 * frame["valid"].mean(), len(cf), result.n_repaired, int(broken.sum()))


def _changed(schema: Any, counterfactuals: pd.DataFrame, queries: pd.DataFrame) -> float:
    """Mean number of features a counterfactual changes (:func:`lapace_plugin.rules.changed_features`)."""
    return float(changed_features(schema, queries.loc[counterfactuals.index.get_level_values("query")], counterfactuals).sum(1).mean())


# ---------------------------------------------------------------------------------------------- lapace bench --distributed
def distributed_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lapace bench --distributed",
        description=(
            "Batch explain on Dask, end to end through 'lapace fit' and 'lapace explain', on rows sampled (with "
            "replacement) from the bundled adult data: (1) rows per second with 1 and then 2 worker processes on the "
            "same rows in the same run, alternated REPEATS times and the best kept (imports warmed, the explainer load "
            "included; the machine's load average is shown, since other work on it slows both); (2) ROWS rows through "
            "'lapace explain --workers 2': every row accounted for, a sample checked identical to in-process "
            "Lapace.explain, and the peak memory of each worker process; (3) the peak memory of one fresh process "
            "explaining MEMORY_ROWS rows in-process with Lapace.explain; (4) a capacity plan from the measured "
            "throughput."
        ),
    )
    from ..distributed import PARTITION_ROWS

    parser.add_argument("--rows", type=int, default=200_000, help="rows through 'lapace explain --workers 2' (default: 200000)")
    parser.add_argument("--throughput-rows", type=int, default=40_000, help="rows timed with 1 and 2 workers (default: 40000)")
    parser.add_argument("--memory-rows", type=int, default=20_000, help="rows for the in-process peak (default: 20000)")
    parser.add_argument("--check-rows", type=int, default=2_000, help="rows compared with in-process explain (default: 2000)")
    parser.add_argument("--partition-rows", type=int, default=PARTITION_ROWS, help="rows per task (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating 1- and 2-worker timings; the best counts (default: 2)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum L-GMVAE epochs (default: chosen from data size)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--workdir", default=None, help="folder for the files of the run (default: a temporary one, deleted)")
    parser.add_argument("--plan-rows", type=float, default=1e8, help="rows of the capacity plan (default: 1e8)")
    parser.add_argument("--plan-cores", type=int, nargs="+", default=[32, 128, 512], help="cluster sizes of the plan")
    return parser


def distributed_main(argv: Optional[List[str]] = None) -> int:
    args = distributed_parser().parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="lapace-bench-")
    os.makedirs(workdir, exist_ok=True)
    try:
        return _distributed_bench(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _distributed_bench(args: argparse.Namespace, workdir: str) -> int:
    import joblib

    from .. import distributed
    from . import batch

    path = lambda name: os.path.join(workdir, name)  # noqa: E731
    ds = datasets.load("adult")
    X_train, _, y_train, _ = split(ds, test_size=0.2, random_state=args.seed)
    model = make_classifier(ds.schema, "rf", random_state=args.seed).fit(X_train, y_train)
    joblib.dump(model, path("model.joblib"))
    X_train.assign(**{ds.target: y_train}).to_parquet(path("train.parquet"))
    t = time.perf_counter()
    fit_args = ["--data", path("train.parquet"), "--target", ds.target, "--model", path("model.joblib"),
                "--out", path("explainer"), "--seed", str(args.seed), "--quiet"]
    batch.fit_main(fit_args + ([] if args.epochs is None else ["--epochs", str(args.epochs)]))
    fit_s = time.perf_counter() - t
    rows = ds.X.sample(n=args.rows, replace=True, random_state=args.seed).reset_index(drop=True)
    rows.to_parquet(path("rows.parquet"), index=False, row_group_size=args.partition_rows)
    rows.iloc[:args.throughput_rows].to_parquet(path("throughput.parquet"), index=False, row_group_size=args.partition_rows)
    rows.iloc[:args.memory_rows].to_parquet(path("memory.parquet"), index=False)
    explainer = Lapace.load(path("explainer"), model.predict_proba)

    # in-process: one Lapace.explain call in a fresh process, for its peak memory and as the speed of one core
    memory = _in_fresh_process(_in_process_peak, path("explainer"), path("model.joblib"), path("memory.parquet"))
    # the same rows with 1 and with 2 worker processes
    speed: Dict[int, List[Any]] = {1: [], 2: []}
    for repeat in range(args.repeats):  # alternate 1 and 2 workers, so that load from other work hits both alike
        for workers in (1, 2):
            with distributed.connect(workers=workers) as client:
                client.run(_warm_imports)
                load, cpu = os.getloadavg()[0], client.run(time.process_time)
                result = distributed.explain(explainer, path("throughput.parquet"), client=client,
                                             partition_rows=args.partition_rows, output=path("throughput-%d" % workers),
                                             overwrite=True, progress=False)
                cpu_s = sum(t - cpu[w] for w, t in client.run(time.process_time).items())
                speed[workers].append((result.n_rows / result.seconds, sorted(client.run(batch.peak_rss_mb).values()),
                                       (load + os.getloadavg()[0]) / 2, cpu_s / (result.seconds * workers),
                                       result.n_rows / cpu_s))
    best = {workers: max(runs) for workers, runs in speed.items()}
    # all rows through 'lapace explain --workers 2'
    t = time.perf_counter()
    explain_args = ["--explainer", path("explainer"), "--model", path("model.joblib"), "--input", path("rows.parquet"),
                    "--output", path("counterfactuals.parquet"), "--workers", "2", "--partition-rows", str(args.partition_rows)]
    result, peaks = batch.run_explain(batch.explain_parser().parse_args(explain_args))
    end_to_end_s = time.perf_counter() - t
    accounted = _accounted(path("counterfactuals.parquet"), len(rows))
    identical, checked = _identical_sample(explainer, rows, path("counterfactuals.parquet"), args.check_rows, args.seed)
    out_bytes = sum(os.path.getsize(os.path.join(root, f)) for root, _, names in os.walk(path("counterfactuals.parquet")) for f in names)

    print("\nadult: explainer fitted on %d rows in %.1f s ('lapace fit'); rows sampled from the %d bundled rows; "
          "%d rows per partition; strategy first, n_steps %d, %d paths per row"
          % (len(X_train), fit_s, len(ds.X), args.partition_rows, explainer.n_steps, explainer.components_per_class))
    print("\n| measurement | value |\n|---|---|")
    print("| in-process Lapace.explain, %d rows, 1 thread, fresh process | %.0f rows/s; peak RSS %.0f MB (%.0f MB after loading) |"
          % (memory["rows"], memory["rows"] / memory["seconds"], memory["peak_mb"], memory["loaded_mb"]))
    for workers in (1, 2):
        print("| distributed.explain, %d rows, %d worker process%s, best of %d | %.0f rows/s (runs: %s); peak RSS per "
              "worker %s MB |"
              % (args.throughput_rows, workers, "" if workers == 1 else "es", args.repeats, best[workers][0],
                 ", ".join("%.0f rows/s at load average %.1f, each worker getting %.0f%% of a core, %.0f rows per CPU-second"
                           % (run[0], run[2], 100 * run[3], run[4]) for run in speed[workers]),
                 ", ".join("%.0f" % p for p in best[workers][1])))
    print("| speed-up of 2 workers over 1 (same rows, same run, best runs) | %.2fx in rows/s; %.2fx in rows per CPU-second "
          "(1.00x: a second worker costs no efficiency, so rows/s scale with the CPU time the machine gives them) |"
          % (best[2][0] / best[1][0], best[2][4] / best[1][4]))
    print("| 'lapace explain --workers 2', %d rows | %.0f s end to end (cluster start, read, explain, write), "
          "%.0f rows/s in the tasks; peak RSS per worker %s MB |"
          % (len(rows), end_to_end_s, result.n_rows / result.seconds, ", ".join("%.0f" % p for p in peaks)))
    print("| rows accounted for | %s: %d explained + %d failed = %d of %d, none twice |"
          % ("yes" if accounted else "NO", result.n_explained, result.n_failed, result.n_explained + result.n_failed, len(rows)))
    print("| identical to in-process explain | %s on a sample of %d rows |" % ("yes" if identical else "NO", checked))
    dedicated, shared = best[2][4], best[2][0] / 2.0  # rows/s of one core: CPU time only, and wall time on this machine
    print("\nCapacity plan for %.0f rows: %d partitions of %d rows; memory per worker is bounded by the partition, not "
          "the run (about %.0f MB peak here); output about %.1f GB of Parquet. Throughput per core: %.0f rows per "
          "CPU-second (a dedicated core) to %.0f rows/s (a core shared as on this machine during the run)."
          % (args.plan_rows, int(np.ceil(args.plan_rows / args.partition_rows)), args.partition_rows, max(peaks),
             out_bytes / len(rows) * args.plan_rows / 1e9, dedicated, shared))
    print("  %.0f to %.0f core-hours in total" % (args.plan_rows / dedicated / 3600.0, args.plan_rows / shared / 3600.0))
    for cores in args.plan_cores:
        print("  %4d worker processes (1 core each): %.1f to %.1f h wall time, %.0f GB of memory in all"
              % (cores, args.plan_rows / (dedicated * cores) / 3600.0, args.plan_rows / (shared * cores) / 3600.0,
                 cores * max(peaks) / 1024.0))
    return 0 if accounted and identical else 1


def _warm_imports() -> None:
    """Import the explain stack in a worker before timing (torch's import is seconds)."""
    import lapace_plugin.distributed  # noqa: F401


def _accounted(output: str, n_rows: int) -> bool:
    """Every input position is in the counterfactuals or the failures, exactly once."""
    from ..distributed import counterfactuals_path, failures_path

    explained = pd.read_parquet(counterfactuals_path(output), columns=["query", "rank"])
    failed = pd.read_parquet(failures_path(output), columns=["query"])["query"]
    ids = np.concatenate([explained["query"].drop_duplicates().to_numpy(), failed.to_numpy()])
    return (not explained.duplicated().any()) and len(ids) == n_rows and np.array_equal(np.sort(ids), np.arange(n_rows))


def _identical_sample(explainer: Lapace, rows: pd.DataFrame, output: str, n: int, seed: int) -> Tuple[bool, int]:
    """Whether the written counterfactuals of ``n`` sampled rows equal in-process ``Lapace.explain`` of those rows."""
    import pyarrow.dataset as pads

    from ..distributed import counterfactuals_path, failures_path

    ids = np.sort(np.random.RandomState(seed).choice(len(rows), size=min(n, len(rows)), replace=False))
    reference = explainer.explain(rows.iloc[ids])
    filter_ = pads.field("query").isin(ids.tolist())
    written = pads.dataset(counterfactuals_path(output)).to_table(filter=filter_).to_pandas().sort_values(["query", "rank"]).reset_index(drop=True)
    failed = pads.dataset(failures_path(output)).to_table(filter=filter_).to_pandas()
    expected = reference.counterfactuals_with_paths().sort_values(["query", "rank"]).reset_index(drop=True)
    same = (
        written[list(expected.columns)].astype(str).equals(expected.astype(str))
        and dict(zip(failed["query"], failed["reason"])) == reference.failures
    )
    return bool(same), len(ids)


def _in_fresh_process(fn: Callable[..., Dict[str, float]], *args: Any) -> Dict[str, float]:
    """Run ``fn(*args)`` in a new Python process, so its peak memory is its own."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as one:
        return one.submit(fn, *args).result()


def _in_process_peak(explainer_dir: str, model_path: str, rows_path: str) -> Dict[str, float]:
    """Explain every row of ``rows_path`` with one ``Lapace.explain`` call; peak memory before and after."""
    import joblib
    import torch

    from .batch import peak_rss_mb

    torch.set_num_threads(1)
    model = joblib.load(model_path)
    explainer = Lapace.load(explainer_dir, model.predict_proba)
    rows = pd.read_parquet(rows_path)
    loaded = peak_rss_mb()
    t = time.perf_counter()
    explainer.explain(rows)
    return {"rows": len(rows), "seconds": time.perf_counter() - t, "loaded_mb": loaded, "peak_mb": peak_rss_mb()}

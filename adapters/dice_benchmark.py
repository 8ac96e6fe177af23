"""Seconds per query: LAPACE through DiCE against DiCE's own random, genetic and kdtree methods.

Everything runs in one process on the same bundled dataset, model and queries, through the same DiCE
call with DiCE's default settings::

    exp.generate_counterfactuals(query, total_CFs=4, desired_class="opposite")

Run ``python -m lapace_plugin.adapters.dice_benchmark --help`` (or ``lapace dice-benchmark``). LAPACE's fit time is
reported separately from its per-query time; the DiCE methods need no fit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence

from lapace_plugin.strategies import STRATEGIES

DICE_METHODS = ("random", "genetic", "kdtree")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lapace dice-benchmark",
        description=(
            "Seconds per query of LAPACE through DiCE (lapace_plugin.adapters.dice) against DiCE's random, genetic and kdtree "
            "methods with their default settings, on a bundled dataset, in the same run; prints the speed-ups."
        ),
    )
    p.add_argument("--dataset", default="adult", help="bundled binary dataset (default: adult)")
    p.add_argument("--train-rows", type=int, default=None, help="subsample the training split (default: all rows)")
    p.add_argument("--lapace-queries", type=int, default=1000, help="queries explained by LAPACE in one batch (default: 1000)")
    p.add_argument("--dice-queries", type=int, default=20, help="queries per DiCE method, the first of LAPACE's (default: 20)")
    p.add_argument("--total-cfs", type=int, default=4, help="total_CFs per query (default: 4)")
    p.add_argument("--methods", default=",".join(DICE_METHODS), help="DiCE methods to compare (default: random,genetic,kdtree)")
    p.add_argument("--strategy", choices=tuple(STRATEGIES), default="first", help="LAPACE strategy (default: first)")
    p.add_argument("--epochs", type=int, default=None, help="LAPACE training epochs (default: chosen by Lapace)")
    p.add_argument("--trees", type=int, default=100, help="trees of the random forest being explained (default: 100)")
    p.add_argument("--repeats", type=int, default=3, help="LAPACE batch timings; the median is reported (default: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, the model and LAPACE (default: 0)")
    p.add_argument("--explainer", default=None, metavar="DIR", help="load a LAPACE saved by --save-explainer (no fit)")
    p.add_argument("--save-explainer", default=None, metavar="DIR", help="save the fitted LAPACE to this directory")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results to this JSON file")
    return p


def _quiet():
    """Silence DiCE's per-query prints and warnings while timing (their cost stays in the timing)."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _summarise(cfs: Any, proba: Any, classes: List[Any]) -> Dict[str, float]:
    """Share of queries with a counterfactual, and validity of the returned ones under the model."""
    from lapace_plugin.rules import assigned_to

    found, total, valid = 0, 0, 0
    for ex in cfs.cf_examples_list:
        df = ex.final_cfs_df_sparse if ex.final_cfs_df_sparse is not None else ex.final_cfs_df
        if df is None or len(df) == 0:
            continue
        found += 1
        p = proba(df)
        total += len(df)
        valid += int(assigned_to(p, classes.index(ex.desired_class)).sum())
    n = len(cfs.cf_examples_list)
    return {"coverage": found / float(n), "cfs_per_query": total / float(n), "validity": valid / float(max(total, 1))}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark and print one row per method; returns 0."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")  # DiCE's per-query progress bars
    import dice_ml
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from lapace_plugin import datasets
    from lapace_plugin.adapters.dice import LapaceDice

    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in DICE_METHODS]
    if unknown:
        raise SystemExit("unknown DiCE method(s) %s; choose from %s" % (unknown, list(DICE_METHODS)))

    ds = datasets.load(args.dataset)
    train, test = train_test_split(ds.frame, test_size=0.2, random_state=args.seed, stratify=ds.y)
    if args.train_rows is not None and args.train_rows < len(train):
        train = train.sample(args.train_rows, random_state=args.seed)
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    cont, cat = list(ds.schema.continuous), list(ds.schema.categorical)
    pre = ColumnTransformer([("num", StandardScaler(), cont), ("cat", OneHotEncoder(handle_unknown="ignore"), cat)])
    model = Pipeline([("pre", pre), ("rf", RandomForestClassifier(n_estimators=args.trees, random_state=args.seed))])
    model.fit(train[ds.features], train[ds.target])
    queries = test[ds.features].iloc[: args.lapace_queries].reset_index(drop=True)
    d = dice_ml.Data(dataframe=train, continuous_features=cont, outcome_name=ds.target)
    m = dice_ml.Model(model=model, backend="sklearn")
    call = dict(total_CFs=args.total_cfs, desired_class="opposite")
    print(
        "dataset %s: %d training rows, random forest (%d trees) in an sklearn Pipeline; total_CFs=%d, DiCE defaults"
        % (args.dataset, len(train), args.trees, args.total_cfs)
    )

    with _quiet():
        t0 = time.perf_counter()
        if args.explainer:
            lapace = LapaceDice(d, m, explainer=args.explainer, strategy=args.strategy)
        else:
            lapace = LapaceDice(d, m, strategy=args.strategy, epochs=args.epochs, random_state=args.seed, verbose=False)
        fit_s = time.perf_counter() - t0
    if args.save_explainer:
        lapace.explainer.save(args.save_explainer)
    ex = lapace.explainer
    print(
        "LAPACE %s: %.1f s, centroid validity %.0f%%, distinct centroids per class %s"
        % (
            "loaded" if args.explainer else "fit",
            fit_s,
            100 * ex.centroid_validity_,
            dict((str(k), v) for k, v in ex.distinct_centroids_.items()),
        )
    )
    classes = list(model.classes_)
    proba = lapace._predict_proba
    rows: List[Dict[str, Any]] = []

    def timed(name: str, explainer: Any, q: Any, repeats: int = 1) -> None:
        times = []
        for _ in range(max(1, repeats)):
            with _quiet():
                t = time.perf_counter()
                try:
                    cfs = explainer.generate_counterfactuals(q, **call)
                    error = None
                except Exception as exc:  # DiCE raises when no query got a counterfactual
                    cfs, error = None, "%s: %s" % (type(exc).__name__, exc)
                times.append(time.perf_counter() - t)
        seconds = float(np.median(times))
        row = {"method": name, "queries": len(q), "seconds": seconds, "s_per_query": seconds / len(q)}
        row.update(_summarise(cfs, proba, classes) if cfs is not None else {"error": error})
        rows.append(row)

    timed("lapace-" + args.strategy, lapace, queries, repeats=args.repeats)
    for method in methods:
        with _quiet():
            explainer = dice_ml.Dice(d, m, method=method)
        timed(method, explainer, queries.iloc[: args.dice_queries])

    base = rows[0]["s_per_query"]
    print(
        "%-14s %8s %10s %12s %10s %9s %9s %10s"
        % ("method", "queries", "total s", "s/query", "speed-up", "coverage", "CFs/q", "validity")
    )
    for row in rows:
        row["lapace_speedup"] = row["s_per_query"] / base
        if "error" in row:
            print(
                "%-14s %8d %10.2f %12.5f %9.0fx  %s"
                % (row["method"], row["queries"], row["seconds"], row["s_per_query"], row["lapace_speedup"], row["error"])
            )
            continue
        print(
            "%-14s %8d %10.2f %12.5f %9.0fx %9.0f%% %9.2f %9.0f%%"
            % (
                row["method"],
                row["queries"],
                row["seconds"],
                row["s_per_query"],
                row["lapace_speedup"],
                100 * row["coverage"],
                row["cfs_per_query"],
                100 * row["validity"],
            )
        )
    fit_note = "LAPACE loaded, not fitted" if args.explainer else "LAPACE fit of %.1f s not included" % fit_s
    print("speed-up = the method's seconds per query / LAPACE's (median of %d batch runs; %s)" % (max(1, args.repeats), fit_note))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "fit_seconds": fit_s, "results": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

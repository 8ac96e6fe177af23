"""``lapace demo``: the main job on a bundled dataset, end to end."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from .. import datasets
from ..evaluation import metrics
from ..evaluation.models import make_classifier, split
from ..explainer import Lapace
from ..result import Explanation
from . import plots


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lapace demo",
        description=(
            "Train a random-forest pipeline on a bundled dataset, fit LAPACE's L-GMVAE on its predictions, "
            "explain test individuals who receive the unfavourable prediction with both strategies (first: "
            "closest valid point on each latent path; last: the decoded class centroid), print their recourse "
            "and a summary, and write CSV, JSON and plots to an output folder."
        ),
    )
    parser.add_argument("--dataset", default="adult", choices=datasets.names(), help="bundled dataset (default: adult)")
    parser.add_argument("--n-queries", type=int, default=100, help="individuals to explain (default: 100)")
    parser.add_argument("--out", default=None, help="output folder (default: lapace-output/DATASET)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the split, classifier and L-GMVAE")
    parser.add_argument("--epochs", type=int, default=None, help="maximum L-GMVAE epochs (default: chosen from data size)")
    parser.add_argument("--no-constraints", action="store_true",
                        help="ignore the dataset's immutable and monotone features (default: respect them)")
    parser.add_argument("--revert", action="store_true",
                        help="set each 'first' counterfactual's unneeded changes back to the individual's values "
                             "(fewer changes, nearer the decision boundary; default: off)")
    parser.add_argument("--show", type=int, default=3, help="individuals whose recourse is printed (default: 3)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    out = args.out or os.path.join("lapace-output", args.dataset)
    os.makedirs(out, exist_ok=True)
    ds = datasets.load(args.dataset)
    X_train, X_test, y_train, y_test = split(ds, test_size=0.2, random_state=args.seed)
    print("dataset %s: %d training and %d test rows, %d features" % (ds.name, len(X_train), len(X_test), len(ds.schema.features)))

    t = time.time()
    model = make_classifier(ds.schema, "rf", random_state=args.seed, n_jobs=2).fit(X_train, y_train)
    print("random forest: test accuracy %.3f (trained in %.1f s)" % (model.score(X_test, y_test), time.time() - t))

    explainer = Lapace(schema=ds.schema, random_state=args.seed, epochs=args.epochs)
    explainer.fit(X_train, predict_proba=model.predict_proba, classes=model.classes_)
    print("L-GMVAE fitted in %.1f s; centroid validity %.0f%% (before settling %.0f%%), distinct decoded centroids per class %s"
          % (explainer.fit_time_, 100 * explainer.centroid_validity_, 100 * explainer.centroid_validity_initial_,
             explainer.distinct_centroids_))

    predicted = model.predict_proba(X_test).argmax(1)
    if ds.favourable is not None:
        favourable = list(model.classes_).index(ds.favourable)
        queries = X_test[predicted != favourable].iloc[: args.n_queries]
        target: Any = favourable
        print("explaining %d test individuals predicted %s=%s" % (len(queries), ds.target, model.classes_[1 - favourable]))
    else:
        queries = X_test.iloc[: args.n_queries]
        target = (predicted[: len(queries)] + 1) % explainer.n_classes_
        print("explaining %d test rows, each towards the next class" % len(queries))
    constraints = None if args.no_constraints else "schema"

    results: Dict[str, Explanation] = {}
    summary = []
    for strategy in ("first", "last"):
        t = time.time()
        res = explainer.explain(queries, target_class=target, strategy=strategy, constraints=constraints, revert=args.revert)
        seconds = time.time() - t
        results[strategy] = res
        summary.append(_summarise(res, seconds, model, ds))
        res.to_frame().to_csv(os.path.join(out, "counterfactuals_%s.csv" % strategy), index=False)
        with open(os.path.join(out, "counterfactuals_%s.json" % strategy), "w") as fh:
            fh.write(res.to_json())

    print()
    for label in queries.index[: args.show]:
        print(describe_recourse(results["first"], label, ds.target, model.classes_))
    table = pd.DataFrame(summary).set_index("strategy")
    print("\nsummary (constraints: %s)" % ("none" if constraints is None else "schema's immutable and monotone features"))
    print(table.to_string(float_format=lambda v: "%.4f" % v))
    table.to_csv(os.path.join(out, "summary.csv"))
    with open(os.path.join(out, "summary.json"), "w") as fh:
        json.dump({"dataset": ds.name, "centroid_validity": explainer.centroid_validity_,
                   "distinct_centroids": {str(k): v for k, v in explainer.distinct_centroids_.items()},
                   "fit_seconds": explainer.fit_time_, "strategies": table.reset_index().to_dict(orient="records")}, fh, indent=1)
    plots.latent_space(explainer, X_train, results["first"], os.path.join(out, "latent_space.png"))
    plots.feature_changes(explainer, results, os.path.join(out, "feature_changes.png"))
    print("\nwrote CSV, JSON and plots (latent_space.png, feature_changes.png) to %s" % os.path.abspath(out))
    return 0


def _summarise(res: Explanation, seconds: float, model: Any, ds: Any) -> Dict[str, Any]:
    cf = res.counterfactuals
    factuals = res.queries
    targets = pd.Series(res.target_class, index=factuals.index)
    return {
        "strategy": res.strategy,
        "queries": res.n_queries,
        "counterfactuals": len(cf),
        "coverage": res.coverage,
        "validity": metrics.validity(ds.schema, factuals, cf, model.predict_proba, targets) if len(cf) else float("nan"),
        "proximity_l1": metrics.proximity_l1(ds.schema, factuals, cf) if len(cf) else float("nan"),
        "sparsity": metrics.sparsity(ds.schema, factuals, cf) if len(cf) else float("nan"),
        "constraint_violations": metrics.constraint_violations(ds.schema, factuals, cf) if len(cf) else 0,
        "repaired": res.n_repaired,
        "seconds_per_query": seconds / max(1, res.n_queries),
    }


def describe_recourse(res: Explanation, label: Any, target_name: str, classes: Any) -> str:
    """Readable recourse for one query: its closest counterfactual's changed features only."""
    query = res.queries.loc[label]
    lines = ["individual %s:" % label]
    if label in res.failures:
        return lines[0] + " no counterfactual (%s)" % res.failures[label]
    cfs = res.for_query(label)
    best = cfs.iloc[0]
    i = list(res.queries.index).index(label)
    lines[0] += " to be predicted %s=%s, change" % (target_name, classes[res.target_class[i]])
    for name in res.queries.columns:
        a, b = query[name], best[name]
        if isinstance(a, (int, float, np.number)) and not isinstance(a, bool):
            if abs(float(a) - float(b)) > 1e-9:
                lines.append("    %-18s %s -> %s" % (name, _fmt(a), _fmt(b)))
        elif a != b:
            lines.append("    %-18s %s -> %s" % (name, a, b))
    if len(lines) == 1:
        lines.append("    (nothing: the decoded point equals the input)")
    lines.append("    (%d alternative%s in the CSV)" % (len(cfs) - 1, "" if len(cfs) == 2 else "s"))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else "%.3g" % v

"""``lapace demo``: the main job on a bundled dataset, end to end, printed as advice a person could follow."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from .. import datasets
from ..constraints import Constraints
from ..evaluation import metrics
from ..evaluation.models import make_classifier, split
from ..explainer import Lapace
from ..params import check_call
from ..result import Explanation
from ..rules import changed_features
from . import plots

NOT_ADVICE = {"adult": ("marital_status", "relationship", "capital_loss")}
"""Features a plan should not ask a person to change, per bundled dataset: "get married" is no advice a lender gives,
and neither is "lose $1,848 on an investment" (adult's forest reads a capital loss as a sign of wealth)."""

TAKES_TIME = {"adult": ("change(age) >= change(education_num)",)}
"""Changes that take time, per bundled dataset: a plan raising education by n levels (about n school years) ages the
person by at least n years, so with the age limit a plan cannot turn a high-school graduate into a doctor."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lapace demo",
        description=(
            "Train a random-forest pipeline on a bundled dataset, fit LAPACE's L-GMVAE on its predictions, explain "
            "test individuals who receive the unfavourable prediction with the three strategies (first: the closest valid "
            "point on each latent path; robust: the first point the classifier gives at least --min-probability; last: "
            "the decoded class centroid), print the options of the first few "
            "individuals as advice (changed features only) and a summary, and write CSV, JSON and plots "
            "(latent_space.png, feature_changes.png) to an output folder. By default the dataset's immutable features "
            "stay as they are, so do the features a lender cannot advise on (--keep; on adult: marital status, "
            "relationship and capital loss), its increase-only features only rise, an age rises by at most --age-limit years and "
            "changes that take time age the person (on adult: education rises by at most the years the age rises), "
            "each 'first' and 'robust' option keeps only the changes it needs (see --no-revert), and a person's options "
            "differ in which features they change (see --no-diverse)."
        ),
    )
    parser.add_argument("--dataset", default="adult", choices=datasets.names(), help="bundled dataset (default: adult)")
    parser.add_argument("--n-queries", type=int, default=100, help="individuals to explain (default: 100)")
    parser.add_argument("--out", default=None, help="output folder (default: lapace-output/DATASET)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the split, classifier and L-GMVAE (default: 0)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum L-GMVAE epochs (default: chosen from data size)")
    parser.add_argument("--no-constraints", action="store_true",
                        help="ignore the dataset's immutable and monotone features, the kept ones and the changes that take "
                             "time (default: respect them)")
    parser.add_argument("--age-limit", type=float, default=5.0,
                        help="the largest rise of an increase-only age feature in a plan, in years (default: 5; "
                             "0 keeps the age; a negative value lifts the limit)")
    parser.add_argument("--keep", nargs="*", default=None, metavar="FEATURE",
                        help="features no plan changes, besides the dataset's immutable ones (default: %s; none elsewhere; "
                             "'--keep' alone keeps none)" % "; ".join("%s: %s" % (k, " ".join(v)) for k, v in NOT_ADVICE.items()))
    parser.add_argument("--no-revert", dest="revert", action="store_false",
                        help="keep every change of each 'first' counterfactual (default: changes it does not need, "
                             "for the classifier or for a plausible row, are set back to the individual's values, so "
                             "each option is a short plan)")
    parser.add_argument("--no-diverse", dest="diverse", action="store_false",
                        help="each latent path gives its own nearest point (default: several points per path are tried "
                             "and a person's options are chosen to change different features; lapace_plugin.options)")
    parser.add_argument("--max-per-feature", type=int, default=None, metavar="N",
                        help="the most options of one person that change the same feature (default: no cap; with "
                             "2, a person whose only lever is capital gain gets two variants of it, not five)")
    parser.add_argument("--max-lof", type=float, default=None, metavar="LOF",
                        help="give a change back only while the plan's local outlier factor among the target class's "
                             "training rows stays at most LOF (about 1: as typical as real rows; default: no check)")
    parser.add_argument("--min-probability", type=float, default=0.6,
                        help="strategy robust: the classifier's probability each option reaches (default: 0.6)")
    parser.add_argument("--advice", default="robust", choices=("first", "robust", "last"),
                        help="strategy whose options are printed as advice (default: robust: plans that stay valid "
                             "when the lender retrains its model, at little extra distance)")
    parser.add_argument("--show", type=int, default=3, help="individuals whose options are printed (default: 3)")
    return parser.parse_args(argv)


def demo_constraints(schema: Any, age_limit: float, keep: Sequence[str] = (), relations: Sequence[str] = ()) -> Constraints:
    """The schema's immutable and monotone features, the ``keep`` features unchanged, an increase-only age rising at
    most ``age_limit`` years, and ``relations`` (e.g. :data:`TAKES_TIME`)."""
    increase = {f: None for f, d in schema.monotone.items() if d == "increase"}
    for f in increase:
        if f.startswith("age") and age_limit >= 0:
            increase[f] = age_limit
    decrease = [f for f, d in schema.monotone.items() if d == "decrease"]
    return Constraints(immutable=list(dict.fromkeys(list(schema.immutable) + list(keep))), increase=increase, decrease=decrease,
                       relations=list(relations))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    check_call(dict(min_probability=args.min_probability, max_per_feature=args.max_per_feature, max_lof=args.max_lof))
    out = args.out or os.path.join("lapace-output", args.dataset)
    os.makedirs(out, exist_ok=True)
    ds = datasets.load(args.dataset)
    X_train, X_test, y_train, y_test = split(ds, test_size=0.2, random_state=args.seed)
    print("dataset %s: %d training and %d test rows; %s" % (ds.name, len(X_train), len(X_test), ds.schema))

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
    keep = NOT_ADVICE.get(args.dataset, ()) if args.keep is None else args.keep
    constraints = None if args.no_constraints else demo_constraints(ds.schema, args.age_limit, keep, TAKES_TIME.get(args.dataset, ()))
    print("constraints: %s" % (constraints or "none"))

    results: Dict[str, Explanation] = {}
    summary = []
    for strategy in ("first", "robust", "last"):
        t = time.time()
        res = explainer.explain(queries, target_class=target, strategy=strategy, constraints=constraints, revert=args.revert,
                                diverse=args.diverse and args.revert, min_probability=args.min_probability,
                                max_per_feature=args.max_per_feature, max_lof=args.max_lof)
        summary.append(_summarise(res, time.time() - t, model, explainer, X_train))
        results[strategy] = res
        res.to_frame().to_csv(os.path.join(out, "counterfactuals_%s.csv" % strategy), index=False)
        with open(os.path.join(out, "counterfactuals_%s.json" % strategy), "w") as fh:
            fh.write(res.to_json())

    print()
    for label in queries.index[: args.show]:
        print(describe_recourse(results[args.advice], label, ds.target, model.classes_))
        print()
    table = pd.DataFrame(summary).set_index("strategy")
    print("summary")
    print(table.to_string(float_format=lambda v: "%.4f" % v))
    heldout = metrics.heldout_consistency_violations(explainer.schema_, X_test, predicted, explainer)
    print("real held-out test rows the consistency check rejects: %.4f (the reference for 'inconsistent')" % heldout)
    table.to_csv(os.path.join(out, "summary.csv"))
    with open(os.path.join(out, "summary.json"), "w") as fh:
        json.dump({"dataset": ds.name, "centroid_validity": explainer.centroid_validity_,
                   "distinct_centroids": {str(k): v for k, v in explainer.distinct_centroids_.items()},
                   "constraints": None if constraints is None else constraints.to_dict(),
                   "heldout_inconsistent": heldout,
                   "fit_seconds": explainer.fit_time_, "strategies": table.reset_index().to_dict(orient="records")}, fh, indent=1)
    plots.latent_space(explainer, X_train, results[args.advice], os.path.join(out, "latent_space.png"))
    plots.feature_changes(explainer, results, os.path.join(out, "feature_changes.png"))
    print("\nwrote CSV, JSON and plots (latent_space.png, feature_changes.png) to %s" % os.path.abspath(out))
    return 0


def _summarise(res: Explanation, seconds: float, model: Any, explainer: Any, X_train: pd.DataFrame) -> Dict[str, Any]:
    """One summary row: coverage, options per person, validity, closeness, features changed, option diversity, the
    share of options changing the most common feature, unseen pairs, inconsistent rows, violations, time."""
    cf, factuals, schema = res.counterfactuals, res.queries, explainer.schema_
    targets = pd.Series(res.target_class, index=factuals.index)
    found = len(cf) > 0
    share = metrics.changed(schema, factuals, cf).mean(0) if found else None  # options changing each feature
    return {
        "strategy": res.strategy,
        "queries": res.n_queries,
        "counterfactuals": len(cf),
        "options_per_person": len(cf) / max(1, res.n_queries),
        "coverage": res.coverage,
        "validity": metrics.validity(schema, factuals, cf, model.predict_proba, targets) if found else float("nan"),
        "proximity_l1": metrics.proximity_l1(schema, factuals, cf) if found else float("nan"),
        "features_changed": metrics.features_changed(schema, factuals, cf) if found else float("nan"),
        "diversity_l1": metrics.diversity(schema, factuals, cf) if found else float("nan"),
        "option_diversity": metrics.option_diversity(schema, factuals, cf) if found else float("nan"),
        "top_feature_share": share.max() if found else float("nan"),
        "top_feature": schema.features[int(share.argmax())] if found else "",
        # pairs of values (categories, zero / non-zero amounts) that no training row holds together
        "unseen_pairs": metrics.support_violations(schema, factuals, cf, X_train) if found else float("nan"),
        # rows whose numbers the L-GMVAE finds less likely than 99% of held-out real rows of their class
        "inconsistent": metrics.consistency_violations(schema, factuals, cf, targets, explainer) if found else float("nan"),
        "constraint_violations": metrics.constraint_violations(schema, factuals, cf, res.meta["constraints"] or "schema") if found else 0,
        "seconds_per_query": seconds / max(1, res.n_queries),
    }


def describe_recourse(res: Explanation, label: Any, target_name: str, classes: Any, options: int = 3) -> str:
    """A query's options as advice: for each of its nearest distinct counterfactuals, the features to change."""
    i = list(res.queries.index).index(label)
    head = "individual %s, predicted %s=%s" % (label, target_name, classes[res.predicted_class[i]])
    if label in res.failures:
        return head + ": no counterfactual (%s)" % res.failures[label]
    query = res.queries.loc[label]
    cfs = res.for_query(label)
    chosen = res.counterfactuals_with_paths()
    proba = chosen[chosen["query"] == label].set_index("rank")["probability"]
    lines = [head + "; to be predicted %s=%s:" % (target_name, classes[res.target_class[i]])]
    moved = changed_features(res.schema, pd.DataFrame([query] * len(cfs), columns=cfs.columns), cfs)
    for i, (rank, row) in enumerate(cfs.iloc[:options].iterrows()):
        changes = ["%s %s -> %s" % (name, _fmt(query[name]), _fmt(row[name])) for name, hit in zip(res.schema.features, moved[i]) if hit]
        lines.append("  option %d (probability %.2f): %s" % (rank + 1, proba.get(rank, np.nan), "; ".join(changes) or "no change"))
    if len(cfs) > options:
        lines.append("  (%d more option%s in the CSV)" % (len(cfs) - options, "" if len(cfs) - options == 1 else "s"))
    if label in res.shortfalls:
        lines.append("  (%s)" % res.shortfalls[label])
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if not isinstance(v, (int, float, np.number)) or isinstance(v, bool):
        return str(v)
    v = float(v)
    return str(int(v)) if v.is_integer() else "%g" % v

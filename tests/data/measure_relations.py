"""Measure issue 20's figures (small runs; prints tables):

1. ``cardlike``: share of counterfactuals breaking each known relation, without and with the declarations, with and
   without ``revert``, through ``Lapace`` and the DiCE swap (``--dice``);
2. bundled data: the learned consistency check's share for LAPACE's counterfactuals (filter off and on) beside real
   held-out rows of the target class, and validity / coverage with the filter off and on.

    PYTHONPATH=. python tests/data/measure_relations.py [--dice] [--datasets adult compas german credit]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_cardlike import DERIVED, MOVE_TOGETHER, RELATIONS, load  # noqa: E402

from lapace_plugin import Constraints, FeatureSchema, Lapace, datasets  # noqa: E402
from lapace_plugin.evaluation import metrics  # noqa: E402
from lapace_plugin.evaluation.models import make_classifier, split  # noqa: E402

EVERY = {"share off formula": "share == 12 * (expenditure + 1) / (10000 * income)",
         "months > 12*age": RELATIONS[0], "change(months) > 12*change(age)": MOVE_TOGETHER}


def _broken(schema, factuals, cf):
    check = Constraints(relations=list(EVERY.values()))
    table = check.violations(factuals.loc[cf.index.get_level_values("query")], cf[factuals.columns], schema)
    return {label: float(table[text].mean()) for label, text in EVERY.items()}


def cardlike(with_dice: bool) -> pd.DataFrame:
    data = load()
    y = data.pop("card")
    X_train, X_test = data.iloc[:960], data.iloc[960:]
    declared = FeatureSchema.infer(X_train, derived=DERIVED, relations=RELATIONS)
    model = make_classifier(declared, "rf", random_state=0).fit(X_train, y.iloc[:960])
    queries = X_test[model.predict(X_test) == 0].iloc[:60]
    rows = []
    for told in (False, True):
        schema = declared if told else FeatureSchema.infer(X_train)
        ex = Lapace(schema=schema, random_state=0, verbose=False).fit(X_train, model.predict_proba, classes=model.classes_)
        cons = {"increase": ["age"], "relations": [MOVE_TOGETHER] if told else []}
        for revert in (False, True):
            res = ex.explain(queries, constraints=cons, revert=revert)
            rows.append(dict(path="Lapace", declared=told, revert=revert, counterfactuals=len(res.counterfactuals),
                             coverage=res.coverage, **_broken(declared, queries, res.counterfactuals)))
        if with_dice:
            rows += _dice(X_train, y.iloc[:960], queries, declared, told)
    return pd.DataFrame(rows)


def _dice(X_train, y_train, queries, declared, told):
    import dice_ml

    from lapace_plugin.adapters.dice import LapaceDice

    train = X_train.assign(card=y_train.to_numpy())
    cont = [c for c in X_train.columns if c != "owner"]
    model = make_classifier(declared, "rf", random_state=0).fit(X_train, y_train)
    d = dice_ml.Data(dataframe=train, continuous_features=cont, outcome_name="card")
    m = dice_ml.Model(model=model, backend="sklearn")
    options = dict(derived=DERIVED, relations=RELATIONS + [MOVE_TOGETHER], monotone={"age": "increase"}) if told else {}
    exp = LapaceDice(d, m, random_state=0, verbose=False, **options)
    out = []
    for revert in (False, True):
        cfs = exp.generate_counterfactuals(queries.reset_index(drop=True), total_CFs=3, revert=revert)
        found = [(i, ex.final_cfs_df_sparse) for i, ex in enumerate(cfs.cf_examples_list) if ex.final_cfs_df_sparse is not None]
        cf = pd.concat([df.assign(query=queries.index[i]) for i, df in found]).set_index("query", append=True).swaplevel()
        cf = cf[list(queries.columns)].astype(queries.dtypes.to_dict())
        out.append(dict(path="DiCE (sparse)", declared=told, revert=revert, counterfactuals=len(cf),
                        coverage=len(found) / len(queries), **_broken(declared, queries, cf)))
    return out


def consistency(names) -> pd.DataFrame:
    rows = []
    for name in names:
        ds = datasets.load(name)
        X_train, X_test, y_train, _ = split(ds, test_size=0.2, random_state=0)
        X_train, y_train = X_train.iloc[:5000], y_train.iloc[:5000]
        model = make_classifier(ds.schema, "rf", random_state=0).fit(X_train, y_train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = Lapace(schema=ds.schema, random_state=0, verbose=False).fit(X_train, model.predict_proba, classes=model.classes_)
        predicted = model.predict_proba(X_test).argmax(1)
        favourable = list(model.classes_).index(ds.favourable)
        queries = X_test[predicted != favourable].iloc[:100]
        heldout = X_test[predicted == favourable]
        row = dict(dataset=name, heldout_target_rows=len(heldout),
                   heldout=metrics.heldout_consistency_violations(ds.schema, heldout, favourable, ex))
        for on in (False, True):
            res = ex.explain(queries, target_class=favourable, constraints="schema", consistency=on)
            cf, targets = res.counterfactuals, pd.Series(favourable, index=queries.index)
            key = "on" if on else "off"
            row["lapace_" + key] = metrics.consistency_violations(ds.schema, queries, cf, targets, ex)
            row["validity_" + key] = metrics.validity(ds.schema, queries, cf, model.predict_proba, targets)
            row["coverage_" + key] = res.coverage
            row["cfs_" + key] = len(cf)
        rows.append(row)
        print(pd.DataFrame([row]).to_string(index=False), flush=True)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dice", action="store_true")
    parser.add_argument("--datasets", nargs="*", default=["adult", "compas", "german", "credit"])
    parser.add_argument("--skip-cardlike", action="store_true")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    if not args.skip_cardlike:
        print(cardlike(args.dice).to_string(index=False, float_format=lambda v: "%.3f" % v), flush=True)
    if args.datasets:
        print(consistency(args.datasets).to_string(index=False, float_format=lambda v: "%.3f" % v))

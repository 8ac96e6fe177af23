"""Build the saved reference explanations that ``tests/test_reference.py`` compares against.

Run once, from the repository root, with the code whose behaviour is to be kept::

    python tests/reference/build.py

It was run at commit 1b13f5b (before the redesign of issue 12). For every bundled dataset it fits a small
L-GMVAE on a subsample, labelled by a logistic-regression classifier whose weights are stored as plain arrays
(so the test needs neither the training code nor a particular scikit-learn), saves the explainer with
``Lapace.save`` and writes ``to_frame()`` (and some ``paths``) of every explain setting in ``CASES``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from lapace_plugin import Lapace, datasets  # noqa: E402

from reference_cases import CASES, DATASETS, LinearClassifier, design, query_rows  # noqa: E402


def build(name: str) -> None:
    ds = datasets.load(name)
    rng = np.random.RandomState(0)
    order = rng.permutation(len(ds.X))
    train = ds.X.iloc[order[:1500]]
    y = ds.y.iloc[order[:1500]].to_numpy()
    schema = ds.schema.to_dict()
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(design(train, schema), y)
    coef = clf.coef_ if clf.coef_.shape[0] > 1 else np.vstack([-clf.coef_ / 2, clf.coef_ / 2])
    intercept = clf.intercept_ if len(clf.intercept_) > 1 else np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    out = os.path.join(HERE, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    np.savez(os.path.join(out, "classifier.npz"), coef=coef, intercept=intercept)
    model = LinearClassifier(coef, intercept, schema)
    explainer = Lapace(
        schema=ds.schema, components_per_class=3, latent_dim=8, hidden=(32, 32), epochs=40, n_steps=10,
        random_state=0, verbose=False,
    )
    explainer.fit(train, predict_proba=model.predict_proba)
    explainer.save(os.path.join(out, "explainer"))
    queries = query_rows(ds, model)
    queries.to_csv(os.path.join(out, "queries.csv"))
    for case, settings in CASES.items():
        res = explainer.explain(queries, **settings(explainer, queries))
        res.to_frame().to_csv(os.path.join(out, "%s.csv" % case), index=False)
    paths = explainer.explain(queries.iloc[:3], **CASES["corrected"](explainer, queries.iloc[:3])).paths
    paths.to_csv(os.path.join(out, "paths.csv"), index=False)
    print(name, json.dumps({k: len(pd.read_csv(os.path.join(out, "%s.csv" % k))) for k in CASES}))


if __name__ == "__main__":
    for dataset in DATASETS:
        build(dataset)

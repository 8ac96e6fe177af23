"""``lapace bench --global``: explaining 10,000 refused adult rows globally, against its floor in the same run.

The target is under a minute on 2 cores. The floor is the classifier alone on what the chosen actions must at least
be judged on: every refused row once per chosen action (one call over all of them); the ratio says how much the
candidates, the selection and the bookkeeping add to that.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

import numpy as np
import pandas as pd

from .. import datasets
from ..actions import apply_action
from ..evaluation.models import make_classifier, split
from ..explainer import Lapace
from ..rules import assigned_to


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="lapace bench --global", description=__doc__.split("\n\n")[0])
    parser.add_argument("--global", dest="global_", action="store_true", help="this benchmark")
    parser.add_argument("--n-rows", type=int, default=10000, help="refused rows to explain (default: %(default)s)")
    parser.add_argument("--n-actions", type=int, default=5, help="actions (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=30, help="L-GMVAE epochs (default: %(default)s; fit is not timed)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    import torch

    torch.set_num_threads(args.threads)
    ds = datasets.load("adult")
    X_train, _, y_train, _ = split(ds, random_state=0)
    X_train, y_train = X_train.iloc[:6000], y_train.iloc[:6000]
    model = make_classifier(ds.schema, "rf", random_state=0, n_jobs=args.threads).fit(X_train, y_train)
    explainer = Lapace(schema=ds.schema, random_state=0, epochs=args.epochs, verbose=False, n_threads=args.threads)
    explainer.fit(X_train, model.predict_proba, classes=model.classes_)
    X = ds.X
    refused = X[~assigned_to(model.predict_proba(X), 1)].iloc[: args.n_rows]
    start = time.perf_counter()
    result = explainer.explain_global(refused, target_class=1, n_actions=args.n_actions, constraints="schema", random_state=0)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    rows = pd.concat([apply_action(a, refused, ds.schema) for a in result.actions], ignore_index=True)
    model.predict_proba(rows)
    floor = time.perf_counter() - start
    print(result)
    print("explain_global on %d refused adult rows: %.1f s (target < 60 s); floor (apply and classify %d actions x %d rows): "
          "%.2f s; ratio %.1f" % (len(refused), seconds, len(result.actions), len(refused), floor, seconds / max(floor, 1e-9)))
    print(result.constructions.round(3).to_string(index=False))
    return 0 if np.isfinite(seconds) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``lapace explain --global``: a few actions that cover the refused rows of a table, with their coverage and cost.

It loads a saved explainer and its classifier as ``lapace explain`` does (:func:`lapace_plugin.apps.batch.load_model`),
runs :meth:`lapace_plugin.Lapace.explain_global` on the table's rows in this process (no cluster: the work is a
sample's candidates and one classifier call per chosen action over all rows) and writes to ``--output``:
``actions.csv`` (one row per action: rule, coverage alone and added, share assigned, mean cost), ``people.csv`` (per
refused row: its id, the action assigned, its cost and the features it changes; an empty action: none works),
``curve.csv`` (coverage and cost of the first 1, 2, ... actions) and ``constructions.csv`` (the candidate pools
compared on the selection sample).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional

from ..explainer import Lapace
from ..files import check_output_folder, read_json
from .batch import MODEL_FORMATS, load_model, read_table

WRITES = ("actions.csv", "people.csv", "curve.csv", "constructions.csv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lapace explain --global", description=__doc__.split("\n\n")[0] + " " + MODEL_FORMATS,
                                     epilog="Example: lapace explain --global --explainer explainer/ --model model.joblib "
                                            "--input rows.parquet --output actions/ --n-actions 5 --constraints schema")
    parser.add_argument("--global", dest="global_", action="store_true", required=True, help="global recourse (this command)")
    parser.add_argument("--explainer", required=True, help="folder written by 'lapace fit' (or Lapace.save)")
    parser.add_argument("--model", required=True, help="the classifier file the explainer was fitted for")
    parser.add_argument("--input", required=True, help="rows: a Parquet file or folder, or a CSV file (the refused are explained)")
    parser.add_argument("--output", required=True, help="folder for actions.csv, people.csv, curve.csv, constructions.csv")
    parser.add_argument("--id-column", default=None, help="column holding each row's id (default: the row's 0-based position)")
    parser.add_argument("--target-class", type=int, default=None, help="class index to reach (default: the other class)")
    parser.add_argument("--constraints", default=None, help="'schema' or a JSON file of constraints (as lapace explain)")
    parser.add_argument("--features-to-vary", nargs="+", default=None, metavar="FEATURE", help="the only features actions may change")
    parser.add_argument("--n-actions", type=int, default=5, help="most actions (default: %(default)s)")
    parser.add_argument("--n-sample", type=int, default=600, help="refused rows the actions are built and chosen on (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of that sample (default: %(default)s)")
    parser.add_argument("--trust", nargs="*", default=[], metavar="TYPE", help="extra types a .skops model may load")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="silence the warning that a joblib/pickle model runs code (also: LAPACE_TRUST_PICKLE=1)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    check_output_folder(args.output, option="--output", what="lapace explain --global", owned=lambda _: set(WRITES),
                        inputs={"--input": args.input, "--explainer": args.explainer, "--model": args.model})
    features = list(Lapace.load(args.explainer).schema_.features)
    predict_proba, _ = load_model(args.model, features, args.trust, args.trust_pickle)
    explainer = Lapace.load(args.explainer, predict_proba)
    data = read_table(args.input)
    if args.id_column is not None:
        if args.id_column not in data.columns:
            raise SystemExit("lapace explain --global: id column %r is not in %s" % (args.id_column, args.input))
        data = data.set_index(args.id_column)
    constraints = args.constraints
    if constraints not in (None, "schema"):
        constraints = read_json(constraints, "the constraints file")
    start = time.perf_counter()
    result = explainer.explain_global(data[features], target_class=args.target_class, n_actions=args.n_actions,
                                      constraints=constraints, features_to_vary=args.features_to_vary,
                                      n_sample=args.n_sample, random_state=args.seed)
    seconds = time.perf_counter() - start
    os.makedirs(args.output, exist_ok=True)
    result.summary.to_csv(os.path.join(args.output, "actions.csv"), index=False)
    result.to_frame().rename_axis(args.id_column or "row").to_csv(os.path.join(args.output, "people.csv"))
    result.curve.to_csv(os.path.join(args.output, "curve.csv"), index=False)
    result.constructions.to_csv(os.path.join(args.output, "constructions.csv"), index=False)
    print(result)
    print("%d rows, %d refused; %.1f s; wrote %s" % (len(data), len(result.people), seconds, args.output))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

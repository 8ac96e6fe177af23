"""``lapace fit`` and ``lapace explain``: the production batch commands (Parquet or CSV in, Parquet part files out).

``lapace explain`` runs :func:`lapace_plugin.distributed.explain` on an embedded Dask ``LocalCluster`` (``--workers``)
or an existing Dask cluster (``--scheduler``) and writes one Parquet part file per partition, so a rerun after a crash
keeps the parts the manifest verifies and never duplicates rows. Every output path is checked before any cluster
starts or any fit begins (:mod:`lapace_plugin.files`): nothing the commands did not write is ever changed or deleted.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .. import persistence
from ..distributed import PARTITION_ROWS, SCHEDULER_TIMEOUT, check_output, counterfactuals_path, failures_path
from ..errors import InvalidParameterError
from ..explainer import Lapace
from ..files import check_output_folder, read_json
from ..params import check_call
from ..schema import FeatureSchema
from ..strategies import STRATEGIES
from .cli import Parser

MODEL_FORMATS = (
    "MODEL is a classifier file, chosen by its extension: .joblib/.pkl (scikit-learn style object with predict_proba; "
    "loading a joblib or pickle file RUNS CODE from it, so load only files you trust: a warning says so at every load, "
    "--trust-pickle or LAPACE_TRUST_PICKLE=1 silences it), .skops (loads only the types skops trusts and those named "
    "with --trust), or .pt/.ts (a TorchScript module mapping a float32 tensor of the features, in the schema's order, "
    "to class probabilities, e.g. ending in a softmax; every feature must be numeric)."
)
EXIT_CODES = (
    "Exit codes: 0 done (rows without a counterfactual are listed with their reason, not an error); 1 the run failed; "
    "2 bad usage or input, refused before anything is written; 130 interrupted (rerun the same command to resume). "
    "Errors are one line on stderr; --debug shows the traceback."
)
MAX_SAMPLE_ROWS = 10_000_000
TORCHSCRIPT = (".pt", ".pth", ".ts", ".torchscript")


# ---------------------------------------------------------------------------------------------- models and data
class TorchScriptClassifier:
    """``predict_proba`` of a TorchScript module; picklable (it travels as the file's bytes and loads on first use).

    Parameters
    ----------
    data
        The bytes of a ``torch.jit.save`` file: a module mapping a float32 tensor ``(n, features)`` to
        probabilities ``(n, L)``.
    features
        Column order of the module's input.
    """

    def __init__(self, data: bytes, features: Sequence[str]) -> None:
        self.data, self.features, self._module = data, list(features), None

    def __getstate__(self) -> Dict[str, Any]:
        return {"data": self.data, "features": self.features, "_module": None}

    def __call__(self, X: pd.DataFrame) -> np.ndarray:
        import torch

        if self._module is None:
            self._module = torch.jit.load(io.BytesIO(self.data), map_location="cpu")
            self._module.eval()
        text = [c for c in self.features if not pd.api.types.is_numeric_dtype(X[c])]
        if text:
            raise ValueError("a TorchScript classifier takes numeric features only; column(s) %s are not numeric" % text)
        with torch.no_grad():
            try:
                out = self._module(torch.tensor(X[self.features].to_numpy(dtype=np.float32)))
            except RuntimeError as exc:
                raise ValueError("the TorchScript model does not take a (rows, %d) float32 tensor of the features %s: %s"
                                 % (len(self.features), self.features[:5] + (["..."] if len(self.features) > 5 else []),
                                    str(exc).strip().splitlines()[-1])) from None
        return out.detach().cpu().numpy().astype(np.float64)


def load_model(
    path: str, features: Sequence[str], trust: Sequence[str] = (), trust_pickle: bool = False
) -> Tuple[Callable[[pd.DataFrame], Any], Optional[List[Any]]]:
    """The classifier's ``predict_proba`` and class labels (``None`` when the file does not say) from ``path``.

    See ``MODEL_FORMATS`` for the formats; ``trust`` names extra types a ``.skops`` file may load; loading a joblib
    or pickle file warns that it runs the file's code unless ``trust_pickle`` or ``LAPACE_TRUST_PICKLE=1``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError("model file %r does not exist" % path)
    lower = path.lower()
    if lower.endswith(TORCHSCRIPT):
        with open(path, "rb") as fh:
            return TorchScriptClassifier(fh.read(), features), None
    if lower.endswith(".skops"):
        try:
            import skops.io as sio
        except ImportError as exc:
            raise ImportError("loading .skops models needs skops: pip install skops") from exc
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in set(trust)]
        if untrusted:
            raise ValueError("%r contains types skops does not trust: %s; check them and pass --trust %s"
                             % (path, untrusted, " ".join(untrusted)))
        model = sio.load(path, trusted=list(trust))
    elif lower.endswith((".joblib", ".pkl", ".pickle")):
        import joblib

        if not (trust_pickle or os.environ.get("LAPACE_TRUST_PICKLE") == "1"):
            warnings.warn("loading %s runs code stored in it (joblib/pickle): load only files you trust (--trust-pickle or "
                          "LAPACE_TRUST_PICKLE=1 silences this warning)" % path, stacklevel=2)
        model = joblib.load(path)
    else:
        raise ValueError("unknown model format %r: use .joblib/.pkl, .skops or a TorchScript .pt/.ts file" % path)
    if not callable(getattr(model, "predict_proba", None)):
        raise TypeError("the model in %r has no predict_proba method (got %s)" % (path, type(model).__name__))
    classes = getattr(model, "classes_", None)
    return model.predict_proba, None if classes is None else list(classes)


def read_table(path: str) -> pd.DataFrame:
    """A Parquet file or folder, or a CSV file (``.csv``, ``.csv.gz``), as one pandas DataFrame."""
    if not os.path.exists(path):
        raise FileNotFoundError("data file %r does not exist" % path)
    if path.lower().endswith((".csv", ".csv.gz")):
        return pd.read_csv(path)
    return pd.read_parquet(path)


# ---------------------------------------------------------------------------------------------- lapace fit
def fit_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lapace fit",
        description=(
            "Fit a LAPACE explainer for a trained classifier on a table of training rows and save it to a folder "
            "(weights as plain arrays and JSON: loading it never runs code). The explainer learns the classifier's "
            "decisions, so the target column is only dropped, never used. --out must be a new or empty folder or hold "
            "only a saved explainer (replaced); it may not be the current directory or hold or lie in an input. "
            + MODEL_FORMATS
        ),
        epilog="Example: lapace fit --data train.parquet --target income --model model.joblib --out explainer/\n" + EXIT_CODES,
    )
    parser.add_argument("--data", required=True, help="training rows: a Parquet file or folder, or a CSV file")
    parser.add_argument("--target", required=True, help="the label column of the data (dropped before fitting)")
    parser.add_argument("--model", required=True, help="the classifier file (see above)")
    parser.add_argument("--out", required=True, help="folder to save the explainer to")
    parser.add_argument("--drop", nargs="*", default=[], metavar="COLUMN", help="other columns that are not features (ids...)")
    parser.add_argument("--schema", default=None, help="a FeatureSchema as JSON (FeatureSchema.to_dict); default: inferred")
    parser.add_argument("--sample", type=int, default=None,
                        help="fit on a random sample of this many rows, 1 to %d (default: all)" % MAX_SAMPLE_ROWS)
    parser.add_argument("--epochs", type=int, default=None, help="maximum L-GMVAE epochs (default: chosen from data size)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _common_options(parser)
    return parser


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust", nargs="*", default=[], metavar="TYPE", help="extra types a .skops model may load")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="silence the warning that a joblib/pickle model runs code (also: LAPACE_TRUST_PICKLE=1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")


def fit_main(argv: Optional[List[str]] = None) -> int:
    args = fit_parser().parse_args(argv)
    check_output_folder(args.out, option="--out", what="lapace fit", owned=lambda _: {persistence.MODEL_FILE, persistence.META_FILE},
                        inputs={"--data": args.data, "--model": args.model, "--schema": args.schema})
    if args.sample is not None and not 1 <= args.sample <= MAX_SAMPLE_ROWS:
        raise InvalidParameterError("--sample must be 1 to %d rows, got %d" % (MAX_SAMPLE_ROWS, args.sample))
    schema = FeatureSchema.from_dict(read_json(args.schema, "the schema file")) if args.schema else None
    data = read_table(args.data)
    absent = [c for c in [args.target] + args.drop if c not in data.columns]
    if absent:
        raise InvalidParameterError("column(s) %s are not in %s; columns: %s" % (absent, args.data, list(data.columns)))
    X = data.drop(columns=[args.target] + args.drop)
    if X.empty:
        raise InvalidParameterError("the training data %s has no rows" % args.data)
    if args.sample is not None and args.sample < len(X):
        X = X.sample(n=args.sample, random_state=args.seed)
    schema = schema or FeatureSchema.infer(X)
    predict_proba, classes = load_model(args.model, schema.features, args.trust, args.trust_pickle)
    start = time.perf_counter()
    explainer = Lapace(schema=schema, random_state=args.seed, epochs=args.epochs, verbose=not args.quiet)
    explainer.fit(X, predict_proba, classes=classes)
    explainer.save(args.out)
    print("fitted on %d rows x %d features in %.1f s; centroid validity %.0f%%; saved to %s"
          % (len(X), len(schema.features), time.perf_counter() - start, 100 * explainer.centroid_validity_, args.out))
    return 0


# ---------------------------------------------------------------------------------------------- lapace explain
def explain_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lapace explain",
        description=(
            "Explain every row of a Parquet or CSV file on a Dask cluster and write, in the folder OUTPUT, the "
            "counterfactuals as Parquet part files, one per partition: OUTPUT/counterfactuals/part-*.parquet (query = "
            "the row's id, rank, the features, the path columns), the rows without a counterfactual with the reason (a "
            "validation message such as NaN or an unknown category, or why no path succeeded) in "
            "OUTPUT/failures/part-*.parquet, and the manifest OUTPUT/_lapace_run.json (each part's rows and SHA-256). "
            "Every input row is in exactly one of them. Rerunning the same command after a crash keeps the parts the "
            "manifest verifies and redoes the others; no row is duplicated. OUTPUT must be a new or empty folder or one "
            "an earlier run wrote; it may not be the current directory, the input, the explainer or the model, or "
            "hold or lie in one of them; one run at a time writes it. " + MODEL_FORMATS
        ),
        epilog=("Example: lapace explain --explainer explainer/ --model model.joblib --input rows.parquet "
                "--output results/ --workers 2\n" + EXIT_CODES),
    )
    parser.add_argument("--explainer", required=True, help="folder written by 'lapace fit' (or Lapace.save)")
    parser.add_argument("--model", required=True, help="the classifier file the explainer was fitted for (see above)")
    parser.add_argument("--input", required=True, help="rows to explain: a Parquet file or folder, or a CSV file")
    parser.add_argument("--output", required=True, help="folder for the results (see above)")
    parser.add_argument("--failures", default=None, help=argparse.SUPPRESS)  # gone: refused with the new layout's place
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="worker processes of an embedded Dask LocalCluster (default and maximum: one per CPU core)")
    where.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    parser.add_argument("--scheduler-timeout", type=float, default=SCHEDULER_TIMEOUT,
                        help="seconds to reach --scheduler (default: %(default)s)")
    parser.add_argument("--partition-rows", type=int, default=PARTITION_ROWS, help="rows per task (default: %(default)s)")
    parser.add_argument("--id-column", default=None,
                        help="column holding each row's unique, non-null id, not a feature (default: the row's 0-based position)")
    parser.add_argument("--strategy", default="first", choices=list(STRATEGIES),
                        help="first: closest valid point on each latent path; last: the decoded class centroid; robust: "
                             "the first point with target probability at least --min-probability")
    parser.add_argument("--min-probability", type=float, default=None,
                        help="strategy robust: target-class probability each counterfactual reaches (default: 0.6)")
    parser.add_argument("--diverse", action="store_true",
                        help="options that differ in which features they change (several points per path, reverted)")
    parser.add_argument("--max-lof", type=float, default=None, metavar="LOF",
                        help="with reverting (--diverse, or revert saved with the explainer): give a change back only while "
                             "the plan's local outlier factor among the target class's training rows stays at most LOF "
                             "(about 1: typical; default: the explainer's, no check)")
    parser.add_argument("--constraints", default=None,
                        help="'schema' (the schema's immutable and monotone features) or a JSON file of constraints "
                             "(keys immutable, increase, decrease, ranges, categories)")
    parser.add_argument("--n-counterfactuals", type=int, default=None, help="counterfactuals per row (default: all paths)")
    parser.add_argument("--target-class", type=int, default=None, help="class index to reach (default: the other class)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete what an earlier run wrote in OUTPUT (its parts and manifest, nothing else) instead of resuming")
    _common_options(parser)
    return parser


def _constraints(value: Optional[str]) -> Any:
    if value is None or value == "schema":
        return value
    return read_json(value, "the constraints file")


def run_explain(args: argparse.Namespace) -> Tuple[Any, List[float]]:
    """Run ``lapace explain``; returns the ``BatchExplanation`` and the peak memory (MB) of each worker process."""
    from .. import distributed

    check_call(dict(min_probability=args.min_probability, max_lof=args.max_lof))
    check_output(args.output, inputs={"--input": args.input, "--explainer": args.explainer, "--model": args.model,
                                      "--constraints": None if args.constraints in (None, "schema") else args.constraints},
                 option="--output")
    if args.failures is not None:
        raise InvalidParameterError("--failures is gone: the failures are written inside --output, to %s, and removed with "
                                    "the run" % failures_path(args.output))
    if not os.path.exists(args.input):
        raise FileNotFoundError("--input %r does not exist" % args.input)
    constraints = _constraints(args.constraints)
    predict_proba, _ = load_model(args.model, _saved_features(args.explainer), args.trust, args.trust_pickle)
    explainer = Lapace.load(args.explainer, predict_proba)
    settings = dict(strategy=args.strategy, constraints=constraints, min_probability=args.min_probability,
                    diverse=args.diverse or None, max_lof=args.max_lof,
                    n_counterfactuals=args.n_counterfactuals, target_class=args.target_class)
    run_tag = "model sha256 " + distributed.file_digest(args.model)
    with distributed.connect(workers=args.workers, scheduler=args.scheduler, timeout=args.scheduler_timeout) as client:
        result = distributed.explain(
            explainer, args.input, client=client, partition_rows=args.partition_rows, id_column=args.id_column,
            output=args.output, overwrite=args.overwrite, run_tag=run_tag, progress=not args.quiet, **settings,
        )
        peaks = sorted(client.run(peak_rss_mb).values())
    return result, peaks


def _saved_features(folder: str) -> List[str]:
    """The feature order of a saved explainer (loaded without a classifier)."""
    return list(Lapace.load(folder).schema_.features)


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB: ``VmHWM`` on Linux, where ``ru_maxrss`` would also count the
    memory of the parent a spawned process was forked from; ``ru_maxrss`` elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def explain_main(argv: Optional[List[str]] = None) -> int:
    args = explain_parser().parse_args(argv)
    result, peaks = run_explain(args)
    if result.n_rows == 0:
        print("lapace explain: the input has no rows; wrote an empty output", file=sys.stderr)
    run_rows = result.n_rows if result.n_resumed == 0 else float("nan")
    print("%d rows: %d explained, %d failed (every row accounted for); %d partitions, %d resumed from an earlier run"
          % (result.n_rows, result.n_explained, result.n_failed, result.n_partitions, result.n_resumed))
    print("explain: %.1f s%s; peak memory per worker process: %s MB"
          % (result.seconds, "" if result.n_resumed else ", %.0f rows/s" % (run_rows / max(result.seconds, 1e-9)),
             ", ".join("%.0f" % p for p in peaks)))
    print("counterfactuals: %s\nfailures:        %s" % (counterfactuals_path(args.output), failures_path(args.output)))
    return 0

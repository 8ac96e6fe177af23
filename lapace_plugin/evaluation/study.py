"""The comparative study (``lapace study``): LAPACE against NNCE, DRCE, RobXCE and DiCE on the paper's metrics.

For every dataset the harness trains one classifier (:func:`lapace_plugin.evaluation.models.make_classifier`) on a
seeded split (:func:`lapace_plugin.evaluation.models.split`), picks the queries (test rows predicted as the
unfavourable class; for multiclass wine, every test row with target ``(prediction + 1) % 3``), retrains
the model family ``retrained`` times for model-change robustness (:func:`lapace_plugin.evaluation.metrics.retrain_models`)
and fits ONE :class:`~lapace_plugin.Lapace`, shared by every LAPACE method: the paper's ``lapace-first``
(latent path, every grid point classified), ``lapace-last`` and ``lapace-constrained`` (the paper's path with
the schema's constraints), and this package's ``lapace-first-corrected`` (reconstruction-corrected path),
``lapace-first-sparse`` (corrected, sparsity-aware snapping), ``lapace-first-fast`` (corrected, fast
search along the path) and ``lapace-first-revert`` (corrected, unneeded changes reverted). Each method then explains the queries, and every metric of
:data:`lapace_plugin.evaluation.metrics.METRICS` is computed on its output. NNCE, DRCE and RobXCE are this package's
implementations (:mod:`lapace_plugin.evaluation.baselines`); the DiCE methods run through the real ``dice-ml``.

From Python: ``run_study(StudyConfig(datasets=["adult"], methods=["nnce", "lapace-first"], out="study"))``; the
``lapace study`` command only builds the :class:`StudyConfig`.

A method that exceeds ``--time-budget`` is stopped between queries (or between batches of
``--batch-size`` queries for the batched methods) and reported with status ``timeout: ...`` and the
metrics of the queries it finished; a method that raises is reported ``failed: reason``; DiCE methods
without ``dice-ml`` are reported ``not installed``. No method is ever dropped from the table.

Outputs in ``--out``: ``results.csv`` (one row per dataset x method), ``results.md`` (rounded tables and
a check of the paper's claims), ``datasets.csv`` (per-dataset facts: accuracy, fit time, centroid
validity, and the queries' own median LOF among their target class's training rows), ``figures/<dataset>.png`` (one bar chart per metric) and ``counterfactuals/<dataset>/<method>.csv``.

Run ``lapace study --help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .. import datasets
from . import metrics
from .baselines import BASELINES
from .models import CLASSIFIERS, make_classifier, split

DEFAULT_DATASETS = ("adult", "compas", "german", "wine", "credit")
DICE_METHODS = ("dice-random", "dice-genetic", "dice-kdtree")
LAPACE_METHODS = {  # Lapace.explain settings; the paper's behaviour is spelled out so defaults never change it
    "lapace-first": dict(strategy="first", path="latent", search="grid", revert=False),
    "lapace-first-corrected": dict(strategy="first", path="corrected", search="grid", revert=False),
    "lapace-first-sparse": dict(strategy="first", path="sparse", search="grid", revert=False),
    "lapace-first-fast": dict(strategy="first", path="corrected", search="fast", revert=False),
    "lapace-first-revert": dict(strategy="first", path="corrected", search="grid", revert=True),
    "lapace-last": dict(strategy="last"),
    "lapace-constrained": dict(strategy="first", path="latent", search="grid", revert=False, constraints="schema"),
}
METHODS = ("nnce", "drce", "robxce") + DICE_METHODS + tuple(LAPACE_METHODS)
SINGLE_CF_METHODS = ("nnce", "robxce")
BATCHED_METHODS = ("nnce", "drce") + tuple(LAPACE_METHODS)
METRIC_COLUMNS = tuple(metrics.METRICS)
COLUMNS = ("dataset", "method", "status", "n_queries", "n_counterfactuals") + METRIC_COLUMNS + ("fit_time", "centroid_validity")
INPUT_SIGMA = 0.1
QUERY_ROWS = "(queries)"  # lof_rows' key for the queries' own LOF


@dataclass
class StudyConfig:
    """Everything a study run depends on; ``lapace study`` builds one from its command line (same names).

    See ``lapace study --help`` (or :func:`build_parser`) for what each field means.
    """

    datasets: Sequence[str] = DEFAULT_DATASETS
    methods: Sequence[str] = METHODS
    classifier: str = "rf"
    n_queries: int = 100
    retrained: int = 10
    seed: int = 0
    time_budget: float = 600.0
    out: str = "lapace-study"
    max_train_rows: Optional[int] = None
    k: int = 3
    components_per_class: Optional[int] = None
    epochs: Optional[int] = None
    batch_size: int = 25
    robx_perturbations: int = 200
    robx_max_search: int = 1000
    torch_threads: int = 1
    progress: bool = True
    command: str = "lapace study"

    def __post_init__(self) -> None:
        for name in ("n_queries", "retrained", "k", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError("%s must be at least 1, got %r" % (name, getattr(self, name)))
        for name, known in (("datasets", datasets.names()), ("methods", METHODS)):
            unknown = [v for v in getattr(self, name) if v not in known]
            if unknown:
                raise ValueError("unknown %s %s; choose from %s" % (name, unknown, ", ".join(known)))
        if self.classifier not in CLASSIFIERS:
            raise ValueError("classifier must be one of %s, got %r" % (CLASSIFIERS, self.classifier))


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except unset (None / False) ones and those the help text already states."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "(default" in text:
            return text
        if isinstance(action.default, (list, tuple)):
            return text + " (default: %s)" % " ".join(str(v) for v in action.default)
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The ``lapace study`` argument parser (defaults: :class:`StudyConfig`'s)."""
    d = StudyConfig()
    p = argparse.ArgumentParser(
        prog="lapace study",
        description=(
            "Comparative study of LAPACE (the paper's lapace-first, lapace-last and lapace-constrained, and this "
            "package's lapace-first-corrected, -sparse, -fast and -revert) against NNCE, DRCE, RobXCE "
            "(this package's implementations) and DiCE's random, genetic and kdtree methods (real dice-ml), on the "
            "bundled datasets and the paper's metrics. Writes results.csv, results.md, datasets.csv and figures/."
        ),
        epilog=(
            "Example: lapace study --datasets adult compas --n-queries 100 --out lapace-study. "
            "DiCE methods need dice-ml (pip install \"lapace-plugin[dice]\"); without it they appear as 'not installed'."
        ),
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "--datasets",
        nargs="+",
        default=list(d.datasets),
        choices=datasets.names(),
        metavar="NAME",
        help="bundled datasets (%s); 'credit' is the Taiwan credit-default stand-in for HELOC" % ", ".join(datasets.names()),
    )
    p.add_argument(
        "--methods",
        nargs="+",
        default=list(d.methods),
        choices=METHODS,
        metavar="METHOD",
        help="methods to compare: %s" % ", ".join(METHODS),
    )
    p.add_argument("--classifier", choices=CLASSIFIERS, default=d.classifier, help="model family explained and retrained")
    p.add_argument("--n-queries", type=int, default=d.n_queries, help="queries per dataset (fewer when the test split has fewer)")
    p.add_argument("--retrained", type=int, default=d.retrained, help="retrained models for model-change robustness")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the split, the models, LAPACE and the perturbations")
    p.add_argument(
        "--time-budget",
        type=float,
        default=d.time_budget,
        help="seconds per method per dataset for generating the counterfactuals (the input-robustness "
        "regeneration gets the same budget again); checked between queries / batches",
    )
    p.add_argument("--out", default=d.out, help="output directory")
    p.add_argument("--max-train-rows", type=int, default=d.max_train_rows, help="subsample the training split to this many rows")
    p.add_argument(
        "--k",
        type=int,
        default=d.k,
        help="counterfactuals per query for the diverse methods (LAPACE, DRCE, DiCE); NNCE and RobXCE return 1",
    )
    p.add_argument(
        "--components-per-class",
        type=int,
        default=d.components_per_class,
        help="LAPACE components per class m (default: k, so LAPACE returns one counterfactual per target "
        "component as in the paper)",
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help="LAPACE training epochs (default: chosen by Lapace)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="queries per explain call for the batched methods "
        "(%s); the others go one query at a time" % ", ".join(BATCHED_METHODS),
    )
    p.add_argument(
        "--robx-perturbations",
        type=int,
        default=d.robx_perturbations,
        help="RobXCE perturbations per stability estimate (the published setting is 1000)",
    )
    p.add_argument(
        "--robx-max-search",
        type=int,
        default=d.robx_max_search,
        help="RobXCE: nearest valid training rows searched for stable anchors per query (0 = all)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=d.torch_threads,
        help="torch CPU threads for LAPACE (1 avoids oversubscription on a busy machine; 0 = torch's default)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


# ----------------------------------------------------------------------------------------------
# Per-dataset setup
# ----------------------------------------------------------------------------------------------


class Setup:
    """Everything one dataset's methods share: split, model, queries, targets and retrained models."""

    def __init__(self, name: str, config: StudyConfig) -> None:
        self.name, self.config = name, config
        args = config
        self.ds = datasets.load(name)
        self.schema = self.ds.schema
        X_train, X_test, y_train, y_test = split(self.ds, test_size=0.2, random_state=args.seed)
        if args.max_train_rows is not None and args.max_train_rows < len(X_train):
            X_train, y_train = X_train.iloc[: args.max_train_rows], y_train.iloc[: args.max_train_rows]
        self.X_train, self.y_train = X_train, y_train
        start = time.perf_counter()
        self.model = make_classifier(self.schema, args.classifier, random_state=args.seed, n_jobs=1).fit(X_train, y_train)
        self.model_fit_time = time.perf_counter() - start
        self.classes = list(self.model.classes_)
        self.proba = self.model.predict_proba
        self.train_pred = metrics.predicted_class(self.proba, X_train)
        self.accuracy = float(np.mean(self.model.predict(X_test) == y_test.to_numpy()))
        pred = metrics.predicted_class(self.proba, X_test)
        if len(self.classes) == 2:
            good = self.classes.index(self.ds.favourable) if self.ds.favourable in self.classes else 1
            pool = X_test[pred != good]
            targets = np.full(len(pool), good)
        else:
            pool, targets = X_test, (pred + 1) % len(self.classes)
        self.n_candidates = len(pool)
        self.queries = pool.iloc[: args.n_queries]
        self.targets = pd.Series(targets[: len(self.queries)].astype(int), index=self.queries.index, name="target")
        start = time.perf_counter()
        kind, n_jobs = args.classifier, 1
        self.retrained = metrics.retrain_models(
            lambda s: make_classifier(self.schema, kind, random_state=s, n_jobs=n_jobs),
            X_train,
            y_train,
            n=args.retrained,
            random_state=args.seed,
        )
        self.retrain_time = time.perf_counter() - start
        self._lapace: Any = None

    def lapace(self) -> Any:
        """The one ``Lapace`` shared by the three LAPACE methods (fitted on first use)."""
        if self._lapace is None:
            from ..explainer import Lapace

            m = self.config.components_per_class or self.config.k
            ex = Lapace(
                schema=self.schema, components_per_class=m, epochs=self.config.epochs, random_state=self.config.seed, verbose=False
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid centroids are reported in datasets.csv
                ex.fit(self.X_train, predict_proba=self.proba, classes=self.classes)
            self._lapace = ex
        return self._lapace

    def info(self) -> Dict[str, Any]:
        """Per-dataset facts for ``datasets.csv``."""
        row = {
            "dataset": self.name,
            "n_train": len(self.X_train),
            "n_features": len(self.schema.features),
            "classifier": self.config.classifier,
            "test_accuracy": self.accuracy,
            "model_fit_time": self.model_fit_time,
            "retrain_time": self.retrain_time,
            "candidate_queries": self.n_candidates,
            "n_queries": len(self.queries),
        }
        ex = self._lapace
        if ex is not None:
            row.update(
                {
                    "lapace_fit_time": ex.fit_time_,
                    "components_per_class": ex.components_per_class,
                    "centroid_validity": ex.centroid_validity_,
                    "centroid_validity_initial": ex.centroid_validity_initial_,
                    "centroids_moved": len(ex.centroids_moved_),
                }
            )
        return row


# ----------------------------------------------------------------------------------------------
# Methods: setup() then explain(queries, targets) -> (counterfactuals with (query, rank) index, failures)
# ----------------------------------------------------------------------------------------------

Explained = Tuple[pd.DataFrame, Dict[Any, str]]


class NotInstalled(Exception):
    """A method whose optional dependency is missing."""


class Method:
    """A method of the study: ``setup`` (timed as its fit time) then ``explain`` batches of queries."""

    def __init__(self, name: str, setup: Setup) -> None:
        self.name, self.data = name, setup
        self.k = 1 if name in SINGLE_CF_METHODS else setup.config.k
        self.batched = name in BATCHED_METHODS

    def fit(self) -> float:
        """Prepare the method; returns its fit seconds."""
        raise NotImplementedError

    def explain(self, queries: pd.DataFrame, targets: np.ndarray) -> Explained:
        raise NotImplementedError


class BaselineMethod(Method):
    """NNCE, DRCE or RobXCE from :mod:`lapace_plugin.evaluation.baselines` (no constraints, as in their papers)."""

    def fit(self) -> float:
        args = self.data.config
        kwargs: Dict[str, Any] = {}
        if self.name == "robxce":
            kwargs = {
                "n_perturbations": args.robx_perturbations,
                "max_search": args.robx_max_search or None,
                "random_state": args.seed,
            }
        start = time.perf_counter()
        self.method = BASELINES[self.name](schema=self.data.schema, **kwargs).fit(self.data.X_train, self.data.proba)
        return time.perf_counter() - start

    def explain(self, queries: pd.DataFrame, targets: np.ndarray) -> Explained:
        cfs = self.method.explain(queries, target_class=targets, n_counterfactuals=self.k)
        return cfs, dict(self.method.failures)


class LapaceMethod(Method):
    """A ``LAPACE_METHODS`` entry on the dataset's shared ``Lapace``."""

    def fit(self) -> float:
        self.explainer = self.data.lapace()
        self.settings = LAPACE_METHODS[self.name]
        return float(self.explainer.fit_time_)

    def explain(self, queries: pd.DataFrame, targets: np.ndarray) -> Explained:
        res = self.explainer.explain(queries, target_class=targets, n_counterfactuals=self.k, **self.settings)
        return res.counterfactuals, dict(res.failures)


class DiceMethod(Method):
    """DiCE's random, genetic or kdtree method through the real ``dice-ml``, with DiCE's default settings."""

    def fit(self) -> float:
        try:
            import dice_ml
        except ImportError:
            raise NotInstalled('dice-ml is not installed (pip install "lapace-plugin[dice]")')
        data = self.data
        start = time.perf_counter()
        frame = data.X_train.copy()
        frame[data.ds.target] = data.y_train.to_numpy()
        with _quiet():
            d = dice_ml.Data(dataframe=frame, continuous_features=list(data.schema.continuous), outcome_name=data.ds.target)
            m = dice_ml.Model(model=data.model, backend="sklearn")
            self.dice = dice_ml.Dice(d, m, method=self.name[len("dice-") :])
        return time.perf_counter() - start

    def explain(self, queries: pd.DataFrame, targets: np.ndarray) -> Explained:
        pieces, failures = [], {}
        extra = {"random_seed": self.data.config.seed} if self.name == "dice-random" else {}
        for label, target in zip(queries.index, targets):
            np.random.seed(self.data.config.seed)
            with _quiet():
                try:
                    res = self.dice.generate_counterfactuals(
                        queries.loc[[label]], total_CFs=self.k, desired_class=int(target), **extra
                    )
                except Exception as exc:  # DiCE raises when a query gets no counterfactual
                    if "No counterfactuals found" not in str(exc):
                        raise
                    failures[label] = "DiCE: %s" % exc
                    continue
            ex = res.cf_examples_list[0]
            df = ex.final_cfs_df_sparse if ex.final_cfs_df_sparse is not None else ex.final_cfs_df
            if df is None or len(df) == 0:
                failures[label] = "DiCE returned no counterfactual"
                continue
            df = self._raw(df).iloc[: self.k]
            df.index = pd.MultiIndex.from_arrays([[label] * len(df), range(len(df))], names=["query", "rank"])
            pieces.append(df)
        features = list(self.data.schema.features)
        return (pd.concat(pieces) if pieces else _empty(queries, features)), failures

    def _raw(self, df: pd.DataFrame) -> pd.DataFrame:
        """DiCE's output in the schema's raw format (categories as strings, integer columns as integers)."""
        schema, out = self.data.schema, pd.DataFrame(index=range(len(df)))
        for f in schema.features:
            values = df[f].to_numpy()
            if f in schema.categorical:
                out[f] = pd.Series(values).astype(str).to_numpy()
            else:
                num = pd.to_numeric(pd.Series(values)).to_numpy(dtype=float)
                out[f] = np.round(num).astype(self.data.X_train[f].dtype) if f in schema.integer else num
        return out


def make_method(name: str, setup: Setup) -> Method:
    """The :class:`Method` for a study method name."""
    if name in LAPACE_METHODS:
        return LapaceMethod(name, setup)
    if name in DICE_METHODS:
        return DiceMethod(name, setup)
    return BaselineMethod(name, setup)


# ----------------------------------------------------------------------------------------------
# Running one method under a time budget
# ----------------------------------------------------------------------------------------------


class Run:
    """Counterfactuals of one pass over the queries, stopped between batches once over budget."""

    def __init__(
        self, method: Method, queries: pd.DataFrame, targets: pd.Series, budget: float, progress: bool, desc: str
    ) -> None:
        step = method.data.config.batch_size if method.batched else 1
        pieces: List[pd.DataFrame] = []
        self.failures: Dict[Any, str] = {}
        self.seconds, self.n_done, self.timed_out = 0.0, 0, False
        bar = _bar(total=len(queries), desc=desc, enabled=progress)
        for start in range(0, len(queries), max(1, step)):
            if self.seconds > budget:
                self.timed_out = True
                break
            part = queries.iloc[start : start + step]
            t0 = time.perf_counter()
            cfs, failures = method.explain(part, targets.loc[part.index].to_numpy())
            self.seconds += time.perf_counter() - t0
            pieces.append(cfs)
            self.failures.update(failures)
            self.n_done += len(part)
            bar.update(len(part))
        bar.close()
        features = list(method.data.schema.features)
        self.queries = queries.iloc[: self.n_done]
        self.counterfactuals = pd.concat(pieces) if pieces else _empty(queries, features)


def _empty(queries: pd.DataFrame, features: List[str]) -> pd.DataFrame:
    out = queries.iloc[:0][features].copy()
    out.index = pd.MultiIndex.from_arrays([[], []], names=["query", "rank"])
    return out


def evaluate(method: Method, run: Run, progress: bool) -> Dict[str, Any]:
    """Every registered metric of one method except LOF (computed for all methods of a dataset at once)."""
    data, cfs, facts = method.data, run.counterfactuals, run.queries
    row: Dict[str, Any] = {
        "n_queries": run.n_done,
        "n_counterfactuals": len(cfs),
        "runtime_per_query": metrics.runtime_per_query(run.seconds, run.n_done) if run.n_done else np.nan,
    }

    def regenerate(perturbed: pd.DataFrame) -> pd.DataFrame:
        # the original query's target is kept for its perturbed copy
        again = Run(method, perturbed, data.targets, data.config.time_budget, progress, "  %s (perturbed)" % method.name)
        return again.counterfactuals

    evaluation = metrics.Evaluation(
        schema=data.schema, factuals=facts, counterfactuals=cfs, predict_proba=data.proba,
        targets=data.targets.loc[facts.index], X_train=data.X_train, train_pred=data.train_pred,
        retrained=data.retrained, regenerate=regenerate, seed=data.config.seed, sigma=INPUT_SIGMA,
    )
    measured = ("coverage", "constraint_violations") if len(cfs) == 0 else list(metrics.METRICS)
    for name in measured:
        metric = metrics.METRICS[name]
        if metric.compute is not None:
            row[name] = metric.compute(evaluation)
    return row


def lof_rows(setup: Setup, runs: Dict[str, Run]) -> Dict[str, Tuple[float, float]]:
    """``(median, mean)`` LOF per method, with one LOF model per target class shared by all methods.

    The queries themselves are scored too, under ``QUERY_ROWS``: how plausible the unchanged input already is
    among the training rows of its target class, the level a counterfactual that changes little stays near.
    """
    queries = setup.queries.reset_index(drop=True).assign(query=setup.queries.index, rank=0, _method=QUERY_ROWS)
    frames = [queries]
    for name, run in runs.items():
        if len(run.counterfactuals):
            frames.append(run.counterfactuals.reset_index().assign(_method=name))
    allcfs = pd.concat(frames, ignore_index=True)
    scores = metrics.lof_scores(setup.schema, None, allcfs, setup.X_train, setup.proba, setup.targets, train_pred=setup.train_pred)
    out = {}
    for name, part in pd.Series(scores).groupby(allcfs["_method"].to_numpy()):
        out[name] = (float(np.median(part)), float(np.mean(part)))
    return out


# ----------------------------------------------------------------------------------------------
# The study
# ----------------------------------------------------------------------------------------------


def run_dataset(name: str, config: StudyConfig) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """Rows of ``results.csv`` for one dataset, and its ``datasets.csv`` row."""
    args, progress = config, config.progress
    setup = Setup(name, config)
    rows: List[Dict[str, Any]] = []
    runs: Dict[str, Run] = {}
    cf_dir = os.path.join(args.out, "counterfactuals", name)
    os.makedirs(cf_dir, exist_ok=True)
    bar = _bar(total=len(args.methods), desc=name, enabled=progress, leave=True)
    for method_name in args.methods:
        bar.set_postfix(method=method_name)
        row: Dict[str, Any] = {"dataset": name, "method": method_name, "status": "ok", "n_queries": 0, "n_counterfactuals": 0}
        try:
            method = make_method(method_name, setup)
            row["fit_time"] = method.fit()
            run = Run(method, setup.queries, setup.targets, args.time_budget, progress, "  " + method_name)
            if run.timed_out:
                row["status"] = "timeout: stopped after %d/%d queries (budget %gs)" % (
                    run.n_done,
                    len(setup.queries),
                    args.time_budget,
                )
            row.update(evaluate(method, run, progress))
            runs[method_name] = run
            run.counterfactuals.reset_index().to_csv(os.path.join(cf_dir, method_name + ".csv"), index=False)
        except NotInstalled as exc:
            row["status"] = "not installed: %s" % exc
        except Exception as exc:  # reported in the table, never dropped
            row["status"] = "failed: %s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        if method_name in LAPACE_METHODS and setup._lapace is not None:
            row["centroid_validity"] = setup._lapace.centroid_validity_
        rows.append(row)
        bar.update(1)
    bar.close()
    try:
        lof = lof_rows(setup, runs)
    except Exception as exc:
        lof = {}
        warnings.warn("LOF failed on %s: %s" % (name, exc))
    for row in rows:
        if row["method"] in lof:
            row["lof_median"], row["lof_mean"] = lof[row["method"]]
    info = setup.info()
    info["query_lof_median"] = lof.get(QUERY_ROWS, (np.nan,))[0]
    return rows, info


def run_study(config: StudyConfig) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Run every dataset and method of ``config``; write the outputs to ``config.out``; return (results, datasets)."""
    from .report import plot_dataset, write_markdown

    os.makedirs(config.out, exist_ok=True)
    if config.torch_threads:
        import torch

        torch.set_num_threads(int(config.torch_threads))
    rows: List[Dict[str, Any]] = []
    infos: List[Dict[str, Any]] = []
    start = time.perf_counter()
    results, info_frame = pd.DataFrame(columns=list(COLUMNS)), pd.DataFrame()
    for name in _bar(config.datasets, desc="datasets", enabled=config.progress and len(config.datasets) > 1, leave=True):
        ds_rows, info = run_dataset(name, config)
        rows.extend(ds_rows)
        infos.append(info)
        # every output is rewritten after each dataset, so an interrupted run keeps the datasets it finished
        results = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
        info_frame = pd.DataFrame(infos)
        results.to_csv(os.path.join(config.out, "results.csv"), index=False)
        info_frame.to_csv(os.path.join(config.out, "datasets.csv"), index=False)
        plot_dataset(results[results["dataset"] == name], os.path.join(config.out, "figures", "%s.png" % name))
        write_markdown(results, info_frame, config, time.perf_counter() - start, os.path.join(config.out, "results.md"))
    return results, info_frame


def config_from_args(args: argparse.Namespace, command: str) -> StudyConfig:
    """The :class:`StudyConfig` of parsed ``lapace study`` arguments."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(StudyConfig) if hasattr(args, f.name)}
    return StudyConfig(progress=not args.no_progress, command=command, **values)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``lapace study``; returns 0."""
    args = build_parser().parse_args(None if argv is None else list(argv))
    try:
        config = config_from_args(args, "lapace study " + " ".join(sys.argv[1:] if argv is None else list(argv)))
    except ValueError as exc:
        raise SystemExit("lapace study: %s" % exc)
    start = time.perf_counter()
    results, _ = run_study(config)
    print(
        results[["dataset", "method", "status", "validity", "proximity_l1", "input_robustness", "model_robustness", "lof_median", "runtime_per_query"]]
        .round(3)
        .to_string(index=False)
    )
    print("wrote %s (results.csv, results.md, datasets.csv, figures/) in %.0f s" % (config.out, time.perf_counter() - start))
    return 0


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def _quiet() -> contextlib.ExitStack:
    """Silence DiCE's prints, progress bars and warnings (their cost stays in the timing)."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


class _NoBar:
    def __init__(self, iterable: Any = None) -> None:
        self.iterable = iterable

    def __iter__(self) -> Any:
        return iter(self.iterable)

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(iterable: Any = None, total: Optional[int] = None, desc: str = "", enabled: bool = True, leave: bool = False) -> Any:
    """A tqdm progress bar on stderr, or a silent stand-in."""
    if not enabled:
        return _NoBar(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=leave, file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

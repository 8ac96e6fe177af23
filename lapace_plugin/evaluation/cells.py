"""One cell of ``lapace study``: a dataset and a seed (:class:`Setup`), and one method run on it (:func:`run_method`).

The protocol (SPEC section 4):

- the seed fixes the train/test split, the classifier, the retrained models, the LAPACE fit, RobXCE's noise, DiCE's
  and RoCELib's random draws and the input perturbations;
- every range, scaler and neighbour model is fitted on the **training rows only**: the metrics, the baselines and
  LAPACE use ``dataset.schema.with_data(X_train)``, LOF and yNN look at training rows;
- queries: test rows predicted as the unfavourable class (binary), or every test row with target
  ``(prediction + 1) % L`` (multiclass wine);
- input robustness compares each query's counterfactuals with those of its perturbed copy over the queries explained
  in both runs; the count is reported (``n_both_runs``) and the perturbed queries are the same for every
  method.

Everything a cell computes is returned as plain frames (:class:`MethodResult`), so cells can run anywhere (in
process or as Dask tasks) and the caller writes the artefacts.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .. import datasets
from . import metrics
from .methods import (
    DERIVED,
    LAPACE_METHODS,
    META_COLUMNS,
    SLOW_METHODS,
    Explained,
    NotApplicable,
    NotInstalled,
    empty_counterfactuals,
    make_method,
)
from .models import make_classifier, split

INPUT_SIGMA = 0.1


class Setup:
    """Everything one dataset and seed share: split, model, queries, targets and retrained models.

    Parameters
    ----------
    name
        Bundled dataset name.
    seed
        Seed of this cell (split, classifier, retrained models, LAPACE, perturbations).
    config
        The study's :class:`~lapace_plugin.evaluation.study.StudyConfig`.
    """

    def __init__(self, name: str, seed: int, config: Any) -> None:
        self.name, self.seed, self.config = name, int(seed), config
        ds = datasets.load(name)
        self.target_name, self.favourable = ds.target, ds.favourable
        X_train, X_test, y_train, y_test = split(ds, test_size=0.2, random_state=self.seed)
        if config.max_train_rows is not None and config.max_train_rows < len(X_train):
            X_train, y_train = X_train.iloc[: config.max_train_rows], y_train.iloc[: config.max_train_rows]
        self.X_train, self.y_train, self.X_test, self.y_test = X_train, y_train, X_test, y_test
        self.schema = ds.schema.with_data(X_train)
        start = time.perf_counter()
        self.model = make_classifier(self.schema, config.classifier, random_state=self.seed, n_jobs=1).fit(X_train, y_train)
        self.model_fit_time = time.perf_counter() - start
        self.classes = list(self.model.classes_)
        self.proba = self.model.predict_proba
        self.train_pred = metrics.predicted_class(self.proba, X_train)
        self.test_pred = metrics.predicted_class(self.proba, X_test)
        self.accuracy = float(np.mean(self.model.predict(X_test) == y_test.to_numpy()))
        if len(self.classes) == 2:
            good = self.classes.index(self.favourable) if self.favourable in self.classes else 1
            pool = X_test[self.test_pred != good]
            targets = np.full(len(pool), good)
        else:
            pool, targets = X_test, (self.test_pred + 1) % len(self.classes)
        self.n_candidates = len(pool)
        self.queries = pool.iloc[: config.n_queries]
        self.targets = pd.Series(targets[: len(self.queries)].astype(int), index=self.queries.index, name="target")
        self.perturbed = metrics.perturb_factuals(self.schema, self.queries, sigma=INPUT_SIGMA, random_state=self.seed)
        start = time.perf_counter()
        kind = config.classifier
        self.retrained = metrics.retrain_models(
            lambda s: make_classifier(self.schema, kind, random_state=s, n_jobs=1), X_train, y_train, n=config.retrained,
            random_state=self.seed,
        )
        self.retrain_time = time.perf_counter() - start
        self.shared: Dict[Any, Any] = {}  # LOF models per target class, shared by every method of this cell

    def fit_lapace(self, decoder: str = "typed") -> Any:
        """A ``Lapace`` with ``decoder`` fitted on the training rows (invalid centroids are reported in ``datasets.csv``)."""
        from ..explainer import Lapace
        from .methods import FIT_SETTINGS

        m = self.config.components_per_class or self.config.k
        explainer = Lapace(
            schema=self.schema, components_per_class=m, epochs=self.config.epochs, random_state=self.seed, verbose=False,
            n_threads=self.config.torch_threads or None, **FIT_SETTINGS[decoder],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explainer.fit(self.X_train, predict_proba=self.proba, classes=self.classes)
        return explainer

    def facts(self, explainer: Any = None) -> Dict[str, Any]:
        """Per-dataset-and-seed facts for ``datasets.csv``.

        ``query_lof_median``: the unchanged queries' median LOF among their target class's training rows (the level a
        counterfactual that changes little stays near). ``heldout_support_violations``: the share of real held-out
        (test) rows that the classifier assigns to a query's target class and that hold a pair of values no training
        row holds, the reference for the counterfactuals' ``support_violations``; ``heldout_consistency_violations``:
        the share of them the typed LAPACE's learned consistency check rejects, the reference for
        ``consistency_violations``.
        """
        targets = np.unique(self.targets.to_numpy())
        heldout = self.X_test[np.isin(self.test_pred, targets)]
        lof = metrics.lof_scores(
            self.schema, self.queries, self.queries.assign(query=self.queries.index), self.X_train, self.proba, self.targets,
            train_pred=self.train_pred, cache=self.shared,
        )
        row: Dict[str, Any] = {
            "dataset": self.name,
            "seed": self.seed,
            "n_train": len(self.X_train),
            "n_test": len(self.X_test),
            "n_features": len(self.schema.features),
            "classifier": self.config.classifier,
            "test_accuracy": self.accuracy,
            "model_fit_time": self.model_fit_time,
            "retrain_time": self.retrain_time,
            "candidate_queries": self.n_candidates,
            "n_queries": len(self.queries),
            "query_lof_median": float(np.median(lof)) if len(lof) else np.nan,
            "heldout_support_violations": metrics.support_violations(self.schema, None, heldout, self.X_train),
            "heldout_rows": len(heldout),
            "heldout_consistency_violations": metrics.heldout_consistency_violations(
                self.schema, heldout, self.test_pred[np.isin(self.test_pred, targets)], explainer),
        }
        if explainer is not None:
            row.update(
                {
                    "lapace_fit_time": explainer.fit_time_,
                    "components_per_class": explainer.components_per_class,
                    "centroid_validity": explainer.centroid_validity_,
                    "centroid_validity_initial": explainer.centroid_validity_initial_,
                    "centroids_moved": len(explainer.centroids_moved_),
                }
            )
        return row


# ----------------------------------------------------------------------------------------------
# Running one method under a time budget
# ----------------------------------------------------------------------------------------------


class Run:
    """Counterfactuals of one pass over the queries, stopped between batches once over budget."""

    def __init__(self, method: Any, queries: pd.DataFrame, targets: pd.Series, budget: float) -> None:
        step = method.data.config.batch_size if method.batched else 1
        pieces: List[pd.DataFrame] = []
        metas: List[pd.DataFrame] = []
        self.failures: Dict[Any, str] = {}
        self.seconds, self.n_done, self.timed_out = 0.0, 0, False
        for start in range(0, len(queries), max(1, step)):
            if self.seconds > budget:
                self.timed_out = True
                break
            part = queries.iloc[start : start + step]
            t0 = time.perf_counter()
            out: Explained = method.explain(part, targets.loc[part.index].to_numpy())
            self.seconds += time.perf_counter() - t0
            pieces.append(out.counterfactuals)
            if out.meta is not None:
                metas.append(out.meta)
            self.failures.update(out.failures)
            self.n_done += len(part)
        self.queries = queries.iloc[: self.n_done]
        self.counterfactuals = pd.concat(pieces) if pieces else empty_counterfactuals(method.data.schema, queries)
        self.meta = pd.concat(metas) if metas else None

    def first_ranked(self) -> "Run":
        """The same pass keeping each query's first-ranked counterfactual (:data:`~.methods.DERIVED`)."""
        out = copy.copy(self)
        out.counterfactuals = self.counterfactuals[self.counterfactuals.index.get_level_values("rank") == 0]
        if self.meta is not None:
            out.meta = self.meta[self.meta.index.get_level_values("rank") == 0]
        return out


# ----------------------------------------------------------------------------------------------
# One method on one cell
# ----------------------------------------------------------------------------------------------


@dataclass
class MethodResult:
    """Everything one method produced on one dataset and seed (plain frames, written by the caller).

    ``row`` is the method's line of ``results.csv``; ``counterfactuals`` / ``perturbed_counterfactuals`` hold
    ``query, rank``, the features and (LAPACE) the path metadata; ``failures`` one line per failed query and run;
    ``per_counterfactual`` / ``per_query`` every metric's value per counterfactual / per query (each table cell is
    their mean, median or sum); ``retrained_predictions`` the class each retrained model gives each counterfactual.
    """

    row: Dict[str, Any]
    counterfactuals: pd.DataFrame = field(default_factory=pd.DataFrame)
    perturbed_counterfactuals: pd.DataFrame = field(default_factory=pd.DataFrame)
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    per_counterfactual: pd.DataFrame = field(default_factory=pd.DataFrame)
    per_query: pd.DataFrame = field(default_factory=pd.DataFrame)
    retrained_predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    runs: Optional[Tuple[Run, Run]] = None  # the two passes, kept for the methods DERIVED from this one (not written)


def run_method(setup: Setup, name: str, explainer: Any = None, judge: Any = None, parent: Optional[MethodResult] = None) -> MethodResult:
    """Fit and run one method on a cell, evaluate it with every registered metric; never raises for the method's
    own errors (they become the row's ``status``). ``judge``: the cell's typed ``Lapace``, whose learned consistency
    check judges every method's counterfactuals (passed explicitly, so a Dask worker gets it too). ``parent``: the
    result of the method ``name`` is :data:`~.methods.DERIVED` from, whose passes then give its counterfactuals."""
    config = setup.config
    row: Dict[str, Any] = {"dataset": setup.name, "seed": setup.seed, "method": name, "status": "ok", "n_queries": 0,
                           "n_counterfactuals": 0}
    np.random.seed(setup.seed)  # methods that draw from NumPy's global generator start from the same state anywhere
    try:
        method = make_method(name, setup, explainer)
        row["fit_time"] = method.fit()
        queries = setup.queries.iloc[: _query_cap(name, config)]
        if parent is not None and parent.runs is not None:
            run, again = (r.first_ranked() for r in parent.runs)
        else:
            run = Run(method, queries, setup.targets, config.time_budget)
            again = Run(method, setup.perturbed.loc[run.queries.index], setup.targets, config.time_budget)
        if run.timed_out:
            row["status"] = "timeout: stopped after %d/%d queries (budget %gs)" % (run.n_done, len(queries), config.time_budget)
    except NotInstalled as exc:
        row["status"] = "not installed: %s" % exc
        return MethodResult(row)
    except NotApplicable as exc:
        row["status"] = "not applicable: %s" % exc
        return MethodResult(row)
    except Exception as exc:  # reported in the table, never dropped
        row["status"] = "failed: %s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return MethodResult(row)
    if name in LAPACE_METHODS:
        row["centroid_validity"] = explainer.centroid_validity_
    regenerated = again.counterfactuals
    if again.n_done < run.n_done:  # the perturbed run ran out of budget: its missing queries count as not explained
        row["status"] += "; perturbed run stopped after %d/%d queries" % (again.n_done, run.n_done)
    evaluation = metrics.Evaluation(
        schema=setup.schema, factuals=run.queries, counterfactuals=run.counterfactuals, predict_proba=setup.proba,
        targets=setup.targets.loc[run.queries.index], X_train=setup.X_train, train_pred=setup.train_pred,
        retrained=setup.retrained, seed=setup.seed, sigma=INPUT_SIGMA, regenerated=regenerated, shared=setup.shared,
        judge=judge,
    )
    try:
        result = _evaluate(setup, name, row, run, again, e=evaluation)
        result.runs = (run, again) if name in DERIVED.values() else None
        return result
    except Exception as exc:  # a metric that cannot be computed on this output: reported, never dropped
        row["status"] = "failed in evaluation: %s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return MethodResult(row)


def _query_cap(name: str, config: Any) -> int:
    return config.slow_queries if name in SLOW_METHODS and config.slow_queries else config.n_queries


def _evaluate(setup: Setup, name: str, row: Dict[str, Any], run: Run, again: Run, *, e: metrics.Evaluation) -> MethodResult:
    """The method's row, per-counterfactual and per-query metric frames and its artefact frames."""
    cfs = run.counterfactuals
    ids = pd.Index(metrics.query_ids(cfs))
    per_cf = pd.DataFrame({"query": ids, "rank": cfs.index.get_level_values("rank") if len(cfs) else []})
    per_query = pd.DataFrame({"query": run.queries.index, "target": e.targets.to_numpy()})
    retrained = pd.DataFrame({"query": ids, "rank": per_cf["rank"].to_numpy()})
    row.update({"n_queries": run.n_done, "n_counterfactuals": len(cfs),
                "runtime_per_query": metrics.runtime_per_query(run.seconds, run.n_done) if run.n_done else np.nan})
    for metric_name, metric in metrics.METRICS.items():
        if metric.rows is None:
            continue
        if metric.level == metrics.COUNTERFACTUAL and len(cfs) == 0:
            row[metric_name] = 0.0 if metric.aggregate == "sum" else np.nan
            continue
        if metric_name == "lof_mean":  # the same scores as lof_median
            values = per_cf["lof"].to_numpy()
        else:
            values = np.asarray(metric.rows(e), dtype=float)
        row[metric_name] = metrics.AGGREGATES[metric.aggregate](values) if len(values) else np.nan
        column = "lof" if metric_name.startswith("lof_") else metric_name
        if metric.level == metrics.COUNTERFACTUAL:
            per_cf[column] = values
        else:
            per_query[column] = values
    row["n_covered"] = int(per_query["coverage"].sum()) if "coverage" in per_query else 0
    robust = per_query["input_robustness"] if "input_robustness" in per_query else pd.Series(dtype=float)
    row["n_both_runs"] = int(np.isfinite(robust.to_numpy(dtype=float)).sum())
    if len(cfs):
        predictions = metrics.retrained_predictions(setup.schema, cfs, setup.retrained)
        for r in range(predictions.shape[1]):
            retrained["model_%d" % r] = predictions[:, r]
    failures = pd.DataFrame(
        [{"query": q, "run": "original", "reason": reason} for q, reason in run.failures.items()]
        + [{"query": q, "run": "perturbed", "reason": reason} for q, reason in again.failures.items()],
        columns=["query", "run", "reason"],
    )
    return MethodResult(
        row=row,
        counterfactuals=_with_meta(cfs, run.meta),
        perturbed_counterfactuals=_with_meta(again.counterfactuals, again.meta),
        failures=failures,
        per_counterfactual=per_cf,
        per_query=per_query,
        retrained_predictions=retrained,
    )


def _with_meta(cfs: pd.DataFrame, meta: Optional[pd.DataFrame]) -> pd.DataFrame:
    """``query, rank``, the features and, when given, the path metadata of each counterfactual."""
    out = cfs.reset_index()
    if meta is not None and len(out):
        keep = [c for c in META_COLUMNS if c in meta.columns]
        out = out.merge(meta[keep].reset_index(), on=["query", "rank"], how="left")
    return out

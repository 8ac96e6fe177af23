"""The comparative study (``lapace study``): LAPACE against NNCE, DRCE, RobXCE, DiCE and RoCELib's methods.

For every dataset and seed (a *cell*, :class:`~lapace_plugin.evaluation.cells.Setup`) the harness splits the data,
trains one classifier (:func:`lapace_plugin.evaluation.models.make_classifier`), picks the queries (test rows
predicted as the unfavourable class; for multiclass wine every test row with target ``(prediction + 1) % 3``),
retrains the model family ``retrained`` times for model-change robustness and fits ONE
:class:`~lapace_plugin.Lapace` per decoder, shared by the LAPACE methods that use it: this package's ``lapace-first``
(type-aware decoder, corrected path, plausibility filter, distinct options), ``-neighbour``, ``-sparse``, ``-fast``,
``-revert``, ``lapace-last`` and ``lapace-constrained`` (the schema's constraints), and the paper's ``lapace-first-paper``
and ``lapace-last-paper`` (its decoder, latent paths, first valid points as they come). Each method explains the queries
and their perturbed copies, and every metric of :data:`lapace_plugin.evaluation.metrics.METRICS` is computed per
counterfactual and per query (:func:`lapace_plugin.evaluation.cells.run_method`). The same explainer then samples
synthetic rows for the generative evaluation (:mod:`lapace_plugin.evaluation.generative`).

Tables give the mean over seeds and a 95% t-interval (:mod:`lapace_plugin.evaluation.intervals`); the claims
table (:mod:`lapace_plugin.evaluation.claims`) says "holds" only when the intervals support it. Every artefact is
saved (:mod:`lapace_plugin.evaluation.artefacts`), so a reader can recompute every cell.

From Python::

    from lapace_plugin.evaluation.study import StudyConfig, run_study
    outputs = run_study(StudyConfig(datasets=["compas"], methods=["nnce", "lapace-first"], seeds=[0, 1, 2], out="study"))

``lapace study`` (:mod:`lapace_plugin.apps.study`) only builds the :class:`StudyConfig`. With ``workers`` or ``scheduler`` the cells run as Dask
tasks (one task per dataset and seed for the setup, one for the LAPACE fit, one per method), with the same results
as a serial run.

A method that exceeds ``time_budget`` is stopped between queries (or batches) and reported ``timeout: ...`` with the
metrics of the queries it finished; one that raises is ``failed: reason``; a missing optional framework is
``not installed``; a binary-only method on wine is ``not applicable``. No method is ever dropped from the table.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import pandas as pd

from .. import datasets
from ..files import check_output_folder, read_json
from . import artefacts, metrics
from .cells import MethodResult, Setup, run_method
from .claims import check_claims
from .front import front_table
from .generative import train_on_synthetic
from .intervals import summarise
from .methods import DEFAULT_METHODS, DERIVED, GENERATIVE_BASELINES, LAPACE_METHODS, METHODS, shared_vae
from .models import CLASSIFIERS
from .report import write_figures, write_html, write_markdown

DEFAULT_DATASETS = ("adult", "compas", "german", "wine", "credit")
METRIC_COLUMNS = tuple(metrics.METRICS)
COLUMNS = (
    ("dataset", "seed", "method", "status", "n_queries", "n_covered", "n_both_runs", "n_counterfactuals")
    + METRIC_COLUMNS + ("fit_time", "centroid_validity")
)


@dataclass
class StudyConfig:
    """Everything a study run depends on; ``lapace study`` builds one from its command line (same names).

    See ``lapace study --help`` (or :func:`lapace_plugin.apps.study.build_parser`) for what each field means. ``config.json`` in the output
    folder holds one; :meth:`from_json` reads it back to rerun the study.
    """

    datasets: Sequence[str] = DEFAULT_DATASETS
    methods: Sequence[str] = DEFAULT_METHODS
    classifier: str = "rf"
    n_queries: int = 100
    retrained: int = 10
    seeds: Sequence[int] = (0,)
    time_budget: float = 600.0
    out: str = "lapace-study"
    max_train_rows: Optional[int] = None
    k: int = 3
    components_per_class: Optional[int] = None
    epochs: Optional[int] = None
    batch_size: int = 25
    robx_perturbations: int = 200
    robx_max_search: int = 1000
    slow_queries: int = 25
    generative: bool = True
    torch_threads: int = 1
    workers: Optional[int] = None
    scheduler: Optional[str] = None
    progress: bool = True
    command: str = "lapace study"

    def __post_init__(self) -> None:
        self.datasets, self.methods = list(self.datasets), list(self.methods)
        self.seeds = [int(s) for s in self.seeds]
        for name in ("n_queries", "retrained", "k", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError("%s must be at least 1, got %r" % (name, getattr(self, name)))
        for name, known in (("datasets", datasets.names()), ("methods", METHODS)):
            unknown = [v for v in getattr(self, name) if v not in known]
            if unknown:
                raise ValueError("unknown %s %s; choose from %s" % (name, unknown, ", ".join(known)))
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds must be distinct and at least one, got %s" % (self.seeds,))
        if self.classifier not in CLASSIFIERS:
            raise ValueError("classifier must be one of %s, got %r" % (CLASSIFIERS, self.classifier))
        if self.workers is not None and self.scheduler is not None:
            raise ValueError("give either workers (a local Dask cluster) or scheduler (an existing one), not both")
        if self.slow_queries < 0:
            raise ValueError("slow_queries must be 0 (no cap) or positive, got %r" % (self.slow_queries,))

    @classmethod
    def from_json(cls, path: str, **overrides: Any) -> "StudyConfig":
        """The configuration saved in a study's ``config.json`` (or a plain JSON object of fields), with overrides."""
        payload = read_json(path, "the study configuration")
        if not isinstance(payload, dict):
            raise ValueError("%s must hold a JSON object of StudyConfig fields" % path)
        values = payload.get("config", payload)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError("%s has unknown StudyConfig field(s) %s" % (path, unknown))
        values.update(overrides)
        return cls(**values)


class StudyOutputs(NamedTuple):
    """What :func:`run_study` returns (and writes): the tables as frames."""

    results: pd.DataFrame  # one row per dataset x method x seed
    summary: pd.DataFrame  # one row per dataset x method: means and intervals over seeds
    claims: pd.DataFrame
    datasets: pd.DataFrame  # per dataset x seed
    generative: pd.DataFrame  # per dataset x seed


# ----------------------------------------------------------------------------------------------
# Cells: the same functions run in process or as Dask tasks
# ----------------------------------------------------------------------------------------------


def _threads(config: StudyConfig) -> None:
    if config.torch_threads:
        import torch

        torch.set_num_threads(int(config.torch_threads))


def prepare_cell(name: str, seed: int, config: StudyConfig) -> Setup:
    """The :class:`Setup` of one dataset and seed."""
    _threads(config)
    return Setup(name, seed, config)


def fit_explainer(setup: Setup, decoder: str = "typed") -> Any:
    """The ``Lapace`` with ``decoder`` that the cell's LAPACE methods using it share (the typed one also serves the
    generative evaluation and the facts)."""
    _threads(setup.config)
    return setup.fit_lapace(decoder)


def fit_vae(setup: Setup) -> Any:
    """The VAE that the cell's C-CHVAE and REVISE share (:func:`~lapace_plugin.evaluation.methods.shared_vae`)."""
    _threads(setup.config)
    return shared_vae(setup)


def method_cell(setup: Setup, name: str, explainer: Any = None, judge: Any = None, parent: Optional[MethodResult] = None) -> MethodResult:
    """One method on one cell (:func:`~lapace_plugin.evaluation.cells.run_method`); ``explainer``: what the method
    shares with others of the cell (:func:`_shared_of`); ``judge``: the cell's typed ``Lapace`` (its consistency check
    judges every method); ``parent``: the result of the method it is :data:`~.methods.DERIVED` from."""
    _threads(setup.config)
    return run_method(setup, name, explainer, judge, parent)


def _in_order(methods: Sequence[str]) -> List[str]:
    """``methods`` with those :data:`~.methods.DERIVED` from another listed one after the others."""
    derived = [m for m in methods if DERIVED.get(m) in methods]
    return [m for m in methods if m not in derived] + derived


def _shared(config: StudyConfig, setup: Any, fit: Any = fit_explainer, vae: Any = fit_vae) -> Dict[str, Any]:
    """What the cell's methods share, by what uses it: the ``Lapace`` of each decoder its LAPACE methods use and,
    with C-CHVAE or REVISE, their VAE (``fit`` and ``vae`` make them: called here, or submitted to Dask)."""
    shared = {d: fit(setup, d) for d in _decoders(config)}
    if set(GENERATIVE_BASELINES) & set(config.methods):
        shared["vae"] = vae(setup)
    return shared


def _decoders(config: StudyConfig) -> List[str]:
    """The decoders the cell needs an explainer for ("typed" first: the facts and the generative evaluation use it)."""
    used = {LAPACE_METHODS[m][0] for m in config.methods if m in LAPACE_METHODS}
    if config.generative:
        used.add("typed")
    return [d for d in ("typed", "paper") if d in used]


def cell_facts(setup: Setup, explainer: Any = None) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]], Optional[pd.DataFrame]]:
    """``datasets.csv`` row, ``generative.csv`` row (or ``None``) and the synthetic rows of one cell."""
    _threads(setup.config)
    facts = setup.facts(explainer)
    if not setup.config.generative or explainer is None:
        return facts, None, None
    try:
        row, synthetic = train_on_synthetic(setup, explainer)
    except Exception as exc:  # reported, never dropped
        row = {"dataset": setup.name, "seed": setup.seed, "status": "failed: %s: %s" % (type(exc).__name__, exc)}
        synthetic = None
    return facts, row, synthetic


@dataclass
class _Cell:
    """A finished cell's outputs, gathered for writing."""

    setup: Setup
    methods: Dict[str, MethodResult] = field(default_factory=dict)
    facts: Dict[str, Any] = field(default_factory=dict)
    generative: Optional[Dict[str, Any]] = None
    synthetic: Optional[pd.DataFrame] = None


def _serial(config: StudyConfig, done: Any) -> None:
    bar = _bar(total=len(config.datasets) * len(config.seeds) * len(config.methods), desc="study", enabled=config.progress)
    for name in config.datasets:
        for seed in config.seeds:
            bar.set_postfix(dataset=name, seed=seed)
            setup = prepare_cell(name, seed, config)
            explainers = _shared(config, setup)
            cell = _Cell(setup)
            for method in _in_order(config.methods):
                bar.set_postfix(dataset=name, seed=seed, method=method)
                cell.methods[method] = method_cell(
                    setup, method, _shared_of(method, explainers), explainers.get("typed"), cell.methods.get(DERIVED.get(method, ""))
                )
                bar.update(1)
            cell.facts, cell.generative, cell.synthetic = cell_facts(setup, explainers.get("typed"))
            done(cell)
    bar.close()


def _shared_of(method: str, shared: Dict[str, Any]) -> Any:
    """What ``method`` uses of the cell's shared fits (:func:`_shared`), or ``None``."""
    if method in LAPACE_METHODS:
        return shared[LAPACE_METHODS[method][0]]
    return shared.get("vae") if method in GENERATIVE_BASELINES else None


SETUP, FACTS = "(setup)", "(facts)"  # the keys of a cell's non-method tasks


def _on_dask(config: StudyConfig, done: Any) -> None:
    from distributed import as_completed

    from ..distributed import connect

    with connect(workers=config.workers, scheduler=config.scheduler) as client:
        pending: Dict[Any, Tuple[Tuple[str, int], str]] = {}
        for name in config.datasets:
            for seed in config.seeds:
                setup = client.submit(prepare_cell, name, seed, config, pure=False)
                explainers = _shared(
                    config, setup, lambda s, d: client.submit(fit_explainer, s, d, pure=False),
                    lambda s: client.submit(fit_vae, s, pure=False),
                )
                submitted: Dict[str, Any] = {}
                for method in _in_order(config.methods):
                    uses, parent = _shared_of(method, explainers), submitted.get(DERIVED.get(method, ""))
                    submitted[method] = client.submit(method_cell, setup, method, uses, explainers.get("typed"), parent, pure=False)
                    pending[submitted[method]] = ((name, seed), method)
                pending[client.submit(cell_facts, setup, explainers.get("typed"), pure=False)] = ((name, seed), FACTS)
                pending[setup] = ((name, seed), SETUP)
        parts: Dict[Tuple[str, int], Dict[str, Any]] = {}
        bar = _bar(total=len(pending), desc="study tasks", enabled=config.progress)
        for future in as_completed(list(pending)):
            key, what = pending[future]
            got = parts.setdefault(key, {})
            got[what] = future.result()
            bar.update(1)
            if len(got) == len(config.methods) + 2:  # the setup, its facts and every method
                cell = _Cell(got[SETUP], {m: got[m] for m in config.methods})
                cell.facts, cell.generative, cell.synthetic = got[FACTS]
                done(cell)
        bar.close()


# ----------------------------------------------------------------------------------------------
# The study
# ----------------------------------------------------------------------------------------------


class _Writer:
    """Writes each finished cell's artefacts and rewrites the tables and ``results.md``, so an interrupted run keeps
    the cells it finished; the figures and ``report.html`` are drawn once at the end."""

    def __init__(self, config: StudyConfig) -> None:
        self.config = config
        self.rows: List[Dict[str, Any]] = []
        self.facts: List[Dict[str, Any]] = []
        self.generative: List[Dict[str, Any]] = []
        self.start = time.perf_counter()

    def __call__(self, cell: _Cell) -> None:
        out, setup = self.config.out, cell.setup
        base = artefacts.cell_dir(out, setup.name, setup.seed)
        artefacts.write_frames(base, {
            "queries": artefacts.queries_frame(setup),
            "perturbed_queries": setup.perturbed.reset_index().rename(columns={setup.perturbed.index.name or "index": "query"}),
            "synthetic": cell.synthetic,
        })
        for method, result in cell.methods.items():
            artefacts.write_frames(artefacts.cell_dir(out, setup.name, setup.seed, method), {
                "counterfactuals": result.counterfactuals,
                "perturbed_counterfactuals": result.perturbed_counterfactuals,
                "failures": result.failures,
                "per_counterfactual": result.per_counterfactual,
                "per_query": result.per_query,
                "retrained_predictions": result.retrained_predictions,
            })
            self.rows.append(result.row)
        self.facts.append(cell.facts)
        if cell.generative is not None:
            self.generative.append(cell.generative)
        self.tables(final=False)

    def tables(self, final: bool = True) -> StudyOutputs:
        """Write the tables (and, when ``final``, the figures, ``results.md`` and ``report.html``)."""
        config, out = self.config, self.config.out
        order = {(d, s, m): i for i, (d, s, m) in enumerate(
            (d, s, m) for d in config.datasets for s in config.seeds for m in config.methods)}
        rows = sorted(self.rows, key=lambda r: order[(r["dataset"], r["seed"], r["method"])])
        results = artefacts.rows_frame(rows, COLUMNS).reindex(columns=list(COLUMNS))
        summary = summarise(results, ("n_queries", "n_covered", "n_both_runs", "n_counterfactuals") + METRIC_COLUMNS + ("fit_time",))
        facts = _sorted(pd.DataFrame(self.facts), config)
        generative = _sorted(pd.DataFrame(self.generative), config)
        claims = check_claims(results, facts, generative)
        results.to_csv(os.path.join(out, "results.csv"), index=False)
        summary.to_csv(os.path.join(out, "summary.csv"), index=False)
        claims.to_csv(os.path.join(out, "claims.csv"), index=False)
        front_table(summary).to_csv(os.path.join(out, "front.csv"), index=False)
        facts.to_csv(os.path.join(out, "datasets.csv"), index=False)
        generative.to_csv(os.path.join(out, "generative.csv"), index=False)
        wall = time.perf_counter() - self.start
        write_markdown(summary, claims, facts, generative, config, wall, os.path.join(out, "results.md"))
        if final:
            pngs = write_figures(summary, out)
            write_html(summary, claims, facts, generative, config, wall, pngs, os.path.join(out, "report.html"))
        return StudyOutputs(results, summary, claims, facts, generative)


def _sorted(frame: pd.DataFrame, config: StudyConfig) -> pd.DataFrame:
    if frame.empty:
        return frame
    rank = {d: i for i, d in enumerate(config.datasets)}
    return frame.assign(_r=frame["dataset"].map(rank)).sort_values(["_r", "seed"]).drop(columns="_r").reset_index(drop=True)


def run_study(config: StudyConfig) -> StudyOutputs:
    """Run every dataset, seed and method of ``config``; write every artefact to ``config.out``; return the tables.

    Serial by default; with ``config.workers`` or ``config.scheduler`` the cells run as Dask tasks
    (:func:`lapace_plugin.distributed.connect`), with the same results.
    """
    check_output_folder(config.out, option="out", owned=artefacts.owned, what="lapace study")
    os.makedirs(config.out, exist_ok=True)
    artefacts.write_config(config, config.out)
    _threads(config)
    writer = _Writer(config)
    if config.workers is not None or config.scheduler is not None:
        _on_dask(config, writer)
    else:
        _serial(config, writer)
    return writer.tables()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm progress bar on stderr, or a silent stand-in."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr)


"""The methods of ``lapace study``: one class per family, each ``fit()`` then ``explain(queries, targets)``.

``explain`` returns an :class:`Explained`: the counterfactuals (raw rows with a ``(query, rank)`` MultiIndex), the
failure reason of every query without one, and, for LAPACE, each returned counterfactual's path metadata
(component, tau, probability) from :meth:`lapace_plugin.result.Explanation.to_frame`.

- ``nnce``, ``drce``, ``robxce``, ``cchvae``, ``revise``: this package's implementations
  (:mod:`lapace_plugin.evaluation.baselines`); the generative two keep the schema's immutable features, as LAPACE's
  constrained row does;
- ``ellice``: the ``ellice`` package on the ``logistic`` classifier (not applicable to the others);
- ``dice-random``, ``dice-genetic``, ``dice-kdtree``: the real ``dice-ml`` with its default settings;
- ``lapace-*``: :data:`LAPACE_METHODS` on the ``Lapace`` fitted per dataset and seed with their decoder (one fit per
  decoder, shared by the methods that use it);
- ``rocelib-*``: RoCELib 0.2.3's own generators (:data:`ROCELIB_METHODS`) through
  :mod:`lapace_plugin.adapters.rocelib` (binary tasks only).
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from typing import Any, Dict, NamedTuple, Optional

import numpy as np
import pandas as pd

from ..rules import round_to_precision
from .baselines import BASELINES, Baseline
from .baselines.vae import train_vae

DICE_METHODS = ("dice-random", "dice-genetic", "dice-kdtree")
TYPICAL_LOF = 1.05
"""``max_lof`` of ``lapace-robust-typical`` (:mod:`lapace_plugin.typical`). Chosen on german and wine (5 seeds, 100
queries): 1.05 keeps the plan's median LOF under RobXCE's at 0.71x / 0.83x its L1; 1.0 lowers it further (0.997,
1.001) but costs german 1.07x RobXCE's L1 and 4.1 changed features instead of 2.4."""
_TYPED = dict(path="corrected", search="grid", revert=False, min_pair_count=2, distinct=True, max_lof=None)  # the package's defaults
_PAPER = dict(path="latent", search="grid", revert=False, min_pair_count=0, distinct=False, max_lof=None)  # the paper's LAPACE
_ROBUST = dict(_TYPED, strategy="robust", min_probability=0.7, revert=True, diverse=True)
LAPACE_METHODS = {  # (decoder, Lapace.explain settings), spelled out so that changing a default never changes a row
    "lapace-first": ("typed", dict(_TYPED, strategy="first")),
    "lapace-first-neighbour": ("typed", dict(_TYPED, strategy="first", path="neighbour")),
    "lapace-first-sparse": ("typed", dict(_TYPED, strategy="first", path="sparse")),
    "lapace-first-fast": ("typed", dict(_TYPED, strategy="first", search="fast")),
    "lapace-first-revert": ("typed", dict(_TYPED, strategy="first", revert=True)),
    "lapace-robust": ("typed", _ROBUST),
    "lapace-robust-options": ("typed", _ROBUST),
    "lapace-robust-typical": ("typed", dict(_ROBUST, max_lof=TYPICAL_LOF)),
    "lapace-last": ("typed", dict(_TYPED, strategy="last")),
    "lapace-constrained": ("typed", dict(_TYPED, strategy="first", constraints="schema")),
    "lapace-first-paper": ("paper", dict(_PAPER, strategy="first")),
    "lapace-last-paper": ("paper", dict(_PAPER, strategy="last")),
}
"""``lapace-*`` rows are this package's LAPACE (type-aware decoder, corrected paths, plausibility filter, distinct
options); ``-paper`` rows are the paper's (its decoder, latent paths, first valid points as they come)."""
FIT_SETTINGS = {"typed": dict(decoder="typed"), "paper": dict(decoder="paper", min_pair_count=0)}
"""``Lapace`` arguments of the one explainer fitted per decoder (the paper's settles its centroids without the
plausibility filter, as the paper does)."""
ROCELIB_METHODS = {  # study name -> RoCELib generator (module, class); see lapace_plugin.adapters.rocelib
    "rocelib-nnce": "NNCE",
    "rocelib-kdtree-nnce": "KDTreeNNCE",
    "rocelib-drce": "DiverseRobustCE",
}
GENERATIVE_BASELINES = ("cchvae", "revise")
METHODS = ("nnce", "drce", "robxce") + GENERATIVE_BASELINES + ("ellice",) + DICE_METHODS + tuple(LAPACE_METHODS) + tuple(ROCELIB_METHODS)
SINGLE_CF_METHODS = ("nnce", "robxce", "rocelib-nnce", "rocelib-kdtree-nnce") + GENERATIVE_BASELINES + (
    "ellice", "lapace-robust", "lapace-robust-typical")
"""Methods returning one counterfactual per query. ``lapace-robust`` is the robust *choice*: a person's nearest option
that the classifier gives at least 0.7 (of ``diverse`` options, reverted), compared like with like against the other
single-answer methods; ``lapace-robust-options`` gives ``k`` such options; ``lapace-robust-typical`` is the robust
choice whose revert keeps the plan typical of the target class (``max_lof``)."""
DERIVED = {"lapace-robust": "lapace-robust-options"}
"""Methods whose counterfactuals are another's first-ranked ones: ``lapace-robust``'s one option is the nearest of
``lapace-robust-options``' options (rank 0 of the same ``explain``; the options do not depend on how many are kept),
so a study running both explains once and reports the same seconds for both."""
BATCHED_METHODS = ("nnce", "drce") + GENERATIVE_BASELINES + tuple(LAPACE_METHODS)
SLOW_METHODS = DICE_METHODS + ("robxce", "ellice") + tuple(ROCELIB_METHODS)
"""Methods that explain only the first ``slow_queries`` queries (about a second per query or more on adult: DiCE's
searches, RobXCE's stability estimates, ElliCE's per-query optimisation, and RoCELib's generators, which classify every training row again for each
query and, for NNCE, loop over them in Python)."""
DEFAULT_METHODS = tuple(m for m in METHODS if m not in ("dice-genetic", "rocelib-nnce"))
"""Left out by default (``--methods`` adds them). On 2 cores ``dice-genetic`` takes 12-17 s per query on compas, longer
than the other methods together; ``rocelib-nnce`` returns the same rows as ``rocelib-kdtree-nnce`` (RoCELib's KD-tree
search of the same Euclidean nearest neighbour), many times slower."""

META_COLUMNS = ("component", "tau", "probability", "repaired", "reverted")


class Explained(NamedTuple):
    """One ``explain`` call's output."""

    counterfactuals: pd.DataFrame
    failures: Dict[Any, str]
    meta: Optional[pd.DataFrame] = None  # (query, rank) -> META_COLUMNS, LAPACE only


class NotInstalled(Exception):
    """A method whose optional dependency is missing."""


class NotApplicable(Exception):
    """A method that cannot run on this dataset (e.g. a binary-only method on a multiclass task)."""


class Method:
    """A method of the study: ``fit`` (timed as its fit time) then ``explain`` batches of queries.

    ``data`` is the dataset-and-seed :class:`~lapace_plugin.evaluation.cells.Setup`; ``explainer`` the fitted
    ``Lapace`` that the LAPACE methods share, or the VAE that C-CHVAE and REVISE share (:func:`shared_vae`; ``None``:
    the method trains its own), ``None`` for the others.
    """

    def __init__(self, name: str, data: Any, explainer: Any = None) -> None:
        self.name, self.data, self.explainer = name, data, explainer
        self.k = 1 if name in SINGLE_CF_METHODS else data.config.k
        self.batched = name in BATCHED_METHODS

    def fit(self) -> float:
        """Prepare the method; returns its fit seconds."""
        raise NotImplementedError

    def explain(self, queries: pd.DataFrame, targets: np.ndarray) -> Explained:
        raise NotImplementedError


class BaselineMethod(Method):
    """A baseline of :mod:`lapace_plugin.evaluation.baselines`: NNCE, DRCE and RobXCE without constraints, as in
    their papers; C-CHVAE, REVISE and ElliCE with the schema's immutable features, as in theirs."""

    def fit(self) -> float:
        config = self.data.config
        kwargs: Dict[str, Any] = {}
        if self.name == "robxce":
            kwargs = {
                "n_perturbations": config.robx_perturbations,
                "max_search": config.robx_max_search or None,
                "random_state": self.data.seed,
            }
        elif self.name in GENERATIVE_BASELINES:
            kwargs = dict(generative_settings(self.data), vae=self.explainer)
        elif self.name == "ellice":
            kwargs = {"immutable": "schema", "random_state": self.data.seed, "logistic": self._logistic()}
        start = time.perf_counter()
        self.method = BASELINES[self.name](schema=self.data.schema, **kwargs).fit(self.data.X_train, self.data.proba)
        shared = self.explainer.fit_time_ if self.explainer is not None else 0.0  # a shared VAE's training counts
        return time.perf_counter() - start + shared

    def explain(self, queries: pd.DataFrame, targets: np.ndarray) -> Explained:
        cfs = self.method.explain(queries, target_class=targets, n_counterfactuals=self.k)
        return Explained(cfs, dict(self.method.failures))

    def _logistic(self) -> Any:
        """ElliCE's model: the study's ``logistic`` classifier on a binary task."""
        try:
            import ellice  # noqa: F401
        except ImportError:
            from .baselines.ellice import INSTALL

            raise NotInstalled(INSTALL)
        if self.data.config.classifier != "logistic":
            raise NotApplicable("ElliCE explains a logistic regression (or a single-logit network); run the study with "
                                "--classifier logistic")
        if len(self.data.classes) != 2:
            raise NotApplicable("ElliCE explains a single logit: binary tasks only")
        return self.data.model.named_steps["model"]


class LapaceMethod(Method):
    """A :data:`LAPACE_METHODS` entry on the cell's ``Lapace`` with its decoder; its fit time is that shared fit's."""

    def fit(self) -> float:
        self.settings = LAPACE_METHODS[self.name][1]
        return float(self.explainer.fit_time_)

    def explain(self, queries: pd.DataFrame, targets: np.ndarray) -> Explained:
        res = self.explainer.explain(queries, target_class=targets, n_counterfactuals=self.k, **self.settings)
        chosen = res.counterfactuals_with_paths()
        meta = chosen[["query", "rank"] + [c for c in META_COLUMNS if c in chosen.columns]].set_index(["query", "rank"])
        return Explained(res.counterfactuals, dict(res.failures), meta)


class DiceMethod(Method):
    """DiCE's random, genetic or kdtree method through the real ``dice-ml``, with DiCE's default settings except the
    post-hoc sparsity search: ``"binary"``, which DiCE's documentation advises for features with large ranges, instead
    of the default ``"linear"``, which classifies one row per step of a feature's precision (on credit's bill amounts
    one query took minutes)."""

    def fit(self) -> float:
        try:
            import dice_ml
        except ImportError:
            raise NotInstalled('dice-ml is not installed (pip install "lapace-plugin[dice]")')
        data = self.data
        start = time.perf_counter()
        frame = data.X_train.copy()
        frame[data.target_name] = data.y_train.to_numpy()
        with quiet():
            d = dice_ml.Data(dataframe=frame, continuous_features=list(data.schema.continuous), outcome_name=data.target_name)
            m = dice_ml.Model(model=data.model, backend="sklearn")
            self.dice = dice_ml.Dice(d, m, method=self.name[len("dice-") :])
        return time.perf_counter() - start

    def explain(self, queries: pd.DataFrame, targets: np.ndarray) -> Explained:
        pieces, failures = [], {}
        seed = self.data.seed
        extra = {"random_seed": seed} if self.name == "dice-random" else {}
        for label, target in zip(queries.index, targets):
            np.random.seed(seed)
            with quiet():
                try:
                    res = self.dice.generate_counterfactuals(
                        queries.loc[[label]], total_CFs=self.k, desired_class=int(target),
                        posthoc_sparsity_algorithm="binary", **extra
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
        return Explained(pd.concat(pieces) if pieces else empty_counterfactuals(self.data.schema, queries), failures)

    def _raw(self, df: pd.DataFrame) -> pd.DataFrame:
        """DiCE's output in the schema's raw format (categories as strings, integer columns as integers)."""
        schema, out = self.data.schema, pd.DataFrame(index=range(len(df)))
        for f in schema.features:
            values = df[f].to_numpy()
            if f in schema.categorical or f in schema.ordinal:  # DiCE handles ordinal features as categories
                out[f] = pd.Series(values).astype(str).to_numpy()
            else:
                num = pd.to_numeric(pd.Series(values)).to_numpy(dtype=float)
                out[f] = round_to_precision(num, schema, f, dtype=self.data.X_train[f].dtype)
        return out


class RocelibMethod(Method):
    """A RoCELib 0.2.3 generator (:data:`ROCELIB_METHODS`) on the study's data and model, through
    :mod:`lapace_plugin.adapters.rocelib` (rows encoded as RoCELib expects, decoded back to raw rows)."""

    def fit(self) -> float:
        try:
            from ..adapters import rocelib as adapter
        except ImportError as exc:
            raise NotInstalled(str(exc))
        if len(self.data.classes) != 2:
            raise NotApplicable("RoCELib's generators handle binary tasks only (neg_value, 1 - neg_value)")
        start = time.perf_counter()
        self.task = adapter.make_task(self.data.schema, self.data.X_train, self.data.y_train, self.data.proba)
        self.generator = adapter.generator(ROCELIB_METHODS[self.name])(self.task)
        return time.perf_counter() - start

    def explain(self, queries: pd.DataFrame, targets: np.ndarray) -> Explained:
        from ..adapters import rocelib as adapter

        extra = {"n_ces": self.k} if self.name == "rocelib-drce" else {}
        out = adapter.explain(self.generator, queries, targets, seed=self.data.seed, **extra)
        return Explained(out.counterfactuals, out.failures)


def generative_settings(data: Any) -> Dict[str, Any]:
    """C-CHVAE's and REVISE's settings on a cell: the schema's immutable features, the cell's seed."""
    return {"immutable": "schema", "random_state": data.seed}


def shared_vae(data: Any) -> Any:
    """The VAE that C-CHVAE and REVISE search on a cell, trained once for both (the one each would train)."""
    settings = generative_settings(data)
    fitted = Baseline(schema=data.schema, immutable=settings["immutable"]).fit(data.X_train, data.proba)
    return train_vae(fitted, random_state=settings["random_state"])


def make_method(name: str, data: Any, explainer: Any = None) -> Method:
    """The :class:`Method` for a study method name (``explainer``: the shared ``Lapace`` of a LAPACE method, the
    shared VAE of C-CHVAE and REVISE, :func:`shared_vae`)."""
    if name in LAPACE_METHODS:
        return LapaceMethod(name, data, explainer)
    if name in DICE_METHODS:
        return DiceMethod(name, data)
    if name in ROCELIB_METHODS:
        return RocelibMethod(name, data)
    return BaselineMethod(name, data, explainer if name in GENERATIVE_BASELINES else None)


def empty_counterfactuals(schema: Any, queries: pd.DataFrame) -> pd.DataFrame:
    """No counterfactuals: the queries' columns and dtypes with an empty ``(query, rank)`` index."""
    out = queries.iloc[:0][list(schema.features)].copy()
    out.index = pd.MultiIndex.from_arrays([[], []], names=["query", "rank"])
    return out


def quiet() -> contextlib.ExitStack:
    """Silence a framework's prints, progress bars and warnings (their cost stays in the timing)."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


__all__ = [
    "BATCHED_METHODS", "DEFAULT_METHODS", "DICE_METHODS", "SLOW_METHODS", "Explained", "LAPACE_METHODS", "METHODS", "Method", "NotApplicable",
    "NotInstalled", "ROCELIB_METHODS", "SINGLE_CF_METHODS", "empty_counterfactuals", "make_method", "quiet",
]

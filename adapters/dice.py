"""LAPACE as a DiCE explainer (dice-ml 0.12).

A DiCE user changes one word::

    import dice_ml
    from lapace_plugin.adapters.dice import register

    register(random_state=0)                   # once per process; keywords are defaults for Lapace(...)
    d = dice_ml.Data(dataframe=train_df, continuous_features=["age", "hours_per_week"], outcome_name="income")
    m = dice_ml.Model(model=pipeline, backend="sklearn")
    exp = dice_ml.Dice(d, m, method="lapace")  # was method="random"
    cfs = exp.generate_counterfactuals(query_df, total_CFs=4, desired_class="opposite")
    cfs.visualize_as_dataframe(show_only_changes=True)

``LapaceDice(d, m)`` can also be built directly. It fits a :class:`lapace_plugin.Lapace` on the training
frame of ``dice_ml.Data``, labelled by the DiCE model's own predictions (DiCE's ``predict_fn`` on raw
rows, so sklearn pipelines and torch models with ``func="ohe-min-max"`` both work), or takes an already
fitted explainer (``explainer=``: a ``Lapace`` or a directory written by ``Lapace.save``). Keywords given to
``dice_ml.Dice(..., method="lapace", ...)`` reach ``LapaceDice``.

How DiCE's arguments are translated (this module has no search of its own):

- all queries go through one ``Lapace.explain`` call; the result is DiCE's
  ``CounterfactualExplanations`` holding one ``CounterfactualExamples`` per query;
- ``total_CFs``: at most ``total_CFs`` counterfactuals per query, and at most ``components_per_class``
  (one per latent path); fewer are reported with DiCE's "Only k (required n)" message;
- ``desired_class``: ``"opposite"`` for binary models, a class index (column of ``predict_proba``) otherwise;
- ``stopping_threshold``: a returned counterfactual is predicted as the desired class with at least this
  probability; candidates below it are dropped (for multiclass models too, where DiCE's own methods only
  require the desired class to be the most probable one);
- ``features_to_vary``: every other feature is immutable; ``permitted_range``: value ranges of continuous
  features and allowed categories of categorical ones. Both are LAPACE constraints, and every returned
  counterfactual (also after the sparsity step) satisfies them;
- ``posthoc_sparsity_param`` / ``posthoc_sparsity_algorithm``: DiCE's post-hoc step (move continuous
  features whose change is within the ``posthoc_sparsity_param`` quantile back toward the query while the
  counterfactual stays valid, features in DiCE's order), run by the core's
  :class:`lapace_plugin.refine.PosthocSparsity` with one model call per continuous feature for all
  counterfactuals and all candidate values instead of one call per step;
- ``strategy`` (``"first"`` or ``"last"``, see :class:`lapace_plugin.Lapace`): chosen when the explainer is
  built (``dice_ml.Dice(d, m, method="lapace", strategy="last")``) and overridable per call
  (``generate_counterfactuals(..., strategy="last")``); ``n_steps``, ``path`` (``"corrected"``, the default,
  ``"sparse"`` or the paper's ``"latent"``), ``search`` (``"grid"``, the default, or ``"fast"``) and ``revert``
  (``True``: set unneeded changes of any feature back to the query's value before DiCE's post-hoc sparsity
  step; default ``False``) may also be passed per call, or given at construction as options of the fitted :class:`lapace_plugin.Lapace`;
- keywords of other DiCE methods (``proximity_weight``, ``diversity_weight``, ``sample_size``,
  ``random_seed``, ...) are accepted and ignored, so an existing call keeps working.

Categorical values are strings, as in ``dice_ml.Data``. Counterfactuals are rounded to DiCE's decimal
precision of each continuous feature; those that rounding moves are scored by the model again. Only DiCE's
arguments constrain them: immutable or monotone features declared in a ``FeatureSchema`` are not applied
(list the features that may change in ``features_to_vary``). A query already predicted as the desired class
gets no counterfactual (LAPACE's reason is printed under DiCE's message).
"""

from __future__ import annotations

import os
import sys
import timeit
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from lapace_plugin import Constraints, FeatureSchema, Lapace
from lapace_plugin.errors import InvalidParameterError
from lapace_plugin.params import per_call_names
from lapace_plugin.refine import PosthocSparsity
from lapace_plugin.strategies import STRATEGIES


def _installed_dice_version() -> Optional[str]:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python 3.7
        import pkg_resources

        try:
            return pkg_resources.get_distribution("dice-ml").version
        except pkg_resources.DistributionNotFound:
            return None
    try:
        return version("dice-ml")
    except PackageNotFoundError:
        return None


try:
    import dice_ml
    import dice_ml.dice
    from dice_ml.constants import ModelTypes
    from dice_ml.counterfactual_explanations import CounterfactualExplanations
    from dice_ml.diverse_counterfactuals import CounterfactualExamples
    from dice_ml.explainer_interfaces.explainer_base import ExplainerBase
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    found = _installed_dice_version()
    raise ImportError(
        'lapace_plugin.adapters.dice needs dice-ml 0.12 (%s); install it with: pip install "lapace-plugin[dice]"'
        % ("not installed" if found is None else "found dice-ml %s" % found)
    ) from exc

__all__ = ["METHOD", "LapaceDice", "RegisteredLapaceDice", "register", "unregister", "is_registered"]

METHOD = "lapace"
"""The ``method`` name that :func:`register` teaches ``dice_ml.Dice``."""

# Keywords other DiCE methods take in generate_counterfactuals (dice-ml 0.12): accepted and ignored.
_RANDOM_KEYWORDS = ("sample_size", "random_seed")
_GENETIC_KEYWORDS = (
    "initialization proximity_weight sparsity_weight diversity_weight categorical_penalty algorithm yloss_type "
    "diversity_loss_type feature_weights maxiterations thresh"
).split()
_GRADIENT_KEYWORDS = (
    "optimizer learning_rate min_iter max_iter project_iter loss_diff_thres loss_converge_maxiter "
    "init_near_query_instance tie_random total_random_inits"
).split()
IGNORED_DICE_KEYWORDS = frozenset(_RANDOM_KEYWORDS) | frozenset(_GENETIC_KEYWORDS) | frozenset(_GRADIENT_KEYWORDS)

_NO_CF_MESSAGE = "No Counterfactuals found for the given configuration, perhaps try with different parameters..."
_FEW_CF_MESSAGE = "Diverse Counterfactuals found for the given configuration, perhaps try with different parameters..."


class LapaceDice(ExplainerBase):
    """DiCE explainer whose counterfactuals come from LAPACE latent paths.

    Parameters
    ----------
    data_interface
        ``dice_ml.Data``. Fitting needs its training frame (``dice_ml.Data(dataframe=...)``); with metadata
        only (private data) pass a fitted ``explainer``.
    model_interface
        ``dice_ml.Model`` of a classifier (``backend="sklearn"``, ``"PYT"``, ...).
    explainer
        A fitted :class:`lapace_plugin.Lapace`, or a directory saved with ``Lapace.save`` (loaded with this
        model's ``predict_proba``). ``None`` fits a new one.
    strategy
        Default LAPACE selection strategy, ``"first"`` (proximal) or ``"last"`` (the decoded centroid);
        ``generate_counterfactuals(..., strategy=...)`` overrides it per call.
    **lapace_options
        Keyword arguments of ``Lapace(...)`` used when fitting (``random_state``, ``epochs``,
        ``components_per_class``, ``verbose``, ...). ``schema`` defaults to one built from ``dice_ml.Data``.

    Attributes
    ----------
    explainer
        The fitted ``Lapace``.
    strategy
        Default strategy.
    """

    def __init__(
        self,
        data_interface: Any,
        model_interface: Any,
        explainer: Any = None,
        strategy: str = "first",
        **lapace_options: Any,
    ) -> None:
        super().__init__(data_interface, model_interface)
        if self.model.model_type != ModelTypes.Classifier:
            raise ValueError("LAPACE explains classifiers; dice_ml.Model(model_type=%r) is not supported" % self.model.model_type)
        self.strategy = _check_strategy(strategy)
        # Own copies: DiCE's other explainers overwrite some data-interface state when they run.
        self._features: List[str] = list(data_interface.feature_names)
        self._continuous: List[str] = list(data_interface.continuous_feature_names)
        self._categorical: List[str] = list(data_interface.categorical_feature_names)
        self._outcome: str = data_interface.outcome_name
        self._public = "data_df" in data_interface.__dict__
        ranges, _ = data_interface.get_features_range()
        self._default_ranges: Dict[str, Any] = {k: list(v) for k, v in ranges.items()}
        self._precision: Dict[str, int] = dict(data_interface.get_decimal_precisions(output_type="dict"))

        if explainer is None:
            if not self._public:
                raise ValueError(
                    "LapaceDice fits LAPACE on the training data, but this dice_ml.Data has only feature metadata "
                    "(private data). Build it with dice_ml.Data(dataframe=train_df, continuous_features=[...], "
                    "outcome_name=...), or pass a fitted explainer: LapaceDice(d, m, explainer=Lapace(...).fit(...))"
                )
            options = dict(lapace_options)
            schema = options.pop("schema", None) or self._schema_from_data()
            announce = options.pop("verbose", True)
            X = self._training_frame()
            self.explainer = Lapace(schema=schema, verbose=announce and sys.stderr.isatty(), **options).fit(
                X, predict_proba=self._predict_proba, classes=self._model_classes(X)
            )
            if announce:  # one line, also where a progress bar would be a wall of text (logs, CI)
                print(
                    "LAPACE: fitted on %d training rows in %.1f s (centroid validity %.0f%%; distinct centroids per class %s)"
                    % (len(X), self.explainer.fit_time_, 100 * self.explainer.centroid_validity_, self.explainer.distinct_centroids_)
                )
        else:
            if lapace_options:
                raise TypeError(
                    "Lapace options %s are only used when LapaceDice fits the explainer; "
                    "the explainer given is already fitted" % sorted(lapace_options)
                )
            if isinstance(explainer, (str, os.PathLike)):
                explainer = Lapace.load(explainer, self._predict_proba)
            self.explainer = explainer
            self._check_explainer()
        schema = self.explainer.schema_
        # DiCE works with string categories; map them to the explainer's own category values and back.
        self._to_explainer_cats = {f: {str(c): c for c in schema.categorical[f]} for f in self._categorical}
        self._from_explainer_cats = {f: {c: str(c) for c in schema.categorical[f]} for f in self._categorical}

    # ------------------------------------------------------------------ fitting helpers
    def _predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The DiCE model's class probabilities on raw DiCE-format rows, always ``(n, n_classes)``."""
        p = np.asarray(self.predict_fn(X), dtype=float)
        if p.ndim == 1:
            p = p[:, None]
        if p.shape[1] == 1:  # one sigmoid output (torch/keras binary models)
            p = np.column_stack([1.0 - p[:, 0], p[:, 0]])
        return p

    def _schema_from_data(self) -> FeatureSchema:
        df = self.data_interface.data_df
        return FeatureSchema(
            continuous=self._continuous,
            categorical={f: [str(c) for c in df[f].cat.categories] for f in self._categorical},
            ranges={f: (float(df[f].min()), float(df[f].max())) for f in self._continuous},
            integer=[f for f in self._continuous if self._precision.get(f, 0) == 0],
            precision={f: self._precision.get(f, 0) for f in self._continuous},
            order=self._features,
            dtypes=dict([(f, str(df[f].dtype)) for f in self._continuous] + [(f, "object") for f in self._categorical]),
        )

    def _training_frame(self) -> pd.DataFrame:
        df = self.data_interface.data_df
        X = pd.DataFrame(index=df.index)
        for f in self._features:
            X[f] = df[f].astype(object) if f in self._categorical else df[f]
        return X.reset_index(drop=True)

    def _model_classes(self, X: pd.DataFrame) -> Optional[List[Any]]:
        n_out = self._predict_proba(X.iloc[:1]).shape[1]
        classes = getattr(self.model.model, "classes_", None)
        if classes is not None and len(classes) == n_out:
            return [c.item() if isinstance(c, np.generic) else c for c in classes]  # plain, JSON-safe labels
        return None

    def _check_explainer(self) -> None:
        schema = getattr(self.explainer, "schema_", None)
        if schema is None:
            raise ValueError("the explainer given is not fitted; call Lapace(...).fit(X, predict_proba) first")
        if set(schema.features) != set(self._features):
            raise ValueError(
                "the explainer was fitted on features %s but dice_ml.Data has %s" % (schema.features, self._features)
            )
        if set(schema.continuous) != set(self._continuous):
            raise ValueError(
                "the explainer's continuous features %s differ from dice_ml.Data's continuous_features %s"
                % (schema.continuous, self._continuous)
            )

    # ------------------------------------------------------------------ DiCE API
    def generate_counterfactuals(
        self,
        query_instances: Any,
        total_CFs: int,
        desired_class: Any = "opposite",
        desired_range: Any = None,
        permitted_range: Optional[Mapping[str, Sequence[Any]]] = None,
        features_to_vary: Any = "all",
        stopping_threshold: float = 0.5,
        posthoc_sparsity_param: Optional[float] = 0.1,
        posthoc_sparsity_algorithm: str = "linear",
        verbose: bool = False,
        **kwargs: Any,
    ) -> CounterfactualExplanations:
        """Counterfactuals for every query, from one batched LAPACE call.

        Parameters are DiCE's (see the module docstring for how each is translated), plus ``strategy``
        (``"first"``/``"last"``, default the one given at construction), every per-call parameter of
        :class:`lapace_plugin.Lapace` (:func:`lapace_plugin.params.per_call_names`: ``n_steps``, ``path``, ``search``,
        ``revert``, ``max_points``, ``min_pair_count``, ``distinct``...; default the explainer's) and
        ``limit_steps_ls`` (DiCE's cap on post-hoc sparsity steps, default 10000).

        Returns
        -------
        CounterfactualExplanations
            One ``CounterfactualExamples`` per query, in query order; a query without a counterfactual has
            ``final_cfs_df`` ``None`` and DiCE's "No Counterfactuals found" message is printed.
        """
        strategy = _check_strategy(kwargs.pop("strategy", self.strategy))
        overrides = {name: kwargs.pop(name) for name in per_call_names() if name in kwargs}
        limit_steps_ls = int(kwargs.pop("limit_steps_ls", 10000))
        unknown = sorted(set(kwargs) - IGNORED_DICE_KEYWORDS)
        if unknown:
            raise InvalidParameterError(
                "generate_counterfactuals() got unexpected keyword argument(s) %s; LAPACE accepts DiCE's arguments, "
                "strategy, %s and limit_steps_ls" % (unknown, ", ".join(per_call_names()))
            )
        self._validate_counterfactual_configuration(
            query_instances=query_instances,
            total_CFs=total_CFs,
            desired_class=desired_class,
            desired_range=desired_range,
            permitted_range=permitted_range,
            features_to_vary=features_to_vary,
            stopping_threshold=stopping_threshold,
            posthoc_sparsity_param=posthoc_sparsity_param,
            posthoc_sparsity_algorithm=posthoc_sparsity_algorithm,
            verbose=verbose,
        )
        frame, dtype_rows = self._query_frame(query_instances)
        features_to_vary = self._check_arguments(features_to_vary, permitted_range, frame)
        queries = self._dice_format(frame)
        self.data_interface.set_continuous_feature_indexes(queries)
        start = timeit.default_timer()

        self.num_output_nodes = n_classes = int(self.explainer.n_classes_)
        if isinstance(desired_class, np.integer):
            desired_class = int(desired_class)
        # DiCE's checks of desired_class; "opposite" is for binary models, resolved per query by LAPACE
        target = self.infer_target_cfs_class(desired_class, np.eye(n_classes)[0], n_classes)
        constraints = self._constraints(features_to_vary, permitted_range)
        result = self.explainer.explain(
            self._explainer_format(queries),
            target_class=None if desired_class == "opposite" else target,
            strategy=strategy,
            n_counterfactuals=None,  # every path; total_CFs are chosen after the DiCE checks below
            constraints=constraints,
            **overrides,
        )
        predicted, targets = np.asarray(result.predicted_class), np.asarray(result.target_class)
        cfs, qpos, target_proba = self._counterfactuals(result)
        cfs, changed = self._round(cfs)
        if changed.any():  # rounding to DiCE's precision moved these: ask the model again
            rescored = self._predict_proba(cfs[changed])
            rows = targets[qpos[changed]]
            target_proba[changed] = np.where(rescored.argmax(axis=1) == rows, rescored[np.arange(len(rows)), rows], -np.inf)
        keep = target_proba >= stopping_threshold  # LAPACE's counterfactuals are predicted as the target class
        keep &= self._respects(cfs, queries.iloc[qpos].reset_index(drop=True), constraints)
        keep &= ~pd.concat([pd.Series(qpos, name="__query"), cfs], axis=1).duplicated().to_numpy()
        cfs, qpos = cfs[keep].reset_index(drop=True), qpos[keep]
        first = pd.Series(qpos).groupby(qpos).cumcount().to_numpy() < total_CFs
        cfs, qpos = cfs[first].reset_index(drop=True), qpos[first]

        sparse = cfs
        if posthoc_sparsity_param is not None and posthoc_sparsity_param > 0 and self._public and len(cfs):
            refiner = self._posthoc_sparsity(posthoc_sparsity_param, posthoc_sparsity_algorithm, limit_steps_ls, stopping_threshold)
            sparse = refiner.apply(
                cfs,
                queries.iloc[qpos].reset_index(drop=True),
                targets[qpos],
                self._predict_proba,
                features=features_to_vary,
                ranges={f: r for f, r in (permitted_range or {}).items() if f in self._continuous},
            )
        elapsed = timeit.default_timer() - start
        self.elapsed = elapsed

        n = len(queries)
        labels = self._labels(np.concatenate([predicted, targets]))
        cf_labels = [labels[n + q] for q in qpos]  # every returned counterfactual is predicted as its target
        tests = self._with_outcome(queries, labels[:n], frame, dtype_rows, np.arange(n))
        finals = self._with_outcome(cfs, cf_labels, frame, dtype_rows, qpos)
        sparses = self._with_outcome(sparse, cf_labels, frame, dtype_rows, qpos)
        bounds = np.searchsorted(qpos, np.arange(n + 1))  # rows are grouped by query, in order
        examples = []
        for i in range(n):
            rows = slice(bounds[i], bounds[i + 1])
            found = bounds[i + 1] > bounds[i]
            examples.append(
                self._examples(
                    _rows(tests, slice(i, i + 1)),
                    _rows(finals, rows) if found else None,
                    _rows(sparses, rows) if found else None,
                    desired_class=labels[n + i],
                    posthoc_sparsity_param=posthoc_sparsity_param,
                    total_CFs=total_CFs,
                    failure=result.failures.get(i) or result.shortfalls.get(i),
                    elapsed=elapsed,
                    verbose=verbose,
                )
            )
        self._check_any_counterfactuals_computed(cf_examples_arr=examples)
        return CounterfactualExplanations(cf_examples_list=examples)

    def _generate_counterfactuals(
        self,
        query_instance: Any,
        total_CFs: int,
        *,
        desired_class: Any = "opposite",
        desired_range: Any = None,
        permitted_range: Optional[Mapping[str, Sequence[Any]]] = None,
        features_to_vary: Any = "all",
        stopping_threshold: float = 0.5,
        posthoc_sparsity_param: Optional[float] = 0.1,
        posthoc_sparsity_algorithm: str = "linear",
        verbose: bool = False,
        **kwargs: Any,
    ) -> CounterfactualExamples:
        """DiCE's one-query hook; delegates to the batched :meth:`generate_counterfactuals`."""
        cf = self.generate_counterfactuals(
            query_instance,
            total_CFs,
            desired_class=desired_class,
            desired_range=desired_range,
            permitted_range=permitted_range,
            features_to_vary=features_to_vary,
            stopping_threshold=stopping_threshold,
            posthoc_sparsity_param=posthoc_sparsity_param,
            posthoc_sparsity_algorithm=posthoc_sparsity_algorithm,
            verbose=verbose,
            **kwargs,
        )
        return cf.cf_examples_list[0]

    # ------------------------------------------------------------------ argument translation
    def _query_frame(self, query_instances: Any) -> Tuple[pd.DataFrame, Optional[List[pd.DataFrame]]]:
        """All queries in one frame in the caller's format, and, unless they came as one DataFrame, each
        query's own one-row frame (whose dtypes DiCE gives that query's results)."""
        if isinstance(query_instances, pd.DataFrame):
            rows = None
            frame = query_instances.reset_index(drop=True)
        else:
            if isinstance(query_instances, dict):
                parts = [self.data_interface.query_instance_to_df(query_instances)]
            elif isinstance(query_instances, Iterable) and not isinstance(query_instances, str):
                parts = [
                    self.data_interface.query_instance_to_df(q.to_frame().T if isinstance(q, pd.Series) else q)
                    for q in query_instances
                ]
            else:
                raise ValueError("Query instance should be a dict, a pandas dataframe, a list, or a list of dicts")
            rows = [part.iloc[i : i + 1] for part in parts for i in range(len(part))]
            frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        if len(frame) == 0:
            raise ValueError("no query instances given; pass a DataFrame with at least one row")
        return frame, rows

    def _check_arguments(
        self, features_to_vary: Any, permitted_range: Optional[Mapping[str, Sequence[Any]]], query: pd.DataFrame
    ) -> List[str]:
        """DiCE's checks of ``setup``/``check_query_instance_validity``, for all queries at once."""
        if isinstance(features_to_vary, str) and features_to_vary != "all":
            features_to_vary = [features_to_vary]
        self.data_interface.check_features_to_vary(features_to_vary=features_to_vary)
        for f, allowed in (permitted_range or {}).items():
            if f in self._continuous and (isinstance(allowed, str) or len(list(allowed)) != 2):
                raise ValueError("permitted_range for %r must be [low, high], got %r" % (f, allowed))
        self.data_interface.check_permitted_range(permitted_range)
        varying = list(self._features) if features_to_vary == "all" else list(features_to_vary)
        for column in query.columns:
            if column == self._outcome:
                raise ValueError("Target", self._outcome, "present in query instance")
            if column not in self._features:
                raise ValueError("Feature", column, "not present in training data!")
        missing = [f for f in self._features if f not in query.columns]
        if missing:
            raise ValueError("query instances lack feature(s) %s; expected columns: %s" % (missing, self._features))
        for f in self._categorical:
            known = {str(c) for c in self._default_ranges[f]}
            if not query[f].astype(str).isin(known).all():
                raise ValueError("Feature", f, "has a value outside the dataset.")
        for f, allowed in (permitted_range or {}).items():
            if f in varying:
                continue
            if f in self._continuous:
                values = pd.to_numeric(query[f])
                inside = (values >= allowed[0]) & (values <= allowed[1])
            else:
                inside = query[f].astype(str).isin({str(c) for c in allowed})
            if not inside.all():
                raise ValueError("Feature:", f, "is outside the permitted range and isn't allowed to vary.")
        return varying

    def _dice_format(self, query: pd.DataFrame) -> pd.DataFrame:
        """Feature columns in DiCE's order, categories as str, continuous values numeric."""
        out = pd.DataFrame(index=range(len(query)))
        for f in self._features:
            values = query[f].to_numpy()
            if f in self._categorical:
                out[f] = pd.Series([str(v) for v in values], dtype=object)
            else:
                out[f] = pd.to_numeric(pd.Series(values))
        return out

    def _explainer_format(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[list(self.explainer.schema_.features)].copy()
        for f in self._categorical:
            out[f] = out[f].map(self._to_explainer_cats[f]).astype(object)
        return out

    def _counterfactuals(self, result: Any) -> Tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """LAPACE's counterfactuals in DiCE's format, the query position of each, and its target probability."""
        cf = result.counterfactuals
        qpos = cf.index.get_level_values("query").to_numpy().astype(int)
        target_proba = np.array(result.counterfactuals_with_paths()["probability"].to_numpy(dtype=float))  # writable copy
        out = cf[self._features].reset_index(drop=True)
        for f in self._categorical:
            out[f] = pd.Series([self._from_explainer_cats[f].get(v, str(v)) for v in out[f]], dtype=object)
        return out, qpos, target_proba

    def _constraints(
        self, varying: List[str], permitted_range: Optional[Mapping[str, Sequence[Any]]]
    ) -> Optional[Dict[str, Any]]:
        """DiCE's ``features_to_vary`` and ``permitted_range`` as a LAPACE constraint dict."""
        constraints: Dict[str, Any] = {}
        fixed = [f for f in self._features if f not in varying]
        if fixed:
            constraints["immutable"] = fixed
        ranges = {}
        categories = {}
        for f, allowed in (permitted_range or {}).items():
            if f in fixed:
                continue
            if f in self._continuous:
                ranges[f] = (float(allowed[0]), float(allowed[1]))
            else:
                categories[f] = [self._to_explainer_cats[f][str(c)] for c in allowed]
        if ranges:
            constraints["ranges"] = ranges
        if categories:
            constraints["categories"] = categories
        return constraints or None

    def _round(self, cfs: pd.DataFrame) -> Tuple[pd.DataFrame, np.ndarray]:
        """Continuous values at DiCE's decimal precision of each feature, and the rows that rounding changed."""
        cfs = cfs.copy()
        changed = np.zeros(len(cfs), dtype=bool)
        for f in self._continuous:
            if pd.api.types.is_float_dtype(cfs[f]):
                rounded = cfs[f].round(self._precision.get(f, 0))
                changed |= (rounded != cfs[f]).to_numpy()
                cfs[f] = rounded
        return cfs, changed

    def _respects(self, cfs: pd.DataFrame, queries: pd.DataFrame, constraints: Optional[Dict[str, Any]]) -> np.ndarray:
        """Rows that satisfy ``features_to_vary`` and ``permitted_range`` (a guard on the core's output after rounding)."""
        checked = Constraints.coerce(constraints, self.explainer.schema_)
        if checked is None:
            return np.ones(len(cfs), dtype=bool)
        ok = ~checked.broken(self._explainer_format(queries), self._explainer_format(cfs), self.explainer.schema_)
        bad = int((~ok).sum())
        if bad:
            warnings.warn(
                "%d LAPACE counterfactual(s) broke features_to_vary/permitted_range after rounding to DiCE's "
                "precision and were dropped" % bad,
                RuntimeWarning,
                stacklevel=3,
            )
        return ok

    # ------------------------------------------------------------------ DiCE's post-hoc sparsity
    def _posthoc_sparsity(self, param: float, algorithm: str, limit_steps: int, threshold: float) -> PosthocSparsity:
        """DiCE's post-hoc step as the core refiner: DiCE's limits (``min(quantile, MAD)``) and decimal precisions."""
        quantiles = self.data_interface.get_quantiles_from_training_data(quantile=param)
        mads = self.data_interface.get_valid_mads()
        limits = {f: min(quantiles[f], mads[f]) for f in quantiles}
        return PosthocSparsity(limits, self._precision, threshold=threshold, algorithm=algorithm, limit_steps=limit_steps)

    # ------------------------------------------------------------------ DiCE result objects
    def _labels(self, indices: Sequence[int]) -> List[Any]:
        """Model output labels (``classes_`` of sklearn models) of class indices."""
        return list(self.decode_model_output(pd.Series(np.asarray(indices, dtype=int))))

    def _with_outcome(
        self,
        frame: pd.DataFrame,
        labels: List[Any],
        queries: pd.DataFrame,
        rows: Optional[List[pd.DataFrame]],
        qpos: np.ndarray,
    ) -> pd.DataFrame:
        """``frame`` plus the outcome column, in the dtypes of each row's query (DiCE's ensure_consistent_type)."""
        out = frame.reset_index(drop=True).copy()
        out[self._outcome] = pd.Series(labels, dtype=object) if len(labels) else pd.Series([], dtype=object)
        if len(out) == 0:
            return out
        if rows is None or len({_signature(r) for r in rows}) == 1:  # one set of dtypes: cast all at once
            return self.data_interface.ensure_consistent_type(out, queries.iloc[:1])
        parts = [self.data_interface.ensure_consistent_type(out.iloc[[r]], rows[q]) for r, q in enumerate(qpos)]
        return pd.concat(parts, ignore_index=True)

    def _examples(
        self,
        test_instance_df: pd.DataFrame,
        final_cfs_df: Optional[pd.DataFrame],
        final_cfs_df_sparse: Optional[pd.DataFrame],
        *,
        desired_class: Any,
        posthoc_sparsity_param: Optional[float],
        total_CFs: int,
        failure: Optional[str],
        elapsed: float,
        verbose: bool,
    ) -> CounterfactualExamples:
        found = 0 if final_cfs_df is None else len(final_cfs_df)
        minutes, seconds = divmod(elapsed, 60)
        if found == 0:  # DiCE's wording, then LAPACE's reason
            print(_NO_CF_MESSAGE, "; total time taken: %02d" % minutes, "min %02d" % seconds, "sec")
            if failure:
                print("LAPACE: %s" % failure)
        elif found < total_CFs:
            print(
                "Only %d (required %d) " % (found, total_CFs),
                _FEW_CF_MESSAGE,
                "; total time taken: %02d" % minutes,
                "min %02d" % seconds,
                "sec",
            )
            if failure:
                print("LAPACE: %s" % failure)
        elif verbose:
            print("Diverse Counterfactuals found! total time taken: %02d" % minutes, "min %02d" % seconds, "sec")
        return CounterfactualExamples(
            data_interface=self.data_interface,
            final_cfs_df=final_cfs_df,
            test_instance_df=test_instance_df,
            final_cfs_df_sparse=final_cfs_df_sparse,
            posthoc_sparsity_param=posthoc_sparsity_param,
            desired_class=desired_class,
            desired_range=None,
            model_type=self.model.model_type,
        )


def _rows(frame: pd.DataFrame, rows: slice) -> pd.DataFrame:
    out = frame.iloc[rows]  # a slice: no copy of the batch per query
    out.index = pd.RangeIndex(len(out))
    return out


def _signature(frame: pd.DataFrame) -> Tuple[Tuple[str, str], ...]:
    return tuple((str(c), str(t)) for c, t in frame.dtypes.items())


def _check_strategy(strategy: str) -> str:
    return STRATEGIES.check(strategy)


# ---------------------------------------------------------------------- registration with dice_ml.Dice
_REGISTERED_DEFAULTS: Dict[str, Any] = {}


class RegisteredLapaceDice(LapaceDice):
    """The class ``dice_ml.Dice(d, m, method="lapace", ...)`` builds after :func:`register`.

    It is :class:`LapaceDice` with the keyword defaults given to :func:`register`; keywords passed to
    ``dice_ml.Dice`` win over them.
    """

    def __init__(self, data_interface: Any, model_interface: Any, **kwargs: Any) -> None:
        options = dict(_REGISTERED_DEFAULTS)
        options.update(kwargs)
        super().__init__(data_interface, model_interface, **options)


def register(**defaults: Any) -> None:
    """Make ``dice_ml.Dice(d, m, method="lapace", ...)`` return a LAPACE explainer.

    DiCE 0.12 picks its explainer class in the module function ``dice_ml.dice.decide``; this wraps it once
    (calling ``register`` again does not wrap it twice). Keywords given to ``dice_ml.Dice`` reach
    :class:`LapaceDice` (``explainer=``, ``strategy=``, ``random_state=``, ...).

    Parameters
    ----------
    **defaults
        Defaults for those keywords, so that a DiCE script can switch to LAPACE by its ``method`` name
        alone, e.g. ``register(random_state=0, strategy="last")``. Each call replaces the previous defaults.
    """
    _REGISTERED_DEFAULTS.clear()
    _REGISTERED_DEFAULTS.update(defaults)
    if is_registered():
        return
    original: Callable[..., Any] = dice_ml.dice.decide

    def decide(model_interface: Any, method: Any) -> Any:
        if method == METHOD:
            return RegisteredLapaceDice
        return original(model_interface, method)

    decide.__wrapped__ = original  # type: ignore[attr-defined]
    decide._lapace_plugin = True  # type: ignore[attr-defined]
    dice_ml.dice.decide = decide


def unregister() -> None:
    """Undo :func:`register`: restore DiCE's own ``decide`` and forget the defaults."""
    _REGISTERED_DEFAULTS.clear()
    while is_registered():
        dice_ml.dice.decide = dice_ml.dice.decide.__wrapped__


def is_registered() -> bool:
    """Whether ``method="lapace"`` is currently known to ``dice_ml.Dice``."""
    return bool(getattr(dice_ml.dice.decide, "_lapace_plugin", False))

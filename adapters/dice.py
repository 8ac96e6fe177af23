"""LAPACE as a DiCE explainer (dice-ml 0.12).

A DiCE user changes one word::

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

A script pays the fit once: fit and save the explainer once, then give every run the folder (loading takes well
under a second; the classifier is the DiCE model's own, so the folder holds no model)::

    if not os.path.isdir("lapace-adult"):      # first run only
        dice_ml.Dice(d, m, method="lapace").explainer.save("lapace-adult")
    exp = dice_ml.Dice(d, m, method="lapace", explainer="lapace-adult")

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
- diversity: LAPACE's ``diverse=True`` is this adapter's default (DiCE's users expect ``total_CFs`` plans that
  differ in which features they change, :mod:`lapace_plugin.options`); no plan asks more of the person than another
  (a larger capital gain beside a smaller one is not a second plan), so a query may get fewer than ``total_CFs``
  with the reason printed; ``max_per_feature=`` caps the plans changing one feature; ``max_lof=`` keeps every plan
  typical of the approved rows while reverting (:mod:`lapace_plugin.typical`); ``generate_counterfactuals(...,
  diverse=False)`` returns each latent path's nearest point instead;
- ``strategy`` (``"first"``, ``"robust"`` or ``"last"``, see :class:`lapace_plugin.Lapace`): chosen when the explainer is
  built (``dice_ml.Dice(d, m, method="lapace", strategy="last")``) and overridable per call
  (``generate_counterfactuals(..., strategy="last")``); ``n_steps``, ``path`` (``"corrected"``, the default,
  ``"sparse"`` or the paper's ``"latent"``), ``search`` (``"grid"``, the default, or ``"fast"``) and ``revert``
  (``True``: set unneeded changes of any feature back to the query's value before DiCE's post-hoc sparsity
  step; default ``False``) may also be passed per call, or given at construction as options of the fitted :class:`lapace_plugin.Lapace`;
- keywords of other DiCE methods (``proximity_weight``, ``diversity_weight``, ``sample_size``,
  ``random_seed``, ...) are accepted and ignored, so an existing call keeps working.

Categorical values are strings, as in ``dice_ml.Data``. Counterfactuals are rounded to DiCE's decimal
precision of each continuous feature; those that rounding moves are scored by the model again. Beside DiCE's
arguments, the explainer's schema constrains them: its immutable and monotone features, relations and derived
features (``dice_ml.Dice(d, m, method="lapace", monotone={"age": "increase"}, relations=[...])`` declares them when
the explainer is fitted; a fitted explainer brings its own schema). The schema is inferred from DiCE's training frame
(:meth:`lapace_plugin.FeatureSchema.infer`, DiCE's continuous/categorical split as hints: discrete, point-mass and
ordinal features keep their types); an ordinal feature is a categorical one for DiCE, its levels as strings. DiCE's
post-hoc sparsity step never moves a derived feature: it is computed again, and a sparser row that then breaks a
constraint or is no longer valid keeps its LAPACE values. A query already predicted as the desired class gets no
counterfactual (LAPACE's reason is printed under DiCE's message).
"""

from __future__ import annotations

import os
import sys
import timeit
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from lapace_plugin import FeatureSchema, Lapace
from lapace_plugin.errors import InvalidParameterError
from lapace_plugin.params import per_call_names
from lapace_plugin.rules import assigned_to
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

SCHEMA_OPTIONS = ("immutable", "monotone", "ordinal", "derived", "relations")
"""Keywords of ``LapaceDice`` (and ``dice_ml.Dice(..., method="lapace")``) passed to ``FeatureSchema.infer``."""

from .dice_results import DiceResults, _rows  # noqa: E402
from .dice_translation import DiceTranslation  # noqa: E402


class LapaceDice(ExplainerBase, DiceTranslation, DiceResults):  # ExplainerBase first: DiCE reassigns __class__
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
        Default LAPACE selection strategy, ``"first"`` (proximal), ``"robust"`` (the first point with target
        probability at least ``min_probability``) or ``"last"`` (the decoded centroid);
        ``generate_counterfactuals(..., strategy=...)`` overrides it per call.
    **lapace_options
        Keyword arguments of ``Lapace(...)`` used when fitting (``random_state``, ``epochs``,
        ``components_per_class``, ``verbose``, ...). ``schema`` defaults to one inferred from ``dice_ml.Data``'s
        training frame, with the keywords of :data:`SCHEMA_OPTIONS` (``immutable``, ``monotone``, ``ordinal``,
        ``derived``, ``relations``) passed to :meth:`lapace_plugin.FeatureSchema.infer`.

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
            declared = {k: options.pop(k) for k in SCHEMA_OPTIONS if k in options}
            X = self._training_frame()
            schema = options.pop("schema", None) or self._schema_from_data(X, declared)
            announce = options.pop("verbose", True)
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
        # DiCE works with string categories (an ordinal feature's levels too); map them to the explainer's and back.
        cats = dict(schema.categorical, **schema.ordinal)
        self._to_explainer_cats = {f: {str(c): c for c in cats[f]} for f in self._categorical}
        self._from_explainer_cats = {f: {c: str(c) for c in cats[f]} for f in self._categorical}

    # ------------------------------------------------------------------ fitting helpers
    def _predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The DiCE model's class probabilities on raw DiCE-format rows, always ``(n, n_classes)``."""
        p = np.asarray(self.predict_fn(X), dtype=float)
        if p.ndim == 1:
            p = p[:, None]
        if p.shape[1] == 1:  # one sigmoid output (torch/keras binary models)
            p = np.column_stack([1.0 - p[:, 0], p[:, 0]])
        return p

    def _schema_from_data(self, X: pd.DataFrame, declared: Mapping[str, Any]) -> FeatureSchema:
        """:meth:`FeatureSchema.infer` on DiCE's training frame, DiCE's categorical features as the categorical ones
        (``declared["ordinal"]`` ones ordinal, their levels as strings) and the other declarations passed on."""
        declared = dict(declared)
        declared["ordinal"] = {f: [str(c) for c in levels] for f, levels in (declared.get("ordinal") or {}).items()}
        unknown = [f for f in declared["ordinal"] if f not in self._categorical]
        if unknown:
            raise ValueError("ordinal features %s must be categorical features of dice_ml.Data; categorical: %s"
                             % (unknown, self._categorical))
        return FeatureSchema.infer(X, categorical=self._categorical, **declared)

    def _training_frame(self) -> pd.DataFrame:
        df = self.data_interface.data_df
        X = pd.DataFrame(index=df.index)
        for f in self._features:
            X[f] = df[f].astype(str).astype(object) if f in self._categorical else df[f]
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
        (``"first"``/``"robust"``/``"last"``, default the one given at construction), every per-call parameter of
        :class:`lapace_plugin.Lapace` (:func:`lapace_plugin.params.per_call_names`: ``n_steps``, ``path``, ``search``,
        ``revert``, ``diverse`` (default ``True`` here), ``min_probability``, ``max_points``, ``min_pair_count``,
        ``distinct``, ``max_lof``...; default the explainer's) and
        ``limit_steps_ls`` (DiCE's cap on post-hoc sparsity steps, default 10000).

        Returns
        -------
        CounterfactualExplanations
            One ``CounterfactualExamples`` per query, in query order; a query without a counterfactual has
            ``final_cfs_df`` ``None`` and DiCE's "No Counterfactuals found" message is printed.
        """
        strategy = _check_strategy(kwargs.pop("strategy", self.strategy))
        overrides = {name: kwargs.pop(name) for name in per_call_names() if name in kwargs}
        overrides.setdefault("diverse", True)  # DiCE's promise: total_CFs plans that differ (module docstring)
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
            target_proba[changed] = np.where(assigned_to(rescored, rows), rescored[np.arange(len(rows)), rows], -np.inf)
        keep = target_proba >= stopping_threshold  # LAPACE's counterfactuals are predicted as the target class
        keep &= self._respects(cfs, queries.iloc[qpos].reset_index(drop=True), constraints)
        keep &= ~pd.concat([pd.Series(qpos, name="__query"), cfs], axis=1).duplicated().to_numpy()
        cfs, qpos = cfs[keep].reset_index(drop=True), qpos[keep]
        first = pd.Series(qpos).groupby(qpos).cumcount().to_numpy() < total_CFs
        cfs, qpos = cfs[first].reset_index(drop=True), qpos[first]

        sparse = cfs
        if posthoc_sparsity_param is not None and posthoc_sparsity_param > 0 and self._public and len(cfs):
            refiner = self._posthoc_sparsity(posthoc_sparsity_param, posthoc_sparsity_algorithm, limit_steps_ls, stopping_threshold)
            factuals = queries.iloc[qpos].reset_index(drop=True)
            sparse = refiner.apply(
                cfs,
                factuals,
                targets[qpos],
                self._predict_proba,
                features=[f for f in features_to_vary if f not in self.explainer.schema_.derived],
                ranges={f: r for f, r in (permitted_range or {}).items() if f in self._continuous},
            )
            sparse = self._consistent(sparse, cfs, factuals, targets[qpos], constraints, stopping_threshold)
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

def _check_strategy(strategy: str) -> str:
    return STRATEGIES.check(strategy)


# registration with dice_ml.Dice (a subclass of LapaceDice, so imported once it exists)
from .dice_registration import RegisteredLapaceDice, is_registered, register, unregister  # noqa: E402

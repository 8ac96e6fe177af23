"""``Lapace``: fit an L-GMVAE on a classifier's predictions and explain queries with latent paths."""

from __future__ import annotations

import inspect
import time
import warnings
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch

from . import params as parameters
from . import persistence
from .batch import QueryBatch
from .centroids import settle_centroids
from .classifier import checked_proba, sample_members
from .consistency import ConsistencyCheck
from .constraints import Constraints, EncodedConstraints
from .contracts import Refiner, Strategy
from .encoding import TabularEncoder
from .errors import InvalidParameterError, NotFittedError
from .fitted import FittedState, expose
from .global_recourse import GlobalExplanation, explain_global
from .latent import LatentSpace
from .lgmvae import LGMVAE, train_lgmvae, validation_split
from .paths import PATH_KINDS, path_frame
from .refine import refiners_for
from .result import Explanation
from .rules import assigned_to, check_unique_index
from .schema import FeatureSchema
from .search import SEARCHES
from .selection import Selection, select
from .strategies import STRATEGIES
from .support import PairSupport
from .targets import resolve_targets
from .training import fit_schedule
from .training import progress as _progress
from .training import torch_threads as _torch_threads

PredictProba = Callable[[pd.DataFrame], Any]


RESULT_COLUMNS = ("query", "order", "component", "step", "tau", "distance", "valid", "probability", "repaired", "reverted", "rank", "note")
"""Columns of ``Explanation.to_frame()`` and ``paths`` beside the features: no feature may take these names."""


_CallFields = NamedTuple(  # type: ignore[misc]
    "_CallFields", [("strategy", str), ("n_counterfactuals", int)] + [(name, Any) for name in parameters.per_call_names()]
)


class CallSettings(_CallFields):
    """The settings of one ``explain`` call, after defaults and validation: ``strategy``, ``n_counterfactuals`` and
    every per-call parameter of :data:`lapace_plugin.params.PARAMETERS` (a new one there is a new field here)."""

    __slots__ = ()

    def chunks(self, n: int, m: int) -> List[np.ndarray]:
        """Query positions of each chunk, so that a chunk's path grid (queries x m paths x steps) stays within
        ``max_points``."""
        per_query = m * (self.n_steps + 1)
        if per_query > self.max_points:
            raise InvalidParameterError(
                "one query's path grid has %d points (components_per_class=%d x (n_steps=%d + 1)), more than "
                "max_points=%d: raise max_points or lower n_steps" % (per_query, m, self.n_steps, self.max_points)
            )
        size = self.max_points // per_query
        return [np.arange(start, min(start + size, n)) for start in range(0, n, size)]

    def meta(self) -> Dict[str, Any]:
        return dict(self._asdict())


_DOC = """LAPACE counterfactual explainer for any classifier with ``predict_proba``.

    An estimator in scikit-learn's style: the constructor only stores its parameters (checked against
    :data:`lapace_plugin.params.PARAMETERS`), ``fit`` trains the L-GMVAE on the classifier's predictions and
    ``explain`` walks latent paths from each query to its target class's centroids.

    Parameters
    ----------
{parameters}

    Attributes
    ----------
    schema_ : FeatureSchema
        The schema used (``schema``, or inferred from the training frame).
    encoder_ : TabularEncoder
        Encodes raw rows to ``D`` model columns and decodes any encoded row to a valid raw one.
    model_ : LGMVAE
        The trained network.
    classes_ : list
        Labels of the ``L`` probability columns; ``n_classes_`` is ``L``.
    predict_proba_ : callable
        The explained classifier.
    device_ : torch.device
        Device of ``model_``.
    history_ : list of float
        Validation loss per training epoch.
    centroid_latents_ : ndarray of shape (K, latent_dim)
        Latent centroids ``mu_c`` of the ``K = L * components_per_class`` components (component ``k`` belongs to
        class ``k // components_per_class``).
    centroid_points_ : ndarray of shape (K, D)
        Snapped decoded centroids; ``centroids_`` is the same as a raw DataFrame indexed by component name
        (``"label/index"``).
    centroid_proba_ : ndarray of shape (K, L)
        The classifier's probabilities of the decoded centroids.
    centroid_valid_ : ndarray of shape (K,)
        Whether each decoded centroid is assigned to its own class (invalid ones are never targets).
    centroid_class_ : ndarray of shape (K,)
        Class index of each component.
    centroid_validity_, centroid_validity_initial_ : float
        Share of valid decoded centroids after and before settling (:mod:`lapace_plugin.centroids`).
    centroids_moved_ : list of str
        Components whose centroid settling moved.
    distinct_centroids_ : dict
        Distinct valid decoded centroids per class label.
    members_ : Members or None
        Up to ``neighbours`` training rows per component (encoded, with their latent means): the ends of
        ``path="neighbour"``.
    support_ : PairSupport
        How many training rows hold each pair of categorical, ordinal and point-mass states (the plausibility
        filter, ``min_pair_count``).
    fit_time_ : float
        Seconds ``fit`` took.
    state_ : FittedState
        Everything the fit learned in one object (:mod:`lapace_plugin.fitted`); the attributes above read from it.
    """


_EXPLAIN_DOC = """Counterfactuals for every row of ``X`` along latent paths to the target class's centroids.

        Parameters
        ----------
        X
            Raw queries, shape ``(n, features)``; the index labels identify them and must be unique.
        target_class
            Class index (column of ``predict_proba``), or one per query (a sequence, or a Series or dict keyed by the
            queries' labels). ``None``: for binary models the class each query is not predicted as; required for
            multiclass models.
        strategy
            ``"first"``: the first valid point of each path (proximal); ``"last"``: the decoded centroid (robust, the
            same for every input); ``"robust"``: the first reaching ``min_probability``. See :mod:`lapace_plugin.strategies`.
        n_counterfactuals
            Counterfactuals per query, at most ``components_per_class``; the nearest ones are kept.
        constraints
            ``None``, ``"schema"`` (the schema's immutable and monotone features), a ``Constraints`` or an
            equivalent dict.
{per_call}
            (Per-call parameters, keywords only; default ``None``: the constructor's value. ``last`` ignores
            ``path``, ``search``, ``revert`` and ``diverse``.)
        """


def _select_chunk(space: LatentSpace, part: QueryBatch, chosen: Strategy, refiners: List[Refiner], settings: CallSettings) -> Selection:
    """One chunk's candidates from the strategy, refined, then selected (:func:`lapace_plugin.selection.select`)."""
    found = chosen.candidates(space, part)
    for refiner in refiners:
        found = refiner.refine(space, part, found)
    # "last" keeps every distinct centroid, so that its options are the same for every query
    distinct = settings.distinct and settings.strategy != "last"
    return select(space, part, found, settings.n_counterfactuals, settings.strategy, distinct, getattr(chosen, "walk", None))


@expose
class Lapace:
    __doc__ = _DOC.format(parameters=parameters.numpydoc())

    def __init__(self, schema: Optional[FeatureSchema] = None, **params: Any) -> None:
        values = parameters.defaults()
        values.update(params, schema=schema)
        for name, value in parameters.check_params(values).items():
            setattr(self, name, value)

    __init__.__signature__ = parameters.signature()  # type: ignore[attr-defined]

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """Constructor parameters, as in scikit-learn."""
        return {name: getattr(self, name) for name in parameters.PARAMETERS}

    def set_params(self, **params: Any) -> "Lapace":
        """Set constructor parameters (checked), as in scikit-learn; returns ``self``."""
        for name, value in parameters.check_params(params).items():
            setattr(self, name, value)
        return self

    # ------------------------------------------------------------------ fitting
    def fit(self, X: pd.DataFrame, predict_proba: PredictProba, classes: Optional[Sequence[Any]] = None) -> "Lapace":
        """Train the L-GMVAE on ``X`` labelled by the classifier's own predictions.

        Parameters
        ----------
        X
            Raw training features (the classifier's input format).
        predict_proba
            Callable mapping a raw DataFrame to class probabilities ``(n, L)``.
        classes
            Labels of the probability columns (e.g. ``model.classes_``); default ``0..L-1``.
        """
        if not callable(predict_proba):
            raise InvalidParameterError("predict_proba must be a callable DataFrame -> (n, n_classes) probabilities")
        parameters.check_params(self.get_params())
        start = time.time()
        schema = self.schema if self.schema is not None else FeatureSchema.infer(X)
        reserved = [f for f in schema.features if f in RESULT_COLUMNS]
        if reserved:
            raise ValueError(
                "feature name(s) %s are taken by LAPACE's result columns (%s); rename them" % (reserved, ", ".join(RESULT_COLUMNS))
            )
        X = schema.validate(X, name="training data")
        encoder = TabularEncoder(schema, typed=self.decoder == "typed")
        probs = checked_proba(predict_proba, X, finite="training data")
        classes = [_plain(c) for c in classes] if classes is not None else list(range(probs.shape[1]))
        if len(classes) != probs.shape[1]:
            raise ValueError("classes has %d labels but predict_proba returns %d columns" % (len(classes), probs.shape[1]))
        labels = probs.argmax(1)
        x = encoder.encode(X)
        seed = int(self.random_state) if self.random_state is not None else int(np.random.randint(2**31 - 1))
        n_train = len(x)
        batch, epochs = fit_schedule(n_train, self.batch_size, self.epochs)
        with torch.random.fork_rng(devices=[]), _torch_threads(self.n_threads):
            torch.manual_seed(seed)
            state = FittedState(
                schema, encoder, classes, self._build_model(encoder, len(classes)), torch.device(self.device),
                PairSupport.fit(schema, X, masses=encoder.typed),  # the paper's encoding has no point masses
            )
            with _progress(epochs, self.verbose) as bar:
                state.history = train_lgmvae(
                    state.model, x, labels, epochs=epochs, batch_size=batch, learning_rate=self.learning_rate,
                    continuous_weight=self.continuous_weight, kl_weight=self.kl_weight, seed=seed,
                    device=state.device, progress=bar,
                )
            held = validation_split(n_train, seed)[0]  # the rows training held out set the consistency thresholds
            state.consistency = ConsistencyCheck.fit(state.model, x[held], labels[held], self.continuous_weight, self.kl_weight, state.device)
            self.state_, self.predict_proba_ = state, predict_proba
            self._settle_centroids(x, labels)  # encodes every training row: torch work of the fit, on n_threads too
        state.fit_time = time.time() - start
        return self

    def _build_model(self, encoder: TabularEncoder, n_classes: int) -> LGMVAE:
        """An untrained L-GMVAE of this explainer's sizes, on its device."""
        model = LGMVAE(
            encoder.layout, n_classes, int(self.components_per_class),
            latent_dim=int(self.latent_dim), hidden=tuple(int(h) for h in self.hidden),
        )
        return model.to(torch.device(self.device))

    def _settle_centroids(self, x: np.ndarray, labels: np.ndarray) -> None:
        """Make every decoded centroid valid (consistent too, when checked: ``last`` returns them) and distinct."""
        space = self._space(settled=False, consistency=self.consistency)
        z_train, comp_train = space.latent_means(x, labels)
        settled = settle_centroids(space.mu.copy(), z_train, comp_train, labels, self.model_.m, space.decode_and_classify)
        with torch.no_grad():
            self.model_.prior_mean.copy_(torch.as_tensor(settled.latents, device=self.device_))
        state = self.state_
        state.set_centroids(settled.points, settled.proba, settled.valid)
        state.members = sample_members(x, z_train, comp_train, self.model_.n_components, self.neighbours, self.random_state)
        state.centroid_validity_initial = settled.initial_validity
        state.centroids_moved = [space.names[k] for k in settled.moved]
        invalid = [space.names[k] for k in np.flatnonzero(~settled.valid)]
        if invalid:
            warnings.warn(
                "centroid(s) %s decode to rows the classifier does not assign to their class; they are never "
                "used as counterfactual targets (centroid validity %.0f%%)" % (invalid, 100 * self.centroid_validity_),
                stacklevel=3,
            )

    def _space(self, settled: bool = True, min_pair_count: Optional[int] = None, consistency: bool = False) -> LatentSpace:
        """The fit as a :class:`~lapace_plugin.latent.LatentSpace` (with its decoded centroids once settled)."""
        self.state_.projections.trim()
        return LatentSpace(self.state_, self._predict, self.min_pair_count if min_pair_count is None else min_pair_count, settled, consistency)

    def _fitted(self) -> FittedState:
        """The fit, or ``NotFittedError`` (an ``AttributeError``) before one."""
        if "state_" not in self.__dict__:
            raise NotFittedError("this Lapace is not fitted yet: call fit(X, predict_proba=...) or Lapace.load(path) first")
        return self.state_

    # ------------------------------------------------------------------ explaining
    def explain(
        self,
        X: pd.DataFrame,
        target_class: Union[None, int, Sequence[int]] = None,
        strategy: str = "first",
        n_counterfactuals: Optional[int] = None,
        constraints: Union[None, str, Mapping[str, Any], Constraints] = None,
        **per_call: Any,
    ) -> Explanation:
        self._check_fitted()
        settings = self._call_settings(strategy, n_counterfactuals, per_call)
        batch = self._query_batch(X, target_class, constraints)
        space = self._space(min_pair_count=settings.min_pair_count, consistency=settings.consistency)
        kind = PATH_KINDS.build(settings.path, margin=self.sparse_margin, tolerance=self.sparse_tolerance)
        chosen = STRATEGIES.build(settings.strategy, kind=kind, search=SEARCHES.build(settings.search), n_steps=settings.n_steps,
                                  min_probability=settings.min_probability)
        refiners = refiners_for(settings, chosen)
        chunks = settings.chunks(batch.n, batch.m)
        parts = [_select_chunk(space, batch.take(rows), chosen, refiners, settings) for rows in chunks]
        selections = pd.concat([part.frame for part in parts], ignore_index=True)
        selections["order"] = np.repeat(np.arange(batch.n), batch.m)
        return Explanation(
            queries=batch.raw,
            selections=selections,
            predicted_class=batch.predicted,
            target_class=batch.target,
            classes=self.classes_,
            failures={k: v for part in parts for k, v in part.failures.items()},
            shortfalls={k: v for part in parts for k, v in part.shortfalls.items()},
            strategy=settings.strategy,
            paths=lambda: pd.concat([path_frame(space, batch.take(rows), kind, settings.n_steps, chosen.min_probability)
                                     for rows in chunks], ignore_index=True),
            restore_dtypes=self.encoder_.restore_dtypes,
            schema=self.schema_,
            meta=dict(settings.meta(), constraints=None if batch.constraints is None else batch.constraints.to_dict()),
        )

    explain.__signature__ = parameters.call_signature(  # type: ignore[attr-defined]
        list(inspect.signature(explain).parameters.values())[:-1]
    )
    explain.__doc__ = _EXPLAIN_DOC.format(per_call=parameters.numpydoc(indent="        ", per_call=True))

    def _call_settings(self, strategy: str, n_counterfactuals: Optional[int], per_call: Dict[str, Any]) -> CallSettings:
        """This call's settings: the constructor's, overridden where given, all checked."""
        STRATEGIES.check(strategy)
        values = {name: getattr(self, name) for name in parameters.per_call_names()}
        values.update(parameters.check_call(per_call))
        m = self.model_.m
        k = m if n_counterfactuals is None else parameters.Integer(1, m).check("n_counterfactuals", n_counterfactuals)
        return CallSettings(strategy=strategy, n_counterfactuals=k, **values)

    def _query_batch(self, X: pd.DataFrame, target_class: Any, constraints: Any) -> QueryBatch:
        """Validate and encode the queries, resolve their targets and the call's constraints."""
        X = self.schema_.validate(X)
        check_unique_index(X.index, "queries")
        cons = Constraints.coerce(constraints, self.schema_)
        predicted = self._predict(X, finite="the queries").argmax(1)
        target = resolve_targets(target_class, predicted, self.classes_, X.index)
        comps = target[:, None] * self.model_.m + np.arange(self.model_.m)
        return QueryBatch(
            raw=X,
            encoded=self.encoder_.encode(X),
            predicted=predicted,
            target=target,
            components=comps,
            usable=self.centroid_valid_[comps] & (target != predicted)[:, None],
            constraints=cons,
            compiled=None if cons is None else EncodedConstraints(cons, self.encoder_),
        )

    def explain_global(self, X: pd.DataFrame, target_class: Any = None, **options: Any) -> GlobalExplanation:
        """A few actions that give most refused rows of ``X`` recourse: :func:`lapace_plugin.global_recourse.explain_global`."""
        return explain_global(self, X, target_class, **options)

    # ------------------------------------------------------------------ generating
    def sample(self, n: int, target_class: int, random_state: Optional[int] = None, valid_only: bool = True) -> pd.DataFrame:
        """Raw rows decoded from class ``target_class``'s mixture prior ``p(z | y) = (1/m) sum_c N(mu_c, sigma_c^2)``.

        Parameters
        ----------
        n
            Rows wanted, at most ``lapace_plugin.params.MAX_SAMPLE`` (checked before anything is allocated).
        target_class
            Class index (column of ``predict_proba``).
        random_state
            Seed of the draws (default: the constructor's ``random_state``).
        valid_only
            Keep only rows the classifier assigns to ``target_class`` that hold no rare pair of states (the
            plausibility filter) and pass the consistency check (when ``consistency``); draws continue until ``n``
            are kept, and a ``RuntimeError`` names the acceptance rate when 50 rounds are not enough.

        Returns
        -------
        pandas.DataFrame
            ``n`` rows in the schema's raw format.
        """
        self._check_fitted()
        n = parameters.Integer(1, parameters.MAX_SAMPLE).check("n", n)
        target = parameters.Integer(0, self.n_classes_ - 1).check("target_class", target_class)
        seed = self.random_state if random_state is None else random_state
        rng = np.random.RandomState(0 if seed is None else seed)
        space, m = self._space(consistency=self.consistency), self.model_.m
        mu = space.mu[target * m : (target + 1) * m]
        scale = np.exp(0.5 * self.model_.prior_logvar.detach().cpu().numpy()[target * m : (target + 1) * m])
        kept: List[np.ndarray] = []
        drawn = 0
        for _ in range(50):
            c = rng.randint(m, size=max(n, 256))
            z = (mu[c] + rng.standard_normal((len(c), mu.shape[1])) * scale[c]).astype(np.float32)
            points, proba, plausible = space.decode_and_classify(z)
            drawn += len(z)
            kept.append(points[assigned_to(proba, target) & plausible] if valid_only else points)
            if sum(len(k) for k in kept) >= n:
                return self.encoder_.decode(np.concatenate(kept)[:n])
        got = sum(len(k) for k in kept)
        raise RuntimeError(
            "only %d of %d decoded draws from class %r's prior are assigned to it and plausible (%.1f%%); ask for fewer "
            "rows or pass valid_only=False" % (got, drawn, self.classes_[target], 100.0 * got / drawn)
        )

    # ------------------------------------------------------------------ helpers
    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Latent points ``z_x (n, latent_dim)``: the encoder's mean at each row's most responsible component."""
        self._check_fitted()
        X = self.schema_.validate(X)
        return self._space().latent_means(self.encoder_.encode(X), self._predict(X).argmax(1))[0]

    @property
    def centroid_latents_(self) -> np.ndarray:
        """Latent centroids ``mu_c``, shape ``(n_classes * components_per_class, latent_dim)``."""
        self._check_fitted()
        return self.model_.prior_mean.detach().cpu().numpy().copy()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The explained classifier's probabilities for raw rows (validated against the schema)."""
        self._check_fitted()
        return self._predict(self.schema_.validate(X))

    def _predict(self, X: pd.DataFrame, finite: Optional[str] = None) -> np.ndarray:
        """The classifier's probabilities ``(n, L)``, checked for shape; with ``finite`` (what ``X`` is, for the
        message) non-finite values are an error, else such rows keep them (and are never valid counterfactuals)."""
        if getattr(self, "predict_proba_", None) is None:
            raise NotFittedError("this Lapace has no classifier: pass predict_proba to Lapace.load(path, predict_proba)")
        return checked_proba(self.predict_proba_, X, getattr(self, "n_classes_", None), finite)

    def _check_fitted(self) -> None:
        self._fitted()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str) -> None:
        """Write the fitted explainer to directory ``path``: weights as plain arrays and JSON metadata."""
        self._check_fitted()
        persistence.save(self, path)

    @classmethod
    def load(cls, path: str, predict_proba: Optional[PredictProba] = None, device: Union[str, torch.device] = "cpu") -> "Lapace":
        """Load an explainer written by ``save``; never unpickles. Pass the classifier's ``predict_proba``."""
        return persistence.load(cls, path, predict_proba, device)

    def __repr__(self) -> str:
        state = "fitted, centroid validity %.0f%%" % (100 * self.centroid_validity_) if hasattr(self, "model_") else "not fitted"
        return "Lapace(components_per_class=%d, latent_dim=%d, %s)" % (self.components_per_class, self.latent_dim, state)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


__all__: List[str] = ["Lapace", "NotFittedError", "PredictProba"]

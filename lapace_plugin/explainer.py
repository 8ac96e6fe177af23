"""``Lapace``: fit an L-GMVAE on a classifier's predictions and explain queries with latent paths."""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch

from . import params as parameters
from . import persistence
from .batch import QueryBatch
from .centroids import settle_centroids
from .constraints import Constraints, EncodedConstraints
from .encoding import TabularEncoder
from .errors import InvalidParameterError, NotFittedError
from .latent import Centroids, LatentSpace, Members
from .lgmvae import LGMVAE, train_lgmvae
from .paths import PATH_KINDS, path_frame
from .refine import Revert
from .result import Explanation
from .rules import assigned_to, check_unique_index
from .schema import FeatureSchema
from .selection import select
from .strategies import STRATEGIES
from .support import PairSupport
from .targets import resolve_targets

PredictProba = Callable[[pd.DataFrame], Any]


RESULT_COLUMNS = ("query", "order", "component", "step", "tau", "valid", "probability", "repaired", "reverted", "rank", "note")
"""Columns of ``Explanation.to_frame()`` and ``paths`` beside the features: no feature may take these names."""


class CallSettings(NamedTuple):
    """The settings of one ``explain`` call, after defaults and validation."""

    strategy: str
    n_counterfactuals: int
    n_steps: int
    path: str
    search: str
    revert: bool
    max_points: int
    min_pair_count: int
    distinct: bool

    def chunk(self, m: int) -> int:
        """Queries per chunk, so that a chunk's path grid (queries x m paths x steps) stays within ``max_points``."""
        per_query = m * (self.n_steps + 1)
        if per_query > self.max_points:
            raise InvalidParameterError(
                "one query's path grid has %d points (components_per_class=%d x (n_steps=%d + 1)), more than "
                "max_points=%d: raise max_points or lower n_steps" % (per_query, m, self.n_steps, self.max_points)
            )
        return self.max_points // per_query

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
    """


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
        self.schema_ = schema
        self.encoder_ = TabularEncoder(schema, typed=self.decoder == "typed")
        self.support_ = PairSupport.fit(schema, X, masses=self.encoder_.typed)  # the paper's encoding has no point masses
        self.predict_proba_ = predict_proba
        self.device_ = torch.device(self.device)
        probs = self._predict(X, finite="training data")
        self.n_classes_ = probs.shape[1]
        self.classes_ = [_plain(c) for c in classes] if classes is not None else list(range(self.n_classes_))
        if len(self.classes_) != self.n_classes_:
            raise ValueError("classes has %d labels but predict_proba returns %d columns" % (len(self.classes_), self.n_classes_))
        labels = probs.argmax(1)
        x = self.encoder_.encode(X)
        seed = int(self.random_state) if self.random_state is not None else int(np.random.randint(2**31 - 1))
        n_train = len(x)
        batch = int(min(self.batch_size, max(32, n_train // 10)))
        epochs = self.epochs if self.epochs is not None else int(np.clip(np.ceil(2000.0 / np.ceil(n_train / batch)), 10, 400))
        with torch.random.fork_rng(devices=[]), _torch_threads(self.n_threads):
            torch.manual_seed(seed)
            self.model_ = self._build_model()
            with _progress(epochs, self.verbose) as bar:
                self.history_ = train_lgmvae(
                    self.model_, x, labels, epochs=epochs, batch_size=batch, learning_rate=self.learning_rate,
                    continuous_weight=self.continuous_weight, kl_weight=self.kl_weight, seed=seed,
                    device=self.device_, progress=bar,
                )
        self._settle_centroids(x, labels)
        self.fit_time_ = time.time() - start
        return self

    def _build_model(self) -> LGMVAE:
        model = LGMVAE(
            self.encoder_.layout, self.n_classes_, int(self.components_per_class),
            latent_dim=int(self.latent_dim), hidden=tuple(int(h) for h in self.hidden),
        )
        return model.to(self.device_)

    def _settle_centroids(self, x: np.ndarray, labels: np.ndarray) -> None:
        """Make every decoded centroid valid and distinct where possible (see ``centroids.settle_centroids``)."""
        space = self._space(settled=False)
        z_train, comp_train = space.latent_means(x, labels)
        settled = settle_centroids(space.mu.copy(), z_train, comp_train, labels, self.model_.m, space.decode_and_classify)
        with torch.no_grad():
            self.model_.prior_mean.copy_(torch.as_tensor(settled.latents, device=self.device_))
        self._set_centroids(settled.points, settled.proba, settled.valid)
        self.members_ = self._members(x, z_train, comp_train)
        self.centroid_validity_initial_ = settled.initial_validity
        self.centroids_moved_ = [space.names[k] for k in settled.moved]
        invalid = [space.names[k] for k in np.flatnonzero(~settled.valid)]
        if invalid:
            warnings.warn(
                "centroid(s) %s decode to rows the classifier does not assign to their class; they are never "
                "used as counterfactual targets (centroid validity %.0f%%)" % (invalid, 100 * self.centroid_validity_),
                stacklevel=3,
            )

    def _members(self, x: np.ndarray, z: np.ndarray, component: np.ndarray) -> Optional[Members]:
        """Up to ``neighbours`` distinct training rows per component (a seeded sample), with their latent means."""
        if not self.neighbours:
            return None
        rng = np.random.RandomState(0 if self.random_state is None else self.random_state)
        keep = []
        for k in range(self.model_.n_components):
            rows = np.flatnonzero(component == k)
            rows = rows[np.sort(np.unique(x[rows], axis=0, return_index=True)[1])]
            if len(rows) > self.neighbours:
                rows = np.sort(rng.choice(rows, self.neighbours, replace=False))
            keep.append(rows)
        rows = np.concatenate(keep)
        return Members(x[rows], z[rows].astype(np.float32), component[rows])

    def _set_centroids(self, points: np.ndarray, proba: np.ndarray, valid: np.ndarray) -> None:
        """Store the decoded centroids and what derives from them."""
        names = self._space(settled=False).names
        self.centroid_points_ = points
        self.centroid_proba_ = proba
        self.centroid_valid_ = valid
        self.centroid_class_ = np.arange(len(points)) // self.model_.m
        self.centroid_validity_ = float(valid.mean())
        self.centroids_ = self.encoder_.decode(points, index=pd.Index(names, name="component"))
        self.distinct_centroids_ = {
            self.classes_[c]: int(len(np.unique(points[(self.centroid_class_ == c) & valid], axis=0)))
            for c in range(self.n_classes_)
        }
        self._projected_centroids: Dict[Any, Any] = {}

    def _space(self, settled: bool = True, min_pair_count: Optional[int] = None) -> LatentSpace:
        """The fitted model as a :class:`~lapace_plugin.latent.LatentSpace` (with its decoded centroids once settled)."""
        centroids = None
        if settled:
            centroids = Centroids(self.centroid_points_, self.centroid_proba_, self.centroid_valid_, self.centroids_)
        return LatentSpace(
            self.model_, self.encoder_, self.device_, self._predict, centroids, self.classes_,
            getattr(self, "_projected_centroids", None), self.support_,
            self.min_pair_count if min_pair_count is None else min_pair_count, getattr(self, "members_", None),
        )

    # ------------------------------------------------------------------ explaining
    def explain(
        self,
        X: pd.DataFrame,
        target_class: Union[None, int, Sequence[int]] = None,
        strategy: str = "first",
        n_counterfactuals: Optional[int] = None,
        constraints: Union[None, str, Mapping[str, Any], Constraints] = None,
        n_steps: Optional[int] = None,
        path: Optional[str] = None,
        search: Optional[str] = None,
        revert: Optional[bool] = None,
        max_points: Optional[int] = None,
        min_pair_count: Optional[int] = None,
        distinct: Optional[bool] = None,
    ) -> Explanation:
        """Counterfactuals for every row of ``X`` along latent paths to the target class's centroids.

        Parameters
        ----------
        X
            Raw queries, shape ``(n, features)``.
        target_class
            Class index (column of ``predict_proba``), or one per query. ``None``: for binary models the
            class each query is not predicted as; required for multiclass models.
        strategy
            ``"first"``: the first valid point of each path (proximal); ``"last"``: the decoded centroid
            (identical for every input, robust). See :mod:`lapace_plugin.strategies`.
        n_counterfactuals
            Counterfactuals per query, at most ``components_per_class``; the nearest ones are kept.
        constraints
            ``None``, ``"schema"`` (the schema's immutable and monotone features), a ``Constraints`` or an
            equivalent dict.
        n_steps, path, search, revert, max_points, min_pair_count, distinct
            This call's path resolution, path kind, search, reversion, memory bound, plausibility filter and
            selection of distinct rows (default: the constructor's; see :data:`lapace_plugin.params.PARAMETERS`);
            ``last`` ignores ``path``, ``search`` and ``revert``.
        """
        self._check_fitted()
        settings = self._call_settings(
            strategy, n_counterfactuals, n_steps=n_steps, path=path, search=search, revert=revert, max_points=max_points,
            min_pair_count=min_pair_count, distinct=distinct,
        )
        batch = self._query_batch(X, target_class, constraints)
        space = self._space(min_pair_count=settings.min_pair_count)
        chosen = STRATEGIES.build(
            settings.strategy, path=settings.path, search=settings.search, n_steps=settings.n_steps,
            margin=self.sparse_margin, tolerance=self.sparse_tolerance,
        )
        parts, failures, shortfalls = [], {}, {}
        size = settings.chunk(batch.m)
        chunks = [np.arange(start, min(start + size, batch.n)) for start in range(0, batch.n, size)]
        for rows in chunks:
            part = batch.take(rows)
            found = chosen.candidates(space, part)
            if settings.revert and chosen.refinable:
                found = Revert().refine(space, part, found)
            # "last" keeps every distinct centroid, so that its options are the same for every query
            distinct = settings.distinct and settings.strategy != "last"
            chosen_rows = select(space, part, found, settings.n_counterfactuals, settings.strategy, distinct)
            parts.append(chosen_rows.frame)
            failures.update(chosen_rows.failures)
            shortfalls.update(chosen_rows.shortfalls)
        selections = pd.concat(parts, ignore_index=True)
        selections["order"] = np.repeat(np.arange(batch.n), batch.m)
        kind = PATH_KINDS.build(settings.path, margin=self.sparse_margin, tolerance=self.sparse_tolerance)
        return Explanation(
            queries=batch.raw,
            selections=selections,
            predicted_class=batch.predicted,
            target_class=batch.target,
            classes=self.classes_,
            failures=failures,
            shortfalls=shortfalls,
            strategy=settings.strategy,
            paths=lambda: pd.concat(
                [path_frame(space, batch.take(rows), kind, settings.n_steps) for rows in chunks], ignore_index=True
            ),
            restore_dtypes=self.encoder_.restore_dtypes,
            schema=self.schema_,
            meta=dict(settings.meta(), constraints=None if batch.constraints is None else batch.constraints.to_dict()),
        )

    def _call_settings(self, strategy: str, n_counterfactuals: Optional[int], **overrides: Any) -> CallSettings:
        """This call's settings: the constructor's, overridden where given, all checked."""
        STRATEGIES.check(strategy)
        values = parameters.check_params({k: getattr(self, k) if v is None else v for k, v in overrides.items()})
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

    # ------------------------------------------------------------------ generating
    def sample(self, n: int, target_class: int, random_state: Optional[int] = None, valid_only: bool = True) -> pd.DataFrame:
        """Raw rows decoded from class ``target_class``'s mixture prior ``p(z | y) = (1/m) sum_c N(mu_c, sigma_c^2)``.

        Parameters
        ----------
        n
            Rows wanted.
        target_class
            Class index (column of ``predict_proba``).
        random_state
            Seed of the draws (default: the constructor's ``random_state``).
        valid_only
            Keep only rows the classifier assigns to ``target_class`` and that hold no rare pair of states (the
            plausibility filter); draws continue until ``n`` are kept, and a ``RuntimeError`` names the acceptance
            rate when 50 rounds are not enough.

        Returns
        -------
        pandas.DataFrame
            ``n`` rows in the schema's raw format.
        """
        self._check_fitted()
        n = parameters.Integer(1, None).check("n", n)
        target = parameters.Integer(0, self.n_classes_ - 1).check("target_class", target_class)
        seed = self.random_state if random_state is None else random_state
        rng = np.random.RandomState(0 if seed is None else seed)
        space, m = self._space(), self.model_.m
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
        probs = np.array(self.predict_proba_(X), dtype=np.float64)  # a copy: a DataFrame's values may be read-only
        if probs.ndim != 2 or probs.shape[0] != len(X) or probs.shape[1] < 2:
            raise ValueError(
                "predict_proba must return an array of shape (n_rows, n_classes>=2); got shape %s for %d rows"
                % (probs.shape, len(X))
            )
        if hasattr(self, "n_classes_") and probs.shape[1] != self.n_classes_:
            raise ValueError("predict_proba returned %d columns; the explainer was fitted with %d classes" % (probs.shape[1], self.n_classes_))
        bad = ~np.isfinite(probs).all(1)
        if finite is not None and bad.any():
            raise ValueError(
                "predict_proba returned NaN or infinite probabilities for %d row(s) of %s (first: %s)"
                % (bad.sum(), finite, list(X.index[bad][:5]))
            )
        return probs

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this Lapace is not fitted yet: call fit(X, predict_proba=...) or Lapace.load(path) first")

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


@contextlib.contextmanager
def _torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run a block with ``n`` torch threads, then restore the previous number."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _progress:
    """Training progress when ``enabled``: a tqdm bar over epochs (with the validation loss) on a terminal or in a
    notebook, else one summary line on stderr at the end (no wall of bar updates in logs)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar = total, enabled, None
        self.epochs, self.loss, self.start = 0, float("nan"), time.time()

    def __enter__(self) -> Optional[Callable[[int, float], None]]:
        if not self.enabled:
            return None
        from tqdm.auto import tqdm

        if sys.stderr.isatty() or "notebook" in tqdm.__module__:  # a terminal, or a notebook widget
            self.bar = tqdm(total=self.total, desc="training L-GMVAE", unit="epoch")

        def update(epoch: int, loss: float) -> None:
            self.epochs, self.loss = epoch + 1, loss
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix(val_loss="%.3f" % loss)

        return update

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and exc[0] is None:
            print("training L-GMVAE: %d epochs in %.1f s, validation loss %.3f" % (self.epochs, time.time() - self.start, self.loss),
                  file=sys.stderr)


__all__: List[str] = ["Lapace", "NotFittedError", "PredictProba"]

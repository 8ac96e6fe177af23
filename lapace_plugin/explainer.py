"""``Lapace``: fit an L-GMVAE on a classifier's predictions and explain queries with latent paths."""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch

from . import persistence
from .centroids import contains, settle_centroids
from .constraints import Constraints, EncodedConstraints
from .encoding import TabularEncoder
from .lgmvae import LGMVAE, train_lgmvae
from .paths import decode, feature_distance, first_valid_step, repair
from .result import Explanation
from .revert import feature_blocks, revert_greedy
from .schema import FeatureSchema
from .search import first_valid_fast

PredictProba = Callable[[pd.DataFrame], Any]
STRATEGIES = ("first", "last")
PATHS = ("latent", "corrected", "sparse")
SEARCHES = ("grid", "fast")
EXACT_TOLERANCE = 1e-5  # scaled units: float32 noise of ``Dec(z_x) + (x - Dec(z_x))`` at tau 0


class NotFittedError(ValueError, AttributeError):
    """Raised when an unfitted ``Lapace`` is used."""


class Lapace:
    """LAPACE counterfactual explainer for any classifier with ``predict_proba``.

    Parameters
    ----------
    schema
        Feature schema; inferred from the training frame when ``None``.
    components_per_class
        ``m``, Gaussian components (and so counterfactuals) per class.
    latent_dim, hidden
        Latent size and hidden widths of the L-GMVAE.
    epochs
        Maximum training epochs; ``None`` chooses from the data size (about 2,000 optimiser steps).
    batch_size, learning_rate, continuous_weight, kl_weight
        Training settings (Adam); ``continuous_weight`` scales the continuous reconstruction term.
    n_steps
        Path resolution: ``n_steps + 1`` points from the input's latent point (tau 0) to a centroid (tau 1).
    path
        How latent points become rows. ``"latent"``: decode them, as in the paper (tau 0 is the input's
        reconstruction, not the input). ``"corrected"`` (default): add the input's reconstruction residual, fading
        from full at tau 0 to none at tau 1, ``x_tau = snap(Dec(z_tau) + (1 - tau) (x - Dec(z_x)))``
        (one-hot groups are corrected on the decoder's probabilities), so tau 0 is exactly the input and
        tau 1 exactly the decoded centroid. ``"sparse"``: corrected, and a feature keeps the input's value
        unless it changes by more than ``sparse_tolerance`` (continuous) or another category beats the
        input's by more than ``sparse_margin``; both fade to zero at tau 1, so paths still end at the centroid.
    search
        How the first valid point of a path is found. ``"grid"`` (default): classify every point, in one
        classifier call. ``"fast"``: classify every few points, then bisect (:mod:`lapace_plugin.search`);
        identical wherever the valid points of a path are a suffix of it, with about a quarter of the
        classified rows but several classifier calls, so it pays off for large batches or costly classifiers.
    sparse_margin, sparse_tolerance
        Settings of ``path="sparse"``, at tau 0: probability margin and scaled-unit tolerance.
    revert
        After the search, give each counterfactual's changed features back the input's values, one at a time,
        while the classifier still assigns the target class (:mod:`lapace_plugin.revert`): fewer changed
        features and a closer counterfactual, which is then no longer exactly on its path, at the cost of a
        few more classifier calls and of the margin to the decision boundary.
    random_state
        Seed for a reproducible fit on the same machine and library versions.
    device
        Torch device for the L-GMVAE (``"cpu"``, ``"cuda"``, ...).
    n_threads
        Torch threads while fitting (restored afterwards). The L-GMVAE is small, so extra threads gain little,
        and on a shared 2-core machine spinning worker threads made training up to 10x slower; ``None`` keeps
        torch's setting.
    verbose
        Show a progress bar while training.
    """

    def __init__(
        self,
        schema: Optional[FeatureSchema] = None,
        components_per_class: int = 5,
        latent_dim: int = 16,
        hidden: Sequence[int] = (128, 128),
        epochs: Optional[int] = None,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        continuous_weight: float = 10.0,
        kl_weight: float = 1.0,
        n_steps: int = 20,
        path: str = "corrected",
        search: str = "grid",
        sparse_margin: float = 0.6,
        sparse_tolerance: float = 0.1,
        revert: bool = False,
        random_state: Optional[int] = None,
        device: Union[str, torch.device] = "cpu",
        n_threads: Optional[int] = 1,
        verbose: bool = True,
    ) -> None:
        self.schema = schema
        self.components_per_class = components_per_class
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.continuous_weight = continuous_weight
        self.kl_weight = kl_weight
        self.n_steps = n_steps
        self.path = path
        self.search = search
        self.sparse_margin = sparse_margin
        self.sparse_tolerance = sparse_tolerance
        self.revert = revert
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose

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
            raise TypeError("predict_proba must be a callable DataFrame -> (n, n_classes) probabilities")
        if int(self.components_per_class) < 1:
            raise ValueError("components_per_class must be at least 1, got %r" % self.components_per_class)
        _check_choice("path", self.path, PATHS)
        _check_choice("search", self.search, SEARCHES)
        _check_flag("revert", self.revert)
        if not 0.0 <= float(self.sparse_margin) < 1.0:
            raise ValueError("sparse_margin must be in [0, 1), got %r" % (self.sparse_margin,))
        if not 0.0 <= float(self.sparse_tolerance) < 1.0:
            raise ValueError("sparse_tolerance must be in [0, 1) (scaled units), got %r" % (self.sparse_tolerance,))
        start = time.time()
        schema = self.schema if self.schema is not None else FeatureSchema.infer(X)
        X = schema.validate(X, name="training data")
        self.schema_ = schema
        self.encoder_ = TabularEncoder(schema)
        self.predict_proba_ = predict_proba
        self.device_ = torch.device(self.device)
        probs = self._predict(X)
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
        groups = [(sl.start, sl.stop) for _, sl in self.encoder_.groups]
        model = LGMVAE(
            self.encoder_.width, self.encoder_.n_continuous, groups, self.n_classes_, int(self.components_per_class),
            latent_dim=int(self.latent_dim), hidden=tuple(int(h) for h in self.hidden),
        )
        return model.to(self.device_)

    def _settle_centroids(self, x: np.ndarray, labels: np.ndarray) -> None:
        """Make every decoded centroid valid and distinct where possible (see ``centroids.settle_centroids``)."""
        z_train, comp_train = self._latent_means(x, labels)
        settled = settle_centroids(
            self.centroid_latents_, z_train, comp_train, labels, self.model_.m, self._decode_and_classify
        )
        with torch.no_grad():
            self.model_.prior_mean.copy_(torch.as_tensor(settled.latents, device=self.device_))
        self._set_centroids(settled.points, settled.proba, settled.valid)
        self.centroid_validity_initial_ = settled.initial_validity
        self.centroids_moved_ = [self._component_name(k) for k in settled.moved]
        invalid = [self._component_name(k) for k in np.flatnonzero(~settled.valid)]
        if invalid:
            warnings.warn(
                "centroid(s) %s decode to rows the classifier does not assign to their class; they are never "
                "used as counterfactual targets (centroid validity %.0f%%)" % (invalid, 100 * self.centroid_validity_),
                stacklevel=3,
            )

    def _set_centroids(self, points: np.ndarray, proba: np.ndarray, valid: np.ndarray) -> None:
        """Store the decoded centroids and what derives from them."""
        self.centroid_points_ = points
        self.centroid_proba_ = proba
        self.centroid_valid_ = valid
        self.centroid_class_ = np.arange(len(points)) // self.model_.m
        self.centroid_validity_ = float(valid.mean())
        names = [self._component_name(k) for k in range(len(points))]
        self.centroids_ = self.encoder_.decode(points, index=pd.Index(names, name="component"))
        self.distinct_centroids_ = {
            self.classes_[c]: int(len(np.unique(points[(self.centroid_class_ == c) & valid], axis=0)))
            for c in range(self.n_classes_)
        }
        self._projected_centroids: Dict[Any, Tuple[Any, ...]] = {}

    def _decode_and_classify(self, z: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        points = self.encoder_.snap(decode(self.model_, z.astype(np.float32), self.device_))
        return points, self._predict(self.encoder_.decode(points))

    def _latent_means(self, x: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        zs, cs = [], []
        with torch.no_grad():
            for start in range(0, len(x), 65536):
                xt = torch.as_tensor(x[start : start + 65536], device=self.device_)
                yt = torch.as_tensor(labels[start : start + 65536], dtype=torch.long, device=self.device_)
                z, c = self.model_.latent_mean(xt, yt)
                zs.append(z.cpu().numpy())
                cs.append(c.cpu().numpy())
        return np.concatenate(zs), np.concatenate(cs)

    def _component_name(self, k: int) -> str:
        return "%s/%d" % (self.classes_[k // self.model_.m], k % self.model_.m)

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
            (identical for every input, robust).
        n_counterfactuals
            Counterfactuals per query, at most ``components_per_class``; the nearest ones are kept.
        constraints
            ``None``, ``"schema"`` (the schema's immutable and monotone features), a ``Constraints`` or an
            equivalent dict.
        n_steps
            Path resolution for this call (default: the constructor's ``n_steps``).
        path, search
            ``path`` (``"latent"``, ``"corrected"``, ``"sparse"``) and ``search`` (``"grid"``, ``"fast"``) for
            this call (default: the constructor's); see the class documentation. ``last`` ignores both.
        revert
            Revert unneeded changes for this call (default: the constructor's ``revert``); ``last`` ignores it.
        """
        self._check_fitted()
        _check_choice("strategy", strategy, STRATEGIES)
        path = _check_choice("path", self.path if path is None else path, PATHS)
        search = _check_choice("search", self.search if search is None else search, SEARCHES)
        revert = _check_flag("revert", self.revert if revert is None else revert)
        m = self.model_.m
        k = m if n_counterfactuals is None else int(n_counterfactuals)
        if not 1 <= k <= m:
            raise ValueError("n_counterfactuals must be between 1 and components_per_class=%d, got %r" % (m, n_counterfactuals))
        steps = int(self.n_steps if n_steps is None else n_steps)
        if steps < 1:
            raise ValueError("n_steps must be at least 1, got %r" % n_steps)
        X = self.schema_.validate(X)
        cons = Constraints.coerce(constraints, self.schema_)
        enc_cons = EncodedConstraints(cons, self.encoder_) if cons is not None else None
        predicted = self._predict(X).argmax(1)
        target = self._resolve_target(target_class, predicted)
        x = self.encoder_.encode(X)
        comps = target[:, None] * m + np.arange(m)
        usable = self.centroid_valid_[comps] & (target != predicted)[:, None]
        if strategy == "first":
            grid = self._first(X, x, predicted, target, comps, usable, enc_cons, steps, path, search)
            if revert:
                grid = self._revert(X, x, target, comps, usable, enc_cons, grid)
        else:
            grid = self._last(X, x, target, comps, cons, enc_cons)
        grid["valid"] &= usable[:, :, None]
        selections, failures = self._select(X, x, target, predicted, comps, grid, k, strategy)
        return Explanation(
            queries=X,
            selections=selections,
            predicted_class=predicted,
            target_class=target,
            classes=self.classes_,
            failures=failures,
            strategy=strategy,
            paths=lambda: self._path_frame(X, x, predicted, target, comps, enc_cons, steps, path),
            restore_dtypes=self.encoder_.restore_dtypes,
        )

    def _first(self, X, x, predicted, target, comps, usable, enc_cons, steps, path, search) -> Dict[str, np.ndarray]:
        taus = np.linspace(0.0, 1.0, steps + 1)
        n, m = comps.shape
        realise = self._path_points(X, x, predicted, target, comps, enc_cons, taus, path)
        if search == "fast":
            return self._first_fast(X, x, comps, usable, enc_cons, taus, path, realise)
        shape = (n, m, len(taus))
        out = realise(np.repeat(np.arange(n * m), len(taus)), np.tile(np.arange(len(taus)), n * m))
        return {
            "points": out["points"].reshape(shape + (-1,)),
            "raw": out["raw"],
            "proba": out["proba"].reshape(shape),
            "valid": out["valid"].reshape(shape),
            "repaired": out["repaired"].reshape(shape),
            "tau": np.broadcast_to(taus, shape),
        }

    def _first_fast(self, X, x, comps, usable, enc_cons, taus, path, realise) -> Dict[str, np.ndarray]:
        """The first valid point of each usable path by coarse scan and bisection (``search="fast"``)."""
        n, m = comps.shape
        ends = comps.reshape(-1)
        q = np.repeat(np.arange(n), m)
        points = x[q].copy()
        proba = np.zeros(n * m)
        repaired = np.zeros(n * m, dtype=bool)
        todo = np.flatnonzero(usable.reshape(-1))
        end_valid = None
        if enc_cons is None:  # the path ends at its decoded centroid, valid for every usable path
            points[todo] = self.centroid_points_[ends[todo]]
            proba[todo] = self.centroid_proba_[ends[todo], ends[todo] // m]
            end_valid = np.ones(len(todo), dtype=bool)

        def evaluate(sub: np.ndarray, steps: np.ndarray) -> np.ndarray:
            out = realise(todo[sub], steps)
            ok = out["valid"]
            hit = todo[sub[ok]]
            points[hit], proba[hit], repaired[hit] = out["points"][ok], out["proba"][ok], out["repaired"][ok]
            return ok

        start = 0 if path == "latent" else 1  # a corrected path starts at the query itself, never valid
        found = np.full(n * m, -1)
        found[todo] = first_valid_fast(evaluate, len(todo), len(taus), start=start, end_valid=end_valid)
        points[found < 0] = x[q[found < 0]]
        shape = (n, m, 1)
        return {
            "points": points.reshape(shape + (-1,)),
            "raw": self._to_raw(points, x[q], X.iloc[q]),
            "proba": proba.reshape(shape),
            "valid": (found >= 0).reshape(shape),
            "repaired": repaired.reshape(shape),
            "tau": taus[np.maximum(found, 0)].reshape(shape),
        }

    def _path_points(self, X, x, predicted, target, comps, enc_cons, taus, path) -> Callable[[np.ndarray, np.ndarray], Dict[str, Any]]:
        """``realise(paths, steps)``: rows, probabilities and validity of grid points of flat path indices."""
        m = comps.shape[1]
        last = len(taus) - 1
        mu = self.model_.prior_mean.detach().cpu().numpy()
        z_x = self._latent_means(x, predicted)[0]
        residual = None if path == "latent" else x - decode(self.model_, z_x, self.device_)
        margin, tolerance = (self.sparse_margin, self.sparse_tolerance) if path == "sparse" else (0.0, EXACT_TOLERANCE)

        def realise(paths: np.ndarray, steps: np.ndarray) -> Dict[str, Any]:
            q, ends = paths // m, comps.reshape(-1)[paths]
            points = np.empty((len(paths), x.shape[1]), dtype=np.float32)
            repaired = np.zeros(len(paths), dtype=bool)
            at_end = (steps == last) if enc_cons is None else np.zeros(len(paths), dtype=bool)
            points[at_end] = self.centroid_points_[ends[at_end]]  # exactly the decoded centroid
            rest = np.flatnonzero(~at_end)
            if len(rest):
                t = taus[steps[rest]].astype(np.float32)[:, None]
                z = (1.0 - t) * z_x[q[rest]] + t * mu[ends[rest]]
                fade = 1.0 - taus[steps[rest]]
                correction = None
                if residual is not None:
                    correction = (residual[q[rest]] * fade[:, None].astype(np.float32), margin * fade, tolerance * fade)
                points[rest], repaired[rest] = self._realise(z, x[q[rest]], enc_cons, correction)
            raw, proba, valid = self._judge(points, x[q], X.iloc[q], target[q], enc_cons)
            return {"points": points, "raw": raw, "proba": proba, "valid": valid, "repaired": repaired}

        return realise

    def _judge(self, points, factuals, X, target, enc_cons) -> Tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Raw rows of encoded ``points``, their target probabilities and validity (class and constraints)."""
        raw = self._to_raw(points, factuals, X)
        probs = self._predict(raw)
        valid = probs.argmax(1) == target
        if enc_cons is not None:
            valid &= ~enc_cons.violated(points, factuals)
        return raw, probs[np.arange(len(points)), target], valid

    def _revert(self, X, x, target, comps, usable, enc_cons, grid) -> Dict[str, np.ndarray]:
        """The first valid point of each usable path with its unneeded changes reverted (``revert=True``)."""
        n, m = comps.shape
        step = first_valid_step(grid["valid"] & usable[:, :, None])
        found = (step >= 0).reshape(-1)
        rows_q, rows_c = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
        s = np.maximum(step, 0)
        points = grid["points"][rows_q, rows_c, s].reshape(n * m, -1).copy()
        proba = grid["proba"][rows_q, rows_c, s].reshape(-1).copy()
        q = np.repeat(np.arange(n), m)
        todo = np.flatnonzero(found)

        def evaluate(rows: np.ndarray, candidates: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
            qq = q[todo[rows]]
            _, p, valid = self._judge(candidates, x[qq], X.iloc[qq], target[qq], enc_cons)
            return valid, p

        reverted = np.zeros(n * m, dtype=int)
        blocks = feature_blocks(self.encoder_.n_continuous, self.encoder_.groups)
        points[todo], proba[todo], reverted[todo] = revert_greedy(points[todo], x[q[todo]], proba[todo], blocks, evaluate)
        shape = (n, m, 1)
        return {
            "points": points.reshape(shape + (-1,)),
            "raw": self._to_raw(points, x[q], X.iloc[q]),
            "proba": proba.reshape(shape),
            "valid": found.reshape(shape),
            "repaired": grid["repaired"][rows_q, rows_c, s].reshape(shape),
            "tau": grid["tau"][rows_q, rows_c, s].reshape(shape),
            "reverted": reverted.reshape(shape),
        }

    def _last(self, X, x, target, comps, cons, enc_cons) -> Dict[str, np.ndarray]:
        n, m = comps.shape
        shape = (n, m, 1)
        if enc_cons is None:
            return {
                "points": self.centroid_points_[comps].reshape(n, m, 1, -1),
                "raw": self.centroids_.iloc[comps.reshape(-1)].reset_index(drop=True),
                "proba": self.centroid_proba_[comps, target[:, None]].reshape(shape),
                "valid": self.centroid_valid_[comps].reshape(shape),
                "repaired": np.zeros(shape, dtype=bool),
                "tau": np.ones(shape),
            }
        entries = self._constrained_centroids(X, x, target, comps, cons, enc_cons)
        return {
            "points": np.stack([e[0] for e in entries]).reshape(n, m, 1, -1),
            "raw": pd.concat([e[4] for e in entries], ignore_index=True),
            "proba": np.stack([e[1] for e in entries]).reshape(shape),
            "valid": np.stack([e[2] for e in entries]).reshape(shape),
            "repaired": np.stack([e[3] for e in entries]).reshape(shape),
            "tau": np.ones(shape),
        }

    def _constrained_centroids(self, X, x, target, comps, cons, enc_cons) -> List[Tuple[Any, ...]]:
        """Target centroids projected onto each query's constraints, memoised per constrained signature.

        The projection depends only on the target class and the query's constrained (immutable and
        monotone) values, so queries sharing them share one entry: inputs that differ only in unconstrained
        features get bit-identical counterfactuals, within a call and across calls.
        """
        m = comps.shape[1]
        sig_cols = cons.signature_features()
        base = json.dumps(cons.to_dict(), sort_keys=True, default=str)
        sig_values = X[sig_cols].itertuples(index=False, name=None) if sig_cols else iter([()] * len(X))
        keys = [(base, int(t), row) for t, row in zip(target, sig_values)]
        cache = self._projected_centroids
        todo: Dict[Any, int] = {}
        for i, key in enumerate(keys):
            if key not in cache and key not in todo:
                todo[key] = i
        if todo:
            rows = np.repeat(np.fromiter(todo.values(), dtype=int), m)
            ends = comps[rows, np.tile(np.arange(m), len(todo))]
            mu = self.model_.prior_mean.detach().cpu().numpy()
            points, repaired = self._realise(mu[ends], x[rows], enc_cons)
            raw = self._to_raw(points, x[rows], X.iloc[rows], features=sig_cols)
            probs = self._predict(raw)
            ok = (probs.argmax(1) == target[rows]) & ~enc_cons.violated(points, x[rows]) & self.centroid_valid_[ends]
            proba = probs[np.arange(len(rows)), target[rows]]
            for j, key in enumerate(todo):
                sl = slice(j * m, (j + 1) * m)
                cache[key] = (points[sl], proba[sl], ok[sl], repaired[sl], raw.iloc[sl].reset_index(drop=True))
        return [cache[key] for key in keys]

    def _realise(
        self,
        z: np.ndarray,
        factuals: np.ndarray,
        enc_cons: Optional[EncodedConstraints],
        correction: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Decode latent points into valid encoded rows, repairing and projecting constraint violations.

        ``correction = (offset, margin, tolerance)``, per row: ``offset`` is added to the decoder's output
        before snapping, which keeps the factual's values within ``margin`` / ``tolerance``
        (:meth:`TabularEncoder.snap_near`).
        """
        decoded = decode(self.model_, z.astype(np.float32), self.device_)
        offset = None
        snap = self.encoder_.snap
        if correction is not None:
            offset, margin, tolerance = correction
            decoded += offset

            def snap(arr: np.ndarray) -> np.ndarray:
                return self.encoder_.snap_near(arr, factuals, margin, tolerance)

        if enc_cons is None:
            return snap(decoded), np.zeros(len(z), dtype=bool)
        broken = enc_cons.violated(snap(decoded), factuals)
        if broken.any():
            decoded[broken] = repair(
                self.model_, z[broken].astype(np.float32), factuals[broken], enc_cons, self.device_,
                offset=None if offset is None else offset[broken],
            )
        return enc_cons.project(decoded, factuals, snap), broken

    def _to_raw(self, points: np.ndarray, factuals: np.ndarray, X: pd.DataFrame, features: Optional[List[str]] = None) -> pd.DataFrame:
        """Raw rows of encoded ``points``; continuous values equal to the factual's keep its exact raw value."""
        raw = self.encoder_.decode(points)
        cont = self.schema_.continuous if features is None else [f for f in features if f in self.schema_.continuous]
        for name in cont:
            j = self.schema_.continuous.index(name)
            same = points[:, j] == factuals[:, j]
            if same.any():
                values = raw[name].to_numpy().copy()
                values[same] = X[name].to_numpy()[same]
                raw[name] = values
        return self.encoder_.restore_dtypes(raw)

    def _select(self, X, x, target, predicted, comps, grid, k, strategy) -> Tuple[pd.DataFrame, Dict[Any, str]]:
        n, m = comps.shape
        step = first_valid_step(grid["valid"])
        found = step >= 0
        s = np.maximum(step, 0)
        rows_q, rows_c = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
        chosen = grid["points"][rows_q, rows_c, s]
        n_steps = grid["valid"].shape[2]
        flat = (rows_q * m + rows_c) * n_steps + s
        raw = grid["raw"].iloc[flat.reshape(-1)].reset_index(drop=True)
        distance = feature_distance(chosen, x[:, None, :], self.encoder_.n_continuous, self.encoder_.groups, len(self.schema_.features))
        rank = np.full((n, m), -1)
        failures: Dict[Any, str] = {}
        labels = list(X.index)
        for q in range(n):
            order = [c for c in np.argsort(distance[q], kind="stable") if found[q, c]]
            kept: List[np.ndarray] = []
            for c in order:
                if len(kept) == k:
                    break
                if contains(kept, chosen[q, c]):
                    continue
                rank[q, c] = len(kept)
                kept.append(chosen[q, c])
            if not kept:
                failures[labels[q]] = self._failure_reason(predicted[q], target[q], comps[q], strategy)
        frame = pd.DataFrame({
            "query": np.repeat(labels, m) if n else [],
            "order": rows_q.reshape(-1),
            "component": [self._component_name(c) for c in comps.reshape(-1)],
            "tau": np.where(found, grid["tau"][rows_q, rows_c, s], np.nan).reshape(-1),
            "valid": found.reshape(-1),
            "probability": grid["proba"][rows_q, rows_c, s].reshape(-1),
            "repaired": (grid["repaired"][rows_q, rows_c, s] & found).reshape(-1),
            "reverted": np.where(found, grid["reverted"][rows_q, rows_c, s], 0).reshape(-1) if "reverted" in grid else 0,
            "rank": rank.reshape(-1),
        })
        raw.loc[~found.reshape(-1), :] = np.nan
        return pd.concat([frame, raw], axis=1), failures

    def _failure_reason(self, predicted: int, target: int, comps: np.ndarray, strategy: str) -> str:
        if predicted == target:
            return "the query is already predicted as the target class %r" % (self.classes_[target],)
        if not self.centroid_valid_[comps].any():
            return "no valid centroid for target class %r" % (self.classes_[target],)
        if strategy == "last":
            return "no target centroid is valid for this query after applying the constraints"
        return "no point on any latent path to class %r is assigned to it (with the constraints applied)" % (self.classes_[target],)

    def _path_frame(self, X, x, predicted, target, comps, enc_cons, steps, path) -> pd.DataFrame:
        grid = self._first(X, x, predicted, target, comps, None, enc_cons, steps, path, "grid")
        n, m, s = grid["valid"].shape
        q, c, t = np.meshgrid(np.arange(n), np.arange(m), np.arange(s), indexing="ij")
        meta = pd.DataFrame({
            "query": np.asarray(X.index)[q.reshape(-1)],
            "component": [self._component_name(k) for k in comps[q, c].reshape(-1)],
            "step": t.reshape(-1),
            "tau": grid["tau"].reshape(-1),
            "probability": grid["proba"].reshape(-1),
            "valid": (grid["valid"] & self.centroid_valid_[comps][:, :, None] & (target != predicted)[:, None, None]).reshape(-1),
        })
        return pd.concat([meta, grid["raw"]], axis=1)

    def _resolve_target(self, target_class: Union[None, int, Sequence[int]], predicted: np.ndarray) -> np.ndarray:
        n_classes = self.n_classes_
        if target_class is None:
            if n_classes != 2:
                raise ValueError(
                    "target_class is required for a model with %d classes: pass a class index in 0..%d (classes %s)"
                    % (n_classes, n_classes - 1, self.classes_)
                )
            return 1 - predicted
        values = np.asarray(target_class)
        if values.ndim == 0:
            values = np.full(len(predicted), values.item())
        if values.shape != predicted.shape:
            raise ValueError("target_class has %d entries for %d queries" % (len(values), len(predicted)))
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError("target_class must be a class index in 0..%d (classes %s), got %r" % (n_classes - 1, self.classes_, target_class))
        bad = sorted(set(int(v) for v in values if not 0 <= v < n_classes))
        if bad:
            raise ValueError(
                "impossible target class %s: the model has %d classes, indices 0..%d (classes %s)" % (bad, n_classes, n_classes - 1, self.classes_)
            )
        return values.astype(int)

    # ------------------------------------------------------------------ helpers
    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Latent points ``z_x (n, latent_dim)``: the encoder's mean at each row's most responsible component."""
        self._check_fitted()
        X = self.schema_.validate(X)
        return self._latent_means(self.encoder_.encode(X), self._predict(X).argmax(1))[0]

    @property
    def centroid_latents_(self) -> np.ndarray:
        """Latent centroids ``mu_c``, shape ``(n_classes * components_per_class, latent_dim)``."""
        self._check_fitted()
        return self.model_.prior_mean.detach().cpu().numpy().copy()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The explained classifier's probabilities for raw rows (validated against the schema)."""
        self._check_fitted()
        return self._predict(self.schema_.validate(X))

    def _predict(self, X: pd.DataFrame) -> np.ndarray:
        if getattr(self, "predict_proba_", None) is None:
            raise NotFittedError("this Lapace has no classifier: pass predict_proba to Lapace.load(path, predict_proba)")
        probs = np.asarray(self.predict_proba_(X), dtype=np.float64)
        if probs.ndim != 2 or probs.shape[0] != len(X) or probs.shape[1] < 2:
            raise ValueError(
                "predict_proba must return an array of shape (n_rows, n_classes>=2); got shape %s for %d rows"
                % (probs.shape, len(X))
            )
        if hasattr(self, "n_classes_") and probs.shape[1] != self.n_classes_:
            raise ValueError("predict_proba returned %d columns; the explainer was fitted with %d classes" % (probs.shape[1], self.n_classes_))
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

    def get_params(self) -> Dict[str, Any]:
        """Constructor parameters, as in scikit-learn."""
        names = ("schema", "components_per_class", "latent_dim", "hidden", "epochs", "batch_size", "learning_rate",
                 "continuous_weight", "kl_weight", "n_steps", "path", "search", "sparse_margin", "sparse_tolerance",
                 "revert", "random_state", "device", "n_threads", "verbose")
        return {k: getattr(self, k) for k in names}

    def __repr__(self) -> str:
        state = "fitted, centroid validity %.0f%%" % (100 * self.centroid_validity_) if hasattr(self, "model_") else "not fitted"
        return "Lapace(components_per_class=%d, latent_dim=%d, %s)" % (self.components_per_class, self.latent_dim, state)


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError("%s must be one of %s, got %r" % (name, ", ".join(repr(c) for c in choices), value))
    return value


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError("%s must be True or False, got %r" % (name, value))
    return bool(value)


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
    """tqdm progress bar over epochs, showing the validation loss; silent when ``enabled`` is False."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self) -> Optional[Callable[[int, float], None]]:
        if not self.enabled:
            return None
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, desc="training L-GMVAE", unit="epoch")

        def update(epoch: int, loss: float) -> None:
            self.bar.update(1)
            self.bar.set_postfix(val_loss="%.3f" % loss)

        return update

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()

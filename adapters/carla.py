"""LAPACE inside CARLA (``carla-recourse`` 0.0.5): the ``RecourseMethod`` :class:`LapaceCarla`.

carla-recourse 0.0.5 installs and imports only on Python 3.7 with its exact 2020 pins (torch 1.7.0,
numpy 1.19.4, pandas 1.1.4, scikit-learn 0.23.2, TensorFlow 1.14) and ``protobuf<=3.20``. Build that
environment with ``bash .ci/carla_env.sh DIR`` and run everything below with ``DIR/bin/python``.
CARLA's catalogues download at run time; :mod:`lapace_plugin.adapters.carla_data` has offline ``Data`` and
``MLModel`` fixtures.

Example (in the CARLA environment)::

    from carla.evaluation import Benchmark
    from lapace_plugin import datasets
    from lapace_plugin.adapters.carla import LapaceCarla
    from lapace_plugin.adapters.carla_data import TabularData, train_torch_mlp

    data = TabularData.from_dataset(datasets.load("adult"))
    model = train_torch_mlp(data)
    factuals = data.df_test[model.predict(data.df_test[model.feature_input_order])[:, 0] < 0.5]
    factuals = factuals.head(50).reset_index(drop=True)       # CARLA 0.0.5 needs a RangeIndex
    table = Benchmark(model, LapaceCarla(model, {"strategy": "first"}), factuals).run_benchmark()

The adapter only translates between CARLA's encoded frames and LAPACE's raw frames; the method itself
lives in :class:`lapace_plugin.Lapace`.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Optional

import numpy as np
import pandas as pd

try:
    import torch
    from carla.recourse_methods.api import RecourseMethod
except ImportError as exc:  # pragma: no cover - exercised only outside the CARLA environment
    raise ImportError(
        "lapace_plugin.adapters.carla needs carla-recourse 0.0.5 (and torch), which install only on Python 3.7 with "
        "CARLA's pinned 2020 stack (torch 1.7.0, numpy 1.19.4, pandas 1.1.4, scikit-learn 0.23.2, "
        "tensorflow 1.14) plus protobuf<=3.20. Build that environment with "
        "`bash .ci/carla_env.sh DIR` (default DIR: ${TMPDIR:-/tmp}/lapace-carla-venv) and run with "
        "DIR/bin/python. Original error: %s" % (exc,)
    ) from exc

from lapace_plugin import FeatureSchema, Lapace
from lapace_plugin import params as lapace_params
from lapace_plugin.errors import InvalidParameterError
from lapace_plugin.rules import assigned_to, round_to_precision
from lapace_plugin.strategies import STRATEGIES

from .carla_data import TabularData, raw_training_frame

__all__ = ["LapaceCarla"]

class LapaceCarla(RecourseMethod):
    """LAPACE as a CARLA ``RecourseMethod``.

    ``__init__`` fits a :class:`lapace_plugin.Lapace` on the raw training frame of ``mlmodel.data``
    (its ``predict_proba`` is ``mlmodel`` applied after ``data.transform``); fit time is kept in
    ``fit_time_``. ``get_counterfactuals`` returns one counterfactual per factual, encoded and
    normalised in ``mlmodel.feature_input_order``, with the factuals' index and a NaN row for a factual
    with no valid counterfactual. The data's immutable features are passed to LAPACE as constraints,
    so they are never changed.

    Parameters
    ----------
    mlmodel
        A CARLA ``MLModel`` (e.g. :class:`TorchModel`, :class:`SklearnModel`).
    hyperparams
        Optional dict; unknown keys raise ``ValueError`` naming the allowed ones. Every parameter of
        :class:`lapace_plugin.Lapace` but ``schema`` (same defaults, except ``verbose=False`` and ``random_state=0``),
        plus:

        * ``strategy``: ``"first"`` (proximal end of each latent path), ``"robust"`` (the first point with
          target probability at least ``min_probability``) or ``"last"`` (the decoded centroid, projected onto the
          constraints), default ``"first"``;
        * ``target_class``: class index asked for, default 1 (CARLA's favourable label; its harness
          counts only class-1 counterfactuals as successes);
        * ``monotone``: also honour ``data.monotone`` (e.g. age increase-only) when the data declares
          it, default ``False``: CARLA's ``Data`` declares only immutables, and the harness's
          Constraint_Violation counts only those;
        * ``derived``: ``{feature: expression of the others}``, features computed on every counterfactual, and
          ``relations``: relations every counterfactual keeps, changes that move together included (``"months <= 12 *
          age"``, ``"change(months) <= 12 * change(age)"``; :mod:`lapace_plugin.relations`), default ``None``.

        The per-call parameters of :class:`lapace_plugin.Lapace` (``n_steps``, ``path``, ``search``, ``revert``,
        ``max_points``, ``min_pair_count``, ``distinct``, ``max_lof``: :func:`lapace_plugin.params.per_call_names`) apply to every
        call of ``get_counterfactuals``; ``revert=True`` leaves nothing for CARLA's Redundancy metric to count.
    explainer
        Optional already fitted :class:`lapace_plugin.Lapace` for the same data and model (e.g.
        ``other.lapace_`` of a ``LapaceCarla`` with another strategy); it is used as is and the
        training hyperparameters are then ignored.
    """

    _DEFAULT_HYPERPARAMS: Dict[str, Any] = dict(
        {name: p.default for name, p in lapace_params.PARAMETERS.items() if name != "schema"},
        strategy="first",
        target_class=1,
        monotone=False,
        derived=None,
        relations=None,
        random_state=0,
        verbose=False,
    )

    def __init__(self, mlmodel: Any, hyperparams: Optional[Mapping[str, Any]] = None, explainer: Optional[Lapace] = None) -> None:
        super().__init__(mlmodel)
        self.hyperparams = self._check_hyperparams(hyperparams)
        hp = self.hyperparams
        data = mlmodel.data
        self._continuous = list(data.continuous)
        self._categorical = list(data.categorical)
        raw_train = raw_training_frame(data)
        self._features_raw = list(raw_train.columns)  # the data's raw column order
        schema_frame = data.raw[self._features_raw] if isinstance(data, TabularData) else raw_train
        monotone = dict(getattr(data, "monotone", {}) or {}) if hp["monotone"] else {}
        monotone = {k: v for k, v in monotone.items() if k not in set(data.immutables)}
        # ranges and categories from the frame CARLA's scaler/encoder were fitted on
        self.schema_ = FeatureSchema.infer(
            schema_frame, categorical=self._categorical, immutable=list(data.immutables), monotone=monotone,
            derived=hp["derived"], relations=hp["relations"],
        )
        self.constraints_: Dict[str, Any] = {"immutable": list(data.immutables)}
        increase = [f for f, d in monotone.items() if d == "increase"]
        decrease = [f for f, d in monotone.items() if d == "decrease"]
        if increase:
            self.constraints_["increase"] = increase
        if decrease:
            self.constraints_["decrease"] = decrease
        self._raw_dtypes = {c: raw_train[c].dtype for c in self._features_raw}

        if explainer is not None:
            # reuse a fit (e.g. run "first" and "last" on one L-GMVAE); training hyperparameters are ignored
            fitted_features = list(getattr(getattr(explainer, "schema_", None), "features", []) or [])
            if not fitted_features:
                raise ValueError("explainer must be a fitted Lapace (call fit first, or pass explainer=None)")
            if fitted_features != self._features_raw:
                raise ValueError(
                    "explainer was fitted on features %s, but this model's data has %s" % (fitted_features, self._features_raw)
                )
            self.lapace_ = explainer
            self.fit_time_ = float(getattr(explainer, "fit_time_", 0.0))
            self.last_explanation_ = None
            return
        options = {k: v for k, v in hp.items() if k in lapace_params.PARAMETERS}
        self.lapace_ = Lapace(schema=self.schema_, **options)
        start = time.perf_counter()
        self.lapace_.fit(raw_train, predict_proba=self._predict_proba_raw)
        self.fit_time_ = float(getattr(self.lapace_, "fit_time_", time.perf_counter() - start))
        self.last_explanation_ = None

    @classmethod
    def _check_hyperparams(cls, hyperparams: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        given = dict(hyperparams or {})
        unknown = sorted(k for k in given if k not in cls._DEFAULT_HYPERPARAMS)
        if unknown:
            raise InvalidParameterError(
                "unknown LapaceCarla hyperparameter(s) %s; allowed keys: %s" % (unknown, sorted(cls._DEFAULT_HYPERPARAMS))
            )
        params = dict(cls._DEFAULT_HYPERPARAMS)
        params.update(given)
        params.update(lapace_params.check_params({k: v for k, v in params.items() if k in lapace_params.PARAMETERS}))
        STRATEGIES.check(params["strategy"])
        lapace_params.Flag().check("monotone", params["monotone"])
        lapace_params.Integer(0, None).check("target_class", params["target_class"])
        return params

    # raw <-> encoded -------------------------------------------------------------------------------
    def _encode(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Raw features -> encoded, normalised frame in ``mlmodel.feature_input_order``."""
        enc = self._mlmodel.data.transform(raw[self._features_raw])
        return self._mlmodel.get_ordered_features(enc)

    def _predict_proba_raw(self, raw: pd.DataFrame) -> np.ndarray:
        out = self._mlmodel.predict_proba(self._encode(raw))
        if torch.is_tensor(out):
            out = out.detach().cpu().numpy()
        return np.asarray(out, dtype=float)

    def _decode(self, encoded: pd.DataFrame) -> pd.DataFrame:
        """Encoded factuals -> raw frame with integer rounding, training bounds and raw dtypes."""
        raw = self._mlmodel.data.inverse_transform(encoded)
        raw = raw[self._features_raw].copy()
        for col in self._continuous:
            lo, hi = self.schema_.ranges[col]
            raw[col] = round_to_precision(raw[col].astype(float).clip(lo, hi), self.schema_, col, dtype=self._raw_dtypes[col])
        for col in self._categorical:
            raw[col] = raw[col].astype(self._raw_dtypes[col])
        return raw

    def _factuals_to_raw(self, factuals: pd.DataFrame) -> pd.DataFrame:
        order = list(self._mlmodel.feature_input_order)
        if all(c in factuals.columns for c in order):
            return self._decode(self._mlmodel.get_ordered_features(factuals))
        if all(c in factuals.columns for c in self._features_raw):
            return factuals[self._features_raw].copy()
        raise ValueError(
            "factuals must carry either the encoded columns %s (CARLA's usual input) or the raw columns %s; "
            "missing encoded: %s" % (order, self._features_raw, [c for c in order if c not in factuals.columns])
        )

    # the RecourseMethod contract -------------------------------------------------------------------
    def get_counterfactuals(self, factuals: pd.DataFrame) -> pd.DataFrame:
        """One counterfactual per factual: encoded, normalised, ``feature_input_order``, factuals' index.

        Accepts encoded factuals (rows of ``data.df``/``df_test``, CARLA's usual input) or raw ones.
        A factual without a valid counterfactual gets a row of NaN.
        """
        order = list(self._mlmodel.feature_input_order)
        if len(factuals) == 0:
            return pd.DataFrame(columns=order, index=factuals.index, dtype=float)
        raw = self._factuals_to_raw(factuals).reset_index(drop=True)
        target = int(self.hyperparams["target_class"])
        explanation = self.lapace_.explain(
            raw,
            target_class=target,
            strategy=self.hyperparams["strategy"],
            n_counterfactuals=1,
            constraints=self.constraints_,
            **{name: self.hyperparams[name] for name in lapace_params.per_call_names()},
        )
        self.last_explanation_ = explanation
        cfs = explanation.counterfactuals
        out = pd.DataFrame(np.nan, index=pd.RangeIndex(len(raw)), columns=order, dtype=float)
        if len(cfs):
            best = cfs.groupby(level=0, sort=False).head(1)
            positions = best.index.get_level_values(0)
            encoded = self._encode(best.reset_index(drop=True)[self._features_raw])
            # CARLA's convention (its baselines end with check_counterfactuals): a returned row must be
            # predicted as the target by mlmodel itself; LAPACE already checked this on the same function
            proba = self._mlmodel.predict_proba(encoded)
            if torch.is_tensor(proba):
                proba = proba.detach().cpu().numpy()
            ok = assigned_to(proba, target)
            out.loc[np.asarray(positions)[ok], order] = encoded.to_numpy(dtype=float)[ok]
        out.index = factuals.index
        return out

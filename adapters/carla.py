"""LAPACE inside CARLA (``carla-recourse`` 0.0.5): a ``RecourseMethod`` plus offline data/model helpers.

carla-recourse 0.0.5 installs and imports only on Python 3.7 with its exact 2020 pins (torch 1.7.0,
numpy 1.19.4, pandas 1.1.4, scikit-learn 0.23.2, TensorFlow 1.14) and ``protobuf<=3.20``. Build that
environment with ``bash .ci/carla_env.sh DIR`` and run everything below with ``DIR/bin/python``.

CARLA's ``DataCatalog`` and ``MLModelCatalog`` download data and models at run time, so this module
ships offline equivalents:

``TabularData``
    a CARLA ``Data`` (a ``carla.data.catalog.DataCatalog``) built from a raw DataFrame; it fits CARLA's
    own MinMaxScaler + OneHotEncoder(drop="if_binary") pipeline and keeps the raw frames.
    ``TabularData.from_dataset(lapace_plugin.datasets.load("adult"))`` does it in one call.
``TorchModel`` / ``SklearnModel``
    CARLA ``MLModel`` wrappers; ``train_torch_mlp(data)`` and ``train_sklearn(data)`` fit a classifier
    on a ``TabularData``.
``LapaceCarla``
    the LAPACE ``RecourseMethod`` for ``carla.Benchmark``.

Example (in the CARLA environment)::

    from carla.evaluation import Benchmark
    from lapace_plugin import datasets
    from adapters.carla import LapaceCarla, TabularData, train_torch_mlp

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
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

try:
    import torch
    from carla.data.catalog import DataCatalog
    from carla.models.api import MLModel
    from carla.recourse_methods.api import RecourseMethod
except ImportError as exc:  # pragma: no cover - exercised only outside the CARLA environment
    raise ImportError(
        "adapters.carla needs carla-recourse 0.0.5 (and torch), which install only on Python 3.7 with "
        "CARLA's pinned 2020 stack (torch 1.7.0, numpy 1.19.4, pandas 1.1.4, scikit-learn 0.23.2, "
        "tensorflow 1.14) plus protobuf<=3.20. Build that environment with "
        "`bash .ci/carla_env.sh DIR` (default DIR: ${TMPDIR:-/tmp}/lapace-carla-venv) and run with "
        "DIR/bin/python. Original error: %s" % (exc,)
    ) from exc

from lapace_plugin import FeatureSchema, Lapace

__all__ = [
    "TabularData",
    "TorchModel",
    "SklearnModel",
    "MLP",
    "train_torch_mlp",
    "train_sklearn",
    "LapaceCarla",
    "binarize_categoricals",
]

with warnings.catch_warnings():  # torch 1.7's CUDA wheel warns on machines without an NVIDIA driver
    warnings.simplefilter("ignore")
    _DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the device CARLA 0.0.5's baselines use


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def binarize_categoricals(frame: pd.DataFrame, categorical: Sequence[str]) -> pd.DataFrame:
    """Map every categorical feature with more than two levels to "most frequent level" vs the rest.

    CARLA 0.0.5's own catalogue datasets are binarised this way (e.g. Adult's ``race`` is White /
    Non-White) and several of its baselines (GrowingSpheres, Wachter, CCHVAE with
    ``binary_cat_features=True``) treat every encoded categorical column as an independent binary
    feature, which produces invalid one-hot groups on multi-level features. The remaining levels are
    merged into ``"Non-<top level>"``.
    """
    out = frame.copy()
    for name in categorical:
        col = out[name].astype(str)
        counts = col.value_counts()
        if len(counts) <= 2:
            out[name] = col
            continue
        top = counts.index[0]
        out[name] = np.where(col == top, top, "Non-" + top)
    return out


class TabularData(DataCatalog):
    """A CARLA ``Data`` built offline from a raw DataFrame.

    Continuous features are scaled with CARLA's MinMaxScaler and categorical features encoded with its
    ``OneHotEncoder(drop="if_binary")`` (the ``"MinMax"`` / ``"OneHot_drop_binary"`` pipeline of
    ``carla.data.catalog.DataCatalog``), so every CARLA baseline finds the ``scaler``, ``encoder``
    (with ``get_feature_names(categorical)``), ``transform`` and ``inverse_transform`` it expects.
    ``df``, ``df_train`` and ``df_test`` are already transformed, as in CARLA's catalogue; the raw
    frames are kept as ``raw``, ``raw_train`` and ``raw_test``.

    Parameters
    ----------
    frame
        Raw data: the features and the target column. The target must be binary 0/1 (1 = the
        favourable outcome CARLA's harness asks counterfactuals for).
    target
        Name of the target column.
    continuous, categorical
        Raw feature names. Feature order is continuous then categorical unless ``frame`` orders them.
    immutables
        Raw names of immutable features.
    monotone
        Optional ``{feature: "increase" | "decrease"}`` for continuous features; CARLA ignores it,
        ``LapaceCarla`` honours it (hyperparameter ``monotone``).
    test_size, random_state
        Stratified train/test split of ``frame`` (ignored when ``train_index`` is given).
    train_index
        Optional labels of ``frame`` forming the training split (the rest is the test split).
    name
        Dataset name (CARLA uses it in cache paths of some baselines).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        target: str,
        continuous: Sequence[str],
        categorical: Sequence[str],
        immutables: Sequence[str] = (),
        monotone: Optional[Mapping[str, str]] = None,
        test_size: float = 0.25,
        random_state: Optional[int] = 0,
        train_index: Optional[Sequence[Any]] = None,
        name: str = "custom",
    ) -> None:
        self._target = str(target)
        self._continuous = list(continuous)
        self._categorical = list(categorical)
        self._immutables = list(immutables)
        self.monotone: Dict[str, str] = dict(monotone or {})
        features = self._continuous + self._categorical
        missing = [c for c in features + [self._target] if c not in frame.columns]
        if missing:
            raise ValueError("columns %s are missing from the frame; columns: %s" % (missing, list(frame.columns)))
        for group, names in (("immutable", self._immutables), ("monotone", list(self.monotone))):
            unknown = [n for n in names if n not in features]
            if unknown:
                raise ValueError("%s features %s are not features of the data: %s" % (group, unknown, features))
        labels = set(pd.unique(frame[self._target]).tolist())
        if not labels <= {0, 1}:
            raise ValueError(
                "target %r must be binary 0/1 (1 = favourable outcome), got values %s" % (self._target, sorted(labels, key=str))
            )
        order = [c for c in frame.columns if c in set(features)]
        raw = frame[order + [self._target]].copy()
        raw[self._target] = raw[self._target].astype(int)
        for name_ in self._categorical:
            raw[name_] = raw[name_].astype(str)  # one dtype per column for the OneHotEncoder
        if train_index is None:
            from sklearn.model_selection import train_test_split

            train_raw, test_raw = train_test_split(
                raw, test_size=test_size, random_state=random_state, stratify=raw[self._target]
            )
        else:
            train_raw = raw.loc[list(train_index)]
            test_raw = raw.drop(index=list(train_index))
        self.raw: pd.DataFrame = raw
        self.raw_train: pd.DataFrame = train_raw.copy()
        self.raw_test: pd.DataFrame = test_raw.copy()
        self.raw_features: List[str] = order
        super().__init__(name, raw, train_raw, test_raw, "MinMax", "OneHot_drop_binary")

    @classmethod
    def from_dataset(
        cls,
        ds: Any,
        test_size: float = 0.25,
        random_state: Optional[int] = 0,
        binarize: bool = True,
        max_rows: Optional[int] = None,
    ) -> "TabularData":
        """Build CARLA data from a bundled dataset (``lapace_plugin.datasets.load(name)``).

        Parameters
        ----------
        ds
            A bundled dataset: ``ds.X`` (raw features), ``ds.y`` (binary 0/1 target, 1 favourable),
            ``ds.schema`` (continuous/categorical/immutable/monotone) and ``ds.target``.
        test_size, random_state
            Stratified train/test split.
        binarize
            Binarise multi-level categoricals as CARLA's own catalogue does (see
            :func:`binarize_categoricals`); keep ``True`` to run CARLA's baselines. ``False`` keeps
            every level (only LAPACE and methods that respect one-hot groups are then sound).
        max_rows
            Optional stratified subsample of the rows (for quick runs and tests).
        """
        schema = ds.schema
        target = getattr(ds, "target", None)
        target = target if isinstance(target, str) else getattr(ds.y, "name", None) or "target"
        frame = ds.X.copy()
        y = pd.Series(np.asarray(ds.y), index=frame.index)
        if y.nunique() != 2:
            raise ValueError("CARLA's harness needs a binary target; %r has %d classes" % (target, y.nunique()))
        favourable = getattr(ds, "favourable", None)
        if favourable is not None:
            y = (y == favourable).astype(int)  # CARLA asks for class 1: the favourable outcome
        elif not set(y.unique().tolist()) <= {0, 1}:
            raise ValueError(
                "dataset target %r must be 0/1 (1 = favourable) or the dataset must declare `favourable`; "
                "got %s" % (target, sorted(y.unique(), key=str))
            )
        frame[target] = y.astype(int)
        if max_rows is not None and max_rows < len(frame):
            from sklearn.model_selection import train_test_split

            frame, _ = train_test_split(frame, train_size=int(max_rows), random_state=random_state, stratify=frame[target])
        categorical = list(schema.categorical)
        if binarize:
            frame = binarize_categoricals(frame, categorical)
        name = getattr(ds, "name", None) or "custom"
        return cls(
            frame,
            target=target,
            continuous=list(schema.continuous),
            categorical=categorical,
            immutables=list(schema.immutable),
            monotone=dict(getattr(schema, "monotone", {}) or {}),
            test_size=test_size,
            random_state=random_state,
            name=str(name),
        )

    @property
    def categorical(self) -> List[str]:
        return self._categorical

    @property
    def continuous(self) -> List[str]:
        return self._continuous

    @property
    def immutables(self) -> List[str]:
        return self._immutables

    @property
    def target(self) -> str:
        return self._target

    @property
    def encoded_features(self) -> List[str]:
        """Encoded column names in ``transform`` order: continuous, then one-hot columns."""
        return self._continuous + list(self.encoder.get_feature_names(self._categorical))


def raw_training_frame(data: Any) -> pd.DataFrame:
    """Raw (unscaled, unencoded) training features of a CARLA ``Data``, without the target."""
    if isinstance(data, TabularData):
        return data.raw_train[data.raw_features].copy()
    raw = data.inverse_transform(data.df_train)
    features = list(data.continuous) + list(data.categorical)
    return raw[[c for c in raw.columns if c in set(features)]].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------
def _as_matrix(x: Any) -> np.ndarray:
    if isinstance(x, pd.DataFrame):
        return x.to_numpy(dtype=np.float32)
    if torch.is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


class _EncodedModel(MLModel):
    """Shared parts of the two wrappers: feature order and input checks."""

    def __init__(self, data: Any, feature_input_order: Optional[Sequence[str]] = None) -> None:
        super().__init__(data)
        if feature_input_order is None:
            feature_input_order = _encoded_order(data)
        self._feature_input_order = list(feature_input_order)

    @property
    def feature_input_order(self) -> List[str]:
        return self._feature_input_order

    def _ordered(self, x: Any) -> Any:
        if isinstance(x, pd.DataFrame):
            x = self.get_ordered_features(x)
        if len(x.shape) != 2:
            raise ValueError("input must be two-dimensional (instances, features), got shape %s" % (tuple(x.shape),))
        return x

    def predict(self, x: Any) -> Any:
        """Probability of class 1, shape (n, 1); a tensor for tensor input."""
        return self.predict_proba(x)[:, 1].reshape((-1, 1))


class MLP(torch.nn.Module):
    """A small feed-forward classifier that outputs class probabilities (softmax), shape (n, 2).

    CARLA's gradient baselines (Wachter, Revise, CCHVAE) call ``raw_model(x)`` and read
    probabilities from it, so the softmax is part of the module.
    """

    def __init__(self, n_inputs: int, hidden: Sequence[int] = (18, 9), n_classes: int = 2) -> None:
        super().__init__()
        layers: List[torch.nn.Module] = []
        width = n_inputs
        for h in hidden:
            layers += [torch.nn.Linear(width, int(h)), torch.nn.ReLU()]
            width = int(h)
        layers.append(torch.nn.Linear(width, n_classes))
        self.logits = torch.nn.Sequential(*layers)
        self.softmax = torch.nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.logits(x))


class TorchModel(_EncodedModel):
    """CARLA ``MLModel`` around a torch module mapping encoded rows to class probabilities.

    Parameters
    ----------
    data
        The CARLA ``Data`` the model was trained on.
    model
        ``torch.nn.Module``; input (n, D) float tensor in ``feature_input_order``, output (n, 2)
        probabilities (e.g. :class:`MLP`).
    feature_input_order
        Encoded feature order; default ``data.encoded_features``.

    ``predict_proba`` returns a tensor (differentiable) for tensor input and a numpy array otherwise.
    """

    def __init__(self, data: Any, model: torch.nn.Module, feature_input_order: Optional[Sequence[str]] = None):
        super().__init__(data, feature_input_order)
        self._model = model.to(_DEVICE)
        self._model.eval()

    @property
    def backend(self) -> str:
        return "pytorch"

    @property
    def raw_model(self) -> torch.nn.Module:
        return self._model

    def predict_proba(self, x: Any) -> Any:
        x = self._ordered(x)
        if torch.is_tensor(x):
            return self._model(x.float().to(_DEVICE))
        with torch.no_grad():
            out = self._model(torch.from_numpy(_as_matrix(x)).to(_DEVICE))
        return out.cpu().numpy()


class SklearnModel(_EncodedModel):
    """CARLA ``MLModel`` around a fitted scikit-learn classifier on encoded rows (``backend="sklearn"``)."""

    def __init__(self, data: Any, estimator: Any, feature_input_order: Optional[Sequence[str]] = None):
        super().__init__(data, feature_input_order)
        self._model = estimator

    @property
    def backend(self) -> str:
        return "sklearn"

    @property
    def raw_model(self) -> Any:
        return self._model

    @property
    def tree_iterator(self) -> Any:
        """The fitted estimator (CARLA's tree methods iterate over a forest's estimators)."""
        return self._model

    def predict_proba(self, x: Any) -> np.ndarray:
        return self._model.predict_proba(_as_matrix(self._ordered(x)))


def _encoded_order(data: Any) -> List[str]:
    """``transform``'s column order: continuous features, then the one-hot columns."""
    return list(data.continuous) + list(data.encoder.get_feature_names(data.categorical))


def _xy(data: Any, frame: pd.DataFrame, order: Sequence[str]):
    return frame[list(order)].to_numpy(dtype=np.float32), frame[data.target].to_numpy().astype(int)


def train_torch_mlp(
    data: Any,
    hidden: Sequence[int] = (18, 9),
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    random_state: int = 0,
    verbose: bool = False,
) -> TorchModel:
    """Train an :class:`MLP` (cross-entropy, Adam) on ``data.df_train`` and wrap it as a ``TorchModel``.

    Test accuracy on ``data.df_test`` is stored as ``model.test_accuracy``.
    """
    torch.manual_seed(random_state)
    order = _encoded_order(data)
    net = MLP(len(order), hidden)
    x, y = _xy(data, data.df_train, order)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    loss_fn = torch.nn.NLLLoss()
    gen = torch.Generator().manual_seed(random_state)
    net.train()
    for epoch in range(int(epochs)):
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for start in range(0, len(xt), batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(torch.log(net(xt[idx]) + 1e-12), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        if verbose:
            print("epoch %d loss %.4f" % (epoch + 1, total / len(xt)))
    model = TorchModel(data, net, order)
    xs, ys = _xy(data, data.df_test, order)
    model.test_accuracy = float((model.predict_proba(xs).argmax(axis=1) == ys).mean())
    return model


def train_sklearn(data: Any, estimator: Any = None, random_state: int = 0) -> SklearnModel:
    """Fit ``estimator`` (default: a 100-tree random forest) on ``data.df_train``; wrap it as ``SklearnModel``."""
    if estimator is None:
        from sklearn.ensemble import RandomForestClassifier

        estimator = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=random_state, n_jobs=1)
    order = _encoded_order(data)
    x, y = _xy(data, data.df_train, order)
    estimator.fit(x, y)
    model = SklearnModel(data, estimator, order)
    xs, ys = _xy(data, data.df_test, order)
    model.test_accuracy = float((model.predict_proba(xs).argmax(axis=1) == ys).mean())
    return model


# --------------------------------------------------------------------------------------------------
# The recourse method
# --------------------------------------------------------------------------------------------------
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
        Optional dict; unknown keys raise ``ValueError``. Keys and defaults:

        * ``strategy``: ``"first"`` (proximal end of each latent path) or ``"last"`` (the decoded
          centroid, projected onto the constraints), default ``"first"``.
        * ``path``: how latent points become rows, ``"corrected"`` (default: the path starts at the
          factual itself), ``"sparse"`` or the paper's ``"latent"``; ``search``: ``"grid"`` (default:
          classify every path point) or ``"fast"`` (coarse scan and bisection). See :class:`lapace_plugin.Lapace`.
        * ``revert``: set each changed feature back to the factual's value while the counterfactual stays
          valid (fewer changed features, nothing for CARLA's Redundancy metric to count), default ``False``.
        * ``target_class``: class index asked for, default 1 (CARLA's favourable label; its harness
          counts only class-1 counterfactuals as successes).
        * ``components_per_class``: mixture components per class (= paths per factual), default 5.
        * ``n_steps``: path steps from the factual to a centroid, default 20.
        * ``epochs``: L-GMVAE training epochs, default ``None`` (LAPACE's own default / early stopping).
        * ``random_state``: seed, default 0.
        * ``latent_dim``: latent size, default 16.
        * ``hidden``: MLP widths of the L-GMVAE, default ``(128, 128)``.
        * ``batch_size``: default 256. ``learning_rate``: default 1e-3.
        * ``continuous_weight``: weight of the continuous reconstruction term, default 10.0.
        * ``kl_weight``: weight of the KL terms of the ELBO, default 1.0.
        * ``monotone``: also honour ``data.monotone`` (e.g. age increase-only) when the data declares
          it, default ``False``: CARLA's ``Data`` declares only immutables, and the harness's
          Constraint_Violation counts only those.
        * ``device``: torch device of the L-GMVAE, default ``"cpu"``.
        * ``verbose``: print training progress, default ``False``.
    explainer
        Optional already fitted :class:`lapace_plugin.Lapace` for the same data and model (e.g.
        ``other.lapace_`` of a ``LapaceCarla`` with another strategy); it is used as is and the
        training hyperparameters are then ignored.
    """

    _DEFAULT_HYPERPARAMS: Dict[str, Any] = {
        "strategy": "first",
        "path": "corrected",
        "search": "grid",
        "revert": False,
        "target_class": 1,
        "components_per_class": 5,
        "n_steps": 20,
        "epochs": None,
        "random_state": 0,
        "latent_dim": 16,
        "hidden": (128, 128),
        "batch_size": 256,
        "learning_rate": 1e-3,
        "continuous_weight": 10.0,
        "kl_weight": 1.0,
        "monotone": False,
        "device": "cpu",
        "verbose": False,
    }

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
            schema_frame, categorical=self._categorical, immutable=list(data.immutables), monotone=monotone
        )
        self.constraints_: Dict[str, Any] = {"immutable": list(data.immutables)}
        increase = [f for f, d in monotone.items() if d == "increase"]
        decrease = [f for f, d in monotone.items() if d == "decrease"]
        if increase:
            self.constraints_["increase"] = increase
        if decrease:
            self.constraints_["decrease"] = decrease
        self._raw_dtypes = {c: raw_train[c].dtype for c in self._features_raw}
        self._integer = set(self.schema_.integer)

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
        self.lapace_ = Lapace(
            schema=self.schema_,
            components_per_class=hp["components_per_class"],
            latent_dim=hp["latent_dim"],
            hidden=tuple(hp["hidden"]),
            epochs=hp["epochs"],
            batch_size=hp["batch_size"],
            learning_rate=hp["learning_rate"],
            continuous_weight=hp["continuous_weight"],
            kl_weight=hp["kl_weight"],
            n_steps=hp["n_steps"],
            random_state=hp["random_state"],
            device=hp["device"],
            verbose=hp["verbose"],
        )
        start = time.perf_counter()
        self.lapace_.fit(raw_train, predict_proba=self._predict_proba_raw)
        self.fit_time_ = float(getattr(self.lapace_, "fit_time_", time.perf_counter() - start))
        self.last_explanation_ = None

    @classmethod
    def _check_hyperparams(cls, hyperparams: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        given = dict(hyperparams or {})
        unknown = sorted(k for k in given if k not in cls._DEFAULT_HYPERPARAMS)
        if unknown:
            raise ValueError(
                "unknown LapaceCarla hyperparameter(s) %s; allowed keys: %s" % (unknown, sorted(cls._DEFAULT_HYPERPARAMS))
            )
        params = dict(cls._DEFAULT_HYPERPARAMS)
        params.update(given)
        for key, choices in (("strategy", STRATEGIES), ("path", PATHS), ("search", SEARCHES)):
            if params[key] not in choices:
                raise ValueError("%s must be one of %s, got %r" % (key, ", ".join(repr(c) for c in choices), params[key]))
        if not isinstance(params["revert"], (bool, np.bool_)):
            raise ValueError("revert must be True or False, got %r" % (params["revert"],))
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
            vals = raw[col].astype(float).clip(lo, hi)
            if col in self._integer:
                vals = vals.round()
            raw[col] = vals.astype(self._raw_dtypes[col])
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
            path=self.hyperparams["path"],
            search=self.hyperparams["search"],
            revert=self.hyperparams["revert"],
            n_counterfactuals=1,
            constraints=self.constraints_,
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
            ok = np.asarray(proba).argmax(axis=1) == target
            out.loc[np.asarray(positions)[ok], order] = encoded.to_numpy(dtype=float)[ok]
        out.index = factuals.index
        return out

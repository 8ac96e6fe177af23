"""Offline CARLA fixtures (``carla-recourse`` 0.0.5): a ``Data`` built from a DataFrame and ``MLModel`` wrappers.

CARLA's ``DataCatalog`` and ``MLModelCatalog`` download data and models at run time, so this module ships offline
equivalents for benchmarks, tests and notebooks:

``TabularData``
    a CARLA ``Data`` (a ``carla.data.catalog.DataCatalog``) built from a raw DataFrame; it fits CARLA's
    own MinMaxScaler + OneHotEncoder(drop="if_binary") pipeline and keeps the raw frames.
    ``TabularData.from_dataset(lapace_plugin.datasets.load("adult"))`` does it in one call.
``TorchModel`` / ``SklearnModel``
    CARLA ``MLModel`` wrappers; ``train_torch_mlp(data)`` and ``train_sklearn(data)`` fit a classifier
    on a ``TabularData``.

They run in the CARLA environment only (Python 3.7 with CARLA's pins; ``bash .ci/carla_env.sh DIR``). The
recourse method itself is :class:`lapace_plugin.adapters.carla.LapaceCarla`.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from lapace_plugin.rules import assigned_to

try:
    import torch
    from carla.data.catalog import DataCatalog
    from carla.models.api import MLModel
except ImportError as exc:  # pragma: no cover - exercised only outside the CARLA environment
    raise ImportError(
        "lapace_plugin.adapters.carla_data needs carla-recourse 0.0.5 (and torch), which install only on Python 3.7 "
        "with CARLA's pinned 2020 stack (torch 1.7.0, numpy 1.19.4, pandas 1.1.4, scikit-learn 0.23.2, "
        "tensorflow 1.14) plus protobuf<=3.20. Build that environment with "
        "`bash .ci/carla_env.sh DIR` (default DIR: ${TMPDIR:-/tmp}/lapace-carla-venv) and run with "
        "DIR/bin/python. Original error: %s" % (exc,)
    ) from exc

__all__ = [
    "TabularData",
    "TorchModel",
    "SklearnModel",
    "MLP",
    "train_torch_mlp",
    "train_sklearn",
    "binarize_categoricals",
    "raw_training_frame",
]

with warnings.catch_warnings():  # torch 1.7's CUDA wheel warns on machines without an NVIDIA driver
    warnings.simplefilter("ignore")
    DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the device CARLA 0.0.5's baselines use


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
        categorical = list(schema.categorical) + list(getattr(schema, "ordinal", {}))  # CARLA has no ordinal type
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
        self._model = model.to(DEVICE)
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
            return self._model(x.float().to(DEVICE))
        with torch.no_grad():
            out = self._model(torch.from_numpy(_as_matrix(x)).to(DEVICE))
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
    model.test_accuracy = float(assigned_to(model.predict_proba(xs), ys).mean())
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
    model.test_accuracy = float(assigned_to(model.predict_proba(xs), ys).mean())
    return model

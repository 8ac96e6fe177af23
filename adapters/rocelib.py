"""LAPACE behind RoCELib's ``RecourseGenerator``, and RoCELib's generators on this package's data and models.

`RoCELib <https://github.com/JStadl/RoCELib>`_ 0.2.3 (``pip install --no-deps rocelib==0.2.3``; see the README for
why ``--no-deps``) benchmarks robust counterfactual methods on numeric frames: a ``Task`` holds a ``DatasetLoader``
(features plus a ``target`` column) and a ``TrainedModel``, and every method is a ``RecourseGenerator(task)`` with
``generate(instances, neg_value, column_name)``. This module translates at that boundary:

- :class:`Encoding`: raw rows <-> RoCELib's numeric frame (numeric features min-max scaled with the schema's ranges,
  ordinal levels over ``K - 1``, one 0/1 column per category: :func:`lapace_plugin.distance.embed`'s space), and back
  (categories by arg-max, levels and integers rounded);
- :class:`RawModel`: a RoCELib ``TrainedModel`` over any ``predict_proba`` on raw rows;
- :func:`make_task`: a RoCELib ``Task`` from raw training rows, labels and a classifier;
- :func:`lapace_generator`: a ``RecourseGenerator`` class bound to a fitted :class:`~lapace_plugin.Lapace`, to
  register in ``task.methods`` and run in RoCELib's own evaluators beside its methods;
- :func:`explain`: any RoCELib generator on raw queries, with the package's ``(query, rank)`` output and failures.

RoCELib's generators are binary: the target class is ``1 - neg_value``. A LAPACE query without a counterfactual is
returned as the query itself (RoCELib's convention, e.g. ``KDTreeNNCE`` and ``Wachter``), so RoCELib's evaluators
count it invalid; the reason is kept in the generator's ``failures``.

Only RoCELib modules that import neither TensorFlow nor Gurobi are used: ``tasks.Task`` (not
``ClassificationTask``, whose imports pull in Keras, clingo and Gurobi), the model-agnostic generators ``NNCE``,
``KDTreeNNCE`` and ``DiverseRobustCE``, and the evaluators ``ValidityEvaluator``,
``DistanceEvaluator``, ``ManifoldEvaluator`` and ``SetDistanceRobustnessEvaluator``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Type

import numpy as np
import pandas as pd

from ..distance import embed, embedded_mean_l1, span
from ..rules import round_to_precision
from ..schema import FeatureSchema

INSTALL_HINT = (
    "the RoCELib adapter needs rocelib 0.2.3 without its pins (torch 2.4.1, TensorFlow 2.16.2): "
    "pip install --no-deps rocelib==0.2.3"
)

try:
    from rocelib.datasets.DatasetLoader import DatasetLoader
    from rocelib.models.TrainedModel import TrainedModel
    from rocelib.recourse_methods.RecourseGenerator import RecourseGenerator
    from rocelib.tasks.Task import Task
except ImportError as exc:  # pragma: no cover - exercised only without rocelib
    raise ImportError("%s (%s)" % (INSTALL_HINT, exc)) from exc

TARGET = "target"
GENERATORS = {  # RoCELib's model-agnostic generators: class name -> module
    "NNCE": "rocelib.recourse_methods.NNCE",
    "KDTreeNNCE": "rocelib.recourse_methods.KDTreeNNCE",
    "DiverseRobustCE": "rocelib.recourse_methods.DiverseRobustCE",
}
_EXTRA_COLUMNS = (TARGET, "predicted", "Loss", "loss")


class Encoding:
    """Raw rows <-> RoCELib's numeric frame.

    Columns: the schema's continuous features (min-max scaled with ``schema.ranges``), its ordinal features (level
    position over ``K - 1``), then ``feature=category`` for every category of every categorical feature (0/1).

    Parameters
    ----------
    schema
        The raw rows' schema; its ranges fix the scaling (pass the training rows' schema).
    """

    def __init__(self, schema: FeatureSchema) -> None:
        self.schema = schema
        self.columns = list(schema.continuous) + list(schema.ordinal) + [
            "%s=%s" % (f, c) for f, cats in schema.categorical.items() for c in cats
        ]

    def encode(self, raw: pd.DataFrame) -> pd.DataFrame:
        """RoCELib's frame of raw rows (index kept)."""
        rows = self.schema.validate(raw, name="rows")
        return pd.DataFrame(embed(self.schema, rows), columns=self.columns, index=raw.index)

    def decode(self, frame: Any) -> pd.DataFrame:
        """Raw rows of encoded rows (a frame, array or tensor): scaled values mapped back and rounded for integer
        features, ordinal positions to the nearest level, each category block to its largest column. Extra columns (target, predicted, loss) are ignored."""
        if isinstance(frame, pd.DataFrame):
            index = frame.index
            values = frame.drop(columns=[c for c in _EXTRA_COLUMNS if c in frame.columns])
            missing = [c for c in self.columns if c not in values.columns]
            if missing:
                raise ValueError("encoded rows miss column(s) %s; expected %s" % (missing[:10], self.columns))
            values = values[self.columns].to_numpy(dtype=float)
        else:
            values = np.asarray(frame.detach().cpu().numpy() if hasattr(frame, "detach") else frame, dtype=float)
            values = values.reshape(-1, len(self.columns)) if values.ndim == 1 else values
            index = pd.RangeIndex(len(values))
        if values.shape[1] != len(self.columns):
            raise ValueError("encoded rows have %d columns; expected %d (%s)" % (values.shape[1], len(self.columns), self.columns))
        schema, out, at = self.schema, {}, 0
        for f in schema.continuous:
            out[f] = round_to_precision(float(schema.ranges[f][0]) + values[:, at] * span(schema, f), schema, f)
            at += 1
        for f, cats in schema.ordinal.items():
            level = np.clip(np.round(values[:, at] * max(len(cats) - 1, 1)), 0, len(cats) - 1).astype(int)
            out[f] = np.asarray(cats, dtype=object)[level]
            at += 1
        for f, cats in schema.categorical.items():
            out[f] = np.asarray(cats, dtype=object)[values[:, at : at + len(cats)].argmax(axis=1)]
            at += len(cats)
        raw = pd.DataFrame(out, index=index)[list(schema.features)]
        for f in schema.features:
            dtype = schema.dtypes.get(f, "float64")
            if f in schema.categorical or f in schema.ordinal:
                raw[f] = raw[f].astype(object)  # plain Python values, as the bundled datasets hold them
            elif f in schema.integer and "int" in dtype:
                raw[f] = raw[f].astype(dtype)
        return raw

    def distance(self, x: pd.DataFrame, c: pd.DataFrame) -> float:
        """This package's distance between two encoded rows, as a RoCELib ``distance_func``: numeric and ordinal
        features in scaled units plus 1 per changed category, over ``d`` features (:mod:`lapace_plugin.distance`'s
        (1/d)-L1).

        Each argument holds one row's values in any shape (RoCELib passes column frames).
        """
        return embedded_mean_l1(self.schema, np.asarray(x, dtype=float).ravel(), np.asarray(c, dtype=float).ravel())


class RawModel(TrainedModel):
    """A RoCELib ``TrainedModel`` over a classifier on raw rows (``predict_proba``: raw DataFrame -> ``(n, 2)``).

    RoCELib's generators call it on encoded frames, arrays or tensors; it decodes them with ``encoding``.
    """

    def __init__(self, predict_proba: Callable[[pd.DataFrame], Any], encoding: Encoding) -> None:
        self._predict_proba = getattr(predict_proba, "predict_proba", predict_proba)
        self.encoding = encoding

    def predict_proba(self, X: Any) -> pd.DataFrame:
        raw = self.encoding.decode(X)
        proba = np.asarray(self._predict_proba(raw), dtype=float)
        return pd.DataFrame(proba, columns=list(range(proba.shape[1])))

    def predict(self, X: Any) -> np.ndarray:
        """Class index of every row, ``(n,)``."""
        return self.predict_proba(X).to_numpy().argmax(axis=1)

    def predict_single(self, x: Any) -> int:
        if isinstance(x, pd.Series):
            x = x.to_frame().T
        return int(self.predict(x)[0])

    def evaluate(self, X: Any, y: Any) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y).ravel()))


class Frame(DatasetLoader):
    """A RoCELib ``DatasetLoader`` over an encoded frame with a ``target`` column."""

    def __init__(self, data: pd.DataFrame, neg_value: int = 0) -> None:
        super().__init__(TARGET, neg_value)
        self._data = data

    @property
    def X(self) -> pd.DataFrame:
        return self._data.drop(columns=[TARGET])

    @property
    def y(self) -> pd.Series:
        return self._data[TARGET]


def make_task(
    schema: FeatureSchema, X: pd.DataFrame, y: Sequence[int], predict_proba: Callable[[pd.DataFrame], Any], neg_value: int = 0
) -> Task:
    """A RoCELib ``Task`` on raw rows ``X`` with 0/1 labels ``y`` and a binary classifier.

    The task's dataset holds the encoded rows (:class:`Encoding` of ``schema``) with a fresh 0..n-1 index and the
    labels in ``target``; its model is a :class:`RawModel`; ``task.encoding`` is the encoding. ``task.methods``
    starts with RoCELib's model-agnostic generators (:data:`GENERATORS`).
    """
    labels = np.asarray(y)
    if set(np.unique(labels).tolist()) - {0, 1}:
        raise ValueError("RoCELib tasks are binary: labels must be 0/1, got %s" % sorted(np.unique(labels).tolist())[:10])
    encoding = Encoding(schema)
    data = encoding.encode(X).reset_index(drop=True)
    data[TARGET] = labels.astype(int)
    task = Task(RawModel(predict_proba, encoding), Frame(data, neg_value))
    task.encoding = encoding
    task.methods = {name: generator(name) for name in GENERATORS}
    return task


def generator(name: str) -> Type[RecourseGenerator]:
    """RoCELib's generator class by name (:data:`GENERATORS`)."""
    if name not in GENERATORS:
        raise ValueError("unknown RoCELib generator %r; choose from %s" % (name, ", ".join(GENERATORS)))
    return getattr(importlib.import_module(GENERATORS[name]), name)


def lapace_generator(explainer: Any, encoding: Optional[Encoding] = None, **explain_settings: Any) -> Type[RecourseGenerator]:
    """A RoCELib ``RecourseGenerator`` class bound to a fitted :class:`~lapace_plugin.Lapace`.

    RoCELib builds generators as ``cls(task)`` (again for every instance in its input-robustness evaluator), so the
    fitted explainer travels with the class. Register it with ``task.methods["LAPACE"] = cls``.

    Parameters
    ----------
    explainer
        A fitted ``Lapace`` on raw rows of ``encoding.schema`` (or on the task's own numeric columns when
        ``encoding`` is ``None``).
    encoding
        How the task's frames map to the explainer's raw rows (``task.encoding`` of :func:`make_task`).
    explain_settings
        Keyword arguments of ``Lapace.explain`` (e.g. ``strategy="last"``); ``n_counterfactuals`` defaults to 1,
        since RoCELib's evaluators expect one counterfactual per instance.
    """
    settings = dict(explain_settings)
    settings.setdefault("n_counterfactuals", 1)

    class LapaceGenerator(RecourseGenerator):
        """LAPACE (latent paths in a label-conditional Gaussian mixture VAE) as a RoCELib generator."""

        def __init__(self, task: Task, custom_distance_func: Any = None) -> None:
            super().__init__(task, custom_distance_func)
            self.explainer, self.encoding, self.settings = explainer, encoding, settings
            self.failures: Dict[Any, str] = {}

        def generate(self, instances: pd.DataFrame, neg_value: int = 0, column_name: str = TARGET, **kwargs: Any) -> pd.DataFrame:
            """Counterfactuals of all ``instances`` in one batched ``explain`` (one row per instance when
            ``n_counterfactuals=1``; a failed instance is returned unchanged)."""
            frame = instances.to_frame().T if isinstance(instances, pd.Series) else instances
            frame = frame.drop(columns=[c for c in _EXTRA_COLUMNS + (column_name,) if c in frame.columns])
            raw = self.encoding.decode(frame) if self.encoding is not None else frame
            raw.index = frame.index
            wanted = 1 - int(neg_value)
            if wanted not in self.explainer.classes_:
                raise ValueError("RoCELib's target class %r is not among the explainer's classes %s; fit Lapace with "
                                 "0/1 classes" % (wanted, self.explainer.classes_))
            target = self.explainer.classes_.index(wanted)
            res = self.explainer.explain(raw, target_class=target, **self.settings)
            self.failures.update(res.failures)
            pieces = []
            for label in frame.index:
                found = res.for_query(label)
                if len(found):
                    rows = self.encoding.encode(found) if self.encoding is not None else found
                    rows.index = [label] * len(rows)
                    pieces.append(rows)
                else:
                    pieces.append(frame.loc[[label]])
            return pd.concat(pieces)

        def _generation_method(self, instance: Any, column_name: str = TARGET, neg_value: int = 0, **kwargs: Any) -> pd.DataFrame:
            return self.generate(instance, neg_value=neg_value, column_name=column_name)

    return LapaceGenerator


class Generated(NamedTuple):
    """:func:`explain`'s output: raw counterfactuals with a ``(query, rank)`` index, and failures."""

    counterfactuals: pd.DataFrame
    failures: Dict[Any, str]


def explain(method: RecourseGenerator, queries: pd.DataFrame, targets: Sequence[int], seed: Optional[int] = None, **kwargs: Any) -> Generated:
    """Run a RoCELib generator on raw ``queries`` (target class per query, 0 or 1), one instance at a time.

    RoCELib signals "nothing found" by returning the instance itself or an empty frame: such a query is a failure,
    with that reason. Every other returned row is decoded (:meth:`Encoding.decode`) and kept as it is, for the
    metrics to judge. ``seed`` seeds NumPy's global generator first. ``kwargs`` go to the generator (e.g.
    ``n_ces=3`` for ``DiverseRobustCE``).
    """
    task = method.task
    encoding: Encoding = task.encoding
    if seed is not None:
        np.random.seed(seed)
    encoded = encoding.encode(queries)
    pieces, failures = [], {}
    for (label, row), target in zip(encoded.iterrows(), np.asarray(targets, dtype=int)):
        found = method.generate_for_instance(row, neg_value=1 - int(target), column_name=TARGET, **kwargs)
        if found is None or len(found) == 0:
            failures[label] = "RoCELib %s returned no counterfactual" % type(method).__name__
            continue
        raw = encoding.decode(found.reset_index(drop=True))
        same = (raw.astype(object).to_numpy() == queries.loc[[label]].astype(object).to_numpy()).all(axis=1)
        raw = raw[~same]
        if len(raw) == 0:
            failures[label] = "RoCELib %s returned the query itself (no counterfactual found)" % type(method).__name__
            continue
        raw.index = pd.MultiIndex.from_arrays([[label] * len(raw), range(len(raw))], names=["query", "rank"])
        pieces.append(raw)
    if pieces:
        out = pd.concat(pieces)
    else:
        out = queries.iloc[:0].copy()
        out.index = pd.MultiIndex.from_arrays([[], []], names=["query", "rank"])
    for f in queries.columns:
        out[f] = out[f].astype(queries[f].dtype)
    return Generated(out, failures)

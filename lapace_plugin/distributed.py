"""Batch explain on a Dask cluster: an embedded ``LocalCluster`` by default, any Dask cluster by address.

>>> from lapace_plugin import distributed
>>> result = distributed.explain(explainer, rows)  # doctest: +SKIP
>>> result.counterfactuals.compute(), result.failures.compute()  # doctest: +SKIP

How it runs: the rows are cut into pieces of at most ``partition_rows``; each piece is one Dask task that calls
:func:`explain_partition` with one torch thread. The fitted explainer travels to each worker process once, as the
bytes of its own save folder (``Lapace.save``), and is loaded there once (``Lapace.load``) and cached; the classifier
travels as the user's object (pickled by Dask). Both are held as tasks of the graph, so a worker that dies is
replaced and its pieces are recomputed: no row is lost or duplicated.

Every input row is accounted for exactly once: its counterfactuals are rows of ``counterfactuals``, or it is a row of
``failures`` with the reason (a validation message such as NaN or an unknown category, or why no path found a valid
counterfactual).

Install with ``pip install "lapace-plugin[distributed]"``; ``import lapace_plugin`` never needs Dask.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import pandas as pd

from .explainer import Lapace, _torch_threads

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    from distributed import Client

INSTALL_HINT = 'batch explain on Dask needs dask and distributed: pip install "lapace-plugin[distributed]"'
PARTITION_ROWS = 5_000
MANIFEST = "_lapace_run.json"  # pyarrow and Dask skip files starting with "_" when reading a Parquet folder
ID = "query"  # the input row id column of both outputs, as in Explanation.to_frame()
BY_INDEX = "<the DataFrame's index>"  # row ids are a pandas DataFrame's index labels


def _require_dask() -> None:
    """Raise an ImportError naming the extra when dask, distributed or pyarrow is missing."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError("{} ({})".format(INSTALL_HINT, exc)) from exc


def machine_workers() -> int:
    """Worker processes that fit this machine: one per CPU core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


@contextmanager
def connect(workers: Optional[int] = None, scheduler: Union[None, str, "Client"] = None) -> Iterator["Client"]:
    """A Dask client for the duration of a ``with`` block.

    Parameters
    ----------
    workers
        Worker processes of an embedded ``LocalCluster`` (one thread each); ``None`` sizes it to the machine (one
        process per CPU core).
    scheduler
        An existing cluster: its scheduler address (``"tcp://host:8786"``) or a connected ``distributed.Client``.
        That cluster is used as it is and left running; only a client opened here is closed.

    Yields
    ------
    distributed.Client
        Connected client. An embedded cluster is started on entry and closed on exit.

    Examples
    --------
    >>> from lapace_plugin.distributed import connect
    >>> with connect(workers=2) as client:  # doctest: +SKIP
    ...     print(client.dashboard_link)
    """
    _require_dask()
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None and workers is not None:
        raise ValueError("give either workers (an embedded LocalCluster) or scheduler (an existing cluster), not both")
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is not None:
        if not isinstance(scheduler, str):
            raise TypeError("scheduler must be an address such as 'tcp://host:8786' or a distributed.Client, "
                            "got {!r}".format(type(scheduler).__name__))
        with Client(scheduler) as client:
            yield client
        return
    n = machine_workers() if workers is None else int(workers)
    if n < 1:
        raise ValueError("workers must be at least 1, got {}".format(workers))
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also freezes glibc's mmap threshold: every large
    # temporary array of explain is then mapped and unmapped afresh, about 30% slower (lapace bench --distributed).
    # Memory per worker is bounded by the partition, so the embedded cluster keeps glibc's default.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


# ---------------------------------------------------------------------------------------------- one partition
def explain_partition(
    explainer: Lapace, rows: pd.DataFrame, id_column: Optional[str] = None, **explain_kwargs: Any
) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Explain one partition of rows with one torch thread; the building block of :func:`explain`.

    Rows that fail the schema's validation (NaN, an unknown category, a non-numeric value) are reported as failures
    with the validation message and the other rows are still explained. Runs anywhere a fitted (or loaded)
    ``Lapace`` is at hand: a Dask worker, a Spark executor, a Ray worker.

    Parameters
    ----------
    explainer
        A fitted ``Lapace`` (or one from ``Lapace.load(path, predict_proba)``).
    rows
        Raw rows with the schema's feature columns (and ``id_column`` if given).
    id_column
        Column holding each row's unique id; default: the frame's index labels.
    **explain_kwargs
        Passed to ``Lapace.explain`` (``strategy``, ``constraints``, ``n_counterfactuals``, a single ``target_class``...).

    Returns
    -------
    counterfactuals : pandas.DataFrame
        One row per counterfactual: ``query`` (the row's id), ``rank``, the features in the caller's dtypes, then the
        other columns of ``Explanation.to_frame()`` (``component``, ``tau``, ``valid``, ``probability``...).
    failures : pandas.DataFrame
        One row per input row without a counterfactual: ``query``, ``reason`` and ``stage`` (``"validation"``
        or ``"explain"``).

    Examples
    --------
    Spark (``mapInPandas``): load the explainer once per Python worker and keep both outputs in one frame whose
    ``reason`` column is null for counterfactuals::

        import pandas as pd
        from lapace_plugin import Lapace
        from lapace_plugin.distributed import explain_partition

        def explain_batches(batches):
            explainer = Lapace.load("/dbfs/explainer", model.predict_proba)
            for rows in batches:
                counterfactuals, failures = explain_partition(explainer, rows, id_column="application_id")
                yield pd.concat([counterfactuals, failures], ignore_index=True)

        schema = "query long, rank double, age double, ..., reason string, stage string"
        out = spark_df.mapInPandas(explain_batches, schema=schema)

    Ray Data (``map_batches`` with a callable class, so each actor loads the explainer once)::

        class Explain:
            def __init__(self):
                self.explainer = Lapace.load("/mnt/explainer", model.predict_proba)

            def __call__(self, rows: pd.DataFrame) -> pd.DataFrame:
                counterfactuals, failures = explain_partition(self.explainer, rows, id_column="application_id")
                return pd.concat([counterfactuals, failures], ignore_index=True)

        out = ray.data.read_parquet("rows.parquet").map_batches(Explain, batch_format="pandas", concurrency=8)
    """
    _check_explain_kwargs(explain_kwargs)
    if id_column is not None:
        if id_column not in rows.columns:
            raise ValueError("id column %r is not a column of the rows; columns: %s" % (id_column, list(rows.columns)))
        rows = rows.set_index(id_column)
    if rows.index.has_duplicates:
        duplicated = rows.index[rows.index.duplicated()].unique()[:5].tolist()
        raise ValueError("row ids must be unique; duplicated: %s" % duplicated)
    with _torch_threads(1):
        valid, invalid = _validate_rows(explainer, rows)
        failures = [_failures(list(invalid), list(invalid.values()), "validation", rows.index.dtype)]
        if len(valid) == 0:
            return _empty_counterfactuals(explainer, rows.index.dtype, explain_kwargs), failures[0]
        explanation = explainer.explain(valid, **explain_kwargs)
    failures.append(_failures(list(explanation.failures), list(explanation.failures.values()), "explain", rows.index.dtype))
    counterfactuals = _counterfactual_frame(explanation)
    failures = pd.concat(failures, ignore_index=True)
    explained = counterfactuals[ID].nunique()
    if explained + len(failures) != len(rows) or set(failures[ID]) & set(counterfactuals[ID]):
        raise RuntimeError("explain_partition lost or duplicated rows: %d explained + %d failed for %d rows"
                           % (explained, len(failures), len(rows)))
    return counterfactuals, failures


def _check_explain_kwargs(kwargs: Dict[str, Any]) -> None:
    if "X" in kwargs:
        raise TypeError("pass the rows as data, not as X")
    target = kwargs.get("target_class")
    if target is not None and np.ndim(target) != 0:
        raise TypeError("batch explain takes one target_class for every row (a class index), not one per row")


def _validate_rows(explainer: Lapace, rows: pd.DataFrame) -> Tuple[pd.DataFrame, Dict[Any, str]]:
    """The rows that pass the schema's validation, and ``{id: message}`` for the others (found by bisection)."""
    try:
        return explainer.schema_.validate(rows), {}
    except (ValueError, TypeError) as exc:
        if len(rows) == 1:
            return rows.iloc[:0], {rows.index[0]: str(exc)}
        half = len(rows) // 2
        (good_a, bad_a), (good_b, bad_b) = (_validate_rows(explainer, part) for part in (rows.iloc[:half], rows.iloc[half:]))
        bad_a.update(bad_b)
        return pd.concat([good_a, good_b]), bad_a


def _failures(ids: List[Any], reasons: List[str], stage: str, id_dtype: Any) -> pd.DataFrame:
    return pd.DataFrame({
        ID: pd.Series(ids, dtype=id_dtype),
        "reason": pd.Series(reasons, dtype=object),
        "stage": pd.Series([stage] * len(ids), dtype=object),
    })


def _counterfactual_frame(explanation: Any) -> pd.DataFrame:
    """Counterfactuals in the caller's dtypes, with the other ``to_frame()`` columns of their paths."""
    counterfactuals = explanation.counterfactuals.reset_index()
    paths = explanation.to_frame()
    chosen = paths[paths["rank"] >= 0].drop(columns=list(explanation.counterfactuals.columns))
    chosen = chosen.astype({ID: counterfactuals[ID].dtype, "rank": counterfactuals["rank"].dtype})  # the ids' own dtype
    frame = counterfactuals.merge(chosen, on=[ID, "rank"], how="left", validate="one_to_one")
    return frame.reset_index(drop=True)


def _empty_counterfactuals(explainer: Lapace, id_dtype: Any, explain_kwargs: Dict[str, Any]) -> pd.DataFrame:
    """The counterfactual columns and dtypes, with no rows (for partitions where no row could be explained)."""
    frame = _counterfactual_frame(explainer.explain(explainer.centroids_.iloc[:1], **explain_kwargs)).iloc[:0]
    return frame.astype({ID: id_dtype})


# ---------------------------------------------------------------------------------------------- shipping the explainer
_LOADED: Dict[Tuple[str, int], Lapace] = {}  # per worker process: (explainer fingerprint, classifier id) -> explainer


def _saved_bytes(explainer: Lapace) -> Dict[str, bytes]:
    """The explainer's save folder as ``{relative path: bytes}``: opaque, whatever files the format has."""
    folder = tempfile.mkdtemp(prefix="lapace-explainer-")
    try:
        explainer.save(folder)
        files = {}
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as fh:
                    files[os.path.relpath(path, folder)] = fh.read()
        return files
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _loaded(fingerprint: str, files: Dict[str, bytes], predict_proba: Any) -> Lapace:
    """The explainer, loaded from its saved bytes once per worker process and classifier."""
    key = (fingerprint, id(predict_proba))
    if key not in _LOADED:
        folder = tempfile.mkdtemp(prefix="lapace-explainer-")
        try:
            for rel, data in files.items():
                path = os.path.join(folder, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as fh:
                    fh.write(data)
            explainer = Lapace.load(folder, predict_proba)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if len(_LOADED) >= 4:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = explainer
    return _LOADED[key]


def fingerprint(explainer: Lapace) -> str:
    """A hash of the fitted explainer's parameters, schema, classes, weights and centroids (stable across saves and
    processes)."""
    weights = [v.detach().cpu().numpy() for _, v in sorted(explainer.model_.state_dict().items())]
    params = {k: repr(v) for k, v in explainer.get_params().items() if k not in ("schema", "device")}
    text = json.dumps([params, explainer.schema_.to_dict(), repr(explainer.classes_)], sort_keys=True, default=str)
    return _digest([text] + weights + [explainer.centroid_points_, explainer.centroid_valid_])


def _digest(parts: List[Any]) -> str:
    """SHA-256 of strings and arrays (their dtype, shape and bytes)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            digest.update(part.encode("utf-8"))
        else:
            array = np.ascontiguousarray(part)
            digest.update(("%s%s" % (array.dtype.str, array.shape)).encode("ascii"))
            digest.update(array.tobytes())
    return digest.hexdigest()[:32]


# ---------------------------------------------------------------------------------------------- one task
class Piece(NamedTuple):
    """Rows ``start:stop`` of input partition ``partition``; ``first`` is the input position of its first row."""

    number: int
    partition: int
    start: int
    stop: int
    first: int


class Output(NamedTuple):
    """Where a run writes its Parquet part files, and their Arrow schemas."""

    counterfactuals: str
    failures: str
    counterfactual_schema: Any
    failure_schema: Any

    def part(self, folder: str, piece: int) -> str:
        return os.path.join(folder, "part-%06d.parquet" % piece)


class Job(NamedTuple):
    """What every piece of one run shares, besides the explainer's files and the classifier (Dask futures)."""

    ids: Optional[str]  # the id column, BY_INDEX, or None for input positions
    fingerprint: str
    explain_kwargs: Dict[str, Any]
    output: Optional[Output]


def _explain_piece(partition: pd.DataFrame, piece: Piece, files: Dict[str, bytes], predict_proba: Any, job: Job) -> Tuple[Any, Any, int]:
    """Explain one piece on a worker: its frames, or (with ``job.output``) write its part files and return counts."""
    ids, output = job.ids, job.output
    rows = partition.iloc[piece.start:piece.stop]
    if ids is None:
        rows = rows.set_axis(pd.RangeIndex(piece.first, piece.first + len(rows)), axis=0)
    explainer = _loaded(job.fingerprint, files, predict_proba)
    counterfactuals, failures = explain_partition(explainer, rows, id_column=None if ids in (None, BY_INDEX) else ids, **job.explain_kwargs)
    if output is None:
        return counterfactuals, failures, len(rows)
    _write(failures, output.part(output.failures, piece.number), output.failure_schema)
    _write(counterfactuals, output.part(output.counterfactuals, piece.number), output.counterfactual_schema)
    return int(counterfactuals[ID].nunique()), len(failures), len(rows)


def _write(frame: pd.DataFrame, path: str, schema: Any) -> None:
    """Write a Parquet file atomically: a hidden temporary file, then a rename (a retried task overwrites it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder, name = os.path.split(path)
    tmp = os.path.join(folder, ".%s.%s.tmp" % (name, uuid.uuid4().hex))
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------- the batch
class BatchExplanation(NamedTuple):
    """The result of :func:`explain`.

    Attributes
    ----------
    counterfactuals
        Dask DataFrame, one row per counterfactual (columns as :func:`explain_partition`).
    failures
        Dask DataFrame, one row per input row without a counterfactual: ``query``, ``reason``, ``stage``.
    n_rows, n_explained, n_failed
        Input rows, rows with at least one counterfactual, failed rows (``n_explained + n_failed == n_rows``).
    n_partitions, n_resumed
        Pieces the rows were cut into, and how many of them an earlier run had already written.
    seconds
        Wall time of the explain tasks (not counting cluster start-up).
    """

    counterfactuals: "dd.DataFrame"
    failures: "dd.DataFrame"
    n_rows: int
    n_explained: int
    n_failed: int
    n_partitions: int
    n_resumed: int
    seconds: float


def explain(
    explainer: Lapace,
    data: Union[pd.DataFrame, "dd.DataFrame", str],
    client: Union[None, str, "Client"] = None,
    partition_rows: int = PARTITION_ROWS,
    id_column: Optional[str] = None,
    output: Optional[str] = None,
    failures_output: Optional[str] = None,
    overwrite: bool = False,
    run_tag: str = "",
    progress: bool = True,
    **explain_kwargs: Any,
) -> BatchExplanation:
    """Explain every row of ``data`` on a Dask cluster, in pieces of at most ``partition_rows`` rows.

    Parameters
    ----------
    explainer
        A fitted ``Lapace``; it is shipped to each worker once through ``Lapace.save`` and loaded there with its
        classifier (``explainer.predict_proba_``, pickled by Dask). Never re-fitted.
    data
        A pandas or Dask DataFrame, or the path of a Parquet file/folder or a CSV file. Columns: the schema's
        features (and ``id_column``).
    client
        ``None``: an embedded ``LocalCluster`` with one worker process per CPU core, started and closed here; a
        scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``: that cluster (left running).
    partition_rows
        Rows per task. Each task holds its rows and their results; the path grid inside is bounded by
        ``max_points`` (see ``Lapace``).
    id_column
        Column holding each row's unique id (not a feature). Default: the index labels of a pandas DataFrame, and the
        row's 0-based position in the input for a Dask DataFrame or a file.
    output
        Folder for the counterfactuals as Parquet part files (one per piece, written by the workers, so it must be
        reachable by them: a local or shared file system). ``None``: results are gathered into this process.
        A rerun into the same folder skips the parts already written, so a crashed run resumes without duplicating
        rows; a folder from a different run (other data, explainer, settings or ``run_tag``) is refused unless
        ``overwrite``.
    failures_output
        Folder for the failures' part files; default ``output`` with ``-failures`` added before its extension.
    overwrite
        Delete an existing ``output`` (and ``failures_output``) first.
    run_tag
        Any string identifying what the explainer does not, e.g. a hash of the classifier's file; checked on resume.
    progress
        Show a progress bar over the pieces.
    **explain_kwargs
        Passed to ``Lapace.explain`` for every piece (``strategy``, ``constraints``, ``n_counterfactuals``,
        ``max_points``, one ``target_class``...).

    Returns
    -------
    BatchExplanation
        Dask DataFrames of counterfactuals and failures, and the row counts; every input row is explained or failed
        exactly once. With ``output``, the frames read the written Parquet folders.
    """
    _require_dask()
    import dask

    with dask.config.set({"dataframe.convert-string": False}):  # keep the caller's dtypes, as in-process explain
        return _explain(explainer, data, client, partition_rows=int(partition_rows), id_column=id_column, output=output,
                        failures_output=failures_output, overwrite=overwrite, run_tag=run_tag, progress=progress,
                        explain_kwargs=explain_kwargs)


def _explain(
    explainer: Lapace, data: Any, client: Any, *, partition_rows: int, id_column: Optional[str], output: Optional[str],
    failures_output: Optional[str], overwrite: bool, run_tag: str, progress: bool, explain_kwargs: Dict[str, Any],
) -> BatchExplanation:
    import dask

    _check_explain_kwargs(explain_kwargs)
    if int(partition_rows) < 1:
        raise ValueError("partition_rows must be at least 1, got %r" % (partition_rows,))
    frame, ids, token = _as_dask(data, int(partition_rows), id_column)
    _check_columns(explainer, list(frame.columns), id_column)
    template = _empty_counterfactuals(explainer, frame.dtypes[id_column] if id_column else _index_dtype(data), explain_kwargs)
    key = fingerprint(explainer)
    with connect(scheduler=client) as dask_client:
        lengths = [int(n) for n in dask_client.compute(frame.map_partitions(len)).result()]
        pieces = _pieces(lengths, int(partition_rows))
        out = None
        done: List[int] = []
        if output is not None:
            run = dict(format=1, rows=sum(lengths), pieces=len(pieces), partition_rows=int(partition_rows), data=token,
                       ids=ids or "position", explainer=key, settings=_settings(explain_kwargs), run_tag=run_tag)
            out = _prepare_output(output, failures_output, run, overwrite, template)
            done = [p.number for p in pieces if os.path.exists(out.part(out.counterfactuals, p.number))]
        with warnings.catch_warnings():  # the explainer's bytes are meant to travel in the graph, once: recomputable
            warnings.filterwarnings("ignore", message="Sending large graph")
            files = dask_client.submit(_identity, _saved_bytes(explainer), key="lapace-explainer-" + key)
            classifier = dask_client.submit(_identity, explainer.predict_proba_, pure=False)
        partitions = frame.to_delayed()
        run_id = uuid.uuid4().hex[:12]  # task keys unique to this call: never confused with another call's results
        skip = set(done)
        job = Job(ids, key, explain_kwargs, out)
        tasks = [
            dask.delayed(_explain_piece)(partitions[p.partition], p, files, classifier, job, dask_key_name="lapace-explain-%s-%d" % (run_id, p.number))
            for p in pieces if p.number not in skip
        ]
        start = time.perf_counter()
        results = _run(dask_client, tasks, progress)
        seconds = time.perf_counter() - start
    result = _gathered(results, template, len(pieces), seconds) if out is None else _written(out, results, done, len(pieces), seconds)
    if result.n_explained + result.n_failed != sum(lengths):
        raise RuntimeError("batch explain accounted for %d explained + %d failed rows of %d input rows"
                           % (result.n_explained, result.n_failed, sum(lengths)))
    return result


def failures_folder(output: str) -> str:
    """The default failures folder of an output folder: ``-failures`` added before its extension."""
    stem, ext = os.path.splitext(output.rstrip(os.sep))
    return stem + "-failures" + ext


def _identity(value: Any) -> Any:
    return value


def _as_dask(data: Any, partition_rows: int, id_column: Optional[str]) -> Tuple["dd.DataFrame", Optional[str], str]:
    """The data as a Dask DataFrame, where row ids come from (``None``: positions), and a token identifying it."""
    import dask.dataframe as dd
    from dask.base import tokenize

    if isinstance(data, pd.DataFrame):
        if id_column is None and data.index.has_duplicates:
            raise ValueError("the DataFrame's index labels are the row ids and must be unique; pass id_column or reset_index()")
        n = max(1, -(-len(data) // partition_rows))
        token = _digest([json.dumps([list(map(str, data.columns)), list(map(str, data.dtypes))]),
                         pd.util.hash_pandas_object(data, index=True).to_numpy()])
        return dd.from_pandas(data, npartitions=n, sort=False), id_column or BY_INDEX, token
    if isinstance(data, dd.DataFrame):
        return data, id_column, tokenize(data)  # Dask's name of the frame's expression
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.exists(path):
            raise FileNotFoundError("input %r does not exist" % path)
        stats = [(f, os.path.getsize(f), os.path.getmtime(f)) for f in _files(path)]
        if path.endswith((".csv", ".csv.gz")):
            frame = dd.read_csv(path, blocksize=None if path.endswith(".gz") else "64MB")
        else:
            frame = dd.read_parquet(path, split_row_groups=True)  # a partition per row group: write ~partition_rows per group
        return frame, id_column, _digest([json.dumps(stats)])
    raise TypeError("data must be a pandas or Dask DataFrame or the path of a Parquet or CSV file, got %s" % type(data).__name__)


def _files(path: str) -> List[str]:
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names if not name.startswith((".", "_")))


def _index_dtype(data: Any) -> Any:
    return data.index.dtype if isinstance(data, pd.DataFrame) else np.dtype("int64")


def _check_columns(explainer: Lapace, columns: List[str], id_column: Optional[str]) -> None:
    """Refuse data whose columns are not the schema's features (plus the id column) before any task starts."""
    features = list(explainer.schema_.features)
    if id_column is not None and id_column not in columns:
        raise ValueError("id column %r is not a column of the data; columns: %s" % (id_column, columns))
    missing = [c for c in features if c not in columns]
    extra = [c for c in columns if c not in features and c != id_column]
    if missing or extra:
        raise ValueError("the data's columns do not match the explainer's schema: missing %s, unexpected %s; expected "
                         "columns: %s%s" % (missing, extra, features, "" if id_column else " (name an id column with id_column)"))


def _pieces(lengths: List[int], partition_rows: int) -> List[Piece]:
    """Cut every input partition into pieces of at most ``partition_rows`` rows, numbered in input order."""
    pieces, first = [], 0
    for partition, length in enumerate(lengths):
        for start in range(0, length, partition_rows):
            stop = min(start + partition_rows, length)
            pieces.append(Piece(len(pieces), partition, start, stop, first + start))
        first += length
    return pieces


def _settings(explain_kwargs: Dict[str, Any]) -> Dict[str, str]:
    return {k: repr(v.to_dict() if hasattr(v, "to_dict") else v) for k, v in sorted(explain_kwargs.items())}


def _prepare_output(
    output: str, failures_output: Optional[str], run: Dict[str, Any], overwrite: bool, template: pd.DataFrame
) -> Output:
    """Create (or check, to resume) the output folders and their manifest."""
    import pyarrow as pa

    failures_output = failures_output or failures_folder(output)
    manifest = os.path.join(output, MANIFEST)
    if overwrite:
        for folder in (output, failures_output):
            shutil.rmtree(folder, ignore_errors=True)
    if os.path.exists(manifest):
        with open(manifest) as fh:
            previous = json.load(fh)
        changed = sorted(k for k in set(run) | set(previous) if run.get(k) != previous.get(k))
        if changed:
            raise ValueError("%r holds a run with different %s; resume only the same run, or pass overwrite=True "
                             "(--overwrite) or another output folder" % (output, ", ".join(changed)))
    elif os.path.exists(output) and os.listdir(output):
        raise ValueError("%r exists and is not the output of a batch explain; pass overwrite=True (--overwrite) or another "
                         "output folder" % output)
    for folder in (output, failures_output):
        os.makedirs(folder, exist_ok=True)
    with open(manifest, "w") as fh:
        json.dump(run, fh, indent=1)
    counterfactual_schema = pa.Schema.from_pandas(template, preserve_index=False)
    counterfactual_schema = counterfactual_schema.set(counterfactual_schema.get_field_index(ID), pa.field(ID, _id_type(template[ID].dtype)))
    failure_schema = pa.schema([(ID, _id_type(template[ID].dtype)), ("reason", pa.string()), ("stage", pa.string())])
    return Output(output, failures_output, _text_columns(counterfactual_schema, template), failure_schema)


def _id_type(dtype: Any) -> Any:
    import pyarrow as pa

    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return pa.from_numpy_dtype(np.dtype(dtype))
    return pa.string()


def _text_columns(schema: Any, template: pd.DataFrame) -> Any:
    """The Arrow schema with string (not null) types for the template's empty text columns."""
    import pyarrow as pa

    for name in template.columns:
        i = schema.get_field_index(name)
        if pa.types.is_null(schema.field(i).type):
            schema = schema.set(i, pa.field(name, pa.string()))
    return schema


def _run(client: "Client", tasks: List[Any], progress: bool) -> List[Any]:
    """Compute the tasks, showing a progress bar as they complete; results in task order."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    futures = client.compute(tasks)
    order = {f.key: i for i, f in enumerate(futures)}
    results: List[Any] = [None] * len(futures)
    rows = 0
    with tqdm(total=len(futures), desc="explaining partitions", unit="partition", disable=not progress) as bar:
        try:
            for future in as_completed(futures):
                results[order[future.key]] = future.result()
                rows += results[order[future.key]][2]
                bar.update(1)
                bar.set_postfix_str("%d rows" % rows)
        except BaseException:
            client.cancel(futures)
            raise
    return results


def _gathered(results: List[Any], template: pd.DataFrame, n_pieces: int, seconds: float) -> BatchExplanation:
    import dask.dataframe as dd

    counterfactuals = pd.concat([template] + [r[0] for r in results], ignore_index=True)
    failures = pd.concat([_failures([], [], "", template[ID].dtype)] + [r[1] for r in results], ignore_index=True)
    n_rows = sum(r[2] for r in results)
    parts = max(1, n_pieces)
    return BatchExplanation(
        counterfactuals=dd.from_pandas(counterfactuals, npartitions=parts, sort=False),
        failures=dd.from_pandas(failures, npartitions=parts, sort=False),
        n_rows=n_rows, n_explained=int(counterfactuals[ID].nunique()), n_failed=len(failures),
        n_partitions=n_pieces, n_resumed=0, seconds=seconds,
    )


def _written(out: Output, results: List[Any], done: List[int], n_pieces: int, seconds: float) -> BatchExplanation:
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    explained, failed, rows = (sum(r[i] for r in results) for i in range(3))
    for number in done:  # parts of an earlier run: count their rows from the files
        ids = pq.read_table(out.part(out.counterfactuals, number), columns=[ID]).column(ID)
        explained += len(ids.unique())
        n_failures = pq.read_metadata(out.part(out.failures, number)).num_rows
        failed += n_failures
        rows += len(ids.unique()) + n_failures
    return BatchExplanation(
        counterfactuals=dd.read_parquet(out.counterfactuals), failures=dd.read_parquet(out.failures),
        n_rows=rows, n_explained=explained, n_failed=failed, n_partitions=n_pieces, n_resumed=len(done), seconds=seconds,
    )


def file_digest(path: str) -> str:
    """SHA-256 of a file or of every file under a folder (e.g. a classifier's file, for ``run_tag``)."""
    digest = hashlib.sha256()
    for name in _files(path):
        with open(name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


__all__ = ["BatchExplanation", "PARTITION_ROWS", "connect", "explain", "explain_partition", "failures_folder", "file_digest", "fingerprint",
           "machine_workers"]

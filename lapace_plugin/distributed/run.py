"""Orchestration of a batch run: the input as a Dask DataFrame cut into pieces, its row ids checked across
partitions, one task per piece, and the results gathered or read back from the output folder."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import pandas as pd

from ..errors import InvalidParameterError
from ..explainer import Lapace
from ..files import FolderLock
from ..rules import check_row_ids
from . import output as out_folder
from .cluster import connect, require_dask
from .partition import ID, check_explain_kwargs, check_id_column, empty_counterfactuals, explain_partition, failure_frame
from .shipping import digest, fingerprint, loaded, saved_bytes

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    from distributed import Client

PARTITION_ROWS = 5_000
BY_INDEX = "<the DataFrame's index>"  # row ids are a pandas DataFrame's index labels


class Piece(NamedTuple):
    """Rows ``start:stop`` of input partition ``partition``; ``first`` is the input position of its first row."""

    number: int
    partition: int
    start: int
    stop: int
    first: int


class Job(NamedTuple):
    """What every piece of one run shares, besides the explainer's files and the classifier (Dask futures)."""

    ids: Optional[str]  # the id column, BY_INDEX, or None for input positions
    fingerprint: str
    explain_kwargs: Dict[str, Any]
    output: Optional[out_folder.Output]


def _explain_piece(partition: pd.DataFrame, piece: Piece, files: Dict[str, bytes], predict_proba: Any, job: Job) -> Tuple[Any, Any, int]:
    """Explain one piece on a worker: its frames, or (with ``job.output``) write its part files and return their
    manifest record."""
    ids, output = job.ids, job.output
    rows = partition.iloc[piece.start:piece.stop]
    if ids is None:
        rows = rows.set_axis(pd.RangeIndex(piece.first, piece.first + len(rows)), axis=0)
    explainer = loaded(job.fingerprint, files, predict_proba)
    counterfactuals, failures = explain_partition(explainer, rows, id_column=None if ids in (None, BY_INDEX) else ids, **job.explain_kwargs)
    if output is None:
        return counterfactuals, failures, len(rows)
    return _record(output, piece.number, counterfactuals, failures), None, len(rows)


def _record(output: out_folder.Output, number: int, counterfactuals: pd.DataFrame, failures: pd.DataFrame) -> Dict[str, Any]:
    """Write one piece's part files; their manifest record."""
    return {
        "failures": out_folder.write_part(failures, output.part("failures", number), output.failure_schema),
        "counterfactuals": out_folder.write_part(counterfactuals, output.part("counterfactuals", number), output.counterfactual_schema),
        "explained": int(counterfactuals[ID].nunique()), "failed": len(failures),
    }


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
        Pieces the rows were cut into, and how many of them an earlier run had already written (and the manifest
        verified).
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
        Column holding each row's id (not a feature); every id must be unique and not null across the whole input
        (checked before any row is explained). Default: the index labels of a pandas DataFrame, and the row's
        0-based position in the input for a Dask DataFrame or a file.
    output
        Folder for the results as Parquet part files written by the workers (so it must be reachable by them: a
        local or shared file system): ``OUTPUT/counterfactuals/part-*.parquet``, ``OUTPUT/failures/part-*.parquet``
        and ``OUTPUT/_lapace_run.json``, the manifest (each part's rows and SHA-256). ``None``: results are gathered
        into this process. A rerun of the same run into the same folder keeps the parts that match the manifest and
        redoes the others; a folder from a different run (other data, explainer, settings or
        ``run_tag``) is refused unless ``overwrite``. A folder holding files no batch run wrote, the current
        directory and the input are refused; one run at a time writes a folder (a lock file).
    overwrite
        Delete the files an earlier run wrote in ``output`` (its parts, failures and manifest; nothing else) first.
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
    require_dask()
    import dask

    check_explain_kwargs(explain_kwargs)
    if isinstance(partition_rows, bool) or not isinstance(partition_rows, (int, np.integer)) or partition_rows < 1:
        raise InvalidParameterError("partition_rows must be an integer of at least 1, got %r" % (partition_rows,))
    lock, created = None, False
    if output is not None:  # every path check before any cluster starts
        out_folder.check_output(output, inputs={"input": data if isinstance(data, (str, os.PathLike)) else None})
        created = not os.path.exists(output)
        os.makedirs(output, exist_ok=True)
        lock = FolderLock(os.path.join(output, out_folder.LOCK), "output")
        lock.acquire()
    try:
        with dask.config.set({"dataframe.convert-string": False}):  # keep the caller's dtypes, as in-process explain
            return _explain(explainer, data, client, partition_rows=int(partition_rows), id_column=id_column, output=output,
                            overwrite=overwrite, run_tag=run_tag, progress=progress, explain_kwargs=explain_kwargs)
    finally:
        if lock is not None:
            lock.release()
            if created and not os.listdir(output):  # refused before writing anything: leave no trace
                os.rmdir(output)


def _explain(
    explainer: Lapace, data: Any, client: Any, *, partition_rows: int, id_column: Optional[str], output: Optional[str],
    overwrite: bool, run_tag: str, progress: bool, explain_kwargs: Dict[str, Any],
) -> BatchExplanation:
    import dask

    frame, ids, token = _as_dask(data, partition_rows, id_column)
    _check_columns(explainer, list(frame.columns), id_column)
    template = empty_counterfactuals(explainer, frame.dtypes[id_column] if id_column else _index_dtype(data), explain_kwargs)
    key = fingerprint(explainer)
    with connect(scheduler=client) as dask_client:
        lengths = [int(n) for n in dask_client.compute(frame.map_partitions(len)).result()]
        if id_column is not None:
            check_ids_across_partitions(dask_client, frame[id_column], id_column)
        pieces = _pieces(lengths, partition_rows)
        out, done = None, []
        if output is not None:
            # an empty input writes one empty part
            run = dict(rows=sum(lengths), pieces=max(1, len(pieces)), partition_rows=partition_rows, data=token, ids=ids or "position", explainer=key, settings=_settings(explain_kwargs), run_tag=run_tag)
            out = out_folder.prepare(output, run, overwrite, template)
            done = out.verified()
            if not pieces:  # no rows: one empty part of each kind, so the output reads as empty frames
                out.record(0, _record(out, 0, template, failure_frame([], [], "", template[ID].dtype)))
                done = [0]
        with warnings.catch_warnings():  # the explainer's bytes are meant to travel in the graph, once: recomputable
            warnings.filterwarnings("ignore", message="Sending large graph")
            files = dask_client.submit(_identity, saved_bytes(explainer), key="lapace-explainer-" + key)
            classifier = dask_client.submit(_identity, explainer.predict_proba_, pure=False)
        partitions = frame.to_delayed()
        run_id = uuid.uuid4().hex[:12]  # task keys unique to this call: never confused with another call's results
        job = Job(ids, key, explain_kwargs, None if out is None else out._replace(manifest={}))  # the records stay here
        todo = [p for p in pieces if p.number not in set(done)]
        tasks = [dask.delayed(_explain_piece)(partitions[p.partition], p, files, classifier, job,
                                              dask_key_name="lapace-explain-%s-%d" % (run_id, p.number)) for p in todo]
        start = time.perf_counter()
        results = _run(dask_client, tasks, [p.number for p in todo], out, progress)
        seconds = time.perf_counter() - start
    if out is None:
        result = _gathered(results, template, len(pieces), seconds)
    else:
        result = _written(out, len(done) if pieces else 0, len(pieces), seconds)
    if result.n_explained + result.n_failed != sum(lengths):
        raise RuntimeError("batch explain accounted for %d explained + %d failed rows of %d input rows"
                           % (result.n_explained, result.n_failed, sum(lengths)))
    return result


def check_ids_across_partitions(client: "Client", ids: "dd.Series", name: str) -> None:
    """Refuse null or repeated values of the id column anywhere in the input, naming some (through
    :func:`lapace_plugin.rules.check_row_ids`): one pass of 8-byte hashes per row, then the rows of repeated hashes."""
    import dask

    parts = ids.to_delayed()
    summaries = client.compute([dask.delayed(_id_hashes)(p) for p in parts], sync=True)
    offsets = np.cumsum([0] + [len(h) for _, h in summaries])
    nulls = [null.set_axis(null.index + offset) for (null, _), offset in zip(summaries, offsets) if len(null)]
    if nulls:
        check_row_ids(pd.concat(nulls), "id column %r" % name)
    hashes = np.concatenate([h for _, h in summaries] or [np.zeros(0, np.uint64)])
    values, counts = np.unique(hashes, return_counts=True)
    repeated = values[counts > 1]
    if len(repeated):
        found = client.compute([dask.delayed(_with_hashes)(p, repeated[:1000]) for p in parts], sync=True)
        check_row_ids(pd.concat(found, ignore_index=True), "id column %r" % name)


def _id_hashes(ids: pd.Series) -> Tuple[pd.Series, np.ndarray]:
    """The partition's null ids (by position in the partition) and every id's 8-byte hash."""
    ids = ids.reset_index(drop=True)
    return ids[ids.isna()], pd.util.hash_pandas_object(ids, index=False).to_numpy()


def _with_hashes(ids: pd.Series, hashes: np.ndarray) -> pd.Series:
    return ids[np.isin(pd.util.hash_pandas_object(ids, index=False).to_numpy(), hashes)]


def _identity(value: Any) -> Any:
    return value


def _as_dask(data: Any, partition_rows: int, id_column: Optional[str]) -> Tuple["dd.DataFrame", Optional[str], str]:
    """The data as a Dask DataFrame, where row ids come from (``None``: positions), and a token identifying it."""
    import dask.dataframe as dd
    from dask.base import tokenize

    if isinstance(data, pd.DataFrame):
        if id_column is None:
            check_row_ids(data.index, "the DataFrame's index (its labels are the row ids: pass id_column or reset_index())")
        token = digest([json.dumps([list(map(str, data.columns)), list(map(str, data.dtypes))]),
                        pd.util.hash_pandas_object(data, index=True).to_numpy()])
        return dd.from_pandas(data, npartitions=max(1, -(-len(data) // partition_rows)), sort=False), id_column or BY_INDEX, token
    if isinstance(data, dd.DataFrame):
        return data, id_column, tokenize(data)  # Dask's name of the frame's expression
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.exists(path):
            raise FileNotFoundError("input %r does not exist" % path)
        stats = [(f, os.path.getsize(f), os.path.getmtime(f)) for f in _files(path)]
        if not stats:
            raise InvalidParameterError("input %r holds no data files" % path)
        if path.endswith((".csv", ".csv.gz")):
            frame = dd.read_csv(path, blocksize=None if path.endswith(".gz") else "64MB")
        else:
            frame = dd.read_parquet(path, split_row_groups=True)  # a partition per row group: write ~partition_rows per group
        return frame, id_column, digest([json.dumps(stats)])
    raise InvalidParameterError("data must be a pandas or Dask DataFrame or the path of a Parquet or CSV file, got %s" % type(data).__name__)


def _files(path: str) -> List[str]:
    if os.path.isfile(path):
        return [path]
    return sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names if not name.startswith((".", "_")))


def _index_dtype(data: Any) -> Any:
    return data.index.dtype if isinstance(data, pd.DataFrame) else np.dtype("int64")


def _check_columns(explainer: Lapace, columns: List[str], id_column: Optional[str]) -> None:
    """Refuse data whose columns are not the schema's features (plus the id column) before any task starts."""
    features = list(explainer.schema_.features)
    if id_column is not None:
        check_id_column(explainer, id_column)
        if id_column not in columns:
            raise InvalidParameterError("id column %r is not a column of the data; columns: %s" % (id_column, columns))
    missing = [c for c in features if c not in columns]
    extra = [c for c in columns if c not in features and c != id_column]
    if missing or extra:
        raise InvalidParameterError("the data's columns do not match the explainer's schema: missing %s, unexpected %s; expected "
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


def _run(client: "Client", tasks: List[Any], numbers: List[int], out: Optional[out_folder.Output], progress: bool) -> List[Any]:
    """Compute the tasks, recording each written part in the manifest as it completes and showing a progress bar;
    results in task order."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    futures = client.compute(tasks)
    order = {f.key: i for i, f in enumerate(futures)}
    results: List[Any] = [None] * len(futures)
    rows = 0
    with tqdm(total=len(futures), desc="explaining partitions", unit="partition", disable=not progress) as bar:
        try:
            for future in as_completed(futures):
                i = order[future.key]
                results[i] = future.result()
                if out is not None:
                    out.record(numbers[i], results[i][0])
                rows += results[i][2]
                bar.update(1)
                bar.set_postfix_str("%d rows" % rows)
        except BaseException:
            client.cancel(futures)
            raise
    return results


def _gathered(results: List[Any], template: pd.DataFrame, n_pieces: int, seconds: float) -> BatchExplanation:
    import dask.dataframe as dd

    counterfactuals = pd.concat([template] + [r[0] for r in results], ignore_index=True)
    failures = pd.concat([failure_frame([], [], "", template[ID].dtype)] + [r[1] for r in results], ignore_index=True)
    n_rows = sum(r[2] for r in results)
    parts = max(1, n_pieces)
    return BatchExplanation(
        counterfactuals=dd.from_pandas(counterfactuals, npartitions=parts, sort=False),
        failures=dd.from_pandas(failures, npartitions=parts, sort=False),
        n_rows=n_rows, n_explained=int(counterfactuals[ID].nunique()), n_failed=len(failures),
        n_partitions=n_pieces, n_resumed=0, seconds=seconds,
    )


def _written(out: out_folder.Output, n_resumed: int, n_pieces: int, seconds: float) -> BatchExplanation:
    """The result read from the output folder; the counts from the manifest's records of every part."""
    import dask.dataframe as dd

    parts = out.manifest["parts"].values()
    explained, failed = sum(p["explained"] for p in parts), sum(p["failed"] for p in parts)
    return BatchExplanation(
        counterfactuals=dd.read_parquet(out_folder.counterfactuals_path(out.folder)),
        failures=dd.read_parquet(out_folder.failures_path(out.folder)),
        n_rows=explained + failed, n_explained=explained, n_failed=failed, n_partitions=n_pieces, n_resumed=n_resumed,
        seconds=seconds,
    )


def file_digest(path: str) -> str:
    """SHA-256 of a file or of every file under a folder (e.g. a classifier's file, for ``run_tag``)."""
    h = hashlib.sha256()
    for name in _files(path):
        with open(name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()

"""One partition of rows explained in-process: the building block of batch explain, usable from any engine (Dask,
Spark, Ray) where a fitted ``Lapace`` is at hand. Rows failing the schema's validation become failure rows."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from ..errors import InvalidParameterError
from ..explainer import Lapace
from ..rules import check_row_ids
from ..training import torch_threads

ID = "query"  # the input row id column of both outputs, as in Explanation.to_frame()


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
    check_explain_kwargs(explain_kwargs)
    if id_column is not None:
        if id_column not in rows.columns:
            raise ValueError("id column %r is not a column of the rows; columns: %s" % (id_column, list(rows.columns)))
        check_id_column(explainer, id_column)
        rows = rows.set_index(id_column)
    check_row_ids(rows.index, "the rows' index" if id_column is None else "id column %r" % id_column)
    with torch_threads(1):
        valid, invalid = _validate_rows(explainer, rows)
        failures = [failure_frame(list(invalid), list(invalid.values()), "validation", rows.index.dtype)]
        if len(valid) == 0:
            return empty_counterfactuals(explainer, rows.index.dtype, explain_kwargs), failures[0]
        explanation = explainer.explain(valid, **explain_kwargs)
    failures.append(failure_frame(list(explanation.failures), list(explanation.failures.values()), "explain", rows.index.dtype))
    counterfactuals = _counterfactual_frame(explanation)
    failures = pd.concat(failures, ignore_index=True)
    explained = counterfactuals[ID].nunique()
    if explained + len(failures) != len(rows) or set(failures[ID]) & set(counterfactuals[ID]):
        raise RuntimeError("explain_partition lost or duplicated rows: %d explained + %d failed for %d rows"
                           % (explained, len(failures), len(rows)))
    return counterfactuals, failures


def check_id_column(explainer: Lapace, id_column: str) -> None:
    """Refuse an id column that is one of the explainer's features: ids are never features."""
    if id_column in explainer.schema_.features:
        raise InvalidParameterError("id column %r is one of the explainer's features; name a column that identifies rows and "
                                    "is not a feature (or none: rows are then identified by position)" % id_column)


def check_explain_kwargs(kwargs: Dict[str, Any]) -> None:
    if "X" in kwargs:
        raise InvalidParameterError("pass the rows as data, not as X")
    target = kwargs.get("target_class")
    if target is not None and np.ndim(target) != 0:
        raise InvalidParameterError("batch explain takes one target_class for every row (a class index), not one per row")


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


def failure_frame(ids: List[Any], reasons: List[str], stage: str, id_dtype: Any) -> pd.DataFrame:
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


def empty_counterfactuals(explainer: Lapace, id_dtype: Any, explain_kwargs: Dict[str, Any]) -> pd.DataFrame:
    """The counterfactual columns and dtypes, with no rows (for partitions where no row could be explained)."""
    frame = _counterfactual_frame(explainer.explain(explainer.centroids_.iloc[:1], **explain_kwargs)).iloc[:0]
    return frame.astype({ID: id_dtype})

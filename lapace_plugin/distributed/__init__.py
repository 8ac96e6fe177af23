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

One concern per module: ``cluster`` (connecting, worker count, time-out), ``partition`` (one partition explained
in-process), ``shipping`` (the explainer to the workers), ``output`` (the output folder: layout, manifest, resume,
what ``overwrite`` deletes) and ``run`` (the orchestration of :func:`explain`).

Install with ``pip install "lapace-plugin[distributed]"``; ``import lapace_plugin`` never needs Dask.
"""

from __future__ import annotations

from .cluster import INSTALL_HINT, SCHEDULER_TIMEOUT, connect, machine_workers
from .output import MANIFEST, check_output, counterfactuals_path, failures_path
from .partition import ID, explain_partition
from .run import BY_INDEX, PARTITION_ROWS, BatchExplanation, explain, file_digest
from .shipping import fingerprint

__all__ = ["BY_INDEX", "BatchExplanation", "ID", "INSTALL_HINT", "MANIFEST", "PARTITION_ROWS", "SCHEDULER_TIMEOUT",
           "check_output", "connect", "counterfactuals_path", "explain", "explain_partition", "failures_path", "file_digest", "fingerprint",
           "machine_workers"]

"""The Dask side of batch explain: an embedded ``LocalCluster`` sized to the machine, or an existing cluster reached
by its address within a timeout."""

from __future__ import annotations

import os
import threading
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Union

from ..errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client

INSTALL_HINT = 'batch explain on Dask needs dask and distributed: pip install "lapace-plugin[distributed]"'
SCHEDULER_TIMEOUT = 30.0  # seconds to reach an existing scheduler


def require_dask() -> None:
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


def embedded_workers(workers: Optional[int]) -> int:
    """Worker processes of an embedded cluster: ``workers``, at most one per CPU core (a warning says when capped)."""
    cores = machine_workers()
    if workers is None:
        return cores
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidParameterError("workers must be an integer of at least 1, got %r" % (workers,))
    if workers > cores:
        warnings.warn("workers=%d is more than the %d CPU core(s) this process may use; starting %d worker process(es)"
                      % (workers, cores, cores), stacklevel=3)
        return cores
    return workers


@contextmanager
def connect(
    workers: Optional[int] = None, scheduler: Union[None, str, "Client"] = None, timeout: float = SCHEDULER_TIMEOUT
) -> Iterator["Client"]:
    """A Dask client for the duration of a ``with`` block.

    Parameters
    ----------
    workers
        Worker processes of an embedded ``LocalCluster`` (one thread each), at most one per CPU core (more are capped
        with a warning); ``None`` sizes it to the machine.
    scheduler
        An existing cluster: its scheduler address (``"tcp://host:8786"``) or a connected ``distributed.Client``.
        That cluster is used as it is and left running; only a client opened here is closed.
    timeout
        Seconds to reach the scheduler at ``scheduler``; a ``TimeoutError`` names the address after that.

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
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None and workers is not None:
        raise InvalidParameterError("give either workers (an embedded LocalCluster) or scheduler (an existing cluster), not both")
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is not None:
        if not isinstance(scheduler, str):
            raise InvalidParameterError("scheduler must be an address such as 'tcp://host:8786' or a distributed.Client, "
                                        "got {!r}".format(type(scheduler).__name__))
        with _client(scheduler, float(timeout)) as client:
            yield client
        return
    n = embedded_workers(workers)
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also freezes glibc's mmap threshold: every large
    # temporary array of explain is then mapped and unmapped afresh, about 30% slower (lapace bench --distributed).
    # Memory per worker is bounded by the partition, so the embedded cluster keeps glibc's default.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), \
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


def _client(address: str, timeout: float) -> "Client":
    """A client of the scheduler at ``address``, reached within ``timeout`` seconds: a Dask handshake is tried first
    (with its own deadline, since a server that accepts but never answers would hold ``Client`` forever)."""
    from distributed import Client

    answer = _probe(address, timeout)
    if answer is not True:
        raise TimeoutError("no Dask scheduler answered at %s within %g s%s" % (address, timeout, answer))
    return Client(address, timeout=timeout)


def _probe(address: str, timeout: float) -> Any:
    """``True`` when a Dask server at ``address`` answers an identity call within ``timeout`` s, else why not."""
    import asyncio

    from distributed.core import rpc

    async def identity() -> Any:
        async with rpc(address, timeout=timeout) as server:
            return await server.identity()

    outcome: List[Any] = [" (no answer)"]

    def run() -> None:
        try:
            asyncio.run(asyncio.wait_for(identity(), timeout))
            outcome[0] = True
        except Exception as exc:  # noqa: BLE001 - reported in the one-line error
            text = str(exc).splitlines()[0] if str(exc) else ""
            outcome[0] = " (%s%s)" % (type(exc).__name__, ": " + text if text else "")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout + 5)
    return outcome[0]

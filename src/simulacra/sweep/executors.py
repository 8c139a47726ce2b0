"""Executors: run one function over many tasks, here, on local processes or on Dask.

:func:`execute` is the one way simulacra runs independent tasks (the runs of a
sweep, the units of a battery). It yields ``(index, result, error)`` as tasks
complete, never raising for a task that fails: the error comes back as text,
``Type: message (at file:line)``, naming the innermost frame where it was raised.

- ``workers == 1`` with the local executor runs the tasks one after another in
  this process (as does a single task);
- more local workers run in worker processes started by ``forkserver`` where
  available (else ``spawn``), never by ``fork``, which is unsafe once llama.cpp
  threads exist;
- ``executor = "dask"`` submits the tasks to a Dask cluster: a new
  ``LocalCluster`` of ``workers`` single-threaded processes, or the scheduler at
  ``address``. Results come back to this process, so workers need no shared
  file system.

A process runs one task at a time (tasks share the process's cached engine),
even on a Dask worker with several threads.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Literal, TypeVar

from simulacra.errors import SweepError
from simulacra.llm.engine import default_threads

__all__ = [
    "EXECUTORS",
    "Executor",
    "cluster_threads",
    "error_text",
    "execute",
    "import_dask",
]

T = TypeVar("T")
R = TypeVar("R")

Executor = Literal["local", "dask"]
EXECUTORS: tuple[str, ...] = ("local", "dask")

_CALL_LOCK = threading.Lock()


def error_text(exc: BaseException) -> str:
    """An exception as ``Type: message (at file:line)``, naming the innermost frame.

    Args:
        exc: The exception, with its traceback.

    Returns:
        The text recorded for a failed task.
    """
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno})"
    return text


def _call(fn: Callable[[T], R], task: T) -> tuple[R | None, str | None]:
    """Run one task where it lands, one at a time per process; never raises for a failure."""
    with _CALL_LOCK:
        try:
            return fn(task), None
        except Exception as exc:
            return None, error_text(exc)


def execute(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    preload: Sequence[str] = (),
) -> Iterator[tuple[int, R | None, str | None]]:
    """Apply ``fn`` to every task and yield the outcomes as tasks complete.

    Args:
        fn: A top-level (picklable) function of one task.
        tasks: The tasks (picklable when they leave this process).
        workers: Worker processes (local) or LocalCluster workers (Dask); 1 runs
            local tasks in this process.
        executor: ``"local"`` or ``"dask"``.
        address: A Dask scheduler address; None starts a LocalCluster.
        preload: Modules a local forkserver imports once, before forking workers
            (e.g. the module defining ``fn``), so workers start fast.

    Yields:
        ``(index, result, None)`` for a task that succeeded and
        ``(index, None, error)`` for one that raised or whose worker died, in
        completion order; ``index`` is the task's position in ``tasks``.

    Raises:
        ValueError: Bad settings (unknown executor, ``workers < 1``, an address
            without Dask).
        SweepError: Dask is not installed, or its scheduler cannot be reached.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}: expected 'local' or 'dask'")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if address and executor != "dask":
        raise ValueError("a scheduler address needs the dask executor")
    tasks = list(tasks)
    if not tasks:
        return
    if executor == "dask":
        yield from _on_dask(fn, tasks, workers, address)
    elif workers == 1 or len(tasks) == 1:
        for index, task in enumerate(tasks):
            result, error = _call(fn, task)
            yield index, result, error
    else:
        yield from _on_processes(fn, tasks, workers, preload)


def _on_processes(
    fn: Callable[[T], R], tasks: Sequence[T], workers: int, preload: Sequence[str]
) -> Iterator[tuple[int, R | None, str | None]]:
    """Run tasks on local worker processes (forkserver where available, else spawn)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver" and preload:
        context.set_forkserver_preload(list(preload))
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context)
    try:
        futures = {pool.submit(_call, fn, task): index for index, task in enumerate(tasks)}
        for future in as_completed(futures):
            try:
                result, error = future.result()
            except Exception as exc:  # a worker died (BrokenProcessPool) or did not pickle
                result, error = None, error_text(exc)
            yield futures[future], result, error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def import_dask() -> tuple[Any, Any, Any]:
    """``Client``, ``LocalCluster`` and ``as_completed`` from dask.distributed.

    Raises:
        SweepError: dask.distributed is not installed (says how to install it).
    """
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_as_completed
    except ImportError as exc:
        raise SweepError(
            "--executor dask needs dask.distributed, which is not installed: "
            "pip install 'simulacra[dask]'"
        ) from exc
    return Client, LocalCluster, dask_as_completed


def _connect(client_cls: Any, address: str) -> Any:
    """A client of the scheduler at ``address``, or SweepError."""
    try:
        return client_cls(address, timeout="30s")
    except OSError as exc:
        raise SweepError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc


def _host_cores() -> tuple[str, int]:
    """This machine's name and usable cores (run on each Dask worker)."""
    return socket.gethostname(), default_threads()


def cluster_threads(address: str) -> int:
    """Threads per task on the Dask cluster at ``address``: the smallest per-host share.

    Args:
        address: The scheduler's address.

    Returns:
        ``min over hosts of cores // workers on that host`` (at least 1).

    Raises:
        SweepError: Dask is missing or the scheduler cannot be reached.
    """
    client_cls, _, _ = import_dask()
    with _connect(client_cls, address) as client:
        info = client.run(_host_cores)
    if not info:
        return 1
    per_host = Counter(host for host, _ in info.values())
    return max(1, min(cores // per_host[host] for host, cores in info.values()))


def _on_dask(
    fn: Callable[[T], R], tasks: Sequence[T], workers: int, address: str | None
) -> Iterator[tuple[int, R | None, str | None]]:
    """Run tasks on a Dask cluster: a new LocalCluster, or the scheduler at ``address``."""
    client_cls, cluster_cls, dask_as_completed = import_dask()
    with contextlib.ExitStack() as stack:
        if address:
            client = stack.enter_context(_connect(client_cls, address))
        else:
            cluster = stack.enter_context(
                cluster_cls(
                    n_workers=min(workers, len(tasks)),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(client_cls(cluster))
        stamp = os.urandom(4).hex()
        futures = {}
        for index, task in enumerate(tasks):
            key = f"simulacra-{index}-{stamp}"
            futures[client.submit(_call, fn, task, key=key, pure=False)] = index
        for future in dask_as_completed(list(futures)):
            try:
                result, error = future.result()
            except Exception as exc:  # a worker died or the task could not be sent
                result, error = None, error_text(exc)
            future.release()
            yield futures[future], result, error

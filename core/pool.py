"""The one worker-process pool of the tool: ``concurrent.futures.ProcessPoolExecutor``, spawned.

Used wherever work is shared by processes (the reconciler's keyed and link passes, the demo's
two stories, the generator's row maker, the profile's two halves). What it adds to the
executor:

* ``in_order(fn, items)``: a bounded window — up to ``ahead`` tasks submitted before the first
  result is taken, results yielded in submission order, the next task submitted as each
  result is taken. Memory stays bounded whatever the number of items, and the caller sees
  the items' results in their order (the reconciler applies outcomes in key order).
* A worker that dies (killed, out of memory) is ``WorkerFailed`` (exit 2) — never a
  traceback of ``BrokenProcessPool``, never a silently shorter result. An exception raised
  in a task is raised again in the caller, as itself (``StoreUnavailable`` for a lost store).
* Processes are spawned, never forked: a forked child would share the parent's database
  connections.

Per-process state (open stores, compiled statements, key sets sent once) is set up by the
``initializer`` into module globals of the task's module, as ``ProcessPoolExecutor`` intends.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from core.errors import Opus2IopsError


class WorkerFailed(Opus2IopsError):
    """A worker process ended without finishing its share."""


class Pool:
    """``with Pool(n, initializer, initargs) as pool:`` — ``n`` spawned processes, each set up
    once by ``initializer(*initargs)``; shut down on leaving the block (pending tasks are
    cancelled if the block failed)."""

    def __init__(self, workers: int, initializer: Callable | None = None, initargs: tuple = (),
                 what: str = "worker") -> None:
        self.workers = workers
        self.what = what  # named in the error when a process dies
        self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_initialise, initargs=(initializer, initargs))

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._executor.shutdown(wait=True, cancel_futures=exc_type is not None)

    def submit(self, fn: Callable, *args) -> Future:
        try:
            return self._executor.submit(_task, fn, *args)
        except BrokenProcessPool:
            raise self._died() from None

    def result(self, future: Future) -> Any:
        """The task's result; its exception raised again here; a dead worker is WorkerFailed."""
        try:
            return future.result()
        except BrokenProcessPool:
            raise self._died() from None

    def in_order(self, fn: Callable[[Any], Any], items: Iterable, ahead: int | None = None) -> Iterator[Any]:
        """``fn(item)`` of each item, computed by the workers, yielded in the order of
        ``items``; at most ``ahead`` (default: two per worker) submitted and not yet taken."""
        window: deque[Future] = deque()
        limit = ahead if ahead is not None else 2 * self.workers
        items = iter(items)
        try:
            for item in items:
                window.append(self.submit(fn, item))
                if len(window) >= limit:
                    yield self.result(window.popleft())
            while window:
                yield self.result(window.popleft())
        finally:
            for future in window:  # the caller stopped early, or failed: drop what is queued
                future.cancel()

    def _died(self) -> WorkerFailed:
        return WorkerFailed(f"a {self.what} process ended unexpectedly — run the command again")


# ------------------------------------------------------------------------ in the workers
#
# An exception in an executor's initializer breaks the whole pool (BrokenProcessPool) and
# prints a traceback: the worker's own error — a store it cannot open — would be lost. So the
# initializer's error is kept and raised by each task instead, as itself.

_setup_error: BaseException | None = None


def _initialise(initializer: Callable | None, initargs: tuple) -> None:
    global _setup_error
    if initializer is None:
        return
    try:
        initializer(*initargs)
    except BaseException as exc:  # noqa: BLE001 - raised again by every task of this process
        _setup_error = exc


def _task(fn: Callable, *args) -> Any:
    if _setup_error is not None:
        raise _setup_error
    return fn(*args)

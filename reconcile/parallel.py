"""Keyed passes and the link pass evaluated by worker processes (``ReconcileOptions.workers`` > 1).

The expensive half of a batch — map it, look it up in the new store, compare — is pure
(``keyed.BatchEvaluator``, ``keyed.LinkEvaluator``), so ``n`` worker processes share it, while
this process applies the outcomes in key order (``Reconciler._apply``,
emitting the link pass's findings in batch order): the findings are the same as a serial
run's, batch for batch.

* Keyed passes: this process streams the legacy table's keys alone and cuts them into key
  ranges of a batch each (``keyed.key_ranges``), sent round-robin; worker ``w`` reads the
  rows of each range it is sent (``keyed.legacy_range``) and evaluates them. The ranges
  cover every key exactly once, compared by the database itself, so no record is evaluated
  twice or skipped — whatever the collation, even if the store is written meanwhile.
* Link pass: this process decides which crimes are matched (it holds the key sets) and
  sends their keys, a batch at a time, round-robin; each worker compares the links of its
  batches and sends back the findings.

Either way outcomes are taken back in the order the work was sent, which is key order.

Why not send legacy batches to the workers, or bring mapped records back? Measured on 2
cores: pickling a mapped batch there and back costs about as much as mapping it. An outcome
is a small tuple per record; a key range is two keys. (Until session 4 each worker streamed
the whole table and skipped the others' batches. Measured on CRIME at 1M: streaming it all
cost a worker 5.2 s of CPU; its half by range costs 2.4 s, and cutting the ranges 0.6 s here.)

A worker opens its own read-only connections (``open_legacy``, as this process does) and
reports a failure as the exception it raised (``StoreUnavailable`` for a lost store), raised
again here; a worker that dies without a word (killed, out of memory) is an error too
(``WorkerFailed``, exit 2), never a silently shorter result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import multiprocessing
import queue
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from core.errors import Opus2IopsError
from mappings.reference import Reference

#: Batches a worker may hold ready (or queued) before this process takes them: bounds memory.
_AHEAD = 2
#: Batches between two cyclic collections in a worker (see core.cyclic_gc).
_COLLECT_EVERY = 20
_BATCH, _FAILED = "batch", "failed"


class WorkerFailed(Opus2IopsError):
    """A reconciliation worker process ended without finishing its share."""


@dataclass(frozen=True)
class EvaluationWorkers:
    """How to start the workers of one reconciliation: what each needs to open the stores
    and map records exactly as this process would."""

    count: int
    legacy_url: str
    target_url: str
    reference: Reference
    run_started: dt.datetime
    batch_size: int
    #: Passes over fewer legacy rows run in the main process (ReconcileOptions.parallel_min_rows).
    min_rows: int = 0

    def worth_it(self, rows: int) -> bool:
        return rows >= self.min_rows

    def evaluated_batches(self, entity: str, ranges: Iterable, persons=None) -> Iterator[list[tuple]]:
        """Outcome lists of the legacy batches of ``entity`` (keyed pass) given as key
        ``ranges`` (``keyed.key_ranges``), in their order. ``persons``: the reconciler's person
        keys (``keyed.EntityKeys``; intelligence subjects are mapped against them), sent to
        each worker once."""
        with _Workers(self.count, _keyed_worker, (self, entity, persons)) as workers:
            yield from workers.in_order(ranges)

    def evaluated_links(self, key_batches: Iterable[list[str]], *, persons, crimes, padded_links: dict,
                        auto_pairs: dict) -> Iterator[tuple]:
        """``LinkEvaluator.evaluate`` of each batch of crime keys, in the order given;
        ``persons``/``crimes``: the reconciler's key sets (``keyed.EntityKeys``)."""
        args = (self, persons, crimes, padded_links, auto_pairs)
        with _Workers(self.count, _link_worker, args) as workers:
            yield from workers.in_order(key_batches)


class _Workers:
    """``count`` spawned processes running ``target(index, out, inbox, *args)``, each with its
    own inbox (work items, then None) and result queue; stopped on exit, whatever happened."""

    def __init__(self, count: int, target: Callable, args: tuple) -> None:
        context = multiprocessing.get_context("spawn")  # a forked child would share connections
        self.outs = [context.Queue(maxsize=_AHEAD) for _ in range(count)]
        self.inboxes = [context.Queue() for _ in range(count)]
        self.processes = [context.Process(target=target, daemon=True, args=(index, out, inbox, *args))
                          for index, (out, inbox) in enumerate(zip(self.outs, self.inboxes))]

    def __enter__(self) -> "_Workers":
        for process in self.processes:
            process.start()
        return self

    def send(self, index: int, item: Any) -> None:
        self.inboxes[index].put(item)

    def in_order(self, items: Iterable) -> Iterator[Any]:
        """Each item's result, in the order of ``items``: sent round-robin, at most
        ``_AHEAD`` waiting per worker (which bounds memory)."""
        count = len(self.processes)
        pending: deque[int] = deque()  # which worker has each item sent, in order
        items = iter(items)
        sent = 0

        def send_next() -> None:
            nonlocal sent
            item = next(items, None)
            if item is not None:
                self.send(sent % count, item)
                pending.append(sent % count)
                sent += 1

        for _ in range(count * _AHEAD):
            send_next()
        while pending:
            _, payload = self.take(pending.popleft())
            yield payload
            send_next()

    def take(self, index: int) -> tuple[str, Any]:
        """The next report of worker ``index``; its exception raised again here."""
        out, process = self.outs[index], self.processes[index]
        while True:
            try:
                kind, payload = out.get(timeout=1.0)
                break
            except queue.Empty:
                if process.is_alive():
                    continue
                try:  # it may have put its last word just before it ended
                    kind, payload = out.get(timeout=1.0)
                    break
                except queue.Empty:
                    raise WorkerFailed(f"a reconciliation worker process ended unexpectedly (exit code "
                                       f"{process.exitcode}) — run the reconciliation again") from None
        if kind == _FAILED:
            raise payload
        return kind, payload

    def __exit__(self, *exc) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(timeout=5 if exc[0] is None else 0)
            if process.is_alive():
                process.terminate()
                process.join()
        for q in self.outs + self.inboxes:
            q.close()
            q.cancel_join_thread()


# ------------------------------------------------------------------------ in the workers


def _reporting(work: Callable[[], object], out) -> None:
    """Run a worker's ``work`` (it puts its results on ``out`` itself); any exception is
    reported to the main process, which raises it."""
    gc.disable()  # as in the main process: collected by hand (core.cyclic_gc)
    try:
        work()
    except BaseException as exc:
        try:
            out.put((_FAILED, exc))
        except Exception:  # an exception that cannot be pickled: say what it was
            out.put((_FAILED, WorkerFailed(f"reconciliation worker failed: {type(exc).__name__}: {exc}")))


@contextlib.contextmanager
def _stores(plan: EvaluationWorkers):
    """The two stores, read-only, and their tables: (legacy, target, target tables, legacy tables)."""
    from reconcile.stores import open_stores

    with open_stores(plan.legacy_url, plan.target_url) as stores:
        yield stores.legacy, stores.target, stores.target_tables, stores.legacy_tables


def _send_all(out, results: Iterable) -> None:
    for done, result in enumerate(results, 1):
        out.put((_BATCH, result))
        if done % _COLLECT_EVERY == 0:
            gc.collect()


def _keyed_worker(index: int, out, inbox, plan: EvaluationWorkers, entity: str, persons):
    def work() -> None:
        from core.db import connect, store_errors
        from reconcile import keyed

        spec = {s.name: s for s in (keyed.PERSON, keyed.CRIME, keyed.INTEL)}[entity]
        with _stores(plan) as (legacy, target, target_tables, legacy_tables):
            ctx = keyed.mapping_context(plan.reference, plan.run_started, persons)
            evaluator = keyed.BatchEvaluator(target, target_tables, ctx)
            table = legacy_tables[spec.legacy_table]

            def evaluate(key_range, lconn, tconn) -> list[tuple]:
                with store_errors(legacy, "legacy"):
                    batch = keyed.legacy_range(lconn, table, spec.key_column, key_range)
                return evaluator.evaluate(spec, batch, tconn)

            with connect(target, "target") as tconn, connect(legacy, "legacy") as lconn:
                # Key ranges until the main process sends None.
                _send_all(out, (evaluate(r, lconn, tconn) for r in iter(inbox.get, None)))

    _reporting(work, out)


def _link_worker(index: int, out, inbox, plan: EvaluationWorkers, persons, crimes, padded_links: dict,
                 auto_pairs: dict):
    def work() -> None:
        from core.db import connect
        from reconcile import keyed

        with _stores(plan) as (legacy, target, target_tables, legacy_tables):
            ctx = keyed.mapping_context(plan.reference, plan.run_started, persons, crimes)
            links = keyed.LinkEvaluator(legacy, target, legacy_tables, target_tables, ctx, persons, padded_links,
                                        auto_pairs)
            with connect(target, "target") as tconn, connect(legacy, "legacy") as lconn:
                # Key batches until the main process sends None.
                _send_all(out, (links.evaluate(lconn, tconn, keys) for keys in iter(inbox.get, None)))

    _reporting(work, out)

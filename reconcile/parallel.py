"""Keyed passes and the link pass evaluated by worker processes (``ReconcileOptions.workers`` > 1).

The expensive half of a batch — map it, look it up in the new store, compare — is pure
(``keyed.BatchEvaluator``, ``keyed.LinkEvaluator``), so ``n`` worker processes share it, while
this process applies the outcomes in key order (``Reconciler._apply``,
``Reconciler.compare_link_sets``): the findings are the same as a serial run's, batch for batch.

* Keyed passes: worker ``w`` streams the legacy table in key order exactly as the serial
  reconciler does and evaluates batches ``w``, ``w + n``, ``w + 2n``, … (it reads past the
  others without building their rows); this process takes the outcomes round-robin, which
  is key order. Each worker's reading is its own snapshot, so at the end every worker's
  count and digest of the keys it read must agree: a store changed meanwhile would cut
  differently into batches, so the run stops (``LegacyChanged``) rather than risk a record
  evaluated twice or not at all.
* Link pass: this process decides which crimes are matched (it holds the key sets) and
  sends their keys, a batch at a time, round-robin; each worker sends back the expected and
  actual links of its batches.

Why not send legacy batches to the workers, or bring mapped records back? Measured on 2
cores: pickling a mapped batch there and back costs about as much as mapping it. An outcome
is a small tuple per record; reading the legacy table once more per worker costs less.

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
_BATCH, _DONE, _FAILED = "batch", "done", "failed"


class WorkerFailed(Opus2IopsError):
    """A reconciliation worker process ended without finishing its share."""


class LegacyChanged(Opus2IopsError):
    """The legacy store changed while worker processes were reading it."""


def _check_same_stream(entity: str, first: tuple, others: list[tuple[str, object]]) -> None:
    """Each worker read the whole legacy table to cut it into batches; if rows were added or
    removed meanwhile, the workers' batches would not line up and a record could be evaluated
    twice or not at all. So every worker's (rows, key digest) must be the same."""
    if any(kind != _DONE or payload != first for kind, payload in others):
        raise LegacyChanged(
            f"the legacy store changed while its {entity} records were being reconciled (rows added or "
            f"removed); reconcile a store nobody is writing to, or run with --workers 1")


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

    def evaluated_batches(self, entity: str, persons=None) -> Iterator[list[tuple]]:
        """Outcome lists of every legacy batch of ``entity`` (keyed pass), in key order.
        ``persons``: the reconciler's person keys (``keyed.EntityKeys``; intelligence subjects
        are mapped against them), sent to each worker once."""
        with _Workers(self.count, _keyed_worker, (self, entity, persons)) as workers:
            turn = 0
            while True:
                kind, payload = workers.take(turn % self.count)
                if kind == _DONE:
                    break  # the worker whose turn it is has no batch left: neither has any other
                yield payload
                turn += 1
            _check_same_stream(entity, payload, [workers.take((turn + k) % self.count)
                                                 for k in range(1, self.count)])

    def evaluated_links(self, key_batches: Iterable[list[str]], *, persons, crimes, padded_links: dict,
                        auto_pairs: dict) -> Iterator[list[tuple]]:
        """``LinkEvaluator.evaluate`` of each batch of crime keys, in the order given;
        ``persons``/``crimes``: the reconciler's key sets (``keyed.EntityKeys``)."""
        args = (self, persons, crimes, padded_links, auto_pairs)
        with _Workers(self.count, _link_worker, args, with_input=True) as workers:
            pending: deque[int] = deque()  # which worker has each batch sent, in order
            batches = iter(key_batches)
            sent = 0

            def send_next() -> None:
                nonlocal sent
                keys = next(batches, None)
                if keys is not None:
                    workers.send(sent % self.count, keys)
                    pending.append(sent % self.count)
                    sent += 1

            for _ in range(self.count * _AHEAD):
                send_next()
            while pending:
                kind, payload = workers.take(pending.popleft())
                yield payload
                send_next()


class _Workers:
    """``count`` spawned processes running ``target(index, out, inbox, *args)``, each with its
    own result queue (and inbox when ``with_input``); stopped on exit, whatever happened."""

    def __init__(self, count: int, target: Callable, args: tuple, with_input: bool = False) -> None:
        context = multiprocessing.get_context("spawn")  # a forked child would share connections
        self.outs = [context.Queue(maxsize=_AHEAD) for _ in range(count)]
        self.inboxes = [context.Queue() if with_input else None for _ in range(count)]
        self.processes = [context.Process(target=target, daemon=True, args=(index, out, inbox, *args))
                          for index, (out, inbox) in enumerate(zip(self.outs, self.inboxes))]

    def __enter__(self) -> "_Workers":
        for process in self.processes:
            process.start()
        return self

    def send(self, index: int, item: Any) -> None:
        self.inboxes[index].put(item)

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
            if inbox is not None:
                inbox.put(None)
        for process in self.processes:
            process.join(timeout=5 if exc[0] is None else 0)
            if process.is_alive():
                process.terminate()
                process.join()
        for q in self.outs + [i for i in self.inboxes if i is not None]:
            q.close()
            q.cancel_join_thread()


# ------------------------------------------------------------------------ in the workers


def _reporting(work: Callable[[], object], out) -> None:
    """Run a worker's ``work``; what it returns is its last word (``_DONE``), and any exception
    is reported to the main process, which raises it."""
    gc.disable()  # as in the main process: collected by hand (core.cyclic_gc)
    try:
        out.put((_DONE, work()))
    except BaseException as exc:
        try:
            out.put((_FAILED, exc))
        except Exception:  # an exception that cannot be pickled: say what it was
            out.put((_FAILED, WorkerFailed(f"reconciliation worker failed: {type(exc).__name__}: {exc}")))


def _open(plan: EvaluationWorkers):
    """The two stores, read-only, and their tables (legacy, target, target tables, legacy tables)."""
    from core import schema
    from core.db import open_legacy, store_errors
    from reconcile.run import open_target_read_only, target_iops_tables

    legacy = open_legacy(plan.legacy_url)
    target = open_target_read_only(plan.target_url)
    with store_errors(legacy, "legacy"):
        legacy_tables = schema.legacy_tables(legacy)
    return legacy, target, target_iops_tables(target), legacy_tables


def _connect(engine, role: str):
    from core.db import store_errors

    with store_errors(engine, role):
        return engine.connect()


@contextlib.contextmanager
def _stores(plan: EvaluationWorkers):
    legacy, target, target_tables, legacy_tables = _open(plan)
    try:
        yield legacy, target, target_tables, legacy_tables
    finally:
        legacy.dispose()
        target.dispose()


def _send_all(out, results: Iterable) -> None:
    for done, result in enumerate(results, 1):
        out.put((_BATCH, result))
        if done % _COLLECT_EVERY == 0:
            gc.collect()


def _keyed_worker(index: int, out, _inbox, plan: EvaluationWorkers, entity: str, persons):
    def work() -> tuple[int, str]:
        from reconcile import keyed

        spec = {s.name: s for s in (keyed.PERSON, keyed.CRIME, keyed.INTEL)}[entity]
        fingerprint = keyed.KeyFingerprint()
        with _stores(plan) as (legacy, target, target_tables, legacy_tables):
            ctx = keyed.mapping_context(plan.reference, plan.run_started, persons)
            evaluator = keyed.BatchEvaluator(target, target_tables, ctx)
            batches = keyed.legacy_batches(legacy, legacy_tables[spec.legacy_table], spec.key_column,
                                           plan.batch_size, mine=lambda n: n % plan.count == index,
                                           fingerprint=fingerprint)
            with _connect(target, "target") as tconn:
                _send_all(out, (evaluator.evaluate(spec, batch, tconn) for batch in batches))
        return fingerprint.value()

    _reporting(work, out)


def _link_worker(index: int, out, inbox, plan: EvaluationWorkers, persons, crimes, padded_links: dict,
                 auto_pairs: dict):
    def work() -> None:
        from reconcile import keyed

        with _stores(plan) as (legacy, target, target_tables, legacy_tables):
            ctx = keyed.mapping_context(plan.reference, plan.run_started, persons, crimes)
            links = keyed.LinkEvaluator(legacy, target, legacy_tables, target_tables, ctx, padded_links, auto_pairs)
            with _connect(target, "target") as tconn, _connect(legacy, "legacy") as lconn:
                # Key batches until the main process sends None.
                _send_all(out, (links.evaluate(lconn, tconn, keys) for keys in iter(inbox.get, None)))

    _reporting(work, out)

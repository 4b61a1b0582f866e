"""Keyed passes and the link pass evaluated by worker processes (``ReconcileOptions.workers`` > 1).

The expensive half of a batch — map it, look it up in the new store, compare — is pure
(``reconcile.evaluate``: ``BatchEvaluator``, ``LinkEvaluator``), so ``n`` worker processes share it, while
this process takes the outcomes in key order (``reconcile.decide.Reconciler``,
emitting the link pass's findings in batch order): the findings are the same as a serial
run's, batch for batch.

* Keyed passes: this process streams the legacy table's keys alone and cuts them into key
  ranges of a batch each (``evaluate.key_ranges``), handed to whichever worker is free; it reads
  the rows of its range (``evaluate.legacy_range``) and evaluates them. The ranges
  cover every key exactly once, compared by the database itself, so no record is evaluated
  twice or skipped — whatever the collation, even if the store is written meanwhile.
* Link pass: this process decides which crimes are matched (it holds the key sets) and
  sends their keys, a batch at a time; a worker compares the links of a batch and sends back
  the findings.

Either way outcomes are taken back in the order the work was sent, which is key order
(``core.pool.Pool.in_order``: a bounded window over ``ProcessPoolExecutor``).

Why not send legacy batches to the workers, or bring mapped records back? Measured on 2
cores: pickling a mapped batch there and back costs about as much as mapping it. An outcome
is a small tuple per record; a key range is two keys. And a worker reads only its own ranges:
streaming the whole table and skipping the others' batches costs each worker the reading of
every row.

A worker opens its own read-only connections once (``reconcile.stores.open_stores``, as this
process does, in the pool's initializer) and a failure is the exception it raised
(``StoreUnavailable`` for a lost store), raised again here; a worker that dies without a word
(killed, out of memory) is an error too (``core.pool.WorkerFailed``, exit 2), never a
silently shorter result.
"""

from __future__ import annotations

import datetime as dt
import gc
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from core.pool import Pool, WorkerFailed
from mappings.reference import Reference
from reconcile.sample import DEFAULT_SEED, DEFAULT_SIZE, MatchedSample

#: Batches between two cyclic collections in a worker (see core.cyclic_gc).
_COLLECT_EVERY = 20

__all__ = ["EvaluationWorkers", "WorkerFailed"]


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
    go_live: dt.date | None = None  # for the crime statistics (reconcile.stats.CrimeCells)
    #: The matched sample's seed and size: workers rank the records they find (reconcile.sample).
    sample_seed: int = DEFAULT_SEED
    sample_size: int = DEFAULT_SIZE

    def worth_it(self, rows: int) -> bool:
        return rows >= self.min_rows

    def evaluated_batches(self, entity: str, ranges: Iterable, persons=None) -> Iterator[list]:
        """Outcome lists of the legacy batches of ``entity`` (keyed pass) given as key
        ``ranges`` (``evaluate.key_ranges``), in their order. ``persons``: the reconciler's person
        keys (``reconcile.keys.EntityKeys``; intelligence subjects are mapped against them), sent to
        each worker once."""
        with Pool(self.count, _start_keyed, (self, entity, persons), "reconciliation worker") as pool:
            yield from pool.in_order(_evaluate_range, ranges)

    def evaluated_links(self, key_batches: Iterable[list[str]], *, persons, crimes, padded_links: dict,
                        auto_pairs: dict, person_auto: dict | None = None) -> Iterator[tuple]:
        """``LinkEvaluator.evaluate`` of each batch of crime keys, in the order given;
        ``persons``/``crimes``: the reconciler's key sets (``reconcile.keys.EntityKeys``)."""
        args = (self, persons, crimes, padded_links, auto_pairs, person_auto)
        with Pool(self.count, _start_links, args, "reconciliation worker") as pool:
            yield from pool.in_order(_evaluate_links, key_batches)


# ------------------------------------------------------------------------ in the workers
#
# Each worker process is set up once per pass by the pool's initializer: it opens the stores
# and keeps its evaluator and connections in ``_worker`` until the process ends with the pass.

_worker: dict[str, Any] = {}


def _open(plan: EvaluationWorkers) -> None:
    """The stores, read-only, and a connection to each, kept for the life of this process."""
    import contextlib
    from multiprocessing.util import Finalize

    from core.db import connect
    from reconcile.stores import open_stores

    gc.disable()  # as in the main process: collected by hand (core.cyclic_gc)
    stack = contextlib.ExitStack()
    Finalize(stack, stack.close, exitpriority=10)  # run as the worker process ends (atexit is not)
    stores = stack.enter_context(open_stores(plan.legacy_url, plan.target_url))
    _worker.update(stores=stores, done=0,
                   lconn=stack.enter_context(connect(stores.legacy, "legacy")),
                   tconn=stack.enter_context(connect(stores.target, "target")))


def _collected(result):
    """Every ``_COLLECT_EVERY`` tasks a cyclic collection (see core.cyclic_gc)."""
    _worker["done"] += 1
    if _worker["done"] % _COLLECT_EVERY == 0:
        gc.collect()
    return result


def _start_keyed(plan: EvaluationWorkers, entity: str, persons) -> None:
    from reconcile import evaluate
    from reconcile.specs import SPECS
    from reconcile.stats import CrimeCells

    _open(plan)
    stores = _worker["stores"]
    spec = SPECS[entity]
    ctx = evaluate.mapping_context(plan.reference, plan.run_started, persons)
    cells = CrimeCells(plan.reference, plan.go_live)
    sample = MatchedSample(plan.sample_seed, plan.sample_size)
    _worker.update(spec=spec, table=stores.legacy_tables[spec.legacy_table],
                   evaluator=evaluate.BatchEvaluator(stores.target, stores.target_tables, ctx, cells=cells,
                                                     sample=sample.rank_of))


def _evaluate_range(key_range) -> list:
    from core.db import store_errors
    from reconcile import evaluate

    spec, stores = _worker["spec"], _worker["stores"]
    with store_errors(stores.legacy, "legacy"):
        batch = evaluate.legacy_range(_worker["lconn"], _worker["table"], spec.key_column, key_range)
    return _collected(_worker["evaluator"].evaluate(spec, batch, _worker["tconn"]))


def _start_links(plan: EvaluationWorkers, persons, crimes, padded_links: dict, auto_pairs: dict,
                 person_auto: dict | None) -> None:
    from reconcile import evaluate

    _open(plan)
    s = _worker["stores"]
    ctx = evaluate.mapping_context(plan.reference, plan.run_started, persons, crimes)
    _worker["links"] = evaluate.LinkEvaluator(s.legacy, s.target, s.legacy_tables, s.target_tables, ctx, persons,
                                              padded_links, auto_pairs, person_auto=person_auto)


def _evaluate_links(keys: list[str]) -> tuple:
    return _collected(_worker["links"].evaluate(_worker["lconn"], _worker["tconn"], keys))

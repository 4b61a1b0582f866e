"""The batch migration engine behind ``python main.py migrate``: bulk loads and delta runs.

Per entity, in dependency order (persons, crimes + locations, links, intelligence +
locations), the legacy table is streamed in key order. Per batch, in ONE target transaction:
the records are decided (cutover.md), then target rows, bookkeeping, rejects, warnings,
conflicts and the checkpoint are written. A crash loses at most the batch in flight, and
``--resume RUN_ID`` continues after the last committed key.

The decision per record uses ``mig_xref`` (one row per record the tool wrote):

* its *source* digest (raw legacy row, code tables, tool version, the accepted state of the
  records it depends on) equals the record's now → unchanged in OPUS: nothing written, and
  the record is not even mapped (``EntityCounts.mapped``), whatever iOPS did since;
* otherwise the record is mapped and compared, row by row, with what the tool wrote
  (``written``: a 16-byte digest and a fingerprint byte per column of each row) and with what
  iOPS holds now: maps as before → unchanged; iOPS as the tool left it → updated (before-
  images in ``mig_ledger``, the replaced xref row in ``mig_xref_before``); both changed →
  a ``CHANGED_BOTH`` conflict in ``mig_conflict``, resolved per ``--on-conflict``;
* flagged deleted (or gone) in OPUS while the tool migrated it → ``DELETED_IN_OPUS``,
  reported, nothing deleted;
* a record whose source digest is that of one of the previous run's rejects (``mig_reject.source``)
  → that reject again, not mapped (``_carried_rejects``).

The per-record work that needs no decision of the run so far — key, source digest, the batch's
mig_xref key range, the mapping of what changed, the written images — is ``_examine``; with
``workers`` > 1 worker processes do it for key ranges (independent units: URLs in, results
out), and this process alone decides, writes and commits, batch by batch in key order.

Inserted records get no ledger row: their target ids follow from their legacy keys
(``migrate.records``) and ``mig_xref.first_run`` says which run inserted them — what rollback
needs to delete them.
"""

from __future__ import annotations

import bisect
from collections import deque
import datetime as dt
import getpass
import hashlib
import json
import marshal
import os
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Callable, Iterable

import sqlalchemy as sa
from pyroaring import BitMap
from sqlalchemy.engine import Engine

from core import __version__, schema
from core.cyclic_gc import manual_cyclic_gc
from core.batches import RowBatch, legacy_row_batches, read_range, select_in_key_order
from core.db import (bind_rows, bulk_insert, checkpoint_key, insert_bound, mask_url, open_legacy, open_target,
                     recorded_url, refuse_same_store, store_errors)
from core.digest import canonical_row, read_written, row_fingerprint, short_digest, text_fingerprint, written_image
from core.errors import ForeignSchemaError, RunNotFound, UsageError
from core.progress import bar
from core.schema import utc_now
from mappings.entities import ENTITIES, Entity, first_key_wins
from mappings.link import ROLES, link_key
from mappings.parse import code, parse_nom_id, trim
from mappings.person import person_key
from mappings.outcome import Mapped, MappingContext
from mappings.reference import Reference, load_reference
from mappings.storable import escaped
from migrate import lock
from migrate import records
from migrate.accepted import AcceptedKeys
from core.keyset import KeySet
from core.pool import Pool

#: Keys per IN list (and xref keys per page).
PAGE = 2000
_WIDTH = records.WIDTH

# ------------------------------------------------------------------------------ results


@dataclass
class EntityCounts:
    read: int = 0
    written: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicted: int = 0  # changed in OPUS and edited in iOPS (cutover.md); resolved per --on-conflict
    excluded: int = 0
    rejected: int = 0
    rejected_by: dict[str, int] = field(default_factory=dict)
    warnings_by: dict[str, int] = field(default_factory=dict)
    rows_written: int = 0  # target rows (a crime and its location are two)
    # Beside the invariant: live records the tool migrated that OPUS has since deleted (flagged
    # or vanished). A vanished row is not read, so it cannot be one of the terms above.
    deleted_in_opus: int = 0
    overwritten: int = 0  # of ``conflicted``: iOPS edits overwritten by --on-conflict take-opus
    # Records this run mapped: on a re-run, only those whose legacy row (or what it depends
    # on) changed; an unchanged record is decided from mig_xref alone.
    mapped: int = 0

    @property
    def balanced(self) -> bool:
        """The invariant: every record read is accounted for exactly once."""
        return self.read == (self.written + self.updated + self.unchanged + self.conflicted + self.excluded
                             + self.rejected)

    def pending(self) -> "EntityCounts":
        """A copy to count one batch into; ``settle`` makes it these counts once the batch is done.

        A batch's counts must become visible only with its commit (issue 16): counting into
        the live object and then failing the transaction (disk full, lost connection, a
        constraint, Ctrl-C) would leave counts of rows that were rolled back.
        """
        return EntityCounts.from_json(json.loads(json.dumps(self.to_json())))

    def settle(self, done: "EntityCounts") -> None:
        self.__dict__.update(done.pending().__dict__)

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict | None) -> "EntityCounts":
        return cls(**data) if data else cls()


@dataclass
class MigrationResult:
    run_id: int | None
    dry_run: bool
    resumed: bool
    state: str
    legacy_url: str  # masked
    target_url: str  # masked
    started_at: dt.datetime
    finished_at: dt.datetime
    counts: dict[str, EntityCounts]
    max_rejects: int | None = None
    #: --on-conflict stop: the conflicts of the batch the run stopped at (mig_conflict, STOPPED).
    stopped_at_conflict: int = 0

    @property
    def balanced(self) -> bool:
        return all(c.balanced for c in self.counts.values())

    @property
    def total_rejected(self) -> int:
        return sum(c.rejected for c in self.counts.values())

    @property
    def too_many_rejects(self) -> bool:
        return self.max_rejects is not None and self.total_rejected > self.max_rejects

    @property
    def total_conflicted(self) -> int:
        return sum(c.conflicted for c in self.counts.values())

    @property
    def total_deleted_in_opus(self) -> int:
        return sum(c.deleted_in_opus for c in self.counts.values())

    @property
    def exit_code(self) -> int:
        """1 on findings (cutover.md): an unbalanced run, rejects above --max-rejects, conflicts,
        records deleted in OPUS that iOPS still holds."""
        if (not self.balanced or self.too_many_rejects or self.total_conflicted or self.total_deleted_in_opus
                or self.stopped_at_conflict):
            return 1
        return 0


# ------------------------------------------------------------------------------ the run

#: What a delta run does with a record changed in OPUS and edited in iOPS (cutover.md).
ON_CONFLICT = ("keep-iops", "take-opus", "stop")


def migrate(
    legacy_url: str,
    target_url: str,
    *,
    batch_size: int = 2000,
    dry_run: bool = False,
    resume: int | None = None,
    max_rejects: int | None = None,
    reference: Reference | None = None,
    stop_after_batches: int | None = None,
    on_conflict: str = "keep-iops",
    workers: int | None = 1,
) -> MigrationResult:
    """Migrate the OPUS store at ``legacy_url`` into the iOPS store at ``target_url``.

    ``stop_after_batches`` exists for tests of interruption: the run stops (state
    ``interrupted``) after that many committed batches, as a crash would.

    ``workers``: processes that examine and map key ranges beside the one writer (1: all in this
    process; None: ``auto_workers``). The result is the same whatever the number.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise UsageError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE:,} (default 2,000): one batch is "
                         "one transaction, held in memory whole")
    if on_conflict not in ON_CONFLICT:
        raise UsageError(f"--on-conflict must be one of {', '.join(ON_CONFLICT)}")
    if workers is not None and not 1 <= workers <= 32:
        raise UsageError("--workers must be between 1 and 32")
    if dry_run and resume is not None:
        raise UsageError("--dry-run and --resume cannot be combined: a dry run has nothing to resume")
    reference = reference or load_reference()
    legacy = open_legacy(legacy_url)
    try:
        refuse_same_store(legacy, target_url)  # before the target (or its SQLite file) is created
        # A dry run reads the target (to tell new from unchanged records) but can never write it.
        target = open_target(target_url, read_only=dry_run)
    except BaseException:
        legacy.dispose()
        raise
    try:
        legacy_tables = schema.legacy_tables(legacy)
        if workers is None:
            workers = auto_workers(legacy, legacy_tables)
        with manual_cyclic_gc() as collect:
            runner = _Runner(legacy, target, legacy_tables, reference, batch_size, dry_run, stop_after_batches,
                             collect, on_conflict, workers)
            if dry_run:
                return runner.run_dry(legacy_url, target_url, max_rejects)
            with store_errors(target, "target"):
                # The whole target's shape first, before anything is created in it; then only
                # the lock table (two first runs may race to create it), and the rest under the lock.
                schema.check_target_schema(target)
                schema.check_no_foreign_records(target)
                schema.create_lock_table(target)
            with lock.target_lock(target, "migrate", run_id=resume):
                with store_errors(target, "target"):
                    schema.create_target_schema(target)
                try:
                    return runner.run(legacy_url, target_url, resume, max_rejects)
                except sa.exc.IntegrityError as exc:
                    # Our ids are deterministic and our own rows are looked up first: a collision
                    # is a row another tool put there since (its values are not repeated here).
                    raise ForeignSchemaError(
                        f"a row this migration writes{_table_named_in(exc)} collides with one already in the "
                        "target that this tool did not write: remove it, or migrate into an empty iOPS store "
                        "(committed batches are kept; continue with --resume)"
                    ) from None
    finally:
        legacy.dispose()
        if target is not None:
            target.dispose()


#: Stores with fewer legacy records than this are migrated in one process: starting workers (a
#: fresh interpreter each, importing the tool) costs more than they save.
WORKERS_FROM_RECORDS = 50_000


def auto_workers(legacy: Engine, tables: dict) -> int:
    """``workers=None``: two when the machine has two cores or more and the store is large enough
    to repay starting them (``WORKERS_FROM_RECORDS``), else one. Two, not one per core: the
    writer is the critical path, and two workers already keep it fed."""
    if (os.cpu_count() or 1) < 2:
        return 1
    with store_errors(legacy, "legacy"), legacy.connect() as conn:
        records = sum(conn.execute(sa.select(sa.func.count()).select_from(tables[e.legacy_table])).scalar_one()
                      for e in ENTITIES)
    return 2 if records >= WORKERS_FROM_RECORDS else 1


# ------------------------------------------------------------------------------ which store

#: Rows per legacy table, lowest keys first, that identify a store (see ``legacy_fingerprint``).
FINGERPRINT_ROWS = 64
#: Besides its key, what a record keeps for life: when it was recorded.
_FINGERPRINT_FACTS = {"crime": ("rec_date", "rec_time"), "intelligence": ("submit_date", "submit_time")}


def legacy_fingerprint(legacy: Engine, tables: dict) -> str:
    """SHA-256 of what cannot change in an OPUS store between two runs: the lowest
    ``FINGERPRINT_ROWS`` keys of each migrated table, in the store's own key order, with the
    date and time each crime and intelligence entry was recorded.

    A resumed run must read the store its run started on (``mig_run.legacy_fingerprint``).
    "Same store" is the data, not its address: a copy (a rehearsal's, a restored backup, the
    store moved to another server) continues the run exactly, while another store at the same
    URL (a regenerated file, another force's backup) must not — an address would judge both
    wrongly. OPUS lives on (edits, new records, deletions flag rows), so only keys and when
    they were recorded are used; the free text (intelligence) is never read. Two stores that
    differ only above their lowest keys are, for a resume, one store that moved on: what
    changed is a delta, migrated as in cutover.md. A store whose key order differs (another
    engine's collation) hashes differently too: resuming "after the last key" would skip records.
    """
    digest = hashlib.sha256(b"opus2iops legacy fingerprint 1\n")
    with store_errors(legacy, "legacy"), legacy.connect() as conn:
        for spec in ENTITIES:
            table = tables[spec.legacy_table]
            keys = [table.c[name] for name in spec.key_columns]
            facts = [table.c[name] for name in _FINGERPRINT_FACTS.get(spec.name, ())]
            digest.update(f"{spec.name}\n".encode())
            for row in conn.execute(sa.select(*keys, *facts).order_by(*keys).limit(FINGERPRINT_ROWS)):
                # CHAR padding differs between engines; the value does not.
                values = [v.rstrip() if isinstance(v, str) else v for v in row]
                digest.update(json.dumps(values, default=str).encode() + b"\n")
    return digest.hexdigest()


#: The largest ``--batch-size``. A batch is one target transaction, and its legacy rows, mapped
#: records, ledger and cross-references are all held in memory until it commits (a few KB a
#: record): 100,000 records are already hundreds of MB and a transaction that long holds its
#: locks and WAL for minutes, while throughput stops improving within a few thousand (default 2,000).
MAX_BATCH_SIZE = 100_000


def _table_named_in(exc: sa.exc.IntegrityError) -> str:
    """`` (into TABLE)`` when the failed statement names one of our tables (never a value)."""
    statement = str(exc.statement or "")
    for name in schema.target_metadata.tables:
        if f"INTO {name} " in statement or f'"{name}"' in statement or f"COPY {name} " in statement:
            return f" (into {name})"
    return ""


#: Batches between two manual cyclic collections (see ``core.cyclic_gc``): often enough that
#: the few per-batch cycles (connections, transactions) never add up to much memory.
_COLLECT_EVERY_BATCHES = 20


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, once the run is recorded: carries the id to resume it with.

    Still a ``KeyboardInterrupt`` (whoever catches that keeps working); the library prints
    nothing, the CLI says ``migrate --resume <run_id>``.
    """

    def __init__(self, run_id: int):
        super().__init__(run_id)
        self.run_id = run_id


class _Interrupted(Exception):
    """Raised by ``stop_after_batches`` to simulate a crash between batches."""


class _StoppedAtConflict(Exception):
    """--on-conflict stop met a conflict: the batch is not written (its conflicts are)."""

    def __init__(self, conflicts: list[dict]):
        super().__init__(len(conflicts))
        self.conflicts = conflicts


class _Runner:
    def __init__(self, legacy: Engine, target: Engine, legacy_tables: dict, reference: Reference,
                 batch_size: int, dry_run: bool, stop_after_batches: int | None,
                 collect_garbage: Callable[[], None] = lambda: None, on_conflict: str = "keep-iops",
                 workers: int = 1):
        self.workers = workers
        self.collect_garbage = collect_garbage  # see core.cyclic_gc: automatic collection is off
        self.legacy = legacy
        self.target = target
        self.tables = legacy_tables
        self.reference = reference
        self.batch_size = batch_size
        self.dry_run = dry_run
        self.stop_after_batches = stop_after_batches
        self.on_conflict = on_conflict
        self.batches_committed = 0
        self.accepted = AcceptedKeys()
        self.run_started: dt.datetime | None = None
        self.counts: dict[str, EntityCounts] = {}
        self.stopped: list[dict] = []  # conflict rows of the batch --on-conflict stop stopped at
        # What the source digest of every record starts from: a record read again is "unchanged
        # in OPUS" only if it would be mapped with the same code tables by the same mapping.
        self._salt = hashlib.blake2b(f"{__version__}\nsource 2\n{reference.digest}\n".encode(),
                                     digest_size=16).digest()
        # The run before this one, whose rejects a record with the same source digest is again.
        self.previous_run: int | None = None
        self._start_entity()
        self.pool = None  # worker processes (``workers`` > 1): see ``_examined``
        self._recent_links: deque[set[str]] = deque()  # link keys inserted by batches examined in flight

    def _start_entity(self) -> None:
        # Links: ``_key_crc`` of the keys read by the entity's batches decided so far (see _decide).
        self._links_read = BitMap()
        # For ``_vanished``: mig_xref rows this run found for the entity's records read (each key
        # once: for keyed entities first key wins) and rows it inserted; ``_scan`` when that
        # tally cannot be exact (links, a flagged record found in mig_xref).
        self._matched = 0
        self._unchanged_here = 0  # records unchanged by their source digest
        self._inserted_here = 0
        self._scan = False

    # --- public entry points ---------------------------------------------------------

    def run_dry(self, legacy_url: str, target_url: str, max_rejects: int | None) -> MigrationResult:
        started = utc_now()
        ctx = self._context(started)
        has_xref = self.target is not None and sa.inspect(self.target).has_table("mig_xref")
        self.previous_run = self._find_previous_run(None) if has_xref else None
        counts = self.counts
        for spec in ENTITIES:
            counts[spec.name] = EntityCounts()
            self._start_entity()
            with bar(f"{spec.name:<13} (dry run)", total=self._legacy_count(spec), unit="rec") as progress:
                for batch in self._batches(spec, after=None):
                    # As in a real run, a batch counts only once it has been classified whole.
                    batch_counts = counts[spec.name].pending()
                    if has_xref:
                        with store_errors(self.target, "target"), self.target.connect() as conn:
                            plan = self._plan(conn, spec, batch, ctx, batch_counts)
                    else:
                        plan = self._plan(None, spec, batch, ctx, batch_counts)
                    batch_counts.written += len(plan.inserts)
                    batch_counts.rows_written += sum(len(m.rows) for m in plan.inserts) + sum(
                        len(u.mapped.rows) for u in plan.updates)
                    counts[spec.name].settle(batch_counts)
                    progress.update(len(batch.rows))
            if has_xref:
                with store_errors(self.target, "target"), self.target.connect() as conn:
                    counts[spec.name].deleted_in_opus += len(self._vanished(conn, spec, None))
        return MigrationResult(None, True, False, "dry_run", mask_url(legacy_url), mask_url(target_url),
                               started, utc_now(), counts, max_rejects)

    def run(self, legacy_url: str, target_url: str, resume: int | None, max_rejects: int | None) -> MigrationResult:
        with store_errors(self.target, "target"):
            run_id, started, checkpoints = self._start_or_resume(legacy_url, resume)
        ctx = self._context(started)
        self.previous_run = self._find_previous_run(run_id)
        if self.workers > 1:
            with Pool(self.workers, _worker_setup, (legacy_url, target_url, self.reference, self._salt, started),
                      what="migration worker") as pool:
                self.pool = pool
                try:
                    return self._run(run_id, started, checkpoints, ctx, legacy_url, target_url, resume, max_rejects)
                finally:
                    self.pool = None
        return self._run(run_id, started, checkpoints, ctx, legacy_url, target_url, resume, max_rejects)

    def _run(self, run_id, started, checkpoints, ctx, legacy_url, target_url, resume, max_rejects) -> MigrationResult:
        counts = self.counts
        state = "complete"
        try:
            for spec in ENTITIES:
                cp = checkpoints.get(spec.name)
                counts[spec.name] = EntityCounts.from_json(cp["counts"] if cp else None)
                self._start_entity()
                after = cp["last_key"] if cp else None
                if cp and cp["done"]:
                    self._rebuild(spec, ctx, upto=None)
                    continue
                if cp and after is not None:
                    # Resuming: the keys accepted (and read) before the checkpoint, as the run decided them.
                    self._rebuild(spec, ctx, upto=after)
                # Target errors only: legacy reads translate their own errors where they happen
                # (_batches, _legacy_count). An inner legacy handler here would name the legacy
                # store for a lost target connection.
                with store_errors(self.target, "target"):
                    self._migrate_entity(run_id, spec, ctx, counts[spec.name], after, cp)
        except _Interrupted:
            state = "interrupted"
        except _StoppedAtConflict as stop:
            # Resumable: once the engineer has dealt with the record (or chosen another
            # --on-conflict), --resume continues with the batch that stopped.
            state = "interrupted"
            self.stopped = stop.conflicts
            with store_errors(self.target, "target"), self.target.begin() as conn:
                bulk_insert(conn, schema.mig_conflict, [dict(c, run_id=run_id) for c in stop.conflicts])
        except KeyboardInterrupt:
            self._set_state(run_id, "interrupted", None)  # counts: see below
            raise RunInterrupted(run_id) from None
        except BaseException:
            # Counts are not written here: the committed ones are already in mig_run, written
            # by each batch's own transaction (_checkpoint). Writing the in-memory ones could
            # only add a batch whose commit failed, or whose outcome the client never learnt.
            self._set_state(run_id, "interrupted", None)
            raise
        self._set_state(run_id, state, counts)
        result = MigrationResult(run_id, False, resume is not None, state, mask_url(legacy_url),
                                 mask_url(target_url), started, utc_now(), counts, max_rejects)
        result.stopped_at_conflict = len(self.stopped)
        return result

    # --- run bookkeeping ------------------------------------------------------------

    def _start_or_resume(self, legacy_url: str, resume: int | None):
        fingerprint = legacy_fingerprint(self.legacy, self.tables)
        if resume is None:
            started = utc_now()
            with self.target.begin() as conn:
                run_id = conn.execute(schema.mig_run.insert().values(
                    state="running", started_at=started, heartbeat_at=started, legacy_url=recorded_url(legacy_url),
                    legacy_fingerprint=fingerprint,
                    host=lock.HOST, os_user=_os_user(), pid=os.getpid(), tool_version=__version__,
                    mapping_digest=self.reference.digest, batch_size=self.batch_size, counts="{}",
                )).inserted_primary_key[0]
                conn.execute(schema.mig_lock.update().values(run_id=run_id))
            return run_id, started, {}
        with self.target.begin() as conn:
            run = conn.execute(sa.select(schema.mig_run).where(schema.mig_run.c.run_id == resume)).first()
            if run is None:
                raise RunNotFound(f"no run {resume} in this target (see `runs --target ...`)")
            if run.state not in ("running", "interrupted"):
                raise UsageError(f"run {resume} is {run.state}; only an interrupted run can be resumed")
            if run.mapping_digest != self.reference.digest:
                raise UsageError(
                    f"run {resume} used different code tables (digest {run.mapping_digest[:12]}, now "
                    f"{self.reference.digest[:12]}): start a new run instead of resuming"
                )
            if run.legacy_fingerprint is None:
                raise UsageError(f"run {resume} was started by an older opus2iops that did not record which legacy "
                                 "store it read: start a new run instead of resuming")
            if run.legacy_fingerprint != fingerprint:
                raise UsageError(
                    f"run {resume} read another legacy store (fingerprint {run.legacy_fingerprint[:12]}, this one "
                    f"{fingerprint[:12]}): resume it with the store it started on, or start a new run")
            conn.execute(schema.mig_run.update().where(schema.mig_run.c.run_id == resume)
                         .values(state="running", pid=os.getpid(), host=lock.HOST, heartbeat_at=utc_now()))
            conn.execute(schema.mig_lock.update().values(run_id=resume))
            rows = conn.execute(sa.select(schema.mig_checkpoint).where(schema.mig_checkpoint.c.run_id == resume))
            checkpoints = {
                r.entity: {"last_key": json.loads(r.last_key) if r.last_key else None, "done": r.done,
                           "batches": r.batches, "counts": json.loads(r.counts or "{}")}
                for r in rows
            }
        # The batch size may differ on resume; the key order is what matters.
        return resume, run.started_at, checkpoints

    def _find_previous_run(self, run_id: int | None) -> int | None:
        """The latest run before ``run_id`` (None: before any), if the target's mig_reject keeps
        source digests (older targets do not)."""
        inspector = sa.inspect(self.target)
        if not inspector.has_table("mig_reject") or "source" not in {
                c["name"].lower() for c in inspector.get_columns("mig_reject")}:
            return None
        r = schema.mig_run
        query = sa.select(sa.func.max(r.c.run_id))
        if run_id is not None:
            query = query.where(r.c.run_id < run_id)
        with self.target.connect() as conn:
            return conn.execute(query).scalar_one()

    def _set_state(self, run_id: int, state: str, counts: dict[str, EntityCounts] | None) -> None:
        values = {"state": state}
        if counts is not None:
            values["counts"] = json.dumps({k: v.to_json() for k, v in counts.items()})
        if state == "complete":
            values["finished_at"] = utc_now()
        try:
            with self.target.begin() as conn:
                conn.execute(schema.mig_run.update().where(schema.mig_run.c.run_id == run_id).values(**values))
        except sa.exc.DBAPIError:
            pass  # the store is gone; `runs` shows the run as interrupted anyway

    # --- reading ----------------------------------------------------------------------

    def _context(self, started: dt.datetime) -> MappingContext:
        self.run_started = started
        return MappingContext(
            reference=self.reference,
            run_started=started,
            person_migrated=self.accepted.has_person,
            crime_migrated=self.accepted.has_crime,
        )

    def _batches(self, spec: Entity, after: list | None, upto: list | None = None,
                 columns: tuple[str, ...] | None = None) -> Iterable[RowBatch]:
        """The legacy table in key order, ``batch_size`` rows at a time as tuples (``core.batches``),
        with a manual cyclic collection every ``_COLLECT_EVERY_BATCHES`` batches and at the end."""
        yield from legacy_row_batches(self.legacy, self.tables[spec.legacy_table], spec.key_columns,
                                      self.batch_size, after=after, upto=upto, every_batch=self._every_batch,
                                      columns=columns)
        self.collect_garbage()

    def _every_batch(self, n: int) -> None:
        if n % _COLLECT_EVERY_BATCHES == 0:
            self.collect_garbage()

    def _legacy_count(self, spec: Entity) -> int:
        table = self.tables[spec.legacy_table]
        with store_errors(self.legacy, "legacy"), self.legacy.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

    def _rebuild(self, spec: Entity, ctx: MappingContext, upto: list | None) -> None:
        """The keys the run accepted (and read) up to its checkpoint, as ``_plan`` decided them:
        records this run wrote are unchanged against mig_xref now, so this maps only rejects."""
        scratch = EntityCounts()
        with store_errors(self.target, "target"), self.target.connect() as conn:
            for batch in self._batches(spec, after=None, upto=upto):
                self._plan(conn, spec, batch, ctx, scratch)

    # --- classifying ------------------------------------------------------------------

    def _plan(self, conn, spec: Entity, batch: RowBatch, ctx: MappingContext, counts: EntityCounts) -> "_Plan":
        """``_decide`` on the batch examined here (``_examine``)."""
        return self._decide(conn, spec, self._examine_here(conn, spec, batch, ctx), counts)

    def _examine_here(self, conn, spec: Entity, batch: RowBatch, ctx: MappingContext) -> "_Examined":
        return _examine(spec, batch, conn, self._salt, self.accepted, ctx, True, self.previous_run)

    def _decide(self, conn, spec: Entity, ex: "_Examined", counts: EntityCounts) -> "_Plan":
        """Decide per record (cutover.md): unchanged, insert, update, conflict, excluded (and
        deleted in OPUS), rejected; count it. A record ``_examine`` found unchanged by its source
        digest is decided without having been mapped."""
        plan = _Plan()
        name = spec.name
        keyed = spec.unique_key
        accepted = self.accepted
        mapped = ex.mapped
        read_before = self._links_read  # links: the keys of earlier batches (this one's added below)
        counts.mapped += len(mapped)
        # Unchanged in OPUS: whatever iOPS did since is normal life (cutover.md). Decided as a
        # batch: their keys stay accepted, each matched its own mig_xref row.
        counts.read += ex.read
        counts.unchanged += ex.unchanged
        self._matched += ex.unchanged
        self._unchanged_here += ex.unchanged
        if keyed and ex.accepted is not None:
            accepted.add_all(name, ex.accepted)
        for reject_id, reason in ex.carried:
            counts.rejected += 1
            counts.rejected_by[reason] = counts.rejected_by.get(reason, 0) + 1
            plan.carried.append(reject_id)
        xref: dict[str, _Xref] = {}
        if conn is not None and mapped:
            # What the decision of a mapped record needs beyond the source digest; a key outside
            # the range read (its mapping gives another key, or the engine orders keys otherwise)
            # is looked up too, and a link another batch in flight may have inserted (workers).
            recent = self._recent_links
            xref = _xref_in(conn, name, {m.legacy_key for m, look in zip(mapped, ex.lookup) if look or (
                recent and not m.reject and any(m.legacy_key in r for r in recent))})
        plan.images = {id(m): image for m, image in zip(mapped, ex.images)}
        seen_in_batch: set[str] = set()
        changed = []
        for m, source, raw, repeated in zip(mapped, ex.sources, ex.raws, ex.repeated):
            if m.excluded:
                counts.excluded += 1
                x = xref.get(m.legacy_key)
                self._scan = self._scan or x is not None
                if x is not None and not (keyed and accepted.has(name, m.legacy_key)):
                    plan.conflicts.append(_conflict_row(name, m.legacy_key, "DELETED_IN_OPUS", None, None, "KEPT_IOPS"))
                    counts.deleted_in_opus += 1
                continue
            if keyed and m.reject is None:
                first_key_wins(spec, m, accepted.has(name, m.legacy_key))
            if m.reject is not None:
                counts.rejected += 1
                counts.rejected_by[m.reject.code] = counts.rejected_by.get(m.reject.code, 0) + 1
                plan.rejects.append((m, raw, source))
                continue
            accepted.add(name, m.legacy_key)
            if repeated or m.legacy_key in seen_in_batch:
                # Legacy links that normalise to the same (crime, person, role) are migrated once.
                counts.unchanged += 1
                continue
            seen_in_batch.add(m.legacy_key)
            x = xref.get(m.legacy_key)
            if x is not None and x.source == source:  # found unchanged by key (a range read cut off)
                counts.unchanged += 1
                self._matched += 1
                self._unchanged_here += 1
                continue
            if x is None:
                plan.inserts.append(m)
                plan.sources[m.legacy_key] = source
                self._count_warnings(m, counts)
            else:
                # A link whose key an earlier batch read (as far as a 32-bit hash tells) is a second
                # legacy link of that key: its source digest is not recorded (the first one's is),
                # or the two would replace each other's on every run.
                refresh = keyed or _key_crc(m.legacy_key) not in read_before
                changed.append((m, source, x, refresh))
                self._matched += 1
        if not keyed:
            self._links_read.update(array("I", ex.key_hashes))
        if changed:
            self._decide_changed(conn, spec, changed, plan, counts)
        return plan

    def _decide_changed(self, conn, spec: Entity, changed: list, plan: "_Plan", counts: EntityCounts) -> None:
        """Records changed in OPUS (by their source digest) that the tool wrote before: compare
        what the mapping gives now, and what iOPS holds now, with what the tool wrote."""
        current = _current_records(conn, [m for m, _, _, _ in changed])
        started = self.run_started
        for m, source, x, refresh in changed:
            written = read_written(x.written, schema.TARGET_TABLES, _WIDTH)
            now = current[m.legacy_key]
            iops_fields = []
            for table_name, (digest, prints) in written.items():
                row = now.get(table_name)
                if row is None:
                    iops_fields.append(f"{_qualified(spec, table_name, '*')}")  # the row is gone from iOPS
                    continue
                row_digest_now, prints_now = row_fingerprint(row)
                if row_digest_now != digest:
                    iops_fields += _fields_between(spec, table_name, prints_now, prints) or [
                        _qualified(spec, table_name, "?")]
            opus_fields = []
            for table_name, row in m.rows.items():
                previous = written.get(table_name)
                if previous is None:
                    opus_fields.append(_qualified(spec, table_name, "*"))  # a row the record gains
                    continue
                row = _keep_run_start(row, now.get(table_name), started)
                digest, prints = row_fingerprint(row)
                if digest != previous[0]:
                    opus_fields += _fields_between(spec, table_name, prints, previous[1]) or [
                        _qualified(spec, table_name, "?")]
            if not opus_fields:
                # The raw row changed but maps to what the tool wrote (e.g. other code tables
                # that agree on this record): unchanged; remember the new source digest.
                counts.unchanged += 1
                # Links too: otherwise a new tool version (in every source digest) would leave
                # every link mapped on every later run. Of two legacy links that normalise to one
                # key, the first in key order (see _decide).
                if refresh:
                    plan.refresh.append((m.legacy_key, source, x))
                continue
            if not iops_fields:
                counts.updated += 1
                plan.updates.append(_Update(m, source, x, now))
                self._count_warnings(m, counts)
                continue
            counts.conflicted += 1
            resolution = {"keep-iops": "KEPT_IOPS", "take-opus": "OVERWRITTEN", "stop": "STOPPED"}[self.on_conflict]
            plan.conflicts.append(_conflict_row(spec.name, m.legacy_key, "CHANGED_BOTH", opus_fields, iops_fields,
                                                resolution))
            if resolution == "OVERWRITTEN":
                counts.overwritten += 1
                plan.updates.append(_Update(m, source, x, now))
                self._count_warnings(m, counts)
            elif resolution == "STOPPED":
                plan.stop = True

    @staticmethod
    def _count_warnings(m: Mapped, counts: EntityCounts) -> None:
        for w in m.warnings:
            counts.warnings_by[w.code] = counts.warnings_by.get(w.code, 0) + 1

    def _vanished(self, conn, spec: Entity, run_id: int | None) -> list[dict]:
        """Records the tool migrated whose legacy row is gone (not read by this run). Mostly decided
        by a count: every mig_xref row of the entity found once, or inserted by this run. Else the
        xref keys, streamed in pages, against the hashes of the legacy keys, read again (keys only)."""
        x = schema.mig_xref
        if not self._scan:
            # Each xref row found once, or inserted by this run: if that is all of them, none vanished.
            # Links: only the unchanged ones are counted, each the one record whose source digest its
            # row holds (two legacy links of one key may both find it by key).
            held = conn.execute(sa.select(sa.func.count()).select_from(x).where(x.c.entity == spec.name)).scalar_one()
            if held == (self._matched if spec.unique_key else self._unchanged_here) + self._inserted_here:
                return []
        seen = array("q")
        for batch in self._batches(spec, after=None, columns=spec.key_columns):
            key_of = _key_reader(spec, batch.names)
            seen.extend(hash(key_of(row)) for row in batch.rows)
        seen_sorted = array("q", sorted(seen))
        del seen
        found = []
        last = None
        while True:
            query = sa.select(x.c.legacy_key).where(x.c.entity == spec.name)
            if last is not None:
                query = query.where(x.c.legacy_key > last)
            page = conn.execute(query.order_by(x.c.legacy_key).limit(PAGE)).scalars().all()
            if not page:
                return found
            last = page[-1]
            for key in page:
                h = hash(key)
                at = bisect.bisect_left(seen_sorted, h)
                if at == len(seen_sorted) or seen_sorted[at] != h:
                    found.append(_conflict_row(spec.name, key, "DELETED_IN_OPUS", None, None, "KEPT_IOPS"))

    # --- writing ------------------------------------------------------------------------

    def _migrate_entity(self, run_id: int, spec: Entity, ctx: MappingContext, counts: EntityCounts,
                        after: list | None, cp: dict | None) -> None:
        batch_no = cp["batches"] if cp else 0
        total = self._legacy_count(spec)
        with bar(f"{spec.name:<13}", total=total, unit="rec") as progress:
            progress.update(counts.read)
            for batch, examined in self._examined(spec, after, ctx):
                batch_no += 1
                batch_counts = counts.pending()  # becomes ``counts`` only once the batch is committed
                with self.target.begin() as conn:
                    ex = examined(conn)
                    plan = self._decide(conn, spec, ex, batch_counts)
                    last_key = ex.last_key
                    if plan.stop:
                        raise _StoppedAtConflict([c for c in plan.conflicts if c["resolution"] == "STOPPED"])
                    self._write(conn, run_id, batch_no, spec, plan, batch_counts, ex)
                    self._checkpoint(conn, run_id, spec, last_key, batch_no, batch_counts, done=False)
                    lock.heartbeat(conn)
                counts.settle(batch_counts)
                progress.update(ex.read)
                self.batches_committed += 1
                if self.pool is not None and not spec.unique_key:
                    self._recent_links.append({m.legacy_key for m in plan.inserts})
                if self.stop_after_batches is not None and self.batches_committed >= self.stop_after_batches:
                    raise _Interrupted()
            with self.target.begin() as conn:
                vanished = self._vanished(conn, spec, run_id)
                bulk_insert(conn, schema.mig_conflict, [dict(c, run_id=run_id) for c in vanished])
                counts.deleted_in_opus += len(vanished)
                self._checkpoint(conn, run_id, spec, None, batch_no, counts, done=True)

    def _examined(self, spec: Entity, after: list | None, ctx: MappingContext):
        """(batch, examine(conn) -> _Examined) in key order: examined here, inside the batch's
        transaction, or by the worker processes (key ranges, see ``_worker_examine``)."""
        fresh = spec.unique_key and self._fresh(spec)
        if self.pool is None:
            for batch in self._batches(spec, after):
                yield batch, (lambda conn, batch=batch: _unlooked(self._examine_here(conn, spec, batch, ctx), fresh))
            return
        table = self.tables[spec.legacy_table]
        depends = {e: self.accepted.key_set(e) for e in {"crime_person": ("person", "crime"),
                                                          "intelligence": ("person",)}.get(spec.name, ())}
        self._recent_links = deque(maxlen=2 * self.pool.workers + 2)  # the in-order window, and one

        previous = self.previous_run

        def units():
            n = 0
            for start, upto in _key_ranges(self.legacy, table, spec, self.batch_size, after):
                n += 1
                self._every_batch(n)
                yield spec.name, start, upto, depends, previous, fresh
        accepted = self.accepted
        name = spec.name
        recent = self._recent_links
        for ex in self.pool.in_order(_worker_examine, units()):
            def examined(conn, ex=ex):
                # What only this process knows (the worker prepared the batch without it): a key
                # the run accepted already (first key wins) — of a record unchanged by its digest,
                # or of one mapped whose legacy row the worker did not send back — or a link a
                # batch in flight inserted (its target rows were not sent back either). Then the
                # batch is examined again here.
                if spec.unique_key:
                    again = ((ex.accepted is not None and accepted.any_of(name, ex.accepted))
                             or not accepted.key_set(name).isdisjoint(ex.rawless))
                else:
                    again = bool(recent) and any(not m.rows and m.accepted and any(m.legacy_key in r for r in recent)
                                                 for m in ex.mapped)
                if again:
                    batch = _read_range(self.legacy, table, spec, ex.after, ex.upto)
                    local = _unlooked(self._examine_here(conn, spec, batch, ctx), fresh)
                    local.last_key = local.last_key or ex.last_key
                    return local
                return ex
            yield None, examined
        self.collect_garbage()

    def _fresh(self, spec: Entity) -> bool:
        """Whether mig_xref holds no record of the entity: a first run of it (or a run resumed
        before it). Every mig_xref row of it is then one this run inserts, for a key this run
        accepted — so a record of a keyed entity whose key the run has not accepted needs no
        mig_xref lookup by key (``_unlooked``), whatever the engine's key order."""
        x = schema.mig_xref
        with self.target.connect() as conn:
            return conn.execute(sa.select(sa.literal(1)).select_from(x).where(x.c.entity == spec.name)
                                .limit(1)).first() is None

    def _write(self, conn, run_id: int, batch_no: int, spec: Entity, plan: "_Plan", counts: EntityCounts,
               ex: "_Examined | None" = None) -> None:
        ledger: list[dict] = []
        warnings: list[dict] = []
        xref_new: list[tuple] = []
        name = spec.name

        # Inserts, parents first (a location before the crime that points at it). No ledger
        # row: mig_xref names the record (first_run) and its rows' ids are deterministic. Rows
        # a worker bound already (``_prepare_inserts``) go to the driver as they came.
        prepared = ex.prepared if ex is not None else {}
        inserted: set[int] = set()
        if prepared:
            position = {id(m): j for j, m in enumerate(ex.mapped)}
            inserted = {position.get(id(m)) for m in plan.inserts}
        for table_name in schema.TARGET_TABLES:
            table = schema.target_metadata.tables[table_name]
            if table_name in prepared:
                order, params, owners = prepared[table_name]
                if not inserted.issuperset(owners):  # e.g. a duplicate key, rejected here
                    params = [values for values, j in zip(params, owners) if j in inserted]
                insert_bound(conn, table, order, params)
                counts.rows_written += len(params)
            rows = [m.rows[table_name] for m in plan.inserts if table_name in m.rows]
            if rows:
                bulk_insert(conn, table, rows)
                counts.rows_written += len(rows)
        counts.written += len(plan.inserts)
        self._inserted_here += len(plan.inserts)
        # mig_xref rows as the driver takes them (text, bytes, integers: no bind processing).
        sources, images = plan.sources, plan.images
        for m in plan.inserts:
            key = m.legacy_key
            xref_new.append((name, key, sources[key], images.get(id(m)) or written_image(m.rows, schema.TARGET_TABLES),
                             run_id, run_id))

        # Updates (and --on-conflict take-opus): keep the before-image of every row changed,
        # and the xref row replaced, then overwrite.
        xref_before = []
        xref_changed = []
        # Per table: rows an update adds, and rows it overwrites grouped by their columns — one
        # executemany each (a statement per row cost ~0.5 ms of SQLAlchemy compiling).
        added: dict[str, list[dict]] = {}
        overwritten: dict[tuple[str, tuple[str, ...]], list[dict]] = {}
        for u in plan.updates:
            m = u.mapped
            for table_name in schema.TARGET_TABLES:
                row = m.rows.get(table_name)
                if row is None:
                    continue
                before = u.current.get(table_name)
                if before is not None and row_fingerprint(before)[0] == row_fingerprint(row)[0]:
                    continue  # this row of the record did not change (e.g. its location)
                if before is not None:
                    ledger.append(_ledger_row(run_id, batch_no, table_name, row, m.legacy_key, "update", before))
                    overwritten.setdefault((table_name, tuple(row)), []).append(row)
                else:  # e.g. an intelligence entry that gained coordinates gains a location row
                    added.setdefault(table_name, []).append(row)
                    ledger.append(_ledger_row(run_id, batch_no, table_name, row, m.legacy_key, "insert", None))
                counts.rows_written += 1
            xref_before.append(_xref_before(run_id, name, m.legacy_key, u.xref))
            xref_changed.append({"b_key": m.legacy_key, "source": u.source,
                                 "written": plan.images.get(id(m)) or written_image(m.rows, schema.TARGET_TABLES),
                                 "last_run": run_id})
        for table_name in schema.TARGET_TABLES:  # parents first, as the inserts above
            if table_name in added:
                conn.execute(schema.target_metadata.tables[table_name].insert(), added[table_name])
            for (name_of, columns), rows in overwritten.items():
                if name_of == table_name:
                    _update_rows(conn, table_name, columns, rows)
        # A new source digest for a record that maps as before: bookkeeping only, but kept for
        # rollback like any other xref change, so a rollback restores mig_xref exactly.
        xref_refreshed = []
        refresh = plan.refresh
        if refresh and not spec.unique_key:
            # Legacy links that normalise to one key, in different batches: the first refreshed it.
            xb = schema.mig_xref_before
            done = set(conn.execute(sa.select(xb.c.legacy_key).where(
                xb.c.run_id == run_id, xb.c.entity == name,
                xb.c.legacy_key.in_([key for key, _, _ in refresh]))).scalars())
            refresh = [r for r in refresh if r[0] not in done]
        for key, source, x in refresh:
            xref_before.append(_xref_before(run_id, name, key, x))
            xref_refreshed.append({"b_key": key, "source": source})
        for m in plan.inserts + [u.mapped for u in plan.updates]:
            warnings += [{"run_id": run_id, "entity": name, "legacy_key": m.legacy_key, "reason": w.code,
                          "field": w.field, "value": _clip(w.value)} for w in m.warnings]

        bulk_insert(conn, schema.mig_ledger, ledger)
        insert_bound(conn, schema.mig_xref, _XREF_ORDER, xref_new)
        bulk_insert(conn, schema.mig_xref_before, xref_before)
        x = schema.mig_xref
        where = (x.c.entity == name, x.c.legacy_key == sa.bindparam("b_key"))
        if xref_changed:
            conn.execute(x.update().where(*where).values(source=sa.bindparam("source"),
                                                         written=sa.bindparam("written"),
                                                         last_run=sa.bindparam("last_run")), xref_changed)
        if xref_refreshed:
            conn.execute(x.update().where(*where).values(source=sa.bindparam("source")), xref_refreshed)
        bulk_insert(conn, schema.mig_warning, warnings)
        bulk_insert(conn, schema.mig_reject, [_reject_row(run_id, spec, m, raw, source)
                                              for m, raw, source in plan.rejects])
        if plan.carried:
            _carry_rejects(conn, run_id, plan.carried)
        bulk_insert(conn, schema.mig_conflict, [dict(c, run_id=run_id) for c in plan.conflicts])

    def _checkpoint(self, conn, run_id: int, spec: Entity, last_key: list | None, batches: int,
                    counts: EntityCounts, done: bool) -> None:
        cp = schema.mig_checkpoint
        values = {"batches": batches, "done": done, "counts": json.dumps(counts.to_json())}
        if last_key is not None:
            values["last_key"] = json.dumps(last_key)
        updated = conn.execute(cp.update().where(cp.c.run_id == run_id, cp.c.entity == spec.name).values(**values))
        if updated.rowcount == 0:
            conn.execute(cp.insert().values(run_id=run_id, entity=spec.name, **values))
        # The run's counts as they stand once this transaction commits: the entity's being
        # those of this batch (``counts``), not yet the live ones.
        run_counts = {k: (counts if k == spec.name else v).to_json() for k, v in self.counts.items()}
        run = schema.mig_run
        conn.execute(run.update().where(run.c.run_id == run_id).values(
            heartbeat_at=utc_now(), counts=json.dumps(run_counts)))


@dataclass
class _Xref:
    source: bytes
    written: bytes
    first_run: int
    last_run: int


@dataclass
class _Update:
    mapped: Mapped
    source: bytes
    xref: _Xref  # what it replaces
    current: dict[str, dict]  # the record's target rows now: table -> row


@dataclass
class _Plan:
    inserts: list[Mapped] = field(default_factory=list)
    updates: list[_Update] = field(default_factory=list)
    refresh: list[tuple[str, bytes, _Xref]] = field(default_factory=list)  # (key, new source, xref)
    rejects: list[tuple[Mapped, dict, bytes]] = field(default_factory=list)  # with the raw legacy row, source digest
    carried: list[int] = field(default_factory=list)  # reject_ids of the previous run's rejects that hold again
    conflicts: list[dict] = field(default_factory=list)  # mig_conflict rows, without run_id
    sources: dict[str, bytes] = field(default_factory=dict)  # legacy key -> source digest (inserts)
    images: dict[int, bytes | None] = field(default_factory=dict)  # id(Mapped) -> its written image
    stop: bool = False


@dataclass
class _Examined:
    """A batch examined (``_examine``), in this process or a worker: what the writer decides from.
    An unchanged record costs the writer nothing per record: its count and its key in ``accepted``
    (a link: 4 bytes of ``key_hashes``) are all that crosses the process boundary for it."""
    read: int  # records read
    unchanged: int  # of those, unchanged by their source digest: not mapped, decided "unchanged"
    accepted: KeySet | None  # keyed entities: the unchanged records' keys, encoded (they stay accepted)
    key_hashes: bytes  # links: per record read, ``_key_crc`` of its key (an ``array('I')``'s bytes)
    to_map: list[int]  # the records mapped (source digest not the one mig_xref holds, or a duplicate key)
    sources: list[bytes]  # per mapped record: its source digest
    repeated: list[bool]  # per mapped record: an unchanged record of the same key precedes it in the batch
    mapped: list[Mapped]
    raws: list[dict]  # the legacy rows of those, as dicts (a reject keeps its row)
    lookup: list[bool]  # per mapped record: whether its mig_xref row must be looked up by key
    last_key: list  # the checkpoint after this batch
    # per mapped record: what mig_xref says the tool wrote, should it be written (core.digest.written_image)
    images: list[bytes | None] = field(default_factory=list)
    # rejects of the previous run with this run's source digest, not mapped again: (reject_id, reason)
    carried: list[tuple[int, str]] = field(default_factory=list)
    after: list | None = None  # the key range examined (workers): (after, upto]
    upto: list | None = None
    # Rows a worker bound for the writer (``_prepare_inserts``): table -> (column order, bound
    # tuples, index in ``mapped`` of the record each belongs to); those records' ``rows`` are empty.
    prepared: dict[str, tuple[tuple[str, ...], list[tuple], list[int]]] = field(default_factory=dict)
    # The keys (as the entity's key set holds them) of the accepted records whose legacy row is
    # not in ``raws`` (a keyed entity's, ``_prepare_inserts``): should the run have accepted one
    # of them already, the writer must reject it DUPLICATE_KEY with its row.
    rawless: KeySet = field(default_factory=KeySet)


def _examine(spec: Entity, batch: RowBatch, conn, salt: bytes, accepted: AcceptedKeys, ctx: MappingContext,
             here_accepted: bool, previous_run: int | None = None) -> _Examined:
    """The per-record work of a batch that needs no decision of the run so far: key, source digest,
    the batch's key ranges of mig_xref (key and source only), and the mapping of the records
    whose source digest is not the one mig_xref holds — the raw tuple is digested, and no dict
    is made of a record found unchanged. A record whose source digest is that of a reject of
    ``previous_run`` (the verdict depends on nothing else: ``_carried_rejects``) is not mapped either.
    ``here_accepted``: ``accepted`` is the run's own (this process decides): a record unchanged
    by its digest whose key the run accepted already (first key wins) is mapped, to be rejected.
    A worker cannot know; the writer re-examines the batch itself when it finds one
    (``_Runner._examined``)."""
    names, rows = batch
    keys, sources = _keys_and_sources(spec, names, rows, salt, accepted)
    known, covered = _xref_sources(conn, spec.name, keys) if conn is not None else ({}, lambda key: True)
    keyed = spec.unique_key
    name = spec.name
    unchanged_at: list[int] = []
    to_map: list[int] = []
    if keyed:
        here: set[str] = set()  # keys of this batch so far: first key wins
        for i, key in enumerate(keys):
            if key in here or known.get(key) != sources[i]:
                to_map.append(i)
            else:
                unchanged_at.append(i)
            here.add(key)
    else:
        for i, key in enumerate(keys):
            (unchanged_at if known.get(key) == sources[i] else to_map).append(i)
    unchanged_keys = accepted.encoded(name, [keys[i] for i in unchanged_at]) if keyed else None
    if keyed and here_accepted and accepted.any_of(name, unchanged_keys):
        taken = [i for i in unchanged_at if accepted.has(name, keys[i])]
        to_map = sorted(to_map + taken)
        taken_set = set(taken)
        unchanged_at = [i for i in unchanged_at if i not in taken_set]
        unchanged_keys = accepted.encoded(name, [keys[i] for i in unchanged_at])
    carried: list[tuple[int, str]] = []
    if previous_run is not None and to_map and conn is not None:
        found = _carried_rejects(conn, name, previous_run, {keys[i] for i in to_map})
        if found:
            still = []
            for i in to_map:
                hit = found.get((keys[i], sources[i]))
                if hit is None:
                    still.append(i)
                else:
                    carried.append(hit)
            to_map = still
    raws = [dict(zip(names, rows[i])) for i in to_map]
    mapped = spec.map_batch(raws, ctx) if raws else []
    lookup = [m.reject is None and (m.legacy_key in known or not covered(m.legacy_key)) for m in mapped]
    if keyed or not unchanged_at:
        repeated = [False] * len(to_map)
    else:  # links: one that normalises to the key of an unchanged link before it is migrated once
        before: dict[str, int] = {}
        for i in unchanged_at:
            before.setdefault(keys[i], i)
        repeated = [before.get(m.legacy_key, len(keys)) < i for i, m in zip(to_map, mapped)]
    last_key = [checkpoint_key(rows[-1][names.index(k)]) for k in spec.key_columns] if rows else None
    # The written image here too: ~6 µs a target row that, with workers, the writer does not spend.
    images = [written_image(m.rows, schema.TARGET_TABLES) if m.reject is None and not m.excluded else None
              for m in mapped]
    hashes = b"" if keyed else array("I", [_key_crc(k) for k in keys]).tobytes()
    return _Examined(len(keys), len(unchanged_at), unchanged_keys, hashes, to_map,
                     [sources[i] for i in to_map], repeated, mapped, raws, lookup, last_key, images, carried)


def _key_crc(key: str) -> int:
    """A 32-bit hash of a legacy key that is the same in every process (``hash()`` of a str is not)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass"))


def _carried_rejects(conn, entity: str, run_id: int, keys: set[str]) -> dict[tuple[str, bytes], tuple[int, str]]:
    """{(legacy key, source digest): (reject_id, reason)} of run ``run_id``'s rejects of these keys.

    A reject's verdict is a function of its source digest alone — the raw row, the code tables and
    tool version, and the accepted state of what its mapping asks about (a link's crime and
    person) — except ``DUPLICATE_KEY``, which depends on another record and is stored without
    one. So a record whose digest is a reject's of the last run is that reject again, unmapped."""
    usable = [k for k in keys if _usable(k)]
    r = schema.mig_reject
    out = {}
    for start in range(0, len(usable), PAGE):
        rows = conn.execute(sa.select(r.c.legacy_key, r.c.source, r.c.reject_id, r.c.reason)
                            .where(r.c.run_id == run_id, r.c.entity == entity, r.c.source.is_not(None),
                                   r.c.legacy_key.in_(usable[start:start + PAGE])))
        for key, source, reject_id, reason in rows:
            out[(key, bytes(source))] = (reject_id, reason)
    return out


# ------------------------------------------------------------------------------ worker processes
#
# With ``workers`` > 1 a batch is a key range (after, upto] of the legacy table: an independent
# unit of work. A worker opens the legacy store and the target (read-only) by URL, reads its
# range, digests and maps what changed (``_examine``), and returns it; the one writer decides
# and commits the batches in key order (``core.pool.Pool.in_order``). Nothing is shared but what
# the task carries: the URLs, the code tables and run start (once per worker), the accepted
# keys of the entities a link or subject depends on (with each task).

_WORKER: dict = {}


def _worker_setup(legacy_url: str, target_url: str, reference: Reference, salt: bytes, started: dt.datetime) -> None:
    legacy = open_legacy(legacy_url)
    _WORKER.update(legacy=legacy, tables=schema.legacy_tables(legacy), target=open_target(target_url, read_only=True),
                   reference=reference, salt=salt, started=started)


def _worker_examine(unit: tuple) -> _Examined:
    entity, after, upto, depends, previous_run, fresh = unit
    spec = next(e for e in ENTITIES if e.name == entity)
    accepted = AcceptedKeys()
    for name, keys in depends.items():
        accepted.install(name, keys)
    ctx = MappingContext(reference=_WORKER["reference"], run_started=_WORKER["started"],
                         person_migrated=accepted.has_person, crime_migrated=accepted.has_crime)
    batch = _read_range(_WORKER["legacy"], _WORKER["tables"][spec.legacy_table], spec, after, upto)
    target = _WORKER["target"]
    with store_errors(target, "target"), target.connect() as conn:
        ex = _unlooked(_examine(spec, batch, conn, _WORKER["salt"], accepted, ctx, False, previous_run), fresh)
    ex.after, ex.upto = after, upto
    if ex.last_key is None and upto is not None:
        ex.last_key = [checkpoint_key(v) for v in upto]
    _prepare_inserts(ex, target.dialect, spec)
    return ex


def _key_ranges(legacy: Engine, table: sa.Table, spec: Entity, size: int, after: list | None):
    """The legacy table cut into key ranges (after, upto] of ``size`` records, the last one
    (after, None]: one query per range that lets the store skip ``size`` keys of its index
    (OFFSET), instead of every key read into this process to find where a range ends."""
    names = list(spec.key_columns)
    with store_errors(legacy, "legacy"), legacy.connect() as conn:
        while True:
            stmt = select_in_key_order(table, names, legacy.dialect, after=after, columns=names)
            ends = read_range(conn, stmt.offset(size - 1).limit(1))
            if not ends:
                if read_range(conn, stmt.limit(1)):
                    yield after, None
                return
            upto = [ends[0][name] for name in names]
            yield after, upto
            after = upto


def _unlooked(ex: _Examined, fresh: bool) -> _Examined:
    """A keyed entity with no mig_xref row when the run started it (``_Runner._fresh``): no
    mapped record needs its mig_xref row looked up by key. A record whose key the run accepted
    is rejected DUPLICATE_KEY (first key wins) before mig_xref is asked; any other key was not
    written by this run, nor, the entity being fresh, by any other."""
    if fresh:
        ex.lookup = [False] * len(ex.mapped)
    return ex


def _prepare_inserts(ex: _Examined, dialect, spec: Entity) -> None:
    """In a worker: the target rows of every record the writer will insert unless it decides
    otherwise (accepted, and no mig_xref row to look up) bound for the target's driver
    (``core.db.bind_rows``), in place of the records' row dicts; the legacy row kept only
    for a reject and, for a keyed entity, a key repeated in the batch (the writer may reject
    it DUPLICATE_KEY). What crosses to the writer is then plain tuples, and the writer only
    executes them: unpickling dicts and binding them cost it more than the inserts."""
    mapped = ex.mapped
    new = [j for j, m in enumerate(mapped) if m.reject is None and not m.excluded and not ex.lookup[j]]
    if not new:
        return
    for table_name in schema.TARGET_TABLES:
        owners = [j for j in new if table_name in mapped[j].rows]
        if owners:
            order, params = bind_rows(dialect, schema.target_metadata.tables[table_name],
                                      [mapped[j].rows[table_name] for j in owners])
            ex.prepared[table_name] = (order, params, owners)
    for j in new:
        mapped[j].rows = {}
    repeated: set[str] = set()
    if spec.unique_key:
        seen: set[str] = set()
        for m in mapped:
            (repeated if m.legacy_key in seen else seen).add(m.legacy_key)
    ex.raws = [raw if m.reject is not None or m.legacy_key in repeated else None
               for m, raw in zip(mapped, ex.raws)]
    if spec.unique_key:
        encode = spec.encode_key
        ex.rawless = KeySet(encode(m.legacy_key) for m, raw in zip(mapped, ex.raws) if raw is None and m.accepted)


def _read_range(legacy: Engine, table: sa.Table, spec: Entity, after: list | None, upto: list | None) -> RowBatch:
    """The legacy rows of the key range (after, upto] (upto None: to the end), as one batch."""
    names: list[str] = [c.name for c in table.columns]
    rows: list[tuple] = []
    for batch in legacy_row_batches(legacy, table, spec.key_columns, MAX_BATCH_SIZE, after=after, upto=upto):
        names = batch.names
        rows += batch.rows
    return RowBatch(names, rows)


def _keys_and_sources(spec: Entity, names: list[str], rows: list[tuple], salt: bytes,
                      accepted: AcceptedKeys) -> tuple[list[str], list[bytes]]:
    """Per row: its key (``_key_reader``) and its source digest (``_source_reader``). A crime's
    and a person's digest is a function of the row alone: one comprehension over the batch, no
    call per row."""
    key_of = _key_reader(spec, names)
    if spec.name == "crime":
        at = names.index(spec.key_column)
        keys = [v.strip() if type(v) is str else trim(v) or "" for v in (row[at] for row in rows)]
    else:
        keys = [key_of(row) for row in rows]
    if spec.name in ("crime", "person"):
        blake2b, dumps = hashlib.blake2b, marshal.dumps
        try:
            return keys, [blake2b(dumps(row, 2), key=salt, digest_size=16).digest() for row in rows]
        except ValueError:  # a value marshal cannot take: row by row, as _source_reader does
            pass
    source_of = _source_reader(spec, names, salt, accepted)
    return keys, [source_of(row) for row in rows]


def _source_reader(spec: Entity, names: list[str], salt: bytes, accepted: AcceptedKeys) -> Callable[[tuple], bytes]:
    """The source digest of a raw legacy tuple: the row as read, what it was mapped with
    (``salt``: the run's tool version and code tables, the blake2b key) and the accepted state of the records its mapping asks
    about (a link's crime and person, a subject). One blake2b over ``marshal`` version 2
    (no back-references, so the bytes depend on the values alone; type-faithful for
    None/int/float/str/bytes — ``repr`` for the rare value marshal cannot take, e.g. a
    server's Decimal or date): ~1.6 µs a crime row against ~3.7 µs for its ``repr``."""
    blake2b = hashlib.blake2b
    dumps = marshal.dumps

    def encoded(row: tuple) -> bytes:
        try:
            return dumps(row, 2)
        except ValueError:
            return b"r" + repr(row).encode("utf-8", "surrogatepass")

    if spec.name == "crime_person":
        crime_at, nom_at = names.index("crime_no"), names.index("nom_id")
        has_crime, has_person = accepted.has_crime, accepted.has_person
        last = [None, False]  # links come in crime order: the last crime asked about, and the answer

        def source(row: tuple) -> bytes:
            nom_id = parse_nom_id(row[nom_at])
            crime = row[crime_at]
            if crime != last[0] or type(crime) is not type(last[0]):
                last[0], last[1] = crime, has_crime(trim(crime) or "")
            return blake2b(encoded(row) + b"%d%d" % (last[1], nom_id is not None and has_person(nom_id)),
                           key=salt, digest_size=16).digest()
        return source
    if spec.name == "intelligence":
        subject_at = names.index("subj_nom_id")
        has_person = accepted.has_person

        def source(row: tuple) -> bytes:
            nom_id = parse_nom_id(row[subject_at])
            return blake2b(encoded(row) + b"%d" % (nom_id is not None and has_person(nom_id)),
                           key=salt, digest_size=16).digest()
        return source

    def source(row: tuple) -> bytes:
        return blake2b(encoded(row), key=salt, digest_size=16).digest()
    return source


# ------------------------------------------------------------------------------ helpers

#: The columns of a new mig_xref row, in the order ``_Runner._write`` makes them.
_XREF_ORDER = ("entity", "legacy_key", "source", "written", "first_run", "last_run")



def _os_user() -> str:
    try:
        return getpass.getuser()[:120]
    except Exception:  # no user name in this environment (containers): not worth failing a run
        return "unknown"


def _key_reader(spec: Entity, names: list[str]) -> Callable[[tuple], str]:
    """The record's trimmed legacy key as its mapping gives it (``Mapped.legacy_key``), from the
    raw tuple, without mapping it. Only used to find its mig_xref row: a record whose key comes
    out otherwise (undecodable bytes) simply has no row found, and is mapped."""
    if spec.name == "person":
        at = names.index("nom_id")
        return lambda row: person_key(row[at])[1]
    if spec.name == "crime_person":
        crime_at, nom_at, role_at = names.index("crime_no"), names.index("nom_id"), names.index("role")

        def link(row: tuple) -> str:
            nom_id = parse_nom_id(row[nom_at])
            role_code = code(row[role_at])
            return link_key(trim(row[crime_at]) or "",
                            str(nom_id) if nom_id is not None else trim(row[nom_at]) or "",
                            ROLES.get(role_code) or role_code or "")
        return link
    at = names.index(spec.key_column)
    return lambda row: trim(row[at]) or ""


def _xref_sources(conn, entity: str, keys: list[str]) -> tuple[dict[str, bytes], Callable[[str], bool]]:
    """The source digests mig_xref holds for the batch's keys: ({legacy key: source},
    ``covered(key)`` — whether a key absent from the answer is certainly not in mig_xref).

    One range read in the index's order (mig_xref's primary key is (entity, legacy_key)) per
    ascending run of the batch's keys, instead of an IN list: consecutive batches read consecutive
    stretches of the index. The range is the run's least and greatest key in Python's order — code
    point order, which is SQLite's BINARY order for UTF-8 text; so on SQLite a key between them that
    is not in the answer is not in mig_xref. A server may order keys otherwise (its collation), and
    an answer grown past ``_RANGE_SLACK`` times the batch is cut off (a collation, or keys spread
    over the whole index, as padded references that sort first): there the keys not found are
    looked up by value, key and source only, so every key of the batch is decided here."""
    # A longer key was never written (the column holds 40), nor one with undecodable bytes
    # (escaped as surrogates: rejected INVALID_ENCODING), which no driver can bind as text.
    if keys and max(map(len, keys)) <= 40 and "".join(keys).isascii():
        usable = keys  # the usual batch, told in two C calls
    else:
        usable = [k for k in keys if _usable(k)]
    probed = set(usable)

    def covered(key: str) -> bool:
        return key in probed or not _usable(key)
    if not usable:
        return {}, covered
    ranges = _ascending_runs(usable)
    x = schema.mig_xref
    found: dict[str, bytes] = {}
    cut = False
    for lo, hi, n in ranges:
        limit = _RANGE_SLACK * n + 100
        rows = conn.execute(sa.select(x.c.legacy_key, x.c.source)
                            .where(x.c.entity == entity, x.c.legacy_key >= lo, x.c.legacy_key <= hi)
                            .order_by(x.c.legacy_key).limit(limit)).all()
        found.update((key, bytes(source)) for key, source in rows)
        cut = cut or len(rows) >= limit
    if conn.dialect.name != "sqlite" or cut:
        missing = [k for k in probed if k not in found]
        for start in range(0, len(missing), PAGE):
            rows = conn.execute(sa.select(x.c.legacy_key, x.c.source).where(
                x.c.entity == entity, x.c.legacy_key.in_(missing[start:start + PAGE])))
            found.update((key, bytes(source)) for key, source in rows)
    if len(found) > len(probed):  # what a range read holds beyond the batch's keys is of no use
        found = {k: v for k, v in found.items() if k in probed}
    return found, covered


def _usable(key: str) -> bool:
    return len(key) <= 40 and (key.isascii() or _utf8(key))


def _utf8(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ascending_runs(keys: list[str], most: int = 4) -> list[tuple[str, str, int]]:
    """The batch's keys (in legacy order) as (least, greatest, count) of each ascending run, when
    there are at most ``most`` runs — NOM_IDs read in number order are two runs as text where
    "99999" is followed by "100000"; else one range over all (e.g. links, whose keys are ordered
    by crime first: a range from the least to the greatest holds only the batch's crimes)."""
    runs = []
    start = 0
    for i in range(1, len(keys)):
        if keys[i] < keys[i - 1]:
            runs.append((start, i))
            start = i
            if len(runs) >= most:
                return [(min(keys), max(keys), len(keys))]
    runs.append((start, len(keys)))
    return [(min(keys[a:b]), max(keys[a:b]), b - a) for a, b in runs]


#: How many mig_xref rows per batch key a range read may return before it is cut off (see ``_xref_sources``).
_RANGE_SLACK = 4


def _xref_in(conn, entity: str, keys: set[str]) -> dict[str, "_Xref"]:
    keys = [k for k in keys if len(k) <= 40]  # a longer key was never written (the column holds 40)
    if not keys:
        return {}
    x = schema.mig_xref
    out = {}
    for start in range(0, len(keys), PAGE):
        rows = conn.execute(sa.select(x.c.legacy_key, x.c.source, x.c.written, x.c.first_run, x.c.last_run)
                            .where(x.c.entity == entity, x.c.legacy_key.in_(keys[start:start + PAGE])))
        for r in rows:
            out[r.legacy_key] = _Xref(bytes(r.source), bytes(r.written), r.first_run, r.last_run)
    return out


def _current_records(conn, mapped: list[Mapped]) -> dict[str, dict[str, dict]]:
    """The target rows of these records now: {legacy key: {table: row}}."""
    wanted: dict[str, dict[str, str]] = {}  # table -> row key -> legacy key
    for m in mapped:
        for table_name, key in records.target_keys(m.entity, m.legacy_key).items():
            wanted.setdefault(table_name, {})[key] = m.legacy_key
    out: dict[str, dict[str, dict]] = {m.legacy_key: {} for m in mapped}
    for table_name, keys in wanted.items():
        for key, row in _rows_by_key(conn, table_name, list(keys)).items():
            out[keys[key]][table_name] = row
    return out


def _rows_by_key(conn, table_name: str, keys: list[str]) -> dict[str, dict]:
    table = schema.target_metadata.tables[table_name]
    names = schema.TARGET_KEYS[table_name]
    out = {}
    for start in range(0, len(keys), PAGE):
        page = keys[start:start + PAGE]
        if len(names) == 1:
            where = table.c[names[0]].in_(page)
        else:  # composite (links): the leading column, which the primary key indexes; filtered below
            where = table.c[names[0]].in_(sorted({k.split("|", 1)[0] for k in page}))
        wanted = set(page)
        for r in conn.execute(sa.select(table).where(where)).mappings():
            key = _row_key(table_name, r)
            if key in wanted:
                out[key] = dict(r)
    return out


def _keep_run_start(row: dict, now: dict | None, started: dt.datetime | None) -> dict:
    """The mapped row, compared as the tool wrote it: a timestamp the mapping fell back to the
    run's start for (a person without LAST_UPD) is not a change, so the stored one is kept."""
    if now is None or started is None:
        return row
    stale = [c for c in ("created_at", "updated_at") if row.get(c) == started]
    if not stale:
        return row
    return {**row, **{c: now.get(c) for c in stale}}


def _qualified(spec: Entity, table_name: str, column: str) -> str:
    return column if table_name == records.MAIN_TABLE[spec.name] else f"{table_name}.{column}"


def _fields_between(spec: Entity, table_name: str, prints: bytes, other: bytes) -> list[str]:
    """The columns whose fingerprint bytes differ (target column names; ``location.x`` for a
    record's location)."""
    return [_qualified(spec, table_name, name) for name, a, b in zip(records.COLUMNS[table_name], prints, other)
            if a != b]


def _conflict_row(entity: str, legacy_key: str, kind: str, opus_fields, iops_fields, resolution: str) -> dict:
    """A mig_conflict row (without its run_id): field names only, never values."""
    return {"entity": entity, "legacy_key": legacy_key, "target_table": records.MAIN_TABLE[entity],
            "target_id": records.main_key(entity, legacy_key), "kind": kind,
            "opus_fields": ";".join(opus_fields) if opus_fields else None,
            "iops_fields": ";".join(iops_fields) if iops_fields else None, "resolution": resolution}


def _xref_before(run_id: int, entity: str, legacy_key: str, x: "_Xref") -> dict:
    return {"run_id": run_id, "entity": entity, "legacy_key": legacy_key, "source": x.source, "written": x.written,
            "last_run": x.last_run}


def _row_key(table_name: str, row) -> str:
    return "|".join(str(row[c]) for c in schema.TARGET_KEYS[table_name])


def _update_rows(conn, table_name: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    """Overwrite ``rows`` (each with ``columns``) of ``table_name`` by primary key: one executemany."""
    table = schema.target_metadata.tables[table_name]
    keys = schema.TARGET_KEYS[table_name]
    statement = table.update().where(*[table.c[k] == sa.bindparam(f"k_{k}", type_=table.c[k].type) for k in keys]).values(
        {c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
    conn.execute(statement, [{**{f"v_{c}": row[c] for c in columns}, **{f"k_{k}": row[k] for k in keys}}
                             for row in rows])


def _ledger_row(run_id, batch_no, table_name, row, legacy_key, action, before) -> dict:
    return {
        "run_id": run_id, "batch_no": batch_no, "table_name": table_name, "row_key": _row_key(table_name, row),
        "legacy_key": legacy_key, "action": action, "digest": short_digest(row),
        "before_image": json.dumps(canonical_row(before), ensure_ascii=False) if before is not None else None,
    }


def _clip(value: str | None, limit: int = 2000) -> str | None:
    """A legacy value as our bookkeeping stores it: bounded, and with NUL shown as ``\\x00``
    (PostgreSQL text cannot hold NUL, and the reject must not fail on the very fault it reports)."""
    return None if value is None else str(value)[:limit].replace("\x00", "\\x00")


def _reject_row(run_id: int, spec: Entity, m: Mapped, raw: dict, source: bytes | None) -> dict:
    # DUPLICATE_KEY depends on another record, not on this one's source: never carried (_carried_rejects).
    return {"run_id": run_id, "entity": spec.name, "legacy_key": m.legacy_key[:40], "reason": m.reject.code,
            "field": m.reject.field, "value": _clip(m.reject.value), "raw_row": _raw_json(raw),
            "source": None if m.reject.code == "DUPLICATE_KEY" else source}


def _carry_rejects(conn, run_id: int, reject_ids: list[int]) -> None:
    """The previous run's reject rows ``reject_ids`` again, as this run's: copied inside the target
    (the raw row is not read out nor rebuilt)."""
    r = schema.mig_reject
    copied = [r.c.entity, r.c.legacy_key, r.c.reason, r.c.field, r.c.value, r.c.raw_row, r.c.source]
    for start in range(0, len(reject_ids), PAGE):
        conn.execute(r.insert().from_select(
            ["run_id"] + [c.name for c in copied],
            sa.select(sa.literal(run_id, sa.Integer), *copied).where(
                r.c.reject_id.in_(reject_ids[start:start + PAGE])).order_by(r.c.reject_id)))


def _raw_json(raw: dict) -> str:
    """The legacy row as JSON, with intelligence text replaced by its fingerprint (and bytes
    that are not UTF-8 escaped: ``mappings.storable.escaped``)."""
    safe = {k: (text_fingerprint(v) if k == "int_text" and v is not None else
                escaped(v) if isinstance(v, (str, bytes)) else v) for k, v in raw.items()}
    return json.dumps(safe, ensure_ascii=False, default=str)

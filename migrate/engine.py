"""The batch migration engine behind ``python main.py migrate``.

Per entity, in dependency order (persons, crimes + locations, links, intelligence +
locations), the legacy table is streamed in key order. Each batch is mapped by the pure
functions of ``mappings/``; then its target rows, ledger rows (digest of every row written,
before-image of every row updated), cross-references, rejects, warnings and the checkpoint
are written in ONE target transaction. A crash therefore loses at most the batch in flight,
and ``--resume RUN_ID`` continues after the last committed key.

Idempotency comes from ``mig_xref``: the digest of what the migration last wrote for each
legacy record. Same digest → unchanged (nothing written, even if an officer has edited the
row since); different → the legacy record changed, so the rows are updated and their
before-images kept for rollback.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import __version__, schema
from core.cyclic_gc import manual_cyclic_gc
from core.batches import legacy_batches
from core.db import (bulk_insert, checkpoint_key, mask_url, open_legacy, recorded_url, open_target, refuse_same_store,
                     store_errors)
from core.digest import canonical_row, record_digests, row_digest, text_fingerprint
from core.errors import ForeignSchemaError, RunNotFound, UsageError
from core.progress import bar
from core.schema import utc_now
from mappings.entities import ENTITIES, Entity, first_key_wins
from mappings.outcome import Mapped, MappingContext
from mappings.reference import Reference, load_reference
from mappings.storable import escaped
from migrate import lock
from migrate.accepted import AcceptedKeys

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
        if not self.balanced or self.too_many_rejects or self.total_conflicted or self.total_deleted_in_opus:
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
    workers: int = 1,
) -> MigrationResult:
    """Migrate the OPUS store at ``legacy_url`` into the iOPS store at ``target_url``.

    ``stop_after_batches`` exists for tests of interruption: the run stops (state
    ``interrupted``) after that many committed batches, as a crash would.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise UsageError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE:,} (default 2,000): one batch is "
                         "one transaction, held in memory whole")
    if on_conflict not in ON_CONFLICT:
        raise UsageError(f"--on-conflict must be one of {', '.join(ON_CONFLICT)}")
    if not 1 <= workers <= 32:
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
        with manual_cyclic_gc() as collect:
            runner = _Runner(legacy, target, legacy_tables, reference, batch_size, dry_run, stop_after_batches,
                             collect)
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


class _Runner:
    def __init__(self, legacy: Engine, target: Engine, legacy_tables: dict, reference: Reference,
                 batch_size: int, dry_run: bool, stop_after_batches: int | None,
                 collect_garbage: Callable[[], None] = lambda: None):
        self.collect_garbage = collect_garbage  # see core.cyclic_gc: automatic collection is off
        self.legacy = legacy
        self.target = target
        self.tables = legacy_tables
        self.reference = reference
        self.batch_size = batch_size
        self.dry_run = dry_run
        self.stop_after_batches = stop_after_batches
        self.batches_committed = 0
        self.accepted = AcceptedKeys()
        self.run_started: dt.datetime | None = None
        self.counts: dict[str, EntityCounts] = {}

    # --- public entry points ---------------------------------------------------------

    def run_dry(self, legacy_url: str, target_url: str, max_rejects: int | None) -> MigrationResult:
        started = utc_now()
        ctx = self._context(started)
        has_xref = self.target is not None and sa.inspect(self.target).has_table("mig_xref")
        counts = self.counts
        for spec in ENTITIES:
            counts[spec.name] = EntityCounts()
            with bar(f"{spec.name:<13} (dry run)", total=self._legacy_count(spec), unit="rec") as progress:
                for batch in self._batches(spec, after=None):
                    mapped = spec.map_batch(batch, ctx)
                    # As in a real run, a batch counts only once it has been classified whole.
                    batch_counts = counts[spec.name].pending()
                    self._count_dry(spec, batch, mapped, batch_counts, has_xref)
                    counts[spec.name].settle(batch_counts)
                    progress.update(len(batch))
        return MigrationResult(None, True, False, "dry_run", mask_url(legacy_url), mask_url(target_url),
                               started, utc_now(), counts, max_rejects)

    def run(self, legacy_url: str, target_url: str, resume: int | None, max_rejects: int | None) -> MigrationResult:
        with store_errors(self.target, "target"):
            run_id, started, checkpoints = self._start_or_resume(legacy_url, resume)
        ctx = self._context(started)
        counts = self.counts
        state = "complete"
        try:
            for spec in ENTITIES:
                cp = checkpoints.get(spec.name)
                counts[spec.name] = EntityCounts.from_json(cp["counts"] if cp else None)
                after = cp["last_key"] if cp else None
                if cp and after is not None:
                    # Resuming: the keys accepted before the checkpoint are needed by links and subjects.
                    self._rebuild_accepted(spec, ctx, upto=after)
                if cp and cp["done"]:
                    continue
                # Target errors only: legacy reads translate their own errors where they happen
                # (_batches, _legacy_count). An inner legacy handler here would name the legacy
                # store for a lost target connection.
                with store_errors(self.target, "target"):
                    self._migrate_entity(run_id, spec, ctx, counts[spec.name], after, cp)
        except _Interrupted:
            state = "interrupted"
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
        return MigrationResult(run_id, False, resume is not None, state, mask_url(legacy_url), mask_url(target_url),
                               started, utc_now(), counts, max_rejects)

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

    def _batches(self, spec: Entity, after: list | None, upto: list | None = None) -> Iterable[list]:
        """The legacy table in key order, ``batch_size`` rows at a time (``core.batches``), with
        a manual cyclic collection every ``_COLLECT_EVERY_BATCHES`` batches and at the end."""
        yield from legacy_batches(self.legacy, self.tables[spec.legacy_table], spec.key_columns, self.batch_size,
                                  after=after, upto=upto, every_batch=self._every_batch)
        self.collect_garbage()

    def _every_batch(self, n: int) -> None:
        if n % _COLLECT_EVERY_BATCHES == 0:
            self.collect_garbage()

    def _legacy_count(self, spec: Entity) -> int:
        table = self.tables[spec.legacy_table]
        with store_errors(self.legacy, "legacy"), self.legacy.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

    def _rebuild_accepted(self, spec: Entity, ctx: MappingContext, upto: list) -> None:
        """The keys the run accepted up to its checkpoint, as ``_plan`` accepted them."""
        if not spec.unique_key:
            return
        accepted = self.accepted
        for batch in self._batches(spec, after=None, upto=upto):
            for m in spec.map_batch(batch, ctx):
                first_key_wins(spec, m, accepted.has(spec.name, m.legacy_key))
                if m.accepted:
                    accepted.add(spec.name, m.legacy_key)

    # --- classifying ------------------------------------------------------------------

    def _count_dry(self, spec, batch, mapped: list[Mapped], counts: EntityCounts, has_xref: bool) -> None:
        """Dry run: count what a real run would do, reading the target but never writing it."""
        existing = {}
        if has_xref:
            with store_errors(self.target, "target"), self.target.connect() as conn:
                existing = self._xref_in(conn, spec, mapped)
        plan = self._plan(spec, batch, mapped, counts, existing)
        counts.written += len(plan.inserts)
        counts.updated += len(plan.updates)
        counts.rows_written += sum(len(m.rows) for m, _ in plan.inserts + plan.updates)

    def _plan(self, spec: Entity, batch: list[dict], mapped: list[Mapped], counts: EntityCounts,
              existing: dict) -> "_Plan":
        """Decide per record: excluded, rejected, insert, update or unchanged; count it."""
        plan = _Plan()
        seen_in_batch: set[str] = set()
        for raw, m in zip(batch, mapped, strict=True):
            counts.read += 1
            if m.excluded:
                counts.excluded += 1
                continue
            if spec.unique_key and m.reject is None:
                first_key_wins(spec, m, self.accepted.has(spec.name, m.legacy_key))
            if m.reject is not None:
                counts.rejected += 1
                counts.rejected_by[m.reject.code] = counts.rejected_by.get(m.reject.code, 0) + 1
                plan.rejects.append((m, raw))
                continue
            self.accepted.add(spec.name, m.legacy_key)
            if m.legacy_key in seen_in_batch:
                # Legacy links that normalise to the same (crime, person, role) are migrated once.
                counts.unchanged += 1
                continue
            seen_in_batch.add(m.legacy_key)
            digest, row_digests = _digests(m, self.run_started)
            previous = existing.get(m.legacy_key)
            if previous is None:
                plan.inserts.append((m, digest))
                plan.row_digests[m.legacy_key] = row_digests
            elif previous[1] == digest:
                counts.unchanged += 1
                continue
            else:
                plan.updates.append((m, digest))
            for w in m.warnings:
                counts.warnings_by[w.code] = counts.warnings_by.get(w.code, 0) + 1
        return plan

    # --- writing ------------------------------------------------------------------------

    def _migrate_entity(self, run_id: int, spec: Entity, ctx: MappingContext, counts: EntityCounts,
                        after: list | None, cp: dict | None) -> None:
        batch_no = cp["batches"] if cp else 0
        total = self._legacy_count(spec)
        with bar(f"{spec.name:<13}", total=total, unit="rec") as progress:
            progress.update(counts.read)
            for batch in self._batches(spec, after):
                batch_no += 1
                mapped = spec.map_batch(batch, ctx)
                last_key = [checkpoint_key(batch[-1][k]) for k in spec.key_columns]
                batch_counts = counts.pending()  # becomes ``counts`` only once the batch is committed
                with self.target.begin() as conn:
                    existing = self._xref_in(conn, spec, mapped)
                    plan = self._plan(spec, batch, mapped, batch_counts, existing)
                    self._write(conn, run_id, batch_no, spec, plan, batch_counts)
                    self._checkpoint(conn, run_id, spec, last_key, batch_no, batch_counts, done=False)
                    lock.heartbeat(conn)
                counts.settle(batch_counts)
                progress.update(len(batch))
                self.batches_committed += 1
                if self.stop_after_batches is not None and self.batches_committed >= self.stop_after_batches:
                    raise _Interrupted()
            with self.target.begin() as conn:
                self._checkpoint(conn, run_id, spec, None, batch_no, counts, done=True)

    def _xref_in(self, conn, spec: Entity, mapped: list[Mapped]) -> dict:
        keys = list({m.legacy_key for m in mapped if m.accepted})
        if not keys:
            return {}
        x = schema.mig_xref
        rows = conn.execute(sa.select(x.c.legacy_key, x.c.target_id, x.c.digest)
                            .where(x.c.entity == spec.name, x.c.legacy_key.in_(keys)))
        return {r.legacy_key: (r.target_id, r.digest) for r in rows}

    def _write(self, conn, run_id: int, batch_no: int, spec: Entity, plan: "_Plan",
               counts: EntityCounts) -> None:
        ledger: list[dict] = []
        warnings: list[dict] = []
        xref_new: list[dict] = []
        xref_changed: list[dict] = []

        # Inserts, parents first (a location before the crime that points at it).
        for table_name in schema.TARGET_TABLES:
            pairs = [(m, m.rows[table_name]) for m, _ in plan.inserts if table_name in m.rows]
            if pairs:
                bulk_insert(conn, schema.target_metadata.tables[table_name], [row for _, row in pairs])
                counts.rows_written += len(pairs)
                ledger += [_ledger_row(run_id, batch_no, table_name, row, m.legacy_key, "insert", None,
                                       plan.row_digests[m.legacy_key][table_name]) for m, row in pairs]
        counts.written += len(plan.inserts)

        # Updates: keep the before-image of every row, then overwrite it.
        if plan.updates:
            for table_name in schema.TARGET_TABLES:
                pairs = [(m, m.rows[table_name]) for m, _ in plan.updates if table_name in m.rows]
                if not pairs:
                    continue
                table = schema.target_metadata.tables[table_name]
                before = _current_rows(conn, table_name, [r for _, r in pairs])
                inserts_here = []
                for m, row in pairs:
                    key = _row_key(table_name, row)
                    if key in before and row_digest(before[key]) == row_digest(row):
                        continue  # this row of the record did not change (e.g. its location)
                    if key in before:
                        ledger.append(_ledger_row(run_id, batch_no, table_name, row, m.legacy_key, "update",
                                                  before[key]))
                        conn.execute(table.update().where(*_pk_clause(table_name, row)).values(**row))
                    else:  # e.g. a crime that gained coordinates gains a location row
                        inserts_here.append((m, row))
                if inserts_here:
                    conn.execute(table.insert(), [r for _, r in inserts_here])
                    ledger += [_ledger_row(run_id, batch_no, table_name, r, m.legacy_key, "insert", None)
                               for m, r in inserts_here]
                counts.rows_written += len(pairs)
            counts.updated += len(plan.updates)

        for m, digest in plan.inserts:
            xref_new.append({"entity": spec.name, "legacy_key": m.legacy_key, "target_id": _target_id(m),
                             "digest": digest, "run_id": run_id})
        for m, digest in plan.updates:
            xref_changed.append({"b_entity": spec.name, "b_key": m.legacy_key, "digest": digest, "run_id": run_id,
                                 "target_id": _target_id(m)})
        for m, _ in plan.inserts + plan.updates:
            warnings += [{"run_id": run_id, "entity": spec.name, "legacy_key": m.legacy_key, "reason": w.code,
                          "field": w.field, "value": _clip(w.value)} for w in m.warnings]

        bulk_insert(conn, schema.mig_ledger, ledger)
        bulk_insert(conn, schema.mig_xref, xref_new)
        if xref_changed:
            x = schema.mig_xref
            conn.execute(x.update().where(x.c.entity == sa.bindparam("b_entity"),
                                          x.c.legacy_key == sa.bindparam("b_key"))
                         .values(digest=sa.bindparam("digest"), run_id=sa.bindparam("run_id"),
                                 target_id=sa.bindparam("target_id")), xref_changed)
        bulk_insert(conn, schema.mig_warning, warnings)
        bulk_insert(conn, schema.mig_reject, [_reject_row(run_id, spec, m, raw) for m, raw in plan.rejects])

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
class _Plan:
    inserts: list[tuple[Mapped, str]] = field(default_factory=list)
    updates: list[tuple[Mapped, str]] = field(default_factory=list)
    rejects: list[tuple[Mapped, dict]] = field(default_factory=list)  # with the raw legacy row
    row_digests: dict[str, dict[str, str]] = field(default_factory=dict)  # legacy key -> table -> digest


# ------------------------------------------------------------------------------ helpers


def _os_user() -> str:
    try:
        return getpass.getuser()[:120]
    except Exception:  # no user name in this environment (containers): not worth failing a run
        return "unknown"


def _digests(m: Mapped, run_started: dt.datetime | None) -> tuple[str, dict[str, str]]:
    """The record's digest and its rows' digests (``core.digest.record_digests``, shared with rollback)."""
    return record_digests(m.rows, run_started)


def _row_key(table_name: str, row: dict) -> str:
    return "|".join(str(row[c]) for c in schema.TARGET_KEYS[table_name])


def _pk_clause(table_name: str, row: dict):
    table = schema.target_metadata.tables[table_name]
    return [table.c[c] == row[c] for c in schema.TARGET_KEYS[table_name]]


def _target_id(m: Mapped) -> str:
    """The id of the record's main row (what xref points at)."""
    for table_name in ("crime", "intelligence_report", "person", "crime_person"):
        if table_name in m.rows:
            return _row_key(table_name, m.rows[table_name])
    raise AssertionError(f"mapped {m.entity} has no main row")


def _current_rows(conn, table_name: str, rows: list[dict]) -> dict[str, dict]:
    table = schema.target_metadata.tables[table_name]
    keys = schema.TARGET_KEYS[table_name]
    if len(keys) == 1:
        ids = [r[keys[0]] for r in rows]
        found = conn.execute(sa.select(table).where(table.c[keys[0]].in_(ids))).mappings()
    else:
        found = conn.execute(sa.select(table).where(sa.tuple_(*[table.c[k] for k in keys])
                                                    .in_([tuple(r[k] for k in keys) for r in rows]))).mappings()
    return {_row_key(table_name, r): dict(r) for r in found}


def _ledger_row(run_id, batch_no, table_name, row, legacy_key, action, before, digest=None) -> dict:
    return {
        "run_id": run_id, "batch_no": batch_no, "table_name": table_name, "row_key": _row_key(table_name, row),
        "legacy_key": legacy_key, "action": action, "digest": digest or row_digest(row),
        "before_image": json.dumps(canonical_row(before), ensure_ascii=False) if before is not None else None,
    }


def _clip(value: str | None, limit: int = 2000) -> str | None:
    """A legacy value as our bookkeeping stores it: bounded, and with NUL shown as ``\\x00``
    (PostgreSQL text cannot hold NUL, and the reject must not fail on the very fault it reports)."""
    return None if value is None else str(value)[:limit].replace("\x00", "\\x00")


def _reject_row(run_id: int, spec: Entity, m: Mapped, raw: dict) -> dict:
    return {"run_id": run_id, "entity": spec.name, "legacy_key": m.legacy_key[:40], "reason": m.reject.code,
            "field": m.reject.field, "value": _clip(m.reject.value), "raw_row": _raw_json(raw)}


def _raw_json(raw: dict) -> str:
    """The legacy row as JSON, with intelligence text replaced by its fingerprint (and bytes
    that are not UTF-8 escaped: ``mappings.storable.escaped``)."""
    safe = {k: (text_fingerprint(v) if k == "int_text" and v is not None else
                escaped(v) if isinstance(v, (str, bytes)) else v) for k, v in raw.items()}
    return json.dumps(safe, ensure_ascii=False, default=str)

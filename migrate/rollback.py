"""Undoing a migration run: the dry run that finds every conflict, and the rollback itself.

After go-live officers keep working in iOPS, so undoing a run can destroy their later work.
The dry run (the default) says exactly what undoing run N would do — per table the rows it
would DELETE (inserted by the run) and RESTORE (updated by the run, from the before-image the
ledger kept) — and every CONFLICT with work done since:

``CHANGED_SINCE``  a row the run wrote whose current digest is not the digest the run wrote
                   (an officer edited it): deleting or restoring it would destroy the edit.
``DELETED_SINCE``  a row the run *updated* that is gone: restoring would resurrect it.
``DEPENDENT_ROW``  a row the rollback would not delete that refers to a row it deletes (a
                   new crime_person link to a migrated person, intelligence naming a migrated
                   subject or pointing at a migrated location, a crime at a migrated location).
``LATER_RUN``      a later run (not rolled back) wrote the same row: runs are undone newest
                   first.

A row the run *inserted* that has since been deleted is a notice (``ALREADY_DELETED``), not a
conflict: the rollback has nothing to delete there and destroys nothing — but a person should
know someone deleted a migrated record.

``--execute`` re-does the whole analysis inside the one transaction that then restores,
deletes, repairs ``mig_xref`` and marks the run ``rolled_back``, holding the target lock and
(on PostgreSQL and MariaDB) row locks on everything it checked — so a conflict that appears
between a dry run and the execution still refuses the rollback, and nothing is half done.

Everything streams: the ledger is read in windows of ``page`` ledger ids; deletes are
set-based (``DELETE … WHERE key IN (SELECT row_key FROM mig_ledger …)``) and restores are
``executemany`` per page, so a run of a million rows costs what a page costs in memory.
Every query is written so that its plan cannot go quadratic on tables never analysed (a
target just migrated into): primary-key ranges, ``(table_name, row_key)`` look-ups, and
semi-joins on plain columns — see ``_ledger_pages``, ``_ledger_history``, ``_find_dependents``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import bisect
import hashlib
import itertools
import json
from array import array
import pickle
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import schema
from core.db import mask_url, open_target, store_errors
from core.digest import canonical_row, read_written, short_digest, text_fingerprint
from core.errors import ForeignSchemaError, RollbackConflicts, RunInProgress, RunNotFound
from migrate import lock
from migrate import records as rec
from migrate.runs import RunInfo, load_run

#: Ledger rows looked at per round trip (and keys per IN list): ``rollback(page=)``'s default.
PAGE = 2000
#: Conflicts (and notices) kept in the result's lists for the console; ``RollbackRecords`` holds all.
#: ``rollback(kept_in_memory=)``'s default.
KEPT_IN_MEMORY = 1000
#: Bytes of records kept in memory before ``RollbackRecords`` moves them to an anonymous file.
#: ``rollback(records_in_memory=)``'s default.
RECORDS_IN_MEMORY = 4 << 20
#: Subsets of differing columns tried when naming the fields edited since the run.
MAX_PROOF_COLUMNS = 10

#: Columns whose values are sensitive: reports show a fingerprint, never the text.
SENSITIVE = {("intelligence_report", "intel_text")}

#: The main target table of each mig_xref entity (what xref.target_id names).
XREF_MAIN_TABLE = {
    "person": "person",
    "crime": "crime",
    "crime_person": "crime_person",
    "intelligence": "intelligence_report",
}


CHANGED_SINCE = "CHANGED_SINCE"
DELETED_SINCE = "DELETED_SINCE"
DEPENDENT_ROW = "DEPENDENT_ROW"
LATER_RUN = "LATER_RUN"
ALREADY_DELETED = "ALREADY_DELETED"
CONFLICT_KINDS = (CHANGED_SINCE, DELETED_SINCE, DEPENDENT_ROW, LATER_RUN)

ledger = schema.mig_ledger

#: Per target table, its foreign keys as (column, referenced table).
FOREIGN_KEYS = {
    name: [(fk.parent.name, fk.column.table.name)
           for fk in sorted(schema.target_metadata.tables[name].foreign_keys, key=lambda f: f.parent.name)]
    for name in schema.TARGET_TABLES
}


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class FieldChange:
    field: str
    current: str | None  # canonical text of the value in the target now
    other: str | None  # what the run wrote (CHANGED_SINCE) or what the rollback restores (RESTORE)


@dataclass(frozen=True)
class Conflict:
    kind: str  # CHANGED_SINCE | DELETED_SINCE | DEPENDENT_ROW | LATER_RUN | ALREADY_DELETED (notice)
    table: str
    row_key: str
    legacy_key: str | None
    run_action: str | None  # what the run did to this row (insert/update); None for a dependent row
    detail: str  # one sentence a person can act on
    fields: tuple[FieldChange, ...] = ()
    fields_proven: bool = False  # True: the fields are exactly those edited since the run
    later_runs: tuple[int, ...] = ()
    refers_to: str | None = None  # DEPENDENT_ROW: "person <id>" the rollback would delete
    written_by_run: int | None = None  # DEPENDENT_ROW: the run that wrote it (None: not a migration)
    #: The row as an engineer names it (``migrate.records.describe``): ``crime CR/000002/18``,
    #: ``person NOM_ID 2 (JONES, ANNE)``, ``link CR/000001/18 - NOM_ID 1 - VICTIM``; for a row
    #: entered in iOPS its own reference (``crime IOPS-2026-00001``).
    record: str = ""
    refers_to_record: str = ""  # DEPENDENT_ROW: the row it refers to, named the same way

    def to_json(self) -> dict:
        return {
            "kind": self.kind, "table": self.table, "row_key": self.row_key, "legacy_key": self.legacy_key,
            "record": self.record, "run_action": self.run_action, "detail": self.detail,
            "fields": [{"field": f.field, "current": f.current, "other": f.other} for f in self.fields],
            "fields_proven": self.fields_proven, "later_runs": list(self.later_runs),
            "refers_to": self.refers_to, "refers_to_record": self.refers_to_record,
            "written_by_run": self.written_by_run,
        }


@dataclass(frozen=True)
class PlannedRow:
    action: str  # delete | restore
    table: str
    row_key: str
    legacy_key: str | None
    fields: tuple[FieldChange, ...] = ()  # restore: current -> restored value, for fields that differ
    record: str = ""  # as Conflict.record

    def to_json(self) -> dict:
        doc = {"table": self.table, "row_key": self.row_key, "legacy_key": self.legacy_key, "record": self.record}
        if self.action == "restore":
            doc["fields"] = [{"field": f.field, "current": f.current, "restored": f.other} for f in self.fields]
        return doc


@dataclass
class TablePlan:
    delete: int = 0  # rows the run inserted that are still there
    restore: int = 0  # rows the run updated, to be put back as they were
    already_deleted: int = 0  # rows the run inserted that someone has deleted since
    conflicts: int = 0

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class XrefRepair:
    deleted: int = 0  # entries of records the run created
    restored: int = 0  # entries of records the run updated, back to the previous digest and run
    recheck: int = 0  # entries whose previous digest cannot be known: the next run re-checks them

    def to_json(self) -> dict:
        return dict(self.__dict__)


class RollbackRecords:
    """Every planned row, conflict and notice of one analysis, in the order found, read back
    lazily as the dataclasses above — a run of a million rows never sits in memory.

    Each kind is kept in its own temporary file that has no name (``SpooledTemporaryFile``:
    in memory up to ``in_memory`` bytes, then an unlinked file readable by this
    process only), so nothing holding personal data is left behind by a crash. ``close()``
    releases them (``RollbackResult`` is a context manager that does it).
    """

    KINDS = ("conflicts", "notices", "restore", "delete")

    def __init__(self, in_memory: int = RECORDS_IN_MEMORY) -> None:
        self._files = {kind: tempfile.SpooledTemporaryFile(max_size=in_memory, prefix="opus2iops-rollback-")
                       for kind in self.KINDS}
        self._ends = dict.fromkeys(self.KINDS, 0)

    def add(self, kind: str, record: "Conflict | PlannedRow") -> None:
        handle = self._files[kind]
        handle.seek(self._ends[kind])
        pickle.dump(record, handle, protocol=pickle.HIGHEST_PROTOCOL)
        self._ends[kind] = handle.tell()

    def _read(self, kind: str) -> Iterator:
        handle, position = self._files[kind], 0
        while position < self._ends[kind]:
            handle.seek(position)  # each reader keeps its own place
            record = pickle.load(handle)  # our own file, written above: nothing foreign is unpickled
            position = handle.tell()
            yield record

    def conflicts(self) -> Iterator["Conflict"]:
        """Every conflict, in the order found."""
        return self._read("conflicts")

    def notices(self) -> Iterator["Conflict"]:
        """Every notice (``ALREADY_DELETED``), in the order found."""
        return self._read("notices")

    def restores(self) -> Iterator["PlannedRow"]:
        """Every row the rollback restores (``action == "restore"``), in ledger order."""
        return self._read("restore")

    def deletes(self) -> Iterator["PlannedRow"]:
        """Every row the rollback deletes (``action == "delete"``), in ledger order."""
        return self._read("delete")

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()


@dataclass
class RollbackResult:
    """What undoing a run does (or would do), for ``reports`` to render.

    The counts and the first ``kept_in_memory`` conflicts and notices are plain fields;
    ``records`` streams every planned row, conflict and notice. Close the result (or use it
    as a context manager) when done with the records.
    """

    run: RunInfo
    mode: str  # dry_run | executed | refused | already_rolled_back
    target: str  # masked URL
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    tables: dict[str, TablePlan] = field(default_factory=dict)
    conflict_counts: dict[str, int] = field(default_factory=dict)  # by kind
    conflicts: list[Conflict] = field(default_factory=list)  # the first kept_in_memory
    notice_count: int = 0
    notices: list[Conflict] = field(default_factory=list)
    runs_to_undo_first: list[int] = field(default_factory=list)  # later runs, newest first
    xref: XrefRepair | None = None  # set when executed
    records: RollbackRecords = field(default_factory=RollbackRecords, repr=False)
    report_files: list[Path] = field(default_factory=list)  # set by the report writer

    def close(self) -> None:
        self.records.close()

    def __enter__(self) -> "RollbackResult":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def conflict_count(self) -> int:
        return sum(self.conflict_counts.values())

    @property
    def delete_count(self) -> int:
        return sum(t.delete for t in self.tables.values())

    @property
    def restore_count(self) -> int:
        return sum(t.restore for t in self.tables.values())

    @property
    def exit_code(self) -> int:
        return 1 if self.conflict_count else 0


# ------------------------------------------------------------------------------ entry point


def rollback(target_url: str, run_id: int, *, execute: bool = False, page: int = PAGE,
             kept_in_memory: int = KEPT_IN_MEMORY, records_in_memory: int = RECORDS_IN_MEMORY) -> RollbackResult:
    """Dry-run (default) or execute the rollback of ``run_id`` in the target at ``target_url``.

    A dry run never writes to the target. With ``execute`` and conflicts, nothing is changed
    and the result's mode is ``refused`` (exit code 1), with every conflict in its records.
    Writes no file: ``reports.rollback_report.write_rollback_report`` renders the result.
    Limits (the defaults suit any run; smaller ones change the cost, never the result):
    ``page`` ledger ids or rows per query, ``kept_in_memory`` conflicts and notices in the
    result's lists, ``records_in_memory`` bytes of records before they move to a file.
    """
    if min(page, kept_in_memory, records_in_memory) < 1:
        raise ValueError("rollback limits must be positive")
    limits = (page, kept_in_memory, records_in_memory)
    masked = mask_url(target_url)
    probe = open_target(target_url, read_only=True)  # never creates a store that is not there
    if probe is None:
        raise RunNotFound(f"no run {run_id}: there is no target store at {masked}")
    try:
        with store_errors(probe, "target"):
            run = load_run(probe, run_id)
    finally:
        probe.dispose()
    started = schema.utc_now()
    if run.state == "rolled_back":
        return RollbackResult(run, "already_rolled_back", masked, started, schema.utc_now())
    if run.state == "running":
        raise RunInProgress(
            f"run {run_id} is still running (pid {run.pid} on {run.host}): wait for it to finish, "
            "or stop it, before rolling it back"
        )
    engine = open_target(target_url, read_only=not execute)
    try:
        with store_errors(engine, "target"):
            if not execute:
                return _dry_run(engine, run, masked, started, limits)
            with lock.target_lock(engine, "rollback", run_id):
                return _execute(engine, run, masked, started, limits)
    finally:
        engine.dispose()


def _new_analysis(run_id: int, limits: tuple[int, int, int]) -> "_Analysis":
    page, kept, in_memory = limits
    return _Analysis(run_id, page=page, kept=kept, records=RollbackRecords(in_memory))


def _dry_run(engine: Engine, run: RunInfo, masked: str, started: dt.datetime, limits) -> RollbackResult:
    analysis = _new_analysis(run.id, limits)
    try:
        with engine.connect() as conn:
            _analyse(conn, run, analysis, lock_rows=False)
            conn.rollback()  # read-only anyway; ends the read transaction explicitly
    except BaseException:
        analysis.records.close()
        raise
    return analysis.result(run, "dry_run", masked, started)


def _execute(engine: Engine, run: RunInfo, masked: str, started: dt.datetime, limits) -> RollbackResult:
    analysis = _new_analysis(run.id, limits)
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            try:
                # First statement a write: on SQLite the database write lock is ours from here
                # on, so nobody can change a row between our checks and our deletes.
                lock.heartbeat(conn)
                state = conn.execute(sa.select(schema.mig_run.c.state)
                                     .where(schema.mig_run.c.run_id == run.id).with_for_update()).scalar_one()
                if state == "rolled_back":  # rolled back by someone else since we looked
                    transaction.rollback()
                    analysis.records.close()
                    return RollbackResult(run, "already_rolled_back", masked, started, schema.utc_now())
                _analyse(conn, run, analysis, lock_rows=True)
                if analysis.conflict_counts:
                    transaction.rollback()  # nothing done
                else:
                    xref = _apply(conn, run, analysis)
                    rolled_back_at = schema.utc_now()
                    conn.execute(schema.mig_run.update().where(schema.mig_run.c.run_id == run.id)
                                 .values(state="rolled_back", rolled_back_at=rolled_back_at))
                    transaction.commit()
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                raise
    except BaseException:
        analysis.records.close()
        raise
    if analysis.conflict_counts:
        return analysis.result(run, "refused", masked, started)
    run = dataclasses.replace(run, state="rolled_back", recorded_state="rolled_back", rolled_back_at=rolled_back_at)
    result = analysis.result(run, "executed", masked, started)
    result.xref = xref
    return result


# ------------------------------------------------------------------------------ analysis


@dataclass
class _LedgerEntry:
    ledger_id: int | None  # None: a row of a record the run inserted (named by mig_xref, no ledger row)
    table: str
    row_key: str
    legacy_key: str | None
    action: str
    digest: str
    before: dict | None  # canonical before-image (update)
    entity: str = ""
    last_run: int | None = None  # a record the run inserted: the last run that wrote it (mig_xref)


@dataclass
class _Later:
    run_id: int
    action: str
    digest: str
    before: dict | None


@dataclass
class _Analysis:
    run_id: int
    page: int = PAGE  # rows per query
    kept: int = KEPT_IN_MEMORY  # conflicts and notices kept in the lists
    tables: dict[str, TablePlan] = field(default_factory=lambda: {t: TablePlan() for t in schema.TARGET_TABLES})
    conflict_counts: Counter = field(default_factory=Counter)
    conflicts: list[Conflict] = field(default_factory=list)
    notice_count: int = 0
    notices: list[Conflict] = field(default_factory=list)
    later_runs: set[int] = field(default_factory=set)
    records: RollbackRecords = field(default_factory=RollbackRecords)
    # Per table, 64-bit hashes of the row keys the run inserted (sorted once the ledger pass is
    # done): what ``_find_dependents`` looks foreign keys up in, a few MB for a million rows.
    inserted: dict[str, array] = field(default_factory=lambda: {t: array("q") for t in schema.TARGET_TABLES})
    # Rows the run updated: {(table, row key): before-image}, for foreign keys they point elsewhere.
    updated: dict[tuple[str, str], dict] = field(default_factory=dict)

    def conflict(self, c: Conflict) -> None:
        self.conflict_counts[c.kind] += 1
        self.tables[c.table].conflicts += 1
        if len(self.conflicts) < self.kept:
            self.conflicts.append(c)
        self.records.add("conflicts", c)

    def notice(self, c: Conflict) -> None:
        self.notice_count += 1
        if len(self.notices) < self.kept:
            self.notices.append(c)
        self.records.add("notices", c)

    def planned(self, p: PlannedRow) -> None:
        plan = self.tables[p.table]
        if p.action == "delete":
            plan.delete += 1
        else:
            plan.restore += 1
        self.records.add(p.action, p)

    def result(self, run: RunInfo, mode: str, masked: str, started: dt.datetime) -> RollbackResult:
        return RollbackResult(
            run=run, mode=mode, target=masked, started_at=started, finished_at=schema.utc_now(),
            tables=self.tables,
            conflict_counts={k: self.conflict_counts[k] for k in CONFLICT_KINDS if self.conflict_counts[k]},
            conflicts=self.conflicts, notice_count=self.notice_count, notices=self.notices,
            runs_to_undo_first=sorted(self.later_runs, reverse=True), records=self.records,
        )


def _analyse(conn: Connection, run: RunInfo, analysis: _Analysis, *, lock_rows: bool) -> None:
    """One pass over every row the run wrote (the records mig_xref says it inserted, and its
    ledger of updates), then one pass per foreign key over the rows that may depend on rows
    the rollback would delete; everything found goes into ``analysis``."""
    runs = _run_states(conn)
    later = sorted(r for r, (state, _) in runs.items() if r > run.id and state != "rolled_back")
    for page in _ledger_pages(conn, run.id, analysis.page):
        for table_name, entries in _by_table(page).items():
            keys = [e.row_key for e in entries]
            current = _current_rows(conn, table_name, keys, lock_rows=lock_rows)
            later_by_key = _later_entries(conn, table_name, keys, set(later)) if later else {}
            for entry in entries:
                history = later_by_key.get(entry.row_key, [])
                if entry.ledger_id is None and history and history[0].action == "insert":
                    continue  # a row a later run added to the record (its location): not this run's
                _classify(analysis, run.id, entry, current.get(entry.row_key), history)
                if entry.action == "insert":
                    analysis.inserted[table_name].append(_hash(entry.row_key))
                elif entry.before is not None:
                    analysis.updated[(table_name, entry.row_key)] = entry.before
    for table_name, hashes in analysis.inserted.items():
        analysis.inserted[table_name] = array("q", sorted(hashes))
    _find_dependents(conn, analysis, run.id)


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little", signed=True)


def _holds(hashes: array, key) -> bool:
    if key is None:
        return False
    h = _hash(str(key))
    at = bisect.bisect_left(hashes, h)
    return at < len(hashes) and hashes[at] == h


def _record_name(e: "_LedgerEntry", current: dict | None) -> str:
    entity = e.entity or rec.entity_of(e.table, e.legacy_key)
    return rec.describe(entity, e.legacy_key, e.table, person=current if e.table == "person" else None)


def _classify(analysis: _Analysis, run_id: int, e: _LedgerEntry, current: dict | None, later: list[_Later]) -> None:
    """Decide what undoing this one row means, and whether it conflicts with later work."""
    name = _record_name(e, current)
    if later:
        runs_after = tuple(sorted({x.run_id for x in later}))
        analysis.later_runs.update(runs_after)
        fields: tuple[FieldChange, ...] = ()
        first_update = next((x for x in later if x.before is not None), None)
        if current is not None and first_update is not None and short_digest(current) == later[-1].digest:
            # The row is exactly what the later run(s) wrote: the before-image of the first of
            # them is what this run left, so the difference is exactly their change.
            fields = _diff(e.table, canonical_row(current), first_update.before)
        names = ", ".join(str(r) for r in reversed(runs_after))
        analysis.conflict(Conflict(
            LATER_RUN, e.table, e.row_key, e.legacy_key, e.action,
            f"run(s) {names} wrote this row after run {run_id}; runs are undone newest first: roll back "
            f"run(s) {names} first", fields=fields, fields_proven=bool(fields), later_runs=runs_after, record=name))
    if current is None:
        if e.action == "update":
            analysis.conflict(Conflict(
                DELETED_SINCE, e.table, e.row_key, e.legacy_key, e.action,
                f"this row, updated by run {run_id}, has been deleted since; restoring its before-image "
                "would bring back a row someone deleted", record=name))
        else:
            analysis.tables[e.table].already_deleted += 1
            analysis.notice(Conflict(
                ALREADY_DELETED, e.table, e.row_key, e.legacy_key, e.action,
                f"this row, inserted by run {run_id}, has been deleted since: nothing to delete", record=name))
        return
    expected = later[-1].digest if later else e.digest
    if short_digest(current) != expected:
        analysis.conflict(dataclasses.replace(_changed_since(run_id, e, canonical_row(current), later), record=name))
    if e.action == "insert":
        analysis.planned(PlannedRow("delete", e.table, e.row_key, e.legacy_key, record=name))
    else:
        analysis.planned(PlannedRow("restore", e.table, e.row_key, e.legacy_key,
                                    _diff(e.table, canonical_row(current), e.before), record=name))


def _changed_since(run_id: int, e: _LedgerEntry, canon: dict, later: list[_Later]) -> Conflict:
    if later:
        return Conflict(CHANGED_SINCE, e.table, e.row_key, e.legacy_key, e.action,
                        f"changed since run {later[-1].run_id} (a later run) wrote it")
    if e.action == "update":
        proven = _prove_edited_fields(canon, e.before, e.digest)
        if proven is not None:
            fields = tuple(FieldChange(f, _shown(e.table, f, canon[f]), _shown(e.table, f, e.before.get(f)))
                           for f in proven)
            return Conflict(CHANGED_SINCE, e.table, e.row_key, e.legacy_key, e.action,
                            f"edited since run {run_id} updated it ({', '.join(proven)}); restoring the "
                            "before-image would overwrite that edit", fields=fields, fields_proven=True)
        return Conflict(CHANGED_SINCE, e.table, e.row_key, e.legacy_key, e.action,
                        f"changed since run {run_id} updated it (its digest is not what the run wrote); the "
                        "ledger keeps only a digest of the written row, so the edited fields cannot be told "
                        "apart from the run's own changes: restoring would overwrite the fields listed",
                        fields=_diff(e.table, canon, e.before))
    return Conflict(CHANGED_SINCE, e.table, e.row_key, e.legacy_key, e.action,
                    f"changed since run {run_id} inserted it (its digest is not what the run wrote); deleting it "
                    "would destroy that change. The ledger keeps only a digest of the inserted row, so the "
                    "edited fields cannot be named")


def _prove_edited_fields(canon: dict, before: dict, written_digest: str) -> list[str] | None:
    """The fields edited since the run, when the digest proves them; else None.

    The ledger holds only the digest of what the run wrote. But an edit made after the run
    usually touches a field the run did not change, whose written value is therefore the
    before-image's. Putting before-image values back into a few of the differing fields and
    finding the written digest proves which fields were edited (SHA-256: no false match).
    """
    differing = [c for c in canon if canon[c] != before.get(c)]
    if len(differing) > MAX_PROOF_COLUMNS:
        return None
    for size in range(1, len(differing) + 1):
        for subset in itertools.combinations(differing, size):
            candidate = dict(canon)
            for c in subset:
                candidate[c] = before.get(c)
            if short_digest(candidate) == written_digest:
                return list(subset)
    return None


def _diff(table: str, canon: dict, other: dict | None) -> tuple[FieldChange, ...]:
    if other is None:
        return ()
    return tuple(FieldChange(c, _shown(table, c, canon[c]), _shown(table, c, other.get(c)))
                 for c in canon if canon[c] != other.get(c))


def _shown(table: str, column: str, value: str | None) -> str | None:
    """A value as reports may show it: intelligence text only as a fingerprint."""
    if (table, column) in SENSITIVE:
        return text_fingerprint(value)
    return value


def _find_dependents(conn: Connection, analysis: _Analysis, run_id: int) -> None:
    """Rows the rollback leaves in place that refer to rows it deletes.

    Per child table, one keyset-paged pass over its primary key and foreign-key columns; each
    foreign key is looked up in the sorted hashes of the rows the run inserted (no join with
    the bookkeeping, so no plan can turn quadratic on tables never analysed, and no index on
    the foreign-key columns is needed). A referring row the run inserted goes with it; one the
    run updated from a before-image that pointed elsewhere is pointed away first.
    """
    inserted = analysis.inserted
    for child_name in schema.TARGET_TABLES:
        fks = [(column, parent) for column, parent in FOREIGN_KEYS[child_name] if len(inserted[parent])]
        if not fks:
            continue
        child = schema.target_metadata.tables[child_name]
        extra = [c for c in ("legacy_ref", "source_system") if c in child.c]
        columns = [child.c[k] for k in schema.TARGET_KEYS[child_name]] + [child.c[c] for c, _ in fks] + \
            [child.c[c] for c in extra]
        for chunk in _pages_of(conn, sa.select(*columns), child_name, analysis.page):
            for row in chunk:
                key = None
                for column, parent in fks:
                    value = row[column]
                    if not _holds(inserted[parent], value):
                        continue
                    key = key or _row_key(child_name, row)
                    if _holds(inserted[child_name], key):
                        continue  # the run inserted it: deleted together
                    before = analysis.updated.get((child_name, key))
                    if before is not None and before.get(column) != str(value):
                        continue  # restoring its before-image points it away from the deleted row first
                    writer = _writer(conn, child_name, row)
                    analysis.conflict(_dependent(conn, run_id, child_name, key, row, column, parent, writer))


def _writer(conn: Connection, table: str, row: dict) -> int | None:
    """The last migration run that wrote this row (mig_xref), or None (entered in iOPS)."""
    legacy = _legacy_key_of(conn, table, row)
    if legacy is None:
        return None
    entity = rec.entity_of(table, legacy)
    x = schema.mig_xref
    found = conn.execute(sa.select(x.c.last_run).where(x.c.entity == entity, x.c.legacy_key == legacy)).first()
    if found is None:
        return None
    try:
        if rec.target_keys(entity, legacy)[table] != _row_key(table, row):
            return None  # a row that only names an OPUS record, not the row the tool wrote for it
    except (ValueError, KeyError):
        return None
    return found.last_run


def _legacy_key_of(conn: Connection, table: str, row: dict) -> str | None:
    if table in ("crime", "intelligence_report"):
        return row.get("legacy_ref")
    if table == "crime_person":
        crime = conn.execute(sa.select(schema.crime.c.legacy_ref).where(
            schema.crime.c.crime_id == row["crime_id"])).scalar()
        nominal = conn.execute(sa.select(schema.person.c.legacy_nominal_id).where(
            schema.person.c.person_id == row["person_id"])).scalar()
        if crime is None or nominal is None:
            return None
        return f"{crime}:{nominal}:{row['role']}"
    return None


def _describe_row(conn: Connection, table: str, key: str) -> str:
    """A target row as an engineer names it: its OPUS record if the tool wrote it, else its iOPS reference."""
    if table == "person":
        p = conn.execute(sa.select(schema.person).where(schema.person.c.person_id == key)).mappings().first()
        if p is None:
            return f"person {key}"
        if p["legacy_nominal_id"] is not None:
            return rec.describe("person", str(p["legacy_nominal_id"]), "person", person=dict(p))
        return f"person {p['family_name']}, {p['given_names'] or ''} (entered in iOPS)".replace(", ,", ",")
    if table == "crime":
        ref = conn.execute(sa.select(schema.crime.c.legacy_ref, schema.crime.c.crime_ref)
                           .where(schema.crime.c.crime_id == key)).first()
        return f"crime {ref.legacy_ref or ref.crime_ref}" if ref else f"crime {key}"
    if table == "intelligence_report":
        t = schema.intelligence_report
        ref = conn.execute(sa.select(t.c.legacy_ref, t.c.intel_ref).where(t.c.intel_id == key)).first()
        return f"intelligence {ref.legacy_ref or ref.intel_ref}" if ref else f"intelligence {key}"
    if table == "location":
        for owner, t, column in (("crime", schema.crime, "legacy_ref"), ("intelligence", schema.intelligence_report,
                                                                          "legacy_ref")):
            ref = conn.execute(sa.select(t.c[column]).where(t.c.location_id == key, t.c[column].is_not(None))
                               .limit(1)).scalar()
            if ref is not None and rec.target_keys(owner, ref).get("location") == key:
                return rec.describe(owner, ref, "location")
        return f"location {key}"
    if table == "crime_person":
        crime_id, person_id, role = key.split("|")
        return f"link {_describe_row(conn, 'crime', crime_id)} - {_describe_row(conn, 'person', person_id)} - {role}"
    return f"{table} {key}"


def _dependent(conn: Connection, run_id: int, table: str, key: str, row: dict, column: str, parent: str,
               writer: int | None) -> Conflict:
    if writer is not None:
        origin = f"written by run {writer}"
        advice = f"roll back run {writer} first" if writer > run_id else "remove or re-point it first"
    else:
        source = row.get("source_system")
        origin = "entered in iOPS" if source == "IOPS" else "not written by any migration run"
        advice = f"re-point or remove it in iOPS (its {column}) before rolling back"
    return Conflict(
        DEPENDENT_ROW, table, key, None, None,
        f"{table} {key} ({origin}) refers through {column} to {parent} {row[column]}, which run {run_id} "
        f"inserted and the rollback would delete; {advice}",
        fields=(FieldChange(column, row[column], None),), refers_to=f"{parent} {row[column]}",
        written_by_run=writer, record=_describe_row(conn, table, key),
        refers_to_record=_describe_row(conn, parent, row[column]),
    )


# ------------------------------------------------------------------------------ executing


def _apply(conn: Connection, run: RunInfo, analysis: _Analysis) -> XrefRepair:
    """Restore, then delete (children first), then repair mig_xref — in the caller's transaction."""
    _restore_updated_rows(conn, run.id, analysis.page)
    with _foreign_key_indexes(conn):
        for table_name in reversed(schema.TARGET_TABLES):
            table = schema.target_metadata.tables[table_name]
            names = schema.TARGET_KEYS[table_name]
            deleted = 0
            for page in _ledger_pages(conn, run.id, analysis.page, action="insert", table=table_name):
                keys = [e.row_key for e in page]
                if len(names) == 1:
                    deleted += conn.execute(table.delete().where(table.c[names[0]].in_(keys))).rowcount
                else:  # one statement per row: its primary key, which every engine indexes
                    statement = table.delete().where(*[table.c[k] == sa.bindparam(f"key_{k}") for k in names])
                    for key in keys:
                        deleted += conn.execute(statement, {f"key_{k}": v for k, v in zip(names, key.split("|"))}
                                                ).rowcount
            expected = analysis.tables[table_name].delete
            if deleted != expected:
                # Row locks make this impossible on servers; it guards the reasoning, not the race.
                raise RollbackConflicts(
                    f"run {run.id} was NOT rolled back: {table_name} changed while rolling back "
                    f"({deleted:,} rows to delete instead of {expected:,}); run the dry run again"
                )
    repair = _repair_xref(conn, run.id, analysis.page)
    # The run's own bookkeeping goes with it: the target's is as before the run.
    conn.execute(ledger.delete().where(ledger.c.run_id == run.id))
    conn.execute(schema.mig_xref_before.delete().where(schema.mig_xref_before.c.run_id == run.id))
    return repair


@contextlib.contextmanager
def _foreign_key_indexes(conn: Connection) -> Iterator[None]:
    """Index every foreign-key column that has no index, for the deletes only.

    A database that enforces foreign keys checks, for every parent row deleted, that no child
    row refers to it. iOPS does not index crime.location_id, crime_person.person_id or
    intelligence_report's subject and location: PostgreSQL then scans the child table once
    per deleted row — 20,000 crimes took five minutes to delete, 100,000 would take hours.
    Indexes built inside the transaction and dropped before it commits leave the schema as
    it was. (MariaDB indexes foreign-key columns itself, so nothing is built there — DDL
    would end its transaction.) The lasting fix is these indexes in ``core/schema.py``.
    """
    inspector = sa.inspect(conn)
    built = []
    # The indexes are defined on copies of the tables: an Index on a table of the shared
    # target_metadata would stay attached to it, and every later create_target_schema in
    # this process would build it too (then the next rollback finds its name taken).
    scratch = sa.MetaData()
    for child_name, fks in FOREIGN_KEYS.items():
        if not fks:
            continue
        indexed = {ix["column_names"][0] for ix in inspector.get_indexes(child_name) if ix["column_names"]}
        indexed.add(schema.TARGET_KEYS[child_name][0])  # the primary key's leading column
        for column, _ in fks:
            if column not in indexed:
                table = scratch.tables.get(child_name)
                if table is None:
                    table = schema.target_metadata.tables[child_name].to_metadata(scratch)
                index = sa.Index(f"tmp_rollback_{child_name}_{column}"[:60], table.c[column])
                index.create(conn)
                built.append(index)
    yield
    # Only on success: after an error the transaction is rolled back, and the indexes with it.
    for index in built:
        index.drop(conn)


def _restore_updated_rows(conn: Connection, run_id: int, size: int) -> None:
    """Put every row the run updated back as its before-image, one executemany per page and table."""
    for page in _ledger_pages(conn, run_id, size, action="update"):
        for table_name, entries in _by_table(page).items():
            table = schema.target_metadata.tables[table_name]
            keys = schema.TARGET_KEYS[table_name]
            statement = table.update().where(*[table.c[k] == sa.bindparam(f"key_{k}") for k in keys])
            params = []
            for e in entries:
                values = typed_row(table, e.before)
                param = {name: value for name, value in values.items() if name not in keys}
                param.update({f"key_{k}": v for k, v in zip(keys, e.row_key.split("|"))})
                params.append(param)
            conn.execute(statement, params)


def _repair_xref(conn: Connection, run_id: int, size: int) -> XrefRepair:
    """Make mig_xref say again what it said before this run: the entries of records the run
    inserted go (a later run inserts them afresh); the entries it replaced (an update, a new
    source digest) are put back from mig_xref_before, exactly."""
    x, before = schema.mig_xref, schema.mig_xref_before
    repair = XrefRepair()
    repair.deleted = conn.execute(x.delete().where(x.c.first_run == run_id)).rowcount
    last = None
    while True:
        query = sa.select(before.c.entity, before.c.legacy_key, before.c.source, before.c.written,
                          before.c.last_run).where(before.c.run_id == run_id)
        if last is not None:
            query = query.where(sa.tuple_(before.c.entity, before.c.legacy_key) > sa.tuple_(*[sa.literal(v) for v in last]))
        page = conn.execute(query.order_by(before.c.entity, before.c.legacy_key).limit(size)).all()
        if not page:
            return repair
        last = (page[-1].entity, page[-1].legacy_key)
        conn.execute(x.update().where(x.c.entity == sa.bindparam("b_entity"), x.c.legacy_key == sa.bindparam("b_key"))
                     .values(source=sa.bindparam("b_source"), written=sa.bindparam("b_written"),
                             last_run=sa.bindparam("b_last")),
                     [{"b_entity": r.entity, "b_key": r.legacy_key, "b_source": r.source, "b_written": r.written,
                       "b_last": r.last_run} for r in page])
        repair.restored += len(page)


# ------------------------------------------------------------------------------ queries


def _ledger_pages(conn: Connection, run_id: int, size: int, action: str | None = None,
                  table: str | None = None) -> Iterator[list[_LedgerEntry]]:
    """Every row the run wrote, in pages of about ``size``: first the rows of the records it
    inserted (mig_xref ``first_run``; their keys follow from the legacy keys, their digests are
    in ``written``), then its ledger (rows it updated, rows an update added). No open cursor:
    each page is its own query (keyset on the xref key; a range of ledger ids)."""
    if action in (None, "insert"):
        yield from _inserted_pages(conn, run_id, size, table)
    yield from _ledger_rows(conn, run_id, size, action, table)


def _inserted_pages(conn: Connection, run_id: int, size: int, table: str | None) -> Iterator[list[_LedgerEntry]]:
    x = schema.mig_xref
    for entity, main in rec.MAIN_TABLE.items():
        if table is not None and table not in (main, "location"):
            continue
        last = None
        while True:
            query = sa.select(x.c.legacy_key, x.c.written, x.c.last_run).where(x.c.entity == entity)
            if last is not None:
                query = query.where(x.c.legacy_key > last)
            rows = conn.execute(query.where(x.c.first_run == run_id).order_by(x.c.legacy_key).limit(size)).all()
            if not rows:
                break
            last = rows[-1].legacy_key
            page = []
            for r in rows:
                keys = rec.target_keys(entity, r.legacy_key)
                for table_name, (digest, _) in read_written(bytes(r.written), schema.TARGET_TABLES, rec.WIDTH).items():
                    if table is None or table_name == table:
                        page.append(_LedgerEntry(None, table_name, keys[table_name], r.legacy_key, "insert",
                                                 digest.hex(), None, entity, r.last_run))
            if page:
                yield page


def _ledger_rows(conn: Connection, run_id: int, size: int, action: str | None,
                 table: str | None) -> Iterator[list[_LedgerEntry]]:
    """The run's ledger in windows of ``size`` consecutive ledger ids.

    Each window is a primary-key range and nothing else in the WHERE clause: a plan no engine
    can get wrong, even on tables never analysed. Rows of other runs in the range — a run
    resumed after another one — and of the other action are dropped here.
    """
    first, last = conn.execute(sa.select(sa.func.min(ledger.c.ledger_id), sa.func.max(ledger.c.ledger_id))
                               .where(ledger.c.run_id == run_id)).one()
    if first is None:
        return
    for start in range(first, last + 1, size):
        rows = conn.execute(
            sa.select(ledger.c.ledger_id, ledger.c.run_id, ledger.c.table_name, ledger.c.row_key,
                      ledger.c.legacy_key, ledger.c.action, ledger.c.digest, ledger.c.before_image)
            .where(ledger.c.ledger_id >= start, ledger.c.ledger_id < start + size)
            .order_by(ledger.c.ledger_id)).all()
        page = [_LedgerEntry(r.ledger_id, r.table_name, r.row_key, r.legacy_key, r.action, r.digest,
                             json.loads(r.before_image) if r.before_image else None)
                for r in rows if r.run_id == run_id and (action is None or r.action == action)
                and (table is None or r.table_name == table)]
        if page:
            yield page


def _by_table(entries: Iterable) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for e in entries:
        if e.table not in schema.TARGET_KEYS:
            raise ForeignSchemaError(f"the ledger names a table this tool does not write: {e.table!r}")
        grouped.setdefault(e.table, []).append(e)
    return grouped


def _run_states(conn: Connection) -> dict[int, tuple[str, dt.datetime]]:
    run = schema.mig_run
    return {r.run_id: (r.state, r.started_at) for r in conn.execute(sa.select(run.c.run_id, run.c.state,
                                                                                 run.c.started_at))}


def _current_rows(conn: Connection, table_name: str, keys: list[str], *, lock_rows: bool = False) -> dict[str, dict]:
    """The target rows with these row keys, as {row_key: row}."""
    if not keys:
        return {}
    table = schema.target_metadata.tables[table_name]
    query = sa.select(table).where(_key_in(table_name, keys))
    if lock_rows:
        query = query.with_for_update()
    rows = {_row_key(table_name, r): dict(r) for r in conn.execute(query).mappings()}
    if len(schema.TARGET_KEYS[table_name]) > 1:
        wanted = set(keys)  # the query matched on the leading key column only
        rows = {k: r for k, r in rows.items() if k in wanted}
    return rows


def _ledger_history(conn: Connection, table_name: str, keys: list[str], *,
                    with_images: bool = True) -> dict[str, list[_Later]]:
    """Every ledger row (any run) of these target rows, oldest first, as {row_key: [...]}.

    Only ``table_name`` and ``row_key`` are in the WHERE clause, so the one index that fits is
    ``ix_mig_ledger_row`` on every engine; runs are filtered here, not by the database (a
    ``run_id`` condition tempts SQLite into scanning a whole run's ledger per query).
    """
    if not keys:
        return {}
    columns = [ledger.c.row_key, ledger.c.run_id, ledger.c.action, ledger.c.digest]
    if with_images:
        columns.append(ledger.c.before_image)
    query = (sa.select(*columns).where(ledger.c.table_name == table_name, ledger.c.row_key.in_(keys))
             .order_by(ledger.c.ledger_id))
    out: dict[str, list[_Later]] = {}
    for r in conn.execute(query):
        before = r.before_image if with_images else None
        out.setdefault(r.row_key, []).append(
            _Later(r.run_id, r.action, r.digest, json.loads(before) if before else None))
    return out


def _later_entries(conn: Connection, table_name: str, keys: list[str], later: set[int]) -> dict[str, list[_Later]]:
    """Ledger rows of later runs (not rolled back) for these rows, oldest first."""
    out = {}
    for key, entries in _ledger_history(conn, table_name, keys).items():
        mine = [e for e in entries if e.run_id in later]
        if mine:
            out[key] = mine
    return out


def _pages_of(conn: Connection, query, table_name: str, size: int) -> Iterator[list[dict]]:
    """A query over a target table, in pages of ``size`` rows (keyset on the primary key)."""
    table = schema.target_metadata.tables[table_name]
    key_cols = [table.c[k] for k in schema.TARGET_KEYS[table_name]]
    key = key_cols[0] if len(key_cols) == 1 else sa.tuple_(*key_cols)
    last = None
    while True:
        q = query
        if last is not None:
            bound = last[0] if len(key_cols) == 1 else sa.tuple_(*[sa.literal(v) for v in last])
            q = q.where(key > bound)
        rows = [dict(r) for r in conn.execute(q.order_by(*key_cols).limit(size)).mappings()]
        if not rows:
            return
        last = [rows[-1][c.name] for c in key_cols]
        yield rows


def _row_key(table_name: str, row) -> str:
    """The ledger's row key: the primary key, composite keys joined by '|' (as the engine writes it)."""
    return "|".join(str(row[c]) for c in schema.TARGET_KEYS[table_name])


def _key_expr(table_name: str):
    """SQL expression equal to a row's ledger row key."""
    table = schema.target_metadata.tables[table_name]
    cols = [table.c[k] for k in schema.TARGET_KEYS[table_name]]
    expr = cols[0]
    for col in cols[1:]:
        expr = expr + "|" + col  # String '+' renders as || or concat() per engine
    return expr


def _key_in(table_name: str, keys: list[str]):
    """A condition selecting the rows with these row keys — and, for a composite key, possibly a
    few more (callers filter): ``(a, b, c) IN (VALUES …)`` makes SQLite scan the whole table,
    so composite keys are matched on their leading column, which the primary key indexes."""
    table = schema.target_metadata.tables[table_name]
    names = schema.TARGET_KEYS[table_name]
    if len(names) == 1:
        return table.c[names[0]].in_(keys)
    return table.c[names[0]].in_(sorted({k.split("|", 1)[0] for k in keys}))


# ------------------------------------------------------------------------------ values


def typed_row(table: sa.Table, canon: dict) -> dict:
    """A canonical row (before-image) back in the column types the table takes."""
    missing = [c.name for c in table.columns if c.name not in canon]
    if missing:
        raise ForeignSchemaError(f"the ledger's before-image of a {table.name} row lacks column(s) "
                                 f"{', '.join(missing)}: the row cannot be restored")
    return {c.name: from_canonical(c.type, canon[c.name]) for c in table.columns}


def from_canonical(type_, text: str | None):
    """Inverse of ``core.digest.canonical`` for one column type."""
    if text is None:
        return None
    if isinstance(type_, schema.UTCDateTime) or isinstance(type_, sa.DateTime):
        return schema.as_utc(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    if isinstance(type_, sa.Date):
        return dt.date.fromisoformat(text)
    if isinstance(type_, sa.Boolean):
        if text not in ("true", "false"):
            raise ValueError(f"not a canonical boolean: {text!r}")
        return text == "true"
    if isinstance(type_, sa.Integer):
        return int(text)
    if isinstance(type_, sa.Numeric):
        return float(text)
    return text


def _kinds_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {kind}" for kind, n in counts.items())

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
import itertools
import json
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
from core.digest import canonical_row, record_digest, row_digest, text_fingerprint
from core.errors import ForeignSchemaError, RollbackConflicts, RunInProgress, RunNotFound
from migrate import lock
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

#: What a repaired xref entry holds when its previous digest cannot be known: it can never
#: equal a SHA-256, so the next migration re-maps the record and treats it as changed.
RECHECK_DIGEST = "rolled-back:recheck"

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

    def to_json(self) -> dict:
        return {
            "kind": self.kind, "table": self.table, "row_key": self.row_key, "legacy_key": self.legacy_key,
            "run_action": self.run_action, "detail": self.detail,
            "fields": [{"field": f.field, "current": f.current, "other": f.other} for f in self.fields],
            "fields_proven": self.fields_proven, "later_runs": list(self.later_runs),
            "refers_to": self.refers_to, "written_by_run": self.written_by_run,
        }


@dataclass(frozen=True)
class PlannedRow:
    action: str  # delete | restore
    table: str
    row_key: str
    legacy_key: str | None
    fields: tuple[FieldChange, ...] = ()  # restore: current -> restored value, for fields that differ

    def to_json(self) -> dict:
        doc = {"table": self.table, "row_key": self.row_key, "legacy_key": self.legacy_key}
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
    ledger_id: int
    table: str
    row_key: str
    legacy_key: str | None
    action: str
    digest: str
    before: dict | None  # canonical before-image (update)


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
    # Per (child table, FK column): rows the run wrote that refer to a row the run inserted and
    # that the rollback itself takes care of (deletes them, or restores them to point elsewhere).
    accounted: Counter = field(default_factory=Counter)

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
    """One pass over the run's ledger (every row it wrote), then one query per foreign key
    for rows that depend on rows the rollback would delete; everything found goes into
    ``analysis``."""
    runs = _run_states(conn)
    later = sorted(r for r, (state, _) in runs.items() if r > run.id and state != "rolled_back")
    for page in _ledger_pages(conn, run.id, analysis.page):
        for table_name, entries in _by_table(page).items():
            keys = [e.row_key for e in entries]
            current = _current_rows(conn, table_name, keys, lock_rows=lock_rows)
            later_by_key = _later_entries(conn, table_name, keys, set(later)) if later else {}
            for entry in entries:
                _classify(analysis, run.id, entry, current.get(entry.row_key), later_by_key.get(entry.row_key, []))
            _count_own_references(conn, analysis, run.id, table_name, entries, current)
    _find_dependents(conn, analysis, run.id, runs)


def _count_own_references(conn: Connection, analysis: _Analysis, run_id: int, table_name: str,
                          entries: list[_LedgerEntry], current: dict[str, dict]) -> None:
    """Count the rows of this page that refer to a row the run inserted and that the rollback
    deletes or points elsewhere — what ``_find_dependents`` compares its totals with."""
    for column, parent in FOREIGN_KEYS[table_name]:
        handled = []
        for e in entries:
            row = current.get(e.row_key)
            if row is None or row[column] is None:
                continue
            if e.action == "insert" or (e.before or {}).get(column) != row[column]:
                handled.append(row[column])
        if handled:
            inserted = _inserted_by_run(conn, parent, sorted(set(handled)), run_id)
            analysis.accounted[(table_name, column)] += sum(1 for value in handled if value in inserted)


def _classify(analysis: _Analysis, run_id: int, e: _LedgerEntry, current: dict | None, later: list[_Later]) -> None:
    """Decide what undoing this one ledger row means, and whether it conflicts with later work."""
    if later:
        runs_after = tuple(sorted({x.run_id for x in later}))
        analysis.later_runs.update(runs_after)
        fields: tuple[FieldChange, ...] = ()
        first_update = next((x for x in later if x.before is not None), None)
        if current is not None and first_update is not None and row_digest(current) == later[-1].digest:
            # The row is exactly what the later run(s) wrote: the before-image of the first of
            # them is what this run left, so the difference is exactly their change.
            fields = _diff(e.table, canonical_row(current), first_update.before)
        names = ", ".join(str(r) for r in reversed(runs_after))
        analysis.conflict(Conflict(
            LATER_RUN, e.table, e.row_key, e.legacy_key, e.action,
            f"run(s) {names} wrote this row after run {run_id}; runs are undone newest first: roll back "
            f"run(s) {names} first", fields=fields, fields_proven=bool(fields), later_runs=runs_after))
    if current is None:
        if e.action == "update":
            analysis.conflict(Conflict(
                DELETED_SINCE, e.table, e.row_key, e.legacy_key, e.action,
                f"this row, updated by run {run_id}, has been deleted since; restoring its before-image "
                "would bring back a row someone deleted"))
        else:
            analysis.tables[e.table].already_deleted += 1
            analysis.notice(Conflict(
                ALREADY_DELETED, e.table, e.row_key, e.legacy_key, e.action,
                f"this row, inserted by run {run_id}, has been deleted since: nothing to delete"))
        return
    expected = later[-1].digest if later else e.digest
    if row_digest(current) != expected:
        analysis.conflict(_changed_since(run_id, e, canonical_row(current), later))
    if e.action == "insert":
        analysis.planned(PlannedRow("delete", e.table, e.row_key, e.legacy_key))
    else:
        analysis.planned(PlannedRow("restore", e.table, e.row_key, e.legacy_key,
                                    _diff(e.table, canonical_row(current), e.before)))


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
            if row_digest(candidate) == written_digest:
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


def _find_dependents(conn: Connection, analysis: _Analysis, run_id: int, runs: dict) -> None:
    """Rows the rollback leaves in place that refer to rows it deletes.

    Per foreign key, one count: child rows referring to a row the run inserted (a semi-join
    on a plain column, which every engine hashes or materialises). The ledger pass has
    counted those the rollback deletes or points elsewhere itself; equal counts — the usual
    case — mean no dependents. Only otherwise are the referring rows read, a page at a time,
    and looked up in the ledger. Nothing here joins the ledger on an expression or through
    NOT IN / NOT EXISTS: on freshly loaded tables without statistics those plans turn
    quadratic (a nested loop on PostgreSQL, a run_id probe per row on SQLite).
    """
    rolled_back = {r for r, (state, _) in runs.items() if state == "rolled_back"}
    for child_name in schema.TARGET_TABLES:
        child = schema.target_metadata.tables[child_name]
        for column, parent_name in FOREIGN_KEYS[child_name]:
            refers = child.c[column].in_(_ledger_keys(run_id, parent_name, "insert"))
            total = conn.execute(sa.select(sa.func.count()).select_from(child).where(refers)).scalar_one()
            if total == analysis.accounted[(child_name, column)]:
                continue
            for chunk in _pages_of(conn, sa.select(child).where(refers), child_name, analysis.page):
                keys = [_row_key(child_name, r) for r in chunk]
                history = _ledger_history(conn, child_name, keys)
                for row, key in zip(chunk, keys):
                    entries = history.get(key, [])
                    mine = [e for e in entries if e.run_id == run_id]
                    if any(e.action == "insert" for e in mine):
                        continue  # the run inserted it: deleted together
                    if any(e.action == "update" and e.before.get(column) != row[column] for e in mine):
                        continue  # restoring its before-image points it away from the deleted row first
                    writer = max((e.run_id for e in entries if e.run_id not in rolled_back), default=None)
                    analysis.conflict(_dependent(run_id, child_name, key, row, column, parent_name, writer))


def _inserted_by_run(conn: Connection, table_name: str, keys: list[str], run_id: int) -> set[str]:
    """Those of these row keys that the run inserted."""
    return {key for key, entries in _ledger_history(conn, table_name, keys, with_images=False).items()
            if any(e.run_id == run_id and e.action == "insert" for e in entries)}


def _dependent(run_id: int, table: str, key: str, row: dict, column: str, parent: str,
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
        written_by_run=writer,
    )


# ------------------------------------------------------------------------------ executing


def _apply(conn: Connection, run: RunInfo, analysis: _Analysis) -> XrefRepair:
    """Restore, then delete (children first), then repair mig_xref — in the caller's transaction."""
    _restore_updated_rows(conn, run.id, analysis.page)
    with _foreign_key_indexes(conn):
        for table_name in reversed(schema.TARGET_TABLES):
            table = schema.target_metadata.tables[table_name]
            deleted = conn.execute(table.delete().where(
                _key_expr(table_name).in_(_ledger_keys(run.id, table_name, "insert")))).rowcount
            expected = analysis.tables[table_name].delete
            if deleted != expected:
                # Row locks make this impossible on servers; it guards the reasoning, not the race.
                raise RollbackConflicts(
                    f"run {run.id} was NOT rolled back: {table_name} changed while rolling back "
                    f"({deleted:,} rows to delete instead of {expected:,}); run the dry run again"
                )
    return _repair_xref(conn, run.id, analysis.page)


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
    """Make mig_xref say again what the migration last wrote before this run.

    * Records the run created: their entries are deleted (a later run inserts them afresh).
    * Records the run updated: the previous xref digest is not in the ledger, but it is, by
      the engine's definition, the record digest of the record's rows as the previous run
      wrote them — which is what the target holds again once the before-images are restored.
      So it is recomputed from the restored rows (with the engine's own function, and the
      previous writer's start time for its RUN_START rule) and the previous run id put back.
      If an officer had edited the rows between the previous run and this one, the digest
      includes the edit and the next run treats the record as changed: an update with its
      before-image kept — never a skipped change, never a duplicate insert.
    * An entry whose rows cannot be found gets ``RECHECK_DIGEST``: the next run re-checks it.
      (Deleting such an entry would make the next run *insert* a row that exists: a key clash.)
    """
    x = schema.mig_xref
    repair = XrefRepair()
    runs = _run_states(conn)
    rolled_back = {r for r, (state, _) in runs.items() if state == "rolled_back"}
    for entity, main in XREF_MAIN_TABLE.items():
        repair.deleted += conn.execute(x.delete().where(
            x.c.run_id == run_id, x.c.entity == entity,
            x.c.target_id.in_(_ledger_keys(run_id, main, "insert")))).rowcount
        last = None
        while True:
            query = sa.select(x.c.legacy_key, x.c.target_id).where(x.c.run_id == run_id, x.c.entity == entity)
            if last is not None:
                query = query.where(x.c.legacy_key > last)
            page = conn.execute(query.order_by(x.c.legacy_key).limit(size)).all()
            if not page:
                break
            last = page[-1].legacy_key
            updates = _previous_xref(conn, entity, main, page, run_id, runs, rolled_back)
            repair.restored += sum(1 for u in updates if u["b_digest"] != RECHECK_DIGEST)
            repair.recheck += sum(1 for u in updates if u["b_digest"] == RECHECK_DIGEST)
            conn.execute(x.update().where(x.c.entity == entity, x.c.legacy_key == sa.bindparam("b_key"))
                         .values(digest=sa.bindparam("b_digest"), run_id=sa.bindparam("b_run")), updates)
    return repair


def _previous_xref(conn, entity: str, main: str, page, run_id: int, runs: dict, rolled_back: set[int]) -> list[dict]:
    mains = _current_rows(conn, main, [p.target_id for p in page])
    location_ids = sorted({r["location_id"] for r in mains.values() if r.get("location_id")})
    locations = _current_rows(conn, "location", location_ids) if location_ids else {}
    writers = _last_writers(conn, main, [p.target_id for p in page], rolled_back, before_run=run_id)
    writers.update({("location", k): v for k, v in
                    _last_writers(conn, "location", location_ids, rolled_back, before_run=run_id).items()})
    updates = []
    for p in page:
        row = mains.get(p.target_id)
        rows = {main: row}
        loc_id = row.get("location_id") if row else None
        if loc_id:
            rows["location"] = locations.get(loc_id)
        previous = [w for w in (writers.get(p.target_id), writers.get(("location", loc_id))) if w is not None]
        if any(r is None for r in rows.values()) or not previous:
            updates.append({"b_key": p.legacy_key, "b_digest": RECHECK_DIGEST, "b_run": run_id})
            continue
        writer = max(previous)
        digest = record_digest(rows, runs[writer][1])  # the engine's own definition
        updates.append({"b_key": p.legacy_key, "b_digest": digest, "b_run": writer})
    return updates


# ------------------------------------------------------------------------------ queries


def _ledger_pages(conn: Connection, run_id: int, size: int, action: str | None = None) -> Iterator[list[_LedgerEntry]]:
    """The run's ledger in windows of ``size`` consecutive ledger ids (no open cursor).

    Each window is a primary-key range and nothing else in the WHERE clause: a plan no engine
    can get wrong, even on tables never analysed. (``run_id = ? AND ledger_id > ? ORDER BY
    ledger_id LIMIT ?`` makes PostgreSQL without statistics read and sort the whole run for
    every page.) Rows of other runs in the range — a run resumed after another one — and of
    the other action are dropped here.
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
                for r in rows if r.run_id == run_id and (action is None or r.action == action)]
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


def _last_writers(conn: Connection, table_name: str, keys: list[str], rolled_back: set[int],
                  before_run: int) -> dict[str, int]:
    """The latest run before ``before_run`` (and not rolled back) that wrote each row."""
    out = {}
    for key, entries in _ledger_history(conn, table_name, keys, with_images=False).items():
        runs = [e.run_id for e in entries if e.run_id < before_run and e.run_id not in rolled_back]
        if runs:
            out[key] = max(runs)
    return out


def _ledger_keys(run_id: int, table_name: str, action: str):
    """Subquery: the row keys of ``table_name`` the run wrote with ``action``."""
    return sa.select(ledger.c.row_key).where(ledger.c.run_id == run_id, ledger.c.table_name == table_name,
                                             ledger.c.action == action)


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

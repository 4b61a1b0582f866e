"""The rollback report: ``rollback.json`` and ``rollback.xlsx`` (the auditors' workbook).

:func:`write_rollback_report` renders a ``migrate.rollback.RollbackResult``; it reads no
store. The result's records (every planned row, conflict and notice) are streamed once into
write-only sheets and once into the JSON's arrays, so a run of a million rows never sits in
memory. The Summary comes first (links to every other sheet; the JSON's ``summary`` object
first); both files are published together (``core.publish``), mode 0600. On any failure
nothing half-written is left behind.

Workbook: Summary · Conflicts · Notices · Restore <table> · Delete <table> (a sheet per table
that has such rows). Every table sheet has a frozen
header, a filter, fitted widths and a link back to the Summary. Intelligence text never
appears (the analysis passes only its fingerprint); values that could be read as spreadsheet
formulas are neutralised by ``reports.xlsx``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.schema import TARGET_TABLES
from reports import xlsx
from core.publish import ReportSet
from reports.safe import mask_credentials

if TYPE_CHECKING:  # types only
    from migrate.rollback import RollbackResult

FILE_MODE = 0o600
TABLES = TARGET_TABLES
#: The row arrays of the JSON report, in order.
SECTIONS = ("conflicts", "notices", "restore", "delete")
JSON_NAME = "rollback.json"
XLSX_NAME = "rollback.xlsx"

CONFLICT_SHEET, NOTICE_SHEET, RESTORE_SHEET, DELETE_SHEET = "Conflicts", "Notices", "Restore", "Delete"
CONFLICT_COLUMNS = ("kind", "table", "row_key", "legacy_key", "run_action", "later_runs", "refers_to",
                    "written_by_run", "fields", "fields_proven", "detail")
# One Delete and one Restore sheet per table: fewer cells per row (a run of 100,000 crimes
# deletes half a million rows, and cells are what a workbook costs), a link per table.
RESTORE_COLUMNS = ("row_key", "legacy_key", "fields_restored", "changes (now -> restored)")
DELETE_COLUMNS = ("row_key", "legacy_key")

KIND_MEANING = {
    "CHANGED_SINCE": "a row the run wrote has been edited since: undoing the run would destroy the edit",
    "DELETED_SINCE": "a row the run updated has been deleted since: restoring it would bring it back",
    "DEPENDENT_ROW": "a row added since refers to a row the rollback would delete",
    "LATER_RUN": "a later run wrote the same row: undo runs newest first",
    "ALREADY_DELETED": "(notice) a row the run inserted has been deleted since: nothing to delete",
}
SHEET_MEANING = {
    CONFLICT_SHEET: "every conflict: each one blocks `rollback --execute` until resolved",
    NOTICE_SHEET: "rows the run inserted that someone has deleted since (nothing to undo; worth knowing)",
    RESTORE_SHEET: "{table} rows the run updated: put back as they were before it (the ledger's before-images)",
    DELETE_SHEET: "{table} rows the run inserted: deleted by the rollback",
}
MODE_TITLE = {
    "dry_run": "Rollback dry run",
    "refused": "Rollback refused",
    "executed": "Rollback executed",
}


def write_rollback_report(result: "RollbackResult", out_dir: Path) -> list[Path]:
    """Write ``rollback.json`` and ``rollback.xlsx`` for ``result`` into ``out_dir``; returns
    [json, xlsx] (also recorded in ``result.report_files``). Both are published together
    (``core.publish``: a reader finds the old pair or the new pair, never one of each), mode
    0600. Raises ``OutputError`` when the folder cannot be created or written: nothing is
    published then, and nothing half-written is left behind."""
    report_set = ReportSet(Path(out_dir), "rollback", what="the rollback report")
    wb = None
    try:
        with report_set.errors():
            with report_set.create(XLSX_NAME, binary=True) as out:
                wb = xlsx.new_workbook()
                _write_workbook(wb, out, result)
            wb = None  # saved: openpyxl removed its temporary sheet files
            with report_set.create(JSON_NAME) as out:
                _write_json(out, result)
            published = report_set.publish()
    finally:
        report_set.discard()
        if wb is not None:
            # After a failed save; cleaning up must not hide the failure (a full disk) behind its own.
            with contextlib.suppress(Exception):
                xlsx.discard_spools(wb)
    result.report_files = [published[JSON_NAME], published[XLSX_NAME]]
    return list(result.report_files)


#: The records of each JSON array and workbook section, as ``to_json()`` documents.
def _documents(result: "RollbackResult", section: str):
    records = result.records
    rows = {"conflicts": records.conflicts, "notices": records.notices,
            "restore": records.restores, "delete": records.deletes}[section]()
    return (row.to_json() for row in rows)


def _write_workbook(wb, out, result: "RollbackResult") -> None:
    summary = wb.create_sheet(xlsx.SUMMARY_TITLE)
    summary.sheet_view.tabSelected = True
    taken = {xlsx.SUMMARY_TITLE}
    tables = {
        CONFLICT_SHEET: xlsx.TableWriter(wb, CONFLICT_SHEET, CONFLICT_COLUMNS, taken, fixed_widths={8: 50, 10: 80}),
        NOTICE_SHEET: xlsx.TableWriter(wb, NOTICE_SHEET, CONFLICT_COLUMNS, taken, fixed_widths={8: 30, 10: 60}),
    }
    for kind, columns, widths in ((RESTORE_SHEET, RESTORE_COLUMNS, {3: 80}), (DELETE_SHEET, DELETE_COLUMNS, {})):
        for table in TABLES:
            tables[(kind, table)] = xlsx.TableWriter(wb, f"{kind} {table}", columns, taken, fixed_widths=widths)
    for doc in _documents(result, "conflicts"):
        tables[CONFLICT_SHEET].append(_conflict_values(doc))
    for doc in _documents(result, "notices"):
        tables[NOTICE_SHEET].append(_conflict_values(doc))
    for doc in _documents(result, "restore"):
        fields = doc["fields"]
        tables[(RESTORE_SHEET, doc["table"])].append(
            [doc["row_key"], doc["legacy_key"], ", ".join(f["field"] for f in fields),
             _changes_text(fields, "current", "restored", "->")])
    for doc in _documents(result, "delete"):
        tables[(DELETE_SHEET, doc["table"])].append([doc["row_key"], doc["legacy_key"]])
    # Conflicts and Notices always have a sheet (an empty one says "none"); per-table
    # Delete and Restore sheets only when the table has such rows.
    sheets = {name: table.close(always=isinstance(name, str)) for name, table in tables.items()}
    _summary_sheet(summary, result, sheets)
    xlsx.order_sheets(wb, [xlsx.SUMMARY_TITLE] + [t for titles in sheets.values() for t, _ in titles])
    xlsx.save(wb, out)


def _write_json(out, result: "RollbackResult") -> None:
    head = json.dumps(rollback_document(result), indent=2, ensure_ascii=False, default=str)
    out.write(head[: -len("\n}")])  # reopen the object to append the four arrays
    for key in SECTIONS:
        out.write(f',\n  "{key}": [')
        first = True
        for doc in _documents(result, key):
            out.write("\n    " if first else ",\n    ")
            out.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
            first = False
        out.write("\n  ]" if not first else "]")
    out.write("\n}\n")


def rollback_document(result: "RollbackResult") -> dict[str, Any]:
    """Everything of the JSON report except the four row arrays."""
    run = result.run
    return {
        "report": "rollback",
        "mode": result.mode,
        "result": _verdict(result),
        "run": run.to_json(),
        "target": mask_credentials(result.target),
        "started_at": _iso(result.started_at),
        "finished_at": _iso(result.finished_at),
        "summary": {
            "conflicts": result.conflict_count,
            "conflicts_by_kind": result.conflict_counts,
            "notices": result.notice_count,
            "delete": result.delete_count,
            "restore": result.restore_count,
            "tables": {name: plan.to_json() for name, plan in result.tables.items()},
            "runs_to_undo_first": result.runs_to_undo_first,
            "xref": result.xref.to_json() if result.xref else None,
        },
        "kinds": KIND_MEANING,
    }


# ---- the Summary sheet --------------------------------------------------------------------


def _summary_sheet(ws, result: "RollbackResult", sheets: dict[str, list[tuple[str, int]]]) -> None:
    run = result.run
    xlsx.set_widths(ws, [30, 16, 16, 18, 16, 70])
    c = lambda v, **kw: xlsx.cell(ws, v, **kw)  # noqa: E731
    label = lambda text: c(text, font=xlsx.LABEL_FONT)  # noqa: E731
    failed = result.conflict_count > 0
    first = {name: (titles[0][0] if titles else None) for name, titles in sheets.items()}
    first.update({name: None for name in [(kind, t) for kind in (DELETE_SHEET, RESTORE_SHEET) for t in TABLES]
                  if name not in first})

    ws.row_dimensions[1].height = 24
    ws.row_dimensions[4].height = 36
    ws.append([c(f"{MODE_TITLE.get(result.mode, 'Rollback')} of migration run {run.id}", font=xlsx.TITLE_FONT)])
    ws.append([c("What undoing the run would delete and restore, and every conflict with work done in iOPS "
                 "since the run. Blue underlined text links to the sheet it names.")])
    ws.append([])
    verdict = _verdict(result)
    ws.append([c("Result", font=xlsx.LABEL_FONT, alignment=xlsx.MIDDLE),
               c(verdict, font=xlsx.RESULT_FONT, fill=xlsx.FAIL_FILL if failed else xlsx.PASS_FILL,
                 alignment=xlsx.CENTRE),
               c("  " + _verdict_text(result), alignment=xlsx.MIDDLE)])
    ws.append([])
    for text, value in (
        ("Run", run.id),
        ("Run state", run.state),
        ("Run started (UTC)", xlsx.naive_utc(run.started_at)),
        ("Run finished (UTC)", xlsx.naive_utc(run.finished_at)),
        ("Legacy store of the run", mask_credentials(run.legacy_store)),
        ("Target (iOPS)", mask_credentials(result.target)),
        ("Run by", f"{run.os_user or '?'} on {run.host or '?'}"),
        ("Report made (UTC)", xlsx.naive_utc(result.finished_at)),
    ):
        ws.append([label(text), c(value, alignment=xlsx.LEFT) if value is not None else None])
    if result.runs_to_undo_first:
        ws.append([label("Runs to undo first"), c(", ".join(str(r) for r in result.runs_to_undo_first))])
    ws.append([])

    ws.append([c("Per table", font=xlsx.SECTION_FONT)])
    ws.append(xlsx.header_row(ws, ["Table", "Delete", "Restore", "Already deleted", "Conflicts"], range(1, 5)))
    totals = [0, 0, 0, 0]
    for name, plan in result.tables.items():
        values = [plan.delete, plan.restore, plan.already_deleted, plan.conflicts]
        totals = [a + b for a, b in zip(totals, values)]
        links = [first[(DELETE_SHEET, name)], first[(RESTORE_SHEET, name)], first[NOTICE_SHEET], first[CONFLICT_SHEET]]
        ws.append([label(name)] + [c(v, link=link) if v and link else c(v) for v, link in zip(values, links)])
    ws.append([c("All tables", font=xlsx.LABEL_FONT, border=xlsx.TOTAL_BORDER)]
              + [c(v, font=xlsx.LABEL_FONT, border=xlsx.TOTAL_BORDER) for v in totals])
    ws.append([])

    ws.append([c("Conflicts by kind", font=xlsx.SECTION_FONT)])
    ws.append(xlsx.header_row(ws, ["Kind", "Count"], [1]))
    for kind, meaning in KIND_MEANING.items():
        n = result.notice_count if kind == "ALREADY_DELETED" else result.conflict_counts.get(kind, 0)
        link = first[NOTICE_SHEET] if kind == "ALREADY_DELETED" else first[CONFLICT_SHEET]
        ws.append([label(kind), c(n, link=link) if n and link else c(n), None, None, None, c(meaning)])
    ws.append([])

    if result.xref is not None:
        ws.append([c("Cross-reference (mig_xref) repaired", font=xlsx.SECTION_FONT)])
        ws.append([label("Entries deleted"), c(result.xref.deleted)])
        ws.append([label("Entries restored"), c(result.xref.restored)])
        ws.append([label("Entries to re-check"), c(result.xref.recheck)])
        ws.append([])

    ws.append([c("Sheets in this workbook", font=xlsx.SECTION_FONT)])
    ws.append(xlsx.header_row(ws, ["Sheet", "Rows"], [1]) + [None, None, None,
                                                             c("What it holds", font=xlsx.HEADER_FONT,
                                                               fill=xlsx.HEADER_FILL)])
    for name, titles in sheets.items():
        kind, table = (name, None) if isinstance(name, str) else name
        for title, rows in titles:
            ws.append([c(title, link=title), c(rows), None, None, None, c(SHEET_MEANING[kind].format(table=table))])
    ws.append([])
    ws.append([c("How to resolve conflicts", font=xlsx.SECTION_FONT)])
    for text in (
        "LATER_RUN: roll back the later runs first, newest first (rollback N --execute for each).",
        "DEPENDENT_ROW written by a later run: roll that run back first. Entered in iOPS: re-point or "
        "remove it in iOPS, or keep the migrated rows.",
        "CHANGED_SINCE: decide with the officer whether the edit may be lost; if not, the run stays.",
        "DELETED_SINCE: a restored row would come back; re-create it or keep the run.",
        "Then run the dry run again: rollback --execute refuses while any conflict remains.",
    ):
        ws.append([c("•"), c(text)])


def _verdict(result: "RollbackResult") -> str:
    if result.mode == "executed":
        return "ROLLED BACK"
    return f"{result.conflict_count:,} CONFLICTS" if result.conflict_count else "CLEAN"


def _verdict_text(result: "RollbackResult") -> str:
    if result.mode == "executed":
        return (f"{result.delete_count:,} rows deleted and {result.restore_count:,} restored in one transaction; "
                f"run {result.run.id} is marked rolled back")
    if result.conflict_count:
        return "rollback --execute will refuse until every conflict below is resolved"
    return (f"undoing run {result.run.id} would delete {result.delete_count:,} rows and restore "
            f"{result.restore_count:,}, destroying no later work")


# ---- values -------------------------------------------------------------------------------


def _conflict_values(c: dict) -> list:
    """A conflict (as spooled: ``Conflict.to_json()``) as a row of the Conflicts sheet."""
    if c["kind"] == "DEPENDENT_ROW":
        changes = "\n".join(f"{f['field']} = {_quoted(f['current'])}" for f in c["fields"]) or None
    else:
        changes = _changes_text(c["fields"], "current", "other",
                                "| written:" if c["kind"] == "CHANGED_SINCE" else "| before:")
    return [c["kind"], c["table"], c["row_key"], c["legacy_key"], c["run_action"],
            ", ".join(str(r) for r in c["later_runs"]) or None, c["refers_to"], c["written_by_run"],
            changes, "yes" if c["fields_proven"] else None, c["detail"]]


def _changes_text(fields: list[dict], now: str, other: str, arrow: str) -> str | None:
    if not fields:
        return None
    return "\n".join(f"{f['field']}: {_quoted(f[now])} {arrow} {_quoted(f[other])}" for f in fields)


def _quoted(value: str | None) -> str:
    return "NULL" if value is None else repr(value)


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")

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

from openpyxl.utils import get_column_letter

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
CONFLICT_COLUMNS = ("kind", "record", "table", "row_key", "legacy_key", "run_action", "later_runs", "refers_to",
                    "written_by_run", "fields", "fields_proven", "detail")
# One Delete and one Restore sheet per table: fewer cells per row (a run of 100,000 crimes
# deletes half a million rows, and cells are what a workbook costs), a link per table.
RESTORE_COLUMNS = ("record", "row_key", "legacy_key", "fields_restored", "changes (now -> restored)")
DELETE_COLUMNS = ("record", "row_key", "legacy_key")
#: Column widths of the conflict sheets (by column name): long text wraps, the sheet prints
#: landscape one page wide at a readable size.
CONFLICT_WIDTHS = {"kind": 16, "record": 30, "table": 14, "row_key": 20, "legacy_key": 14, "run_action": 10,
                   "later_runs": 10, "refers_to": 24, "written_by_run": 10, "fields": 44, "fields_proven": 8,
                   "detail": 50}
_WRAPPED_CONFLICT = {CONFLICT_COLUMNS.index(n) for n in ("record", "refers_to", "fields", "detail")}

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


def default_folder(run_id: int, now: dt.datetime | None = None) -> Path:
    """Where ``rollback`` writes its report when not told: a folder of its own per run and per
    moment (``rollback-run3-20261204T183000Z``), so a report never replaces an earlier one."""
    moment = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return Path(f"rollback-run{run_id}-{moment:%Y%m%dT%H%M%SZ}")


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
    widths = {i: CONFLICT_WIDTHS[n] for i, n in enumerate(CONFLICT_COLUMNS)}
    wrapped = {i: {"alignment": xlsx.WRAP_TOP} for i in _WRAPPED_CONFLICT}
    tables = {
        name: xlsx.TableWriter(wb, name, CONFLICT_COLUMNS, taken, fixed_widths=widths, column_styles=wrapped)
        for name in (CONFLICT_SHEET, NOTICE_SHEET)
    }
    for kind, columns, widths in ((RESTORE_SHEET, RESTORE_COLUMNS, {0: 34, 3: 30, 4: 70}),
                                  (DELETE_SHEET, DELETE_COLUMNS, {0: 40})):
        styles = {0: {"alignment": xlsx.WRAP_TOP}, len(columns) - 1: {"alignment": xlsx.WRAP_TOP}}
        for table in TABLES:
            tables[(kind, table)] = xlsx.TableWriter(wb, f"{kind} {table}", columns, taken, fixed_widths=widths,
                                                     column_styles=styles)
    for doc in _documents(result, "conflicts"):
        tables[CONFLICT_SHEET].append(_conflict_values(doc))
    for doc in _documents(result, "notices"):
        tables[NOTICE_SHEET].append(_conflict_values(doc))
    for doc in _documents(result, "restore"):
        fields = doc["fields"]
        tables[(RESTORE_SHEET, doc["table"])].append(
            [_record(doc), doc["row_key"], doc["legacy_key"], ", ".join(f["field"] for f in fields),
             _changes_text(fields, "current", "restored", "->")])
    for doc in _documents(result, "delete"):
        tables[(DELETE_SHEET, doc["table"])].append([_record(doc), doc["row_key"], doc["legacy_key"]])
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


SUMMARY_WIDTHS = [30, 20, 16, 18, 16, 64]


def _summary_sheet(ws, result: "RollbackResult", sheets: dict[str, list[tuple[str, int]]]) -> None:
    run = result.run
    f = xlsx.FormSheet(ws, SUMMARY_WIDTHS)
    c = f.c
    label = lambda text: c(text, font=xlsx.LABEL_FONT)  # noqa: E731
    width = len(SUMMARY_WIDTHS)
    failed = result.conflict_count > 0
    first = {name: (titles[0][0] if titles else None) for name, titles in sheets.items()}
    first.update({name: None for name in [(kind, t) for kind in (DELETE_SHEET, RESTORE_SHEET) for t in TABLES]
                  if name not in first})

    f.append([c(f"{MODE_TITLE.get(result.mode, 'Rollback')} of migration run {run.id}", font=xlsx.TITLE_FONT)],
             height=24, span=(1, width))
    f.text("What undoing the run would delete and restore, and every conflict with work done in iOPS since the "
           "run. Times are UK local time. Blue underlined text links to the sheet it names.")
    f.blank()
    verdict, sentence = _verdict(result), _verdict_text(result)
    row = f.append([c("Result", font=xlsx.SECTION_FONT, alignment=xlsx.MIDDLE),
                    c(verdict, font=xlsx.RESULT_FONT, fill=xlsx.FAIL_FILL if failed else xlsx.PASS_FILL,
                      alignment=xlsx.CENTRE), None,
                    c(sentence, alignment=xlsx.WRAP_MIDDLE)], lines=max(3, f.lines(sentence, 4, width)))
    ws.merged_cells.add(f"B{row}:C{row}")  # the banner: wide enough for "12,345 CONFLICTS"
    ws.merged_cells.add(f"D{row}:{get_column_letter(width)}{row}")
    f.blank()
    for text, value in (
        ("Run", run.id),
        ("Run state", run.state),
        ("Run started (UK time)", run.started_at),
        ("Run finished (UK time)", run.finished_at),
        ("Legacy store of the run", mask_credentials(run.legacy_store)),
        ("Target (iOPS)", mask_credentials(result.target)),
        ("Run by", f"{run.os_user or '?'} on {run.host or '?'}"),
        ("Report made (UK time)", result.finished_at),
    ):
        cells = [label(text), c(value, alignment=xlsx.LEFT) if value is not None else None]
        if isinstance(value, str) and len(value) > SUMMARY_WIDTHS[1]:
            f.append(cells, span=(2, width))  # a long store address: across the sheet, not cut
        else:
            f.append(cells)
    if result.runs_to_undo_first:
        f.append([label("Runs to undo first"), c(", ".join(str(r) for r in result.runs_to_undo_first))])
    f.blank()

    f.append([c("Per table", font=xlsx.SECTION_FONT)])
    f.append(xlsx.header_row(ws, ["Table", "Delete", "Restore", "Already deleted", "Conflicts"], range(1, 5)))
    totals = [0, 0, 0, 0]
    for name, plan in result.tables.items():
        values = [plan.delete, plan.restore, plan.already_deleted, plan.conflicts]
        totals = [a + b for a, b in zip(totals, values)]
        links = [first[(DELETE_SHEET, name)], first[(RESTORE_SHEET, name)], first[NOTICE_SHEET], first[CONFLICT_SHEET]]
        f.append([label(name)] + [c(v, link=link) if v and link else c(v) for v, link in zip(values, links)])
    f.append([c("All tables", font=xlsx.LABEL_FONT, border=xlsx.TOTAL_BORDER)]
             + [c(v, font=xlsx.LABEL_FONT, border=xlsx.TOTAL_BORDER) for v in totals])
    f.blank()

    f.append([c("Conflicts by kind", font=xlsx.SECTION_FONT)])
    f.append(xlsx.header_row(ws, ["Kind", "Count"], [1])
             + [c("What it means", font=xlsx.HEADER_FONT, fill=xlsx.HEADER_FILL, alignment=xlsx.INDENT)],
             span=(3, width))
    for kind, meaning in KIND_MEANING.items():
        n = result.notice_count if kind == "ALREADY_DELETED" else result.conflict_counts.get(kind, 0)
        link = first[NOTICE_SHEET] if kind == "ALREADY_DELETED" else first[CONFLICT_SHEET]
        f.append([c(kind, font=xlsx.LABEL_FONT, alignment=xlsx.TOP),
                  c(n, link=link, alignment=xlsx.TOP) if n and link else c(n, alignment=xlsx.TOP),
                  c(meaning, alignment=xlsx.WRAP_INDENT)],
                 span=(3, width), lines=f.lines(meaning, 3, width))
    f.blank()

    if result.xref is not None:
        f.append([c("Cross-reference (mig_xref) repaired", font=xlsx.SECTION_FONT)])
        f.append([label("Entries deleted"), c(result.xref.deleted)])
        f.append([label("Entries restored"), c(result.xref.restored)])
        f.append([label("Entries to re-check"), c(result.xref.recheck)])
        f.blank()

    f.append([c("Sheets in this workbook", font=xlsx.SECTION_FONT)])
    f.append(xlsx.header_row(ws, ["Sheet", "Rows"], [1])
             + [c("What it holds", font=xlsx.HEADER_FONT, fill=xlsx.HEADER_FILL, alignment=xlsx.INDENT)],
             span=(3, width))
    for name, titles in sheets.items():
        kind, table = (name, None) if isinstance(name, str) else name
        for title, rows in titles:
            meaning = SHEET_MEANING[kind].format(table=table)
            f.append([c(title, link=title, alignment=xlsx.TOP), c(rows, alignment=xlsx.TOP),
                      c(meaning, alignment=xlsx.WRAP_INDENT)], span=(3, width),
                     lines=f.lines(meaning, 3, width))
    f.blank()
    f.append([c("How to resolve conflicts", font=xlsx.SECTION_FONT)])
    for text in (
        "LATER_RUN: roll back the later runs first, newest first (rollback N --execute for each).",
        "DEPENDENT_ROW written by a later run: roll that run back first. Entered in iOPS: re-point or "
        "remove it in iOPS, or keep the migrated rows.",
        "CHANGED_SINCE: decide with the officer whether the edit may be lost; if not, the run stays.",
        "DELETED_SINCE: a restored row would come back; re-create it or keep the run.",
        "Then run the dry run again: rollback --execute refuses while any conflict remains.",
    ):
        f.text(text, column=2, lead=[c("•", alignment=xlsx.TOP)])


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


def _record(doc: dict) -> str | None:
    """The row as a person names it (crime CR/…, person NOM_ID n (NAME)) when the analysis
    names it; else its legacy key; else its table and key."""
    return doc.get("record") or doc.get("legacy_key") or f"{doc['table']} {doc['row_key']}"


def _conflict_values(c: dict) -> list:
    """A conflict (as spooled: ``Conflict.to_json()``) as a row of the Conflicts sheet."""
    if c["kind"] == "DEPENDENT_ROW":
        changes = "\n".join(f"{f['field']} = {_quoted(f['current'])}" for f in c["fields"]) or None
    else:
        changes = _changes_text(c["fields"], "current", "other",
                                "| written:" if c["kind"] == "CHANGED_SINCE" else "| before:")
    return [c["kind"], _record(c), c["table"], c["row_key"], c["legacy_key"], c["run_action"],
            ", ".join(str(r) for r in c["later_runs"]) or None, c.get("refers_to_record") or c["refers_to"],
            c["written_by_run"], changes, "yes" if c["fields_proven"] else None, c["detail"]]


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

"""The reconciler's four exports (reconciliation.md, Exports): CSV, CSV, JSON and the auditors' workbook.

``write_reconciliation_reports`` renders a :class:`reconcile.model.ReconResult`; it reads no
store. The discrepancies are streamed once — each row goes to ``discrepancies.csv`` and to
the workbook as it arrives — so a million rows need no more memory than ten.

All four files are one result: they are staged and published together by ``core.publish``
(a reader, even after a ``kill -9``, finds the old set or the new set, never a mix; a failure
leaves the old set as it was and nothing half-written). They are created readable by the owner
only (0600): they hold personal data.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from openpyxl.chart import LineChart, Reference
from openpyxl.formatting.rule import CellIsRule
from openpyxl.utils import get_column_letter

from core.digest import text_fingerprint
from core.errors import Opus2IopsError
from core.schema import as_utc
from reconcile.model import CATEGORIES, DISCREPANCY_COLUMNS, ENTITIES, STATS_COLUMNS, Discrepancy, ReconResult
from reports import xlsx
from core.publish import SETS, ReportSet
from reports.safe import mask_credentials, neutralise

#: Report key -> file name. ``summary.json`` is renamed into place last: it is the index.
FILE_NAMES = {
    "discrepancies": "discrepancies.csv",
    "crime_stats": "crime_stats.csv",
    "workbook": "reconciliation.xlsx",
    "summary": "summary.json",
}
FILE_MODE = 0o600
assert tuple(FILE_NAMES.values()) == SETS["reconciliation"]  # the index (summary.json) last

STATS_SHEET = "Crime statistics"
MONTHLY_SHEET = "Monthly totals"
RUN_SHEET = "Run information"

#: Fields whose values are sensitive text: only ever shown as a fingerprint (reconciliation.md).
SENSITIVE_FIELDS = frozenset({"intel_text"})
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{12} len=\d+")
#: The legacy intelligence-text column named in a reject value, ``INT_TEXT=…``.
_SENSITIVE_PREFIX = re.compile(r"\s*(?:INT_TEXT|intel_text)\s*=", re.IGNORECASE)

CATEGORY_MEANING = {
    "MISSING": "live in OPUS, no counterpart in iOPS (detail: the tool's reject reason when known)",
    "ALTERED": "counterpart found, but a field differs from what the mapping says (one row per field)",
    "DUPLICATE": "a surplus iOPS record carrying the same legacy key as another",
    "UNEXPECTED": "iOPS record whose legacy key matches no live OPUS record",
    "PROBABLE_MATCH": "unkeyed iOPS record paired by similarity (AUTO counts as present; REVIEW needs a person)",
}

_COL = {name: i for i, name in enumerate(DISCREPANCY_COLUMNS)}
_ALTERED_STYLES = {
    _COL["expected_value"]: {"fill": xlsx.EXPECTED_FILL},
    _COL["new_value"]: {"fill": xlsx.DIFFERS_FILL},
}


class ReportInconsistent(Opus2IopsError):
    """The result contradicts itself (totals vs rows): publishing it would mislead an auditor."""


def write_reconciliation_reports(result: ReconResult, out_dir: Path, *,
                                 max_sheet_rows: int = xlsx.MAX_SHEET_ROWS) -> dict[str, Path]:
    """Write the four exports together into ``out_dir``; return their paths by key.

    Keys: ``discrepancies``, ``crime_stats``, ``summary``, ``workbook``. Also records them
    in ``result.out_dir`` and ``result.report_paths``. Raises ``OutputError`` when the folder
    cannot be created or written, and ``ReportInconsistent`` when the counts in
    ``result.totals`` differ from the discrepancy rows (nothing is published then).
    ``max_sheet_rows``: rows per workbook sheet, header included (Excel's limit by default; a
    longer table continues on numbered sheets).
    """
    reports = ReconciliationReports(out_dir, max_sheet_rows=max_sheet_rows)
    try:
        reports.add(result.discrepancies)
    except BaseException:
        reports.discard()
        raise
    return reports.finish(result)


class ReconciliationReports:
    """The four exports written in steps: ``add`` discrepancy rows (in the spool's order; may
    be called again with the rows that follow), then ``finish`` with the result. Until
    ``finish`` publishes them the files exist only under temporary names; ``discard`` removes
    them. The reconciler adds the crime rows while its later passes still run.
    ``max_sheet_rows``: as for :func:`write_reconciliation_reports`."""

    def __init__(self, out_dir: Path, *, max_sheet_rows: int = xlsx.MAX_SHEET_ROWS) -> None:
        self.out_dir = Path(out_dir)
        self._max_sheet_rows = max_sheet_rows
        self._staging = ReportSet(self.out_dir, "reconciliation", what="the reports")
        self._csv_file = None
        self._wb = xlsx.new_workbook()
        self._summary_ws = self._wb.create_sheet(xlsx.SUMMARY_TITLE)
        self._summary_ws.sheet_view.tabSelected = True  # the sheet the workbook opens on
        self._taken = {xlsx.SUMMARY_TITLE, STATS_SHEET, MONTHLY_SHEET, RUN_SHEET}
        self._tables: dict[tuple[str, str], xlsx.TableWriter] = {}
        self._counts: collections.Counter = collections.Counter()
        self._stats: tuple | None = None  # (the rows, their sheets, the monthly sheet) once written
        try:
            with self._output_errors():
                self._csv_file = self._staging.create(FILE_NAMES["discrepancies"])
                self._csv_file.write("\ufeff")  # the byte-order mark: Excel then reads UTF-8 (ZOË, not ZOÃ‹)
                self._csv = csv.writer(self._csv_file, lineterminator="\r\n")
                self._csv.writerow(DISCREPANCY_COLUMNS)
        except BaseException:
            self.discard()
            raise

    @contextlib.contextmanager
    def _output_errors(self):
        """A file that cannot be written is ``OutputError``: one line, the folder and the reason."""
        with self._staging.errors():
            yield

    def add(self, discrepancies: Iterable[Discrepancy], stop: Callable[[], bool] | None = None) -> None:
        """Each row to the CSV and to its entity+category table (created as groups appear).
        ``stop``: asked every thousand rows; True abandons the writing (the reports will be
        discarded)."""
        score_col = _COL["score"]
        tables, counts = self._tables, self._counts
        with self._output_errors():
            for n, d in enumerate(discrepancies):
                if stop is not None and n % 1000 == 0 and stop():
                    return
                d = guard_sensitive(d)
                values = d.as_row()
                self._csv.writerow(csv_row(values))
                group = (d.entity, d.category)
                counts[group] += 1
                table = tables.get(group)
                if table is None:
                    table = tables[group] = xlsx.TableWriter(
                        self._wb, f"{d.entity} {d.category}", DISCREPANCY_COLUMNS, self._taken,
                        column_styles={score_col: {"number_format": "0.0"}}, max_sheet_rows=self._max_sheet_rows)
                table.append(values, _ALTERED_STYLES if d.category == "ALTERED" else None)

    def add_stats(self, stats: list) -> None:
        """Write the crime statistics (``crime_stats.csv`` and their two sheets) now, before
        ``finish``; ``finish`` checks that the result's statistics are these."""
        with self._output_errors(), self._staging.create(FILE_NAMES["crime_stats"]) as out:
            self._stats = (list(stats), *_write_stats(stats, out, self._wb, self._max_sheet_rows))

    def finish(self, result: ReconResult) -> dict[str, Path]:
        """Write the rest, check it against ``result`` and publish the four files together."""
        wb, staging, out_dir, counts = self._wb, self._staging, self.out_dir, self._counts
        try:
            with self._output_errors():
                self._csv_file.close()
                tables = self._tables
                group_sheets = {group: tables[group].close() for group in sorted(tables, key=lambda g: _group_key(*g))}
                _check_counts(result, counts)
                if self._stats is None:
                    self.add_stats(result.stats)
                written, stats_sheets, monthly = self._stats
                if list(result.stats) != written:
                    raise ReportInconsistent("reports not written: the crime statistics changed after they were "
                                             "written into the reports")
                run_info_sheet = _run_information_sheet(wb, result)
                sheets_listed = _sheet_index(group_sheets, stats_sheets, monthly, run_info_sheet)
                _summary_sheet(self._summary_ws, result, counts, group_sheets, sheets_listed)
                xlsx.order_sheets(wb, [xlsx.SUMMARY_TITLE] + [title for title, _, _ in sheets_listed])
                with staging.create(FILE_NAMES["workbook"], binary=True) as out:
                    xlsx.save(wb, out)
                with staging.create(FILE_NAMES["summary"]) as out:
                    json.dump(_summary_document(result, counts), out, indent=2, ensure_ascii=False)
                    out.write("\n")
                published = staging.publish()
                paths = {key: published[name] for key, name in FILE_NAMES.items()}
        except BaseException:
            self.discard()
            raise
        result.out_dir = out_dir
        result.report_paths = dict(paths)
        return paths

    def discard(self) -> None:
        """Remove every temporary file (nothing was published)."""
        if self._csv_file is not None:
            with contextlib.suppress(OSError):
                self._csv_file.close()
        self._staging.discard()
        # Cleaning up after a failure must not hide the failure (a full disk) behind its own.
        with contextlib.suppress(Exception):
            xlsx.discard_spools(self._wb)


# ---- discrepancies ------------------------------------------------------------------------
def guard_sensitive(d: Discrepancy) -> Discrepancy:
    """Defence in depth: intelligence text that is not already a fingerprint becomes one.

    Covers an ``intel_text`` field difference, and a reject shown as ``INT_TEXT=value`` (the
    reconciler's form for the offending legacy value of a MISSING record).
    """
    sensitive_field = (d.field or "").casefold() in SENSITIVE_FIELDS
    changes = {}
    for name in ("legacy_value", "expected_value", "new_value"):
        value = getattr(d, name)
        if value is None:
            continue
        if sensitive_field and not _FINGERPRINT.fullmatch(value):
            changes[name] = text_fingerprint(value)
        elif (prefix := _SENSITIVE_PREFIX.match(value)) and value[prefix.end():] \
                and not _FINGERPRINT.fullmatch(value[prefix.end():]):
            changes[name] = prefix.group() + text_fingerprint(value[prefix.end():])
    return dataclasses.replace(d, **changes) if changes else d


def format_score(score: float | None) -> str:
    return "" if score is None else f"{score:.1f}"


_SCORE = DISCREPANCY_COLUMNS.index("score")


def csv_row(values: Sequence) -> list:
    """A discrepancy's values (``Discrepancy.as_row()``) as CSV cells."""
    row = ["" if value is None else neutralise(value if type(value) is str else str(value)) for value in values]
    if values[_SCORE] is not None:
        row[_SCORE] = format_score(values[_SCORE])
    return row


def _group_key(entity: str, category: str) -> tuple:
    e = ENTITIES.index(entity) if entity in ENTITIES else len(ENTITIES)
    c = CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES)
    return (e, entity, c, category)


def _check_counts(result: ReconResult, counts: collections.Counter) -> None:
    wrong = []
    entities = set(result.totals) | {e for e, _ in counts}
    for entity in sorted(entities):
        totals = result.totals.get(entity)
        categories = set(totals.categories if totals else ()) | {c for e, c in counts if e == entity}
        for category in sorted(categories):
            said = totals.categories.get(category, 0) if totals else 0
            rows = counts.get((entity, category), 0)
            if said != rows:
                wrong.append(f"{entity} {category}: totals say {said}, rows {rows}")
    if wrong:
        raise ReportInconsistent(
            "reports not written: the reconciliation totals disagree with its discrepancy rows ("
            + "; ".join(wrong[:5]) + (" …" if len(wrong) > 5 else "") + ")")


# ---- crime statistics ---------------------------------------------------------------------
def month_start(month: str) -> dt.datetime | None:
    """'2019-04' -> 2019-04-01 00:00 (a real date for Excel); None when not a month."""
    try:
        year, mon = month.split("-")
        return dt.datetime(int(year), int(mon), 1)
    except (ValueError, AttributeError):
        return None


def _delta_rules(ws, column_letter: str, last_row: int) -> None:
    """Red for fewer crimes in iOPS than in OPUS, amber for more: both are differences."""
    if last_row < 2:
        return
    cells = f"{column_letter}2:{column_letter}{last_row}"
    ws.conditional_formatting.add(cells, CellIsRule(operator="lessThan", formula=["0"],
                                                    fill=xlsx.NEGATIVE_FILL, font=xlsx.NEGATIVE_FONT))
    ws.conditional_formatting.add(cells, CellIsRule(operator="greaterThan", formula=["0"],
                                                    fill=xlsx.POSITIVE_FILL, font=xlsx.POSITIVE_FONT))


def _write_stats(stats: Iterable, out, wb, max_sheet_rows: int):
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATS_COLUMNS)
    month_col = STATS_COLUMNS.index("month")
    table = xlsx.TableWriter(wb, STATS_SHEET, STATS_COLUMNS, set(),
                             column_styles={month_col: {"number_format": xlsx.MONTH_FORMAT, "alignment": xlsx.LEFT}},
                             fixed_widths={month_col: 10}, max_sheet_rows=max_sheet_rows)
    monthly: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for stat in stats:
        row = stat.as_row()
        writer.writerow([neutralise(v) if isinstance(v, str) else v for v in row])
        month = month_start(stat.month)
        table.append((month if month else stat.month,) + tuple(row[1:]))
        sums = monthly[stat.month]
        sums[0] += stat.legacy_count
        sums[1] += stat.new_count
        sums[2] += stat.legacy_no_location
        sums[3] += stat.new_no_location
    stats_sheets = table.close(always=True)
    delta_letter = get_column_letter(STATS_COLUMNS.index("delta") + 1)
    for title, rows in stats_sheets:
        _delta_rules(wb[title], delta_letter, rows + 1)
    return stats_sheets, _monthly_sheet(wb, monthly)


MONTHLY_COLUMNS = ("month", "legacy (OPUS)", "new (iOPS)", "delta", "legacy no location", "new no location")


def _monthly_sheet(wb, monthly: dict[str, list[int]]) -> list[tuple[str, int]]:
    """Crimes per month over all districts and groups, and the chart of OPUS vs iOPS."""
    table = xlsx.TableWriter(wb, MONTHLY_SHEET, MONTHLY_COLUMNS, set(),
                             column_styles={0: {"number_format": xlsx.MONTH_FORMAT, "alignment": xlsx.LEFT}},
                             fixed_widths={0: 10})
    for month in sorted(monthly):
        legacy, new, legacy_nl, new_nl = monthly[month]
        table.append((month_start(month) or month, legacy, new, new - legacy, legacy_nl, new_nl))
    sheets = table.close(always=True)
    title, rows = sheets[0]
    ws = wb[title]
    _delta_rules(ws, "D", rows + 1)
    if rows:
        chart = LineChart()
        chart.title = "Crimes recorded per month: OPUS vs iOPS"
        chart.y_axis.title = "crimes"
        chart.y_axis.scaling.min = 0  # counts from zero: a cut axis would make small gaps look dramatic
        chart.x_axis.title = "month"
        chart.x_axis.number_format = xlsx.MONTH_FORMAT
        # openpyxl 3.1 marks axes deleted by default: Excel would draw no labels.
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        chart.height, chart.width = 9, 22
        chart.add_data(Reference(ws, min_col=2, max_col=3, min_row=1, max_row=rows + 1), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=rows + 1))
        for series in chart.series:
            series.smooth = False  # counts per month: straight segments, no invented curve
        chart.legend.position = "b"
        ws.add_chart(chart, "J2")
    return sheets


# ---- run information ----------------------------------------------------------------------
def iso_utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def _duration(result: ReconResult) -> float | None:
    if result.started_at is None or result.finished_at is None:
        return None
    return round((as_utc(result.finished_at) - as_utc(result.started_at)).total_seconds(), 3)


def _thresholds_text(thresholds: dict) -> str:
    parts = []
    if "auto" in thresholds:
        parts.append(f"AUTO at score ≥ {thresholds['auto']:g}")
    if "review" in thresholds:
        parts.append(f"REVIEW at score ≥ {thresholds['review']:g}")
    if "fail" in thresholds:
        parts.append(f"FAIL above {thresholds['fail']:g} discrepancies")
    parts += [f"{k} = {v:g}" for k, v in thresholds.items() if k not in ("auto", "review", "fail")]
    return "; ".join(parts)


def _run_information_sheet(wb, result: ReconResult) -> str:
    ws = wb.create_sheet(RUN_SHEET)
    xlsx.set_widths(ws, [36, 90, 4, 12])
    xlsx.print_layout(ws, title_rows=None)
    c = lambda v, **kw: xlsx.cell(ws, v, **kw)  # noqa: E731
    rows: list[tuple[str, Any]] = [
        ("Legacy store (OPUS)", mask_credentials(result.legacy_url)),
        ("New store (iOPS)", mask_credentials(result.target_url)),
        ("Started (UTC)", naive(result.started_at)),
        ("Finished (UTC)", naive(result.finished_at)),
        ("Duration (seconds)", _duration(result)),
        ("Tool version", f"opus2iops {result.tool_version}"),
        ("Mapping digest (code tables used)", result.mapping_digest),
    ]
    rows += [(f"Threshold: {key}", value) for key, value in result.thresholds.items()]
    rows += [
        ("Discrepancy rows", result.discrepancy_count),
        ("Counted against the failure threshold", result.counted_failures),
        ("Overall result", "FAIL" if result.failed else "PASS"),
    ]
    rows += [(f"Report file ({key})", name) for key, name in FILE_NAMES.items()]

    # Heights before rows: write-only rows go to disk as they are appended.
    ws.row_dimensions[1].height = 24
    first_note = 3 + len(rows) + 2
    for offset, note in enumerate(NOTES):
        ws.row_dimensions[first_note + offset].height = xlsx.LINE_HEIGHT * (1 + len(note) // 110)

    ws.append([c("Run information", font=xlsx.TITLE_FONT), None, None, xlsx.back_link(ws)])
    ws.append([])
    for label_text, value in rows:
        ws.append([c(label_text, font=xlsx.LABEL_FONT),
                   c(value, alignment=xlsx.LEFT) if value is not None else None])
    ws.append([])
    ws.append([c("Notes", font=xlsx.SECTION_FONT)])
    for note in NOTES:
        ws.append([None, c(note, alignment=xlsx.WRAP)])
    return RUN_SHEET


def naive(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else xlsx.naive_utc(as_utc(moment))


NOTES = (
    "Times are UTC. Months in the crime statistics are months of recorded_at in UK local time (mapping.md).",
    "Intelligence text never appears in these reports: an intel_text difference shows a SHA-256 prefix "
    "and the length of each side.",
    "A value starting with ' was text that a spreadsheet would otherwise run as a formula "
    "(it began with = + - @, a tab or a carriage return); the ' is not part of the data.",
    "A character that is invisible or would reorder the text on screen (a NUL, an escape, a right-to-left "
    "override, ...) is shown by its code, e.g. \\x00 or \\u202e; tabs and line breaks are kept.",
    "Passwords in store addresses are masked as ***.",
    "discrepancies.csv holds every row; a table longer than Excel's 1,048,576 rows continues on "
    "sheets numbered (2), (3), …",
)


# ---- the Summary sheet --------------------------------------------------------------------
def _sheet_index(group_sheets, stats_sheets, monthly_sheets, run_info_sheet):
    """Every sheet after the Summary, in workbook order: (title, data rows or None, what it holds)."""
    listed = []
    for (entity, category), sheets in group_sheets.items():
        for title, rows in sheets:
            listed.append((title, rows, f"{entity}: {CATEGORY_MEANING.get(category, category)}"))
    for title, rows in stats_sheets:
        listed.append((title, rows, "crimes per month × district × offence group, OPUS vs iOPS"))
    for title, rows in monthly_sheets:
        listed.append((title, rows, "crimes per month over all districts, with the chart"))
    listed.append((run_info_sheet, None, "stores, times, thresholds, tool version, mapping digest"))
    return listed


def _entities_in_order(result: ReconResult, counts) -> list[str]:
    names = set(result.totals) | {e for e, _ in counts}
    return sorted(names, key=lambda e: (ENTITIES.index(e) if e in ENTITIES else len(ENTITIES), e))


def _categories_in_order(result: ReconResult, counts) -> list[str]:
    extra = {c for t in result.totals.values() for c in t.categories} | {c for _, c in counts}
    return list(CATEGORIES) + sorted(extra - set(CATEGORIES))


TOTAL_FIELDS = (
    ("legacy_total", "Legacy live"),
    ("legacy_excluded", "Legacy deleted"),
    ("new_total", "New total"),
    ("matched_keyed", "Matched by key"),
    ("matched_auto", "Matched (AUTO)"),
    ("new_in_iops", "New in iOPS"),
)
#: After the categories: MISSING records the mapping itself rejects (known, not failures), and
#: what is left to count against the failure threshold.
EXPLAINED_HEADERS = ("MISSING explained", "Counted")


def explained_missing(totals) -> int:
    return getattr(totals, "missing_explained", 0) if totals else 0


def counted(totals, per_category: dict[str, int]) -> int:
    """An entity's share of ``ReconResult.counted_failures``: not PROBABLE_MATCH, not explained MISSING."""
    return sum(n for c, n in per_category.items() if c != "PROBABLE_MATCH") - explained_missing(totals)


NOT_COUNTED = "PROBABLE_MATCH pairs and MISSING records the mapping itself rejects (reason in detail) are not counted"


def _summary_sheet(ws, result: ReconResult, counts, group_sheets, sheets_listed) -> None:
    categories = _categories_in_order(result, counts)
    header = (["Entity"] + [name for _, name in TOTAL_FIELDS] + categories + ["Discrepancies"]
              + list(EXPLAINED_HEADERS))
    xlsx.set_widths(ws, [30, 24] + [max(15, len(name) + 3) for name in header[2:]])
    xlsx.print_layout(ws, title_rows=None)
    c = lambda v, **kw: xlsx.cell(ws, v, **kw)  # noqa: E731
    label = lambda text: c(text, font=xlsx.LABEL_FONT)  # noqa: E731
    failed = result.failed

    # Row heights before the rows: write-only rows go to disk as they are appended.
    ws.row_dimensions[1].height = 24
    ws.row_dimensions[4].height = 36
    ws.append([c("Reconciliation of OPUS with iOPS", font=xlsx.TITLE_FONT)])
    ws.append([c("Every live OPUS record compared with the iOPS store, record by record and in the "
                 "crime statistics. Blue underlined text links to the sheet it names.")])
    ws.append([])
    ws.append([c("Overall result", font=xlsx.LABEL_FONT, alignment=xlsx.MIDDLE),
               c("FAIL" if failed else "PASS", font=xlsx.RESULT_FONT,
                 fill=xlsx.FAIL_FILL if failed else xlsx.PASS_FILL, alignment=xlsx.CENTRE),
               c(f"  {result.counted_failures} discrepancies counted against a failure threshold of "
                 f"{result.thresholds.get('fail', 0):g} ({NOT_COUNTED})", alignment=xlsx.MIDDLE)])
    ws.append([])
    for text, value in (
        ("Legacy store (OPUS)", mask_credentials(result.legacy_url)),
        ("New store (iOPS)", mask_credentials(result.target_url)),
        ("Started (UTC)", naive(result.started_at)),
        ("Finished (UTC)", naive(result.finished_at)),
        ("Tool version", f"opus2iops {result.tool_version}"),
        ("Mapping digest", result.mapping_digest),
        ("Thresholds", _thresholds_text(result.thresholds)),
    ):
        ws.append([label(text), c(value, alignment=xlsx.LEFT) if isinstance(value, dt.datetime) else c(value)])
    ws.append([c(RUN_SHEET, link=RUN_SHEET)])
    ws.append([])

    # Totals by entity × category; a count links to the sheet that lists its rows.
    ws.append([c("Totals by entity and category", font=xlsx.SECTION_FONT)])
    ws.append(xlsx.header_row(ws, header, range(1, len(header))))
    sums = [0] * (len(header) - 1)
    for entity in _entities_in_order(result, counts):
        totals = result.totals.get(entity)
        values = [getattr(totals, attr, 0) if totals else 0 for attr, _ in TOTAL_FIELDS]
        cat_counts = [counts.get((entity, category), 0) for category in categories]
        per_category = dict(zip(categories, cat_counts))
        tail = [sum(cat_counts), explained_missing(totals), counted(totals, per_category)]
        values += cat_counts + tail
        sums = [a + b for a, b in zip(sums, values)]
        row = [label(entity)] + [c(v) for v in values[: len(TOTAL_FIELDS)]]
        for category, n in zip(categories, cat_counts):
            sheets = group_sheets.get((entity, category))
            row.append(c(n, link=sheets[0][0]) if n and sheets else c(n))
        row += [c(tail[0], font=xlsx.LABEL_FONT), c(tail[1]), c(tail[2], font=xlsx.LABEL_FONT)]
        ws.append(row)
    ws.append([c("All entities", font=xlsx.LABEL_FONT, border=xlsx.TOTAL_BORDER)]
              + [c(v, font=xlsx.LABEL_FONT, border=xlsx.TOTAL_BORDER) for v in sums])
    ws.append([])

    # Crime statistics at a glance.
    legacy = sum(s.legacy_count for s in result.stats)
    new = sum(s.new_count for s in result.stats)
    differing = sum(1 for s in result.stats if s.delta)
    months = {s.month for s in result.stats if s.delta}
    ws.append([c("Crime statistics (Home Office return)", font=xlsx.SECTION_FONT)])
    ws.append(xlsx.header_row(ws, ["", "OPUS", "iOPS", "Delta", "Cells differing", "Months differing"], range(1, 6)))
    ws.append([label("Crimes counted"), c(legacy), c(new),
               c(new - legacy, font=xlsx.NEGATIVE_FONT if new < legacy else None),
               c(differing), c(len(months))])
    ws.append([c(STATS_SHEET, link=STATS_SHEET), c(MONTHLY_SHEET, link=MONTHLY_SHEET)])
    ws.append([])

    # Every sheet, linked.
    ws.append([c("Sheets in this workbook", font=xlsx.SECTION_FONT)])
    head = xlsx.header_row(ws, ["Sheet", "Rows"], [1])
    ws.append(head + [c("What it holds", font=xlsx.HEADER_FONT, fill=xlsx.HEADER_FILL, alignment=xlsx.INDENT)])
    for title, rows, meaning in sheets_listed:
        ws.append([c(title, link=title), c(rows) if rows is not None else None,
                   c(meaning, alignment=xlsx.INDENT)])
    ws.append([])

    ws.append([c("How to read the colours", font=xlsx.SECTION_FONT)])
    ws.append([c("expected_value", fill=xlsx.EXPECTED_FILL),
               c("ALTERED rows: what the mapping says the field should hold")])
    ws.append([c("new_value", fill=xlsx.DIFFERS_FILL), c("ALTERED rows: what iOPS holds instead")])
    ws.append([c("-12", fill=xlsx.NEGATIVE_FILL, font=xlsx.NEGATIVE_FONT),
               c("delta: fewer crimes in iOPS than in OPUS")])
    ws.append([c("+3", fill=xlsx.POSITIVE_FILL, font=xlsx.POSITIVE_FONT),
               c("delta: more crimes in iOPS than in OPUS")])
    ws.append([c("'=…"), c("text that began with = + - @, tab or CR: the leading ' stops a spreadsheet "
                          "running it as a formula")])


# ---- summary.json -------------------------------------------------------------------------
def _summary_document(result: ReconResult, counts) -> dict[str, Any]:
    categories = _categories_in_order(result, counts)
    entities = {}
    for entity in _entities_in_order(result, counts):
        totals = result.totals.get(entity)
        per_category = {category: counts.get((entity, category), 0) for category in categories}
        entities[entity] = {
            **{attr: (getattr(totals, attr, 0) if totals else 0) for attr, _ in TOTAL_FIELDS},
            "categories": per_category,
            "discrepancies": sum(per_category.values()),
            "missing_explained": explained_missing(totals),
            "counted_failures": counted(totals, per_category),
        }
    legacy = sum(s.legacy_count for s in result.stats)
    new = sum(s.new_count for s in result.stats)
    return {
        "result": "FAIL" if result.failed else "PASS",
        "exit_code": result.exit_code,
        "discrepancies": sum(counts.values()),
        "counted_failures": result.counted_failures,
        "categories": {category: sum(counts.get((e, category), 0) for e in entities) for category in categories},
        "entities": entities,
        "crime_stats": {
            "rows": len(result.stats),
            "legacy_count": legacy,
            "new_count": new,
            "delta": new - legacy,
            "rows_differing": sum(1 for s in result.stats if s.delta),
        },
        "thresholds": dict(result.thresholds),
        "started_at": iso_utc(result.started_at),
        "finished_at": iso_utc(result.finished_at),
        "duration_seconds": _duration(result),
        "tool_version": result.tool_version,
        "mapping_digest": result.mapping_digest,
        "legacy_url": mask_credentials(result.legacy_url),
        "target_url": mask_credentials(result.target_url),
        "files": dict(FILE_NAMES),
    }

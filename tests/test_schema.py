"""Both schemas create on every engine and round-trip rows; instants stay UTC-aware."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core import db, schema
from core.errors import ForeignSchemaError

LONDON = ZoneInfo("Europe/London")


def test_legacy_schema_round_trip(backend, make_store):
    url = make_store(backend, "legacy")
    engine = sa.create_engine(url)
    schema.create_legacy_schema(engine)
    tables = schema.legacy_tables(engine)
    row = {c.name: None for c in tables["crime"].columns}
    row.update(crime_no="CR/004512/19", rec_date="31/03/2019", rec_time="0130", grid_e=384000,
               mo_text="MÜLLER said \"no\";\nline two", del_flag="N")
    with engine.begin() as conn:
        conn.execute(tables["crime"].insert(), [row])
        conn.execute(tables["nominal"].insert(), [{"nom_id": 70031, "surname": "NÍ BHRIAIN", "forenames": ""}])
    with engine.connect() as conn:
        got = conn.execute(sa.select(tables["crime"])).mappings().one()
        nom = conn.execute(sa.select(tables["nominal"])).mappings().one()
    assert got["crime_no"] == "CR/004512/19" and got["grid_e"] == 384000
    assert got["mo_text"] == row["mo_text"]
    assert nom["surname"] == "NÍ BHRIAIN"
    engine.dispose()


def test_legacy_store_opens_read_only(backend, make_store):
    url = make_store(backend, "legacy")
    engine = sa.create_engine(url)
    schema.create_legacy_schema(engine)
    engine.dispose()
    ro = db.open_legacy(url)
    crime = schema.legacy_tables(ro)["crime"]
    with pytest.raises(sa.exc.DBAPIError):
        with ro.begin() as conn:
            conn.execute(crime.insert(), [{"crime_no": "CR/000001/19"}])
    with ro.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(crime)).scalar() == 0
    ro.dispose()


def test_target_schema_round_trips_a_bst_instant(backend, make_store):
    url = make_store(backend, "target")
    engine = db.open_target(url)
    schema.create_target_schema(engine)
    # 01:30 BST on the last Sunday of March 2019 is 00:30 UTC.
    local = dt.datetime(2019, 3, 31, 1, 30, tzinfo=LONDON)
    instant = local.astimezone(dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(schema.person.insert(), [{
            "person_id": "00000000-0000-0000-0000-000000000001", "legacy_nominal_id": 1,
            "family_name": "O'BRIEN", "given_names": None, "date_of_birth": dt.date(1980, 2, 29),
            "sex": "MALE", "pnc_id": None, "ethnicity_code": None, "source_system": "OPUS",
            "created_at": local, "updated_at": instant,
        }])
        conn.execute(schema.location.insert(), [{"location_id": "l1", "latitude": 53.480712, "longitude": -2.236898}])
    with engine.connect() as conn:
        got = conn.execute(sa.select(schema.person)).mappings().one()
        loc = conn.execute(sa.select(schema.location)).mappings().one()
    assert got["created_at"] == instant and got["created_at"].utcoffset() == dt.timedelta(0)
    assert got["updated_at"] == instant
    assert got["date_of_birth"] == dt.date(1980, 2, 29)
    assert abs(loc["latitude"] - 53.480712) < 1e-9 and abs(loc["longitude"] + 2.236898) < 1e-9
    # Creating again is a no-op, not an error.
    schema.create_target_schema(engine)
    engine.dispose()


def test_foreign_target_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'foreign.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE crime (id INTEGER PRIMARY KEY, name TEXT)"))
    with pytest.raises(ForeignSchemaError, match="crime"):
        schema.create_target_schema(engine)


def test_naive_datetime_is_refused(tmp_path):
    engine = db.open_target(f"sqlite:///{tmp_path / 't.db'}")
    schema.create_target_schema(engine)
    with pytest.raises(sa.exc.StatementError):
        with engine.begin() as conn:
            conn.execute(schema.mig_run.insert(), [{"state": "running", "started_at": dt.datetime(2019, 1, 1),
                                                    "legacy_url": "x"}])


# --- core.db.bulk_insert: the migration's write path (COPY on PostgreSQL, executemany elsewhere)

def _person(n: int, **over) -> dict:
    row = {"person_id": f"p-{n:04d}", "legacy_nominal_id": n, "family_name": f"O'BRIEN-{n}",
           "given_names": None if n % 2 else "SEÁN \"JACK\"\tTAB", "date_of_birth": dt.date(1980, 2, 29),
           "sex": "MALE", "pnc_id": None, "ethnicity_code": "W1", "source_system": "OPUS",
           "created_at": dt.datetime(2019, 3, 31, 1, 30, tzinfo=LONDON),
           "updated_at": dt.datetime(2019, 10, 27, 1, 30, tzinfo=dt.timezone.utc)}
    row.update(over)
    return row


def test_bulk_insert_stores_what_an_ordinary_insert_stores(backend, make_store):
    from core.digest import row_digest

    url = make_store(backend, "target")
    engine = db.open_target(url)
    schema.create_target_schema(engine)
    rows = [_person(n) for n in range(1, 301)]
    with engine.begin() as conn:
        db.bulk_insert(conn, schema.person, rows[:150])
        conn.execute(schema.person.insert(), rows[150:])
        db.bulk_insert(conn, schema.location, [{"location_id": "l1", "address": "1 A ST\\N", "postcode": None,
                                                "easting": 384000, "northing": 398000, "latitude": 53.480712,
                                                "longitude": -2.236898, "beat": "", "district_code": "MC"}])
    with engine.connect() as conn:
        got = {r["person_id"]: dict(r) for r in conn.execute(sa.select(schema.person)).mappings()}
        loc = conn.execute(sa.select(schema.location)).mappings().one()
    assert len(got) == 300
    for row in rows:  # both paths give the row back exactly (same canonical digest)
        assert row_digest(got[row["person_id"]]) == row_digest(row), row["person_id"]
    assert got["p-0002"]["given_names"] == "SEÁN \"JACK\"\tTAB" and got["p-0001"]["given_names"] is None
    assert loc["address"] == "1 A ST\\N" and loc["beat"] == "" and loc["postcode"] is None
    engine.dispose()


def test_bulk_insert_failure_is_a_sqlalchemy_error_and_rolls_back(backend, make_store):
    url = make_store(backend, "target")
    engine = db.open_target(url)
    schema.create_target_schema(engine)
    with engine.begin() as conn:
        db.bulk_insert(conn, schema.person, [_person(1)])
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            db.bulk_insert(conn, schema.person, [_person(2), _person(1)])  # duplicate primary key
    with engine.connect() as conn:  # the connection is usable again and nothing of the batch stayed
        ids = conn.execute(sa.select(schema.person.c.person_id)).scalars().all()
    assert ids == ["p-0001"]
    engine.dispose()


# --- UTCDateTime reads the forms another tool may have stored in a SQLite target

@pytest.mark.parametrize("stored", [
    "2019-07-01 12:30:00.000000",  # as this tool (SQLAlchemy) stores an instant
    "2019-07-01 12:30:00", "2019-07-01T12:30", "2019-07-01 12:30:00.5", "0001-01-01 00:00:00", "9999-12-31 23:59:59",
    "2019-07-01 13:30:00+01:00", "2019-07-01T11:30:00Z", "2019-07-01T12:30:00-05:30",  # a zone of its own
    "2019-07-01",  # a date alone: midnight UTC
])
def test_an_instant_stored_as_text_reads_as_the_utc_instant_it_names(stored):
    from sqlalchemy.dialects import sqlite

    process = schema.UTCDateTime().result_processor(sqlite.dialect(), None)
    parsed = dt.datetime.fromisoformat(stored)
    expected = parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed.astimezone(dt.timezone.utc)
    got = process(stored)
    assert got == expected and got.tzinfo is dt.timezone.utc
    assert (got.year, got.month, got.day, got.hour, got.minute, got.microsecond) == \
        (expected.year, expected.month, expected.day, expected.hour, expected.minute, expected.microsecond)


def test_an_unreadable_stored_instant_is_an_error_not_a_guess():
    from sqlalchemy.dialects import sqlite

    process = schema.UTCDateTime().result_processor(sqlite.dialect(), None)
    with pytest.raises(ValueError):
        process("01/07/2019 12:30")


@pytest.mark.parametrize("value", [dt.datetime(2019, 3, 31, 0, 30, 5, 7), dt.datetime(1, 1, 1),
                                   dt.datetime(9999, 12, 31, 23, 59, 59, 999999)])
def test_as_utc_equals_attaching_utc(value):
    assert schema.as_utc(value) == value.replace(tzinfo=dt.timezone.utc)
    assert schema.as_utc(value).tzinfo is dt.timezone.utc
    aware = value.replace(tzinfo=dt.timezone.utc)
    assert schema.as_utc(aware) == aware

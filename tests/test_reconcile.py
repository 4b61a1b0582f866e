"""The reconciler end to end on small hand-written stores: one test per category, tolerance and
rule of reconciliation.md; then generated stores migrated by the engine on every backend pair.

Hand-written cases start from a faithful migration of a small OPUS store (migrate.engine), then
damage the iOPS store with plain SQL the way a faulty migration or a later edit would.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from core.digest import text_fingerprint
from core.errors import StoreUnavailable, UsageError
from main import app
from mappings import ids
from migrate.engine import migrate
from reconcile.model import CATEGORIES, ENTITIES, Discrepancy
from reconcile.run import ReconcileOptions, reconcile
from reconcile.spool import DiscrepancySpool
from reports.reconciliation import write_reconciliation_reports
from tests.opus_fixture import connection_killer, execute, make_legacy

UTC = dt.timezone.utc
SECRET_TEXT = "SUBJECT SEEN DEALING NEAR PICCADILLY GARDENS WITH A BLUE HOLDALL"
LONG_MO = "OFFENDER FORCED REAR DOOR WITH A SCREWDRIVER, SEARCHED ALL ROOMS. " * 6

CRIMES = [
    {"crime_no": "CR/000001/18"},
    {"crime_no": "CR/000002/18", "addr_line": "4  deansgate ", "pcode": "m3 2bw", "grid_e": 383500, "grid_n": 398400},
    {"crime_no": "CR/000003/18", "mo_text": LONG_MO, "rec_date": "16/06/2018"},
    {"crime_no": "CR/000004/18", "del_flag": "Y"},  # excluded
    {"crime_no": "CR/000005/18", "off_code": "NOPE"},  # UNMAPPED_OFFENCE
    {"crime_no": "CR/000006/18", "rec_date": "20/06/2018", "addr_line": "7 WILMSLOW ROAD", "pcode": "M14 5TQ",
     "grid_e": 385200, "grid_n": 395100, "mo_text": "GARAGE ENTERED, LAWNMOWER TAKEN"},
    {"crime_no": " CR/000007/18", "rec_date": "22/06/2018"},  # padded key
]
NOMINALS = [
    {"nom_id": 70001, "surname": "SMITH", "forenames": "JOHN"},
    {"nom_id": 70002, "surname": "JONES, MARY", "forenames": " "},
    {"nom_id": 70003, "del_flag": "Y"},  # excluded
    {"nom_id": 70004, "surname": "   "},  # MISSING_NAME
    {"nom_id": 70005, "surname": "O'BRIEN", "forenames": "SEAN"},
]
LINKS = [
    {"crime_no": "CR/000001/18", "nom_id": 70001, "role": "V"},
    {"crime_no": "CR/000001/18", "nom_id": 70002, "role": "S"},
    {"crime_no": "CR/000001/18", "nom_id": 70004, "role": "W"},  # person rejected → ORPHAN_LINK, not compared
    {"crime_no": "CR/000002/18", "nom_id": 70002, "role": "W"},
    {"crime_no": "CR/000002/18", "nom_id": 70001, "role": "Z"},  # INVALID_ROLE → MISSING, explained
    {"crime_no": "CR/000006/18", "nom_id": 70005, "role": "V"},
    {"crime_no": "CR/000007/18 ", "nom_id": 70001, "role": "v"},  # padded and lower case
]
INTEL = [
    {"intel_no": "IN/000001/18", "subj_nom_id": 70001, "int_text": SECRET_TEXT},
    {"intel_no": "IN/000002/18", "subj_nom_id": None, "grid_e": None, "grid_n": None},
]


# ------------------------------------------------------------------------------ helpers


@pytest.fixture
def stores(tmp_path):
    """(legacy url, target url): the hand-written OPUS store and its faithful migration."""
    legacy = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=CRIMES, nominals=NOMINALS, links=LINKS,
                         intel=INTEL)
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    assert migrate(legacy, target, batch_size=3).state == "complete"
    return legacy, target


def run(legacy: str, target: str, **options):
    return reconcile(legacy, target, ReconcileOptions(batch_size=2, **options))


def reconcile_into(out: Path, legacy: str, target: str, options: ReconcileOptions | None = None):
    """Reconcile, then write the reports into ``out`` (as ``main.py reconcile`` does)."""
    result = reconcile(legacy, target, options)
    write_reconciliation_reports(result, out)
    return result


def rows(result, entity=None, category=None) -> list[Discrepancy]:
    return [d for d in result.discrepancies
            if (entity is None or d.entity == entity) and (category is None or d.category == category)]


def unexplained(result) -> list[Discrepancy]:
    return [d for d in result.discrepancies if not (d.category == "MISSING" and d.detail)
            and d.category != "PROBABLE_MATCH"]


def crime_where(ref: str):
    return schema.crime.c.crime_id == ids.crime_id(ref)


def location_where(ref: str):
    return schema.location.c.location_id == ids.location_id("crime", ref)


def target_row(url: str, table: sa.Table, where) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.select(table).where(where)).mappings().one())
    finally:
        engine.dispose()


def copy_crime(url: str, ref: str, new_ref: str, minutes_later: int, **changes) -> str:
    """Insert a copy of a migrated crime (and its location) with new ids."""
    crime = target_row(url, schema.crime, crime_where(ref))
    location = target_row(url, schema.location, location_where(ref))
    new_id = ids.crime_id("copy:" + new_ref)
    location["location_id"] = ids.location_id("crime", "copy:" + new_ref)
    crime.update(crime_id=new_id, crime_ref=new_ref, location_id=location["location_id"],
                 created_at=crime["created_at"] + dt.timedelta(minutes=minutes_later), **changes)
    execute(url, schema.location.insert().values(**location), schema.crime.insert().values(**crime))
    return new_id


# ------------------------------------------------------------------------------ clean


def test_faithful_migration_has_only_explained_missing(stores):
    result = run(*stores)
    assert result.counted_failures == 0 and result.exit_code == 0
    assert unexplained(result) == []
    missing = {(d.entity, d.legacy_ref, d.detail) for d in rows(result, category="MISSING")}
    assert missing == {
        ("crime", "CR/000005/18", "UNMAPPED_OFFENCE"),
        ("person", "70004", "MISSING_NAME"),
        ("crime_person", "CR/000002/18:70001:Z", "INVALID_ROLE"),
    }
    crime = result.totals["crime"]
    assert (crime.legacy_total, crime.legacy_excluded, crime.new_total, crime.matched_keyed) == (6, 1, 5, 5)
    assert crime.missing_explained == 1
    person = result.totals["person"]
    assert (person.legacy_total, person.legacy_excluded, person.matched_keyed, person.missing_explained) == (4, 1, 3, 1)
    links = result.totals["crime_person"]
    # Expected links found: 000001 V+S, 000002 W, 000006 V, 000007 V (padded, lower case in OPUS).
    assert links.matched_keyed == 5 and links.missing_explained == 1
    assert result.totals["intelligence"].matched_keyed == 2
    assert result.discrepancy_count == 3


def test_excluded_legacy_records_are_never_missing(stores):
    legacy, target = stores
    result = run(legacy, target)
    refs = {d.legacy_ref for d in result.discrepancies}
    assert "CR/000004/18" not in refs and "70003" not in refs


# ------------------------------------------------------------------------------ ALTERED


def test_case_whitespace_seconds_and_tiny_coordinate_shifts_are_not_differences(stores):
    legacy, target = stores
    c, loc, p = schema.crime, schema.location, schema.person
    crime = target_row(target, c, crime_where("CR/000001/18"))
    location = target_row(target, loc, location_where("CR/000001/18"))
    execute(
        target,
        c.update().where(crime_where("CR/000001/18")).values(
            recorded_at=crime["recorded_at"] + dt.timedelta(seconds=45),
            mo_summary="  " + crime["mo_summary"].lower().replace(" ", "   ") + "\n"),
        loc.update().where(location_where("CR/000001/18")).values(
            address=location["address"].title(), latitude=location["latitude"] + 0.000009,
            longitude=location["longitude"] - 0.00001),
        p.update().where(p.c.legacy_nominal_id == 70001).values(family_name=" smith ", given_names="John"),
    )
    result = run(legacy, target)
    assert rows(result, category="ALTERED") == []


def test_altered_fields_with_details(stores):
    legacy, target = stores
    c, loc = schema.crime, schema.location
    crime1 = target_row(target, c, crime_where("CR/000001/18"))
    location2 = target_row(target, loc, location_where("CR/000002/18"))
    crime3 = target_row(target, c, crime_where("CR/000003/18"))
    execute(
        target,
        c.update().where(crime_where("CR/000001/18")).values(
            recorded_at=crime1["recorded_at"] + dt.timedelta(hours=1),
            committed_from=crime1["committed_from"] - dt.timedelta(hours=1),
            committed_to=crime1["committed_to"] + dt.timedelta(minutes=17),
            status="OPEN"),
        loc.update().where(location_where("CR/000002/18")).values(latitude=location2["latitude"] + 0.0001,
                                                                    postcode="M3 2BX"),
        c.update().where(crime_where("CR/000003/18")).values(mo_summary=crime3["mo_summary"][:255]),
    )
    result = run(legacy, target)
    altered = {(d.legacy_ref, d.field): d for d in rows(result, "crime", "ALTERED")}
    assert {k: d.detail for k, d in altered.items()} == {
        ("CR/000001/18", "recorded_at"): "OFFSET_1H",
        ("CR/000001/18", "committed_from"): "OFFSET_-1H",
        ("CR/000001/18", "committed_to"): None,
        ("CR/000001/18", "status"): None,
        ("CR/000002/18", "location.latitude"): None,
        ("CR/000002/18", "location.postcode"): None,
        ("CR/000003/18", "mo_summary"): "TRUNCATED",
    }
    d = altered[("CR/000001/18", "recorded_at")]
    assert (d.new_ref, d.legacy_value, d.expected_value, d.new_value) == (
        "CRI-2018-000001", "REC_DATE=15/06/2018; REC_TIME=1430", "2018-06-15T13:30:00Z", "2018-06-15T14:30:00Z")
    d = altered[("CR/000001/18", "status")]
    assert (d.legacy_value, d.expected_value, d.new_value) == ("F", "FINALISED", "OPEN")
    d = altered[("CR/000002/18", "location.postcode")]
    assert (d.legacy_value, d.expected_value, d.new_value) == ("m3 2bw", "M3 2BW", "M3 2BX")
    assert result.counted_failures == 7 and result.exit_code == 1
    assert result.totals["crime"].categories["ALTERED"] == 7


def test_intelligence_text_differences_show_fingerprints_only(stores, tmp_path):
    legacy, target = stores
    ir, p = schema.intelligence_report, schema.person
    altered_text = SECRET_TEXT.replace("BLUE", "RED")
    other = target_row(target, p, p.c.legacy_nominal_id == 70002)["person_id"]
    execute(target, ir.update().where(ir.c.legacy_ref == "IN/000001/18").values(
        intel_text=altered_text, subject_person_id=other))
    out = tmp_path / "out"
    result = reconcile_into(out, legacy, target, ReconcileOptions())
    altered = {d.field: d for d in rows(result, "intelligence", "ALTERED")}
    assert set(altered) == {"intel_text", "subject_person_id"}
    d = altered["intel_text"]
    assert (d.legacy_value, d.expected_value, d.new_value) == (
        text_fingerprint(SECRET_TEXT), text_fingerprint(SECRET_TEXT), text_fingerprint(altered_text))
    s = altered["subject_person_id"]
    assert (s.legacy_value, s.expected_value, s.new_value) == ("70001", "70001", "70002")  # NOM_IDs, not uuids
    # The text is nowhere in the exports (the workbook's XML included).
    for path in out.iterdir():
        data = path.read_bytes()
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                data = b"".join(z.read(n) for n in z.namelist())
        assert b"PICCADILLY" not in data, path.name


def test_a_subject_that_is_no_migrated_nominal_shows_as_its_person_id(stores):
    legacy, target = stores
    ir, p = schema.intelligence_report, schema.person
    person = target_row(target, p, p.c.legacy_nominal_id == 70001)
    execute(target,
            p.insert().values(dict(person, person_id="made-in-iops", legacy_nominal_id=None)),
            ir.update().where(ir.c.legacy_ref == "IN/000001/18").values(subject_person_id="made-in-iops"),
            # IN/000002/18 has no subject in OPUS; here it names a person the store does not hold.
            ir.update().where(ir.c.legacy_ref == "IN/000002/18").values(subject_person_id="nobody"))
    altered = {(d.legacy_ref, d.field): d for d in rows(run(legacy, target), "intelligence", "ALTERED")}
    assert set(altered) == {("IN/000001/18", "subject_person_id"), ("IN/000002/18", "subject_person_id")}
    first, second = altered[("IN/000001/18", "subject_person_id")], altered[("IN/000002/18", "subject_person_id")]
    assert (first.legacy_value, first.expected_value, first.new_value) == ("70001", "70001", "person_id=made-in-iops")
    assert (second.expected_value, second.new_value) == (None, "person_id=nobody")


def test_a_person_table_holding_a_subject_twice_does_not_double_the_report(stores):
    """A store whose person table lacks its primary key may hold one person_id twice: the report
    naming it is still one record, compared once (a look-up joining the subject's person would
    return it twice)."""
    legacy, target = stores
    execute(target,
            sa.text("CREATE TABLE person_copy AS SELECT * FROM person"),
            sa.text("DROP TABLE person"),
            sa.text("CREATE TABLE person AS SELECT * FROM person_copy"),  # no primary key
            sa.text("INSERT INTO person SELECT * FROM person_copy WHERE legacy_nominal_id = 70001"),
            sa.text("DROP TABLE person_copy"))
    result = run(legacy, target)
    assert [d for d in unexplained(result) if d.entity == "intelligence"] == []
    assert [(d.category, d.legacy_ref) for d in unexplained(result) if d.entity == "person"] == [("DUPLICATE", "70001")]


# ------------------------------------------------------------------------------ DUPLICATE


def test_duplicate_is_the_later_copy_when_both_are_as_good(stores):
    legacy, target = stores
    copy_crime(target, "CR/000001/18", "CRI-2018-000001D", minutes_later=5)
    result = run(legacy, target)
    [dup] = rows(result, "crime", "DUPLICATE")
    assert (dup.legacy_ref, dup.new_ref) == ("CR/000001/18", "CRI-2018-000001D")
    assert rows(result, "crime", "ALTERED") == []  # the original (crime_ref exact) is the counterpart
    assert result.totals["crime"].new_total == 6


def test_counterpart_is_the_record_closest_to_the_mapping(stores):
    legacy, target = stores
    # The original is altered in two fields; the later copy differs only in crime_ref.
    execute(target, schema.crime.update().where(crime_where("CR/000001/18")).values(status="OPEN", oic_collar="X1"))
    copy_crime(target, "CR/000001/18", "CRI-2018-000001D", minutes_later=5, status="FINALISED", oic_collar="4521")
    result = run(legacy, target)
    [dup] = rows(result, "crime", "DUPLICATE")
    assert dup.new_ref == "CRI-2018-000001"
    [altered] = rows(result, "crime", "ALTERED")
    assert (altered.new_ref, altered.field, altered.new_value) == ("CRI-2018-000001D", "crime_ref", "CRI-2018-000001D")


def test_counterpart_tie_goes_to_earliest_then_smallest_reference(stores):
    legacy, target = stores
    execute(target, schema.crime.update().where(crime_where("CR/000002/18")).values(crime_ref="CRI-2018-000002C"))
    copy_crime(target, "CR/000002/18", "CRI-2018-000002B", minutes_later=0)
    copy_crime(target, "CR/000002/18", "CRI-2018-000002A", minutes_later=1)
    result = run(legacy, target)
    assert sorted(d.new_ref for d in rows(result, "crime", "DUPLICATE")) == ["CRI-2018-000002A", "CRI-2018-000002C"]
    [altered] = rows(result, "crime", "ALTERED")
    assert altered.new_ref == "CRI-2018-000002B"


# ------------------------------------------------------------------------------ UNEXPECTED / MISSING


def test_unexpected_records_deleted_or_unknown_in_opus(stores):
    legacy, target = stores
    copy_crime(target, "CR/000001/18", "CRI-2018-000004", 0, legacy_ref="CR/000004/18")  # deleted in OPUS
    copy_crime(target, "CR/000001/18", "CRI-2018-999999", 0, legacy_ref="CR/999999/18")  # never in OPUS
    copy_crime(target, "CR/000001/18", "CRI-2018-000008", 0, legacy_ref=" CR/000001/18")  # not the trimmed key
    person = target_row(target, schema.person, schema.person.c.legacy_nominal_id == 70001)
    execute(target, schema.person.insert().values(dict(person, person_id=ids.person_id(70003),
                                                       legacy_nominal_id=70003)))
    result = run(legacy, target)
    unexpected = {(d.entity, d.legacy_ref, d.new_ref, d.detail) for d in rows(result, category="UNEXPECTED")}
    assert unexpected == {
        ("crime", "CR/000004/18", "CRI-2018-000004", "DELETED_IN_OPUS"),
        ("crime", "CR/999999/18", "CRI-2018-999999", "NOT_IN_OPUS"),
        ("crime", " CR/000001/18", "CRI-2018-000008", "NOT_IN_OPUS"),
        ("person", "70003", ids.person_id(70003), "DELETED_IN_OPUS"),
    }
    assert not [d for d in rows(result, category="MISSING") if d.legacy_ref in ("CR/000004/18", "70003")]


def test_a_reference_of_the_other_entity_is_unexpected(stores):
    """A crime carrying an intelligence reference (and a report carrying a crime reference),
    or a reference with a line break after it, is no legacy crime: UNEXPECTED, and counted in
    the statistics, although it reads like a migrated crime's number (the key sets hold
    references as numbers: only the entity's own prefix, only the exact form)."""
    legacy, target = stores
    copy_crime(target, "CR/000001/18", "CRI-2018-900001", 0, legacy_ref="IN/000001/18")
    copy_crime(target, "CR/000001/18", "CRI-2018-900003", 0, legacy_ref="CR/000006/18\n")  # not the key either
    report = target_row(target, schema.intelligence_report,
                        schema.intelligence_report.c.legacy_ref == "IN/000002/18")
    execute(target, schema.intelligence_report.insert().values(dict(
        report, intel_id=ids.intel_id("copy:x"), intel_ref="INT-2018-900002", legacy_ref="CR/000002/18")))
    result = run(legacy, target)
    unexpected = {(d.entity, d.legacy_ref, d.new_ref, d.detail) for d in rows(result, category="UNEXPECTED")}
    assert unexpected == {("crime", "IN/000001/18", "CRI-2018-900001", "NOT_IN_OPUS"),
                          ("crime", "CR/000006/18\n", "CRI-2018-900003", "NOT_IN_OPUS"),
                          ("intelligence", "CR/000002/18", "INT-2018-900002", "NOT_IN_OPUS")}
    assert sum(s.new_count for s in result.stats) == sum(s.expected_count for s in result.stats) + 2


def test_lost_records_are_missing_and_their_links_not_compared(stores):
    legacy, target = stores
    cp, c, p = schema.crime_person, schema.crime, schema.person
    execute(target,
            cp.delete().where(cp.c.crime_id == ids.crime_id("CR/000006/18")),
            c.delete().where(crime_where("CR/000006/18")),
            cp.delete().where(cp.c.person_id == ids.person_id(70002)),
            p.delete().where(p.c.legacy_nominal_id == 70002))
    result = run(legacy, target)
    assert {(d.entity, d.legacy_ref, d.detail) for d in unexplained(result)} == {
        ("crime", "CR/000006/18", None), ("person", "70002", None)}
    assert result.counted_failures == 2


def test_rejected_record_present_in_the_new_store(stores):
    legacy, target = stores
    copy_crime(target, "CR/000001/18", "CRI-2018-000005", 0, legacy_ref="CR/000005/18")
    result = run(legacy, target)
    [d] = [d for d in result.discrepancies if d.legacy_ref == "CR/000005/18"]
    assert (d.category, d.field, d.new_ref, d.detail) == ("ALTERED", None, "CRI-2018-000005",
                                                          "LEGACY_REJECTED:UNMAPPED_OFFENCE")
    assert d.legacy_value == "OFF_CODE=NOPE"
    assert result.totals["crime"].missing_explained == 0 and result.counted_failures == 1


def test_legacy_keys_equal_once_trimmed(tmp_path):
    legacy = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=[
        {"crime_no": "CR/000001/18"}, {"crime_no": " CR/000001/18", "status": "O"}])
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    migrate(legacy, target)
    result = run(legacy, target)
    [d] = list(result.discrepancies)
    # ' CR/…' sorts first and owns the key (as in the migration); the second is not migrated.
    assert (d.category, d.legacy_ref, d.detail) == ("MISSING", "CR/000001/18", "DUPLICATE_KEY")
    assert result.counted_failures == 0 and result.totals["crime"].matched_keyed == 1


@pytest.mark.parametrize("migrated", [True, False])
def test_a_rejected_record_owns_no_key_the_next_accepted_one_is_the_record(tmp_path, migrated):
    """mappings.entities.first_key_wins, as the migration writes it: ' CR/000001/18' sorts first
    but the mapping rejects it, so 'CR/000001/18' is the record. The rejected one is MISSING
    with its own reason; the accepted one is compared with the new record (found: matched;
    not found: MISSING, unexplained) — never DUPLICATE_KEY, never LEGACY_REJECTED."""
    crimes = [{"crime_no": " CR/000001/18", "status": "Q"}, {"crime_no": "CR/000001/18"}]
    legacy = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=crimes)
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    # What the migration writes: the accepted record alone (migrated from a store holding it alone).
    accepted_only = make_legacy(f"sqlite:///{tmp_path / 'accepted.db'}", crimes=crimes[1:] if migrated else [])
    migrate(accepted_only, target)
    result = run(legacy, target)
    found = [(d.category, d.legacy_ref, d.detail) for d in rows(result, "crime")]
    expected = [("MISSING", "CR/000001/18", "INVALID_STATUS")]
    if not migrated:
        expected.insert(0, ("MISSING", "CR/000001/18", None))
    assert sorted(found, key=str) == sorted(expected, key=str)
    assert result.totals["crime"].matched_keyed == (1 if migrated else 0)
    assert result.totals["crime"].missing_explained == 1


# ------------------------------------------------------------------------------ links


def test_links_missing_and_unexpected(stores):
    legacy, target = stores
    cp = schema.crime_person
    crime1 = ids.crime_id("CR/000001/18")
    execute(
        target,
        cp.delete().where(cp.c.crime_id == crime1, cp.c.person_id == ids.person_id(70001)),
        cp.insert().values(crime_id=crime1, person_id=ids.person_id(70005), role="WITNESS"),
        # A link to a person created in iOPS (no NOM_ID): not a matched person, not compared.
        schema.person.insert().values(person_id="new-person", legacy_nominal_id=None, family_name="NEW", sex="MALE",
                                      source_system="IOPS", created_at=dt.datetime(2019, 8, 1, tzinfo=UTC),
                                      updated_at=dt.datetime(2019, 8, 1, tzinfo=UTC)),
        cp.insert().values(crime_id=crime1, person_id="new-person", role="WITNESS"),
    )
    result = run(legacy, target)
    links = {(d.category, d.legacy_ref, d.new_ref) for d in unexplained(result)}
    assert links == {("MISSING", "CR/000001/18:70001:VICTIM", "CRI-2018-000001"),
                     ("UNEXPECTED", "CR/000001/18:70005:WITNESS", "CRI-2018-000001")}
    assert all(d.entity == "crime_person" for d in unexplained(result))


def test_links_of_every_record_carrying_the_crime_count(stores):
    legacy, target = stores
    cp = schema.crime_person
    copy_id = copy_crime(target, "CR/000001/18", "CRI-2018-000001D", minutes_later=5)
    execute(target,
            cp.update().where(cp.c.crime_id == ids.crime_id("CR/000001/18"), cp.c.person_id == ids.person_id(70001))
            .values(crime_id=copy_id))
    result = run(legacy, target)
    assert [d.category for d in unexplained(result)] == ["DUPLICATE"]


def test_unexpected_link_on_two_records_shows_the_least_crime_ref(stores):
    """Whichever order a database returns the rows in, an unexpected link carried by the
    record and by its duplicate is reported once, with the least crime_ref of the two."""
    legacy, target = stores
    cp = schema.crime_person
    copy_id = copy_crime(target, "CR/000001/18", "CRI-2018-000000D", minutes_later=5)  # sorts first
    execute(target,
            cp.insert().values(crime_id=ids.crime_id("CR/000001/18"), person_id=ids.person_id(70005), role="WITNESS"),
            cp.insert().values(crime_id=copy_id, person_id=ids.person_id(70005), role="WITNESS"))
    result = run(legacy, target)
    unexpected = [(d.legacy_ref, d.new_ref) for d in rows(result, "crime_person", "UNEXPECTED")]
    assert unexpected == [("CR/000001/18:70005:WITNESS", "CRI-2018-000000D")]


# ------------------------------------------------------------------------------ unkeyed


def test_rekeyed_crime_is_an_auto_probable_match(stores):
    legacy, target = stores
    c, cp = schema.crime, schema.crime_person
    crime6 = target_row(target, c, crime_where("CR/000006/18"))
    execute(target, c.update().where(crime_where("CR/000006/18")).values(
        legacy_ref=None, crime_ref="CRI-2019-900001", source_system="IOPS",
        recorded_at=crime6["recorded_at"] + dt.timedelta(minutes=12)))
    # A genuinely new iOPS crime, months later: nothing to pair with.
    copy_crime(target, "CR/000001/18", "CRI-2019-900002", 0, legacy_ref=None,
               recorded_at=dt.datetime(2019, 9, 1, 10, tzinfo=UTC))
    result = run(legacy, target)
    [pair] = rows(result, "crime", "PROBABLE_MATCH")
    assert (pair.legacy_ref, pair.new_ref, pair.detail) == ("CR/000006/18", "CRI-2019-900001", "AUTO")
    assert pair.score >= 90
    assert not [d for d in rows(result, "crime", "MISSING") if d.legacy_ref == "CR/000006/18"]
    totals = result.totals["crime"]
    assert (totals.matched_auto, totals.new_in_iops) == (1, 1)
    assert rows(result, "crime", "ALTERED") == []  # an AUTO pair's fields are not compared
    assert result.counted_failures == 0

    # Its links are compared (reconciliation.md: crimes matched keyed or AUTO).
    execute(target, cp.delete().where(cp.c.crime_id == ids.crime_id("CR/000006/18")))
    result = run(legacy, target)
    assert {(d.entity, d.category, d.legacy_ref, d.new_ref) for d in unexplained(result)} == {
        ("crime_person", "MISSING", "CR/000006/18:70005:VICTIM", "CRI-2019-900001")}


def test_review_pair_leaves_the_legacy_record_missing(stores):
    legacy, target = stores
    c = schema.crime
    crime6 = target_row(target, c, crime_where("CR/000006/18"))
    execute(target, c.update().where(crime_where("CR/000006/18")).values(
        legacy_ref=None, crime_ref="CRI-2019-900001", mo_summary="Lawnmower stolen from garage overnight",
        recorded_at=crime6["recorded_at"] + dt.timedelta(hours=5)))
    result = run(legacy, target, auto_threshold=99.9, review_threshold=50)
    [pair] = rows(result, "crime", "PROBABLE_MATCH")
    assert pair.detail == "REVIEW"
    assert [d.legacy_ref for d in rows(result, "crime", "MISSING") if not d.detail] == ["CR/000006/18"]
    assert result.totals["crime"].matched_auto == 0 and result.totals["crime"].new_in_iops == 0


def test_rekeyed_intelligence_report_is_an_auto_probable_match(stores):
    legacy, target = stores
    ir = schema.intelligence_report
    report = target_row(target, ir, ir.c.legacy_ref == "IN/000001/18")
    execute(target, ir.update().where(ir.c.legacy_ref == "IN/000001/18").values(
        legacy_ref=None, intel_ref="INT-2019-900001", source_system="IOPS",
        submitted_at=report["submitted_at"] + dt.timedelta(minutes=7)))
    result = run(legacy, target)
    [pair] = rows(result, "intelligence", "PROBABLE_MATCH")
    assert (pair.legacy_ref, pair.new_ref, pair.detail) == ("IN/000001/18", "INT-2019-900001", "AUTO")
    totals = result.totals["intelligence"]
    assert (totals.matched_auto, totals.new_in_iops, totals.categories["MISSING"]) == (1, 0, 0)
    assert result.counted_failures == 0


# ------------------------------------------------------------------------------ statistics


# The crime statistics: tests/test_crime_statistics.py.


# ------------------------------------------------------------------------------ reports, spool, CLI


def test_reports_are_written_sorted_and_counted(stores, tmp_path):
    legacy, target = stores
    execute(target, schema.crime.update().where(crime_where("CR/000001/18")).values(status="OPEN"))
    out = tmp_path / "out"
    result = reconcile_into(out, legacy, target, ReconcileOptions())
    assert {p.name for p in out.iterdir()} == {"discrepancies.csv", "crime_stats.csv", "summary.json",
                                               "reconciliation.xlsx", "crime_map.png"}
    assert result.out_dir == out and len(result.report_paths) == 5
    with (out / "discrepancies.csv").open(newline="", encoding="utf-8-sig") as fh:
        body = list(csv.DictReader(fh))
    order = [(ENTITIES.index(r["entity"]), CATEGORIES.index(r["category"]), r["legacy_ref"]) for r in body]
    assert order == sorted(order) and len(body) == result.discrepancy_count == 4
    assert list(result.discrepancies) == list(result.discrepancies)  # re-iterable
    summary = json.loads((out / "summary.json").read_text())
    assert "***" in json.dumps(summary) or "password" not in json.dumps(summary)


def test_spool_sorts_across_runs_and_rereads(tmp_path):
    spool = DiscrepancySpool(tmp_path, run_rows=3)
    refs = ["70010", "9", "CR/000002/18", "CR/000001/18", "100"]
    for i, ref in enumerate(refs):
        entity = "person" if ref[0].isdigit() else "crime"
        spool.add(Discrepancy(entity, "MISSING", ref))
        spool.add(Discrepancy(entity, "ALTERED", ref, f"N{i}", "status", "a", "b", "c"))
    spool.add(Discrepancy("crime_person", "UNEXPECTED", "CR/000001/18:1:VICTIM", "CRI"))
    spool.close()
    first = list(spool)
    assert first == list(spool) and len(first) == len(spool) == 11
    assert [(d.entity, d.category, d.legacy_ref) for d in first[:4]] == [
        ("crime", "MISSING", "CR/000001/18"), ("crime", "MISSING", "CR/000002/18"),
        ("crime", "ALTERED", "CR/000001/18"), ("crime", "ALTERED", "CR/000002/18")]
    # Person NOM_IDs in numeric order; entities in the model's order.
    assert [d.legacy_ref for d in first if d.entity == "person" and d.category == "MISSING"] == ["9", "100", "70010"]
    assert first[-1].entity == "crime_person"
    assert list(tmp_path.iterdir())  # its files are in the folder given
    spool.discard()
    assert not list(tmp_path.iterdir())


def test_reconciler_never_writes_to_either_store(stores):
    legacy, target = stores
    paths = [Path(u.removeprefix("sqlite:///")) for u in stores]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    run(legacy, target)
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == before


def test_usage_errors(stores, tmp_path):
    legacy, target = stores
    with pytest.raises(UsageError, match="target store not found"):
        reconcile(legacy, f"sqlite:///{tmp_path / 'nope.db'}")
    assert not (tmp_path / "nope.db").exists()  # never created
    with pytest.raises(UsageError, match="thresholds"):
        reconcile(legacy, target, ReconcileOptions(auto_threshold=60, review_threshold=70))
    with pytest.raises(Exception, match="iOPS store"):
        reconcile(legacy, legacy)  # the OPUS store is no iOPS store


def test_cli_exit_codes(stores, tmp_path):
    legacy, target = stores
    runner = CliRunner()
    clean = runner.invoke(app, ["reconcile", "--legacy", legacy, "--target", target, "--out", str(tmp_path / "a"),
                                "--quiet"])
    assert clean.exit_code == 0, clean.output
    execute(target, schema.crime.update().where(crime_where("CR/000001/18")).values(status="OPEN"))
    found = runner.invoke(app, ["reconcile", "--legacy", legacy, "--target", target, "--out", str(tmp_path / "b"),
                                "--quiet"])
    assert found.exit_code == 1, found.output
    lenient = runner.invoke(app, ["reconcile", "--legacy", legacy, "--target", target, "--out",
                                  str(tmp_path / "c"), "--fail-threshold", "1", "--quiet"])
    assert lenient.exit_code == 0, lenient.output
    gone = runner.invoke(app, ["reconcile", "--legacy", legacy, "--target",
                               "postgresql+psycopg://nobody:secret@127.0.0.1:1/none", "--out", str(tmp_path / "d")])
    assert gone.exit_code == 2 and "secret" not in gone.output
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_disk_error_while_the_rows_are_written_is_output_error_and_no_report(stores, tmp_path, monkeypatch):
    """A disk that fills while the discrepancy rows are written: OutputError (exit 2) and
    nothing is left in the folder."""
    from core.errors import OutputError
    import reports.reconciliation as rr

    legacy, target = stores
    execute(target, schema.crime.update().where(crime_where("CR/000001/18")).values(status="OPEN"))  # a crime row
    real = rr.csv_row

    def disk_full(values):  # a discrepancy's values, entity first
        if values[0] == "crime":
            raise OSError(28, "No space left on device")
        return real(values)

    monkeypatch.setattr(rr, "csv_row", disk_full)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="No space left"):
        reconcile_into(out, legacy, target, ReconcileOptions(batch_size=2))
    assert not out.exists() or not any(out.iterdir())


def test_failure_in_a_later_pass_leaves_no_report(stores, tmp_path):
    legacy, target = stores

    def fail_in_intelligence(entity: str, done: int) -> None:
        if entity == "intelligence":
            raise RuntimeError("interrupted")

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="interrupted"):
        reconcile_into(out, legacy, target, ReconcileOptions(batch_size=2, on_batch=fail_in_intelligence))
    assert not out.exists() or not any(out.iterdir())


# ------------------------------------------------------------------------------ connection loss


@pytest.mark.parametrize("lost_during", ["crime", "intelligence"])  # before / after the crime rows are being written
def test_target_lost_mid_run_is_store_unavailable_and_no_report(tmp_path, make_store, lost_during):
    legacy = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=CRIMES, nominals=NOMINALS, links=LINKS,
                         intel=INTEL)
    target = make_store("postgresql", "recon_lost")
    migrate(legacy, target)
    database = sa.engine.make_url(target).database
    out = tmp_path / "out"
    with connection_killer("postgresql") as kill:

        def cut_off(entity: str, done: int) -> None:
            if entity == lost_during:
                kill(database)

        with pytest.raises(StoreUnavailable, match="target store"):
            reconcile_into(out, legacy, target, ReconcileOptions(batch_size=2, on_batch=cut_off))
    assert not out.exists() or not any(out.iterdir())


def test_legacy_lost_mid_run_is_store_unavailable_and_no_report(tmp_path, make_store):
    # MariaDB enforces VARCHAR(12): the padded CRIME_NO rows only fit in SQLite.
    legacy = make_legacy(make_store("mysql", "recon_legacy_lost"), crimes=[c for c in CRIMES if len(c["crime_no"]) <= 12],
                         nominals=NOMINALS, links=[k for k in LINKS if len(k["crime_no"]) <= 12], intel=INTEL)
    target = f"sqlite:///{tmp_path / 'iops.db'}"
    migrate(legacy, target)
    database = sa.engine.make_url(legacy).database
    out = tmp_path / "out"
    with connection_killer("mysql") as kill:

        def cut_off(entity: str, done: int) -> None:
            if entity == "crime":
                kill(database)

        with pytest.raises(StoreUnavailable, match="legacy store mysql"):
            reconcile_into(out, legacy, target, ReconcileOptions(batch_size=2, on_batch=cut_off))
    assert not out.exists() or not any(out.iterdir())


# ------------------------------------------------------------------------------ generated, every backend pair


def test_generated_store_migrated_by_the_engine_reconciles_clean(pair, make_store):
    from synth.generate import generate

    legacy_backend, target_backend = pair
    legacy = make_store(legacy_backend, "recon_legacy")
    target = make_store(target_backend, "recon_target")
    generate(legacy, crimes=2000, seed=11)
    migration = migrate(legacy, target, batch_size=500)
    assert migration.state == "complete"
    result = reconcile(legacy, target, ReconcileOptions(batch_size=700))
    assert result.counted_failures == 0 and result.exit_code == 0, [d for d in unexplained(result)][:5]
    missing = rows(result, category="MISSING")
    assert missing and all(d.detail for d in missing)  # every MISSING is a reject, with its reason
    for entity in ("crime", "person", "intelligence"):
        counts, totals = migration.counts[entity], result.totals[entity]
        assert totals.legacy_excluded == counts.excluded
        assert totals.missing_explained == counts.rejected
        assert totals.matched_keyed == totals.new_total == counts.written
    assert result.totals["crime_person"].matched_keyed == result.totals["crime_person"].new_total
    assert sum(r.expected_count for r in result.stats) == sum(r.new_count for r in result.stats) > 0
    assert all(r.delta_expected == 0 for r in result.stats)


def test_worker_processes_give_the_same_result(stores):
    """Every quirk of the hand-written stores (a padded key, rejects, excluded records, a lost
    person and an altered crime) comes out the same when worker processes evaluate the
    batches (reconcile/parallel.py): two batches of two records each per worker and pass."""
    legacy, target = stores
    execute(target, schema.crime.update().where(crime_where("CR/000001/18")).values(status="OPEN"),
            schema.person.delete().where(schema.person.c.legacy_nominal_id == 70005))
    serial = run(legacy, target, workers=1)
    shared = run(legacy, target, workers=2, parallel_min_rows=0)
    assert list(shared.discrepancies) == list(serial.discrepancies) and len(list(serial.discrepancies)) > 2
    assert shared.totals == serial.totals and shared.stats == serial.stats


@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_keys_read_beside_the_pass_find_each_unexpected_record_once(stores, make_store, backend):
    """The census (reconcile/census.py) of a store whose keys a collation folds: on MariaDB
    'CR/99999/18 ' equals 'CR/99999/18', so asking for one returns both — each is still
    reported once, under its own key, even when they are asked for in different chunks; a
    key of spaces is no key (the record is new in iOPS, not UNEXPECTED)."""
    legacy, sqlite_target = stores
    target = sqlite_target if backend == "sqlite" else make_store("mysql", "recon_census")
    if backend != "sqlite":
        assert migrate(legacy, target).state == "complete"
    # (12 characters each: MariaDB would cut a 13th, a space, to fit VARCHAR(12))
    copy_crime(target, "CR/000001/18", "CRI-2018-900001", 0, legacy_ref="CR/99999/18")
    copy_crime(target, "CR/000001/18", "CRI-2018-900002", 0, legacy_ref="CR/99999/18 ")
    copy_crime(target, "CR/000001/18", "CRI-2018-900003", 0, legacy_ref="   ")
    result = run(legacy, target, lookup_chunk=1)  # each key asked for on its own
    unexpected = sorted((d.legacy_ref, d.new_ref, d.detail) for d in rows(result, "crime", "UNEXPECTED"))
    assert unexpected == [("CR/99999/18", "CRI-2018-900001", "NOT_IN_OPUS"),
                          ("CR/99999/18 ", "CRI-2018-900002", "NOT_IN_OPUS")]
    crime = result.totals["crime"]
    assert crime.new_total == crime.matched_keyed + 3 and crime.new_in_iops == 1
    assert sum(s.new_count for s in result.stats) == sum(s.expected_count for s in result.stats) + 3


def test_a_person_key_that_is_no_number_is_unexpected(stores):
    """SQLite keeps text in an INTEGER column: such a key can match no NOM_ID (the keyed pass
    asks for numbers), so its record is UNEXPECTED — never taken for one the pass compared."""
    legacy, target = stores
    person = target_row(target, schema.person, schema.person.c.legacy_nominal_id == 70001)
    execute(target, schema.person.insert().values(dict(person, person_id=ids.person_id(990001),
                                                       legacy_nominal_id="70001x")))
    unexpected = {(d.legacy_ref, d.detail) for d in rows(run(legacy, target), "person", "UNEXPECTED")}
    assert unexpected == {("70001x", "NOT_IN_OPUS")}


def test_an_error_in_the_census_thread_is_raised_and_a_failed_pass_stops_it(stores):
    import threading

    from reconcile.census import CensusReader
    from reconcile.stores import open_stores

    legacy, target = stores
    copy_crime(target, "CR/000001/18", "CRI-2018-900003", 0, legacy_ref=None)  # an unkeyed crime: prepared beside

    def lost(unkeyed):  # what preparing the unkeyed records meets when the store goes away
        raise StoreUnavailable("target store sqlite: connection lost")

    with open_stores(legacy, target) as opened:
        crime = opened.target_tables["crime"]
        reader = CensusReader(opened.target, crime, "crime_id", "crime_ref", "legacy_ref", str, lambda key: True, lost)
        with reader:
            pass  # the keyed pass, done
        with pytest.raises(StoreUnavailable, match="connection lost"):
            reader.result()
        # Without the failure the same reader finds the unkeyed crime.
        found = CensusReader(opened.target, crime, "crime_id", "crime_ref", "legacy_ref", str, lambda key: True)
        with found:
            pass
        assert [ref for _, ref in found.result().unkeyed] == ["CRI-2018-900003"]

    def fail_in_crime(entity: str, done: int) -> None:
        if entity == "crime":
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        run(legacy, target, on_batch=fail_in_crime)
    assert not [t for t in threading.enumerate() if t.name.startswith("census")]


def test_worker_processes_on_mariadb_legacy_and_postgresql_target(make_store):
    from synth.generate import generate
    from synth.simulate import simulate

    legacy = make_store("mysql", "recon_workers_legacy")
    target = make_store("postgresql", "recon_workers_target")
    generate(legacy, crimes=1_200, seed=23)
    simulate(legacy, target, seed=9)
    options = dict(batch_size=150)
    serial = reconcile(legacy, target, ReconcileOptions(workers=1, **options))
    shared = reconcile(legacy, target, ReconcileOptions(workers=2, parallel_min_rows=0, **options))
    assert list(shared.discrepancies) == list(serial.discrepancies)
    assert {d.category for d in serial.discrepancies} >= {"MISSING", "ALTERED", "DUPLICATE", "PROBABLE_MATCH"}
    assert shared.totals == serial.totals and shared.stats == serial.stats


def test_workers_below_one_is_a_usage_error(stores):
    legacy, target = stores
    with pytest.raises(UsageError, match="--workers"):
        run(legacy, target, workers=0)
    assert CliRunner().invoke(app, ["reconcile", "--legacy", legacy, "--target", target, "--out", "x",
                               "--workers", "0"]).exit_code == 2


def test_mariadb_target_reconciles_clean_and_finds_an_alteration(stores, make_store):
    legacy, _ = stores
    target = make_store("mysql", "recon_target")
    assert migrate(legacy, target).state == "complete"
    assert run(legacy, target).counted_failures == 0
    execute(target, schema.crime.update().where(crime_where("CR/000003/18")).values(
        mo_summary=sa.func.substr(schema.crime.c.mo_summary, 1, 255)))
    [d] = unexplained(run(legacy, target))
    assert (d.category, d.legacy_ref, d.field, d.detail) == ("ALTERED", "CR/000003/18", "mo_summary", "TRUNCATED")

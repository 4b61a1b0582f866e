"""The crime statistics (mapping.md, "Crime statistics"; reconciliation.md, crime_stats.csv), read
back from the reports: a hand-made OPUS store with one crime per case, migrated, then altered in
iOPS, on SQLite and on the servers (legacy MariaDB → target PostgreSQL)."""

from __future__ import annotations

import csv
import datetime as dt
import json

import openpyxl
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from core import schema
from main import app
from mappings import ids
from mappings.reference import load_reference
from migrate.engine import migrate
from reconcile.model import STATS_COLUMNS
from reconcile.run import ReconcileOptions, reconcile
from reports.reconciliation import write_reconciliation_reports
from reports.statistics import DIFFERENCES_SHEET, DISTRICT_SHEET, MAP_SHEET, STATS_SHEET
from tests.opus_fixture import execute, make_legacy

MANCHESTER = "E08000003"
SALFORD = "E08000006"

# One crime per case. Defaults (tests/opus_fixture.py): TFMV (theft from a vehicle), division MC
# (Manchester), recorded 15/06/2018 14:30, grid 384000/397500, finalised.
CRIMES = [
    {"crime_no": "CR/000001/19", "rec_date": "10/04/2019"},  # plain: migrated, counted on both sides
    # A burglary whose code is not in the crosswalk: the mapping rejects it, OPUS still counts it.
    {"crime_no": "CR/000002/19", "rec_date": "11/04/2019", "off_code": "BURG-RES", "div": "SA"},
    {"crime_no": "CR/000003/19", "rec_date": "12/04/2019", "status": "X"},  # cancelled: not counted
    {"crime_no": "CR/000004/19", "rec_date": "12/04/2019", "status": "T"},  # transferred: not counted
    {"crime_no": "CR/000005/19", "rec_date": "13/04/2019", "div": "ZZ"},  # unknown division: UNKNOWN
    {"crime_no": "CR/000006/19", "rec_date": "31/02/2019", "div": "SA"},  # no such day: month UNKNOWN
    {"crime_no": "CR/000007/19", "rec_date": "14/04/2019", "del_flag": "Y"},  # deleted: not counted
    {"crime_no": "CR/000008/19", "rec_date": "15/05/2019"},  # iOPS swaps its latitude and longitude
    {"crime_no": "CR/000009/19", "rec_date": "16/05/2019", "grid_e": 0, "div": "SA"},  # no coordinates
    # Lost in iOPS (deleted after the migration): missing, on the map where OPUS has it.
    {"crime_no": "CR/000010/19", "rec_date": "17/05/2019", "div": "SA", "off_code": "CD-DWELL", "grid_e": 376000,
     "grid_n": 398500, "addr_line": "1 CHAPEL STREET, SALFORD", "pcode": "M3 5JZ", "mo_text": "WINDOW BROKEN"},
    {"crime_no": "CR/000011/19", "rec_date": "20/06/2019"},  # the latest REC_DATE: default go-live 21/06/2019
]


def group_of(off_code: str, day: dt.date) -> str:
    reference = load_reference()
    return reference.ho_offences[reference.ho_code_for(off_code, day)].offence_group


def crime_row(url: str, ref: str) -> tuple[dict, dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            crime = dict(conn.execute(sa.select(schema.crime).where(
                schema.crime.c.crime_id == ids.crime_id(ref))).mappings().one())
            location = dict(conn.execute(sa.select(schema.location).where(
                schema.location.c.location_id == crime["location_id"])).mappings().one())
            return crime, location
    finally:
        engine.dispose()


@pytest.fixture(params=[("sqlite", "sqlite"), ("mysql", "postgresql")], ids=lambda p: f"{p[0]}-to-{p[1]}")
def world(request, make_store):
    """(legacy url, target url): the store above, migrated, then changed in iOPS."""
    legacy = make_legacy(make_store(request.param[0], "opus"), crimes=CRIMES)
    target = make_store(request.param[1], "iops")
    assert migrate(legacy, target, batch_size=3).state == "complete"
    crime, location = crime_row(target, "CR/000008/19")
    swapped = {"latitude": location["longitude"], "longitude": location["latitude"]}
    lost, _ = crime_row(target, "CR/000010/19")
    # New work in iOPS after go-live: a crime typed in on 1 July 2019 with no legacy key.
    new, new_location = crime_row(target, "CR/000001/19")
    new_location.update(location_id=ids.location_id("crime", "iops:1"), easting=378000, northing=396000)
    new.update(crime_id=ids.crime_id("iops:1"), crime_ref="CRI-2019-900001", legacy_ref=None,
               location_id=new_location["location_id"], district_code=SALFORD, mo_summary="PHONE SNATCHED",
               recorded_at=dt.datetime(2019, 7, 1, 9, 0, tzinfo=dt.timezone.utc),
               created_at=dt.datetime(2019, 7, 1, 9, 0, tzinfo=dt.timezone.utc))
    execute(target,
            schema.location.update().where(schema.location.c.location_id == location["location_id"]).values(**swapped),
            schema.crime.delete().where(schema.crime.c.crime_id == lost["crime_id"]),
            schema.location.insert().values(**new_location), schema.crime.insert().values(**new))
    return legacy, target


def read_stats(path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark (Excel)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == STATS_COLUMNS
        return list(reader)


def cells(rows: list[dict]) -> dict[tuple, dict]:
    numbers = [c for c in STATS_COLUMNS if c not in ("month", "district_code", "offence_group", "district_name",
                                                     "after_go_live")]
    out = {}
    for r in rows:
        key = (r["month"], r["district_code"], r["offence_group"], r["after_go_live"])
        assert key not in out
        out[key] = {**{c: int(r[c]) for c in numbers}, "district_name": r["district_name"]}
    return out


def test_the_statistics_count_every_live_crime_and_keep_new_work_apart(world, tmp_path):
    legacy, target = world
    result = reconcile(legacy, target, ReconcileOptions(batch_size=4))
    paths = write_reconciliation_reports(result, tmp_path / "out")
    got = cells(read_stats(paths["crime_stats"]))

    theft = group_of("TFMV", dt.date(2019, 4, 10))
    damage = group_of("CD-DWELL", dt.date(2019, 5, 17))
    zero = dict(legacy_count=0, new_count=0, delta=0, legacy_no_location=0, new_no_location=0,
                legacy_not_migrated=0, expected_count=0, delta_expected=0, new_outside_area=0)

    def row(name, **counts):
        values = {**zero, **counts}
        values["delta"] = values["new_count"] - values["legacy_count"]
        values["expected_count"] = values["legacy_count"] - values["legacy_not_migrated"]
        values["delta_expected"] = values["new_count"] - values["expected_count"]
        return {**values, "district_name": name}

    assert got == {
        ("2019-04", MANCHESTER, theft, "N"): row("Manchester", legacy_count=1, new_count=1),
        # Rejected, unmapped burglary: the force's figure holds it, iOPS was never to.
        ("2019-04", SALFORD, "UNMAPPED", "N"): row("Salford", legacy_count=1, legacy_not_migrated=1),
        ("2019-04", "UNKNOWN", theft, "N"): row("Unknown district", legacy_count=1, new_count=1),
        ("2019-05", MANCHESTER, theft, "N"): row("Manchester", legacy_count=1, new_count=1, new_outside_area=1),
        ("2019-05", SALFORD, theft, "N"): row("Salford", legacy_count=1, new_count=1, legacy_no_location=1,
                                               new_no_location=1),
        ("2019-05", SALFORD, damage, "N"): row("Salford", legacy_count=1),  # lost
        ("2019-06", MANCHESTER, theft, "N"): row("Manchester", legacy_count=1, new_count=1),
        ("2019-07", SALFORD, theft, "Y"): row("Salford", new_count=1),  # new work after go-live
        # 31/02/2019: the month cannot be told; the offence group still can (its code's one group).
        ("UNKNOWN", SALFORD, theft, "N"): row("Salford", legacy_count=1, legacy_not_migrated=1),
    }

    statistics = result.statistics
    assert statistics.go_live == dt.date(2019, 6, 21)  # the day after the latest REC_DATE
    before, after = statistics.before, statistics.after
    assert (before.legacy, before.not_migrated, before.expected, before.new) == (8, 2, 6, 5)
    assert (before.delta, before.delta_expected) == (-3, -1)  # one crime lost beyond the rejects
    assert (after.legacy, after.new) == (0, 1)  # apart: never netted against the loss
    assert (before.new_no_location, before.new_outside_area, before.new_unplaceable) == (1, 1, 2)
    # The map: the lost crime where OPUS has it, the rejected one too, the swapped one mislocated.
    points = statistics.points
    assert points.missing == ((376000, 398500),)
    assert points.not_migrated == ((384000, 397500), (384000, 397500))
    [(e, n, lat, lon)] = points.mislocated
    assert (e, n) == (384000, 397500) and lat < 0 < lon  # latitude -2.2: south of the equator

    summary = json.loads(paths["summary"].read_text(encoding="utf-8"))["crime_stats"]
    assert summary["go_live"] == "2019-06-21"
    assert summary["up_to_go_live"]["expected_count"] == 6 and summary["after_go_live"]["new_count"] == 1
    assert paths["map"].read_bytes().startswith(b"\x89PNG")

    # The workbook's statistics sheets hold the CSV's counts.
    wb = openpyxl.load_workbook(paths["workbook"])
    sheet = [r for r in wb[STATS_SHEET].iter_rows(min_row=2, max_col=len(STATS_COLUMNS), values_only=True)]
    assert len(sheet) == len(got)
    for values in sheet:
        month = values[0].strftime("%Y-%m") if isinstance(values[0], dt.datetime) else values[0]
        counts = got[(month, values[1], values[2], values[13])]
        assert dict(zip(STATS_COLUMNS[3:13], values[3:13])) == {
            k: counts[k] for k in STATS_COLUMNS[3:13]}
    differences = [r for r in wb[DIFFERENCES_SHEET].iter_rows(min_row=2, max_col=len(STATS_COLUMNS),
                                                              values_only=True)]
    assert len(differences) == sum(1 for c in got.values() if c["delta"] or c["delta_expected"])
    assert [abs(r[11]) for r in differences] == sorted((abs(r[11]) for r in differences), reverse=True)
    districts: dict = {}
    for r in wb[DISTRICT_SHEET].iter_rows(values_only=True):
        if r and r[1]:
            districts.setdefault(r[1], r)  # the first block: up to go-live
    assert districts["Salford"][2:6] == (4, 2, 2, 1)  # OPUS, not migrated, expected, iOPS up to go-live
    assert wb[MAP_SHEET]._images  # the picture is in the workbook
    summary_text = " ".join(str(v) for r in wb["Summary"].iter_rows(values_only=True) for v in r if v)
    assert "After go-live iOPS recorded 1 new crimes" in summary_text
    assert "The mapping rejects 2 of the crimes OPUS counts (not migrated); 1 more are missing" in summary_text


def test_go_live_given_moves_the_split(world, tmp_path):
    legacy, target = world
    out = tmp_path / "out"
    outcome = CliRunner().invoke(app, ["reconcile", "--legacy", legacy, "--target", target, "--out", str(out),
                                       "--go-live", "2019-05-16", "--quiet"])
    assert outcome.exit_code == 1, outcome.output
    got = cells(read_stats(out / "crime_stats.csv"))
    after = {k: v for k, v in got.items() if k[3] == "Y"}
    # From 16 May 2019 (UK local): the crimes of 16 and 17 May, of June, and the new one of July.
    assert sorted((k[0], k[1]) for k in after) == [("2019-05", SALFORD), ("2019-05", SALFORD),
                                                   ("2019-06", MANCHESTER), ("2019-07", SALFORD)]
    assert sum(v["legacy_count"] for v in after.values()) == 3
    # 15 May stays before go-live, in its own row of the go-live month.
    assert got[("2019-05", MANCHESTER, group_of("TFMV", dt.date(2019, 5, 15)), "N")]["legacy_count"] == 1


@pytest.mark.parametrize("value", ["16/05/2019", "2019-02-30", "tomorrow"])
def test_a_bad_go_live_is_a_usage_error(value, tmp_path):
    legacy = make_legacy(f"sqlite:///{tmp_path / 'opus.db'}", crimes=CRIMES[:1])
    outcome = CliRunner().invoke(app, ["reconcile", "--legacy", legacy, "--target", f"sqlite:///{tmp_path / 'i.db'}",
                                       "--out", str(tmp_path / "out"), "--go-live", value])
    assert outcome.exit_code == 2
    assert "--go-live" in outcome.output and "Traceback" not in outcome.output
    assert not (tmp_path / "out").exists()

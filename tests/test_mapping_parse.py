"""Normalisation, dates, times, UK civil time, postcodes, PNC ids, free text, ids and grid
conversion (mapping.md, "Normalisation" and "Dates and times"; location)."""

from __future__ import annotations

import csv
import datetime as dt
import uuid
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

from mappings import geo, ids
from mappings.parse import (
    INVALID, LONDON, UNKNOWN, clean_multiline, code, collapse, is_blank, is_deleted,
    local_date, local_to_utc, normalise_pnc, normalise_postcode, parse_date, parse_int,
    parse_last_upd, parse_legacy_ref, parse_local_datetime, parse_nom_id, parse_time,
    pivot_year, text, to_utc_second, trim,
)

UTC = dt.timezone.utc
D = dt.date


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


# ----------------------------------------------------------------------- normalisation

@pytest.mark.parametrize("value, expected", [
    (None, None), ("", ""), ("  a  ", "a"), ("\t a b \n", "a b"), (" \u00a0x\u00a0 ", "x"), (12, "12"),
])
def test_trim(value, expected):
    assert trim(value) == expected


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("   ", None), ("  1  HIGH\t\tSTREET  ", "1 HIGH STREET"),
    ("a\nb", "a b"), ("O'BRIEN", "O'BRIEN"), ("Smith-Jones", "Smith-Jones"), ("NÍ  BHRIAIN", "NÍ BHRIAIN"),
])
def test_collapse_trims_collapses_keeps_case(value, expected):
    assert collapse(value) == expected


@pytest.mark.parametrize("value, blank", [(None, True), ("", True), ("  \t\n", True), (" x ", False), (0, False)])
def test_is_blank(value, blank):
    assert is_blank(value) is blank


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), ("  ", None), (" mc ", "MC"), ("cau-a", "CAU-A")])
def test_code_lookups_trim_and_upper_case(value, expected):
    assert code(value) == expected


@pytest.mark.parametrize("flag, deleted", [
    ("Y", True), ("y", True), (" Y ", True), ("N", False), ("", False), (None, False), ("YES", False), ("X", False),
])
def test_del_flag(flag, deleted):
    assert is_deleted(flag) is deleted


@pytest.mark.parametrize("value, expected", [
    (None, None), (b"ab", "ab"), (b"\xff", "\\xff"), (Decimal("1.5"), "1.5"), (3, "3"), ("x", "x"),
])
def test_text_accepts_any_driver_value(value, expected):
    assert text(value) == expected


@pytest.mark.parametrize("value, expected", [
    (5, 5), (" 42 ", 42), ("-3", -3), (384376.0, 384376), ("384376.0", 384376), (Decimal("7"), 7),
    ("4.5", None), (4.5, None), ("x", None), ("", None), (None, None), (True, None), ("١٢", None),
])
def test_parse_int(value, expected):
    assert parse_int(value) == expected


@pytest.mark.parametrize("value, expected", [(70031, 70031), ("70031", 70031), (2**31, None), (-(2**31), -(2**31)), ("7e3", None)])
def test_parse_nom_id_fits_the_target_integer(value, expected):
    assert parse_nom_id(value) == expected


# -------------------------------------------------------------------------------- dates

@pytest.mark.parametrize("value, expected", [
    # DD/MM/YYYY
    ("14/01/2019", D(2019, 1, 14)), (" 14/01/2019 ", D(2019, 1, 14)), ("29/02/2016", D(2016, 2, 29)),
    ("31/12/1999", D(1999, 12, 31)),
    # DD/MM/YY, pivot: 00-49 → 20yy, 50-99 → 19yy
    ("14/01/19", D(2019, 1, 14)), ("01/01/00", D(2000, 1, 1)), ("31/12/49", D(2049, 12, 31)),
    ("01/01/50", D(1950, 1, 1)), ("31/12/99", D(1999, 12, 31)), ("29/02/00", D(2000, 2, 29)),
    # YYYYMMDD (2008 bulk import)
    ("20190114", D(2019, 1, 14)), ("20000229", D(2000, 2, 29)),
    # unknown
    (None, UNKNOWN), ("", UNKNOWN), ("   ", UNKNOWN), ("00/00/0000", UNKNOWN), ("00000000", UNKNOWN),
    (" 00/00/0000 ", UNKNOWN),
    # impossible calendar dates
    ("31/02/2015", INVALID), ("00/13/2011", INVALID), ("29/02/2019", INVALID), ("29/02/1900", INVALID),
    ("00/01/2019", INVALID), ("01/00/2019", INVALID), ("20190230", INVALID), ("01/01/0000", INVALID),
    ("29/02/99", INVALID),
    # other forms
    ("00/00/00", INVALID), ("1/1/2019", INVALID), ("14-01-2019", INVALID), ("2019-01-14", INVALID),
    ("14/01/201", INVALID), ("14/01/20190", INVALID), ("2019011", INVALID), ("201901140", INVALID),
    ("14.01.2019", INVALID), ("14/01/2019 10:30", INVALID), ("yesterday", INVALID),
    ("١٤/٠١/٢٠١٩", INVALID),  # Arabic-Indic digits are not accepted as digits
    ("14/01/2019\n", D(2019, 1, 14)),  # a trailing newline is white space: trimmed
    (20190114, D(2019, 1, 14)),  # an integer from a numeric-affinity column
])
def test_parse_date(value, expected):
    got = parse_date(value)
    assert got is expected if expected in (UNKNOWN, INVALID) else got == expected


@pytest.mark.parametrize("yy, year", [(0, 2000), (19, 2019), (49, 2049), (50, 1950), (99, 1999)])
def test_two_digit_year_pivot(yy, year):
    assert pivot_year(yy) == year


# -------------------------------------------------------------------------------- times

@pytest.mark.parametrize("value, expected", [
    ("0000", 0), ("1030", 630), ("2359", 1439), ("0930", 570), (" 0930 ", 570),
    ("9:30", 570), ("0:00", 0), ("09:30", 570), ("23:59", 1439),
    ("2400", 1440), ("24:00", 1440),  # midnight at the end of the day
    (None, UNKNOWN), ("", UNKNOWN), ("    ", UNKNOWN),
    ("2515", INVALID), ("12.30", INVALID), ("2401", INVALID), ("2460", INVALID), ("1260", INVALID),
    ("930", INVALID), ("10:3", INVALID), ("103", INVALID), ("12:30:00", INVALID), ("1230PM", INVALID),
    ("ab:cd", INVALID), ("24:01", INVALID), ("-100", INVALID), ("１２３０", INVALID),
])
def test_parse_time(value, expected):
    got = parse_time(value)
    assert got is expected if expected in (UNKNOWN, INVALID) else got == expected


# ------------------------------------------------------------------ UK civil time → UTC

@pytest.mark.parametrize("date_value, time_value, expected, fault", [
    # GMT in winter, BST in summer
    ("14/01/2019", "1030", utc(2019, 1, 14, 10, 30), None),
    ("14/07/2019", "1030", utc(2019, 7, 14, 9, 30), None),
    # blank time = 00:00 local
    ("14/07/2019", "", utc(2019, 7, 13, 23, 0), None),
    ("14/07/2019", None, utc(2019, 7, 13, 23, 0), None),
    # 2400 = 00:00 on the next day
    ("14/01/2019", "2400", utc(2019, 1, 15, 0, 0), None),
    ("31/12/2018", "2400", utc(2019, 1, 1, 0, 0), None),
    ("30/06/2019", "2400", utc(2019, 6, 30, 23, 0), None),
    # last Sunday of March 2019 (31/03): 01:00-02:00 local does not exist; fold=0 moves it
    # forward (01:30 read with the GMT offset = 02:30 BST = 01:30 UTC)
    ("31/03/2019", "0059", utc(2019, 3, 31, 0, 59), None),
    ("31/03/2019", "0100", utc(2019, 3, 31, 1, 0), None),
    ("31/03/2019", "0130", utc(2019, 3, 31, 1, 30), None),
    ("31/03/2019", "0200", utc(2019, 3, 31, 1, 0), None),
    ("31/03/2019", "0230", utc(2019, 3, 31, 1, 30), None),
    # last Sunday of October 2019 (27/10): 01:00-02:00 happens twice; fold=0 → BST (the first)
    ("27/10/2019", "0059", utc(2019, 10, 26, 23, 59), None),
    ("27/10/2019", "0130", utc(2019, 10, 27, 0, 30), None),
    ("27/10/2019", "0200", utc(2019, 10, 27, 2, 0), None),
    ("26/10/2019", "2400", utc(2019, 10, 26, 23, 0), None),
    # other years' changes
    ("26/03/2017", "0130", utc(2017, 3, 26, 1, 30), None),
    ("29/10/2017", "0130", utc(2017, 10, 29, 0, 30), None),
    # unknown / invalid
    ("", "1030", UNKNOWN, "date"), ("00/00/0000", "2515", UNKNOWN, "date"),
    ("31/02/2019", "1030", INVALID, "date"), ("31/02/2019", "2515", INVALID, "date"),
    ("14/01/2019", "2515", INVALID, "time"), ("14/01/2019", "12.30", INVALID, "time"),
    ("31/12/9999", "2400", INVALID, "date"),
])
def test_local_date_time_to_utc(date_value, time_value, expected, fault):
    instant, got_fault, day = parse_local_datetime(date_value, time_value)
    if expected in (UNKNOWN, INVALID):
        assert instant is expected and day is None
    else:
        assert instant == expected and instant.tzinfo is UTC and instant.microsecond == 0
        assert day == local_date(instant)
    assert got_fault == fault


def test_local_day_of_2400_is_the_next_day():
    assert parse_local_datetime("31/03/2017", "2400")[2] == D(2017, 4, 1)


def test_fast_offset_path_equals_zoneinfo_across_many_years():
    day = dt.datetime(1960, 1, 1)
    while day.year < 2040:
        for minute in (0, 90, 1439):  # the shortcut only matters for whole days
            naive = day + dt.timedelta(minutes=minute)
            expected = naive.replace(tzinfo=LONDON).astimezone(UTC)
            assert local_to_utc(naive.date(), naive.hour * 60 + naive.minute) == expected, naive
        day += dt.timedelta(days=1)


@pytest.mark.parametrize("value, expected", [
    ("20190115093000", utc(2019, 1, 15, 9, 30)),
    ("20190715093000", utc(2019, 7, 15, 8, 30)),
    (" 20190715093059 ", utc(2019, 7, 15, 8, 30, 59)),
    ("20191027013000", utc(2019, 10, 27, 0, 30)),  # ambiguous hour → BST
    ("20190331013000", utc(2019, 3, 31, 1, 30)),  # gap → forward
    (None, UNKNOWN), ("", UNKNOWN), ("00000000000000", UNKNOWN),
    ("20190230120000", INVALID), ("20190115240000", INVALID), ("20190115126000", INVALID),
    ("20190115120060", INVALID), ("201901150930", INVALID), ("2019-01-15 09:30", INVALID),
    ("2019011509300x", INVALID), ("²⁰¹⁹⁰¹¹⁵⁰⁹³⁰⁰⁰", INVALID),
])
def test_last_upd(value, expected):
    got = parse_last_upd(value)
    assert got is expected if expected in (UNKNOWN, INVALID) else got == expected


def test_to_utc_second_drops_microseconds_and_converts():
    bst = dt.datetime(2019, 7, 1, 12, 0, 0, 123456, tzinfo=LONDON)
    assert to_utc_second(bst) == utc(2019, 7, 1, 11, 0)
    assert to_utc_second(bst).tzinfo is UTC


# ---------------------------------------------------------------------------- postcode

@pytest.mark.parametrize("value, expected", [
    ("M1 1AA", "M1 1AA"), ("m11aa", "M1 1AA"), ("  m1   1aa ", "M1 1AA"), ("M601NW", "M60 1NW"),
    ("SK4 1AA", "SK4 1AA"), ("WA14 2DT", "WA14 2DT"), ("EC1A 1BB", "EC1A 1BB"), ("W1A0AX", "W1A 0AX"),
    ("M1\t1AA", "M1 1AA"), ("M1\u00a01AA", "M1 1AA"),
    (None, UNKNOWN), ("", UNKNOWN), ("   ", UNKNOWN),
    ("M1", INVALID), ("1AA", INVALID), ("M1 1A", INVALID), ("MANCHESTER", INVALID), ("M1 AAA", INVALID),
    ("ABC1 1AA", INVALID), ("M1 1AA1", INVALID), ("M1-1AA", INVALID), ("M1 1ÄA", INVALID), ("Ｍ1 1AA", INVALID),
])
def test_postcode(value, expected):
    got = normalise_postcode(value)
    assert got is expected if expected in (UNKNOWN, INVALID) else got == expected


# --------------------------------------------------------------------------------- PNC

@pytest.mark.parametrize("value, expected", [
    ("01/123456A", "01/123456A"), (" 99/1z ", "99/1Z"), ("19/1234567X", "19/1234567X"),
    (None, UNKNOWN), ("", UNKNOWN), ("  ", UNKNOWN),
    ("1/123456A", INVALID), ("01/12345678A", INVALID), ("01/A", INVALID), ("01-123456A", INVALID),
    ("01/123456", INVALID), ("01/123456AB", INVALID), ("01 /123456A", INVALID), ("01/123456A\n1", INVALID),
])
def test_pnc(value, expected):
    got = normalise_pnc(value)
    assert got is expected if expected in (UNKNOWN, INVALID) else got == expected


# ------------------------------------------------------------------------ free text

@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("   \n  \n", None),
    ("ENTERED VIA REAR  ", "ENTERED VIA REAR"),
    ("LINE ONE   \nLINE TWO\t\n\n", "LINE ONE\nLINE TWO"),
    ("A  \r\nB  \r\nC", "A\r\nB\r\nC"),  # CRLF kept
    ("A \rB ", "A\rB"),  # lone CR kept
    ("  INDENT KEPT", "  INDENT KEPT"),
    ('QUOTES "X", COMMAS; SEMI', 'QUOTES "X", COMMAS; SEMI'),
    ("A\n\n\nB", "A\n\n\nB"),  # blank lines inside kept
])
def test_clean_multiline(value, expected):
    assert clean_multiline(value) == expected


def test_clean_multiline_never_truncates_and_is_linear():
    long = ("WORD " * 1000 + "   \n") * 100  # ~500 KB
    out = clean_multiline(long)
    assert out == "\n".join(["WORD " * 999 + "WORD"] * 100)
    # a long run of spaces before a non-space must not backtrack quadratically
    nasty = " " * 200_000 + "x"
    assert clean_multiline(nasty) == nasty


# -------------------------------------------------------------------------- references

@pytest.mark.parametrize("value, prefix, expected", [
    ("CR/004512/19", "CR", (2019, "004512")), ("CR/000001/99", "CR", (1999, "000001")),
    ("CR/999999/50", "CR", (1950, "999999")), ("CR/000001/00", "CR", (2000, "000001")),
    ("IN/000981/18", "IN", (2018, "000981")),
    ("IN/000981/18", "CR", INVALID), ("cr/004512/19", "CR", INVALID), ("CR/04512/19", "CR", INVALID),
    ("CR/0045120/19", "CR", INVALID), ("CR/004512/2019", "CR", INVALID), ("CR004512/19", "CR", INVALID),
    ("CR/00451X/19", "CR", INVALID), ("", "CR", INVALID), (None, "CR", INVALID), ("CR/004512/19\n", "CR", INVALID),
])
def test_legacy_reference(value, prefix, expected):
    got = parse_legacy_ref(value, prefix)
    assert got is expected if expected is INVALID else got == expected


# ---------------------------------------------------------------------------------- ids

def test_ids_are_uuid5_under_the_project_namespace_and_deterministic():
    assert ids.crime_id("CR/004512/19") == str(uuid.uuid5(ids.NAMESPACE, "crime:CR/004512/19"))
    assert ids.intel_id("IN/000981/18") == str(uuid.uuid5(ids.NAMESPACE, "intelligence:IN/000981/18"))
    assert ids.person_id(70031) == str(uuid.uuid5(ids.NAMESPACE, "person:70031"))
    assert ids.location_id("crime", "CR/004512/19") == str(uuid.uuid5(ids.NAMESPACE, "location:crime:CR/004512/19"))
    assert ids.location_id("intelligence", "X") == str(uuid.uuid5(ids.NAMESPACE, "location:intelligence:X"))
    for name in ["", "ü" * 40, "x" * 1000, *map(str, range(300))]:
        assert ids.crime_id(name) == str(uuid.uuid5(ids.NAMESPACE, "crime:" + name))
        assert ids.intel_id(name) == str(uuid.uuid5(ids.NAMESPACE, "intelligence:" + name))
    # the namespace is fixed for the life of the project: a change re-keys every target row
    assert ids.crime_id("CR/004512/19") == "94eaf83c-c99a-59ce-81f8-502361de175e"


def test_ids_differ_by_entity():
    assert len({ids.crime_id("X"), ids.intel_id("X"), ids.location_id("crime", "X"),
                ids.location_id("intelligence", "X")}) == 4


def test_location_owner_must_be_known():
    with pytest.raises(ValueError):
        ids.location_id("person", "X")


# ---------------------------------------------------------------------------------- grid

@pytest.mark.parametrize("e, n, expected", [
    (384376, 398246, (384376, 398246)), ("384376", " 398246 ", (384376, 398246)),
    (700000, 1300000, (700000, 1300000)), (1, 1, (1, 1)),
    (None, 398246, UNKNOWN), (384376, None, UNKNOWN), (0, 398246, UNKNOWN), (384376, 0, UNKNOWN),
    (0, 0, UNKNOWN), (None, None, UNKNOWN), ("", "", UNKNOWN), (0, -5, UNKNOWN),
    (700001, 398246, INVALID), (384376, 1300001, INVALID), (-1, 398246, INVALID), (384376, -1, INVALID),
    ("abc", 398246, INVALID), (384376.5, 398246, INVALID),
])
def test_grid_pair(e, n, expected):
    got = geo.grid_pair(e, n)
    assert got is expected if expected in (UNKNOWN, INVALID) else got == expected


def _places():
    path = Path(__file__).resolve().parent.parent / "mappings" / "gm_places.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("place", _places(), ids=lambda p: p["place"])
def test_lat_lon_of_greater_manchester_landmarks(place):
    rows = [{"easting": int(place["easting"]), "northing": int(place["northing"])}]
    geo.fill_lat_lon(rows)
    assert rows[0]["latitude"] == pytest.approx(float(place["lat"]), abs=0.001)
    assert rows[0]["longitude"] == pytest.approx(float(place["lon"]), abs=0.001)
    assert rows[0]["latitude"] == round(rows[0]["latitude"], 6)


def test_fill_lat_lon_known_values_and_nulls_in_one_batch():
    rows = [
        {"easting": 384376, "northing": 398246},  # Piccadilly Gardens
        {"easting": None, "northing": None},
        {"easting": 351669, "northing": 381155},
    ]
    geo.fill_lat_lon(rows)
    assert (rows[0]["latitude"], rows[0]["longitude"]) == (53.480701, -2.236895)
    assert (rows[1]["latitude"], rows[1]["longitude"]) == (None, None)
    assert rows[2]["latitude"] is not None
    geo.fill_lat_lon([])  # nothing to do is fine


def test_transform_is_pinned_to_the_osgb36_to_wgs84_6_helmert_operation():
    # What pyproj chooses by default when the OSTN15 grid is absent (a standard install),
    # pinned so that installing the grid cannot change migrated coordinates.
    from pyproj.transformer import TransformerGroup

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "best transformation is not available" (no grid file)
        group = TransformerGroup("EPSG:27700", "EPSG:4326", always_xy=True)
    helmert = [t for t in group.transformers if "OSGB36 to WGS 84 (6)" in t.description]
    assert helmert, [t.description for t in group.transformers]
    lon, lat = helmert[0].transform(384376, 398246)
    assert geo.to_lat_lon([384376], [398246]) == [(round(lat, 6), round(lon, 6))]

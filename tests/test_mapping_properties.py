"""Property tests: parsing laws, and whole legacy rows with arbitrary values in every column
always give a well-formed ``Mapped`` — never an exception (mapping.md, all entities)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core import schema
from mappings import MappingContext, map_crimes, map_intel, map_links, map_persons
from mappings.parse import (
    INVALID, LONDON, UNKNOWN, collapse, local_to_utc, normalise_pnc, normalise_postcode, parse_date,
    parse_last_upd, parse_local_datetime, parse_time, text,
)
from mappings.person import split_name
from mappings.reference import load_reference

UTC = dt.timezone.utc
REF = load_reference()
RUN = dt.datetime(2019, 7, 1, 6, 0, tzinfo=UTC)

PROPS = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
ROWS = settings(deadline=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ------------------------------------------------------------------------ value strategies

SQL_META = ["'", "''", '"', ";", "--", "/*", "*/", "%", "_", "\\", "' OR '1'='1", "'; DROP TABLE CRIME; --",
            "\x00", "NULL", "null", "\\N", "0x27", "${x}", "{0}", "%s", "?", ":name"]
EDGE_UNICODE = ["\u00a0", "\u2028", "\u2029", "\u200b", "\ufeff", "\u0085", "\u1680", "\u3000", "ß", "ﬀ", "İ",
                "ı", "Σ", "\U0001f600", "\u0301", "e\u0301", "١٢٣", "１２", "²", "Ⅻ", "\x1c", "\x1f", "\x7f",
                "\r\n", "\r", "\t", "\x0b", "\x0c"]

any_text = st.text()  # every code point except surrogates, control characters included
edge_text = st.lists(st.sampled_from(SQL_META + EDGE_UNICODE) | st.text(max_size=3), max_size=8).map("".join)
huge_text = st.builds(lambda s, n: (s or "x") * n, st.text(min_size=1, max_size=4), st.sampled_from([25_000, 100_000]))
near_valid_dates = st.dates().flatmap(lambda d: st.sampled_from([
    d.strftime("%d/%m/%Y"), d.strftime("%d/%m/%y"), d.strftime("%Y%m%d"), f" {d:%d/%m/%Y} ", f"{d:%d/%m/%Y}x",
]))
near_valid_times = st.tuples(st.integers(0, 30), st.integers(0, 70)).flatmap(lambda hm: st.sampled_from([
    f"{hm[0]:02d}{hm[1]:02d}", f"{hm[0]}:{hm[1]:02d}", f"{hm[0]:02d}:{hm[1]:02d}", "2400", "",
]))
valid_dates = st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2049, 12, 31)).flatmap(
    lambda d: st.sampled_from([d.strftime("%d/%m/%Y"), d.strftime("%d/%m/%y"), d.strftime("%Y%m%d")]))
valid_times = st.tuples(st.integers(0, 23), st.integers(0, 59)).flatmap(lambda hm: st.sampled_from([
    f"{hm[0]:02d}{hm[1]:02d}", f"{hm[0]}:{hm[1]:02d}", "2400", ""]))
anything = st.one_of(
    st.none(), any_text, edge_text, huge_text, near_valid_dates, near_valid_times,
    st.integers(-(2**63), 2**63), st.integers(-5, 1_400_000), st.floats(allow_nan=True),
    st.binary(max_size=20), st.sampled_from(["Y", "y", " Y", "N", "", "  "]),
)


def mostly(special):
    """Three times in four a plausible value, else anything: so that accepted records (and
    their warnings) are exercised, not only the first reject."""
    return st.integers(0, 3).flatmap(lambda i: anything if i == 0 else special)


def column_values(columns, specials=None):
    specials = specials or {}
    return st.fixed_dictionaries({c: mostly(specials[c]) if c in specials else anything for c in columns})


def legacy_columns(table):
    return [c.name for c in table.columns]


def ctx(migrated_persons=None, migrated_crimes=None):
    return MappingContext(
        REF, RUN,
        person_migrated=(lambda n: True) if migrated_persons is None else migrated_persons.__contains__,
        crime_migrated=(lambda c: True) if migrated_crimes is None else migrated_crimes.__contains__,
    )


REJECT_CODES = {
    "crime": {"BAD_REFERENCE", "MISSING_DATE", "INVALID_DATE", "UNMAPPED_OFFENCE", "INVALID_STATUS"},
    "person": {"BAD_REFERENCE", "MISSING_NAME"},
    "crime_person": {"ORPHAN_LINK", "INVALID_ROLE"},
    "intelligence": {"BAD_REFERENCE", "MISSING_DATE", "INVALID_DATE", "INVALID_GRADING", "EMPTY_INTELLIGENCE"},
}
# Our own codes (mappings/storable.py): values no target engine can store.
for _codes in REJECT_CODES.values():
    _codes |= {"INVALID_CHARACTER", "VALUE_TOO_LONG", "INVALID_ENCODING"}
WARN_CODES = {
    "crime": {"INVALID_COMMITTED_DATE", "COMMITTED_RANGE", "UNKNOWN_DIVISION", "UNKNOWN_DISPOSAL",
              "FINALISED_NO_OUTCOME", "INVALID_POSTCODE", "INVALID_GRID"},
    "person": {"INVALID_DOB", "INVALID_PNC"},
    "crime_person": {"DUPLICATE_LINK"},
    "intelligence": {"UNKNOWN_DIVISION", "INVALID_GRID", "ORPHAN_SUBJECT", "INVALID_REVIEW_DATE"},
}
TABLES = {
    "location": schema.location, "person": schema.person, "crime": schema.crime,
    "crime_person": schema.crime_person, "intelligence_report": schema.intelligence_report,
}


def check_well_formed(mapped_list, rows, entity):
    """The contract every caller relies on, whatever the input."""
    assert len(mapped_list) == len(rows)
    for m in mapped_list:
        assert m.entity == entity and isinstance(m.legacy_key, str)
        assert isinstance(m.warnings, list)
        if m.excluded:
            assert m.reject is None and m.rows == {}
        elif m.reject is not None:
            assert m.reject.code in REJECT_CODES[entity] and m.rows == {}
            assert m.reject.field is None or m.reject.field.isupper()
            assert m.reject.value is None or isinstance(m.reject.value, str)
        for w in m.warnings:
            assert w.code in WARN_CODES[entity]
            assert w.value is None or isinstance(w.value, str)
        for table, row in m.rows.items():
            assert set(row) == {c.name for c in TABLES[table].columns}, table
            for column in TABLES[table].columns:
                value = row[column.name]
                if not column.nullable:
                    assert value is not None, (table, column.name)
                if isinstance(value, dt.datetime):
                    assert value.tzinfo is UTC and value.microsecond == 0
                if isinstance(column.type, schema.String) and value is not None and not isinstance(column.type, schema.Text):
                    assert isinstance(value, str)
                if isinstance(value, str):  # accepted means storable on every target engine
                    assert "\x00" not in value, (table, column.name)
                    limit = getattr(column.type, "length", None)
                    assert limit is None or len(value) <= limit, (table, column.name, len(value))


# ----------------------------------------------------------------------- parsing laws

@PROPS
@given(anything)
def test_parsers_are_total(value):
    for parse in (parse_date, parse_time, parse_last_upd, normalise_postcode, normalise_pnc):
        parse(value)
    instant, fault, day = parse_local_datetime(value, value)
    assert instant in (UNKNOWN, INVALID) or (instant.tzinfo is UTC and day is not None)


@PROPS
@given(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_every_calendar_date_round_trips_in_both_long_forms(d):
    assert parse_date(f"{d.day:02d}/{d.month:02d}/{d.year:04d}") == d
    assert parse_date(f"{d.year:04d}{d.month:02d}{d.day:02d}") == d


@PROPS
@given(st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2049, 12, 31)))
def test_two_digit_years_round_trip_within_the_pivot_century(d):
    assert parse_date(d.strftime("%d/%m/%y")) == d


@PROPS
@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 9999))
def test_impossible_dates_are_invalid_never_a_date(day, month, year):
    try:
        real = dt.date(year, month, day)
    except ValueError:
        real = None
    got = parse_date(f"{day:02d}/{month:02d}/{year:04d}")
    if real is None:
        assert got is (UNKNOWN if (day, month, year) == (0, 0, 0) else INVALID)
    else:
        assert got == real


@PROPS
@given(st.integers(0, 23), st.integers(0, 59))
def test_every_clock_time_round_trips_in_all_three_forms(h, m):
    assert parse_time(f"{h:02d}{m:02d}") == parse_time(f"{h}:{m:02d}") == parse_time(f"{h:02d}:{m:02d}") == h * 60 + m


@PROPS
@given(st.integers(0, 99), st.integers(0, 99))
def test_out_of_range_times_are_invalid(h, m):
    assume(h > 23 or m > 59)
    expected = 1440 if (h, m) == (24, 0) else INVALID
    assert parse_time(f"{h:02d}{m:02d}") == expected
    assert parse_time(f"{h:02d}:{m:02d}") == expected


@PROPS
@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 12, 31)).map(lambda d: d.replace(second=0, microsecond=0)))
def test_uk_local_to_utc_matches_zoneinfo_fold_0(naive):
    got = local_to_utc(naive.date(), naive.hour * 60 + naive.minute)
    assert got == naive.replace(tzinfo=LONDON, fold=0).astimezone(UTC)
    back = got.astimezone(LONDON).replace(tzinfo=None)
    # The wall clock reads back the same, except in the spring gap where it moves forward.
    assert back == naive or back - naive == dt.timedelta(hours=1)


@PROPS
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 30)))
def test_2400_is_midnight_starting_the_next_day(d):
    instant, _, day = parse_local_datetime(d.strftime("%d/%m/%Y"), "2400")
    nxt, _, nxt_day = parse_local_datetime((d + dt.timedelta(days=1)).strftime("%d/%m/%Y"), "0000")
    assert instant == nxt and day == nxt_day


def _pair_as_composed(date_value, time_value):
    """parse_local_datetime built from its parts, with no caches and no shortcuts."""
    day = parse_date(date_value)
    if day is UNKNOWN or day is INVALID:
        return day, "date", None
    minutes = parse_time(time_value)
    if minutes is INVALID:
        return INVALID, "time", None
    instant = local_to_utc(day, 0 if minutes is UNKNOWN else minutes)
    if instant is INVALID:
        return INVALID, "date", None
    return instant, None, instant.astimezone(LONDON).date()


pad = st.sampled_from(["", " ", "  ", "\t"])
date_texts = st.one_of(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)).flatmap(
        lambda d: st.sampled_from([d.strftime("%d/%m/%Y"), d.strftime("%d/%m/%y"), d.strftime("%Y%m%d")])),
    st.sampled_from(["", "00/00/0000", "00000000", "31/02/2019", "01/01/0001", "31/12/9999", "00/00/00"]),
    st.text(max_size=12), st.none())
time_texts = st.one_of(
    st.integers(0, 24 * 60).map(lambda m: f"{m // 60:02d}{m % 60:02d}"),
    st.integers(0, 23 * 60 + 59).map(lambda m: f"{m // 60}:{m % 60:02d}"),
    st.sampled_from(["", "2400", "24:00", "2401", "2515", "12.30", "930"]), st.text(max_size=6), st.none())


@PROPS
@given(date_texts, time_texts, pad, pad)
def test_a_date_and_time_parse_as_their_parts_composed_also_from_the_caches(d, t, before, after):
    d = d if d is None else f"{before}{d}{after}"
    t = t if t is None else f"{after}{t}{before}"
    expected = _pair_as_composed(d, t)
    for _ in range(2):  # the second call finds the date and the time in their caches
        got = parse_local_datetime(d, t)
        assert got == expected and type(got[0]) is type(expected[0])
        if isinstance(got[0], dt.datetime):
            assert got[0].tzinfo is UTC


def test_the_first_and_last_days_a_datetime_holds_parse_or_are_invalid_never_raise():
    for d in ("01/01/0001", "31/12/9999"):
        for t in ("0000", "0001", "2359", "2400"):
            assert parse_local_datetime(d, t) == _pair_as_composed(d, t)


POSTCODE_RE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}")
valid_postcodes = st.from_regex(r"\A[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}\Z")


@PROPS
@given(anything)
def test_postcode_result_is_unknown_invalid_or_canonical(value):
    got = normalise_postcode(value)
    if got not in (UNKNOWN, INVALID):
        assert POSTCODE_RE.fullmatch(got) and len(got) <= 8
        assert normalise_postcode(got) == got


@PROPS
@given(valid_postcodes, st.lists(st.sampled_from([" ", "  ", "\t"]), max_size=3), st.booleans())
def test_any_spacing_or_case_of_a_valid_postcode_normalises_to_it(pc, spaces, lower):
    compact = pc.replace(" ", "")
    typed = "".join(ch + (spaces[i] if i < len(spaces) else "") for i, ch in enumerate(compact))
    typed = typed.lower() if lower else typed
    assert normalise_postcode(f"  {typed} ") == pc


@PROPS
@given(anything)
def test_pnc_result_is_canonical(value):
    got = normalise_pnc(value)
    if got not in (UNKNOWN, INVALID):
        assert re.fullmatch(r"[0-9]{2}/[0-9]{1,7}[A-Z]", got)


name_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@PROPS
@given(name_text | edge_text, st.none() | name_text | st.sampled_from(["", "  "]))
def test_names_are_trimmed_collapsed_and_otherwise_untouched(surname, forenames):
    family, given = split_name(surname, forenames)
    for part in (family, given):
        assert part is None or (part == part.strip() and "  " not in part and part)
    if "," not in surname or (forenames or "").strip():
        assert family == collapse(surname) and given == collapse(forenames)
    else:
        head, _, tail = surname.partition(",")
        assert (family, given) == (collapse(head), collapse(tail))


@PROPS
@given(st.text(st.characters(whitelist_categories=("Lu", "Ll", "Lt", "Lo", "Mn")), min_size=1, max_size=30),
       st.sampled_from(["", "'", "-", " "]), st.text(st.characters(whitelist_categories=("Lu", "Ll", "Lo")), min_size=1, max_size=30))
def test_letters_apostrophes_and_hyphens_survive(a, sep, b):
    family, _ = split_name(a + sep + b, "X")
    assert family == a + sep + b


# ---------------------------------------------------------------------- whole legacy rows

crime_rows = column_values(legacy_columns(schema.legacy_crime), {
    "crime_no": st.builds(lambda n, y, pad: f"{pad}CR/{n:06d}/{y:02d}{pad}", st.integers(0, 999999), st.integers(0, 99), st.sampled_from(["", " "])),
    "off_code": st.sampled_from(sorted(REF.crosswalk)),
    "rec_date": valid_dates, "rec_time": valid_times, "from_date": near_valid_dates, "to_date": near_valid_dates,
    "status": st.sampled_from(["O", "F", "X", "T", "f"]), "disposal": st.sampled_from(sorted(REF.disposals)),
    "div": st.sampled_from(sorted(REF.divisions)), "grid_e": st.integers(0, 700000), "grid_n": st.integers(0, 1300000),
    "pcode": valid_postcodes,
})


def check_issue_values(rows, out):
    """An issue's value is exactly the legacy value of the column it names (as text), so a
    reviewer can find it in OPUS; the two composite issues are the documented exceptions."""
    for row, m in zip(rows, out):
        for issue in [i for i in [m.reject, *m.warnings] if i is not None]:
            if issue.code in ("COMMITTED_RANGE", "DUPLICATE_LINK", "EMPTY_INTELLIGENCE"):
                continue
            assert issue.value == text(row.get(issue.field.lower())), issue


@ROWS
@given(st.lists(crime_rows, min_size=1, max_size=5))
def test_any_crime_rows_map_without_exception(rows):
    out = map_crimes(rows, ctx())
    check_well_formed(out, rows, "crime")
    check_issue_values(rows, out)


nominal_rows = column_values(legacy_columns(schema.legacy_nominal), {
    "nom_id": st.integers(-(2**31), 2**31 - 1), "dob": near_valid_dates, "surname": name_text,
})


@ROWS
@given(st.lists(nominal_rows, min_size=1, max_size=5))
def test_any_nominal_rows_map_without_exception(rows):
    out = map_persons(rows, ctx())
    check_well_formed(out, rows, "person")
    check_issue_values(rows, out)


link_rows = column_values(legacy_columns(schema.legacy_crime_nom), {
    "crime_no": st.sampled_from(["CR/000001/19", " CR/000001/19", "CR/000002/19"]),
    "nom_id": st.sampled_from([1, 2, "1", 3]), "role": st.sampled_from(["V", "s", " O ", "W", "X"]),
})


@ROWS
@given(st.lists(link_rows, min_size=1, max_size=8))
def test_any_link_rows_map_without_exception_and_each_triple_is_written_once(rows):
    out = map_links(rows, ctx(migrated_persons={1, 2}, migrated_crimes={"CR/000001/19"}))
    check_well_formed(out, rows, "crime_person")
    check_issue_values(rows, out)
    written = [tuple(sorted(m.rows["crime_person"].items())) for m in out if m.rows]
    assert len(written) == len(set(written))


intel_rows = column_values(legacy_columns(schema.legacy_intel), {
    "intel_no": st.builds(lambda n, y: f"IN/{n:06d}/{y:02d}", st.integers(0, 999999), st.integers(0, 99)),
    "submit_date": valid_dates, "submit_time": valid_times,
    "src_eval": st.sampled_from("ABCDE"), "int_eval": st.sampled_from("12345"), "handling": st.sampled_from("12345"),
    "review_date": near_valid_dates, "grid_e": st.integers(0, 700000), "grid_n": st.integers(0, 1300000),
})


@ROWS
@given(st.lists(intel_rows, min_size=1, max_size=5))
def test_any_intel_rows_map_without_exception_and_never_leak_text(rows):
    out = map_intel(rows, ctx(migrated_persons={1}))
    check_well_formed(out, rows, "intelligence")
    for row, m in zip(rows, out):
        for issue in [i for i in [m.reject, *m.warnings] if i is not None]:
            # Every issue value is exactly its own column's legacy value, and the one issue about
            # INT_TEXT carries none: intelligence text cannot reach a reject or warning.
            if issue.field == "INT_TEXT":
                assert issue.value is None
            else:
                assert issue.value == text(row[issue.field.lower()])


@ROWS
@given(st.lists(st.fixed_dictionaries({}, optional={c: anything for c in legacy_columns(schema.legacy_crime)}), max_size=4))
def test_rows_with_missing_columns_map_without_exception(rows):
    # The engine always passes every column; this guards against a partial projection.
    check_well_formed(map_crimes(rows, ctx()), rows, "crime")
    check_well_formed(map_persons(rows, ctx()), rows, "person")
    check_well_formed(map_links(rows, ctx()), rows, "crime_person")
    check_well_formed(map_intel(rows, ctx()), rows, "intelligence")


@ROWS
@given(crime_rows)
def test_mapping_is_deterministic(row):
    assert map_crimes([row], ctx()) == map_crimes([dict(row)], ctx())


#: The id columns of each target table: what the reconciler's mapping (ids.SKIPPED) leaves out.
ID_COLUMNS = {"crime_id", "location_id", "person_id", "intel_id", "subject_person_id"}
#: The stamps that come from LAST_UPD: what the reconciler's mapping (last_upd=False) leaves out.
STAMP_COLUMNS = {"created_at", "updated_at"}


def without_ids(out, left_out=ID_COLUMNS):
    return [(m.legacy_key, m.reject, m.warnings, m.excluded,
             {t: {c: v for c, v in row.items() if c not in left_out} for t, row in m.rows.items()},
             {t: sorted(c for c, v in row.items() if c in left_out and v is not None) for t, row in m.rows.items()})
            for m in out]


@ROWS
@given(st.lists(crime_rows, min_size=1, max_size=4), st.lists(nominal_rows, min_size=1, max_size=3),
       st.lists(link_rows, min_size=1, max_size=4), st.lists(intel_rows, min_size=1, max_size=3))
def test_mapping_without_ids_differs_only_in_the_ids(crimes, nominals, links, intel):
    """The reconciler maps with ``ids.SKIPPED`` (it compares no ids): every other value, every
    reject and warning, and which ids are present at all must be exactly the migration's."""
    from mappings import ids

    real = ctx(migrated_persons={1, 2}, migrated_crimes={"CR/000001/19"})
    skipped = dataclasses.replace(real, ids=ids.SKIPPED)
    for fn, rows in ((map_crimes, crimes), (map_persons, nominals), (map_links, links), (map_intel, intel)):
        with_real, with_skipped = fn(rows, real), fn(rows, skipped)
        assert without_ids(with_skipped) == without_ids(with_real)
        assert all(v == ids.SKIPPED_ID for m in with_skipped for row in m.rows.values()
                   for c, v in row.items() if c in ID_COLUMNS and v is not None)


#: LAST_UPD as OPUS holds it (YYYYMMDDHHMMSS, UK local), and its blank and broken forms.
last_upds = st.one_of(
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2030, 12, 31)).map(
        lambda d: d.strftime("%Y%m%d%H%M%S")),
    st.sampled_from([None, "", "  ", "00000000000000", "20190331013000", "20191027013000", "2019070112300",
                     "20190230120000", "20190701246000"]))


@ROWS
@given(st.lists(crime_rows, min_size=1, max_size=4), st.lists(nominal_rows, min_size=1, max_size=3),
       st.lists(intel_rows, min_size=1, max_size=3), st.lists(last_upds, min_size=4, max_size=4))
def test_mapping_without_last_upd_differs_only_in_the_stamps(crimes, nominals, intel, stamps):
    """The reconciler maps without reading LAST_UPD (it compares no created_at/updated_at):
    every other value, reject and warning must be exactly the migration's, and the stamps
    are those of a blank LAST_UPD."""
    real = ctx(migrated_persons={1, 2}, migrated_crimes={"CR/000001/19"})
    unread = dataclasses.replace(real, last_upd=False)
    crimes, nominals, intel = ([{**row, "last_upd": stamps[i]} for i, row in enumerate(rows)]
                               for rows in (crimes, nominals, intel))
    for fn, rows in ((map_crimes, crimes), (map_persons, nominals), (map_intel, intel)):
        with_read, without = fn(rows, real), fn(rows, unread)
        assert without_ids(without, STAMP_COLUMNS) == without_ids(with_read, STAMP_COLUMNS)
        blank = fn([{**row, "last_upd": None} for row in rows], real)
        assert [m.rows for m in without] == [m.rows for m in blank]

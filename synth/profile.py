"""What an OPUS store holds, read back from the store itself.

``profile_store(url)`` streams every table through the read-only engine and classifies each
value by what it *is* (a date in DD/MM/YY form, a postcode that only validates after
normalisation, a link whose crime is absent...), never by what a generator meant it to be —
so it checks the generator, and describes any real extract the same way.

Quirk names are ``<scope>.<quirk>``; every name in ``QUIRKS`` is always present (0 when
absent). Values are judged by the mapping's own parsers (``mappings.parse``: dates, times,
references, postcodes, PNC ids, LAST_UPD), so a quirk counts what the migration will find;
the rejects themselves, per entity and reason, are predicted by running the mapping
(``predict_rejects``), since one record can fail several checks and only its first counts.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

import sqlalchemy as sa

from core import db
from core.schema import legacy_tables
from mappings.entities import CRIME, ENTITIES
from mappings.parse import (INVALID, MIDNIGHT_END, UNKNOWN, normalise_pnc, normalise_postcode, parse_date,
                            parse_last_upd, parse_legacy_ref, parse_time)
from mappings.reference import Reference, load_reference

#: Every quirk the profile counts, with the words the report uses for it.
QUIRKS: dict[str, str] = {
    # store-wide forms of dates and times (all date / time columns)
    "dates.ddmmyy": "date as DD/MM/YY (older rows)",
    "dates.yyyymmdd": "date as YYYYMMDD (2008 bulk import)",
    "dates.unknown_zero_dmy": "date unknown: 00/00/0000",
    "dates.unknown_zero_ymd": "date unknown: 00000000",
    "dates.unknown_blank": "date unknown: blank",
    "dates.unknown_null": "date unknown: NULL",
    "dates.impossible": "impossible calendar date (31/02/2015, 00/13/2011)",
    "dates.malformed": "date in no accepted form",
    "times.h_mm": "time as H:MM",
    "times.hh_mm": "time as HH:MM",
    "times.t2400": "time 2400 (midnight at the end of the day)",
    "times.blank": "time blank",
    "times.null": "time NULL",
    "times.invalid": "invalid time (2515, 12.30)",
    "times.bst_gap": "local time in the spring-forward gap (does not exist)",
    "times.bst_repeated": "local time in the repeated autumn hour (ambiguous)",
    # crime
    "crime.padded_key": "CRIME_NO with leading/trailing spaces",
    "crime.bad_reference": "CRIME_NO not CR/nnnnnn/yy after trim",
    "crime.rec_date_missing": "REC_DATE unknown (MISSING_DATE)",
    "crime.rec_date_invalid": "REC_DATE or REC_TIME invalid (INVALID_DATE)",
    "crime.committed_invalid": "FROM/TO date or time invalid",
    "crime.committed_reversed": "committed_to before committed_from",
    "crime.unmapped_offence": "OFF_CODE with no crosswalk row for the date (UNMAPPED_OFFENCE)",
    "crime.offence_lower_case": "OFF_CODE in lower case (valid after normalisation)",
    "crime.offence_padded": "OFF_CODE with spaces (valid after trim)",
    "crime.offence_before_2017_change": "burglary-type code mapped by a row ending 2017-03-31",
    "crime.offence_after_2017_change": "burglary-type code mapped by a row starting 2017-04-01",
    "crime.invalid_status": "STATUS not O/F/X/T (INVALID_STATUS)",
    "crime.status_lower_case": "STATUS in lower case (valid after normalisation)",
    "crime.unknown_disposal": "DISPOSAL not in disposals.csv",
    "crime.finalised_no_disposal": "finalised with no DISPOSAL",
    "crime.unknown_div": "DIV not in divisions.csv",
    "crime.blank_div": "DIV blank",
    "crime.div_lower_case": "DIV in lower case (valid after normalisation)",
    "crime.beat_untidy": "BEAT blank, padded or lower case",
    "crime.oic_untidy": "OIC padded or lower case",
    "crime.addr_double_space": "ADDR_LINE with double spaces",
    "crime.addr_trailing_space": "ADDR_LINE with trailing spaces",
    "crime.addr_blank": "ADDR_LINE blank",
    "crime.busy_addresses": "addresses shared by 10 or more crimes",
    "crime.pcode_lower_case": "PCODE in lower case (valid after normalisation)",
    "crime.pcode_no_space": "PCODE without its space (valid after normalisation)",
    "crime.pcode_invalid": "PCODE not a UK postcode (INVALID_POSTCODE)",
    "crime.pcode_blank": "PCODE blank",
    "crime.grid_zero": "grid 0 (unknown)",
    "crime.grid_null": "grid NULL (unknown)",
    "crime.grid_out_of_range": "grid outside Great Britain (INVALID_GRID)",
    "crime.mo_multiline": "MO_TEXT over several lines",
    "crime.mo_trailing_spaces": "MO_TEXT lines ending in spaces",
    "crime.last_upd_invalid": "LAST_UPD blank or invalid",
    "crime.deleted": "logically deleted (DEL_FLAG 'Y')",
    # nominal
    "nominal.combined_name": "SURNAME 'SURNAME, FORENAMES', FORENAMES blank",
    "nominal.blank_surname": "no family name (MISSING_NAME)",
    "nominal.double_space": "name with double spaces",
    "nominal.trailing_space": "name with trailing spaces",
    "nominal.apostrophe": "surname with an apostrophe (O'BRIEN)",
    "nominal.hyphen": "surname with a hyphen (SMITH-JONES)",
    "nominal.non_ascii": "name with non-ASCII letters (MÜLLER, ZOË)",
    "nominal.dob_unknown": "DOB unknown",
    "nominal.dob_invalid": "DOB impossible or malformed",
    "nominal.dob_future": "DOB after today",
    "nominal.pnc_invalid": "PNC_ID not YY/NNNNNNNA (INVALID_PNC)",
    "nominal.pnc_lower_case": "PNC_ID in lower case (valid after normalisation)",
    "nominal.last_upd_invalid": "LAST_UPD blank or invalid",
    "nominal.deleted": "logically deleted (DEL_FLAG 'Y')",
    # crime_nom
    "crime_nom.role_lower_case": "ROLE in lower case (valid after normalisation)",
    "crime_nom.role_invalid": "ROLE not V/S/O/W (INVALID_ROLE)",
    "crime_nom.padded_crime_no": "CRIME_NO with spaces",
    "crime_nom.orphan_absent_crime": "link to a crime that does not exist",
    "crime_nom.orphan_deleted_crime": "link to a deleted crime",
    "crime_nom.orphan_absent_nominal": "link to a nominal that does not exist",
    "crime_nom.orphan_deleted_nominal": "link to a deleted nominal",
    "crime_nom.orphan_links": "links that are orphans on either side (ORPHAN_LINK)",
    "crime_nom.duplicate_after_normalisation": "links equal to another after trim/upper-case",
    "crime_nom.repeat_victims": "nominals who are victims in more than one crime",
    # intel
    "intel.padded_key": "INTEL_NO with leading/trailing spaces",
    "intel.bad_reference": "INTEL_NO not IN/nnnnnn/yy after trim",
    "intel.submit_date_missing": "SUBMIT_DATE unknown (MISSING_DATE)",
    "intel.submit_date_invalid": "SUBMIT_DATE or SUBMIT_TIME invalid (INVALID_DATE)",
    "intel.grade_invalid": "5x5x5 grade not in the table (INVALID_GRADING)",
    "intel.grade_blank": "5x5x5 grade blank (INVALID_GRADING)",
    "intel.grade_lower_case": "5x5x5 grade in lower case (valid after normalisation)",
    "intel.subject_missing": "SUBJ_NOM_ID of a nominal that does not exist",
    "intel.subject_deleted": "SUBJ_NOM_ID of a deleted nominal",
    "intel.text_blank": "INT_TEXT blank or white space (EMPTY_INTELLIGENCE)",
    "intel.text_over_255": "INT_TEXT longer than 255 characters",
    "intel.text_over_3000": "INT_TEXT longer than 3,000 characters",
    "intel.text_multiline": "INT_TEXT over several lines",
    "intel.text_trailing_spaces": "INT_TEXT lines ending in spaces",
    "intel.review_date_invalid": "REVIEW_DATE impossible or malformed",
    "intel.unknown_div": "DIV not in divisions.csv",
    "intel.grid_zero": "grid 0 (unknown)",
    "intel.grid_out_of_range": "grid outside Great Britain",
    "intel.last_upd_invalid": "LAST_UPD blank or invalid",
    "intel.deleted": "logically deleted (DEL_FLAG 'Y')",
}

#: Every entity's legacy table (``mappings.entities``), crimes first: one profiling pass each.
ENTITY_TABLES: tuple[str, ...] = (CRIME.legacy_table, *(e.legacy_table for e in ENTITIES if e is not CRIME))
#: The tables a profile counts, in the order it shows them: the code tables, then the entities'.
TABLE_ORDER = ("offence_code", "division", *ENTITY_TABLES)


@dataclass
class Profile:
    url: str                                   # masked
    tables: dict[str, int]                     # rows per table
    quirks: dict[str, int]                     # every name of QUIRKS -> count
    distributions: dict[str, dict[str, int]]   # e.g. "offence_group", "crime.rec_date form", "crime.status"
    facts: dict[str, object] = field(default_factory=dict)  # first/last recorded date, longest text...
    seconds: float = 0.0
    #: entity -> reject reason -> records the migration will reject (``profile_store(rejects=True)``)
    rejects: dict[str, dict[str, int]] | None = None

    def quirk(self, name: str) -> int:
        return self.quirks[name]


# ------------------------------------------------------------------------ value classifiers

#: The digit shapes of a date (ASCII digits, as the mapping reads them): one that is no real day is "impossible".
_DATE_SHAPE = re.compile(r"[0-9]{2}/[0-9]{2}/[0-9]{2}(?:[0-9]{2})?|[0-9]{8}", re.ASCII)
# Fast paths only (a value they pass is valid as it is); every verdict is the mapping's.
_CRIME_NO = re.compile(r"CR/[0-9]{6}/[0-9]{2}", re.ASCII)
_INTEL_NO = re.compile(r"IN/[0-9]{6}/[0-9]{2}", re.ASCII)
_POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}", re.ASCII)
_PNC = re.compile(r"[0-9]{2}/[0-9]{1,7}[A-Z]", re.ASCII)

DATE_FORMS = ("DD/MM/YYYY", "DD/MM/YY", "YYYYMMDD", "00/00/0000", "00000000", "blank", "NULL", "impossible",
              "malformed")
_DATE_QUIRK = {"DD/MM/YY": "dates.ddmmyy", "YYYYMMDD": "dates.yyyymmdd", "00/00/0000": "dates.unknown_zero_dmy",
               "00000000": "dates.unknown_zero_ymd", "blank": "dates.unknown_blank", "NULL": "dates.unknown_null",
               "impossible": "dates.impossible", "malformed": "dates.malformed"}
_TIME_QUIRK = {"H:MM": "times.h_mm", "HH:MM": "times.hh_mm", "2400": "times.t2400", "blank": "times.blank",
               "NULL": "times.null", "invalid": "times.invalid"}
UNKNOWN_DATE_FORMS = frozenset({"00/00/0000", "00000000", "blank", "NULL"})
BAD_DATE_FORMS = frozenset({"impossible", "malformed"})


@lru_cache(maxsize=200_000)
def classify_date(value: str | None) -> tuple[str, dt.date | None]:
    """(form, date): form is one of DATE_FORMS; date only for a real calendar date.

    Whether a value is a date, unknown or invalid is the mapping's verdict (``parse_date``),
    so the counts are what the migration will find; the form only names its shape."""
    day = parse_date(value)
    if value is None:
        return "NULL", None
    s = value.strip()
    if day is UNKNOWN:
        return ("blank" if not s else s), None
    if day is INVALID:
        return ("impossible" if _DATE_SHAPE.fullmatch(s) else "malformed"), None
    return ("YYYYMMDD" if "/" not in s else "DD/MM/YY" if len(s) == 8 else "DD/MM/YYYY"), day


@lru_cache(maxsize=20_000)
def classify_time(value: str | None) -> tuple[str, int | None]:
    """(form, minute of the day): HHMM, H:MM, HH:MM, 2400 (minute 1440), blank, NULL, invalid.

    The minute is the mapping's (``parse_time``: ``24:00`` is 2400 too)."""
    minute = parse_time(value)
    if value is None:
        return "NULL", None
    if minute is UNKNOWN:
        return "blank", None
    if minute is INVALID:
        return "invalid", None
    s = value.strip()
    if minute == MIDNIGHT_END:
        return "2400", minute
    return ("HHMM" if ":" not in s else "H:MM" if len(s) == 4 else "HH:MM"), minute


def _clock_change_sundays(year: int) -> tuple[dt.date, dt.date]:
    out = []
    for month in (3, 10):
        last = dt.date(year, month, 31)
        out.append(last - dt.timedelta(days=(last.weekday() + 1) % 7))
    return out[0], out[1]


@lru_cache(maxsize=256)
def _changeovers(year: int) -> tuple[dt.date, dt.date]:
    return _clock_change_sundays(year)


def bst_hour(day: dt.date | None, minute: int | None) -> str | None:
    """'gap' for 01:00-01:59 on the spring Sunday, 'repeated' for it on the autumn Sunday."""
    if day is None or minute is None or not 60 <= minute < 120 or day.weekday() != 6:
        return None
    spring, autumn = _changeovers(day.year)
    return "gap" if day == spring else "repeated" if day == autumn else None


@lru_cache(maxsize=100_000)
def classify_postcode(value: str | None) -> str:
    """ok, lower_case, no_space (both valid after normalisation), invalid, blank."""
    norm = normalise_postcode(value)
    if norm is UNKNOWN:
        return "blank"
    if norm is INVALID:
        return "invalid"
    if value != value.upper():
        return "lower_case"
    if " " not in value.strip():
        return "no_space"
    return "ok"


def classify_grid(east: int | None, north: int | None) -> str:
    if east == 0 or north == 0:
        return "zero"
    if east is None or north is None:
        return "null"
    if not (0 <= east <= 700000 and 0 <= north <= 1300000):
        return "out_of_range"
    return "ok"


def _stamp_days() -> frozenset[str]:
    """Every real YYYYMMDD of 1990-2039: the fast path of the LAST_UPD check (one set look-up)."""
    day, out = dt.date(1990, 1, 1), set()
    while day.year < 2040:
        out.add(f"{day.year}{day.month:02d}{day.day:02d}")
        day += dt.timedelta(days=1)
    return frozenset(out)


STAMP_DAYS = _stamp_days()


def last_upd_ok(value: str | None) -> bool:
    """LAST_UPD is 14 digits of a real local date and time (YYYYMMDDHHMMSS): the mapping's
    ``parse_last_upd`` gives an instant (else updated_at falls back)."""
    return isinstance(parse_last_upd(value), dt.datetime)


def _deleted(flag) -> bool:
    return flag is not None and flag.strip() == "Y"


def _untidy(value: str | None) -> bool:
    """Blank, padded or not upper case: what 'trim, upper case' in mapping.md would change."""
    return value is None or not value.strip() or value != value.strip().upper()


def _has_trailing_line_space(text: str) -> bool:
    return " \n" in text or "\t\n" in text or " \r\n" in text or text[-1:] in (" ", "\t")


# ------------------------------------------------------------------------------- profiling
#
# One pass per table. A pass keeps per-row work to a few dictionary look-ups: values of low
# cardinality (codes, dates, times, flags) are counted as they are and classified once per
# distinct value at the end; only what depends on several columns of a row is decided per row.
# The passes are independent, so a large store is profiled by two processes at once.


@dataclass
class _Part:
    quirks: Counter = field(default_factory=Counter)
    dist: dict[str, Counter] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)

    def counter(self, name: str) -> Counter:
        return self.dist.setdefault(name, Counter())

    def merge(self, other: "_Part") -> None:
        self.quirks.update(other.quirks)
        for name, c in other.dist.items():
            self.counter(name).update(c)
        cpu = {**self.facts.get("cpu_seconds", {}), **other.facts.get("cpu_seconds", {})}
        self.facts.update(other.facts)
        self.facts["cpu_seconds"] = cpu


def _date_values(part: _Part, column: str, values: Counter) -> None:
    """Forms of one date column (distribution) and the store-wide date quirks."""
    forms = part.counter(f"{column} form")
    for value, n in values.items():
        form = classify_date(value)[0]
        forms[form] += n
        quirk = _DATE_QUIRK.get(form)
        if quirk:
            part.quirks[quirk] += n


def _time_values(part: _Part, values: Counter) -> None:
    for value, n in values.items():
        quirk = _TIME_QUIRK.get(classify_time(value)[0])
        if quirk:
            part.quirks[quirk] += n


def _bst_strings() -> frozenset[str]:
    """Clock-change Sundays in every date form OPUS uses (a cheap first test per row)."""
    out = set()
    for year in range(1990, 2040):
        for d in _clock_change_sundays(year):
            out.update({f"{d.day:02d}/{d.month:02d}/{d.year}", f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",
                        f"{d.year}{d.month:02d}{d.day:02d}"})
    return frozenset(out)


BST_DATE_STRINGS = _bst_strings()


def _bst(part: _Part, date_value, time_value) -> None:
    """Called only for dates that are clock-change Sundays."""
    form, day = classify_date(date_value)
    tform, minute = classify_time(time_value)
    b = bst_hour(day, minute)
    if b:
        part.quirks["times.bst_gap" if b == "gap" else "times.bst_repeated"] += 1


def profile_store(legacy_url: str, *, workers: int | None = None, rejects: bool = False) -> Profile:
    """Read the whole store (streaming) and count rows, quirks and distributions.

    ``workers``: processes to read with (default: 2 for stores of 100,000 crimes or more).
    ``rejects``: also predict the migration's rejects per entity and reason (``predict_rejects``:
    it maps every record, so it costs about what a dry run of the migration costs).
    """
    started = time.perf_counter()
    engine = db.open_legacy(legacy_url)
    try:
        with db.store_errors(engine, "legacy"), engine.connect() as conn:
            tables = legacy_tables(engine)
            counts = {name: conn.execute(sa.select(sa.func.count()).select_from(tables[name])).scalar_one()
                      for name in TABLE_ORDER}
    finally:
        engine.dispose()
    if workers is None:
        workers = 2 if counts["crime"] >= 100_000 else 1
    if workers > 1:
        from core.pool import Pool

        # CRIME here, the other tables in one more process (spawn: a clean interpreter, whatever
        # the caller has open); the two halves take about the same time.
        with Pool(1, what="profile") as pool:
            others = pool.submit(_run_passes, legacy_url, ENTITY_TABLES[1:])
            total = _run_passes(legacy_url, ENTITY_TABLES[:1])
            total.merge(pool.result(others))
    else:
        total = _run_passes(legacy_url, ENTITY_TABLES)
    quirks = {name: total.quirks.get(name, 0) for name in QUIRKS}
    dists = {name: dict(sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0])))) for name, c in total.dist.items()}
    predicted = predict_rejects(legacy_url) if rejects else None
    return Profile(url=db.mask_url(legacy_url), tables=counts, quirks=quirks, distributions=dists,
                   facts=total.facts, seconds=time.perf_counter() - started, rejects=predicted)


def predict_rejects(legacy_url: str) -> dict[str, dict[str, int]]:
    """entity -> reject reason -> count, as a migration of this store into an empty target
    will reject them: the migration's own dry run (``mappings.map_*`` in its order, with its
    accepted keys and duplicate-key rule), against a target that does not exist, so nothing
    but the legacy store is read. No copy of a mapping rule lives here."""
    import tempfile

    from migrate.engine import migrate

    with tempfile.TemporaryDirectory(prefix="opus2iops-profile-") as folder:
        result = migrate(legacy_url, f"sqlite:///{folder}/no-target.db", dry_run=True)
    return {entity: dict(sorted(c.rejected_by.items())) for entity, c in result.counts.items()}


def _run_passes(legacy_url: str, which: tuple[str, ...]) -> _Part:
    ref = load_reference()
    engine = db.open_legacy(legacy_url)
    part = _Part()
    try:
        with db.store_errors(engine, "legacy"), engine.connect() as conn:
            tables = legacy_tables(engine)
            for name in which:
                started = time.process_time()
                _PASSES[name](conn, tables, ref, part)
                part.facts.setdefault("cpu_seconds", {})[name] = round(time.process_time() - started, 2)
    finally:
        engine.dispose()
    return part


def _crimes(conn, tables, ref: Reference, part: _Part) -> None:
    stamp_days = STAMP_DAYS
    c = tables["crime"]
    q = part.quirks
    district_name = {row["lad_code"]: row["district"] for row in ref.districts}
    div_district = {div: district_name.get(code, code) for div, code in ref.divisions.items()}
    groups = {code: ho.offence_group for code, ho in ref.ho_offences.items()}
    crosswalk, disposals = ref.crosswalk, ref.disposals
    bst_days = BST_DATE_STRINGS
    crime_no_ok = _CRIME_NO.fullmatch
    postcode_ok = _POSTCODE.fullmatch
    # raw values counted as they are, classified once each at the end
    rec_dates, from_dates, to_dates = Counter(), Counter(), Counter()
    rec_times, other_times = Counter(), Counter()
    codes, status_disposal, divs, beats, oics, flags = Counter(), Counter(), Counter(), Counter(), Counter(), Counter()
    group_count, district_count, year_count = Counter(), Counter(), Counter()
    dates: dict = {}   # value -> (form, ordinal or None)
    times: dict = {}   # value -> minute or None (invalid), -1 for blank/NULL
    code_info: dict = {}
    first = last = None

    def date_of(v):
        got = dates[v] = classify_date(v)
        return got

    def minute_of(v):
        form, minute = classify_time(v)
        got = times[v] = -1 if form in ("blank", "NULL") else minute
        return got

    stmt = sa.select(c.c.crime_no, c.c.off_code, c.c.rec_date, c.c.rec_time, c.c.from_date, c.c.from_time,
                     c.c.to_date, c.c.to_time, c.c.div, c.c.beat, c.c.addr_line, c.c.pcode, c.c.grid_e,
                     c.c.grid_n, c.c.status, c.c.disposal, c.c.mo_text, c.c.oic, c.c.del_flag, c.c.last_upd)
    for rows in db.stream(conn, stmt).partitions():
        for (key, code, rec_date, rec_time, from_date, from_time, to_date, to_time, div, beat, addr, pcode,
             east, north, status, disposal, mo, oic, flag, last_upd) in rows:
            if len(key) != 12 or not crime_no_ok(key):
                if key != key.strip():
                    q["crime.padded_key"] += 1
                if parse_legacy_ref(key.strip(), "CR") is INVALID:
                    q["crime.bad_reference"] += 1
            rec_dates[rec_date] += 1
            rec_times[rec_time] += 1
            from_dates[from_date] += 1
            other_times[from_time] += 1
            to_dates[to_date] += 1
            other_times[to_time] += 1
            flags[flag] += 1
            divs[div] += 1
            beats[beat] += 1
            oics[oic] += 1
            codes[code] += 1
            status_disposal[(status, disposal)] += 1
            # recorded: unknown, invalid or a day (ordinal)
            rform, rday = dates.get(rec_date) or date_of(rec_date)
            rmin = times.get(rec_time)
            if rmin is None and rec_time not in times:
                rmin = minute_of(rec_time)
            if rday is None:
                q["crime.rec_date_missing" if rform in UNKNOWN_DATE_FORMS else "crime.rec_date_invalid"] += 1
            elif rmin is None:
                q["crime.rec_date_invalid"] += 1
                rday = None
            else:
                if first is None or rday < first:
                    first = rday
                if last is None or rday > last:
                    last = rday
                if rec_date in bst_days:
                    _bst(part, rec_date, rec_time)
            # committed: invalid parts, clock-change hours, to before from
            fform, fday = dates.get(from_date) or date_of(from_date)
            fmin = times.get(from_time)
            if fmin is None and from_time not in times:
                fmin = minute_of(from_time)
            bad = fform in BAD_DATE_FORMS or fmin is None
            if from_date in bst_days:
                _bst(part, from_date, from_time)
            if to_date:
                tform, tday = dates.get(to_date) or date_of(to_date)
                tmin = times.get(to_time)
                if tmin is None and to_time not in times:
                    tmin = minute_of(to_time)
                bad = bad or tform in BAD_DATE_FORMS or tmin is None
                if to_date in bst_days:
                    _bst(part, to_date, to_time)
                if fday is not None and tday is not None and fmin is not None and tmin is not None:
                    if (tday, max(tmin, 0)) < (fday, max(fmin, 0)):
                        q["crime.committed_reversed"] += 1
            elif to_time:
                bad = bad or minute_of(to_time) is None
            if bad:
                q["crime.committed_invalid"] += 1
            # offence: the crosswalk row for the date recorded
            info = code_info.get(code)
            if info is None:
                info = code_info[code] = crosswalk.get((code or "").strip().upper(), ())
            ho = None
            if not info:
                q["crime.unmapped_offence"] += 1
            elif rday is not None:
                for row in info:
                    if row.covers(rday):
                        ho = row.ho_code
                        if row.valid_to is not None:
                            q["crime.offence_before_2017_change"] += 1
                        elif row.valid_from is not None:
                            q["crime.offence_after_2017_change"] += 1
                        break
                else:
                    q["crime.unmapped_offence"] += 1
            # address, postcode, grid, MO, last update
            if not addr or addr.isspace():
                q["crime.addr_blank"] += 1
            else:
                if addr[-1] == " ":
                    q["crime.addr_trailing_space"] += 1
                if "  " in addr and "  " in addr.strip():
                    q["crime.addr_double_space"] += 1
            if not (pcode and postcode_ok(pcode)):
                q["crime.pcode_" + classify_postcode(pcode)] += 1
            if not (east and north and 0 < east <= 700000 and 0 < north <= 1300000):
                q["crime.grid_" + classify_grid(east, north)] += 1
            if mo:
                if "\n" in mo:
                    q["crime.mo_multiline"] += 1
                    if _has_trailing_line_space(mo):
                        q["crime.mo_trailing_spaces"] += 1
                elif mo[-1] == " ":
                    q["crime.mo_trailing_spaces"] += 1
            if not (len(last_upd or "") == 14 and last_upd[:8] in stamp_days and last_upd[8:10] < "24"
                    and last_upd[10:12] < "60" and last_upd[12:] < "60" and last_upd[8:].isdigit()) \
                    and not last_upd_ok(last_upd):
                q["crime.last_upd_invalid"] += 1
            # what the Home Office return would count: live, migratable, not cancelled/transferred
            if ho is not None and status in ("O", "F") and not (flag == "Y" or (flag and flag != "N" and _deleted(flag))):
                group_count[groups.get(ho, "?")] += 1
                district_count[div] += 1
                year_count[rday.year] += 1

    _date_values(part, "crime.rec_date", rec_dates)
    _date_values(part, "crime.from_date", from_dates)
    _date_values(part, "crime.to_date", to_dates)
    _time_values(part, rec_times)
    _time_values(part, other_times)
    for code, n in codes.items():
        norm = (code or "").strip().upper()
        if norm in crosswalk:
            if code != code.strip():
                q["crime.offence_padded"] += n
            if code.strip() != norm:
                q["crime.offence_lower_case"] += n
    statuses = part.counter("crime.status")
    for (status, disposal), n in status_disposal.items():
        st = (status or "").strip()
        if st.upper() not in ("O", "F", "X", "T"):
            q["crime.invalid_status"] += n
        elif st != st.upper():
            q["crime.status_lower_case"] += n
        statuses[st.upper() or "blank"] += n
        disp = (disposal or "").strip().upper()
        if disp and disp not in disposals:
            q["crime.unknown_disposal"] += n
        if st.upper() == "F" and not disp:
            q["crime.finalised_no_disposal"] += n
    for div, n in divs.items():
        dv = (div or "").strip()
        if not dv:
            q["crime.blank_div"] += n
        elif dv.upper() not in div_district:
            q["crime.unknown_div"] += n
        elif dv != dv.upper():
            q["crime.div_lower_case"] += n
    q["crime.beat_untidy"] += sum(n for beat, n in beats.items() if _untidy(beat))
    q["crime.oic_untidy"] += sum(n for oic, n in oics.items() if oic is not None and oic != oic.strip().upper())
    q["crime.deleted"] += sum(n for flag, n in flags.items() if _deleted(flag))
    part.counter("offence_group").update(group_count)
    districts = part.counter("district")
    for div, n in district_count.items():
        districts[div_district.get((div or "").strip().upper(), "UNKNOWN")] += n
    part.counter("year recorded").update(year_count)
    part.facts["first_recorded"] = first.isoformat() if first else None
    part.facts["last_recorded"] = last.isoformat() if last else None
    busy = (sa.select(c.c.addr_line).where(c.c.addr_line.is_not(None)).group_by(c.c.addr_line)
            .having(sa.func.count() >= 10).subquery())
    q["crime.busy_addresses"] = conn.execute(sa.select(sa.func.count()).select_from(busy)).scalar_one()


def _nominals(conn, tables, ref: Reference, part: _Part) -> None:
    stamp_days = STAMP_DAYS
    n = tables["nominal"]
    q = part.quirks
    today = dt.date.today()
    pnc_ok = _PNC.fullmatch
    dobs, sexes, eths, flags = Counter(), Counter(), Counter(), Counter()
    stmt = sa.select(n.c.surname, n.c.forenames, n.c.dob, n.c.sex, n.c.pnc_id, n.c.eth_code, n.c.del_flag,
                     n.c.last_upd)
    for rows in db.stream(conn, stmt).partitions():
        for surname, forenames, dob, sex, pnc, eth, flag, last_upd in rows:
            dobs[dob] += 1
            sexes[sex] += 1
            eths[eth] += 1
            flags[flag] += 1
            sur = surname or ""
            fore = forenames or ""
            family = sur
            if "," in sur and (not fore or fore.isspace()):
                q["nominal.combined_name"] += 1
                family = sur.split(",", 1)[0]
            if not family or family.isspace():
                q["nominal.blank_surname"] += 1
            if ("  " in sur or "  " in fore) and ("  " in sur.strip() or "  " in fore.strip()):
                q["nominal.double_space"] += 1
            if sur[-1:] == " " or fore[-1:] == " ":
                q["nominal.trailing_space"] += 1
            if "'" in sur:
                q["nominal.apostrophe"] += 1
            if "-" in sur:
                q["nominal.hyphen"] += 1
            if not (sur.isascii() and fore.isascii()):
                q["nominal.non_ascii"] += 1
            if pnc is not None and not pnc_ok(pnc):
                norm = normalise_pnc(pnc)
                if norm is INVALID:
                    q["nominal.pnc_invalid"] += 1
                elif norm is not UNKNOWN and pnc.strip() != norm:
                    q["nominal.pnc_lower_case"] += 1
            if not (len(last_upd or "") == 14 and last_upd[:8] in stamp_days and last_upd[8:10] < "24"
                    and last_upd[10:12] < "60" and last_upd[12:] < "60" and last_upd[8:].isdigit()) \
                    and not last_upd_ok(last_upd):
                q["nominal.last_upd_invalid"] += 1
    _date_values(part, "nominal.dob", dobs)
    for dob, k in dobs.items():
        form, day = classify_date(dob)
        if form in UNKNOWN_DATE_FORMS:
            q["nominal.dob_unknown"] += k
        elif form in BAD_DATE_FORMS:
            q["nominal.dob_invalid"] += k
        elif day > today:
            q["nominal.dob_future"] += k
    for name, values in (("nominal.sex", sexes), ("nominal.ethnicity", eths)):
        c = part.counter(name)
        for value, k in values.items():
            c[(value or "").strip() or "blank"] += k
    q["nominal.deleted"] += sum(k for flag, k in flags.items() if _deleted(flag))


def _links(conn, tables, ref: Reference, part: _Part) -> None:
    cn, c, n = tables["crime_nom"], tables["crime"], tables["nominal"]
    q = part.quirks
    roles = Counter()
    unmatched: list[tuple[str, bool]] = []   # (trimmed crime_no, nominal side is orphan): a second look
    untidy: list[tuple[str, int, str]] = []  # normalised keys of links not in canonical form
    stmt = (sa.select(cn.c.crime_no, cn.c.nom_id, cn.c.role, c.c.crime_no, c.c.del_flag, n.c.nom_id, n.c.del_flag)
            .select_from(cn.outerjoin(c, c.c.crime_no == cn.c.crime_no).outerjoin(n, n.c.nom_id == cn.c.nom_id)))
    for rows in db.stream(conn, stmt).partitions():
        for crime_no, nom_id, role, c_no, c_flag, n_id, n_flag in rows:
            roles[role] += 1
            padded = crime_no[:1] == " " or crime_no[-1:] == " "
            if padded or role not in ("V", "S", "O", "W"):
                if padded:
                    q["crime_nom.padded_crime_no"] += 1
                untidy.append((crime_no.strip(), nom_id, (role or "").strip().upper()))
            nominal_orphan = n_id is None or (n_flag is not None and n_flag != "N" and _deleted(n_flag))
            if n_id is None:
                q["crime_nom.orphan_absent_nominal"] += 1
            elif nominal_orphan:
                q["crime_nom.orphan_deleted_nominal"] += 1
            if c_no is None:
                unmatched.append((crime_no.strip(), nominal_orphan))
                continue
            crime_deleted = c_flag is not None and c_flag != "N" and _deleted(c_flag)
            if crime_deleted:
                q["crime_nom.orphan_deleted_crime"] += 1
            if crime_deleted or nominal_orphan:
                q["crime_nom.orphan_links"] += 1
    role_dist = part.counter("crime_nom.role")
    for role, k in roles.items():
        r = (role or "").strip()
        if r.upper() not in ("V", "S", "O", "W"):
            q["crime_nom.role_invalid"] += k
        elif r != r.upper():
            q["crime_nom.role_lower_case"] += k
        role_dist[r.upper() or "blank"] += k
    # Links whose CRIME_NO matched nothing exactly may still match a crime after trimming.
    by_trimmed = _crimes_by_trimmed_key(conn, c, {t for t, _ in unmatched})
    for trimmed, nominal_orphan in unmatched:
        found = by_trimmed.get(trimmed)
        if found is None:
            q["crime_nom.orphan_absent_crime"] += 1
        elif found:
            q["crime_nom.orphan_deleted_crime"] += 1
        if found is None or found or nominal_orphan:
            q["crime_nom.orphan_links"] += 1
    q["crime_nom.duplicate_after_normalisation"] = _normalised_duplicates(conn, cn, untidy)
    victims = (sa.select(cn.c.nom_id).where(cn.c.role == "V").group_by(cn.c.nom_id)
               .having(sa.func.count() > 1).subquery())
    q["crime_nom.repeat_victims"] = conn.execute(sa.select(sa.func.count()).select_from(victims)).scalar_one()


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _crimes_by_trimmed_key(conn, c, keys: set[str]) -> dict[str, bool]:
    """trimmed CRIME_NO -> deleted? for the crimes among ``keys`` (stored exactly or padded)."""
    found: dict[str, bool] = {}
    padded = sa.select(c.c.crime_no, c.c.del_flag).where(c.c.crime_no != sa.func.trim(c.c.crime_no))
    for crime_no, flag in conn.execute(padded):
        if crime_no.strip() in keys:
            found[crime_no.strip()] = _deleted(flag)
    for chunk in _chunks(sorted(keys - set(found))):
        for crime_no, flag in conn.execute(sa.select(c.c.crime_no, c.c.del_flag).where(c.c.crime_no.in_(chunk))):
            found[crime_no.strip()] = _deleted(flag)
    return found


def _normalised_duplicates(conn, cn, untidy: list[tuple[str, int, str]]) -> int:
    """Links that normalise to a (crime, nominal, role) another link already has.

    Every link not in canonical form is in ``untidy``; its twins are either untidy too, or
    canonical rows whose CRIME_NO is exactly the trimmed key, fetched here by primary key.
    """
    groups = Counter(untidy)
    for chunk in _chunks(sorted({t for t, _, _ in untidy})):
        for crime_no, nom_id, role in conn.execute(
                sa.select(cn.c.crime_no, cn.c.nom_id, cn.c.role).where(cn.c.crime_no.in_(chunk))):
            if crime_no == crime_no.strip() and role in ("V", "S", "O", "W"):  # canonical rows only
                key = (crime_no, nom_id, role)
                if key in groups:
                    groups[key] += 1
    return sum(k - 1 for k in groups.values() if k > 1)


def _intel(conn, tables, ref: Reference, part: _Part) -> None:
    stamp_days = STAMP_DAYS
    i, n = tables["intel"], tables["nominal"]
    q = part.quirks
    intel_no_ok = _INTEL_NO.fullmatch
    bst_days = BST_DATE_STRINGS
    submit_dates, submit_times, reviews, divs, flags = Counter(), Counter(), Counter(), Counter(), Counter()
    grades = (Counter(), Counter(), Counter())
    invalid_submit = 0
    longest = 0
    stmt = (sa.select(i.c.intel_no, i.c.submit_date, i.c.submit_time, i.c.src_eval, i.c.int_eval, i.c.handling,
                      i.c.subj_nom_id, i.c.int_text, i.c.div, i.c.grid_e, i.c.grid_n, i.c.review_date,
                      i.c.del_flag, i.c.last_upd, n.c.nom_id, n.c.del_flag)
            .select_from(i.outerjoin(n, n.c.nom_id == i.c.subj_nom_id)))
    for rows in db.stream(conn, stmt).partitions():
        for (key, sdate, stime, src, intel_eval, handling, subj, text, div, east, north, review, flag, last_upd,
             n_id, n_flag) in rows:
            if len(key) != 12 or not intel_no_ok(key):
                if key != key.strip():
                    q["intel.padded_key"] += 1
                if parse_legacy_ref(key.strip(), "IN") is INVALID:
                    q["intel.bad_reference"] += 1
            submit_dates[sdate] += 1
            submit_times[stime] += 1
            reviews[review] += 1
            divs[div] += 1
            flags[flag] += 1
            grades[0][src] += 1
            grades[1][intel_eval] += 1
            grades[2][handling] += 1
            form, day = classify_date(sdate)
            if day is not None:
                if classify_time(stime)[0] == "invalid":
                    invalid_submit += 1
                elif sdate in bst_days:
                    _bst(part, sdate, stime)
            if subj is not None:
                if n_id is None:
                    q["intel.subject_missing"] += 1
                elif _deleted(n_flag):
                    q["intel.subject_deleted"] += 1
            if not text or text.isspace():
                q["intel.text_blank"] += 1
            else:
                length = len(text)
                if length > longest:
                    longest = length
                if length > 255:
                    q["intel.text_over_255"] += 1
                    if length > 3000:
                        q["intel.text_over_3000"] += 1
                if "\n" in text:
                    q["intel.text_multiline"] += 1
                    if _has_trailing_line_space(text):
                        q["intel.text_trailing_spaces"] += 1
            if not (east and north and 0 < east <= 700000 and 0 < north <= 1300000):
                grid = classify_grid(east, north)
                if grid in ("zero", "out_of_range"):
                    q["intel.grid_" + grid] += 1
            if not (len(last_upd or "") == 14 and last_upd[:8] in stamp_days and last_upd[8:10] < "24"
                    and last_upd[10:12] < "60" and last_upd[12:] < "60" and last_upd[8:].isdigit()) \
                    and not last_upd_ok(last_upd):
                q["intel.last_upd_invalid"] += 1
    _date_values(part, "intel.submit_date", submit_dates)
    _time_values(part, submit_times)
    _date_values(part, "intel.review_date", reviews)
    for value, k in submit_dates.items():
        form = classify_date(value)[0]
        if form in UNKNOWN_DATE_FORMS:
            q["intel.submit_date_missing"] += k
        elif form in BAD_DATE_FORMS:
            q["intel.submit_date_invalid"] += k
    q["intel.submit_date_invalid"] += invalid_submit
    q["intel.review_date_invalid"] += sum(k for v, k in reviews.items() if classify_date(v)[0] in BAD_DATE_FORMS)
    for dim, values in zip(("source", "intelligence", "handling"), grades):
        for value, k in values.items():
            g = (value or "").strip()
            if not g:
                q["intel.grade_blank"] += k
            elif (dim, g.upper()) not in ref.grading:
                q["intel.grade_invalid"] += k
            elif g != g.upper():
                q["intel.grade_lower_case"] += k
    q["intel.unknown_div"] += sum(k for v, k in divs.items() if (v or "").strip() and v.strip().upper() not in ref.divisions)
    q["intel.deleted"] += sum(k for flag, k in flags.items() if _deleted(flag))
    part.facts["longest_intel_text"] = longest


_PASSES = {"crime": _crimes, "nominal": _nominals, "crime_nom": _links, "intel": _intel}

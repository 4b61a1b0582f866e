"""What an OPUS store holds, read back from the store itself.

``profile_store(url)`` streams every table through the read-only engine and classifies each
value by what it *is* (a date in DD/MM/YY form, a postcode that only validates after
normalisation, a link whose crime is absent...), never by what a generator meant it to be —
so it checks the generator, and describes any real extract the same way.

Quirk names are ``<scope>.<quirk>``; every name in ``QUIRKS`` is always present (0 when
absent). Classifications follow ``mapping.md`` (trim, upper-case for code look-ups, the same
date/time forms and postcode pattern), so the counts predict the migration's rejects and
warnings.
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

TABLE_ORDER = ("offence_code", "division", "crime", "nominal", "crime_nom", "intel")


@dataclass
class Profile:
    url: str                                   # masked
    tables: dict[str, int]                     # rows per table
    quirks: dict[str, int]                     # every name of QUIRKS -> count
    distributions: dict[str, dict[str, int]]   # e.g. "offence_group", "crime.rec_date form", "crime.status"
    facts: dict[str, object] = field(default_factory=dict)  # first/last recorded date, longest text...
    seconds: float = 0.0

    def quirk(self, name: str) -> int:
        return self.quirks[name]


# ------------------------------------------------------------------------ value classifiers

_DMY4 = re.compile(r"(\d{2})/(\d{2})/(\d{4})")
_DMY2 = re.compile(r"(\d{2})/(\d{2})/(\d{2})")
_YMD = re.compile(r"(\d{4})(\d{2})(\d{2})")
_HHMM = re.compile(r"(\d{2})(\d{2})")
_H_MM = re.compile(r"(\d):(\d{2})")
_HH_MM = re.compile(r"(\d{2}):(\d{2})")
_CRIME_NO = re.compile(r"CR/\d{6}/\d{2}")
_INTEL_NO = re.compile(r"IN/\d{6}/\d{2}")
_POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}")
_PNC = re.compile(r"[0-9]{2}/[0-9]{1,7}[A-Z]")
_TRAILING_LINE_SPACE = re.compile(r"[ \t]+\r?\n")
_LAST_UPD = re.compile(r"\d{14}")

DATE_FORMS = ("DD/MM/YYYY", "DD/MM/YY", "YYYYMMDD", "00/00/0000", "00000000", "blank", "NULL", "impossible",
              "malformed")
_DATE_QUIRK = {"DD/MM/YY": "dates.ddmmyy", "YYYYMMDD": "dates.yyyymmdd", "00/00/0000": "dates.unknown_zero_dmy",
               "00000000": "dates.unknown_zero_ymd", "blank": "dates.unknown_blank", "NULL": "dates.unknown_null",
               "impossible": "dates.impossible", "malformed": "dates.malformed"}
_TIME_QUIRK = {"H:MM": "times.h_mm", "HH:MM": "times.hh_mm", "2400": "times.t2400", "blank": "times.blank",
               "NULL": "times.null", "invalid": "times.invalid"}
UNKNOWN_DATE_FORMS = frozenset({"00/00/0000", "00000000", "blank", "NULL"})
BAD_DATE_FORMS = frozenset({"impossible", "malformed"})


def _make_date(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


@lru_cache(maxsize=200_000)
def classify_date(value: str | None) -> tuple[str, dt.date | None]:
    """(form, date): form is one of DATE_FORMS; date only for a real calendar date."""
    if value is None:
        return "NULL", None
    s = value.strip()
    if not s:
        return "blank", None
    if s == "00/00/0000":
        return "00/00/0000", None
    if s == "00000000":
        return "00000000", None
    if m := _DMY4.fullmatch(s):
        form, y = "DD/MM/YYYY", int(m[3])
    elif m := _DMY2.fullmatch(s):
        yy = int(m[3])
        form, y = "DD/MM/YY", (2000 + yy if yy < 50 else 1900 + yy)
    elif m := _YMD.fullmatch(s):
        day = _make_date(int(m[1]), int(m[2]), int(m[3]))
        return ("YYYYMMDD", day) if day else ("impossible", None)
    else:
        return "malformed", None
    day = _make_date(y, int(m[2]), int(m[1]))
    return (form, day) if day else ("impossible", None)


@lru_cache(maxsize=20_000)
def classify_time(value: str | None) -> tuple[str, int | None]:
    """(form, minute of the day): HHMM, H:MM, HH:MM, 2400 (minute 1440), blank, NULL, invalid."""
    if value is None:
        return "NULL", None
    s = value.strip()
    if not s:
        return "blank", None
    if s == "2400":
        return "2400", 1440
    for form, pattern in (("HHMM", _HHMM), ("H:MM", _H_MM), ("HH:MM", _HH_MM)):
        if m := pattern.fullmatch(s):
            h, mi = int(m[1]), int(m[2])
            return (form, h * 60 + mi) if h < 24 and mi < 60 else ("invalid", None)
    return "invalid", None


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
    if value is None or not value.strip():
        return "blank"
    norm = value.upper().replace(" ", "")
    norm = norm[:-3] + " " + norm[-3:]
    if not _POSTCODE.fullmatch(norm):
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


def _blank(value) -> bool:
    return value is None or not str(value).strip()


def _last_upd_ok(value: str | None) -> bool:
    if value is None or not _LAST_UPD.fullmatch(value.strip()):
        return False
    s = value.strip()
    try:
        dt.datetime(int(s[:4]), int(s[4:6]), int(s[6:8]), int(s[8:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    return True


def _is_deleted(flag) -> bool:
    return flag is not None and flag.strip() == "Y"


# ------------------------------------------------------------------------------- profiling


class _Tally:
    def __init__(self):
        self.quirks: Counter = Counter()
        self.dist: dict[str, Counter] = {}

    def dist_add(self, name: str, key) -> None:
        self.dist.setdefault(name, Counter())[key] += 1

    def date(self, column: str, value) -> tuple[str, dt.date | None]:
        form, day = classify_date(value)
        self.dist_add(f"{column} form", form)
        q = _DATE_QUIRK.get(form)
        if q:
            self.quirks[q] += 1
        return form, day

    def time(self, column: str, value) -> tuple[str, int | None]:
        form, minute = classify_time(value)
        q = _TIME_QUIRK.get(form)
        if q:
            self.quirks[q] += 1
        return form, minute

    def when(self, day, minute) -> None:
        b = bst_hour(day, minute)
        if b:
            self.quirks["times.bst_gap" if b == "gap" else "times.bst_repeated"] += 1


def profile_store(legacy_url: str) -> Profile:
    """Read the whole store (streaming) and count rows, quirks and distributions."""
    started = time.perf_counter()
    ref = load_reference()
    engine = db.open_legacy(legacy_url)
    try:
        with db.store_errors(engine, "legacy"):
            tables = legacy_tables(engine)
            tally = _Tally()
            with engine.connect() as conn:
                counts = {name: conn.execute(sa.select(sa.func.count()).select_from(tables[name])).scalar_one()
                          for name in TABLE_ORDER}
                facts: dict[str, object] = {}
                _crimes(conn, tables, ref, tally, facts)
                _nominals(conn, tables, tally)
                _links(conn, tables, tally)
                _intel(conn, tables, ref, tally, facts)
    finally:
        engine.dispose()
    quirks = {name: tally.quirks.get(name, 0) for name in QUIRKS}
    dists = {name: dict(sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0])))) for name, c in tally.dist.items()}
    return Profile(url=db.mask_url(legacy_url), tables=counts, quirks=quirks, distributions=dists, facts=facts,
                   seconds=time.perf_counter() - started)


def _crimes(conn, tables, ref: Reference, tally: _Tally, facts: dict) -> None:
    c = tables["crime"]
    q = tally.quirks
    district_name = {row["lad_code"]: row["district"] for row in ref.districts}
    div_district = {div: district_name.get(code, code) for div, code in ref.divisions.items()}
    groups = {code: ho.offence_group for code, ho in ref.ho_offences.items()}
    crosswalk = ref.crosswalk
    disposals = ref.disposals
    first = last = None
    stmt = sa.select(c.c.crime_no, c.c.off_code, c.c.rec_date, c.c.rec_time, c.c.from_date, c.c.from_time,
                     c.c.to_date, c.c.to_time, c.c.div, c.c.beat, c.c.addr_line, c.c.pcode, c.c.grid_e,
                     c.c.grid_n, c.c.status, c.c.disposal, c.c.mo_text, c.c.oic, c.c.del_flag, c.c.last_upd)
    for (key, code, rec_date, rec_time, from_date, from_time, to_date, to_time, div, beat, addr, pcode,
         east, north, status, disposal, mo, oic, flag, last_upd) in db.stream(conn, stmt):
        deleted = _is_deleted(flag)
        if deleted:
            q["crime.deleted"] += 1
        if key != key.strip():
            q["crime.padded_key"] += 1
        if not _CRIME_NO.fullmatch(key.strip()):
            q["crime.bad_reference"] += 1
        # dates and times
        rform, rday = tally.date("crime.rec_date", rec_date)
        tform, rmin = tally.time("crime.rec_time", rec_time)
        if rform in UNKNOWN_DATE_FORMS:
            q["crime.rec_date_missing"] += 1
        elif rform in BAD_DATE_FORMS or tform == "invalid":
            q["crime.rec_date_invalid"] += 1
        else:
            tally.when(rday, rmin)
            first = rday if first is None or rday < first else first
            last = rday if last is None or rday > last else last
        fform, fday = tally.date("crime.from_date", from_date)
        ftform, fmin = tally.time("crime.from_time", from_time)
        toform, tday = tally.date("crime.to_date", to_date)
        ttform, tmin = tally.time("crime.to_time", to_time)
        if fform in BAD_DATE_FORMS or toform in BAD_DATE_FORMS or "invalid" in (ftform, ttform):
            q["crime.committed_invalid"] += 1
        tally.when(fday, fmin)
        tally.when(tday, tmin)
        if fday is not None and tday is not None and ftform != "invalid" and ttform != "invalid":
            if (tday, tmin or 0) < (fday, fmin or 0):
                q["crime.committed_reversed"] += 1
        # offence
        norm_code = (code or "").strip().upper()
        rows = crosswalk.get(norm_code)
        if code is not None and code != code.strip():
            q["crime.offence_padded"] += 1
        if rows and code.strip() != norm_code:
            q["crime.offence_lower_case"] += 1
        ho = None
        if not rows:
            q["crime.unmapped_offence"] += 1
        elif rday is not None:
            for row in rows:
                if row.covers(rday):
                    ho = row.ho_code
                    if row.valid_to is not None:
                        q["crime.offence_before_2017_change"] += 1
                    elif row.valid_from is not None:
                        q["crime.offence_after_2017_change"] += 1
                    break
            else:
                q["crime.unmapped_offence"] += 1
        # status and disposal
        st = (status or "").strip()
        if st.upper() not in ("O", "F", "X", "T"):
            q["crime.invalid_status"] += 1
        elif st != st.upper():
            q["crime.status_lower_case"] += 1
        st = st.upper()
        disp = (disposal or "").strip().upper()
        if disp and disp not in disposals:
            q["crime.unknown_disposal"] += 1
        if st == "F" and not disp:
            q["crime.finalised_no_disposal"] += 1
        tally.dist_add("crime.status", st or "blank")
        # division, beat, officer
        dv = (div or "").strip()
        if not dv:
            q["crime.blank_div"] += 1
        elif dv.upper() not in div_district:
            q["crime.unknown_div"] += 1
        elif dv != dv.upper():
            q["crime.div_lower_case"] += 1
        if beat is None or beat != beat.strip().upper() or not beat.strip():
            q["crime.beat_untidy"] += 1
        if oic is not None and oic != oic.strip().upper():
            q["crime.oic_untidy"] += 1
        # address, postcode, grid
        if _blank(addr):
            q["crime.addr_blank"] += 1
        else:
            if "  " in addr.strip():
                q["crime.addr_double_space"] += 1
            if addr != addr.rstrip():
                q["crime.addr_trailing_space"] += 1
        pc = classify_postcode(pcode)
        if pc != "ok":
            q[f"crime.pcode_{pc}"] += 1
        grid = classify_grid(east, north)
        if grid != "ok":
            q[f"crime.grid_{grid}"] += 1
        if mo:
            if "\n" in mo:
                q["crime.mo_multiline"] += 1
            if _TRAILING_LINE_SPACE.search(mo) or mo != mo.rstrip():
                q["crime.mo_trailing_spaces"] += 1
        if not _last_upd_ok(last_upd):
            q["crime.last_upd_invalid"] += 1
        # what the Home Office return would count (live, migratable, not cancelled/transferred)
        if not deleted and ho is not None and st in ("O", "F"):
            tally.dist_add("offence_group", groups.get(ho, "?"))
            tally.dist_add("district", div_district.get(dv.upper(), "UNKNOWN"))
            tally.dist_add("year recorded", rday.year)
    facts["first_recorded"] = first.isoformat() if first else None
    facts["last_recorded"] = last.isoformat() if last else None
    busy = (sa.select(c.c.addr_line).where(c.c.addr_line.is_not(None)).group_by(c.c.addr_line)
            .having(sa.func.count() >= 10).subquery())
    q["crime.busy_addresses"] = conn.execute(sa.select(sa.func.count()).select_from(busy)).scalar_one()


def _nominals(conn, tables, tally: _Tally) -> None:
    n = tables["nominal"]
    q = tally.quirks
    today = dt.date.today()
    stmt = sa.select(n.c.surname, n.c.forenames, n.c.dob, n.c.sex, n.c.pnc_id, n.c.eth_code, n.c.del_flag,
                     n.c.last_upd)
    for surname, forenames, dob, sex, pnc, eth, flag, last_upd in db.stream(conn, stmt):
        if _is_deleted(flag):
            q["nominal.deleted"] += 1
        sur = surname or ""
        fore = forenames or ""
        if not fore.strip() and "," in sur:
            q["nominal.combined_name"] += 1
            family = sur.split(",", 1)[0]
        else:
            family = sur
        if not family.strip():
            q["nominal.blank_surname"] += 1
        if "  " in sur.strip() or "  " in fore.strip():
            q["nominal.double_space"] += 1
        if sur != sur.rstrip() or fore != fore.rstrip():
            q["nominal.trailing_space"] += 1
        if "'" in sur:
            q["nominal.apostrophe"] += 1
        if "-" in sur:
            q["nominal.hyphen"] += 1
        if not (sur.isascii() and fore.isascii()):
            q["nominal.non_ascii"] += 1
        form, day = tally.date("nominal.dob", dob)
        if form in UNKNOWN_DATE_FORMS:
            q["nominal.dob_unknown"] += 1
        elif form in BAD_DATE_FORMS:
            q["nominal.dob_invalid"] += 1
        elif day > today:
            q["nominal.dob_future"] += 1
        if not _blank(pnc):
            p = pnc.strip()
            if not _PNC.fullmatch(p.upper()):
                q["nominal.pnc_invalid"] += 1
            elif p != p.upper():
                q["nominal.pnc_lower_case"] += 1
        tally.dist_add("nominal.sex", (sex or "").strip() or "blank")
        tally.dist_add("nominal.ethnicity", (eth or "").strip() or "blank")
        if not _last_upd_ok(last_upd):
            q["nominal.last_upd_invalid"] += 1


def _links(conn, tables, tally: _Tally) -> None:
    cn, c, n = tables["crime_nom"], tables["crime"], tables["nominal"]
    q = tally.quirks
    stmt = (sa.select(cn.c.crime_no, cn.c.nom_id, cn.c.role, c.c.crime_no, c.c.del_flag, n.c.nom_id, n.c.del_flag)
            .select_from(cn.outerjoin(c, c.c.crime_no == cn.c.crime_no).outerjoin(n, n.c.nom_id == cn.c.nom_id)))
    unmatched: list[tuple[str, bool]] = []   # (trimmed crime_no, nominal side is orphan) for a second look
    untidy: list[tuple[str, int, str]] = []  # normalised keys of links not in canonical form
    for crime_no, nom_id, role, c_no, c_flag, n_id, n_flag in db.stream(conn, stmt):
        trimmed = crime_no.strip()
        r = (role or "").strip()
        if r.upper() not in ("V", "S", "O", "W"):
            q["crime_nom.role_invalid"] += 1
        elif r != r.upper():
            q["crime_nom.role_lower_case"] += 1
        tally.dist_add("crime_nom.role", r.upper() or "blank")
        if trimmed != crime_no:
            q["crime_nom.padded_crime_no"] += 1
        if trimmed != crime_no or r != role or r != r.upper():
            untidy.append((trimmed, nom_id, r.upper()))
        nominal_orphan = n_id is None or _is_deleted(n_flag)
        if n_id is None:
            q["crime_nom.orphan_absent_nominal"] += 1
        elif _is_deleted(n_flag):
            q["crime_nom.orphan_deleted_nominal"] += 1
        if c_no is None:
            unmatched.append((trimmed, nominal_orphan))
            continue
        if _is_deleted(c_flag):
            q["crime_nom.orphan_deleted_crime"] += 1
        if _is_deleted(c_flag) or nominal_orphan:
            q["crime_nom.orphan_links"] += 1
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
    """trimmed CRIME_NO -> deleted? for the crimes among ``keys`` (exact or padded in the store)."""
    found: dict[str, bool] = {}
    padded = sa.select(c.c.crime_no, c.c.del_flag).where(c.c.crime_no != sa.func.trim(c.c.crime_no))
    for crime_no, flag in conn.execute(padded):
        if crime_no.strip() in keys:
            found[crime_no.strip()] = _is_deleted(flag)
    for chunk in _chunks(sorted(keys - set(found))):
        for crime_no, flag in conn.execute(sa.select(c.c.crime_no, c.c.del_flag).where(c.c.crime_no.in_(chunk))):
            found[crime_no.strip()] = _is_deleted(flag)
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
            r = (role or "").strip()
            if crime_no == crime_no.strip() and r == role and r == r.upper():  # canonical rows only
                key = (crime_no, nom_id, r)
                if key in groups:
                    groups[key] += 1
    return sum(n - 1 for n in groups.values() if n > 1)


def _intel(conn, tables, ref: Reference, tally: _Tally, facts: dict) -> None:
    i, n = tables["intel"], tables["nominal"]
    q = tally.quirks
    grading = ref.grading
    divisions = ref.divisions
    longest = 0
    stmt = (sa.select(i.c.intel_no, i.c.submit_date, i.c.submit_time, i.c.src_eval, i.c.int_eval, i.c.handling,
                      i.c.subj_nom_id, i.c.int_text, i.c.div, i.c.grid_e, i.c.grid_n, i.c.review_date,
                      i.c.del_flag, i.c.last_upd, n.c.nom_id, n.c.del_flag)
            .select_from(i.outerjoin(n, n.c.nom_id == i.c.subj_nom_id)))
    for (key, sdate, stime, src, intel_eval, handling, subj, text, div, east, north, review, flag, last_upd,
         n_id, n_flag) in db.stream(conn, stmt):
        if _is_deleted(flag):
            q["intel.deleted"] += 1
        if key != key.strip():
            q["intel.padded_key"] += 1
        if not _INTEL_NO.fullmatch(key.strip()):
            q["intel.bad_reference"] += 1
        form, day = tally.date("intel.submit_date", sdate)
        tform, minute = tally.time("intel.submit_time", stime)
        if form in UNKNOWN_DATE_FORMS:
            q["intel.submit_date_missing"] += 1
        elif form in BAD_DATE_FORMS or tform == "invalid":
            q["intel.submit_date_invalid"] += 1
        else:
            tally.when(day, minute)
        for dim, grade in (("source", src), ("intelligence", intel_eval), ("handling", handling)):
            g = (grade or "").strip()
            if not g:
                q["intel.grade_blank"] += 1
            elif (dim, g.upper()) not in grading:
                q["intel.grade_invalid"] += 1
            elif g != g.upper():
                q["intel.grade_lower_case"] += 1
        if subj is not None:
            if n_id is None:
                q["intel.subject_missing"] += 1
            elif _is_deleted(n_flag):
                q["intel.subject_deleted"] += 1
        if _blank(text):
            q["intel.text_blank"] += 1
        else:
            length = len(text)
            longest = max(longest, length)
            if length > 255:
                q["intel.text_over_255"] += 1
            if length > 3000:
                q["intel.text_over_3000"] += 1
            if "\n" in text:
                q["intel.text_multiline"] += 1
            if _TRAILING_LINE_SPACE.search(text):
                q["intel.text_trailing_spaces"] += 1
        rform, _ = tally.date("intel.review_date", review)
        if rform in BAD_DATE_FORMS:
            q["intel.review_date_invalid"] += 1
        dv = (div or "").strip().upper()
        if dv and dv not in divisions:
            q["intel.unknown_div"] += 1
        grid = classify_grid(east, north)
        if grid == "zero":
            q["intel.grid_zero"] += 1
        elif grid == "out_of_range":
            q["intel.grid_out_of_range"] += 1
        if not _last_upd_ok(last_upd):
            q["intel.last_upd_invalid"] += 1
    facts["longest_intel_text"] = longest

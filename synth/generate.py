"""``generate``: create and fill a synthetic OPUS store (opus-legacy.sql) for Greater Manchester.

What a migration engineer should recognise in it
------------------------------------------------
* Crimes recorded January 2008 to June 2019, numbered ``CR/nnnnnn/yy`` per year recorded, in
  recording order; volume dips to 2013 and climbs after 2014 as recording practice tightened;
  violence and sexual offences grow, burglary falls (offence mix from the OPUS codes of
  ``offence_crosswalk.csv``).
* All twelve OPUS divisions (ten districts), beats like ``MC04``, addresses in upper case with
  postcodes of the right area, OS grid references inside the district, collar numbers.
* Status and disposal consistent (open rows have none; finalised rows a code of
  ``disposals.csv``); old crimes are nearly all finalised, recent ones often open.
* About one nominal per crime (victims, suspects, offenders, witnesses; repeat victims and
  prolific offenders recur), one intelligence entry per three crimes with 5x5x5 gradings and
  long free text, busy shops at the landmarks of ``gm_places.csv`` with repeated addresses.
* Every quirk of ``opus-legacy.md`` at a small, named rate (``RATES``).

How it stays fast and flat
--------------------------
Rows are made as tuples from precomputed strings (dates, times, streets, text pools) and
written ``BATCH`` crimes at a time with one ``executemany`` per table; nothing about earlier
batches is kept except counters and small bounded pools of repeat victims and offenders.
Every random choice comes from ``random.Random`` objects seeded from the seed: the same seed
gives the same store, row for row and byte for byte.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import db
from core.errors import UsageError
from core.progress import bar
from core.schema import LEGACY_TABLES, create_legacy_schema, legacy_tables
from mappings.reference import TABLE_DIR, Reference, load_reference
from synth import names, texts
from synth.profile import Profile, profile_store

# ------------------------------------------------------------------------------ the quirks

#: Rate of each quirk: the probability that an eligible row (or value) carries it. The
#: eligible population is given in the comment. Small on purpose: a real extract is mostly
#: clean, and the tests and reports must find the needles, not a haystack of them.
RATES: dict[str, float] = {
    # keys (CRIME_NO / INTEL_NO)
    "padded_key": 0.003,            # key with a leading or trailing space (only where the column can hold 13 chars)
    "bad_reference": 0.0005,        # key typed wrongly ('CR/04512/19', 'CR004512/19'): BAD_REFERENCE
    # date forms (row style)
    "ddmmyy_older_rows": 0.30,      # rows recorded 2008-2011 written DD/MM/YY
    "yyyymmdd_bulk_import": 0.60,   # rows recorded Jan-Jun 2008, loaded by the 2008 bulk import: YYYYMMDD
    # dates
    "rec_date_unknown": 0.002,      # REC_DATE 00/00/0000, 00000000, blank or NULL: MISSING_DATE
    "rec_date_impossible": 0.001,   # 31/02/2015, 00/13/2011 ...: INVALID_DATE
    "from_date_unknown": 0.01,      # committed-from date unknown
    "from_date_impossible": 0.002,
    "to_date_impossible": 0.002,
    "committed_reversed": 0.003,    # committed_to earlier than committed_from
    "bst_committed": 0.002,         # committed in the missing/repeated hour of a clock change
    "bst_hour_on_changeover_day": 0.3,  # crimes recorded on a clock-change Sunday, recorded 01:00-01:59
    # times
    "time_h_mm": 0.01,              # 'H:MM' (hour < 10)
    "time_hh_mm": 0.005,            # 'HH:MM' (only where the column can hold 5 chars; else 'H:MM' or HHMM)
    "time_2400": 0.002,             # '2400' = midnight at the end of the date
    "time_invalid": 0.001,          # '2515', '12.30', '1260': INVALID_DATE on REC_TIME
    "rec_time_blank": 0.003,        # blank/NULL REC_TIME = 00:00
    "from_time_blank": 0.03,
    # text
    "name_trailing_spaces": 0.05,   # CHAR padding of the original platform
    "name_double_space": 0.01,
    "name_combined": 0.015,         # SURNAME 'SURNAME, FORENAMES' with FORENAMES blank
    "name_blank_surname": 0.003,    # MISSING_NAME
    "name_hyphenated": 0.015,       # SMITH-JONES
    "addr_trailing_spaces": 0.05,
    "addr_double_space": 0.01,
    "addr_blank": 0.005,
    "mo_trailing_spaces": 0.05,     # MO_TEXT lines ending in spaces
    "mo_multiline": 0.10,
    "mo_long": 0.005,               # MO_TEXT of 1,000-2,000 chars
    # postcodes and grids
    "pcode_lower": 0.01,            # 'm1 1aa' (valid after normalisation)
    "pcode_no_space": 0.02,         # 'M11AA' (valid after normalisation)
    "pcode_bad": 0.005,             # 'M1 1A', 'MANCHESTER': INVALID_POSTCODE
    "pcode_blank": 0.03,
    "grid_zero": 0.005,             # 0 = unknown
    "grid_null": 0.005,
    "grid_out_of_range": 0.002,     # 9999999 etc.: INVALID_GRID
    # codes
    "offence_unmapped": 0.003,      # retired, misspelt or no HO equivalent: UNMAPPED_OFFENCE
    "offence_lower": 0.005,         # 'burg-dw' (valid after normalisation)
    "offence_padded": 0.002,        # 'SHOP ' (valid after trim)
    "status_invalid": 0.001,        # 'Z', 'C', blank: INVALID_STATUS
    "status_lower": 0.002,          # 'f' (valid after normalisation)
    "disposal_unknown": 0.002,      # of finalised crimes: a code not in disposals.csv
    "finalised_no_disposal": 0.003,
    "div_unknown": 0.002,           # 'XX', 'GM': UNKNOWN_DIVISION
    "div_blank": 0.002,
    "div_lower": 0.002,             # 'mc' (valid after normalisation)
    "beat_untidy": 0.005,           # lower case or blank beat
    "oic_untidy": 0.005,            # ' 12345', 'dc4521'
    "last_upd_bad": 0.002,          # blank / invalid LAST_UPD
    # deletion
    "deleted": 0.005,               # DEL_FLAG 'Y' (crime, nominal, intel)
    # nominals
    "dob_unknown": 0.03,
    "dob_impossible": 0.002,
    "dob_future": 0.001,
    "pnc_invalid": 0.005,           # of nominals with a PNC id
    "pnc_lower": 0.003,             # '08/123456a' (valid after normalisation)
    # links
    "role_lower": 0.01,             # 'v' (valid after normalisation)
    "role_invalid": 0.002,          # 'X', 'A': INVALID_ROLE
    "link_orphan_crime": 0.002,     # link to a crime that never existed (per crime)
    "link_orphan_nominal": 0.002,   # link to a nominal that never existed (per crime)
    "link_duplicate": 0.002,        # same link again with the crime number padded (where it fits)
    "repeat_victim": 0.10,          # victim link to an earlier victim
    "repeat_offender": 0.30,        # suspect/offender link to a known offender
    # intelligence
    "intel_subject_missing": 0.005,  # SUBJ_NOM_ID of a nominal that does not exist
    "intel_text_blank": 0.003,      # '', spaces, NULL: EMPTY_INTELLIGENCE
    "intel_text_near_max": 0.005,   # 3,000-4,000 characters
    "intel_text_trailing_spaces": 0.03,
    "grade_invalid": 0.003,         # 'F', '6', '0': INVALID_GRADING (per grade)
    "grade_blank": 0.002,
    "grade_lower": 0.003,           # 'b' (valid after normalisation)
    "review_date_impossible": 0.003,
    "review_date_unknown": 0.01,
    "busy_premises_shop": 0.45,     # shoplifting at one of the busy premises
    "busy_premises_street": 0.08,   # thefts/robberies at a busy premises or stop
}

#: Crimes per write batch (one executemany per table per batch, one commit).
BATCH = 10_000
INTEL_PER_CRIME = 1 / 3
FIRST_DAY = dt.date(2008, 1, 1)
LAST_DAY = dt.date(2019, 6, 30)          # the extract: OPUS was replaced in July 2019
BULK_IMPORT_END = dt.date(2008, 6, 30)   # rows recorded before this may come from the 2008 bulk import
OLDER_ROWS_END = dt.date(2011, 12, 31)   # "older rows" may use DD/MM/YY
FIRST_NOM_ID = 70001
ABSENT_NOM_IDS = (10000, 69999)          # never issued: links and subjects pointing here are orphans
ABSENT_CRIME_YEARS = ("06", "07")        # before OPUS: crime numbers of these years never exist here

# Relative recorded-crime volume by year (dip to 2013, rise after the 2014 recording audit).
YEAR_VOLUME = {2008: 1.25, 2009: 1.15, 2010: 1.05, 2011: 1.0, 2012: 0.95, 2013: 0.93, 2014: 1.05,
               2015: 1.25, 2016: 1.45, 2017: 1.7, 2018: 1.85, 2019: 1.9}
MONTH_SEASON = (0.92, 0.88, 0.98, 0.98, 1.03, 1.03, 1.08, 1.06, 1.01, 1.04, 1.0, 0.97)

# Offence mix: (OPUS code, weight). Violence and theft dominate; homicide and rape are rare.
OFFENCE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("ASLT", 9), ("ASLT-INJ", 7), ("HARASS", 5), ("MALCOMMS", 2.5), ("STALK", 0.8), ("ASLT-PC", 0.8),
    ("ASLT-PC-INJ", 0.3), ("ASLT-RA", 0.4), ("ASLT-INJ-RA", 0.1), ("HARASS-RA", 0.3), ("GBH-INT", 0.5),
    ("THRT-KILL", 0.6), ("CHILD-CRUEL", 0.4), ("KIDNAP", 0.15), ("SLAVERY", 0.03), ("ATT-MURD", 0.03),
    ("HOMICIDE", 0.015), ("DTH-DANG", 0.01),
    ("RAPE-F16", 0.35), ("RAPE-M16", 0.03), ("SXASLT-F", 0.7), ("SXASLT-M", 0.08), ("SX-NOCONS", 0.1),
    ("GROOMING", 0.05), ("EXPOSURE", 0.3),
    ("ROB-PERS", 1.6), ("ROB-BUS", 0.2),
    ("BURG-DW", 5), ("BURG-DW-ATT", 1), ("BURG-DIST", 0.2), ("BURG-AGG", 0.1), ("BURG-OTD", 3),
    ("BURG-OTD-ATT", 0.6),
    ("TFMV", 4), ("TOMV", 2), ("AVT", 0.1), ("VEH-INTF", 0.6),
    ("TFP", 1.2), ("CYCLE", 1.5), ("SHOP", 8), ("THEFT-DW", 0.8), ("THEFT-EMP", 0.2), ("THEFT-MACH", 0.1),
    ("THEFT-OTH", 7), ("BILKING", 0.7), ("BLACKMAIL", 0.1),
    ("ARSON-LIFE", 0.1), ("ARSON", 0.8), ("CD-DWELL", 3), ("CD-BLDG", 1.5), ("CD-VEH", 3.5), ("CD-OTH", 1.5),
    ("CD-RA", 0.05), ("CD-THREAT", 0.3),
    ("DRUG-SUPP", 0.5), ("DRUG-POSS", 0.4), ("DRUG-CANN", 2), ("DRUG-OTH", 0.05),
    ("FIREARM-INT", 0.03), ("FIREARM", 0.1), ("WPN-OTH", 0.3), ("WPN-BLADE", 0.5),
    ("PUB-ORD", 4), ("PUB-ORD-RA", 0.5), ("VIOL-DIS", 0.1), ("PUB-ORD-OTH", 0.3),
    ("GOING-EQP", 0.1), ("HANDLING", 0.2), ("PERVERT", 0.05), ("BAIL", 0.05), ("DANG-DRV", 0.1),
    ("OTH-NOTIF", 0.5),
)
# How each MO family's share moves from 2008 (x1) to 2019 (x this).
KIND_TREND = {"violence": 2.0, "harass": 3.0, "sexual": 2.5, "burglary": 0.7, "vehicle": 0.75,
              "damage": 0.8, "drugs": 0.8, "shop": 1.1, "theft": 0.95, "order": 2.0}

#: Retired OPUS codes still in OFFENCE_CODE (ACTIVE 'N') but with no Home Office equivalent.
RETIRED_CODES = (("OLDCODE", "OLD OFFENCE CODE (PRE-OPUS)"), ("THEFT-CYC", "THEFT OF CYCLE (RETIRED 2009)"),
                 ("ASB-CRIM", "ASB RECORDED AS CRIME (RETIRED)"), ("HOAX-999", "HOAX CALL TO EMERGENCY SERVICES"),
                 ("CD-GRAFF", "GRAFFITI (RETIRED, NOW CD-OTH)"))
#: Codes officers typed that OPUS never had (misspelt).
MISSPELT_CODES = ("BURGDW", "ASSLT", "SHOPLIFT", "BURG DW", "TFMV1")

DISPOSAL_WEIGHTS_DEFAULT = (
    ("NFA", 40), ("EV-NS", 14), ("EV-SN", 12), ("CHG", 13), ("SUM", 2), ("CAU-A", 3), ("CAU-Y", 1),
    ("CR", 5), ("PND", 1.5), ("CW", 0.5), ("TIC", 1), ("POL-PI", 1), ("CPS-PI", 0.5), ("EV-SV", 2),
    ("U-AGE", 0.3), ("ILL", 0.2), ("VW-ILL", 0.2), ("DEAD", 0.1), ("TIME", 0.5), ("NPI", 1),
    ("DIVERT", 0.5), ("TRF", 0.5),
)
DISPOSAL_WEIGHTS_BY_KIND = {
    "drugs": (("CHG", 35), ("CW", 25), ("CR", 10), ("PND", 10), ("NFA", 5), ("CAU-A", 8), ("CAU-Y", 4),
              ("DIVERT", 3)),
    "shop": (("CHG", 30), ("NFA", 30), ("CR", 10), ("EV-NS", 18), ("CAU-A", 7), ("CAU-Y", 3), ("PND", 2)),
}
#: Disposals that mean an offender was identified (the crime gets an offender link).
OFFENDER_DISPOSALS = frozenset({"CHG", "SUM", "CAU-A", "CAU-Y", "TIC", "PND", "CW", "CR", "DIVERT",
                                "CPS-PI", "POL-PI", "U-AGE", "ILL", "VW-ILL", "DEAD", "EV-SV", "EV-SN", "TIME"})
UNKNOWN_DISPOSALS = ("NFA2", "CHGD", "UNDET", "CAU", "X", "99")
INVALID_STATUSES = ("Z", "C", "P", "?", "")
UNKNOWN_DIVS = ("XX", "GM", "ZZ", "M", "99")
#: Kinds whose victim is usually a business or the public (no victim nominal).
NO_PERSONAL_VICTIM = {"shop": 0.9, "drugs": 1.0, "weapons": 1.0, "order": 0.6, "misc": 0.7,
                      "burglary": 0.25, "damage": 0.3}
#: Kinds committed over a period (committed_to usually given).
RANGE_KINDS = frozenset({"burglary", "vehicle", "damage", "theft", "harass"})

HOUR_WEIGHTS_RECORDED = (2, 1.5, 1, 0.8, 0.6, 0.6, 1, 2, 4, 5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5, 5.5,
                         5.5, 5, 4.5, 4, 3.5, 2.5)
HOUR_WEIGHTS_COMMITTED = (3.5, 3, 2.5, 2, 1.5, 1, 1, 1.5, 2.5, 3, 3.5, 4, 4.5, 4.5, 4.5, 5, 5.5, 6,
                          6, 6, 6, 6, 5.5, 4.5)
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
BAD_POSTCODES = ("M1 1A", "MANCHESTER", "M11", "SK4", "BL1 4", "NFA", "M60 ???", "OL1 1AAA", "WN1-2AB")
INVALID_TIMES_SHORT = ("2515", "1260", "9.30", "2461", "12.3", "99", "0:75")
INVALID_TIMES_LONG = ("12.30", "25:15", "noon")
ETHNICITY = (("IC1", 74), ("IC2", 1), ("IC3", 6), ("IC4", 10), ("IC5", 1.5), ("IC6", 2.5), ("IC9", 3), ("", 2))
GRADE_SOURCE = (("A", 5), ("B", 45), ("C", 30), ("D", 3), ("E", 17))
GRADE_INTEL = (("1", 5), ("2", 45), ("3", 35), ("4", 12), ("5", 3))
GRADE_HANDLING = (("1", 70), ("2", 5), ("3", 2), ("4", 20), ("5", 3))
INVALID_GRADES = ("F", "6", "0", "X", "9", "Z")
ROLES_INVALID = ("X", "A", "?", "I", "1")
LIVE_FLAGS = (("N", 60), ("", 10), (None, 30))


# ------------------------------------------------------------------------------ the result


@dataclass
class GenerateResult:
    url: str                      # masked: never a password
    crimes: int                   # as asked
    seed: int
    counts: dict[str, int]        # rows written per table (the generator's own count)
    seconds: float                # wall time of writing (schema, rows, commit)
    profile_seconds: float        # wall time of reading the store back
    profile: Profile              # what the store holds, read back independently
    rates: dict[str, float] = field(default_factory=lambda: dict(RATES))


def generate(legacy_url: str, crimes: int = 10_000, seed: int = 2019, *, batch: int = BATCH) -> GenerateResult:
    """Create the OPUS tables in an empty store and fill them; return what was written and its profile."""
    if crimes < 1:
        raise UsageError(f"--crimes must be at least 1 (got {crimes})")
    started = time.perf_counter()
    engine = db.open_target(legacy_url)  # the one read-write engine factory; legacy readers use open_legacy
    try:
        _refuse_existing(engine)
        with db.store_errors(engine, "legacy"):
            create_legacy_schema(engine)
            tables = legacy_tables(engine)
            try:
                counts = _fill(engine, tables, load_reference(), crimes, seed, batch)
            except BaseException:
                _drop_partial(engine, tables)  # leave no half store that a rerun would refuse
                raise
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    profile = profile_store(legacy_url)
    return GenerateResult(url=db.mask_url(legacy_url), crimes=crimes, seed=seed, counts=counts,
                          seconds=seconds, profile_seconds=time.perf_counter() - t0, profile=profile)


def _refuse_existing(engine: Engine) -> None:
    with db.store_errors(engine, "legacy"):
        present = sorted(n.upper() for n in sa.inspect(engine).get_table_names() if n.lower() in LEGACY_TABLES)
    if present:
        raise UsageError(
            f"{db.mask_url(engine.url)} already holds OPUS tables ({', '.join(present)}): "
            "generate only fills an empty store — give a new file or database"
        )


def _drop_partial(engine: Engine, tables: dict[str, sa.Table]) -> None:
    try:
        with engine.begin() as conn:
            for table in tables.values():
                if table is not None:
                    table.drop(conn, checkfirst=True)
    except Exception:  # the original error matters more than a failed clean-up
        pass


def _fill(engine: Engine, tables: dict[str, sa.Table], ref: Reference, crimes: int, seed: int,
          batch: int) -> dict[str, int]:
    # SQLite: a fresh file nobody else reads yet, so no journal and no fsync while loading. SQLite
    # is also the one engine that does not enforce VARCHAR lengths, so only there can a 12-char
    # key carry a padding space or a time column hold 'HH:MM' (the OPUS DDL's widths forbid it
    # on PostgreSQL and MariaDB; see the report).
    lax_lengths = db.is_sqlite(engine)
    maker = StoreMaker(ref, seed, crimes, lax_lengths=lax_lengths)
    counts = dict.fromkeys(("offence_code", "division", "crime", "nominal", "crime_nom", "intel"), 0)
    with engine.connect() as conn:
        if lax_lengths:
            conn.exec_driver_sql("PRAGMA journal_mode=OFF")
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
        writers = {name: _Writer(conn, tables[name]) for name in counts}
        for name, rows in (("offence_code", maker.offence_code_rows()), ("division", maker.division_rows())):
            counts[name] += writers[name].write(rows)
        conn.commit()
        with bar("generate", total=crimes, unit="crimes") as progress:
            for chunk in maker.batches(batch):
                for name in ("crime", "nominal", "crime_nom", "intel"):
                    counts[name] += writers[name].write(chunk[name])
                conn.commit()
                progress.update(len(chunk["crime"]))
        if lax_lengths:
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")  # leave an ordinary file for readers
    return counts


class _Writer:
    """executemany of tuples in table-column order, in the driver's own parameter style."""

    def __init__(self, conn: sa.Connection, table: sa.Table):
        compiled = table.insert().compile(dialect=conn.dialect)
        self.conn = conn
        self.sql = str(compiled)
        self.keys = [c.key for c in table.columns]
        self.positional = compiled.positional
        if self.positional:
            assert list(compiled.positiontup) == self.keys, "insert parameters out of column order"

    def write(self, rows: list[tuple]) -> int:
        if not rows:
            return 0
        params = rows if self.positional else [dict(zip(self.keys, row)) for row in rows]
        self.conn.exec_driver_sql(self.sql, params)
        return len(rows)


# ------------------------------------------------------------------------------ the maker


def _stream(rng: random.Random, population, weights, k: int = 4096) -> Iterator:
    """Endless weighted draws, made k at a time (far cheaper than one rng.choices per row)."""
    cum = list(itertools.accumulate(weights))
    population = list(population)
    while True:
        yield from rng.choices(population, cum_weights=cum, k=k)


def _pairs(weighted):
    return [p for p, _ in weighted], [w for _, w in weighted]


def _clock_change_days() -> set[dt.date]:
    """Last Sundays of March and October: the UK clock changes at 01:00 GMT."""
    days = set()
    for year in range(2006, 2021):
        for month in (3, 10):
            last = dt.date(year, month, 31)
            days.add(last - dt.timedelta(days=(last.weekday() + 1) % 7))
    return days


class Calendar:
    """Every day the store can mention, with its text in each OPUS date form, by index."""

    def __init__(self, first: dt.date, last: dt.date):
        self.first = first
        self.days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        self.dmy4 = [f"{d.day:02d}/{d.month:02d}/{d.year}" for d in self.days]
        self.dmy2 = [f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}" for d in self.days]
        self.ymd = [f"{d.year}{d.month:02d}{d.day:02d}" for d in self.days]
        self.forms = (self.dmy4, self.dmy2, self.ymd)  # index = row style
        self.clock_change = {self.index(d) for d in _clock_change_days() if first <= d <= last}

    def index(self, day: dt.date) -> int:
        return (day - self.first).days


HHMM = [f"{m // 60:02d}{m % 60:02d}" for m in range(1440)]
H_MM = [f"{m // 60}:{m % 60:02d}" for m in range(1440)]
HH_MM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]


class StoreMaker:
    """Makes the rows, batch by batch, deterministically from the seed."""

    def __init__(self, ref: Reference, seed: int, crimes: int, *, lax_lengths: bool):
        self.ref = ref
        self.crimes = crimes
        self.lax = lax_lengths
        self.rng = random.Random(f"opus-generate:{seed}")
        rng = self.rng
        # Calendar from well before the first recording (historic reports, committed dates)
        self.cal = Calendar(dt.date(2006, 1, 1), dt.date(2019, 12, 31))
        self.first_rec = self.cal.index(FIRST_DAY)
        self.last_rec = self.cal.index(LAST_DAY)
        self.bulk_end = self.cal.index(BULK_IMPORT_END)
        self.older_end = self.cal.index(OLDER_ROWS_END)
        self._day_weights()
        self._places()
        self._people()
        self.pools = texts.TextPools(random.Random(f"opus-texts:{seed}"), tuple(self.streets[:400]),
                                     tuple(a for areas in names.DIVISION_AREAS.values() for a, _ in areas))
        self._codes()
        self.hour_rec = _stream(rng, range(24), HOUR_WEIGHTS_RECORDED)
        self.hour_com = _stream(rng, range(24), HOUR_WEIGHTS_COMMITTED)
        self.live_flag = _stream(rng, *_pairs(LIVE_FLAGS))
        self.grade_src = _stream(rng, *_pairs(GRADE_SOURCE))
        self.grade_int = _stream(rng, *_pairs(GRADE_INTEL))
        self.grade_hand = _stream(rng, *_pairs(GRADE_HANDLING))
        self.crime_seq: dict[int, int] = {}
        self.intel_seq: dict[int, int] = {}
        self.next_nom = FIRST_NOM_ID
        self.victims: list[tuple[int, str]] = []    # bounded pools: repeat victims, prolific offenders
        self.offenders: list[tuple[int, str]] = []

    # --- reference data ------------------------------------------------------------------

    def _day_weights(self) -> None:
        weights = []
        for i in range(self.first_rec, self.last_rec + 1):
            d = self.cal.days[i]
            w = YEAR_VOLUME[d.year] * MONTH_SEASON[d.month - 1] * (0.85 if d.weekday() == 6 else 1.0)
            weights.append(w)
        self.day_cum = list(itertools.accumulate(weights))

    def _places(self) -> None:
        ref, rng = self.ref, self.rng
        districts = {row["district"]: row for row in ref.districts}
        # DIVISION's names are in divisions.csv but not in Reference (the mapping never needs them)
        with open(TABLE_DIR / "divisions.csv", newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        self.division_table = [(r["opus_div"].strip(), r["opus_div_name"].strip()) for r in rows]
        div_district = {r["opus_div"].strip(): r["district_name"].strip() for r in rows}
        self.divs = list(names.DIVISION_WEIGHTS)
        self.div_stream = _stream(rng, self.divs, [names.DIVISION_WEIGHTS[d] for d in self.divs])
        # where each division's crimes fall: a centre and spread, clipped to the district extent
        manchester_centres = {"MC": (384100, 398200, 700, 600), "MN": (386800, 401200, 1800, 1800),
                              "MS": (384000, 392800, 2000, 2400)}
        self.div_geo = {}
        for div in self.divs:
            row = districts[div_district[div]]
            box = tuple(int(row[k]) for k in ("easting_min", "easting_max", "northing_min", "northing_max"))
            if div in manchester_centres:
                ce, cn, se, sn = manchester_centres[div]
            else:
                ce, cn = int(row["centroid_easting"]), int(row["centroid_northing"])
                se, sn = (box[1] - box[0]) / 5, (box[3] - box[2]) / 5
            self.div_geo[div] = (ce, cn, se, sn, box)
        self.div_areas = {d: names.DIVISION_AREAS[d] for d in self.divs}
        self.beats = {d: [f"{d}{n:02d}" for n in range(1, names.DIVISION_BEATS[d] + 1)] for d in self.divs}
        suffixes, sweights = _pairs(names.STREET_SUFFIXES)
        self.streets = sorted({f"{b} {s}" for b in names.STREET_BASES for s in suffixes})
        rng.shuffle(self.streets)
        self.street_stream = _stream(rng, self.streets, [1] * len(self.streets))
        places = {p["place"]: p for p in ref.places}
        self.premises = []
        for place, div, addr, pcode, variants in names.BUSY_PREMISES:
            p = places[place]
            self.premises.append((div, addr, pcode, variants, int(p["easting"]), int(p["northing"])))
        # busier shops first: a few premises take most of the repeat crime
        self.premises_stream = _stream(rng, self.premises, [1 / (i + 1) ** 0.7 for i in range(len(self.premises))])
        self.officers = {d: [self._collar(rng) for _ in range(120)] for d in self.divs}

    @staticmethod
    def _collar(rng: random.Random) -> str:
        r = rng.random()
        if r < 0.75:
            return f"{rng.randrange(1000, 30000):05d}"
        if r < 0.9:
            return f"{rng.randrange(1000, 9999)}"
        return f"DC{rng.randrange(1000, 9999)}"

    def _people(self) -> None:
        rng = self.rng
        self.surname = _stream(rng, *_pairs(names.SURNAMES))
        self.male = _stream(rng, *_pairs(names.MALE_FORENAMES))
        self.female = _stream(rng, *_pairs(names.FEMALE_FORENAMES))
        self.ethnicity = _stream(rng, *_pairs(ETHNICITY))

    def _codes(self) -> None:
        rng = self.rng
        self.kind_of = {c: texts.mo_kind(c) for c, _ in OFFENCE_WEIGHTS}
        unknown = [c for c, _ in OFFENCE_WEIGHTS if c not in self.ref.crosswalk]
        assert not unknown, f"offence mix uses codes missing from the crosswalk: {unknown}"
        self.offence_by_year = {}
        for year in YEAR_VOLUME:
            f = (year - 2008) / 11
            weights = [w * (1 + (KIND_TREND.get(self.kind_of[c], 1.0) - 1) * f) for c, w in OFFENCE_WEIGHTS]
            self.offence_by_year[year] = _stream(rng, [c for c, _ in OFFENCE_WEIGHTS], weights)
        self.disposal_default = _stream(rng, *_pairs(DISPOSAL_WEIGHTS_DEFAULT))
        self.disposal_by_kind = {k: _stream(rng, *_pairs(v)) for k, v in DISPOSAL_WEIGHTS_BY_KIND.items()}

    def offence_code_rows(self) -> list[tuple]:
        rows, seen = [], set()
        with open(TABLE_DIR / "offence_crosswalk.csv", newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                code = r["opus_code"].strip().upper()
                if code not in seen:
                    seen.add(code)
                    rows.append((code, r["opus_description"].strip(), "Y"))
        rows.extend((code, desc, "N") for code, desc in RETIRED_CODES)
        return rows

    def division_rows(self) -> list[tuple]:
        return [(div, name) for div, name in self.division_table]

    # --- batches -----------------------------------------------------------------------------

    def batches(self, size: int) -> Iterator[dict[str, list[tuple]]]:
        total = self.day_cum[-1]
        n = self.crimes
        for start in range(0, n, size):
            out = {"crime": [], "nominal": [], "crime_nom": [], "intel": []}
            for i in range(start, min(n, start + size)):
                # crimes arrive in recording order: the i-th falls where the cumulative day weight says
                day = self.first_rec + bisect.bisect_left(self.day_cum, (i + self.rng.random()) * total / n)
                self._crime(min(day, self.last_rec), out)
            yield out

    # --- crime ----------------------------------------------------------------------------------

    def _style(self, day: int) -> int:
        """Row style: 0 DD/MM/YYYY, 1 DD/MM/YY (older rows), 2 YYYYMMDD (2008 bulk import)."""
        r = self.rng.random()
        if day <= self.bulk_end and r < RATES["yyyymmdd_bulk_import"]:
            return 2
        if day <= self.older_end and r < RATES["ddmmyy_older_rows"]:
            return 1
        return 0

    def _key(self, prefix: str, seq: dict[int, int], year: int) -> tuple[str, str]:
        """(stored key, canonical key)."""
        n = seq.get(year, 0) + 1
        seq[year] = n
        canon = f"{prefix}/{n:06d}/{year % 100:02d}"
        r = self.rng.random()
        if r < RATES["padded_key"]:
            if self.lax:
                return (" " + canon if self.rng.random() < 0.5 else canon + " "), canon
        elif r < RATES["padded_key"] + RATES["bad_reference"] and n < 100000:
            bad = f"{prefix}/{n:05d}/{year % 100:02d}" if self.rng.random() < 0.5 else f"{prefix}{n:06d}/{year % 100:02d}"
            return bad, canon
        return canon, canon

    def _date(self, day: int, style: int, unknown: float, impossible: float) -> str | None:
        r = self.rng.random()
        if r < unknown:
            return self.rng.choice(("00/00/0000", "00000000", "", None, "00/00/0000"))
        if r < unknown + impossible:
            return self._impossible_date(self.cal.days[day].year)
        return self.cal.forms[style][day]

    def _impossible_date(self, year: int) -> str:
        rng = self.rng
        nonleap = year if year % 4 else year - 1
        return rng.choice((f"31/02/{year}", f"00/13/{year}", f"30/02/{year}", f"29/02/{nonleap}",
                           f"32/01/{year}", f"31/04/{year}", f"31/06/{year}", f"31/09/{year}",
                           f"31/11/{year}", f"15/00/{year}", f"{year}0231", f"{year}1332"))

    def _time(self, minute: int, blank: float) -> str | None:
        r = self.rng.random()
        if r < blank:
            return "" if self.rng.random() < 0.5 else None
        r -= blank
        if r < RATES["time_h_mm"]:
            return H_MM[minute] if minute < 600 else HHMM[minute]
        r -= RATES["time_h_mm"]
        if r < RATES["time_hh_mm"]:
            return HH_MM[minute] if self.lax else (H_MM[minute] if minute < 600 else HHMM[minute])
        r -= RATES["time_hh_mm"]
        if r < RATES["time_2400"]:
            return "2400"
        r -= RATES["time_2400"]
        if r < RATES["time_invalid"]:
            pool = INVALID_TIMES_SHORT + (INVALID_TIMES_LONG if self.lax else ())
            return self.rng.choice(pool)
        return HHMM[minute]

    def _crime(self, day: int, out: dict[str, list]) -> None:
        rng, r, cal = self.rng, self.rng.random, self.cal
        year = cal.days[day].year
        key, canon = self._key("CR", self.crime_seq, year)
        style = self._style(day)
        code = next(self.offence_by_year[year])
        kind = self.kind_of[code]

        # when: recorded, and committed from/to
        rec_min = next(self.hour_rec) * 60 + int(r() * 60)
        if day in cal.clock_change and r() < RATES["bst_hour_on_changeover_day"]:
            rec_min = 60 + int(r() * 60)
        rec_abs = day * 1440 + rec_min
        x = r()
        delay = (int(r() * 180) if x < 0.5 else int(180 + r() * 2700) if x < 0.8
                 else int(2880 + r() * 40000) if x < 0.95 else int(43200 + r() * 500000))
        from_abs = rec_abs - delay
        to_abs = from_abs + 30 + int(r() * 840) if kind in RANGE_KINDS and r() < 0.7 else None
        if r() < RATES["bst_committed"]:
            change = self._clock_change_before(day)
            if change is not None:
                from_abs = change * 1440 + 60 + int(r() * 60)
                to_abs = from_abs + int(r() * (120 - from_abs % 1440)) if r() < 0.5 else None
        if r() < RATES["committed_reversed"]:
            if to_abs is None:
                to_abs = from_abs - 60 - int(r() * 2000)
            else:
                from_abs, to_abs = to_abs, from_abs
        rec_date = self._date(day, style, RATES["rec_date_unknown"], RATES["rec_date_impossible"])
        rec_time = self._time(rec_min, RATES["rec_time_blank"])
        from_date = self._date(from_abs // 1440, style, RATES["from_date_unknown"], RATES["from_date_impossible"])
        from_time = self._time(from_abs % 1440, RATES["from_time_blank"])
        if to_abs is None:
            to_date = to_time = "" if r() < 0.4 else None
        else:
            to_date = self._date(to_abs // 1440, style, 0.0, RATES["to_date_impossible"])
            to_time = self._time(to_abs % 1440, 0.02)

        # where
        premise = None
        if (kind == "shop" and r() < RATES["busy_premises_shop"]) or (
                kind in ("theft", "robbery") and r() < RATES["busy_premises_street"]):
            premise = next(self.premises_stream)
            div = premise[0]
        else:
            div = next(self.div_stream)
        addr, pcode, east, north = self._location(div, premise)
        beat = rng.choice(self.beats[div])
        if r() < RATES["beat_untidy"]:
            beat = beat.lower() if r() < 0.6 else ""
        stored_div = self._div(div)

        # outcome
        status, disposal = self._status(day, kind)
        offender_known = disposal in OFFENDER_DISPOSALS
        stored_code = self._offence_code(code)

        mo = self._mo(kind)
        oic = rng.choice(self.officers[div])
        if r() < RATES["oic_untidy"]:
            oic = " " + oic if r() < 0.5 else oic.lower().rjust(len(oic) + 1)
        deleted = r() < RATES["deleted"]
        flag = "Y" if deleted else next(self.live_flag)
        upd = self._last_upd(rec_abs, status)

        out["crime"].append((key, stored_code, rec_date, rec_time, from_date, from_time, to_date, to_time,
                             stored_div, beat, addr, pcode, east, north, status, disposal, mo, oic, flag, upd))
        self._links(canon, key, day, style, kind, status, offender_known, out)

    def _clock_change_before(self, day: int) -> int | None:
        candidates = [c for c in self.cal.clock_change if c <= day]
        return max(candidates) if candidates else None

    def _offence_code(self, code: str) -> str:
        r = self.rng.random()
        if r < RATES["offence_unmapped"]:
            return self.rng.choice(MISSPELT_CODES + tuple(c for c, _ in RETIRED_CODES))
        r -= RATES["offence_unmapped"]
        if r < RATES["offence_lower"]:
            return code.lower()
        r -= RATES["offence_lower"]
        if r < RATES["offence_padded"] and (self.lax or len(code) < 12):
            return code + " "
        return code

    def _div(self, div: str) -> str | None:
        r = self.rng.random()
        if r < RATES["div_unknown"]:
            return self.rng.choice(UNKNOWN_DIVS)
        r -= RATES["div_unknown"]
        if r < RATES["div_blank"]:
            return self.rng.choice(("", None))
        r -= RATES["div_blank"]
        if r < RATES["div_lower"]:
            return div.lower()
        return div

    def _status(self, day: int, kind: str) -> tuple[str | None, str | None]:
        rng, r = self.rng, self.rng.random
        age = self.last_rec - day
        p_open = 0.45 if age < 30 else 0.25 if age < 90 else 0.12 if age < 365 else 0.03
        x = r()
        if x < p_open:
            status, disposal = "O", ("" if r() < 0.7 else None)
        elif x < p_open + 0.04:
            status, disposal = "X", ("" if r() < 0.7 else None)
        elif x < p_open + 0.05:
            status, disposal = "T", ("TRF" if r() < 0.5 else "")
        else:
            status = "F"
            disposal = next(self.disposal_by_kind.get(kind, self.disposal_default))
            y = r()
            if y < RATES["disposal_unknown"]:
                disposal = rng.choice(UNKNOWN_DISPOSALS)
            elif y < RATES["disposal_unknown"] + RATES["finalised_no_disposal"]:
                disposal = rng.choice(("", None))
        y = r()
        if y < RATES["status_invalid"]:
            status = rng.choice(INVALID_STATUSES)
        elif y < RATES["status_invalid"] + RATES["status_lower"]:
            status = status.lower()
        return status, disposal

    def _location(self, div: str, premise) -> tuple[str | None, str | None, int | None, int | None]:
        rng, r = self.rng, self.rng.random
        if premise is not None:
            _, addr, pcode, variants, east, north = premise
            if r() < 0.15:
                addr = rng.choice(variants)
            if r() < 0.1:
                pcode = ""
            east += int(r() * 30) - 15
            north += int(r() * 30) - 15
        else:
            area, districts = rng.choice(self.div_areas[div])
            street = next(self.street_stream)
            x = r()
            num = int(1 + (r() ** 2) * 250)
            if x < 0.75:
                addr = f"{num} {street}, {area}"
            elif x < 0.83:
                addr = f"FLAT {int(1 + r() * 40)}, {rng.choice(names.BUILDING_NAMES)} HOUSE, {street}, {area}"
            elif x < 0.90:
                addr = f"{num}{rng.choice('ABCD')} {street}, {area}"
            elif x < 0.96:
                addr = f"{street}, {area}"
            else:
                addr = f"JUNCTION OF {street} AND {next(self.street_stream)}, {area}"
            pd = districts[0] if len(districts) == 1 else rng.choice(districts)
            pcode = f"{pd} {int(r() * 10)}{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}"
            ce, cn, se, sn, box = self.div_geo[div]
            east = min(max(int(rng.gauss(ce, se)), box[0]), box[1])
            north = min(max(int(rng.gauss(cn, sn)), box[2]), box[3])
        # address quirks
        x = r()
        if x < RATES["addr_blank"]:
            addr = rng.choice(("", None, "  "))
        else:
            x -= RATES["addr_blank"]
            if x < RATES["addr_double_space"]:
                addr = addr.replace(" ", "  ", 1 + int(r() * 2))
            elif x < RATES["addr_double_space"] + RATES["addr_trailing_spaces"]:
                addr = addr + " " * int(1 + r() * 6)
        # postcode quirks
        if pcode:
            x = r()
            if x < RATES["pcode_blank"]:
                pcode = rng.choice(("", None))
            elif (x := x - RATES["pcode_blank"]) < RATES["pcode_lower"]:
                pcode = pcode.lower()
            elif (x := x - RATES["pcode_lower"]) < RATES["pcode_no_space"]:
                pcode = pcode.replace(" ", "")
            elif x - RATES["pcode_no_space"] < RATES["pcode_bad"]:
                pcode = rng.choice(BAD_POSTCODES)
        # grid quirks
        x = r()
        if x < RATES["grid_zero"]:
            east, north = (0, 0) if r() < 0.6 else ((0, north) if r() < 0.5 else (east, 0))
        elif (x := x - RATES["grid_zero"]) < RATES["grid_null"]:
            east, north = (None, None) if r() < 0.7 else (east, None)
        elif x - RATES["grid_null"] < RATES["grid_out_of_range"]:
            east, north = rng.choice(((9999999, north), (east, 9999999), (-1, north), (east, 1400000),
                                      (99999999, 99999999)))
        return addr, pcode, east, north

    def _mo(self, kind: str) -> str | None:
        rng, r = self.rng, self.rng.random
        mo = rng.choice(self.pools.mo[kind])
        x = r()
        if x < RATES["mo_long"]:
            parts = [mo] + rng.choices(self.pools.mo[kind] + self.pools.mo_follow_ups, k=8 + int(r() * 12))
            mo = "\n".join(parts)[:2000].rstrip()
        elif x < RATES["mo_long"] + RATES["mo_multiline"]:
            mo = f"IP STATES:\n{mo}\n{rng.choice(self.pools.mo_follow_ups)}"
            if r() < 0.3:
                mo = mo.replace("\n", "\r\n")
        elif r() < 0.3:
            mo = f"{mo} {rng.choice(self.pools.mo_follow_ups)}"
        if r() < RATES["mo_trailing_spaces"]:
            if "\n" not in mo:
                mo = f"{mo}\n{rng.choice(self.pools.mo_follow_ups)}"
            mo = mo.replace("\n", "   \n") + "  "
        return mo

    def _last_upd(self, abs_min: int, status) -> str | None:
        r = self.rng.random
        if r() < RATES["last_upd_bad"]:
            return self.rng.choice(("", None, "00000000000000", "20151301120000", "2015-03-01"))
        end = (self.last_rec + 1) * 1440 - 1
        upd = abs_min + int(r() * (60 * 24 * (400 if status in ("F", "X", "T") else 60)))
        upd = min(upd, end)
        return f"{self.cal.ymd[upd // 1440]}{HHMM[upd % 1440]}{int(r() * 60):02d}"

    # --- nominals and links ----------------------------------------------------------------------

    def _links(self, canon: str, key: str, day: int, style: int, kind: str, status, offender_known: bool,
               out: dict[str, list]) -> None:
        rng, r = self.rng, self.rng.random
        roles = []
        if r() >= NO_PERSONAL_VICTIM.get(kind, 0.0):
            roles.append("V")
            if r() < 0.08:
                roles.append("V")  # a second victim
        if offender_known:
            roles.append("O")
        elif r() < 0.22:
            roles.append("S")
        if r() < 0.10:
            roles.append("W")
        links = out["crime_nom"]
        written = set()  # (nominal, role as stored): the primary key within this crime
        subject = None
        for role in roles:
            if role == "V" and self.victims and r() < RATES["repeat_victim"]:
                nom_id, name = rng.choice(self.victims)
            elif role in "OS" and self.offenders and r() < RATES["repeat_offender"]:
                nom_id, name = rng.choice(self.offenders)
            else:
                nom_id, name = self._nominal(day, style, role, out)
                if role != "W" and r() < 0.3:
                    self._remember(self.victims if role == "V" else self.offenders, (nom_id, name))
            if role in "OS":
                subject = (nom_id, name)
            x = r()
            stored = (role.lower() if x < RATES["role_lower"]
                      else rng.choice(ROLES_INVALID) if x < RATES["role_lower"] + RATES["role_invalid"] else role)
            # one nominal in two roles is fine; the same role twice (even in two spellings) is not
            if any(n == nom_id and s.upper() in (role, stored.upper()) for n, s in written):
                continue
            written.add((nom_id, stored))
            links.append((canon, nom_id, stored))
            if self.lax and r() < RATES["link_duplicate"]:
                links.append((" " + canon, nom_id, role))  # normalises to the link just written
        if r() < RATES["link_orphan_crime"]:
            ghost = f"CR/{int(1 + r() * 99999):06d}/{rng.choice(ABSENT_CRIME_YEARS)}"
            links.append((ghost, self._existing_nom(), rng.choice("VSOW")))
        if r() < RATES["link_orphan_nominal"]:
            links.append((canon, rng.randint(*ABSENT_NOM_IDS), rng.choice("VSW")))
        if r() < INTEL_PER_CRIME:
            self._intel(day, style, subject, out)

    def _remember(self, pool: list, entry: tuple[int, str]) -> None:
        """Bounded pools of people who come back (repeat victims, prolific offenders)."""
        if len(pool) < 5000:
            pool.append(entry)
        else:
            pool[int(self.rng.random() * 5000)] = entry

    def _existing_nom(self) -> int:
        return FIRST_NOM_ID + int(self.rng.random() * max(1, self.next_nom - FIRST_NOM_ID))

    def _nominal(self, day: int, style: int, role: str, out: dict[str, list]) -> tuple[int, str]:
        rng, r = self.rng, self.rng.random
        nom_id = self.next_nom
        self.next_nom += 1
        x = r()
        male_share = 0.8 if role in "OS" else 0.5
        sex = "M" if x < male_share else "F"
        surname = next(self.surname)
        if surname.startswith("NÍ "):
            sex = "F"
        first = next(self.male) if sex == "M" else next(self.female)
        y = r()
        if y < 0.015:
            sex = "U"
        elif y < 0.02:
            sex = ""
        second = (next(self.male) if sex == "M" else next(self.female)) if r() < 0.12 else None
        if r() < RATES["name_hyphenated"]:
            other = next(self.surname)
            if other != surname and len(surname) + len(other) < 39:
                surname = f"{surname}-{other}"
        forenames = f"{first} {second}" if second and second != first else first
        display = f"{forenames} {surname}"
        # the quirks of the name as typed
        x = r()
        if x < RATES["name_combined"] and len(surname) + len(forenames) + 2 <= 40:
            surname, forenames = (f"{surname}, {forenames}" if r() < 0.8 else f"{surname},{forenames}"), ""
            if r() < 0.3:
                forenames = None
        elif (x := x - RATES["name_combined"]) < RATES["name_blank_surname"]:
            surname = rng.choice(("", None, "   "))
        elif (x := x - RATES["name_blank_surname"]) < RATES["name_double_space"]:
            if " " in forenames:
                forenames = forenames.replace(" ", "  ")
            elif " " in surname:
                surname = surname.replace(" ", "  ")
            else:
                forenames = forenames + "  " + next(self.male if sex == "M" else self.female)
        elif x - RATES["name_double_space"] < RATES["name_trailing_spaces"]:
            surname = surname + " " * int(1 + r() * min(8, 40 - len(surname)))
            if r() < 0.5:
                forenames = forenames + " " * int(1 + r() * 10)
        dob = self._dob(day, style, role)
        pnc = None
        if r() < (0.7 if role in "OS" else 0.05 if role == "V" else 0.02):
            pnc = self._pnc(day)
        eth = next(self.ethnicity)
        deleted = r() < RATES["deleted"]
        flag = "Y" if deleted else next(self.live_flag)
        upd = self._last_upd(day * 1440 + int(r() * 1440), "F")
        out["nominal"].append((nom_id, surname, forenames, dob, sex, pnc, eth, flag, upd))
        return nom_id, display

    def _dob(self, day: int, style: int, role: str) -> str | None:
        rng, r = self.rng, self.rng.random
        x = r()
        if x < RATES["dob_unknown"]:
            return rng.choice(("00/00/0000", "", None, "00/00/0000"))
        x -= RATES["dob_unknown"]
        if x < RATES["dob_impossible"]:
            return self._impossible_date(1950 + int(r() * 55))
        x -= RATES["dob_impossible"]
        if x < RATES["dob_future"]:
            return f"{1 + int(r() * 28):02d}/{1 + int(r() * 12):02d}/20{30 + int(r() * 70)}"
        if role in "OS":
            age = 14 + (r() ** 1.8) * 50
        elif role == "W":
            age = 16 + r() * 64
        else:
            age = 1 + (r() ** 1.3) * 90
        born = self.cal.days[day] - dt.timedelta(days=int(age * 365.25))
        if style == 2:
            return f"{born.year}{born.month:02d}{born.day:02d}"
        if style == 1 and 1950 <= born.year <= 2049:  # the two-digit pivot reads these back right
            return f"{born.day:02d}/{born.month:02d}/{born.year % 100:02d}"
        return f"{born.day:02d}/{born.month:02d}/{born.year}"

    def _pnc(self, day: int) -> str:
        rng, r = self.rng, self.rng.random
        year = self.cal.days[day].year - int(r() * 15)
        pnc = f"{year % 100:02d}/{int(1 + r() ** 0.5 * 9999998)}{rng.choice('ABCDEFGHJKLMNPQRTUVWXYZ')}"
        x = r()
        if x < RATES["pnc_invalid"]:
            digits = pnc[3:-1]
            pnc = rng.choice((f"{digits}{pnc[-1]}", f"{pnc[:3]}{digits}{digits[:2]}{pnc[-1]}",
                              pnc.replace("/", "-"), f"XX/{digits}{pnc[-1]}", pnc[:-1], f"{pnc[:3]}{pnc[-1]}"))
        elif x < RATES["pnc_invalid"] + RATES["pnc_lower"]:
            pnc = pnc.lower()
        return pnc[:13]

    # --- intelligence ----------------------------------------------------------------------------

    def _intel(self, crime_day: int, style: int, subject: tuple[int, str] | None, out: dict[str, list]) -> None:
        rng, r, cal = self.rng, self.rng.random, self.cal
        day = min(crime_day + int(r() * 20), self.last_rec)
        year = cal.days[day].year
        key, _ = self._key("IN", self.intel_seq, year)
        submit_min = (8 + int(r() * 14)) * 60 + int(r() * 60)
        submit_date = self._date(day, style, RATES["rec_date_unknown"], RATES["rec_date_impossible"])
        submit_time = self._time(submit_min, RATES["rec_time_blank"])
        grades = [next(self.grade_src), next(self.grade_int), next(self.grade_hand)]
        for i in range(3):
            x = r()
            if x < RATES["grade_invalid"]:
                grades[i] = rng.choice(INVALID_GRADES)
            elif (x := x - RATES["grade_invalid"]) < RATES["grade_blank"]:
                grades[i] = rng.choice(("", None, " "))
            elif x - RATES["grade_blank"] < RATES["grade_lower"]:
                grades[i] = grades[i].lower()
        # subject: the crime's suspect, a known offender, a new nominal, nobody, or a ghost
        x = r()
        if x < RATES["intel_subject_missing"]:
            subj_id, subj_name = rng.randint(*ABSENT_NOM_IDS), None
        elif subject is not None and x < 0.5:
            subj_id, subj_name = subject
        elif self.offenders and x < 0.75:
            subj_id, subj_name = rng.choice(self.offenders)
        elif x < 0.88:
            subj_id, subj_name = self._nominal(day, style, "S", out)
        else:
            subj_id, subj_name = None, None
        text = self._intel_text(subj_name)
        div = next(self.div_stream)
        east = north = None
        if r() < 0.6:
            ce, cn, se, sn, box = self.div_geo[div]
            east = min(max(int(rng.gauss(ce, se)), box[0]), box[1])
            north = min(max(int(rng.gauss(cn, sn)), box[2]), box[3])
            x = r()
            if x < RATES["grid_zero"]:
                east, north = 0, 0
            elif x < RATES["grid_zero"] + RATES["grid_out_of_range"]:
                east = 9999999
        else:
            east = north = 0 if r() < 0.2 else None
        stored_div = self._div(div)
        x = r()
        if x < 0.15:
            review = rng.choice(("", None))
        else:
            review_day = min(day + rng.choice((182, 365, 365, 365, 730)), len(cal.days) - 1)
            review = self._date(review_day, style, RATES["review_date_unknown"], RATES["review_date_impossible"])
        officer = rng.choice(self.officers[div])
        flag = "Y" if r() < RATES["deleted"] else next(self.live_flag)
        upd = self._last_upd(day * 1440 + submit_min, "F")
        out["intel"].append((key, submit_date, submit_time, grades[0], grades[1], grades[2], subj_id, text,
                             stored_div, east, north, review, officer, flag, upd))

    def _intel_text(self, subject: str | None) -> str | None:
        rng, r, pools = self.rng, self.rng.random, self.pools
        x = r()
        if x < RATES["intel_text_blank"]:
            return rng.choice(("", "   ", None, "\n", " \r\n "))
        who = subject or rng.choice(("UNKNOWN MALE", "AN UNKNOWN FEMALE", "A MALE KNOWN AS \"SKINNY\"",
                                     "OCCUPANTS OF THE ADDRESS"))
        opener = rng.choice(pools.intel_openers).replace("{subject}", who)
        if x < RATES["intel_text_blank"] + RATES["intel_text_near_max"]:
            n = 40 + int(r() * 30)
        else:
            y = r()
            n = (1 if y < 0.2 else 2 if y < 0.45 else 3 if y < 0.6 else 4 + int(r() * 5) if y < 0.9
                 else 9 + int(r() * 12) if y < 0.98 else 21 + int(r() * 20))
        sentences = [opener] + rng.choices(pools.intel_sentences, k=n - 1)
        y = r()
        sep = " " if y < 0.55 else "\n" if y < 0.85 else "\r\n"
        if r() < RATES["intel_text_trailing_spaces"]:
            sep = "  \n"
        header = rng.choice(texts.INTEL_HEADERS)
        text = (header + "\n" if header else "") + sep.join(sentences)
        if len(text) > 4000:
            text = text[:4000]
            cut = max(text.rfind(". "), text.rfind(".\n"))
            text = text[: cut + 1] if cut > 3000 else text
        return text

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
import statistics
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from core.errors import Opus2IopsError, UsageError
from synth import names, texts

# The row maker runs in a child process for large stores and needs none of SQLAlchemy, the
# mapping package or the profile: those are imported where the store is touched, so the child
# starts in a fraction of the time and memory.
if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    from synth.profile import Profile

# ------------------------------------------------------------------------------ the quirks

#: Rate of each quirk: the probability that an eligible row (or value) carries it. The
#: eligible population is given in the comment. Small on purpose: a real extract is mostly
#: clean, and the tests and reports must find the needles, not a haystack of them.
RATES: dict[str, float] = {
    # keys (CRIME_NO / INTEL_NO)
    "padded_key": 0.003,            # key with a leading or trailing space (only where the column can hold 13 chars)
    "bad_reference": 0.002,         # key typed wrongly ('CR/04512/19', 'CR004512/19'): BAD_REFERENCE
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
    "intel_grid_odd": 0.01,         # of located intelligence: grid 0 or out of range (half each)
    # codes
    "offence_unmapped": 0.003,      # retired, misspelt or no HO equivalent: UNMAPPED_OFFENCE
    "offence_lower": 0.005,         # 'burg-dw' (valid after normalisation)
    "offence_padded": 0.002,        # 'SHOP ' (valid after trim)
    "status_invalid": 0.001,        # 'Z', 'C', blank: INVALID_STATUS
    "status_lower": 0.002,          # 'f' (valid after normalisation)
    "disposal_unknown": 0.002,      # of finalised crimes: a code not in disposals.csv
    "finalised_no_disposal": 0.003,
    "div_unknown": 0.003,           # 'XX', 'GM': UNKNOWN_DIVISION
    "div_blank": 0.002,
    "div_lower": 0.002,             # 'mc' (valid after normalisation)
    "beat_untidy": 0.005,           # lower case or blank beat
    "oic_untidy": 0.005,            # ' 12345', 'dc4521'
    "last_upd_bad": 0.003,          # blank / invalid LAST_UPD
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
    "repeat_victim": 0.28,          # victim link to an earlier victim (repeat victimisation)
    "repeat_offender": 0.50,        # suspect/offender link to a known (prolific) offender
    # intelligence
    "intel_subject_missing": 0.005,  # SUBJ_NOM_ID of a nominal that does not exist
    "intel_text_blank": 0.003,      # '', spaces, NULL: EMPTY_INTELLIGENCE
    "intel_text_near_max": 0.005,   # 3,000-4,000 characters
    "intel_text_trailing_spaces": 0.03,
    "grade_invalid": 0.003,         # 'F', '6', '0': INVALID_GRADING (per grade)
    "grade_blank": 0.002,
    "grade_lower": 0.01,            # 'b' (valid after normalisation; only letters change)
    "review_date_impossible": 0.003,
    "review_date_unknown": 0.01,
    "busy_premises_shop": 0.45,     # shoplifting at one of the busy premises
    "busy_premises_street": 0.08,   # thefts/robberies at a busy premises or stop
}

#: Crimes per write batch (one executemany per table per batch, one commit).
BATCH = 5_000
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
KIND_TREND = {"violence": 1.8, "harass": 2.5, "sexual": 2.5, "burglary": 0.7, "vehicle": 0.75,
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
    seconds: float                # wall time of creating and filling the store
    profile_seconds: float        # wall time of reading it back
    profile: "Profile"            # what the store holds, read back independently of the generator
    rates: dict[str, float] = field(default_factory=lambda: dict(RATES))


#: The busiest year (2018) takes ~13% of all crimes and must stay within 6-digit numbers.
MAX_CRIMES = 5_000_000
#: From this many crimes on, rows are made in a second process while this one writes.
PIPELINE_FROM = 50_000


def generate(legacy_url: str, crimes: int = 10_000, seed: int = 2019, *, batch: int = BATCH,
             pipeline: bool | None = None) -> GenerateResult:
    """Create the OPUS tables in an empty store and fill them; return what was written and its profile.

    ``pipeline``: make rows in a child process while this one writes (default: for large
    stores). The rows are the same either way: the maker is a pure function of the seed.
    """
    if not 1 <= crimes <= MAX_CRIMES:
        raise UsageError(f"--crimes must be between 1 and {MAX_CRIMES:,} (got {crimes:,}): "
                         "CR/nnnnnn/yy numbers allow under a million crimes a year")
    if pipeline is None:
        pipeline = crimes >= PIPELINE_FROM
    from core import db
    from core.schema import create_legacy_schema, legacy_tables
    from synth.profile import profile_store

    started = time.perf_counter()
    _refuse_existing(legacy_url)
    engine = db.open_target(legacy_url)  # a read-write engine; every reader of the legacy store uses open_legacy
    try:
        with db.store_errors(engine, "legacy"):
            create_legacy_schema(engine)
            tables = legacy_tables(engine)
            try:
                counts = _fill(engine, tables, crimes, seed, batch, pipeline)
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


def _refuse_existing(legacy_url: str) -> None:
    """Refuse a store that already holds OPUS tables, looking through a read-only engine.

    Read-only on purpose: a refused run must leave an existing store exactly as it was (even
    its journal mode, which a read-write SQLite connection of this tool would set).
    """
    import sqlalchemy as sa

    from core import db
    from core.schema import LEGACY_TABLES

    try:
        engine = db.open_legacy(legacy_url)
    except UsageError:  # no such SQLite file yet (or a URL that open_target will reject in its own words)
        return
    try:
        with db.store_errors(engine, "legacy"):
            present = sorted(n.upper() for n in sa.inspect(engine).get_table_names() if n.lower() in LEGACY_TABLES)
    finally:
        engine.dispose()
    if present:
        raise UsageError(
            f"{db.mask_url(legacy_url)} already holds OPUS tables ({', '.join(present)}): "
            "generate only fills an empty store; give a new file or database"
        )


def _drop_partial(engine: Engine, tables: dict[str, sa.Table]) -> None:
    try:
        with engine.begin() as conn:
            for table in tables.values():
                if table is not None:
                    table.drop(conn, checkfirst=True)
    except Exception:  # the original error matters more than a failed clean-up
        pass


def _fill(engine: Engine, tables: dict[str, sa.Table], crimes: int, seed: int, batch: int,
          pipeline: bool) -> dict[str, int]:
    # SQLite: a fresh file nobody else reads yet, so no journal and no fsync while loading. SQLite
    # is also the one engine that does not enforce VARCHAR lengths, so only there can a 12-char
    # key carry a padding space or a VARCHAR(4) time hold 'HH:MM' (the OPUS DDL's own widths
    # forbid both on PostgreSQL and MariaDB).
    from core import db
    from core.progress import bar

    lax_lengths = db.is_sqlite(engine)
    inputs = maker_inputs()
    counts = dict.fromkeys(("offence_code", "division", "crime", "nominal", "crime_nom", "intel"), 0)
    with engine.connect() as conn:
        if lax_lengths:
            conn.exec_driver_sql("PRAGMA journal_mode=OFF")
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.exec_driver_sql("PRAGMA cache_size=-32768")  # 32 MB: the primary-key indexes mostly in memory
        writers = {name: _Writer(conn, tables[name]) for name in counts}
        counts["offence_code"] += writers["offence_code"].write(offence_code_rows())
        counts["division"] += writers["division"].write(division_rows())
        conn.commit()
        with bar("generate", total=crimes, unit="crimes") as progress:
            for chunk in _batches(inputs, seed, crimes, lax_lengths, batch, pipeline):
                for name in ("crime", "nominal", "crime_nom", "intel"):
                    counts[name] += writers[name].write(chunk[name])
                conn.commit()
                progress.update(len(chunk["crime"]))
        if lax_lengths:
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")  # leave an ordinary file for readers
    return counts


def _batches(inputs: "MakerInputs", seed: int, crimes: int, lax_lengths: bool, batch: int,
             pipeline: bool) -> Iterator[dict]:
    if not pipeline:
        yield from StoreMaker(inputs, seed, crimes, lax_lengths=lax_lengths).batches(batch)
        return
    from core.pool import Pool

    # One process makes the batches (one random stream: each batch follows from the one before),
    # two tasks ahead of this one's writing at most: memory stays flat. One worker takes its
    # tasks in order, so task n returns batch n.
    with Pool(1, _start_maker, (inputs, seed, crimes, lax_lengths, batch), what="row maker") as pool:
        try:
            for chunk in pool.in_order(_next_batch, itertools.count(), ahead=2):
                if chunk is None:
                    break
                yield chunk
        except (KeyboardInterrupt, Opus2IopsError):
            raise
        except Exception as exc:
            raise RuntimeError(f"the row maker process failed: {type(exc).__name__}: {exc}") from None


_maker: dict = {}


def _start_maker(inputs: "MakerInputs", seed: int, crimes: int, lax_lengths: bool, batch: int) -> None:
    """In the row maker process: the stream of batches, taken one task at a time."""
    _maker["batches"] = StoreMaker(inputs, seed, crimes, lax_lengths=lax_lengths).batches(batch)


def _next_batch(_n: int) -> dict | None:
    """The next batch, None once there is none."""
    return next(_maker["batches"], None)


@dataclass(frozen=True)
class MakerInputs:
    """What the row maker needs from the code tables, as plain data (cheap to send to a child)."""

    districts: tuple[dict, ...]       # gm_districts.csv
    places: tuple[dict, ...]          # gm_places.csv
    div_district: dict[str, str]      # OPUS division -> district name (divisions.csv)
    opus_codes: frozenset[str]        # codes the crosswalk knows


def maker_inputs() -> MakerInputs:
    from mappings.reference import TABLE_DIR, load_reference

    ref = load_reference()
    with open(TABLE_DIR / "divisions.csv", newline="", encoding="utf-8") as fh:
        div_district = {r["opus_div"].strip(): r["district_name"].strip() for r in csv.DictReader(fh)}
    return MakerInputs(tuple(ref.districts), tuple(ref.places), div_district, frozenset(ref.crosswalk))


def offence_code_rows() -> list[tuple]:
    """OFFENCE_CODE: every OPUS code of the crosswalk (ACTIVE 'Y') and the retired ones ('N')."""
    from mappings.reference import TABLE_DIR

    rows, seen = [], set()
    with open(TABLE_DIR / "offence_crosswalk.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            code = r["opus_code"].strip().upper()
            if code not in seen:
                seen.add(code)
                rows.append((code, r["opus_description"].strip(), "Y"))
    rows.extend((code, desc, "N") for code, desc in RETIRED_CODES)
    return rows


def division_rows() -> list[tuple]:
    """DIVISION from divisions.csv (its names are not in Reference: the mapping never needs them)."""
    from mappings.reference import TABLE_DIR

    with open(TABLE_DIR / "divisions.csv", newline="", encoding="utf-8") as fh:
        return [(r["opus_div"].strip(), r["opus_div_name"].strip()) for r in csv.DictReader(fh)]


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


# ------------------------------------------------------------------------------ randomness
#
# A million crimes mean some fifty million random decisions. random.random() costs ~180 ns
# on a small CPU and rng.choice ~900 ns; 16-bit numbers cut from one getrandbits() call cost
# ~3 ns, and a weighted choice becomes one index into a 65,536-entry table. Every row reads
# its numbers from a Tape in a fixed order, so the store is a pure function of the seed.

_UNIT = 65536


def threshold(rate: float) -> int:
    """A rate as a 16-bit threshold: ``u < threshold(p)`` holds with probability p (±1/65,536)."""
    return round(rate * _UNIT)


T = {name: threshold(rate) for name, rate in RATES.items()}
# the chance that any of a group of quirks applies (one test on the fast path)
_KEY_ODD = T["padded_key"] + T["bad_reference"]
_REC_DATE_ODD = T["rec_date_unknown"] + T["rec_date_impossible"]
_FROM_DATE_ODD = T["from_date_unknown"] + T["from_date_impossible"]
_ADDR_ODD = T["addr_blank"] + T["addr_double_space"] + T["addr_trailing_spaces"]
_PCODE_ODD = T["pcode_blank"] + T["pcode_lower"] + T["pcode_no_space"] + T["pcode_bad"]
_GRID_ODD = T["grid_zero"] + T["grid_null"] + T["grid_out_of_range"]
_DIV_ODD = T["div_unknown"] + T["div_blank"] + T["div_lower"]
_CODE_ODD = T["offence_unmapped"] + T["offence_lower"] + T["offence_padded"]
_NAME_ODD = T["name_combined"] + T["name_blank_surname"] + T["name_double_space"] + T["name_trailing_spaces"]
_DOB_ODD = T["dob_unknown"] + T["dob_impossible"] + T["dob_future"]
_REVIEW_ODD = T["review_date_unknown"] + T["review_date_impossible"]
_GRADE_ODD = T["grade_invalid"] + T["grade_blank"] + T["grade_lower"]
_ROLE_ODD = T["role_lower"] + T["role_invalid"]
_INTEL_T = threshold(INTEL_PER_CRIME)


class Tape:
    """Random 16-bit numbers, drawn in bulk from one ``random.Random`` and read in order."""

    def __init__(self, rng: random.Random, chunk: int = 1 << 18):
        self.rng = rng
        self.chunk = chunk
        self.buf = array("H")
        self.pos = 0

    def take(self, k: int) -> array:
        if self.pos + k > len(self.buf):
            n = max(self.chunk, k)
            fresh = array("H", self.rng.getrandbits(16 * n).to_bytes(2 * n, "little"))
            if sys.byteorder == "big":  # same seed, same store, on any machine
                fresh.byteswap()
            self.buf = self.buf[self.pos:] + fresh
            self.pos = 0
        p = self.pos
        self.pos = p + k
        return self.buf[p:p + k]


def table(outcomes, weights) -> list:
    """A 65,536-entry lookup table: ``tab[u]`` for a random u is a weighted draw of ``outcomes``."""
    outcomes, weights = list(outcomes), [float(w) for w in weights]
    total = sum(weights)
    tab: list = []
    running = 0.0
    for outcome, weight in zip(outcomes, weights):
        running += weight
        tab.extend([outcome] * (round(running / total * _UNIT) - len(tab)))
    return tab


def _pairs(weighted):
    return [p for p, _ in weighted], [w for _, w in weighted]


def _sampled(rng: random.Random, draw) -> list:
    """A table of 65,536 values drawn once from any distribution (delays, ages...)."""
    return sorted(draw(rng) for _ in range(_UNIT))


# ------------------------------------------------------------------------------ calendars


def _clock_change_days(first_year: int, last_year: int) -> set[dt.date]:
    """Last Sundays of March and October: the UK clocks change at 01:00 GMT."""
    days = set()
    for year in range(first_year, last_year + 1):
        for month in (3, 10):
            last = dt.date(year, month, 31)
            days.add(last - dt.timedelta(days=(last.weekday() + 1) % 7))
    return days


class Calendar:
    """Every day the store can mention, by index, with its text in each OPUS date form."""

    def __init__(self, first: dt.date, last: dt.date):
        self.first = first
        self.days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        self.year = [d.year for d in self.days]
        self.yy = [f"{d.year % 100:02d}" for d in self.days]
        self.dmy4 = [f"{d.day:02d}/{d.month:02d}/{d.year}" for d in self.days]
        # DD/MM/YY only where the 00-49/50-99 pivot reads the year back right
        self.dmy2 = [f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}" if 1950 <= d.year <= 2049 else s
                     for d, s in zip(self.days, self.dmy4)]
        self.ymd = [f"{d.year}{d.month:02d}{d.day:02d}" for d in self.days]
        self.forms = (self.dmy4, self.dmy2, self.ymd)  # index = row style
        self.clock_change = frozenset(self.index(d) for d in _clock_change_days(first.year, last.year))

    def index(self, day: dt.date) -> int:
        return (day - self.first).days


HHMM = [f"{m // 60:02d}{m % 60:02d}" for m in range(1440)]
H_MM = [f"{m // 60}:{m % 60:02d}" for m in range(1440)]
HH_MM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]
SS = [f"{s:02d}" for s in range(60)]
P3 = [f"{n:03d}" for n in range(1000)]
LETTER_PAIRS = [a + b for a in POSTCODE_LETTERS for b in POSTCODE_LETTERS]
PNC_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
STYLE_PLAIN, STYLE_SHORT, STYLE_BULK = 0, 1, 2


def _slots(items, n: int) -> list:
    """``n`` slots filled round-robin from ``items``: slot[u % n] is a near-uniform choice."""
    items = list(items)
    return [items[i % len(items)] for i in range(n)]


def six(n: int) -> str:
    return P3[n // 1000] + P3[n % 1000]


# ------------------------------------------------------------------------------ the maker


class StoreMaker:
    """Makes the rows, batch by batch, as a pure function of the seed.

    State carried between batches is small and bounded: per-year sequence numbers, the next
    nominal id, and pools of at most 5,000 repeat victims and prolific offenders.
    """

    def __init__(self, inputs: MakerInputs, seed: int, crimes: int, *, lax_lengths: bool):
        self.inputs = inputs
        self.crimes = crimes
        self.lax = lax_lengths
        rng = self.rng = random.Random(f"opus-generate:{seed}")
        self.tape = Tape(rng)
        self.cal = Calendar(dt.date(2006, 1, 1), dt.date(2019, 12, 31))      # events
        self.dob_cal = Calendar(dt.date(1900, 1, 1), dt.date(2019, 12, 31))  # births
        self.dob_offset = self.dob_cal.index(self.cal.first)
        self.first_rec = self.cal.index(FIRST_DAY)
        self.last_rec = self.cal.index(LAST_DAY)
        self.bulk_end = self.cal.index(BULK_IMPORT_END)
        self.older_end = self.cal.index(OLDER_ROWS_END)
        self._schedule()
        self._tables()
        self._places()
        self._people()
        self._codes()
        self.pools = texts.TextPools(random.Random(f"opus-texts:{seed}"), tuple(self.streets[:400]),
                                     tuple(a for areas in names.DIVISION_AREAS.values() for a, _ in areas))
        self.crime_seq: dict[int, int] = {}
        self.intel_seq: dict[int, int] = {}
        self.next_nom = FIRST_NOM_ID
        self.victims: list[tuple[int, str]] = []
        self.offenders: list[tuple[int, str]] = []

    # --- set-up -------------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Crimes arrive in recording order; the i-th falls on the day the cumulative volume says."""
        weights = []
        for i in range(self.first_rec, self.last_rec + 1):
            d = self.cal.days[i]
            weights.append(YEAR_VOLUME[d.year] * MONTH_SEASON[d.month - 1] * (0.85 if d.weekday() == 6 else 1.0))
        self.day_cum = list(itertools.accumulate(weights))

    def _tables(self) -> None:
        rng = self.rng
        self.rec_minute = table(range(1440), [HOUR_WEIGHTS_RECORDED[m // 60] for m in range(1440)])
        self.submit_minute = table(range(1440), [1 if 8 <= m // 60 < 22 else 0.1 for m in range(1440)])

        def delay(r):  # minutes from committed to recorded: mostly hours, some days, a few historic
            x = r.random()
            return (int(r.random() * 180) if x < 0.5 else int(180 + r.random() * 2700) if x < 0.8
                    else int(2880 + r.random() * 40000) if x < 0.95 else int(43200 + r.random() * 500000))

        self.delay = _sampled(rng, delay)
        self.duration = _sampled(rng, lambda r: 30 + int(r.random() * 840))
        self.update_lag = _sampled(rng, lambda r: int((r.random() ** 2) * 400 * 1440))
        self.norm = [statistics.NormalDist().inv_cdf((i + 0.5) / _UNIT) for i in range(_UNIT)]
        self.house_no = table(range(1, 251), [1 / n ** 0.6 for n in range(1, 251)])
        # ages in days, by role: offenders young, victims anyone, witnesses adults
        self.age = {
            "O": _sampled(rng, lambda r: int((14 + (r.random() ** 1.8) * 50) * 365.25)),
            "V": _sampled(rng, lambda r: int((1 + (r.random() ** 1.3) * 90) * 365.25)),
            "W": _sampled(rng, lambda r: int((16 + r.random() * 64) * 365.25)),
        }
        self.age["S"] = self.age["O"]
        self.live_flag = table(*_pairs(LIVE_FLAGS))
        self.grade_tables = (table(*_pairs(GRADE_SOURCE)), table(*_pairs(GRADE_INTEL)), table(*_pairs(GRADE_HANDLING)))
        self.sentences = table(range(1, 41), [20, 25, 15] + [6] * 5 + [0.7] * 12 + [0.1] * 20)

    def _places(self) -> None:
        rng, inputs = self.rng, self.inputs
        districts = {row["district"]: row for row in inputs.districts}
        div_district = inputs.div_district
        self.divs = list(names.DIVISION_WEIGHTS)
        self.div_table = table(self.divs, [names.DIVISION_WEIGHTS[d] for d in self.divs])
        # where a division's crimes fall: a centre and spread, clipped to the district's extent
        manchester = {"MC": (384100, 398200, 700, 600), "MN": (386800, 401200, 1800, 1800),
                      "MS": (384000, 392800, 2000, 2400)}
        self.div_geo = {}
        for div in self.divs:
            row = districts[div_district[div]]
            box = tuple(int(row[k]) for k in ("easting_min", "easting_max", "northing_min", "northing_max"))
            if div in manchester:
                ce, cn, se, sn = manchester[div]
            else:
                ce, cn = int(row["centroid_easting"]), int(row["centroid_northing"])
                se, sn = (box[1] - box[0]) / 5, (box[3] - box[2]) / 5
            self.div_geo[div] = (ce, cn, se, sn, box)
        # uniform choices within a division read a 64-slot table with u & 63 (no len, no modulo)
        self.div_areas = {d: _slots(names.DIVISION_AREAS[d], 64) for d in self.divs}
        self.beats = {d: _slots([f"{d}{n:02d}" for n in range(1, names.DIVISION_BEATS[d] + 1)], 64)
                      for d in self.divs}
        suffixes, _ = _pairs(names.STREET_SUFFIXES)
        self.streets = sorted({f"{b} {s}" for b in names.STREET_BASES for s in suffixes})
        rng.shuffle(self.streets)
        self.street_table = table(self.streets, [1 / (i + 20) for i in range(len(self.streets))])
        places = {p["place"]: p for p in inputs.places}
        premises = []
        for place, div, addr, pcode, variants in names.BUSY_PREMISES:
            p = places[place]
            premises.append((div, addr, pcode, variants, int(p["easting"]), int(p["northing"])))
        # a few shops take most of the repeat crime
        self.premises_table = table(premises, [1 / (i + 1) ** 0.7 for i in range(len(premises))])
        self.officers = {d: [self._collar(rng) for _ in range(128)] for d in self.divs}

    @staticmethod
    def _collar(rng: random.Random) -> str:
        r = rng.random()
        if r < 0.75:
            return f"{rng.randrange(1000, 30000):05d}"
        if r < 0.9:
            return f"{rng.randrange(1000, 9999)}"
        return f"DC{rng.randrange(1000, 9999)}"

    def _people(self) -> None:
        self.surnames = table(*_pairs(names.SURNAMES))
        self.forenames = {"M": table(*_pairs(names.MALE_FORENAMES)), "F": table(*_pairs(names.FEMALE_FORENAMES))}
        self.ethnicity = table(*_pairs(ETHNICITY))

    def _codes(self) -> None:
        self.kind_of = {c: texts.mo_kind(c) for c, _ in OFFENCE_WEIGHTS}
        unknown = [c for c, _ in OFFENCE_WEIGHTS if c not in self.inputs.opus_codes]
        assert not unknown, f"offence mix uses codes missing from the crosswalk: {unknown}"
        self.offence_by_year = {}
        for year in YEAR_VOLUME:
            f = (year - 2008) / 11
            weights = [w * (1 + (KIND_TREND.get(self.kind_of[c], 1.0) - 1) * f) for c, w in OFFENCE_WEIGHTS]
            self.offence_by_year[year] = table([c for c, _ in OFFENCE_WEIGHTS], weights)
        self.disposal_default = table(*_pairs(DISPOSAL_WEIGHTS_DEFAULT))
        self.disposal_by_kind = {k: table(*_pairs(v)) for k, v in DISPOSAL_WEIGHTS_BY_KIND.items()}

    # --- batches ------------------------------------------------------------------------------

    def batches(self, size: int) -> Iterator[dict[str, list[tuple]]]:
        step = self.day_cum[-1] / self.crimes
        cum, first, last = self.day_cum, self.first_rec, self.last_rec
        for start in range(0, self.crimes, size):
            out = {"crime": [], "nominal": [], "crime_nom": [], "intel": []}
            days = [first + bisect.bisect_left(cum, (i + 0.5) * step)
                    for i in range(start, min(self.crimes, start + size))]
            crime = self._crime
            for day in days:
                crime(day if day <= last else last, out)
            yield out

    # --- crime --------------------------------------------------------------------------------

    def _crime(self, day: int, out: dict[str, list]) -> None:
        u = self.tape.take(48)
        cal = self.cal
        year = cal.year[day]
        n = self.crime_seq[year] = self.crime_seq.get(year, 0) + 1
        canon = f"CR/{six(n)}/{cal.yy[day]}"
        key = canon if u[0] >= _KEY_ODD else self._odd_key(canon, n, u[0])
        style = STYLE_PLAIN
        if day <= self.older_end:
            if day <= self.bulk_end and u[1] < T["yyyymmdd_bulk_import"]:
                style = STYLE_BULK
            elif u[1] < T["ddmmyy_older_rows"]:
                style = STYLE_SHORT
        code = self.offence_by_year[year][u[2]]
        kind = self.kind_of[code]

        # when: recorded; committed from / to
        rec_min = self.rec_minute[u[3]]
        if day in cal.clock_change and u[4] < T["bst_hour_on_changeover_day"]:
            rec_min = 60 + u[5] % 60
        rec_abs = day * 1440 + rec_min
        from_abs = rec_abs - self.delay[u[6]]
        to_abs = from_abs + self.duration[u[7]] if kind in RANGE_KINDS and u[8] < 45875 else None  # 70%
        if u[9] < T["bst_committed"]:
            from_abs, to_abs = self._clock_change_committed(day, to_abs is not None)
        if u[10] < T["committed_reversed"]:
            from_abs, to_abs = (to_abs, from_abs) if to_abs is not None else (from_abs, from_abs - 60 - u[11] % 2000)
        forms = cal.forms[style]
        rec_date = forms[day] if u[12] >= _REC_DATE_ODD else \
            self._odd_date(day, u[12], T["rec_date_unknown"])
        rec_time = HHMM[rec_min] if u[13] >= 2000 else self._odd_time(rec_min, u[13], T["rec_time_blank"])
        fday = from_abs // 1440
        from_date = forms[fday] if u[14] >= _FROM_DATE_ODD else \
            self._odd_date(fday, u[14], T["from_date_unknown"])
        from_time = HHMM[from_abs % 1440] if u[15] >= 4000 else \
            self._odd_time(from_abs % 1440, u[15], T["from_time_blank"])
        if to_abs is None:
            to_date = to_time = "" if u[16] < 26214 else None  # 40% blank, 60% NULL
        else:
            tday = to_abs // 1440
            to_date = forms[tday] if u[16] >= T["to_date_impossible"] else self._odd_date(tday, u[16], 0)
            to_time = HHMM[to_abs % 1440] if u[17] >= 2000 else self._odd_time(to_abs % 1440, u[17], 1300)

        # where
        premise = None
        if kind == "shop":
            if u[18] < T["busy_premises_shop"]:
                premise = self.premises_table[u[19]]
        elif (kind == "theft" or kind == "robbery") and u[18] < T["busy_premises_street"]:
            premise = self.premises_table[u[19]]
        if premise is None:
            div = self.div_table[u[20]]
            addr, pcode, east, north = self._address(div, u)
        else:
            div, addr, pcode, variants, east, north = premise
            if u[21] < 9830:  # 15% typed differently
                addr = variants[u[22] % len(variants)]
            if u[23] < 6554:  # 10% without postcode
                pcode = ""
            east += u[24] % 31 - 15
            north += u[25] % 31 - 15
        if u[26] < _ADDR_ODD:
            addr = self._odd_address(addr, u[26])
        if u[27] < _PCODE_ODD and pcode:
            pcode = self._odd_postcode(pcode, u[27])
        if u[28] < _GRID_ODD:
            east, north = self._odd_grid(east, north, u[28])
        beat = self.beats[div][u[29] & 63]
        if u[30] < T["beat_untidy"]:
            beat = beat.lower() if u[30] % 2 else ""
        stored_div = div if u[31] >= _DIV_ODD else self._odd_div(div, u[31])

        # outcome
        status, disposal = self._status(day, kind, u[32], u[33], u[34])
        stored_code = code if u[35] >= _CODE_ODD else \
            self._odd_code(code, u[35])
        mo = self._mo(kind, u[36], u[37], u[38], u[39])
        oic = self.officers[div][u[40] & 127]
        if u[41] < T["oic_untidy"]:
            oic = " " + oic if u[41] % 2 else " " + oic.lower()
        flag = "Y" if u[42] < T["deleted"] else self.live_flag[u[43]]
        upd = self._last_upd(rec_abs, u[44], u[45], status == "O")

        out["crime"].append((key, stored_code, rec_date, rec_time, from_date, from_time, to_date, to_time,
                             stored_div, beat, addr, pcode, east, north, status, disposal, mo, oic, flag, upd))
        self._links(canon, day, style, kind, disposal in OFFENDER_DISPOSALS, out)

    def _address(self, div: str, u) -> tuple[str, str, int, int]:
        area, districts = self.div_areas[div][u[46] & 63]
        v = self.tape.take(8)
        street = self.street_table[v[0]]
        x = v[1]
        if x < 49152:  # 75%: number and street
            addr = f"{self.house_no[v[2]]} {street}, {area}"
        elif x < 54395:  # 8%: a flat
            addr = f"FLAT {1 + v[2] % 40}, {names.BUILDING_NAMES[v[3] % len(names.BUILDING_NAMES)]} HOUSE, {street}, {area}"
        elif x < 58982:  # 7%: 12A
            addr = f"{self.house_no[v[2]]}{'ABCD'[v[3] % 4]} {street}, {area}"
        elif x < 62915:  # 6%: a street, no number
            addr = f"{street}, {area}"
        else:  # a junction
            addr = f"JUNCTION OF {street} AND {self.street_table[v[3]]}, {area}"
        outward = districts[v[4] % len(districts)]
        pcode = f"{outward} {v[5] % 10}{LETTER_PAIRS[v[6] % 400]}"
        ce, cn, se, sn, box = self.div_geo[div]
        east = int(ce + self.norm[v[7]] * se)
        north = int(cn + self.norm[u[47]] * sn)
        east = box[0] if east < box[0] else box[1] if east > box[1] else east
        north = box[2] if north < box[2] else box[3] if north > box[3] else north
        return addr, pcode, east, north

    def _status(self, day: int, kind: str, u1: int, u2: int, u3: int) -> tuple[str, str | None]:
        age = self.last_rec - day
        p_open = 29491 if age < 30 else 16384 if age < 90 else 7864 if age < 365 else 1966  # 45/25/12/3%
        if u1 < p_open:
            status, disposal = "O", ("" if u2 % 10 < 7 else None)
        elif u1 < p_open + 2621:  # 4% cancelled (no-crimed)
            status, disposal = "X", ("" if u2 % 10 < 7 else None)
        elif u1 < p_open + 3277:  # 1% transferred
            status, disposal = "T", ("TRF" if u2 % 2 else "")
        else:
            status = "F"
            disposal = self.disposal_by_kind.get(kind, self.disposal_default)[u2]
            if u3 < T["disposal_unknown"]:
                disposal = UNKNOWN_DISPOSALS[u3 % len(UNKNOWN_DISPOSALS)]
            elif u3 < T["disposal_unknown"] + T["finalised_no_disposal"]:
                disposal = "" if u3 % 2 else None
        if u3 > _UNIT - 1 - T["status_invalid"] - T["status_lower"]:
            if u3 > _UNIT - 1 - T["status_invalid"]:
                status = INVALID_STATUSES[u3 % len(INVALID_STATUSES)]
            else:
                status = status.lower()
        return status, disposal

    def _mo(self, kind: str, u1: int, u2: int, u3: int, u4: int) -> str:
        pool = self.pools.mo[kind]
        follow = self.pools.mo_follow_ups
        mo = pool[u1 % len(pool)]
        if u2 < T["mo_long"]:
            rng = self.rng
            parts = [mo] + rng.choices(pool + follow, k=8 + rng.randrange(12))
            mo = "\n".join(parts)[:2000].rstrip()
        elif u2 < T["mo_long"] + T["mo_multiline"]:
            mo = f"IP STATES:\n{mo}\n{follow[u3 % len(follow)]}"
            if u3 % 10 < 3:
                mo = mo.replace("\n", "\r\n")
        elif u2 < 26214:  # 40%: a follow-up sentence
            mo = f"{mo} {follow[u3 % len(follow)]}"
        if u4 < T["mo_trailing_spaces"]:
            if "\n" not in mo:
                mo = f"{mo}\n{follow[u3 % len(follow)]}"
            mo = mo.replace("\n", "   \n") + "  "
        return mo

    def _last_upd(self, abs_min: int, u1: int, u2: int, recent: bool) -> str | None:
        if u1 < T["last_upd_bad"]:
            return ("", None, "00000000000000", "20151301120000", "2015-03-01")[u2 % 5]
        lag = self.update_lag[u2] // (8 if recent else 1)
        upd = min(abs_min + lag, (self.last_rec + 1) * 1440 - 1)
        return f"{self.cal.ymd[upd // 1440]}{HHMM[upd % 1440]}{SS[u1 % 60]}"

    # --- the rare cases (slow path: plain random calls are fine here) -------------------------

    def _odd_key(self, canon: str, n: int, u: int) -> str:
        if u < T["padded_key"]:
            if not self.lax:  # a 13-character key does not fit VARCHAR(12) on a strict engine
                return canon
            return " " + canon if u % 2 else canon + " "
        if n >= 100000:
            return canon
        prefix, _, yy = canon.split("/")
        return f"{prefix}/{n:05d}/{yy}" if u % 2 else f"{prefix}{n:06d}/{yy}"

    def _odd_date(self, day: int, u: int, unknown: int) -> str | None:
        if u < unknown:
            return ("00/00/0000", "00000000", "", None, "00/00/0000")[u % 5]
        return self._impossible_date(self.cal.year[day], u)

    @staticmethod
    def _impossible_date(year: int, u: int) -> str:
        """Impossible calendar dates, and a few typed in no accepted form at all (1/3/2015)."""
        nonleap = year if year % 4 else year - 1
        return (f"31/02/{year}", f"00/13/{year}", f"30/02/{year}", f"29/02/{nonleap}", f"32/01/{year}",
                f"31/04/{year}", f"31/06/{year}", f"31/09/{year}", f"31/11/{year}", f"15/00/{year}",
                f"{year}0231", f"{year}1332", f"1/3/{year}", f"{year}-03-01", f"01.03.{year}")[u % 15]

    def _odd_time(self, minute: int, u: int, blank: int) -> str | None:
        """u is small: pick blank / H:MM / HH:MM / 2400 / invalid by how small, else HHMM."""
        if u < blank:
            return "" if u % 2 else None
        u -= blank
        if u < T["time_h_mm"]:
            return H_MM[minute] if minute < 600 else HHMM[minute]
        u -= T["time_h_mm"]
        if u < T["time_hh_mm"]:  # 'HH:MM' is 5 characters: only where VARCHAR(4) is not enforced
            return HH_MM[minute] if self.lax else H_MM[minute] if minute < 600 else HHMM[minute]
        u -= T["time_hh_mm"]
        if u < T["time_2400"]:
            return "2400"
        u -= T["time_2400"]
        if u < T["time_invalid"]:
            pool = INVALID_TIMES_SHORT + (INVALID_TIMES_LONG if self.lax else ())
            return pool[u % len(pool)]
        return HHMM[minute]

    def _clock_change_committed(self, day: int, with_to: bool) -> tuple[int, int | None]:
        """Committed during the missing (spring) or repeated (autumn) hour of the last clock change."""
        change = max((c for c in self.cal.clock_change if c <= day), default=day)
        start = change * 1440 + 60 + self.rng.randrange(60)
        return start, (start + self.rng.randrange(120 - start % 1440) if with_to else None)

    def _odd_address(self, addr: str, u: int) -> str | None:
        if u < T["addr_blank"]:
            return ("", None, "  ")[u % 3]
        if u < T["addr_blank"] + T["addr_double_space"]:
            return addr.replace(" ", "  ", 1 + u % 2)
        return addr + " " * (1 + u % 6)

    def _odd_postcode(self, pcode: str, u: int) -> str | None:
        if u < T["pcode_blank"]:
            return "" if u % 2 else None
        u -= T["pcode_blank"]
        if u < T["pcode_lower"]:
            return pcode.lower()
        u -= T["pcode_lower"]
        if u < T["pcode_no_space"]:
            return pcode.replace(" ", "")
        return BAD_POSTCODES[u % len(BAD_POSTCODES)]

    def _odd_grid(self, east: int, north: int, u: int) -> tuple[int | None, int | None]:
        if u < T["grid_zero"]:
            return ((0, 0), (0, north), (east, 0), (0, 0))[u % 4]
        if u < T["grid_zero"] + T["grid_null"]:
            return ((None, None), (east, None), (None, None))[u % 3]
        return ((9999999, north), (east, 9999999), (-1, north), (east, 1400000), (99999999, 99999999))[u % 5]

    def _odd_div(self, div: str, u: int) -> str | None:
        if u < T["div_unknown"]:
            return UNKNOWN_DIVS[u % len(UNKNOWN_DIVS)]
        if u < T["div_unknown"] + T["div_blank"]:
            return "" if u % 2 else None
        return div.lower()

    def _odd_code(self, code: str, u: int) -> str:
        if u < T["offence_unmapped"]:
            pool = MISSPELT_CODES + tuple(c for c, _ in RETIRED_CODES)
            return pool[u % len(pool)]
        if u < T["offence_unmapped"] + T["offence_lower"]:
            return code.lower()
        return code + " " if self.lax or len(code) < 12 else code

    # --- nominals and links -------------------------------------------------------------------

    def _links(self, canon: str, day: int, style: int, kind: str, offender_known: bool,
               out: dict[str, list]) -> None:
        u = self.tape.take(24)
        roles = []
        if u[0] >= NO_PERSONAL_VICTIM_T.get(kind, 0):
            roles.append("V")
            if u[1] < 5243:  # 8%: a second victim
                roles.append("V")
        if offender_known:
            roles.append("O")
        elif u[2] < 19661:  # 30%: a suspect
            roles.append("S")
        if u[3] < 6554:  # 10%: a witness
            roles.append("W")
        links = out["crime_nom"]
        written: list[tuple[int, str]] = []  # (nominal, role as stored): the key within this crime
        subject = None
        for j, role in enumerate(roles):
            x = u[4 + j]
            if role == "V" and self.victims and x < T["repeat_victim"]:
                nom_id, name = self.victims[u[10 + j] % len(self.victims)]
            elif role in "OS" and self.offenders and x < T["repeat_offender"]:
                nom_id, name = self.offenders[u[10 + j] % len(self.offenders)]
            else:
                nom_id, name = self._nominal(day, style, role, out)
                if role != "W" and u[10 + j] < 19661:  # 30% may come back
                    self._remember(self.victims if role == "V" else self.offenders, (nom_id, name), u[16 + j])
            if role in "OS":
                subject = (nom_id, name)
            stored = role
            y = u[20]
            if y < _ROLE_ODD:
                stored = role.lower() if y < T["role_lower"] else ROLES_INVALID[y % len(ROLES_INVALID)]
            # one nominal in two roles is fine; one role twice (even spelt two ways) is not
            clash = False
            for nom, r in written:
                if nom == nom_id and r.upper() in (role, stored.upper()):
                    clash = True
            if clash:
                continue
            written.append((nom_id, stored))
            links.append((canon, nom_id, stored))
            if self.lax and u[21] < T["link_duplicate"]:
                links.append((" " + canon, nom_id, role))  # normalises to the link just written
        if u[22] < T["link_orphan_crime"] + T["link_orphan_nominal"]:
            self._orphan_link(canon, u[22], links)
        if u[23] < _INTEL_T:  # one intelligence entry per three crimes
            self._intel(day, style, subject, out)

    def _orphan_link(self, canon: str, u: int, links: list) -> None:
        rng = self.rng
        if u < T["link_orphan_crime"]:  # a crime number from before OPUS: never in this store
            ghost = f"CR/{rng.randrange(1, 99999):06d}/{rng.choice(ABSENT_CRIME_YEARS)}"
            links.append((ghost, FIRST_NOM_ID + rng.randrange(max(1, self.next_nom - FIRST_NOM_ID)),
                          rng.choice("VSOW")))
        else:  # a nominal id never issued
            links.append((canon, rng.randint(*ABSENT_NOM_IDS), rng.choice("VSW")))

    def _remember(self, pool: list, entry: tuple[int, str], u: int) -> None:
        """Bounded pools of people who come back (repeat victims, prolific offenders)."""
        if len(pool) < 5000:
            pool.append(entry)
        else:
            pool[u % 5000] = entry

    def _nominal(self, day: int, style: int, role: str, out: dict[str, list]) -> tuple[int, str]:
        u = self.tape.take(24)
        nom_id = self.next_nom
        self.next_nom += 1
        surname = self.surnames[u[0]]
        sex = "M" if u[1] < (52429 if role in "OS" else 32768) else "F"  # offenders 80% male
        if surname[:3] == "NÍ ":
            sex = "F"
        given = self.forenames[sex]
        forenames = given[u[2]]
        if u[3] < 7864:  # 12%: two given names
            second = given[u[4]]
            if second != forenames:
                forenames = f"{forenames} {second}"
        if u[5] < 1311:  # 2%: sex unknown or blank
            sex = "U" if u[5] < 983 else ""
        if u[6] < T["name_hyphenated"]:
            other = self.surnames[u[7]]
            if other != surname and len(surname) + len(other) < 39:
                surname = f"{surname}-{other}"
        display = f"{forenames} {surname}"
        if u[8] < _NAME_ODD:
            surname, forenames = self._odd_name(surname, forenames, u[8], u[9])
        # date of birth
        age = self.age[role][u[11]]
        if u[10] < _DOB_ODD:
            dob = self._odd_dob(u[10])
        else:
            dob = self.dob_cal.forms[style][day + self.dob_offset - age]
        pnc = None
        # a PNC record: most suspects and offenders, a few victims and witnesses; nobody under 10
        if u[12] < (45875 if role in "OS" else 3277 if role == "V" else 1311) and age > 3652:
            pnc = self._pnc(day, u[13], u[14], u[15], u[16])
        flag = "Y" if u[17] < T["deleted"] else self.live_flag[u[18]]
        upd = self._last_upd(day * 1440 + u[19] % 1440, u[20], u[21], False)
        out["nominal"].append((nom_id, surname, forenames, dob, sex, pnc, self.ethnicity[u[22]], flag, upd))
        return nom_id, display

    def _odd_name(self, surname: str, forenames: str, u: int, v: int) -> tuple[str | None, str | None]:
        if u < T["name_combined"]:
            if len(surname) + len(forenames) + 2 > 40:
                return surname, forenames
            combined = f"{surname}, {forenames}" if v % 5 else f"{surname},{forenames}"
            return combined, (None if v % 3 == 0 else "")
        u -= T["name_combined"]
        if u < T["name_blank_surname"]:
            return ("", None, "   ")[v % 3], forenames
        u -= T["name_blank_surname"]
        if u < T["name_double_space"]:
            if " " in forenames:
                return surname, forenames.replace(" ", "  ")
            if " " in surname:
                return surname.replace(" ", "  "), forenames
            return surname, f"{forenames}  {self.forenames['M' if v % 2 else 'F'][v]}"
        # CHAR padding of the original platform
        surname = surname + " " * (1 + v % max(1, min(8, 40 - len(surname))))
        return surname, (forenames + " " * (1 + v % 10) if v % 2 else forenames)

    def _odd_dob(self, u: int) -> str | None:
        if u < T["dob_unknown"]:
            return ("00/00/0000", "", None, "00/00/0000", "00000000")[u % 5]
        u -= T["dob_unknown"]
        if u < T["dob_impossible"]:
            return self._impossible_date(1950 + u % 55, u)
        rng = self.rng  # in the future: typed 20xx for 19xx
        return f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/20{rng.randrange(30, 100)}"

    def _pnc(self, day: int, u1: int, u2: int, u3: int, u4: int) -> str:
        year = self.cal.year[day] - u1 % 15
        digits = str(1 + ((u2 << 16) | u3) % 9999999)
        pnc = f"{P3[year % 100][1:]}/{digits}{PNC_LETTERS[u4 % 23]}"
        if u4 < T["pnc_invalid"]:
            pnc = (f"{digits}{pnc[-1]}", f"{pnc[:3]}{digits}{digits[:2]}{pnc[-1]}", pnc.replace("/", "-"),
                   f"XX/{digits}{pnc[-1]}", pnc[:-1], f"{pnc[:3]}{pnc[-1]}")[u1 % 6]
        elif u4 < T["pnc_invalid"] + T["pnc_lower"]:
            pnc = pnc.lower()
        return pnc[:13]

    # --- intelligence -------------------------------------------------------------------------

    def _intel(self, crime_day: int, style: int, subject: tuple[int, str] | None, out: dict[str, list]) -> None:
        u = self.tape.take(32)
        cal = self.cal
        day = min(crime_day + u[0] % 21, self.last_rec)
        year = cal.year[day]
        n = self.intel_seq[year] = self.intel_seq.get(year, 0) + 1
        canon = f"IN/{six(n)}/{cal.yy[day]}"
        key = canon if u[1] >= _KEY_ODD else self._odd_key(canon, n, u[1])
        minute = self.submit_minute[u[2]]
        submit_date = cal.forms[style][day] if u[3] >= _REC_DATE_ODD else \
            self._odd_date(day, u[3], T["rec_date_unknown"])
        submit_time = HHMM[minute] if u[4] >= 2000 else self._odd_time(minute, u[4], T["rec_time_blank"])
        grades = [tab[x] for tab, x in zip(self.grade_tables, u[5:8])]
        for i in range(3):
            x = u[8 + i]
            if x < _GRADE_ODD:
                grades[i] = (INVALID_GRADES[x % len(INVALID_GRADES)] if x < T["grade_invalid"]
                             else ("", None, " ")[x % 3] if x < T["grade_invalid"] + T["grade_blank"]
                             else grades[i].lower())
        # the subject: this crime's suspect, a known offender, someone new, nobody, or a ghost
        x = u[11]
        if x < T["intel_subject_missing"]:
            subj_id, subj_name = self.rng.randint(*ABSENT_NOM_IDS), None
        elif subject is not None and x < 32768:
            subj_id, subj_name = subject
        elif self.offenders and x < 49152:
            subj_id, subj_name = self.offenders[u[12] % len(self.offenders)]
        elif x < 54395:  # 8%: someone new
            subj_id, subj_name = self._nominal(day, style, "S", out)
        else:
            subj_id, subj_name = None, None
        text = self._intel_text(subj_name, u[13], u[14], u[15], u[16])
        div = self.div_table[u[17]]
        if u[18] < 39322:  # 60% located
            ce, cn, se, sn, box = self.div_geo[div]
            east = min(max(int(ce + self.norm[u[19]] * se), box[0]), box[1])
            north = min(max(int(cn + self.norm[u[20]] * sn), box[2]), box[3])
            if u[21] < T["intel_grid_odd"]:
                east, north = (0, 0) if u[21] % 2 else (9999999, north)
        else:
            east = north = 0 if u[19] < 13107 else None
        stored_div = div if u[22] >= _DIV_ODD else self._odd_div(div, u[22])
        if u[23] < 9830:  # 15% never set for review
            review = "" if u[23] % 2 else None
        else:
            rday = min(day + (182, 365, 365, 365, 730)[u[24] % 5], len(cal.days) - 1)
            review = cal.forms[style][rday] if u[25] >= _REVIEW_ODD else \
                self._odd_date(rday, u[25], T["review_date_unknown"])
        flag = "Y" if u[26] < T["deleted"] else self.live_flag[u[27]]
        upd = self._last_upd(day * 1440 + minute, u[28], u[29], False)
        out["intel"].append((key, submit_date, submit_time, grades[0], grades[1], grades[2], subj_id, text,
                             stored_div, east, north, review, self.officers[div][u[30] & 127], flag, upd))

    def _intel_text(self, subject: str | None, u1: int, u2: int, u3: int, u4: int) -> str | None:
        pools = self.pools
        if u1 < T["intel_text_blank"]:
            return ("", "   ", None, "\n", " \r\n ")[u1 % 5]
        who = subject or ("UNKNOWN MALE", "AN UNKNOWN FEMALE", "A MALE KNOWN AS \"SKINNY\"",
                          "OCCUPANTS OF THE ADDRESS")[u2 % 4]
        opener = pools.intel_openers[u2 % len(pools.intel_openers)].replace("{subject}", who)
        n = 40 + u3 % 30 if u1 < T["intel_text_blank"] + T["intel_text_near_max"] else self.sentences[u3]
        more, size = pools.intel_sentences, len(pools.intel_sentences)
        sentences = [opener]
        sentences += [more[x % size] for x in self.tape.take(n - 1)]
        sep = " " if u4 < 36045 else "\n" if u4 < 55706 else "\r\n"  # 55% / 30% / 15%
        if u4 % 1000 < RATES["intel_text_trailing_spaces"] * 1000:
            sep = "  \n"
        header = texts.INTEL_HEADERS[u2 % len(texts.INTEL_HEADERS)]
        text = (header + "\n" if header else "") + sep.join(sentences)
        if len(text) > 4000:
            cut = max(text.rfind(". ", 0, 4000), text.rfind(".\n", 0, 4000))
            text = text[: cut + 1] if cut > 3000 else text[:4000]
        return text


NO_PERSONAL_VICTIM_T = {kind: threshold(p) for kind, p in NO_PERSONAL_VICTIM.items()}

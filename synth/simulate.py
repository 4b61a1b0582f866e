"""A faulty vendor migration, for the reconciler (and auditors in training) to find.

``simulate`` fills an EMPTY iOPS store from an OPUS store the way the 2019 go-live did: it maps
every legacy record with the project's own mapping (so it knows what each record *should*
be), then writes most of them faithfully and damages a deterministic few, one defect class per
record, recording each defect in the ground truth exactly as ``reconciliation.md`` says the
reconciler must report it (``synth/truth.py``).

A vendor's store has no ``mig_`` tables: only the five iOPS tables are created and written.

Defect classes (rates in ``DefectRates``; "per eligible record" — a class that cannot apply
to a record, e.g. truncating a short text, is never drawn for it):

========================  =====================================================================
crime / intelligence      lost, scattered → ``MISSING``
lost days                 every crime and intelligence entry recorded on a few UK dates → ``MISSING``
offence code              another Home Office code (description, group, police.uk category
                          follow it) → ``ALTERED`` per differing field; the expired pre-April-2017
                          code (28A for a 2018 dwelling burglary) is a class of its own
recorded_at               a BST instant stored as if local time were UTC → ``ALTERED`` ``OFFSET_1H``
free text                 mo_summary / intel_text cut at 255 characters → ``ALTERED`` ``TRUNCATED``
coordinates               lost (easting, northing, latitude, longitude NULL) or latitude and
                          longitude swapped → ``ALTERED`` ``location.*``
grading                   a 5x5x5 letter/digit kept instead of the 3x5x2 code → ``ALTERED``
outcome                   outcome_code NULL on a finalised crime → ``ALTERED``
links                     victim/suspect link lost → ``MISSING`` crime_person
duplicates                a second copy of a crime (new id, ``crime_ref`` + ``D``, later
                          created_at) → ``DUPLICATE``
deleted records           OPUS-deleted crimes/intelligence migrated as if live → ``UNEXPECTED``
re-keyed crimes           lost, then typed again by hand in iOPS with no legacy_ref, a new
                          ``CRI-2019-9nnnnn`` reference and the slips of re-typing (address typo,
                          postcode transposition, time off by minutes, offence of the same group,
                          narrative cut to its first sentence, re-geocoded a few metres away)
                          → ``PROBABLE_MATCH``
new iOPS crimes           entered after go-live, nothing to do with OPUS → ``NEW_IN_IOPS`` (truth only)
persons                   lost → ``MISSING``; family name misspelt, date of birth day/month
                          swapped → ``ALTERED``
re-keyed persons          not migrated keyed: written without legacy_nominal_id, either by the
                          vendor as it was (``key_dropped``, source_system OPUS) or typed again by
                          hand in iOPS (source_system IOPS) with 1–3 slips of
                          ``synth/person_variants.py`` (forename variants and nicknames, typos,
                          middle names, swapped names, Mc/Mac, apostrophes, hyphens, DOB typos and
                          day/month swaps, PNC typos or dropped) → person ``PROBABLE_MATCH``
re-entered persons        migrated keyed and faithfully, then created again by an officer who could
                          not find them (source_system IOPS, no legacy id, the same slips or none:
                          ``exact``), some linked to a new iOPS crime → ``PROBABLE_DUPLICATE``
look-alikes               genuinely new iOPS persons resembling a legacy nominal (``namesake``:
                          same names, other DOB; ``twin``: same family name and DOB, another given
                          name; ``parent_child``: same names, 25–40 years apart), some linked to a
                          new iOPS crime → ``NEW_IN_IOPS`` with legacy_ref = the nominal they
                          resemble (truth only: a hard negative)
mapping rejects           not migrated by the vendor either → ``MISSING`` with detail = reason; so is
                          the second of two keys equal once trimmed when both are accepted
                          (``DUPLICATE_KEY``, ``mappings.entities.first_key_wins``)
========================  =====================================================================

Interactions, decided so the truth stays exact:

* one defect class per record; a lost record is never also altered;
* links are compared only for crimes and persons that are both matched (reconciliation.md),
  so links of a lost crime or person are not written and not listed; an intelligence entry
  whose subject person was lost is lost too (its subject_person_id would point nowhere);
* a re-keyed crime keeps all its links (moved onto the new record), so whether the
  reconciler auto-matches it or not, no link discrepancy follows; crimes with a link the
  mapping rejects ``INVALID_ROLE`` are never re-keyed (that MISSING link would exist only if
  the reconciler auto-matched the pair);
* a duplicated crime's links stay on the original only;
* a re-keyed person keeps all its links (moved onto the new person) and never loses one, so
  whether the reconciler auto-matches it or not no link discrepancy follows; persons with a
  link the mapping rejects ``INVALID_ROLE`` or who are the subject of an intelligence entry
  are never re-keyed (the subject is compared as the NOM_ID the reconciler resolves: it would
  be ALTERED exactly when the pair is not auto-matched);
* re-entered persons and look-alikes are linked only to new iOPS crimes (never compared).

Choices are made by hashing each record's key with the seed, so the same seed gives the
same store and truth, and nothing but small sets of keys is held in memory: the run streams
the legacy tables in batches like the migration engine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import schema
from core.batches import legacy_batches
from core.db import mask_url, open_legacy, open_target, refuse_same_store, store_errors, stream
from core.errors import OutputError, UsageError
from core.progress import bar
from mappings import ids
from mappings.entities import CRIME, INTELLIGENCE, LINK, PERSON, Entity, first_key_wins
from mappings.geo import to_lat_lon
from mappings.link import ROLES
from mappings.outcome import Mapped, MappingContext
from mappings.parse import LONDON, code, local_date, parse_nom_id, to_utc_second, trim
from mappings.reference import Reference, load_reference
from migrate.accepted import AcceptedKeys
from core.publish import check_output_folder
from synth import person_variants
from synth.truth import NEW_IN_IOPS, TruthWriter

UTC = dt.timezone.utc

#: iOPS went live at 08:00 on Monday 1 July 2019 (UK time).
GO_LIVE = dt.datetime(2019, 7, 1, 8, 0, tzinfo=LONDON).astimezone(UTC)
#: The width of the vendor's free-text columns.
TRUNCATE_AT = 255
#: First number of iOPS's own crime numbering (CRI-2019-900001 …).
NEW_NUMBER_START = 900_001
NEW_NUMBER_YEAR = 2019

IOPS_TABLES = tuple(schema.target_metadata.tables[name] for name in schema.TARGET_TABLES)

#: Target columns never compared by the reconciler (surrogate keys, bookkeeping instants).
NOT_COMPARED = frozenset({"crime_id", "location_id", "intel_id", "person_id", "subject_person_id",
                          "created_at", "updated_at"})
#: Compared as names/addresses/free text: case and white space do not count.
TEXT_FIELDS = frozenset({"family_name", "given_names", "address", "mo_summary", "intel_text",
                         "offence_description", "handling_conditions"})
COORD_FIELDS = frozenset({"latitude", "longitude"})
COORD_TOLERANCE = 0.00001

_NAMESPACE = uuid.UUID(str(ids.NAMESPACE))

# ------------------------------------------------------------------------------ rates


@dataclass(frozen=True)
class DefectRates:
    """Probability of each defect class per *eligible* record (see the module docstring).

    At most one class per record: the classes of an entity share one draw, so the rates of
    an entity must add up to at most 1.
    """

    #: fraction of calendar days whose crimes and intelligence were all lost
    lost_day: float = 0.004
    # crimes
    crime_lost: float = 0.008
    crime_offence_changed: float = 0.004
    crime_expired_code: float = 0.04  # of crimes whose OPUS code had an older HO code
    crime_time_offset: float = 0.006  # of crimes recorded in British Summer Time
    crime_text_truncated: float = 0.25  # of crimes whose mo_summary is longer than 255 (few are)
    crime_coords_lost: float = 0.004  # of crimes with coordinates
    crime_coords_swapped: float = 0.003  # of crimes with coordinates
    crime_outcome_lost: float = 0.01  # of finalised crimes with an outcome
    crime_duplicated: float = 0.004
    crime_rekeyed: float = 0.012
    crime_deleted_migrated: float = 0.25  # of OPUS-deleted crimes
    #: genuinely new iOPS crimes, as a fraction of the crimes migrated
    new_crimes: float = 0.01
    # intelligence
    intel_lost: float = 0.008
    intel_grading_garbled: float = 0.008
    intel_text_truncated: float = 0.03  # of entries whose text is longer than 255
    intel_deleted_migrated: float = 0.25  # of OPUS-deleted entries
    # persons
    person_lost: float = 0.003
    person_name_misspelt: float = 0.004
    person_dob_swapped: float = 0.01  # of persons whose date of birth has day <= 12
    #: not migrated keyed, written without legacy_nominal_id (of persons neither an intelligence
    #: subject nor with an INVALID_ROLE link)
    person_rekeyed: float = 0.025
    #: migrated, then entered again in iOPS (a duplicate nominal)
    person_reentered: float = 0.025
    #: a genuinely new iOPS person resembling this one (of persons with a date of birth and a
    #: given name; drawn apart from the classes above)
    person_lookalike: float = 0.025
    # links
    link_lost: float = 0.004

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise UsageError(f"defect rate {f.name} must be between 0 and 1, not {value!r}")
        for entity, classes in CLASSES.items():
            total = sum(getattr(self, rate) for _, rate in classes)
            if total > 1:
                raise UsageError(f"the {entity} defect rates add up to {total:.3f}: at most 1 (one defect per record)")

    def with_persons(self, rate: float) -> "DefectRates":
        """These rates with ``rate`` of the persons re-keyed or re-entered (half each), and as
        many look-alikes as either (the bench's "5% of persons re-keyed or duplicated")."""
        return replace(self, person_rekeyed=rate / 2, person_reentered=rate / 2, person_lookalike=rate / 2)

    @classmethod
    def none(cls) -> "DefectRates":
        """No defect at all: the store equals a faithful migration (without mig_ tables)."""
        return cls(**{f.name: 0.0 for f in fields(cls)})


#: Per entity, the defect classes drawn from one per-record number, in band order.
CLASSES: dict[str, tuple[tuple[str, str], ...]] = {
    "crime": (
        ("LOST_SCATTERED", "crime_lost"),
        ("OFFENCE_EXPIRED_CODE", "crime_expired_code"),
        ("OFFENCE_CHANGED", "crime_offence_changed"),
        ("TIME_OFFSET_BST", "crime_time_offset"),
        ("TEXT_TRUNCATED", "crime_text_truncated"),
        ("COORDS_LOST", "crime_coords_lost"),
        ("COORDS_SWAPPED", "crime_coords_swapped"),
        ("OUTCOME_LOST", "crime_outcome_lost"),
        ("DUPLICATED", "crime_duplicated"),
        ("REKEYED", "crime_rekeyed"),
    ),
    "intelligence": (
        ("LOST_SCATTERED", "intel_lost"),
        ("GRADING_GARBLED", "intel_grading_garbled"),
        ("TEXT_TRUNCATED", "intel_text_truncated"),
    ),
    "person": (
        ("LOST", "person_lost"),
        ("NAME_MISSPELT", "person_name_misspelt"),
        ("DOB_DAY_MONTH_SWAPPED", "person_dob_swapped"),
        ("REKEYED", "person_rekeyed"),
        ("RE_ENTERED", "person_reentered"),
    ),
}

#: Readable names of the causes, for the console summary.
CAUSE_LABELS = {
    "REJECTED": "rejected by the mapping (not migrated)",
    "LOST_SCATTERED": "lost (scattered)",
    "LOST_DAY": "lost (whole days)",
    "SUBJECT_LOST": "lost with their lost subject person",
    "LOST": "lost",
    "OFFENCE_EXPIRED_CODE": "offence: expired pre-2017 code",
    "OFFENCE_CHANGED": "offence: other code",
    "TIME_OFFSET_BST": "recorded_at +1 h (BST as UTC)",
    "TEXT_TRUNCATED": "text cut at 255",
    "COORDS_LOST": "coordinates lost",
    "COORDS_SWAPPED": "latitude/longitude swapped",
    "OUTCOME_LOST": "outcome lost",
    "DUPLICATED": "duplicated",
    "REKEYED": "re-keyed without the legacy key",
    "NEW_IN_IOPS": "new iOPS records (not defects)",
    "DELETED_MIGRATED": "OPUS-deleted but migrated",
    "GRADING_GARBLED": "grading garbled",
    "NAME_MISSPELT": "family name misspelt",
    "DOB_DAY_MONTH_SWAPPED": "date of birth day/month swapped",
    "LINK_LOST": "link lost",
    "RE_ENTERED": "entered again in iOPS (duplicate nominal)",
    "LOOKALIKE": "new iOPS look-alikes (namesakes, twins, parent/child; not defects)",
}

# ------------------------------------------------------------------------------ result


@dataclass
class SimulationResult:
    seed: int
    rates: DefectRates
    legacy_url: str  # password masked
    target_url: str  # password masked
    truth_path: Path | None
    started_at: dt.datetime
    finished_at: dt.datetime
    seconds: float
    rows_written: dict[str, int]  # target table -> rows
    defects: dict[str, dict[str, int]]  # entity -> cause -> records
    truth_rows: dict[str, int]  # category -> rows of the truth
    lost_days: list[str]

    def summary_lines(self) -> list[str]:
        written = ", ".join(f"{name} {self.rows_written.get(name, 0):,}" for name in schema.TARGET_TABLES)
        lines = [
            f"simulated a faulty vendor migration (seed {self.seed}) in {self.seconds:.1f} s",
            f"  from {self.legacy_url}",
            f"  into {self.target_url} (no mig_ tables)",
            f"  rows written: {written}",
            "  defects injected (records):",
        ]
        for entity in ("crime", "intelligence", "person", "crime_person"):
            causes = self.defects.get(entity, {})
            if causes:
                parts = ", ".join(f"{CAUSE_LABELS.get(c, c)} {n:,}" for c, n in sorted(causes.items()))
                lines.append(f"    {entity}: {parts}")
        if self.lost_days:
            shown = ", ".join(self.lost_days[:6]) + (" …" if len(self.lost_days) > 6 else "")
            lines.append(f"  whole days lost: {len(self.lost_days)} ({shown})")
        rows = ", ".join(f"{c} {n:,}" for c, n in sorted(self.truth_rows.items()))
        lines.append(f"  truth: {sum(self.truth_rows.values()):,} rows ({rows})")
        lines.append(f"  truth file: {self.truth_path}" if self.truth_path else "  truth file: not written (no --truth)")
        return lines


# ------------------------------------------------------------------------------ determinism


def _digest(seed: int, salt: str, key: str) -> bytes:
    return hashlib.blake2b(f"{seed}\x1f{salt}\x1f{key}".encode("utf-8"), digest_size=8).digest()


def unit(seed: int, salt: str, key: str) -> float:
    """A number in [0, 1) fixed by (seed, salt, key): the per-record random draw."""
    return int.from_bytes(_digest(seed, salt, key), "big") / 2**64


def _rng(seed: int, salt: str, key: str) -> random.Random:
    """A private generator for the sub-choices of one record's defect."""
    return random.Random(int.from_bytes(_digest(seed, salt, key), "big"))


def _choose(draw: float, candidates: Sequence[tuple[str, float]]) -> str | None:
    """The class whose band [lo, lo + rate) holds ``draw``; None when it falls past them all."""
    lo = 0.0
    for cause, rate in candidates:
        lo += rate
        if draw < lo:
            return cause
    return None


def _sim_id(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"simulate:{kind}:{key}"))


# ------------------------------------------------------------------------------ comparing


def _same(column: str, expected, actual) -> tuple[bool, str | None]:
    """(equal?, detail) under reconciliation.md's "Comparing fields"."""
    if expected is None or actual is None:
        return expected is None and actual is None, None
    if isinstance(expected, dt.datetime):
        delta = actual.replace(second=0, microsecond=0) - expected.replace(second=0, microsecond=0)
        if not delta:
            return True, None
        seconds = int(delta.total_seconds())
        return False, (f"OFFSET_{seconds // 3600}H" if seconds % 3600 == 0 else None)
    if column in COORD_FIELDS:
        return abs(float(expected) - float(actual)) <= COORD_TOLERANCE, None
    if column in TEXT_FIELDS:
        e, a = " ".join(str(expected).split()).casefold(), " ".join(str(actual).split()).casefold()
        if e == a:
            return True, None
        return False, ("TRUNCATED" if a and len(a) < len(e) and e.startswith(a) else None)
    return expected == actual, None


def altered_fields(expected: dict[str, dict], actual: dict[str, dict]) -> Iterator[tuple[str, str | None]]:
    """(field, detail) of every compared field whose new value differs from the mapped one.

    ``expected``/``actual`` map target table → row; location columns are named
    ``location.<column>`` (the record owns its location).
    """
    for table_name, row in expected.items():
        new_row = actual.get(table_name) or {}
        prefix = "location." if table_name == "location" else ""
        for column, value in row.items():
            if column in NOT_COMPARED:
                continue
            equal, detail = _same(column, value, new_row.get(column))
            if not equal:
                yield prefix + column, detail


# ------------------------------------------------------------------------------ statistics


class _CrimeStats:
    """The month × district × offence group counts of mapping.md, both sides, as crime_stats.csv."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])

    @staticmethod
    def _cell(crime: dict) -> tuple[str, str, str] | None:
        if crime["status"] in ("CANCELLED", "TRANSFERRED"):
            return None
        month = crime["recorded_at"].astimezone(LONDON).strftime("%Y-%m")
        return month, crime["district_code"] or "UNKNOWN", crime["offence_group"]

    def add(self, side: int, crime: dict, location: dict | None) -> None:
        cell = self._cell(crime)
        if cell is None:
            return
        counts = self.cells[cell]
        counts[side] += 1
        if location is None or location.get("latitude") is None or location.get("longitude") is None:
            counts[side + 2] += 1

    def legacy(self, crime: dict, location: dict | None) -> None:
        self.add(0, crime, location)

    def new(self, crime: dict, location: dict | None) -> None:
        self.add(1, crime, location)

    def rows(self) -> list[dict]:
        return [
            {"month": m, "district_code": d, "offence_group": g, "legacy_count": c[0], "new_count": c[1],
             "delta": c[1] - c[0], "legacy_no_location": c[2], "new_no_location": c[3]}
            for (m, d, g), c in sorted(self.cells.items())
        ]


# ------------------------------------------------------------------------------ typing errors


def _letters(s: str) -> list[int]:
    return [i for i, ch in enumerate(s) if ch.isalpha()]


def misspell(name: str, rng: random.Random, max_len: int) -> str:
    """A typing error that survives case/white-space folding: swap two adjacent letters that
    differ, else drop a letter, else add one."""
    swaps = [i for i in range(len(name) - 1)
             if name[i].isalpha() and name[i + 1].isalpha() and name[i].casefold() != name[i + 1].casefold()]
    if swaps:
        i = rng.choice(swaps)
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    letters = _letters(name)
    if len(letters) > 1:
        i = rng.choice(letters)
        return name[:i] + name[i + 1:]
    extra = "E" if name[-1:].isupper() or not name else "e"
    return (name + extra)[:max_len] if len(name) < max_len else name[:-1] + ("X" if name[-1] != "X" else "Y")


_KEY_NEIGHBOURS = {
    "A": "SQ", "B": "VN", "C": "XV", "D": "SF", "E": "WR", "F": "DG", "G": "FH", "H": "GJ", "I": "UO",
    "J": "HK", "K": "JL", "L": "K", "M": "N", "N": "BM", "O": "IP", "P": "O", "Q": "W", "R": "ET",
    "S": "AD", "T": "RY", "U": "YI", "V": "CB", "W": "QE", "X": "ZC", "Y": "TU", "Z": "X",
}


def address_typo(address: str, rng: random.Random) -> str:
    """One slip of the keyboard in an address: a neighbouring key, a swap or a dropped letter."""
    letters = [i for i in _letters(address) if address[i].upper() in _KEY_NEIGHBOURS]
    if not letters:
        return misspell(address, rng, 200)
    i = rng.choice(letters)
    kind = rng.random()
    if kind < 0.5:
        ch = address[i]
        sub = rng.choice(_KEY_NEIGHBOURS[ch.upper()])
        return address[:i] + (sub if ch.isupper() else sub.lower()) + address[i + 1:]
    if kind < 0.8:
        return misspell(address, rng, 200)
    return address[:i] + address[i + 1:] if len(letters) > 1 else misspell(address, rng, 200)


def first_sentence(text: str) -> str:
    """The first sentence (or line) of a narrative, as someone re-typing it in a hurry would."""
    cut = len(text)
    for mark in (". ", "\n", "\r"):
        i = text.find(mark)
        if 20 <= i < cut:
            cut = i + (1 if mark == ". " else 0)
    return text[:cut].rstrip()


def transpose_postcode(postcode: str) -> str | None:
    """Two adjacent characters swapped, keeping the UK postcode shape ('M14 5RT' → 'M14 5TR',
    'M1 7AA' → … the outward digits); None when no such swap changes anything."""
    outward, _, inward = postcode.partition(" ")
    if len(inward) == 3 and inward[1] != inward[2]:
        return f"{outward} {inward[0]}{inward[2]}{inward[1]}"
    if len(outward) >= 3 and outward[-1].isdigit() and outward[-2].isdigit() and outward[-1] != outward[-2]:
        return f"{outward[:-2]}{outward[-1]}{outward[-2]} {inward}"
    return None


# ------------------------------------------------------------------------------ the run


def simulate(
    legacy_url: str,
    target_url: str,
    *,
    seed: int = 7,
    truth_path: str | Path | None = None,
    rates: DefectRates | None = None,
    batch_size: int = 2000,
    reference: Reference | None = None,
) -> SimulationResult:
    """Fill the empty iOPS store at ``target_url`` from the OPUS store at ``legacy_url`` as a
    faulty vendor migration would, and write the ground truth to ``truth_path`` (JSON)."""
    rates = rates or DefectRates()
    rates.validate()
    if batch_size < 1:
        raise UsageError("batch size must be at least 1")
    truth_path = Path(truth_path) if truth_path is not None else None
    if truth_path is not None:  # before the target is touched: a truth file that cannot be written fails now
        check_output_folder(truth_path.parent, "the truth file")
        if not truth_path.parent.is_dir():
            raise OutputError(f"folder for the truth file does not exist: {truth_path.resolve().parent}")
        if truth_path.is_dir():
            raise OutputError(f"cannot write the truth file {truth_path}: it is a folder")
    reference = reference or load_reference()
    started_at = schema.utc_now()
    clock = time.perf_counter()
    legacy = open_legacy(legacy_url)
    try:
        refuse_same_store(legacy, target_url)  # the simulator writes its target
        target = open_target(target_url)
    except BaseException:
        legacy.dispose()
        raise
    truth = TruthWriter()
    try:
        tables = schema.legacy_tables(legacy)
        with store_errors(target, "target"):
            prepare_target(target)
        sim = _Simulator(legacy, target, tables, reference, rates, seed, batch_size, truth, started_at)
        with store_errors(target, "target"), store_errors(legacy, "legacy"):
            sim.run()
        lost_days = sorted(sim.lost_days_seen)
        defects = {entity: dict(sorted(c.items())) for entity, c in sim.counts.items() if c}
        if truth_path is not None:
            header = {"seed": seed, "rates": asdict(rates), "go_live": GO_LIVE.isoformat(),
                      "legacy_url": mask_url(legacy_url), "lost_days": lost_days, "counts": defects,
                      "rows_written": dict(sim.rows_written)}
            truth.write(truth_path, header, sim.stats.rows())
        return SimulationResult(
            seed=seed, rates=rates, legacy_url=mask_url(legacy_url), target_url=mask_url(target_url),
            truth_path=truth_path, started_at=started_at, finished_at=schema.utc_now(),
            seconds=time.perf_counter() - clock, rows_written=dict(sim.rows_written), defects=defects,
            truth_rows=dict(truth.categories), lost_days=lost_days,
        )
    finally:
        truth.close()
        legacy.dispose()
        target.dispose()


def prepare_target(engine: Engine) -> None:
    """Create the five iOPS tables (and nothing else); refuse a store that already holds records."""
    schema.check_target_schema(engine)
    existing = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        for table in IOPS_TABLES:
            if table.name in existing and conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
                raise UsageError(
                    f"the target already holds {table.name} records: simulate fills an EMPTY iOPS store "
                    f"(give it a new database)"
                )
    schema.target_metadata.create_all(engine, tables=list(IOPS_TABLES), checkfirst=True)


class _Simulator:
    def __init__(self, legacy: Engine, target: Engine, tables: dict, reference: Reference, rates: DefectRates,
                 seed: int, batch_size: int, truth: TruthWriter, started_at: dt.datetime):
        self.legacy = legacy
        self.target = target
        self.tables = tables
        self.reference = reference
        self.rates = rates
        self.seed = seed
        self.batch_size = batch_size
        self.truth = truth
        self.run_started = to_utc_second(started_at)
        self.ctx: MappingContext | None = None

        self.accepted = AcceptedKeys()  # what the mapping accepts: links and subjects depend on it
        self.rejected_live = AcceptedKeys()  # live legacy keys the mapping rejects
        self.crimes_lost = AcceptedKeys()  # accepted but not written: their links are not compared
        self.crimes_rekeyed = AcceptedKeys()  # written without legacy_ref: links go to the new record
        self.unexpected_written = AcceptedKeys()
        self.persons_lost: set[int] = set()
        self.person_ids_lost: set[str] = set()
        self.persons_rekeyed: set[int] = set()  # NOM_IDs written without legacy_nominal_id
        self.invalid_role_crimes: set[str] = set()
        self.never_rekeyed_persons: set[int] = set()  # intelligence subjects, INVALID_ROLE links
        #: iOPS-entered persons (re-entered, look-alikes) to link to new iOPS crimes, in order
        self.new_crime_people: list[str] = []
        self.taken_new_numbers: set[int] = set()
        self.next_number = NEW_NUMBER_START
        self.max_recorded: dt.datetime | None = None
        self.crimes_migrated = 0
        self.lost_day_cache: dict[dt.date, bool] = {}
        self.lost_days_seen: set[str] = set()

        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.rows_written: Counter = Counter()
        self.stats = _CrimeStats()

    # --- passes -------------------------------------------------------------------------

    def run(self) -> None:
        self.ctx = MappingContext(
            reference=self.reference, run_started=self.run_started,
            person_migrated=self.accepted.has_person, crime_migrated=self.accepted.has_crime,
        )
        self._survey()
        self._persons()
        self._crimes()
        self._links()
        self._intelligence()

    def _survey(self) -> None:
        """Small facts needed before the passes: crimes with a link the mapping rejects for its
        role (never re-keyed), and legacy numbers that iOPS's own numbering must skip."""
        crime_nom = self.tables["crime_nom"]
        crime = self.tables["crime"]
        intel = self.tables["intel"]
        with self.legacy.connect() as conn:
            for raw_crime, raw_nom, raw_role in stream(conn, sa.select(crime_nom.c.crime_no, crime_nom.c.nom_id,
                                                                       crime_nom.c.role)):
                if ROLES.get(code(raw_role)) is None:
                    self.invalid_role_crimes.add(trim(raw_crime) or "")
                    nom_id = parse_nom_id(raw_nom)
                    if nom_id is not None:
                        self.never_rekeyed_persons.add(nom_id)
            if self.rates.person_rekeyed:
                for (raw_subject,) in stream(conn, sa.select(intel.c.subj_nom_id)
                                             .where(intel.c.subj_nom_id.is_not(None))):
                    nom_id = parse_nom_id(raw_subject)
                    if nom_id is not None:
                        self.never_rekeyed_persons.add(nom_id)
            suffix = f"/{NEW_NUMBER_YEAR % 100:02d}"
            for (raw,) in conn.execute(sa.select(crime.c.crime_no).where(crime.c.crime_no.like(f"%CR/9%{suffix}%"))):
                ref = trim(raw) or ""
                if len(ref) == 12 and ref.endswith(suffix) and ref[3:9].isdigit():
                    self.taken_new_numbers.add(int(ref[3:9]))

    def _persons(self) -> None:
        for batch, mapped in self._mapped(PERSON):
            rows: dict[str, list] = defaultdict(list)
            for m in mapped:
                person = self._accept(PERSON, m)
                if person is None:
                    continue
                person = dict(person["person"])
                for column in ("created_at", "updated_at"):
                    # A blank LAST_UPD maps to the run's start; the vendor's run is fixed in time.
                    if person[column] == self.run_started:
                        person[column] = GO_LIVE
                nom_id = person["legacy_nominal_id"]
                cause = self._draw("person", m.legacy_key, self._person_classes(person))
                if unit(self.seed, "person-lookalike", m.legacy_key) < self.rates.person_lookalike:
                    self._lookalike(m.legacy_key, person, rows)
                if cause == "LOST":
                    self.persons_lost.add(nom_id)
                    self.person_ids_lost.add(person["person_id"])
                    self._missing("person", m.legacy_key, cause)
                    continue
                if cause == "REKEYED":
                    self.persons_rekeyed.add(nom_id)
                    rows["person"].append(self._rekey_person(m.legacy_key, person))
                    continue
                if cause == "RE_ENTERED":
                    rows["person"].append(self._reenter_person(m.legacy_key, person))
                new = dict(person)
                if cause == "NAME_MISSPELT":
                    new["family_name"] = misspell(person["family_name"], self._sub(cause, m.legacy_key), 60)
                elif cause == "DOB_DAY_MONTH_SWAPPED":
                    dob = person["date_of_birth"]
                    new["date_of_birth"] = dt.date(dob.year, dob.day, dob.month)
                self._altered("person", m.legacy_key, person["person_id"], {"person": person}, {"person": new}, cause)
                rows["person"].append(new)
            self._write(rows)

    def _person_classes(self, person: dict) -> list[tuple[str, float]]:
        r = self.rates
        out = [("LOST", r.person_lost), ("NAME_MISSPELT", r.person_name_misspelt)]
        dob = person["date_of_birth"]
        if dob is not None and dob.day <= 12 and dob.day != dob.month:
            out.append(("DOB_DAY_MONTH_SWAPPED", r.person_dob_swapped))
        if person["legacy_nominal_id"] not in self.never_rekeyed_persons:
            out.append(("REKEYED", r.person_rekeyed))
        out.append(("RE_ENTERED", r.person_reentered))
        return out

    def _iops_entered(self, person: dict, changed: dict, person_id: str, rng: random.Random) -> dict:
        """A person row typed into iOPS after go-live: no legacy id, iOPS's own stamps; the
        ethnicity code is often not asked again."""
        stamp = GO_LIVE + dt.timedelta(days=rng.randint(1, 365), minutes=rng.randint(0, 600))
        return dict(person, **changed, person_id=person_id, legacy_nominal_id=None, source_system="IOPS",
                    ethnicity_code=person["ethnicity_code"] if rng.random() < 0.7 else None,
                    created_at=stamp, updated_at=stamp)

    def _typed_again(self, person: dict, rng: random.Random) -> tuple[dict, list[str]]:
        """The person's particulars with 1–3 slips (``synth.person_variants``)."""
        kinds = person_variants.choose_kinds(person, rng)
        return person_variants.vary(person, kinds, rng)

    def _rekey_person(self, key: str, person: dict) -> dict:
        """Not migrated keyed: the vendor wrote it without its legacy id (a quarter, as it was)
        or it was typed again by hand after go-live (the rest, with slips)."""
        rng = self._sub("REKEYED-person", key)
        person_id = _sim_id("rekeyed-person", key)
        if rng.random() < 0.25:
            new, kinds = dict(person, person_id=person_id, legacy_nominal_id=None), ["key_dropped"]
        else:
            changed, kinds = self._typed_again(person, rng)
            new = self._iops_entered(person, changed, person_id, rng)
            kinds = kinds or ["exact"]
        self.truth.add("person", "PROBABLE_MATCH", key, person_id, cause="REKEYED:" + "+".join(kinds))
        return new

    def _reenter_person(self, key: str, person: dict) -> dict:
        """Created again by an officer who could not find the migrated person; a few typed
        exactly (they did not search)."""
        rng = self._sub("RE_ENTERED", key)
        person_id = _sim_id("reentered-person", key)
        if rng.random() < 0.1:
            changed, kinds = {}, []
        else:
            changed, kinds = self._typed_again(person, rng)
        self.truth.add("person", "PROBABLE_DUPLICATE", key, person_id,
                       cause="RE_ENTERED:" + "+".join(kinds or ["exact"]))
        if rng.random() < 0.4:
            self.new_crime_people.append(person_id)
        return self._iops_entered(person, changed, person_id, rng)

    def _lookalike(self, key: str, person: dict, rows: dict[str, list]) -> None:
        """A genuinely new iOPS person who resembles this nominal (a hard negative)."""
        kinds = person_variants.lookalike_kinds(person)
        if not kinds:
            return
        rng = self._sub("LOOKALIKE", key)
        kind = rng.choice(kinds)
        person_id = _sim_id("lookalike-person", key)
        other = self._iops_entered(person, person_variants.lookalike(person, kind, rng), person_id, rng)
        rows["person"].append(other)
        self.truth.add("person", NEW_IN_IOPS, key, person_id, cause="LOOKALIKE:" + kind)
        self.counts["person"]["LOOKALIKE"] += 1
        if rng.random() < 0.4:
            self.new_crime_people.append(person_id)

    def _crimes(self) -> None:
        deleted_pending: list[Mapped] = []
        for batch, mapped in self._mapped(CRIME):
            deleted_pending += self._deleted_candidates("crime", batch, mapped, CRIME.map_batch,
                                                       self.rates.crime_deleted_migrated)
            rows: dict[str, list] = defaultdict(list)
            for raw, m in zip(batch, mapped):
                accepted = self._accept(CRIME, m)
                if accepted is None:
                    continue
                self._crime(m.legacy_key, code(raw.get("off_code")), accepted["crime"], accepted["location"], rows)
            self._write(rows)
        self._write_unexpected("crime", deleted_pending)
        self._new_crimes()

    def _crime(self, key: str, opus_code: str | None, crime: dict, location: dict, rows: dict[str, list]) -> None:
        self.crimes_migrated += 1
        self.stats.legacy(crime, location)
        if self.max_recorded is None or crime["recorded_at"] > self.max_recorded:
            self.max_recorded = crime["recorded_at"]
        if self._lost_day(crime["recorded_at"]):
            self.crimes_lost.add("crime", key)
            self._missing("crime", key, "LOST_DAY")
            return
        expired = self._expired_code(opus_code, crime)
        cause = self._draw("crime", key, self._crime_classes(key, crime, location, expired))
        if cause == "LOST_SCATTERED":
            self.crimes_lost.add("crime", key)
            self._missing("crime", key, cause)
            return
        if cause == "REKEYED":
            self.crimes_rekeyed.add("crime", key)
            self._rekey(key, crime, location, rows)
            return
        new_crime, new_location = dict(crime), dict(location)
        rng = self._sub(cause, key) if cause else None
        if cause == "OFFENCE_EXPIRED_CODE":
            self._set_offence(new_crime, expired)
        elif cause == "OFFENCE_CHANGED":
            self._set_offence(new_crime, self._other_offence(crime["ho_offence_code"], rng))
        elif cause == "TIME_OFFSET_BST":
            # The vendor read UK local time as UTC: in summer the instant lands an hour late.
            new_crime["recorded_at"] = crime["recorded_at"] + dt.timedelta(hours=1)
            new_crime["created_at"] = new_crime["recorded_at"]
        elif cause == "TEXT_TRUNCATED":
            new_crime["mo_summary"] = crime["mo_summary"][:TRUNCATE_AT]
        elif cause == "COORDS_LOST":
            new_location.update(easting=None, northing=None, latitude=None, longitude=None)
        elif cause == "COORDS_SWAPPED":
            new_location.update(latitude=location["longitude"], longitude=location["latitude"])
        elif cause == "OUTCOME_LOST":
            new_crime["outcome_code"] = None
        self._altered("crime", key, crime["crime_ref"], {"crime": crime, "location": location},
                      {"crime": new_crime, "location": new_location}, cause)
        rows["location"].append(new_location)
        rows["crime"].append(new_crime)
        self.stats.new(new_crime, new_location)
        if cause == "DUPLICATED":
            self._duplicate(key, new_crime, new_location, rows)

    def _crime_classes(self, key: str, crime: dict, location: dict, expired: str | None) -> list[tuple[str, float]]:
        r = self.rates
        out = [("LOST_SCATTERED", r.crime_lost)]
        if expired is not None:
            out.append(("OFFENCE_EXPIRED_CODE", r.crime_expired_code))
        out.append(("OFFENCE_CHANGED", r.crime_offence_changed))
        if crime["recorded_at"].astimezone(LONDON).utcoffset() == dt.timedelta(hours=1):
            out.append(("TIME_OFFSET_BST", r.crime_time_offset))
        if crime["mo_summary"] is not None and len(crime["mo_summary"]) > TRUNCATE_AT:
            out.append(("TEXT_TRUNCATED", r.crime_text_truncated))
        if location["latitude"] is not None:
            out.append(("COORDS_LOST", r.crime_coords_lost))
            out.append(("COORDS_SWAPPED", r.crime_coords_swapped))
        if crime["status"] == "FINALISED" and crime["outcome_code"] is not None:
            out.append(("OUTCOME_LOST", r.crime_outcome_lost))
        out.append(("DUPLICATED", r.crime_duplicated))
        if key not in self.invalid_role_crimes:
            out.append(("REKEYED", r.crime_rekeyed))
        return out

    def _expired_code(self, opus_code: str | None, crime: dict) -> str | None:
        """The Home Office code this crime's OPUS code had before its current one came in
        (BURG-DW recorded in 2018: 28A, expired 31 March 2017, instead of 28E), or None."""
        day = local_date(crime["recorded_at"])
        older = [row for row in self.reference.crosswalk.get(opus_code or "", ())
                 if row.valid_to is not None and row.valid_to < day and row.ho_code != crime["ho_offence_code"]]
        return max(older, key=lambda row: row.valid_to).ho_code if older else None

    def _duplicate(self, key: str, crime: dict, location: dict, rows: dict[str, list]) -> None:
        """An exact second copy: new ids, reference + 'D' (iOPS's 16 characters allow one more),
        created later (the vendor's second load), links left on the original."""
        copy_location = dict(location, location_id=_sim_id("duplicate-location", key))
        stamp = max(crime["created_at"], GO_LIVE) + dt.timedelta(minutes=5)
        copy = dict(crime, crime_id=_sim_id("duplicate", key), crime_ref=crime["crime_ref"] + "D",
                    location_id=copy_location["location_id"], created_at=stamp, updated_at=stamp)
        rows["location"].append(copy_location)
        rows["crime"].append(copy)
        self.stats.new(copy, copy_location)
        self.truth.add("crime", "DUPLICATE", key, copy["crime_ref"], cause="DUPLICATED")

    def _rekey(self, key: str, crime: dict, location: dict, rows: dict[str, list]) -> None:
        """Lost by the vendor and typed again by hand after go-live: no legacy_ref, iOPS's own
        numbering, and the slips of a person copying a paper file."""
        rng = self._sub("REKEYED", key)
        new_location = dict(location, location_id=_sim_id("rekeyed-location", key))
        new = dict(crime, crime_id=_sim_id("rekeyed", key), legacy_ref=None, source_system="IOPS",
                   location_id=new_location["location_id"])
        slips = []
        if location["address"] and rng.random() < 0.6:
            new_location["address"] = address_typo(location["address"], rng)
            slips.append("address")
        if location["postcode"] and rng.random() < 0.4:
            swapped = transpose_postcode(location["postcode"])
            if swapped is not None:
                new_location["postcode"] = swapped
                slips.append("postcode")
        if rng.random() < 0.25:
            other = self._same_group_offence(crime, rng)
            if other is not None:
                self._set_offence(new, other)
                slips.append("offence")
        if crime["mo_summary"] and rng.random() < 0.35:
            # The narrative typed again from the paper file: only its first sentence.
            shorter = first_sentence(crime["mo_summary"])
            if shorter != crime["mo_summary"]:
                new["mo_summary"] = shorter
                slips.append("narrative")
        if location["easting"] is not None and rng.random() < 0.5:
            # iOPS geocoded the re-typed address: a few metres from OPUS's grid reference.
            e, n = location["easting"] + rng.randint(-25, 25), location["northing"] + rng.randint(-25, 25)
            (lat, lon), = to_lat_lon([e], [n])
            new_location.update(easting=e, northing=n, latitude=lat, longitude=lon)
            slips.append("geocode")
        if rng.random() < 0.8 or not slips:
            minutes = rng.choice((-1, 1)) * rng.randint(2, 40)
            new["recorded_at"] = crime["recorded_at"] + dt.timedelta(minutes=minutes)
            slips.append("time")
        new["crime_ref"] = self._new_ref()
        stamp = GO_LIVE + dt.timedelta(days=rng.randint(1, 120), minutes=rng.randint(0, 600))
        new["created_at"] = new["updated_at"] = stamp
        rows["location"].append(new_location)
        rows["crime"].append(new)
        self.stats.new(new, new_location)
        self.truth.add("crime", "PROBABLE_MATCH", key, new["crime_ref"], cause="REKEYED:" + "+".join(slips))

    def _new_ref(self) -> str:
        while self.next_number in self.taken_new_numbers:
            self.next_number += 1
        if self.next_number > 999_999:
            raise UsageError("too many re-keyed and new crimes for iOPS's CRI-2019-9nnnnn numbering: lower the rates")
        number = self.next_number
        self.next_number += 1
        return f"CRI-{NEW_NUMBER_YEAR}-{number:06d}"

    def _new_crimes(self) -> None:
        """Crimes recorded in iOPS after go-live, at random Greater Manchester places: new work,
        not discrepancies (dated well after the last OPUS crime, so nothing to match)."""
        count = round(self.rates.new_crimes * self.crimes_migrated)
        if count == 0:
            return
        rng = _rng(self.seed, "new-crimes", "")
        start = max(GO_LIVE, (self.max_recorded or GO_LIVE) + dt.timedelta(days=30))
        codes = sorted(self.reference.crosswalk)
        lads = {row["district"]: row["lad_code"] for row in self.reference.districts}
        places = [p for p in self.reference.places if p.get("district") in lads]
        outcomes = sorted(set(self.reference.disposals.values()))
        # Its own generator: linking people leaves the new crimes as they were without them.
        people_rng = _rng(self.seed, "new-crime-people", "")
        people = iter(self.new_crime_people)
        made = 0
        with bar("new iOPS crimes", total=count, unit="rec") as progress:
            while made < count:
                n = min(self.batch_size, count - made)
                rows: dict[str, list] = defaultdict(list)
                batch = []
                for i in range(made, made + n):
                    recorded = start + dt.timedelta(minutes=rng.randint(0, 150 * 24 * 60))
                    day = local_date(recorded)
                    ho = None
                    while ho is None:
                        ho = self.reference.ho_code_for(rng.choice(codes), day)
                    place = rng.choice(places)
                    grid = (int(place["easting"]) + rng.randint(-300, 300), int(place["northing"]) + rng.randint(-300, 300))
                    batch.append((i, recorded, ho, place, grid))
                points = to_lat_lon([g[0] for *_, g in batch], [g[1] for *_, g in batch])
                for (i, recorded, ho, place, grid), (lat, lon) in zip(batch, points):
                    district = lads[place["district"]]
                    status = rng.choices(("OPEN", "FINALISED", "CANCELLED"), (0.55, 0.40, 0.05))[0]
                    location = {"location_id": _sim_id("new-location", str(i)), "address": place["place"],
                                "postcode": None, "easting": grid[0], "northing": grid[1], "latitude": lat,
                                "longitude": lon, "beat": None, "district_code": district}
                    offence = self.reference.ho_offences[ho]
                    crime = {
                        "crime_id": _sim_id("new", str(i)), "crime_ref": self._new_ref(), "legacy_ref": None,
                        "ho_offence_code": offence.ho_code, "offence_description": offence.description,
                        "offence_group": offence.offence_group, "police_uk_category": offence.police_uk_category,
                        "recorded_at": recorded, "committed_from": recorded - dt.timedelta(hours=rng.randint(0, 48)),
                        "committed_to": None, "location_id": location["location_id"], "district_code": district,
                        "status": status, "outcome_code": rng.choice(outcomes) if status == "FINALISED" else None,
                        "mo_summary": f"Reported to iOPS after go-live. {rng.choice(_NEW_MO)}",
                        "oic_collar": f"{rng.choice('ABCDEFGHJK')}{rng.randint(1000, 9999)}",
                        "source_system": "IOPS", "created_at": recorded, "updated_at": recorded,
                    }
                    rows["location"].append(location)
                    rows["crime"].append(crime)
                    if people_rng.random() < 0.5:
                        person_id = next(people, None)
                        if person_id is not None:
                            rows["crime_person"].append({"crime_id": crime["crime_id"], "person_id": person_id,
                                                         "role": people_rng.choice(("VICTIM", "SUSPECT", "WITNESS"))})
                    self.stats.new(crime, location)
                    self.truth.add("crime", NEW_IN_IOPS, None, crime["crime_ref"], cause=NEW_IN_IOPS)
                    self.counts["crime"][NEW_IN_IOPS] += 1
                self._write(rows)
                made += n
                progress.update(n)

    def _links(self) -> None:
        seen_irregular: set[str] = set()
        for batch, mapped in self._mapped(LINK):
            rows: dict[str, list] = defaultdict(list)
            irregular: list[tuple[str, dict]] = []
            for raw, m in zip(batch, mapped):
                crime_no = trim(raw["crime_no"]) or ""
                nom_id = parse_nom_id(raw["nom_id"])
                if m.reject is not None:
                    # ORPHAN_LINK never has both ends matched; INVALID_ROLE does when both were written.
                    if m.reject.code == "INVALID_ROLE" and self._crime_keyed(crime_no) and self._person_written(nom_id):
                        self.truth.add("crime_person", "MISSING", m.legacy_key, detail="INVALID_ROLE", cause="REJECTED")
                        self.counts["crime_person"]["REJECTED"] += 1
                    continue
                if not m.rows:
                    continue  # a repeat of a link already in this batch: migrated once
                if self.crimes_lost.has_crime(crime_no) or nom_id in self.persons_lost:
                    continue  # not compared: one end is missing
                link = dict(m.rows["crime_person"])
                moved = False
                if nom_id in self.persons_rekeyed:
                    link["person_id"] = _sim_id("rekeyed-person", str(nom_id))
                    moved = True
                if self.crimes_rekeyed.has_crime(crime_no):
                    link["crime_id"] = _sim_id("rekeyed", crime_no)
                elif not moved and unit(self.seed, "link", m.legacy_key) < self.rates.link_lost:
                    if self.truth.add("crime_person", "MISSING", m.legacy_key, cause="LINK_LOST"):
                        self.counts["crime_person"]["LINK_LOST"] += 1
                    continue
                if raw["crime_no"] != crime_no or raw["role"] != link["role"][0]:
                    irregular.append((m.legacy_key, link))  # padded or lower case: may repeat another batch's link
                elif m.legacy_key in seen_irregular:
                    continue
                else:
                    rows["crime_person"].append(link)
            if irregular:
                rows["crime_person"] += self._new_irregular_links(irregular, seen_irregular)
            self._write(rows)

    def _new_irregular_links(self, links: list[tuple[str, dict]], seen: set[str]) -> list[dict]:
        """Links whose legacy row was padded or lower case normalise to the same (crime, person,
        role) as another legacy row, possibly in another batch: keep only those not yet written."""
        table = schema.crime_person
        keys = [(l["crime_id"], l["person_id"], l["role"]) for _, l in links]
        with self.target.connect() as conn:
            existing = {tuple(r) for r in conn.execute(
                sa.select(table.c.crime_id, table.c.person_id, table.c.role)
                .where(table.c.crime_id.in_(sorted({k[0] for k in keys}))))}
        out = []
        for (legacy_key, link), k in zip(links, keys):
            if k in existing or legacy_key in seen:
                continue
            seen.add(legacy_key)
            existing.add(k)
            out.append(link)
        return out

    def _crime_keyed(self, crime_no: str) -> bool:
        """Accepted by the mapping and written with its legacy_ref (so the reconciler matches it)."""
        return (self.accepted.has_crime(crime_no) and not self.crimes_lost.has_crime(crime_no)
                and not self.crimes_rekeyed.has_crime(crime_no))

    def _person_written(self, nom_id: int | None) -> bool:
        """Accepted by the mapping and written keyed."""
        return (nom_id is not None and self.accepted.has_person(nom_id) and nom_id not in self.persons_lost
                and nom_id not in self.persons_rekeyed)

    def _intelligence(self) -> None:
        deleted_pending: list[Mapped] = []
        for batch, mapped in self._mapped(INTELLIGENCE):
            deleted_pending += self._deleted_candidates("intelligence", batch, mapped, INTELLIGENCE.map_batch,
                                                       self.rates.intel_deleted_migrated)
            rows: dict[str, list] = defaultdict(list)
            for raw, m in zip(batch, mapped):
                accepted = self._accept(INTELLIGENCE, m)
                if accepted is None:
                    continue
                key = m.legacy_key
                report = accepted["intelligence_report"]
                location = accepted.get("location")
                if self._lost_day(report["submitted_at"]):
                    self._missing("intelligence", key, "LOST_DAY")
                    continue
                if report["subject_person_id"] in self.person_ids_lost:
                    self._missing("intelligence", key, "SUBJECT_LOST")
                    continue
                cause = self._draw("intelligence", key, self._intel_classes(report))
                if cause == "LOST_SCATTERED":
                    self._missing("intelligence", key, cause)
                    continue
                new = dict(report)
                if cause == "GRADING_GARBLED":
                    new.update(self._garbled_grading(raw, self._sub(cause, key)))
                elif cause == "TEXT_TRUNCATED":
                    new["intel_text"] = report["intel_text"][:TRUNCATE_AT]
                self._altered("intelligence", key, report["intel_ref"], {"intelligence_report": report},
                              {"intelligence_report": new}, cause)
                if location is not None:
                    rows["location"].append(location)
                rows["intelligence_report"].append(new)
            self._write(rows)
        self._write_unexpected("intelligence", deleted_pending)

    def _intel_classes(self, report: dict) -> list[tuple[str, float]]:
        r = self.rates
        out = [("LOST_SCATTERED", r.intel_lost), ("GRADING_GARBLED", r.intel_grading_garbled)]
        if len(report["intel_text"]) > TRUNCATE_AT:
            out.append(("TEXT_TRUNCATED", r.intel_text_truncated))
        return out

    @staticmethod
    def _garbled_grading(raw: dict, rng: random.Random) -> dict:
        """The vendor copied one 5x5x5 grade through unconverted: the source letter (B, not 1),
        the intelligence digit (3, not B) or the handling digit (2, not C)."""
        column, target = rng.choice((("src_eval", "source_evaluation"), ("int_eval", "intelligence_assessment"),
                                     ("handling", "handling_code")))
        return {target: code(raw[column])}

    # --- shared steps ---------------------------------------------------------------------

    def _mapped(self, entity: Entity) -> Iterator[tuple[list[dict], list[Mapped]]]:
        """Stream the entity's legacy table in key order, in batches (``core.batches``, as the
        migration reads it), each with its mapping."""
        table = self.tables[entity.legacy_table]
        with self.legacy.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        with bar(f"{entity.name:<13} (simulate)", total=total, unit="rec") as progress:
            for batch in legacy_batches(self.legacy, table, entity.key_columns, self.batch_size):
                yield batch, entity.map_batch(batch, self.ctx)
                progress.update(len(batch))

    def _accept(self, entity: Entity, m: Mapped) -> dict | None:
        """The mapped rows of an accepted record (recorded as accepted), else None. A reject —
        the mapping's, or ``DUPLICATE_KEY`` by the migration's first-key-wins rule (the first
        *accepted* record of a trimmed key owns it) — is not migrated by the vendor either: a
        MISSING truth row with its reason, as the reconciler lists it."""
        if m.excluded:
            return None
        name = entity.name
        first_key_wins(entity, m, self.accepted.has(name, m.legacy_key))
        if m.reject is not None:
            self.rejected_live.add(name, m.legacy_key)
            self.truth.add(name, "MISSING", m.legacy_key, detail=m.reject.code, cause="REJECTED")
            self.counts[name]["REJECTED"] += 1
            return None
        self.accepted.add(name, m.legacy_key)
        return m.rows

    def _draw(self, entity: str, key: str, candidates: list[tuple[str, float]]) -> str | None:
        cause = _choose(unit(self.seed, entity, key), candidates)
        if cause is not None:
            self.counts[entity][cause] += 1
        return cause

    def _sub(self, cause: str, key: str) -> random.Random:
        return _rng(self.seed, cause, key)

    def _missing(self, entity: str, key: str, cause: str) -> None:
        if cause not in ("LOST_SCATTERED", "LOST"):  # those two were counted when drawn
            self.counts[entity][cause] += 1
        self.truth.add(entity, "MISSING", key, cause=cause)

    def _altered(self, entity: str, key: str, new_ref: str, expected: dict, actual: dict, cause: str | None) -> None:
        if cause is None:
            return
        for field_name, detail in altered_fields(expected, actual):
            self.truth.add(entity, "ALTERED", key, new_ref, field_name, detail, cause)

    def _lost_day(self, instant: dt.datetime) -> bool:
        day = local_date(instant)
        lost = self.lost_day_cache.get(day)
        if lost is None:
            lost = unit(self.seed, "lost-day", day.isoformat()) < self.rates.lost_day
            self.lost_day_cache[day] = lost
        if lost:
            self.lost_days_seen.add(day.isoformat())
        return lost

    def _deleted_candidates(self, entity: str, batch: list[dict], mapped: list[Mapped], map_batch, rate: float
                            ) -> list[Mapped]:
        """OPUS-deleted records the vendor migrated as if live (mapped with DEL_FLAG cleared)."""
        chosen = [dict(raw, del_flag="N") for raw, m in zip(batch, mapped)
                  if m.excluded and unit(self.seed, f"{entity}-deleted", m.legacy_key) < rate]
        return [m for m in map_batch(chosen, self.ctx) if m.accepted] if chosen else []

    def _write_unexpected(self, entity: str, pending: list[Mapped]) -> None:
        """Write the deleted-but-migrated records whose key matches no live legacy record (a
        deleted twin of a live key would be a duplicate, not unexpected)."""
        rows: dict[str, list] = defaultdict(list)
        main = "crime" if entity == "crime" else "intelligence_report"
        ref = "crime_ref" if entity == "crime" else "intel_ref"
        for m in pending:
            key = m.legacy_key
            if (self.accepted.has(entity, key) or self.rejected_live.has(entity, key)
                    or self.unexpected_written.has(entity, key)):
                continue
            if m.rows[main].get("subject_person_id") in self.person_ids_lost:
                continue  # its subject was lost: the vendor could not have linked it
            self.unexpected_written.add(entity, key)
            for table_name in schema.TARGET_TABLES:
                if table_name in m.rows:
                    rows[table_name].append(m.rows[table_name])
            if entity == "crime":
                self.stats.new(m.rows["crime"], m.rows["location"])
            self.truth.add(entity, "UNEXPECTED", key, m.rows[main][ref], cause="DELETED_MIGRATED")
            self.counts[entity]["DELETED_MIGRATED"] += 1
        self._write(rows)

    def _set_offence(self, crime: dict, ho_code: str) -> None:
        offence = self.reference.ho_offences[ho_code]
        crime.update(ho_offence_code=offence.ho_code, offence_description=offence.description,
                     offence_group=offence.offence_group, police_uk_category=offence.police_uk_category)

    def _other_offence(self, current: str, rng: random.Random) -> str:
        """Another Home Office code: usually of the same offence group (a plausible mis-mapping)."""
        offences = self.reference.ho_offences
        group = offences[current].offence_group
        same = sorted(c for c, o in offences.items() if o.offence_group == group and c != current)
        if same and rng.random() < 0.6:
            return rng.choice(same)
        return rng.choice(sorted(c for c in offences if c != current))

    def _same_group_offence(self, crime: dict, rng: random.Random) -> str | None:
        """For a re-keyed crime: another code in force on that date, in the same offence group."""
        day = local_date(crime["recorded_at"])
        valid = {self.reference.ho_code_for(opus, day) for opus in self.reference.crosswalk} - {None}
        group = crime["offence_group"]
        same = sorted(c for c in valid if c != crime["ho_offence_code"]
                      and self.reference.ho_offences[c].offence_group == group)
        return rng.choice(same) if same else None

    def _write(self, rows: dict[str, list]) -> None:
        """One transaction per batch, parents first."""
        if not any(rows.values()):
            return
        with self.target.begin() as conn:
            for table in IOPS_TABLES:
                batch = rows.get(table.name)
                if batch:
                    conn.execute(table.insert(), batch)
                    self.rows_written[table.name] += len(batch)


_NEW_MO = (
    "Victim reports property taken from outside the address.",
    "Caller reports damage discovered on return home.",
    "Suspect left the scene before officers arrived.",
    "Report made online; no witnesses identified.",
    "Incident captured on CCTV, enquiries ongoing.",
)

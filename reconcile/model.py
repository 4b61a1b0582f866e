"""The reconciler's results, as data. ``reports/`` renders them; nothing here writes files.

Contract: ``../shared/spec/reconciliation.md``.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

ENTITIES = ("crime", "intelligence", "person", "crime_person")
CATEGORIES = ("MISSING", "ALTERED", "DUPLICATE", "UNEXPECTED", "PROBABLE_MATCH", "PROBABLE_DUPLICATE")

#: Column order of discrepancies.csv (reconciliation.md, Exports): the machine-readable
#: columns, then what lets a row be read without the spec.
DISCREPANCY_COLUMNS = (
    "entity", "category", "legacy_ref", "new_ref", "field",
    "legacy_value", "expected_value", "new_value", "score", "detail",
    "explanation", "recorded_local", "offence", "district", "place",
)
#: Fields of a row beyond the CSV's, for the workbook (``Discrepancy``): who a person row or
#: a link is about, and for a PROBABLE_MATCH pair the new side and what differs.
ROW_EXTRAS = ("person", "new_recorded_local", "new_offence", "new_district", "new_place", "differs")
ROW_FIELDS = DISCREPANCY_COLUMNS + ROW_EXTRAS
#: A row's fields as a tuple, in one call each (a row per finding).
_CSV_ROW = operator.attrgetter(*DISCREPANCY_COLUMNS)
_ALL_FIELDS = operator.attrgetter(*ROW_FIELDS)
#: Column order of crime_stats.csv.
STATS_COLUMNS = (
    "month", "district_code", "offence_group", "legacy_count", "new_count", "delta",
    "legacy_no_location", "new_no_location", "district_name", "legacy_not_migrated", "expected_count",
    "delta_expected", "new_outside_area", "after_go_live",
)


@dataclass(frozen=True)
class Discrepancy:
    """One row of discrepancies.csv. Values are already text (or None for an empty cell).

    ``legacy_value``/``expected_value``/``new_value`` of an ``intel_text`` difference hold a
    SHA-256 prefix and length, never the text itself.
    """

    entity: str
    category: str
    legacy_ref: str | None = None
    new_ref: str | None = None
    field: str | None = None
    legacy_value: str | None = None
    expected_value: str | None = None
    new_value: str | None = None
    score: float | None = None
    detail: str | None = None
    #: Plain English from the one table (``mappings.explanations``): what is wrong.
    explanation: str | None = None
    #: The legacy record's recorded / submitted time, UK local ``YYYY-MM-DD HH:MM``.
    recorded_local: str | None = None
    offence: str | None = None  # offence description (crimes)
    district: str | None = None  # district name
    place: str | None = None  # address, else postcode
    #: Person rows and links: the person's name and NOM_ID ("SMITH, John (NOM_ID 70031)").
    person: str | None = None
    #: PROBABLE_MATCH: the new record's time, offence, district and place, and the compared
    #: properties that differ between the two sides ("time, address, postcode").
    new_recorded_local: str | None = None
    new_offence: str | None = None
    new_district: str | None = None
    new_place: str | None = None
    differs: str | None = None

    def as_row(self) -> tuple:
        """The row of discrepancies.csv (``DISCREPANCY_COLUMNS``)."""
        return _CSV_ROW(self)

    def as_tuple(self) -> tuple:
        """Every field (``ROW_FIELDS``), as the spool stores a row."""
        return _ALL_FIELDS(self)

    @property
    def record(self) -> tuple:
        """What one *record* is: rows with the same value were found on one record (an
        ALTERED record has a row per field; a link is its own record)."""
        if self.category in ("DUPLICATE", "UNEXPECTED"):
            return (self.entity, self.new_ref)
        return (self.entity, self.legacy_ref, self.new_ref if self.category == "PROBABLE_MATCH" else None)

    @property
    def explained(self) -> bool:
        """A MISSING record or link the mapping itself rejects: its reason is in ``detail``.
        Known (the migration reports it too), so not counted as an unexplained failure."""
        return self.category == "MISSING" and self.detail is not None


@dataclass(frozen=True)
class StatRow:
    """One row of crime_stats.csv: month (UK local, YYYY-MM or UNKNOWN) × district × offence
    group, before or after go-live (``reconcile/stats.py``)."""

    month: str
    district_code: str  # 'UNKNOWN' when NULL or unknown
    offence_group: str  # 'UNMAPPED': a legacy crime whose offence code is not in the crosswalk
    legacy_count: int  # the force's own OPUS figure: every live crime not cancelled/transferred
    new_count: int
    legacy_no_location: int
    new_no_location: int
    district_name: str = ""
    legacy_not_migrated: int = 0  # of legacy_count, those the mapping rejects
    new_outside_area: int = 0  # of new_count, those placed outside Greater Manchester
    after_go_live: bool = False

    @property
    def delta(self) -> int:
        return self.new_count - self.legacy_count

    @property
    def expected_count(self) -> int:
        return self.legacy_count - self.legacy_not_migrated

    @property
    def delta_expected(self) -> int:
        return self.new_count - self.expected_count

    def as_row(self) -> tuple:
        return (self.month, self.district_code, self.offence_group, self.legacy_count,
                self.new_count, self.delta, self.legacy_no_location, self.new_no_location,
                self.district_name, self.legacy_not_migrated, self.expected_count, self.delta_expected,
                self.new_outside_area, "Y" if self.after_go_live else "N")


@dataclass
class EntityTotals:
    """The counts of one entity in the summary. The reconciler sets the totals of records; the
    categories are counted from the findings as they are spooled (``count``)."""

    entity: str
    legacy_total: int = 0  # live legacy records (DEL_FLAG <> 'Y')
    legacy_excluded: int = 0  # logically deleted in OPUS: never MISSING
    new_total: int = 0  # records in the new store
    matched_keyed: int = 0
    matched_auto: int = 0
    new_in_iops: int = 0  # unkeyed new records with no candidate: new work, not a discrepancy
    #: MISSING records the mapping itself rejects (detail = reject reason): known, reported by
    #: the migration, listed here too — but not counted as unexplained failures.
    missing_explained: int = 0
    categories: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CATEGORIES})
    #: Records affected per category (an ALTERED record has one row per field; every other
    #: category has one row per record or link). Counted as the rows stream: a record's rows
    #: arrive together (one outcome's findings).
    records: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CATEGORIES})
    #: MISSING records the mapping rejects, by reject code (the balance's "not expected").
    missing_by_reason: Counter = field(default_factory=Counter)
    #: Per field of ALTERED rows: {"differing": rows, "lost": new value empty, "gained": new
    #: value where the mapping gives none} — the per-field tally.
    field_tally: dict[str, Counter] = field(default_factory=dict)
    #: Live legacy records the mapping accepts (crime, intelligence), by UK local day recorded /
    #: submitted, and those of them MISSING with no reason known: for ``missing_by_day``.
    live_by_day: Counter = field(default_factory=Counter)
    missing_by_day: Counter = field(default_factory=Counter)
    #: crime_person only: legacy links neither matched nor reported, by reason (codes of
    #: mappings/explanations.csv): not expected (``ORPHAN_LINK``, ``DUPLICATE_LINK``,
    #: ``LINK_CRIME_NOT_MIGRATED``, a reject whose person is not matched) and not compared
    #: (``LINK_CRIME_MISSING``, ``LINK_PERSON_MISSING``: one end is missing in iOPS).
    not_expected: Counter = field(default_factory=Counter)
    not_compared: Counter = field(default_factory=Counter)
    _last_record: tuple | None = field(default=None, repr=False, compare=False)

    def count(self, d: Discrepancy) -> None:
        """Count one finding of this entity."""
        category = d.category
        self.categories[category] = self.categories.get(category, 0) + 1
        record = d.record
        if category != "ALTERED" or record != self._last_record:
            self.records[category] = self.records.get(category, 0) + 1
        self._last_record = record if category == "ALTERED" else None
        if d.explained:
            self.missing_explained += 1
            self.missing_by_reason[d.detail] += 1
        elif category == "MISSING" and d.recorded_local:
            self.missing_by_day[d.recorded_local[:10]] += 1
        elif category == "ALTERED" and d.field:
            tally = self.field_tally.get(d.field)
            if tally is None:
                tally = self.field_tally[d.field] = Counter()
            tally["differing"] += 1
            if d.detail == "LOST":
                tally["lost"] += 1
            elif d.detail == "GAINED":
                tally["gained"] += 1

    def balance(self) -> "Balance":
        """Live in OPUS = matched + missing + not expected (+ not compared, links): see ``Balance``."""
        missing = self.categories.get("MISSING", 0) - self.missing_explained
        not_expected = Counter(self.missing_by_reason) + self.not_expected
        return Balance(self.entity, self.legacy_total, self.matched_keyed + self.matched_auto, missing,
                       dict(sorted(not_expected.items())), dict(sorted(self.not_compared.items())))


@dataclass(frozen=True)
class Balance:
    """Where every live legacy record (or CRIME_NOM link) went. ``live`` = ``matched`` (keyed or
    AUTO; a rejected record iOPS holds anyway is matched, reported ALTERED ``LEGACY_REJECTED``)
    + ``missing`` (MISSING, no reason known) + ``not_expected`` (by reason: the mapping rejects
    it — those MISSING rows that carry the reason — and, for links, links the mapping does not
    produce: orphans, repeats, rejected links whose person is not matched) + ``not_compared``
    (links only: their crime or person is missing in iOPS, so the link cannot be compared).
    ``adds_up`` says whether it does."""

    entity: str
    live: int
    matched: int
    missing: int
    not_expected: dict[str, int]
    not_compared: dict[str, int]

    @property
    def accounted(self) -> int:
        return self.matched + self.missing + sum(self.not_expected.values()) + sum(self.not_compared.values())

    @property
    def adds_up(self) -> bool:
        return self.accounted == self.live


@dataclass(frozen=True)
class MissingDay:
    """A UK local day on which every crime (or intelligence report) recorded that day that the
    mapping accepts is MISSING with no reason known, and at least ``MIN_LOST_DAY`` of them:
    a whole day lost, not scattered losses."""

    entity: str
    day: str  # YYYY-MM-DD
    missing: int  # = the live records of that day the mapping accepts


#: The fewest missing records that make a day "lost as a whole" (fewer could be chance).
MIN_LOST_DAY = 3


@dataclass
class ReconResult:
    legacy_url: str  # password masked
    target_url: str  # password masked
    started_at: dt.datetime  # aware UTC
    finished_at: dt.datetime
    tool_version: str
    mapping_digest: str
    thresholds: dict[str, float]  # auto, review, fail
    totals: dict[str, EntityTotals]
    #: Re-iterable (a list, or a spool read back from disk), ordered by entity, category, legacy_ref.
    discrepancies: Iterable[Discrepancy]
    stats: list[StatRow]
    #: Matched records picked at random (seeded) for a manual check: reconcile.sample.SampledRecord.
    sample: list = field(default_factory=list)
    sample_seed: int | None = None
    #: The crime statistics as data (reconcile.stats.CrimeStatistics: go-live, totals up to and
    #: after it, per district, per month, map points); ``stats`` is its rows.
    statistics: object = None
    out_dir: object = None  # Path of the reports once written
    report_paths: dict[str, object] = field(default_factory=dict)

    @property
    def balances(self) -> dict[str, Balance]:
        """Per entity, where every live legacy record went (``Balance``)."""
        return {name: t.balance() for name, t in self.totals.items()}

    def missing_by_day(self, minimum: int = MIN_LOST_DAY) -> list[MissingDay]:
        """Days lost as a whole (``MissingDay``), by entity then day."""
        out = []
        for name, t in self.totals.items():
            for day, missing in sorted(t.missing_by_day.items()):
                if missing >= minimum and missing == t.live_by_day.get(day, 0):
                    out.append(MissingDay(name, day, missing))
        return out

    @property
    def discrepancy_count(self) -> int:
        return sum(sum(t.categories.values()) for t in self.totals.values())

    @property
    def failed(self) -> bool:
        """Discrepancies above the failure threshold (PROBABLE_MATCH pairs are not failures)."""
        return self.counted_failures > self.thresholds.get("fail", 0)

    @property
    def counted_failures(self) -> int:
        """Unexplained discrepancies: all but PROBABLE_MATCH pairs and MISSING records that the
        mapping rejects (those carry their reject reason in ``detail``)."""
        return sum(
            n - (t.missing_explained if c == "MISSING" else 0)
            for t in self.totals.values()
            for c, n in t.categories.items()
            if c != "PROBABLE_MATCH"
        )

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

"""The reconciler's results, as data. ``reports/`` renders them; nothing here writes files.

Contract: ``../shared/spec/reconciliation.md``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable

ENTITIES = ("crime", "intelligence", "person", "crime_person")
CATEGORIES = ("MISSING", "ALTERED", "DUPLICATE", "UNEXPECTED", "PROBABLE_MATCH", "PROBABLE_DUPLICATE")

#: Column order of discrepancies.csv (reconciliation.md, Exports).
DISCREPANCY_COLUMNS = (
    "entity", "category", "legacy_ref", "new_ref", "field",
    "legacy_value", "expected_value", "new_value", "score", "detail",
)
#: Column order of crime_stats.csv.
STATS_COLUMNS = (
    "month", "district_code", "offence_group", "legacy_count", "new_count", "delta",
    "legacy_no_location", "new_no_location",
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

    def as_row(self) -> tuple:
        return tuple(getattr(self, name) for name in DISCREPANCY_COLUMNS)

    @property
    def explained(self) -> bool:
        """A MISSING record or link the mapping itself rejects: its reason is in ``detail``.
        Known (the migration reports it too), so not counted as an unexplained failure."""
        return self.category == "MISSING" and self.detail is not None


@dataclass(frozen=True)
class StatRow:
    """One row of crime_stats.csv: month (UK local, YYYY-MM) × district × offence group."""

    month: str
    district_code: str  # 'UNKNOWN' when NULL
    offence_group: str
    legacy_count: int
    new_count: int
    legacy_no_location: int
    new_no_location: int

    @property
    def delta(self) -> int:
        return self.new_count - self.legacy_count

    def as_row(self) -> tuple:
        return (self.month, self.district_code, self.offence_group, self.legacy_count,
                self.new_count, self.delta, self.legacy_no_location, self.new_no_location)


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

    def count(self, d: Discrepancy) -> None:
        """Count one finding of this entity."""
        self.categories[d.category] += 1
        if d.explained:
            self.missing_explained += 1


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
    out_dir: object = None  # Path of the reports once written
    report_paths: dict[str, object] = field(default_factory=dict)

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

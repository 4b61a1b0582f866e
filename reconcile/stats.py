"""The crime statistics of ``mapping.md`` ("Crime statistics"), from both sides.

Counts by month of ``recorded_at`` in UK local time (``Europe/London``) × ``district_code``
(NULL → ``UNKNOWN``) × ``offence_group``, excluding ``CANCELLED`` and ``TRANSFERRED`` crimes.
Legacy side: the crimes the mapping migrates, with their mapped values; new side: every
crime row in the store. ``*_no_location``: those counted crimes with no latitude/longitude
(no location row, or a NULL in either) — the ones a public crime map cannot show.

The month is computed here in Python, not in SQL: a database's own time-zone handling
differs between engines (and SQLite has none), and the Home Office return must not depend
on which engine holds the data.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from functools import lru_cache

from reconcile.model import StatRow

LONDON_ZONE = "Europe/London"
NOT_COUNTED = frozenset({"CANCELLED", "TRANSFERRED"})  # Home Office Counting Rules
UNKNOWN_DISTRICT = "UNKNOWN"


@lru_cache(maxsize=1)
def _london():
    from zoneinfo import ZoneInfo

    return ZoneInfo(LONDON_ZONE)


def local_month(instant: dt.datetime) -> str:
    """``YYYY-MM`` of an instant in UK civil time (a naive instant is taken as UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.timezone.utc)
    # UK offsets are whole hours, so the UTC hour decides the local month: cache per hour.
    hour = int(instant.timestamp() // 3600)
    month = _MONTH_OF_HOUR.get(hour)
    if month is None:
        local = instant.astimezone(_london())
        month = _MONTH_OF_HOUR[hour] = f"{local.year:04d}-{local.month:02d}"
        if len(_MONTH_OF_HOUR) > 500_000:
            _MONTH_OF_HOUR.clear()
    return month


_MONTH_OF_HOUR: dict[int, str] = {}


def counted(status: str | None) -> bool:
    return (status or "").strip().upper() not in NOT_COUNTED


class CrimeStats:
    """Accumulates both sides; ``rows()`` returns the sorted ``StatRow`` list."""

    def __init__(self) -> None:
        self._legacy: Counter = Counter()
        self._legacy_no_loc: Counter = Counter()
        self._new: Counter = Counter()
        self._new_no_loc: Counter = Counter()

    @staticmethod
    def _cell(recorded_at, district_code, offence_group) -> tuple[str, str, str]:
        district = district_code if district_code not in (None, "") else UNKNOWN_DISTRICT
        month = local_month(recorded_at) if recorded_at is not None else "UNKNOWN"
        return month, district, offence_group if offence_group not in (None, "") else "UNKNOWN"

    def add(self, side: str, *, recorded_at, district_code, offence_group, status, latitude, longitude) -> None:
        """Count one crime on ``side`` ('legacy' or 'new') unless its status is not counted."""
        if not counted(status):
            return
        cell = self._cell(recorded_at, district_code, offence_group)
        no_location = latitude is None or longitude is None
        if side == "legacy":
            self._legacy[cell] += 1
            if no_location:
                self._legacy_no_loc[cell] += 1
        else:
            self._new[cell] += 1
            if no_location:
                self._new_no_loc[cell] += 1

    def add_mapped(self, crime_row: dict, location_row: dict | None) -> None:
        """Legacy side: one crime as the mapping migrates it."""
        loc = location_row or {}
        self.add("legacy", recorded_at=crime_row["recorded_at"], district_code=crime_row.get("district_code"),
                 offence_group=crime_row.get("offence_group"), status=crime_row.get("status"),
                 latitude=loc.get("latitude"), longitude=loc.get("longitude"))

    def rows(self) -> list[StatRow]:
        cells = sorted(set(self._legacy) | set(self._new))
        return [
            StatRow(month=m, district_code=d, offence_group=g,
                    legacy_count=self._legacy[(m, d, g)], new_count=self._new[(m, d, g)],
                    legacy_no_location=self._legacy_no_loc[(m, d, g)],
                    new_no_location=self._new_no_loc[(m, d, g)])
            for m, d, g in cells
        ]

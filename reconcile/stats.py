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

from core.schema import as_utc
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
        instant = as_utc(instant)
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


_COUNTED: dict = {}  # status -> counted(status)


def cell_of(recorded_at, district_code, offence_group, status, latitude, longitude) -> tuple | None:
    """Where one crime is counted: ``((month, district, group), no_location)``, or None when
    its status is not counted."""
    is_counted = _COUNTED.get(status)  # a handful of distinct statuses: decided once each
    if is_counted is None:
        is_counted = counted(status)
        if len(_COUNTED) < 1000:
            _COUNTED[status] = is_counted
    if not is_counted:
        return None
    cell = (local_month(recorded_at) if recorded_at is not None else "UNKNOWN",
            district_code if district_code not in (None, "") else UNKNOWN_DISTRICT,
            offence_group if offence_group not in (None, "") else "UNKNOWN")
    return cell, latitude is None or longitude is None


def mapped_cell(crime_row: dict, location_row: dict | None) -> tuple | None:
    """``cell_of`` a legacy crime as the mapping migrates it (its crime and location rows)."""
    get = crime_row.get
    if location_row is None:
        latitude = longitude = None
    else:
        latitude, longitude = location_row.get("latitude"), location_row.get("longitude")
    return cell_of(crime_row["recorded_at"], get("district_code"), get("offence_group"), get("status"),
                   latitude, longitude)


class CrimeStats:
    """Accumulates both sides; ``rows()`` returns the sorted ``StatRow`` list."""

    def __init__(self) -> None:
        self._legacy: Counter = Counter()
        self._legacy_no_loc: Counter = Counter()
        self._new: Counter = Counter()
        self._new_no_loc: Counter = Counter()

    def add(self, side: str, *, recorded_at, district_code, offence_group, status, latitude, longitude) -> None:
        """Count one crime on ``side`` ('legacy' or 'new') unless its status is not counted."""
        self.count(side == "legacy", recorded_at, district_code, offence_group, status, latitude, longitude)

    def count(self, legacy: bool, recorded_at, district_code, offence_group, status, latitude, longitude) -> None:
        """``add`` with positional values: called once per crime on each side, so kept lean."""
        entry = cell_of(recorded_at, district_code, offence_group, status, latitude, longitude)
        if entry is not None:
            self.add_cell(legacy, entry)

    def add_cell(self, legacy: bool, entry: tuple) -> None:
        """Count one crime whose ``cell_of`` is ``entry`` (the reconciler's worker processes
        compute cells; this process only adds them up)."""
        cell, no_location = entry
        if legacy:
            self._legacy[cell] += 1
            if no_location:
                self._legacy_no_loc[cell] += 1
        else:
            self._new[cell] += 1
            if no_location:
                self._new_no_loc[cell] += 1

    def rows(self) -> list[StatRow]:
        cells = sorted(set(self._legacy) | set(self._new))
        return [
            StatRow(month=m, district_code=d, offence_group=g,
                    legacy_count=self._legacy[(m, d, g)], new_count=self._new[(m, d, g)],
                    legacy_no_location=self._legacy_no_loc[(m, d, g)],
                    new_no_location=self._new_no_loc[(m, d, g)])
            for m, d, g in cells
        ]

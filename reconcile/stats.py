"""The crime statistics of ``mapping.md`` ("Crime statistics", the Home Office return), from both sides.

Counts by month of ``recorded_at`` in UK local time (``Europe/London``) × district × offence
group, excluding cancelled and transferred crimes (Home Office Counting Rules).

* **OPUS side, the force's own figure**: every live legacy crime whose ``STATUS`` is not ``X``
  or ``T``, *whether or not the mapping accepts it*. An accepted crime is placed by its mapped
  values; a rejected one by what can be derived from it: month from ``REC_DATE`` (unparseable →
  ``UNKNOWN``), district from ``DIV`` (unknown → ``UNKNOWN``), offence group from the crosswalk
  (unmapped → ``UNMAPPED``). ``legacy_not_migrated``: those the mapping rejects — its own
  verdict (``mappings.entities``: the mapping function and ``first_key_wins``), taken from the
  reconciler's keyed pass, never re-derived here.
* **iOPS side**: every crime row in the store, by its own values. ``new_outside_area``: those
  whose latitude/longitude lie outside the union of the ten districts' extents
  (``gm_districts.csv``; a latitude/longitude swap puts a Manchester crime in the Indian Ocean).
* ``*_no_location``: crimes with no latitude/longitude (a rejected legacy crime: no valid grid
  reference) — with ``new_outside_area``, the crimes a public crime map cannot place.

Go-live (a UK local date) splits the months: a crime recorded on or after go-live day counts
in an ``after_go_live`` row. Decision: a month that go-live cuts in two has two rows per
district and group (one before, one after), so new work in iOPS is never netted against losses
even within the go-live month; a month wholly before or after has one.

The month is computed in Python, not SQL: engines differ in their time-zone handling (SQLite
has none), and the return must not depend on which engine holds the data.

Everything here is small: the counts per cell (a few thousand cells) and, for the map, the
positions of the crimes that are missing, not migrated or mislocated (a few per cent at most).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

from core.schema import as_utc
from mappings.geo import grid_pair, transformer
from mappings.parse import INVALID, UNKNOWN as _UNKNOWN_VALUE, code, parse_date, parse_local_datetime
from reconcile.model import StatRow

LONDON_ZONE = "Europe/London"
NOT_COUNTED = frozenset({"CANCELLED", "TRANSFERRED"})  # Home Office Counting Rules
NOT_COUNTED_CODES = frozenset({"X", "T"})  # the same, as OPUS codes them
UNKNOWN = "UNKNOWN"
UNKNOWN_DISTRICT = UNKNOWN
UNMAPPED = "UNMAPPED"

#: How a counted crime can be placed on a map.
LOCATED, NO_LOCATION, OUTSIDE_AREA = 0, 1, 2
#: An iOPS position this far or further from the mapped one is mislocated (the map shows it).
#: A vendor's geocoder lands a re-typed address a few tens of metres away; that is not it.
MISLOCATED_METRES = 100.0


@lru_cache(maxsize=1)
def _london():
    from zoneinfo import ZoneInfo

    return ZoneInfo(LONDON_ZONE)


def local_midnight_utc(day: dt.date) -> dt.datetime:
    """The UTC instant at which ``day`` starts in UK civil time."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=_london()).astimezone(dt.timezone.utc)


def counted(status: str | None) -> bool:
    return (status or "").strip().upper() not in NOT_COUNTED


# ------------------------------------------------------------------------------ the area


class GreaterManchester:
    """Whether a WGS84 point lies inside the union of the districts' OS grid extents.

    A point is tested in the grid (pyproj, the mapping's own transformation reversed), but a
    per-point transformation costs microseconds: points are first looked up by their cell of
    0.01° × 0.01°, and a cell whose four corners lie inside one district's rectangle is inside
    as a whole (decided once). Only points in cells on an edge, or outside, are transformed one
    by one — few. Decision: the ten district rows (``E08…``) are the area, not the row for the
    whole county (its bounding box would take in the corners between districts)."""

    _STEP = 100  # cells per degree
    #: Slack at the edges, in metres: a place on a district's edge, its latitude/longitude rounded
    #: to 6 decimals (~0.1 m) and transformed back, may land a hair outside the extent.
    TOLERANCE = 5.0

    def __init__(self, districts) -> None:
        rows = [d for d in districts if str(d.get("lad_code", "")).startswith("E08")] or list(districts)
        slack = self.TOLERANCE
        self.rectangles = tuple((float(d["easting_min"]) - slack, float(d["easting_max"]) + slack,
                                 float(d["northing_min"]) - slack, float(d["northing_max"]) + slack) for d in rows)
        self._cells: dict[int, bool] = {}

    def _grid(self, lats, lons):
        eastings, northings = transformer().transform(lons, lats, direction="INVERSE")
        return eastings, northings

    def _rectangle_of(self, e: float, n: float) -> int | None:
        for i, (e0, e1, n0, n1) in enumerate(self.rectangles):
            if e0 <= e <= e1 and n0 <= n <= n1:
                return i
        return None

    def contains(self, latitude: float, longitude: float) -> bool:
        if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):  # also NaN
            return False
        # One integer key per cell (both shifted positive, so int() floors).
        key = int((latitude + 90.0) * 100.0) * 100_000 + int((longitude + 180.0) * 100.0)
        whole = self._cells.get(key)
        if whole is None:
            whole = self._cells[key] = self._cell_inside(key)
        if whole:
            return True
        (e,), (n,) = self._grid([latitude], [longitude])
        return math.isfinite(e) and math.isfinite(n) and self._rectangle_of(e, n) is not None

    def _cell_inside(self, key: int) -> bool:
        lat_i, lon_i = divmod(key, 100_000)
        step = 1 / self._STEP
        lat0, lon0 = lat_i / self._STEP - 90.0, lon_i / self._STEP - 180.0
        if not (45 < lat0 < 65 and -10 < lon0 < 5):  # nowhere near: no transformation needed
            return False
        lats = [lat0, lat0, lat0 + step, lat0 + step]
        lons = [lon0, lon0 + step, lon0, lon0 + step]
        eastings, northings = self._grid(lats, lons)
        inside = {self._rectangle_of(e, n) for e, n in zip(eastings, northings)}
        return len(inside) == 1 and None not in inside


def to_grid(latitudes: list[float], longitudes: list[float]) -> list[tuple[float, float]]:
    """WGS84 → OS grid (easting, northing), for drawing; non-finite results dropped to None."""
    if not latitudes:
        return []
    eastings, northings = transformer().transform(longitudes, latitudes, direction="INVERSE")
    return [(e, n) if math.isfinite(e) and math.isfinite(n) else None for e, n in zip(eastings, northings)]


def _metres_apart(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: exact enough at a county's scale, and cheap."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6_371_000 * math.hypot(x, y)


# ------------------------------------------------------------------------------ cells


class CrimeCells:
    """Where a crime is counted. One per reconciliation (its code tables and go-live); the
    reconciler's worker processes build their own from the same two.

    An *entry* is ``(cell, placed)`` for an iOPS crime and ``(cell, placed, point)`` for a
    legacy one, ``cell`` = ``(month, district_code, offence_group, after_go_live)``, ``placed``
    one of LOCATED / NO_LOCATION / OUTSIDE_AREA, ``point`` what the map needs of a legacy crime
    (None for nearly all): ``("at", easting, northing)`` for one nothing in iOPS carries the key
    of, ``("moved", easting, northing, new_latitude, new_longitude)`` for one iOPS places far
    from where OPUS has it, or outside the area."""

    def __init__(self, reference, go_live: dt.date | None) -> None:
        self.reference = reference
        self.set_go_live(go_live)
        self._groups: dict[tuple[str | None, dt.date | None], str] = {}
        self._counted: dict = {}
        self.area = GreaterManchester(reference.districts)
        self._inside_cells = self.area._cells

    def set_go_live(self, go_live: dt.date | None) -> None:
        """Go-live (before any crime is placed: the default is read beside the person pass)."""
        self.go_live = go_live
        self._go_live_hour = (int(local_midnight_utc(go_live).timestamp() // 3600)
                              if go_live is not None else None)
        self._hours: dict[int, tuple[str, bool]] = {}
        self._days: dict[dt.date, tuple[str, bool]] = {}

    # -- months

    def month_of(self, instant: dt.datetime) -> tuple[str, bool]:
        """``(YYYY-MM, after go-live)`` of an instant in UK civil time (naive = UTC)."""
        if instant.tzinfo is None:
            instant = as_utc(instant)
        # UK offsets are whole hours and go-live is a local midnight, so the UTC hour decides both.
        hour = int(instant.timestamp() // 3600)
        found = self._hours.get(hour)
        if found is None:
            local = instant.astimezone(_london())
            after = self._go_live_hour is not None and hour >= self._go_live_hour
            found = self._hours[hour] = (f"{local.year:04d}-{local.month:02d}", after)
            if len(self._hours) > 500_000:
                self._hours.clear()
        return found

    def month_of_day(self, day: dt.date) -> tuple[str, bool]:
        found = self._days.get(day)
        if found is None:
            found = self._days[day] = (f"{day.year:04d}-{day.month:02d}",
                                       self.go_live is not None and day >= self.go_live)
        return found

    # -- iOPS side

    def new_entry(self, recorded_at, district_code, offence_group, status, latitude, longitude) -> tuple | None:
        """The entry of an iOPS crime by its own values, or None when its status is not counted."""
        is_counted = self._counted.get(status)  # a handful of distinct statuses: decided once each
        if is_counted is None:
            is_counted = counted(status)
            if len(self._counted) < 1000:
                self._counted[status] = is_counted
        if not is_counted:
            return None
        month, after = self.month_of(recorded_at) if recorded_at is not None else (UNKNOWN, False)
        cell = (month, district_code if district_code not in (None, "") else UNKNOWN_DISTRICT,
                offence_group if offence_group not in (None, "") else UNKNOWN, after)
        if latitude is None or longitude is None:
            return cell, NO_LOCATION
        if type(latitude) is not float or type(longitude) is not float:
            # A store that holds something else (text, a decimal): a number, else no place at all.
            try:
                latitude, longitude = float(latitude), float(longitude)
            except (TypeError, ValueError):
                return cell, NO_LOCATION
        try:
            # GreaterManchester.contains, its common case inlined: a cell known to be inside.
            if self._inside_cells.get(int((latitude + 90.0) * 100.0) * 100_000 + int((longitude + 180.0) * 100.0)):
                return cell, LOCATED
        except (ValueError, OverflowError):  # NaN or infinite: nowhere on a map
            return cell, OUTSIDE_AREA
        return cell, LOCATED if self.area.contains(latitude, longitude) else OUTSIDE_AREA

    # -- OPUS side

    def legacy_entry(self, raw: dict, m, new_positions: list | None) -> tuple | None:
        """The entry of a live legacy crime (``raw`` its row, ``m`` the mapping's ``Mapped``), or
        None when OPUS has it cancelled or transferred. ``new_positions``: the (latitude,
        longitude) of the iOPS records carrying its key (None or empty: none does)."""
        if m.reject is None:
            rows = m.rows
            crime = rows["crime"]
            if crime["status"] in NOT_COUNTED:
                return None
            month, after = self.month_of(crime["recorded_at"])
            cell = (month, crime["district_code"] or UNKNOWN_DISTRICT, crime["offence_group"] or UNKNOWN, after)
            location = rows.get("location") or {}
            lat, lon = location.get("latitude"), location.get("longitude")
            placed = NO_LOCATION if lat is None or lon is None else LOCATED
            if new_positions and new_positions[0] == (lat, lon):
                return cell, placed, None  # iOPS has it where OPUS has it (nearly every crime)
            return cell, placed, self._point(location, lat, lon, new_positions)
        if code(raw.get("status")) in NOT_COUNTED_CODES:
            return None
        day = self._legacy_day(raw)
        month, after = self.month_of_day(day) if day is not None else (UNKNOWN, False)
        district = self.reference.divisions.get(code(raw.get("div")) or "") or UNKNOWN_DISTRICT
        cell = (month, district, self._group(code(raw.get("off_code")), day), after)
        pair = grid_pair(raw.get("grid_e"), raw.get("grid_n"))
        located = pair is not _UNKNOWN_VALUE and pair is not INVALID
        point = ("at", *pair) if located and not new_positions else None
        return cell, LOCATED if located else NO_LOCATION, point

    @staticmethod
    def _legacy_day(raw: dict) -> dt.date | None:
        """The UK local date of a rejected crime's REC_DATE (+ REC_TIME when valid), or None."""
        instant, fault, day = parse_local_datetime(raw.get("rec_date"), raw.get("rec_time"))
        if day is not None:
            return day
        if fault == "time":  # a valid date with an invalid time: the date still says the month
            date = parse_date(raw.get("rec_date"))
            return date if isinstance(date, dt.date) else None
        return None

    def _group(self, off_code: str | None, day: dt.date | None) -> str:
        key = (off_code, day)
        group = self._groups.get(key)
        if group is None:
            reference = self.reference
            groups = set()
            if off_code:
                for row in reference.crosswalk.get(off_code, ()):
                    if day is None or row.covers(day):
                        offence = reference.ho_offences.get(row.ho_code)
                        if offence is not None:
                            groups.add(offence.offence_group)
            # No date: the code's group when all its dated rows agree on one, else UNMAPPED.
            group = groups.pop() if len(groups) == 1 else UNMAPPED
            if len(self._groups) < 100_000:
                self._groups[key] = group
        return group

    def _point(self, location: dict, lat, lon, new_positions) -> tuple | None:
        grid = (location.get("easting"), location.get("northing"))
        if not new_positions:
            return ("at", *grid) if grid[0] is not None and grid[1] is not None else None
        moved = None
        for new_lat, new_lon in new_positions:
            try:
                new_lat, new_lon = float(new_lat), float(new_lon)
            except (TypeError, ValueError):  # none, or not a number: no place to show
                continue
            if not (math.isfinite(new_lat) and math.isfinite(new_lon)):
                continue
            outside = not self.area.contains(new_lat, new_lon)
            if not outside and lat is not None and lon is not None and \
                    _metres_apart(lat, lon, new_lat, new_lon) < MISLOCATED_METRES:
                return None  # one record at the right place: not mislocated
            if outside or lat is not None:
                moved = moved or ("moved", grid[0], grid[1], new_lat, new_lon)
        return moved


# ------------------------------------------------------------------------------ the result


@dataclass(frozen=True)
class StatTotals:
    """Sums over a set of statistics rows."""

    legacy: int = 0  # the force's own OPUS figure
    not_migrated: int = 0
    expected: int = 0  # legacy − not migrated
    new: int = 0
    legacy_no_location: int = 0
    new_no_location: int = 0
    new_outside_area: int = 0
    cells: int = 0
    cells_differing: int = 0  # cells whose new count is not the expected one

    @property
    def delta(self) -> int:
        """iOPS − OPUS."""
        return self.new - self.legacy

    @property
    def delta_expected(self) -> int:
        """iOPS − expected: the migration's own shortfall (or surplus)."""
        return self.new - self.expected

    @property
    def new_unplaceable(self) -> int:
        """iOPS crimes a public crime map cannot place: no coordinates, or outside the area."""
        return self.new_no_location + self.new_outside_area

    @classmethod
    def of(cls, rows) -> "StatTotals":
        t = [0] * 9
        for r in rows:
            t[0] += r.legacy_count
            t[1] += r.legacy_not_migrated
            t[2] += r.expected_count
            t[3] += r.new_count
            t[4] += r.legacy_no_location
            t[5] += r.new_no_location
            t[6] += r.new_outside_area
            t[7] += 1
            t[8] += r.delta_expected != 0
        return cls(*t)


@dataclass(frozen=True)
class MapPoints:
    """Where the crimes a reader should see on a map are (OS grid, metres; iOPS in WGS84)."""

    missing: tuple[tuple[int, int], ...] = ()  # live, accepted, nothing in iOPS: lost
    not_migrated: tuple[tuple[int, int], ...] = ()  # rejected by the mapping, not in iOPS
    #: (legacy easting, northing — None when OPUS had none; iOPS latitude, longitude)
    mislocated: tuple[tuple, ...] = ()


@dataclass(frozen=True)
class CrimeStatistics:
    """The crime statistics as data: the rows of crime_stats.csv and what the Summary, the
    statistics sheets, the chart and the map show of them."""

    go_live: dt.date | None
    rows: tuple[StatRow, ...]
    points: MapPoints = field(default_factory=MapPoints)

    @property
    def before(self) -> StatTotals:
        """Up to go-live: where the two sides must agree."""
        return StatTotals.of(r for r in self.rows if not r.after_go_live)

    @property
    def after(self) -> StatTotals:
        """After go-live: new work in iOPS (and any OPUS crime recorded then), reported apart."""
        return StatTotals.of(r for r in self.rows if r.after_go_live)

    @property
    def all(self) -> StatTotals:
        return StatTotals.of(self.rows)

    def by_district(self, after_go_live: bool = False) -> list[tuple[str, str, StatTotals]]:
        """(district code, name, totals) per district, up to go-live (or after it), in code order."""
        groups: dict[str, list[StatRow]] = {}
        for r in self.rows:
            if r.after_go_live == after_go_live:
                groups.setdefault(r.district_code, []).append(r)
        return [(code_, rows[0].district_name, StatTotals.of(rows)) for code_, rows in sorted(groups.items())]

    def monthly(self) -> list[tuple[str, bool, StatTotals]]:
        """(month, after go-live, totals) in month order (UNKNOWN last), over all districts."""
        groups: dict[tuple[str, bool], list[StatRow]] = {}
        for r in self.rows:
            groups.setdefault((r.month, r.after_go_live), []).append(r)
        order = sorted(groups, key=lambda k: (k[0] == UNKNOWN, k[0], k[1]))
        return [(month, after, StatTotals.of(groups[(month, after)])) for month, after in order]

    def differing(self) -> list[StatRow]:
        """The rows where iOPS holds other than expected, or OPUS other than iOPS; largest first."""
        rows = [r for r in self.rows if r.delta_expected or r.delta]
        return sorted(rows, key=lambda r: (-abs(r.delta_expected), -abs(r.delta), r.month, r.district_code,
                                           r.offence_group))


class CrimeStats:
    """Accumulates both sides as the keyed pass and the scan of iOPS place crimes; ``result()``
    gives the ``CrimeStatistics``."""

    def __init__(self, cells: CrimeCells) -> None:
        self.cells = cells
        #: cell -> [legacy, not migrated, legacy no location, new, new no location, new outside area]
        self._counts: dict[tuple, list[int]] = {}
        self._missing: list[tuple[int, int]] = []
        self._not_migrated: list[tuple[int, int]] = []
        self._mislocated: list[tuple] = []
        self._pending: dict[str, tuple] = {}  # key -> point of a crime left for unkeyed matching

    def _of(self, cell: tuple) -> list[int]:
        counts = self._counts.get(cell)
        if counts is None:
            counts = self._counts[cell] = [0, 0, 0, 0, 0, 0]
        return counts

    def add_legacy(self, key: str, entry: tuple, migrated: bool) -> None:
        """One live legacy crime (its ``CrimeCells.legacy_entry``); ``migrated``: the mapping's verdict."""
        cell, placed, point = entry
        counts = self._of(cell)
        counts[0] += 1
        if placed:
            counts[2] += 1
        if not migrated:
            counts[1] += 1
            if point is not None and point[0] == "at":
                self._not_migrated.append(point[1:])
        elif point is not None:
            if point[0] == "moved":
                self._mislocated.append(point[1:])
            else:
                self._pending[key] = point  # missing, unless unkeyed matching finds it

    def missing(self, key: str) -> None:
        """An accepted crime is MISSING: its place (when OPUS has one) goes on the map."""
        point = self._pending.pop(key, None)
        if point is not None:
            self._missing.append(point[1:])

    def found(self, key: str) -> None:
        """An accepted crime left without a keyed counterpart was matched after all (AUTO)."""
        self._pending.pop(key, None)

    def add_new(self, entry: tuple) -> None:
        """One iOPS crime (its ``CrimeCells.new_entry``)."""
        cell, placed = entry
        counts = self._of(cell)
        counts[3] += 1
        if placed == NO_LOCATION:
            counts[4] += 1
        elif placed == OUTSIDE_AREA:
            counts[5] += 1

    def count_new(self, recorded_at, district_code, offence_group, status, latitude, longitude) -> None:
        entry = self.cells.new_entry(recorded_at, district_code, offence_group, status, latitude, longitude)
        if entry is not None:
            self.add_new(entry)

    def rows(self) -> list[StatRow]:
        names = district_names(self.cells.reference)
        return [
            StatRow(month=m, district_code=d, offence_group=g, legacy_count=c[0], new_count=c[3],
                    legacy_no_location=c[2], new_no_location=c[4], district_name=names.get(d, d),
                    legacy_not_migrated=c[1], new_outside_area=c[5], after_go_live=after)
            for (m, d, g, after), c in sorted(self._counts.items(),
                                              key=lambda kv: (kv[0][0] == UNKNOWN, kv[0][0], kv[0][3], kv[0][1],
                                                              kv[0][2]))
        ]

    def result(self) -> CrimeStatistics:
        return CrimeStatistics(
            go_live=self.cells.go_live, rows=tuple(self.rows()),
            points=MapPoints(missing=tuple(self._missing), not_migrated=tuple(self._not_migrated),
                             mislocated=tuple(self._mislocated)))


def district_names(reference) -> dict[str, str]:
    """ONS district code → name (``gm_districts.csv``); ``UNKNOWN`` is named for a reader."""
    names = {d["lad_code"]: d["district"] for d in reference.districts if d.get("lad_code")}
    names[UNKNOWN_DISTRICT] = "Unknown district"
    return names


def latest_date(values) -> dt.date | None:
    """The latest date among REC_DATE values as OPUS stores them (unparseable ones ignored)."""
    latest = None
    for value in values:
        day = parse_date(value)
        if isinstance(day, dt.date) and (latest is None or day > latest):
            latest = day
    return latest


def default_go_live(latest: dt.date | None) -> dt.date | None:
    """``mapping.md``: by default the day after the latest REC_DATE in OPUS."""
    return None if latest is None else latest + dt.timedelta(days=1)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_go_live(value: str) -> dt.date:
    """``--go-live YYYY-MM-DD`` as a date; a usage error (one line) otherwise."""
    from core.errors import UsageError

    text_value = (value or "").strip()
    try:
        if _ISO_DAY.fullmatch(text_value):
            return dt.date.fromisoformat(text_value)
    except ValueError:
        pass
    raise UsageError(f"--go-live must be a date written YYYY-MM-DD, e.g. 2019-07-15 (got {text_value[:20]!r})")

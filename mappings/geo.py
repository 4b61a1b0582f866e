"""OS National Grid (EPSG:27700) validation and batch conversion to WGS84 (EPSG:4326).

One ``Transformer`` per process, used for whole batches: building a transformer costs
milliseconds and a per-row call costs microseconds, against ~0.1 µs per point in a batch.

The operation is pinned to the pipeline pyproj chooses by default on a standard install
(``Inverse of British National Grid + OSGB36 to WGS 84 (6)``, EPSG:1314 Helmert, ~2 m). If
we let PROJ pick, a machine that has the OSTN15 grid file (or ``PROJ_NETWORK=ON``) would
choose a different operation and produce latitudes that differ by ~1e-5° — so the same
legacy row would map to different values on different machines, breaking re-run digests
and the reconciler's 0.00001° comparison.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable, MutableMapping

from mappings.parse import INVALID, UNKNOWN, Sentinel, parse_int, text

EASTING_MAX = 700_000
NORTHING_MAX = 1_300_000

#: EPSG:27700 → EPSG:4326 (lon, lat order), OSGB36 to WGS 84 (6) = EPSG:1314.
PIPELINE = (
    "proj=pipeline step inv proj=tmerc lat_0=49 lon_0=-2 k=0.9996012717 x_0=400000 "
    "y_0=-100000 ellps=airy step proj=push v_3 step proj=cart ellps=airy step proj=helmert "
    "x=446.448 y=-125.157 z=542.06 rx=0.15 ry=0.247 rz=0.842 s=-20.489 "
    "convention=position_vector step inv proj=cart ellps=WGS84 step proj=pop v_3 "
    "step proj=unitconvert xy_in=rad xy_out=deg"
)


@lru_cache(maxsize=1)
def transformer():
    from pyproj import Transformer  # imported once, lazily: parse-only users need no PROJ

    return Transformer.from_pipeline(PIPELINE)


def grid_pair(easting: Any, northing: Any) -> tuple[int, int] | Sentinel:
    """``GRID_E``/``GRID_N`` as a pair (mapping.md, location.easting/northing).

    * either NULL/blank or 0 → ``UNKNOWN`` (both NULL, no warning);
    * otherwise either not a whole number, or outside 0–700000 / 0–1300000 → ``INVALID``
      (both NULL, warn ``INVALID_GRID``). Ambiguity: a fractional value (possible only through
      SQLite's REAL affinity) is INVALID rather than silently rounded;
    * else ``(easting, northing)``.

    Ambiguity: a pair with one side 0/NULL and the other out of range is UNKNOWN (the
    0/NULL rule comes first in mapping.md); the pair is NULL either way.
    """
    e = _coordinate(easting)
    n = _coordinate(northing)
    if e is UNKNOWN or n is UNKNOWN or e == 0 or n == 0:
        return UNKNOWN
    if e is INVALID or n is INVALID:
        return INVALID
    if not (0 <= e <= EASTING_MAX and 0 <= n <= NORTHING_MAX):
        return INVALID
    return e, n


def grid_fault(easting: Any, northing: Any) -> tuple[str, str | None]:
    """For an INVALID pair: the legacy column at fault and its value as text."""
    e = _coordinate(easting)
    if e is INVALID or (isinstance(e, int) and not 0 <= e <= EASTING_MAX):
        return "GRID_E", text(easting)
    return "GRID_N", text(northing)


def _coordinate(value: Any) -> int | Sentinel:
    if type(value) is int:
        return value
    if value is None:
        return UNKNOWN
    if isinstance(value, str) and not value.strip():
        return UNKNOWN
    number = parse_int(value)
    return INVALID if number is None else number


def to_lat_lon(eastings: list[int], northings: list[int]) -> list[tuple[float, float]]:
    """Batch EPSG:27700 → EPSG:4326; (latitude, longitude) rounded to 6 decimals."""
    if not eastings:
        return []
    lons, lats = transformer().transform(eastings, northings)
    return [(round(lat, 6), round(lon, 6)) for lat, lon in zip(lats, lons)]


def fill_lat_lon(location_rows: Iterable[MutableMapping]) -> None:
    """Fill ``latitude``/``longitude`` in place for location rows, in one transform call.

    Rows whose easting/northing is NULL get NULL latitude/longitude.
    """
    todo = []
    for row in location_rows:
        if row.get("easting") is None or row.get("northing") is None:
            row["latitude"] = None
            row["longitude"] = None
        else:
            todo.append(row)
    if not todo:
        return
    points = to_lat_lon([r["easting"] for r in todo], [r["northing"] for r in todo])
    for row, (lat, lon) in zip(todo, points):
        row["latitude"] = lat
        row["longitude"] = lon

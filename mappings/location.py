"""location ← the place columns of CRIME / INTEL (``mapping.md``, "location"), and the
district look-up both owners share.

Latitude/longitude are *not* computed here per row: the batch functions collect every
location of a batch and convert them in one call (``geo.fill_lat_lon``). The per-row
mapping functions call ``fill_lat_lon`` on their single row when used on their own.
"""

from __future__ import annotations

from typing import Any, Mapping

from mappings import geo
from mappings.ids import IdFunctions
from mappings.outcome import Issue, optional_value
from mappings.parse import INVALID, UNKNOWN, code, collapse, normalise_postcode, text
from mappings.reference import Reference


def district_for(row: Mapping, reference: Reference, warnings: list[Issue]) -> str | None:
    """``DIV`` → ONS district via ``divisions.csv``; blank or unknown → None, warn
    ``UNKNOWN_DIVISION`` (mapping.md warns on blank as well as unknown)."""
    raw = row.get("div")
    div = code(raw)
    district = reference.divisions.get(div) if div is not None else None
    if district is None:
        warnings.append(Issue("UNKNOWN_DIVISION", "DIV", text(raw)))
    return district


def grid_for(row: Mapping, warnings: list[Issue]) -> tuple[int, int] | None:
    """The known (easting, northing) of a row, or None; warns ``INVALID_GRID``."""
    pair = geo.grid_pair(row.get("grid_e"), row.get("grid_n"))
    if pair is UNKNOWN:
        return None
    if pair is INVALID:
        field, value = geo.grid_fault(row.get("grid_e"), row.get("grid_n"))
        warnings.append(Issue("INVALID_GRID", field, value))
        return None
    return pair


def postcode_for(raw: Any, warnings: list[Issue]) -> str | None:
    return optional_value(normalise_postcode(raw), raw, warnings, "INVALID_POSTCODE", "PCODE")


def location_row(
    location_id: str,
    *,
    grid: tuple[int, int] | None,
    district_code: str | None,
    address: str | None = None,
    postcode: str | None = None,
    beat: str | None = None,
) -> dict:
    """A ``location`` row with exactly the target columns (latitude/longitude left None
    for ``geo.fill_lat_lon``)."""
    return {
        "location_id": location_id,
        "address": address,
        "postcode": postcode,
        "easting": grid[0] if grid else None,
        "northing": grid[1] if grid else None,
        "latitude": None,
        "longitude": None,
        "beat": beat,
        "district_code": district_code,
    }


def crime_location(legacy_ref: str, row: Mapping, district_code: str | None, warnings: list[Issue],
                   ids: IdFunctions) -> dict:
    """The one location every migrated crime owns. Ambiguity: "one per migrated crime" is
    taken literally — a crime whose place columns are all blank still gets a location row
    (all NULL but district_code), so crime.location_id is never NULL for migrated crimes."""
    postcode = postcode_for(row.get("pcode"), warnings)
    grid = grid_for(row, warnings)
    return location_row(
        ids.location_id("crime", legacy_ref),
        grid=grid,
        district_code=district_code,
        address=collapse(row.get("addr_line")),
        postcode=postcode,
        beat=code(row.get("beat")),
    )


def intel_location(legacy_ref: str, row: Mapping, district_code: str | None, warnings: list[Issue],
                   ids: IdFunctions) -> dict | None:
    """An intelligence entry's location: only when its grid is known; no address/postcode/beat."""
    grid = grid_for(row, warnings)
    if grid is None:
        return None
    return location_row(ids.location_id("intelligence", legacy_ref), grid=grid, district_code=district_code)
